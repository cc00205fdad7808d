//! The console examples of the documentation, run as written.
//!
//! [`console_blocks`] reads every fenced ```` ```console ```` block of a
//! Markdown file: each `$ ` line is a command (`> ` lines continue it, as a
//! shell's second prompt shows a here-document), the lines below it are
//! what it prints (stdout and stderr, in order). A [`Shell`] is one `bash`
//! for one document: the commands run in it one after the other, in a
//! directory the test prepares, so `eval`, `alias`, `cd`, variables and
//! files carry over from one example to the next, exactly as for a reader
//! who types them.
//!
//! [`Masks`] makes run-time values comparable: times, durations,
//! checksums and timestamp versions are masked on both sides; the test's
//! own database name and port are shown as the documentation's. In the
//! documented output, a line `…` stands for any number of lines and a `…`
//! inside a line for any text (the documentation shortens long output so).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use regex::Regex;

/// One command of a console block and what the documentation says it prints.
#[derive(Debug, Clone)]
pub struct Example {
    /// `README.md:123`: where the command is written.
    pub at: String,
    /// The command, continuation lines joined with newlines.
    pub command: String,
    /// The documented output, one entry per line.
    pub output: Vec<String>,
}

/// A ```` ```console ```` block.
#[derive(Debug, Clone)]
pub struct Block {
    /// `README.md:120`: the line of the opening fence.
    pub at: String,
    pub examples: Vec<Example>,
    /// Lines above the first command (a block must not have any).
    pub stray: Vec<String>,
}

/// Every console block of `path`, in order (`shown` names the file in messages).
pub fn console_blocks(path: &Path, shown: &str) -> Vec<Block> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut blocks = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((i, line)) = lines.next() {
        let indent = line.len() - line.trim_start().len();
        let fence = line.trim_start();
        if !fence.starts_with("```") {
            continue;
        }
        let console = fence.trim_start_matches('`').trim() == "console";
        let mut block = Block {
            at: format!("{shown}:{}", i + 1),
            examples: Vec::new(),
            stray: Vec::new(),
        };
        for (j, raw) in lines.by_ref() {
            if raw.trim_start().starts_with("```") {
                break;
            }
            if !console {
                continue;
            }
            // The block's own indentation (a block inside a list item).
            let l = if raw.len() >= indent && raw[..indent].trim().is_empty() {
                &raw[indent..]
            } else {
                raw.trim_start()
            };
            if let Some(cmd) = l.strip_prefix("$ ") {
                block.examples.push(Example {
                    at: format!("{shown}:{}", j + 1),
                    command: cmd.to_string(),
                    output: Vec::new(),
                });
            } else if let Some(last) = block.examples.last_mut() {
                match l.strip_prefix("> ").or(if l == ">" { Some("") } else { None }) {
                    Some(more) if last.output.is_empty() => {
                        last.command.push('\n');
                        last.command.push_str(more);
                    }
                    _ => last.output.push(l.to_string()),
                }
            } else {
                block.stray.push(l.to_string());
            }
        }
        if console {
            blocks.push(block);
        }
    }
    blocks
}

/// One `bash` for one document: commands run in it one after another, with
/// stderr merged into stdout as on a terminal.
pub struct Shell {
    child: Child,
    stdin: ChildStdin,
    out: Receiver<Vec<u8>>,
    buffered: Vec<u8>,
    mark: String,
}

impl Shell {
    /// Starts `bash` in `cwd` with only `PATH` (after `path`, if given),
    /// `HOME`, `LANG` and `env`.
    pub fn start(cwd: &Path, path: Option<&Path>, env: &[(&str, &str)]) -> Shell {
        let mut c = Command::new("bash");
        c.args(["--noprofile", "--norc", "-s"]).current_dir(cwd).env_clear();
        let inherited = std::env::var("PATH").unwrap_or_default();
        let search = match path {
            Some(p) => format!("{}:{inherited}", p.display()),
            None => inherited,
        };
        c.env("PATH", search).env("HOME", cwd).env("LANG", "C.UTF-8").env("TERM", "dumb");
        for (k, v) in env {
            c.env(k, v);
        }
        let mut child = c
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start bash");
        let mut stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take().unwrap();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let mut sh = Shell {
            child,
            stdin,
            out: rx,
            buffered: Vec::new(),
            mark: format!("cm-doc-done-{}-{nanos}", std::process::id()),
        };
        // stderr into stdout, in order; aliases in a non-interactive shell.
        sh.run("exec 2>&1; shopt -s expand_aliases", Duration::from_secs(10));
        sh
    }

    /// Runs one command; returns what it printed and its exit code.
    pub fn run(&mut self, command: &str, timeout: Duration) -> (String, i32) {
        let script = format!("{command}\nprintf '\\n{}:%d\\n' \"$?\"\n", self.mark);
        self.stdin.write_all(script.as_bytes()).expect("write to bash");
        self.stdin.flush().unwrap();
        let until = Instant::now() + timeout;
        let needle = format!("\n{}:", self.mark);
        loop {
            if let Some(at) = find(&self.buffered, needle.as_bytes()) {
                let rest = &self.buffered[at + needle.len()..];
                if let Some(nl) = rest.iter().position(|b| *b == b'\n') {
                    let code: i32 = String::from_utf8_lossy(&rest[..nl]).parse().unwrap_or(-1);
                    let output = String::from_utf8_lossy(&self.buffered[..at]).into_owned();
                    self.buffered.drain(..at + needle.len() + nl + 1);
                    return (output, code);
                }
            }
            let left = until.saturating_duration_since(Instant::now());
            match self.out.recv_timeout(left) {
                Ok(chunk) => self.buffered.extend_from_slice(&chunk),
                Err(_) => panic!(
                    "`{command}` did not finish within {} s; it printed:\n{}",
                    timeout.as_secs(),
                    String::from_utf8_lossy(&self.buffered)
                ),
            }
        }
    }
}

impl Drop for Shell {
    fn drop(&mut self) {
        let _ = self.stdin.write_all(b"exit 0\n");
        let _ = self.stdin.flush();
        let until = Instant::now() + Duration::from_secs(5);
        while Instant::now() < until {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// What makes one run's output comparable with the documented one.
pub struct Masks {
    /// Replaced in the actual output only: (the test's value, the documentation's).
    pub actual: Vec<(Regex, String)>,
    /// Replaced in the commands: (the documentation's value, the test's).
    commands: Vec<(Regex, String)>,
    /// Replaced on both sides.
    both: Vec<(Regex, &'static str)>,
}

impl Masks {
    pub fn new() -> Masks {
        let re = |s: &str| Regex::new(s).unwrap();
        Masks {
            actual: Vec::new(),
            commands: Vec::new(),
            both: vec![
                (re(r"sha256:[0-9a-f]{64}"), "sha256:<checksum>"),
                (re(r"sha256:[0-9a-f]{8}…"), "sha256:<checksum>"),
                (re(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"), "<time>"),
                (re(r"V\d{14}__"), "V<stamp>__"),
                (re(r#""(duration_ms|waited_ms|execution_ms)":\d+"#), "\"$1\":<n>"),
                (re(r"\(attempt \d+"), "(attempt <n>"),
                (re(r"\b\d+ attempt\(s\)"), "<n> attempt(s)"),
                (re(r"\b\d+ min \d+ s\b"), "<duration>"),
                (re(r"\b\d+(\.\d+)? (ms|s)\b"), "<duration>"),
            ],
        }
    }

    /// Shows `value` of the test's run as the documentation's `shown`
    /// (a database name, a port), as a whole word; a command that names
    /// `shown` runs with `value` instead.
    pub fn show_as(mut self, value: &str, shown: &str) -> Masks {
        let word = |s: &str| Regex::new(&format!(r"\b{}\b", regex::escape(s))).unwrap();
        self.actual.push((word(value), shown.to_string()));
        self.commands.push((word(shown), value.to_string()));
        self
    }

    /// The command as the test runs it (the test's database name, port).
    pub fn command(&self, command: &str) -> String {
        let mut c = command.to_string();
        for (re, to) in &self.commands {
            c = re.replace_all(&c, to.as_str()).into_owned();
        }
        c
    }

    fn common(&self, text: &str) -> Vec<String> {
        let mut t = text.to_string();
        for (re, to) in &self.both {
            t = re.replace_all(&t, *to).into_owned();
        }
        let mut lines: Vec<String> = t.lines().map(|l| l.trim_end().to_string()).collect();
        while lines.last().is_some_and(|l| l.is_empty()) {
            lines.pop();
        }
        lines
    }

    /// The actual output, masked.
    pub fn actual(&self, text: &str) -> Vec<String> {
        let mut t = text.to_string();
        for (re, to) in &self.actual {
            t = re.replace_all(&t, to.as_str()).into_owned();
        }
        self.common(&t)
    }

    /// The documented output, masked.
    pub fn documented(&self, lines: &[String]) -> Vec<String> {
        self.common(&lines.join("\n"))
    }
}

impl Default for Masks {
    fn default() -> Self {
        Masks::new()
    }
}

/// Whether `actual` is what `documented` shows: line by line, where a line
/// `…` stands for any number of lines and a `…` in a line for any text.
pub fn matches(documented: &[String], actual: &[String]) -> bool {
    let patterns: Vec<Option<Regex>> = documented
        .iter()
        .map(|l| {
            (l.trim() != "…").then(|| {
                let parts: Vec<String> = l.split('…').map(regex::escape).collect();
                Regex::new(&format!("^{}$", parts.join(".*"))).unwrap()
            })
        })
        .collect();
    fn go(p: &[Option<Regex>], a: &[String]) -> bool {
        match p.split_first() {
            None => a.is_empty(),
            Some((None, rest)) => (0..=a.len()).any(|skip| go(rest, &a[skip..])),
            Some((Some(re), rest)) => a.first().is_some_and(|l| re.is_match(l)) && go(rest, &a[1..]),
        }
    }
    go(&patterns, actual)
}

/// A copy of this checkout's layout for the documentation's commands, in a
/// temporary directory: `chatmigrate.toml` (with `edit` applied),
/// `migrations/`, `scripts/`, `tests/integration/seed/` (the seed's SQL, for
/// `adopt`), `.venv` (a link to this checkout's), the
/// binary at `target/debug/chatmigrate`, and `.pg/port` + `.pg/password`
/// of the test server, so that `bash scripts/pg.sh env` and `psql` reach it
/// as they reach the dev server in a checkout.
pub struct Checkout {
    pub dir: tempfile::TempDir,
}

impl Checkout {
    pub fn new(edit: impl Fn(String) -> String) -> Checkout {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let dir = tempfile::Builder::new().prefix("cm-doc-").tempdir().unwrap();
        let d = dir.path();
        let toml = std::fs::read_to_string(root.join("chatmigrate.toml")).unwrap();
        std::fs::write(d.join("chatmigrate.toml"), edit(toml)).unwrap();
        for sub in ["migrations", "scripts", "tests/integration/seed"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
            for e in std::fs::read_dir(root.join(sub)).unwrap() {
                let e = e.unwrap();
                if e.file_type().unwrap().is_file() {
                    std::fs::copy(e.path(), d.join(sub).join(e.file_name())).unwrap();
                }
            }
        }
        std::os::unix::fs::symlink(root.join(".venv"), d.join(".venv")).unwrap();
        std::fs::create_dir_all(d.join("target/debug")).unwrap();
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_chatmigrate"), d.join("target/debug/chatmigrate")).unwrap();
        std::fs::create_dir_all(d.join(".pg")).unwrap();
        std::fs::write(d.join(".pg/port"), format!("{}\n", super::port())).unwrap();
        std::fs::write(d.join(".pg/password"), format!("{}\n", super::server_password())).unwrap();
        Checkout { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// Runs every example of `blocks` in `shell`, in order, and compares what
/// each prints with the documentation; `before(i, block)` prepares what
/// block `i` needs (a fault of a test server). `secret` must never show.
/// Panics with every difference (not only the first).
pub fn run_blocks(shell: &mut Shell, blocks: &[Block], masks: &Masks, secret: &str, before: &mut dyn FnMut(usize, &Block)) {
    let mut failures = Vec::new();
    for (i, b) in blocks.iter().enumerate() {
        before(i, b);
        assert!(
            b.stray.is_empty(),
            "{}: a console block starts with a `$ ` command (output without one belongs in a text block): {:?}",
            b.at,
            b.stray
        );
        assert!(!b.examples.is_empty(), "{}: a console block without a command", b.at);
        for ex in &b.examples {
            let (out, code) = shell.run(&masks.command(&ex.command), Duration::from_secs(180));
            assert!(
                !secret.is_empty() && !out.contains(secret),
                "{}: `{}` printed the password:\n{out}",
                ex.at,
                ex.command
            );
            let want = masks.documented(&ex.output);
            let got = masks.actual(&out);
            let errored = want.iter().any(|l| l.starts_with("error: "));
            // An `error:` line is exit 2 (or 130, 143); other non-zero exits
            // (verify, lint, status --exit-code finding something) are in the text.
            let code_ok = !errored || code != 0;
            if !matches(&want, &got) || !code_ok {
                failures.push(format!(
                    "{}: $ {}\n--- documented (masked)\n{}\n--- printed (masked), exit {code}\n{}\n--- printed\n{out}",
                    ex.at,
                    ex.command,
                    want.join("\n"),
                    got.join("\n")
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} example(s) differ:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
