//! All rendering, in one place: each command returns an [`Outcome`] (data,
//! serialisable), and this module writes it to a writer in the requested
//! [`Format`]; also `up`'s progress [`Event`]s as they happen, the waits,
//! and errors with their hints. One file per format: `text.rs` (for
//! people, colours auto / always / never, NO_COLOR honoured), `json.rs`
//! (one JSON document on stdout), `github.rs` (the text, plus GitHub
//! Actions annotations) and `sarif.rs` (`lint`'s SARIF 2.1.0 log);
//! `progress.rs` keeps what a long index build's progress line needs. A format
//! a command does not have is refused before it runs (`cmd::formats`).
//!
//! Standard output is a [`Stdout`]: when its reader goes away (`| head`,
//! EPIPE) nothing more is written, no error is raised, and the command
//! ends with exit 0, as ripgrep does; `up` still finishes the migration it
//! runs. Standard error is written the same way: a closed stderr never
//! fails a command. Secrets never reach here: targets are
//! `user@host:port/db`, URLs are redacted at parse time.

mod github;
mod json;
mod outcome;
mod progress;
mod sarif;
mod text;

use std::io::{self, Write};

use crate::error::Error;
use crate::retry::Waiting;
use crate::runner::Event;

pub use outcome::{Done, Outcome, SchemaOutcome, StatusOutcome, UpOutcome, VerifyOutcome};
pub use progress::EventView;

/// An output format of `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// For people (the default).
    Text,
    /// One JSON document on stdout.
    Json,
    /// The text, plus GitHub Actions workflow commands (annotations).
    Github,
    /// SARIF 2.1.0 (`lint`).
    Sarif,
}

/// How to render: the format and the text settings.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub format: Format,
    pub color: bool,
    pub quiet: bool,
    pub verbose: bool,
}

impl Style {
    /// Plain text: no colours, not quiet, not verbose.
    pub fn text() -> Style {
        Style {
            format: Format::Text,
            color: false,
            quiet: false,
            verbose: false,
        }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}

/// Renders a command's outcome to `out`.
pub fn outcome(style: &Style, out: &mut dyn Write, o: &Outcome) -> io::Result<()> {
    match style.format {
        Format::Text => text::outcome(style, out, o),
        Format::Json => json::outcome(out, o),
        Format::Github => github::outcome(style, out, o),
        Format::Sarif => sarif::outcome(out, o),
    }
}

/// One line per event while `up` runs (text only; nothing with --quiet).
pub fn event(style: &Style, out: &mut dyn Write, ev: &Event) -> io::Result<()> {
    match style.format {
        Format::Text | Format::Github if !style.quiet => text::event(style, out, ev),
        _ => Ok(()),
    }
}

/// An error as `error: ...` and `hint: ...` on stderr (a lint refusal
/// followed by its report, as `chatmigrate lint` prints it); with JSON also
/// the error object on `out`: `{"ok":false,"error":{"kind",...}}`; with
/// `github` also its annotation(s) on `out`.
pub fn error(style: &Style, out: &mut dyn Write, e: &Error) {
    let mut err = io::stderr().lock();
    let _ = text::error(style, &mut err, e);
    match style.format {
        Format::Json => {
            let _ = json::error(out, e);
        }
        Format::Github => {
            let _ = github::error(out, e);
        }
        Format::Text | Format::Sarif => {}
    }
}

/// Only the JSON error object (for a command line clap refused: clap has
/// printed its own text).
pub fn error_json(out: &mut dyn Write, e: &Error) {
    let _ = json::error(out, e);
}

/// A progress line while waiting (Aurora resuming, throttling, the lock),
/// on stderr so it never mixes with JSON on stdout; nothing with --quiet.
pub fn waiting(style: &Style, w: &Waiting) {
    if !style.quiet {
        let _ = writeln!(io::stderr().lock(), "{w}");
    }
}

/// A file's path as CI tools want it: relative to the repository's root
/// (`GITHUB_WORKSPACE`, when set and the file is under it), else as lint
/// prints it (relative to the working directory), with `/` separators and
/// no leading `./`.
pub(crate) fn ci_path(path: &str) -> String {
    let in_workspace = std::env::var_os("GITHUB_WORKSPACE")
        .filter(|w| !w.is_empty())
        .and_then(|w| std::fs::canonicalize(w).ok())
        .and_then(|w| {
            let file = std::fs::canonicalize(path).ok()?;
            Some(file.strip_prefix(&w).ok()?.to_string_lossy().into_owned())
        });
    let path = in_workspace.unwrap_or_else(|| path.to_string()).replace('\\', "/");
    let mut rest = path.as_str();
    while let Some(r) = rest.strip_prefix("./") {
        rest = r.trim_start_matches('/');
    }
    rest.to_string()
}

/// A line for people on stderr (`-v`'s configuration line).
pub fn note(line: &str) {
    let _ = writeln!(io::stderr().lock(), "{line}");
}

/// Standard output that a closed pipe does not break: once the reader has
/// gone (EPIPE), writes succeed without writing anything, and
/// [`Stdout::closed`] says so.
pub struct Stdout {
    inner: io::Stdout,
    closed: bool,
}

impl Stdout {
    pub fn new() -> Stdout {
        Stdout {
            inner: io::stdout(),
            closed: false,
        }
    }

    /// The reader went away.
    pub fn closed(&self) -> bool {
        self.closed
    }

    fn absorb<T>(&mut self, r: io::Result<T>, done: T) -> io::Result<T> {
        match r {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(done)
            }
            r => r,
        }
    }
}

impl Default for Stdout {
    fn default() -> Stdout {
        Stdout::new()
    }
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.closed {
            return Ok(buf.len());
        }
        let r = self.inner.write(buf);
        self.absorb(r, buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.closed {
            return Ok(());
        }
        let r = self.inner.flush();
        self.absorb(r, ())
    }
}

/// The lint findings as `chatmigrate lint` prints them (for the lint
/// rules' unit tests).
#[cfg(test)]
pub fn lint_findings(out: &mut dyn Write, findings: &[crate::lint::Finding], color: bool) -> io::Result<()> {
    text::lint_findings(out, findings, color)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer whose reader went away after `left` bytes.
    struct Pipe {
        left: usize,
        got: Vec<u8>,
    }

    impl Write for Pipe {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.left == 0 {
                return Err(io::ErrorKind::BrokenPipe.into());
            }
            let n = buf.len().min(self.left);
            self.left -= n;
            self.got.extend_from_slice(&buf[..n]);
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn rendering_to_a_closed_pipe_stops_quietly() {
        let o = Outcome::Done(Done::new("line one", serde_json::json!({})));
        let mut pipe = Pipe { left: 0, got: Vec::new() };
        // A plain writer reports the closed pipe; Stdout absorbs it (below).
        assert_eq!(
            outcome(&Style::text(), &mut pipe, &o).unwrap_err().kind(),
            io::ErrorKind::BrokenPipe
        );
        let mut s = Stdout::new();
        let r = s.absorb::<usize>(Err(io::ErrorKind::BrokenPipe.into()), 3);
        assert_eq!(r.unwrap(), 3);
        assert!(s.closed());
        // Once closed, nothing more goes out and nothing fails.
        assert_eq!(s.write(b"more").unwrap(), 4);
        s.flush().unwrap();
        let other = s.absorb::<()>(Err(io::ErrorKind::PermissionDenied.into()), ());
        assert!(other.is_err(), "other errors still count");
    }
}
