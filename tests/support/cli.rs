//! Running the real `chatmigrate` binary (`CARGO_BIN_EXE_chatmigrate`) the
//! way a user does: in a directory, with a clean environment (no `PG*`,
//! `DATABASE_URL` or `CHATMIGRATE_*` leaking in from the shell), in the
//! foreground ([`run_in`], [`cm`]) or in the background ([`spawn_in`],
//! [`finish`], [`signal`]); and what it printed ([`Run`]).

use std::path::Path;
use std::process::{Child, Command, Stdio};

use super::db::Db;
use super::dir::Dir;

/// The result of one run of the binary.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Asserts exit 2 and that stderr is exactly `error: <line>` + `hint: ...`.
    pub fn assert_error(&self, line: &str) -> &Run {
        assert_eq!(self.code, 2, "expected exit 2, got {self:#?}");
        assert_eq!(self.error_line(), format!("error: {line}"), "stderr was:\n{}", self.stderr);
        assert!(self.hint().starts_with("hint: "), "no hint:\n{}", self.stderr);
        self
    }

    /// stderr without the "waiting for ..." progress lines.
    fn messages(&self) -> impl Iterator<Item = &str> {
        self.stderr.lines().filter(|l| !l.starts_with("waiting for "))
    }

    /// The `error: ...` line.
    pub fn error_line(&self) -> &str {
        self.messages().next().unwrap_or("")
    }

    pub fn assert_ok(&self) -> &Run {
        assert_eq!(self.code, 0, "expected exit 0, got {self:#?}");
        self
    }

    pub fn hint(&self) -> String {
        self.messages().nth(1).unwrap_or("").to_string()
    }

    pub fn output(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    fn from(out: std::process::Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// Variables that would point the binary elsewhere; every run clears them.
pub const CLEARED_ENV: [&str; 11] = [
    "DATABASE_URL",
    "PGHOST",
    "PGPORT",
    "PGUSER",
    "PGPASSWORD",
    "PGDATABASE",
    "PGSSLMODE",
    "PGSSLROOTCERT",
    "CHATMIGRATE_ENV",
    "CHATMIGRATE_CONFIG",
    "NO_COLOR",
];

/// AWS credentials from the environment (the first link of the AWS chain),
/// for the Data API, Secrets Manager and IAM tests.
pub const AWS_ENV: [(&str, &str); 4] = [
    ("AWS_ACCESS_KEY_ID", "AKIDTEST"),
    ("AWS_SECRET_ACCESS_KEY", "secret"),
    ("AWS_EC2_METADATA_DISABLED", "true"),
    ("AWS_CONFIG_FILE", "/nonexistent"),
];

/// The binary with `args`, in `cwd`, with the clean environment plus `env`.
pub fn command(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_chatmigrate"));
    c.args(args).current_dir(cwd);
    for k in CLEARED_ENV {
        c.env_remove(k);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

/// Runs the real binary in `cwd` with a clean environment plus `env`.
pub fn run_in(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    Run::from(command(cwd, args, env).output().expect("run chatmigrate"))
}

/// Runs the binary against `db` with migrations from `dir`.
pub fn cm(db: &Db, dir: &Dir, args: &[&str]) -> Run {
    let mut full: Vec<&str> = vec!["--database-url", &db.url, "--migrations", dir.path().to_str().unwrap()];
    full.extend_from_slice(args);
    run_in(dir.path(), &full, &[])
}

/// Runs the binary against `db` with the built-in (embedded) chat schema.
pub fn cm_embedded(db: &Db, args: &[&str]) -> Run {
    let tmp = tempfile::tempdir().unwrap();
    let mut full: Vec<&str> = vec!["--database-url", &db.url];
    full.extend_from_slice(args);
    run_in(tmp.path(), &full, &[])
}

/// Starts the binary in the background (same clean environment as `run_in`).
pub fn spawn_in(cwd: &Path, args: &[&str]) -> Child {
    spawn(command(cwd, args, &[]))
}

/// Starts `c` in the background with stdout and stderr captured.
pub fn spawn(mut c: Command) -> Child {
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    c.spawn().expect("spawn chatmigrate")
}

/// Waits for a spawned binary and collects its output.
pub fn finish(child: Child) -> Run {
    Run::from(child.wait_with_output().unwrap())
}

/// Sends a signal (by name, e.g. "INT", "TERM", "KILL") to a child, with
/// kill(2) itself: no `kill` program needed (a minimal system has none).
pub fn signal(child: &Child, name: &str) {
    let sig = match name {
        "INT" => libc::SIGINT,
        "TERM" => libc::SIGTERM,
        "KILL" => libc::SIGKILL,
        "HUP" => libc::SIGHUP,
        "QUIT" => libc::SIGQUIT,
        "STOP" => libc::SIGSTOP,
        "CONT" => libc::SIGCONT,
        other => panic!("signal: unknown signal name {other}"),
    };
    let pid = libc::pid_t::try_from(child.id()).expect("pid fits pid_t");
    // SAFETY: kill(2) with a child's pid and a valid signal number has no
    // memory effects in this process.
    let rc = unsafe { libc::kill(pid, sig) };
    assert_eq!(rc, 0, "kill -{name} {pid}: {}", std::io::Error::last_os_error());
}
