//! A closed stdout (`chatmigrate ... | head -1`): every command ends quietly
//! with exit 0 whatever it was writing, as ripgrep does, and says nothing
//! on stderr; `up` still finishes its migrations. An error of the command
//! itself is still reported, with exit 2.
//!
//! The pipe's reader is closed before the binary starts (every write fails
//! with EPIPE), or after the first line of a long output (the binary is
//! blocked writing when the reader goes).

use std::io::{BufRead, BufReader};
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Command, Stdio};

use crate::support::cli::command;
use crate::support::*;

/// A pipe whose read end is already closed: its write end, for stdout.
fn closed_pipe() -> Stdio {
    let mut fds = [0; 2];
    // SAFETY: pipe(2) fills two new descriptors, which this function owns.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: fds[0] is the read end just made; nothing else holds it.
    drop(unsafe { OwnedFd::from_raw_fd(fds[0]) });
    // SAFETY: fds[1] is the write end just made, handed over once.
    Stdio::from(unsafe { OwnedFd::from_raw_fd(fds[1]) })
}

/// Runs `c` with stdout closed before it starts.
fn with_closed_stdout(mut c: Command) -> Run {
    let out = c.stdout(closed_pipe()).stderr(Stdio::piped()).output().expect("run chatmigrate");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::new(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `c`, reads the first line of its stdout, then closes it.
fn first_line_then_closed(mut c: Command) -> (String, Run) {
    let mut child = c.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let out = child.wait_with_output().unwrap();
    let r = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::new(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    (line, r)
}

fn quiet_ok(what: &str, r: &Run) {
    assert_eq!((r.code, r.stderr.as_str()), (0, ""), "{what}: {r:#?}");
}

#[test]
fn every_command_ends_quietly_with_exit_0_when_stdout_is_closed() {
    let (db, dir) = (Db::new(), Dir::new());
    dir.write("V1__a.sql", "CREATE TABLE a (id int);\n");
    dir.write(
        "V2__b.sql",
        "-- chatmigrate:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS a_id ON a (id);\n",
    );
    dir.write("V3__c.sql", "CREATE TABLE c (id int);\n");
    let m = dir.path().to_str().unwrap().to_string();
    let cmd = |args: &[&str]| {
        let mut full = vec!["--database-url", &db.url, "--migrations", &m];
        full.extend_from_slice(args);
        command(dir.path(), &full, &[])
    };
    for json in [false, true] {
        let f: &[&'static str] = if json { &["--format", "json"] } else { &[] };
        let with = |args: &[&'static str]| -> Vec<&'static str> { [f, args].concat() };
        quiet_ok("up --dry-run", &with_closed_stdout(cmd(&with(&["up", "--dry-run"]))));
        quiet_ok("lint", &with_closed_stdout(cmd(&with(&["lint"]))));
        quiet_ok("status", &with_closed_stdout(cmd(&with(&["status", "--exit-code"]))));
        quiet_ok("verify", &with_closed_stdout(cmd(&with(&["verify"]))));
    }
    // `up` writes a line per migration: the pipe is closed from the first,
    // and every migration is still applied.
    quiet_ok("up", &with_closed_stdout(cmd(&["up", "--target", "2"])));
    assert_eq!(db.versions(), vec![1, 2]);
    quiet_ok("up --format json", &with_closed_stdout(cmd(&["--format", "json", "up"])));
    assert_eq!(db.versions(), vec![1, 2, 3]);
    quiet_ok("repair", &with_closed_stdout(cmd(&["repair"])));
    quiet_ok("baseline", &with_closed_stdout(cmd(&["baseline", "--target", "3"])));
    quiet_ok("wait", &with_closed_stdout(cmd(&["wait"])));
    quiet_ok("completions", &with_closed_stdout(cmd(&["completions", "bash"])));
    quiet_ok("man", &with_closed_stdout(cmd(&["man"])));
    quiet_ok("new", &with_closed_stdout(cmd(&["new", "--sequential", "d"])));
    assert!(dir.path().join("V4__d.sql").exists(), "new made its file");
    quiet_ok("--help", &with_closed_stdout(cmd(&["--help"])));
    quiet_ok("--version", &with_closed_stdout(cmd(&["--version"])));
    // An error of the command itself is still the command's: exit 2, on stderr.
    dir.write("V5__e.sql", "CREATE TABLE e (id int;\n");
    let r = with_closed_stdout(cmd(&["up"]));
    assert_eq!(r.code, 2, "{r:#?}");
    assert!(r.stderr.starts_with("error: "), "{}", r.stderr);
}

#[test]
fn a_reader_that_stops_after_the_first_line_ends_a_long_output_quietly() {
    // 3,000 migrations: `status` writes far more than a pipe holds.
    let (db, dir) = (Db::new(), Dir::new());
    for v in 1..=3000 {
        dir.write(&format!("V{v}__table_{v}.sql"), format!("CREATE TABLE t{v} (id int);\n"));
    }
    let m = dir.path().to_str().unwrap();
    for args in [&["status"][..], &["up", "--dry-run"]] {
        let mut full = vec!["--database-url", &db.url, "--migrations", m];
        full.extend_from_slice(args);
        let (line, r) = first_line_then_closed(command(dir.path(), &full, &[]));
        assert!(!line.is_empty(), "{args:?}: a first line");
        quiet_ok(&format!("{args:?}"), &r);
    }
}
