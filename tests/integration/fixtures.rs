//! Tests of the test fixtures themselves (`support::db`, `support::dir`):
//! a failed test leaves no database behind, `CHATMIGRATE_TEST_KEEP=1` keeps
//! it (and its directory) and says where, and the databases of a test run
//! that died are dropped by the next one. Each runs this test binary again,
//! on [`fails_on_purpose`] alone.

use std::process::Command;
use std::sync::{Mutex, MutexGuard};

use crate::support::*;

/// Set by the tests below for the child run: the file to write the failing
/// test's database name and directory into.
const FAIL_ENV: &str = "CHATMIGRATE_TEST_FAIL_ON_PURPOSE";

/// Makes a database and a directory, writes their names to the file named
/// by `CHATMIGRATE_TEST_FAIL_ON_PURPOSE`, and fails; without the variable it
/// does nothing.
#[test]
#[ignore = "run by the fixtures tests, with CHATMIGRATE_TEST_FAIL_ON_PURPOSE set"]
fn fails_on_purpose() {
    let Ok(out) = std::env::var(FAIL_ENV) else { return };
    let (db, dir) = (Db::new(), Dir::new());
    db.exec("CREATE TABLE evidence (id int)");
    dir.write("V1__a.sql", "SELECT 1;\n");
    std::fs::write(out, format!("{}\n{}\n", db.name, dir.path().display())).unwrap();
    panic!("failing on purpose");
}

/// One fixtures test at a time, after this process's own sweep: a child
/// run sweeps the databases of every test process that has ended, the other
/// tests' children included.
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    let guard = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let _ = Db::fresh_name();
    guard
}

/// Runs `fails_on_purpose` in a child test process with `env`; returns its
/// stderr and the database name and directory it made.
fn run_failing(env: &[(&str, &str)]) -> (String, String, String) {
    let out = tempfile::NamedTempFile::new().unwrap();
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args(["fixtures::fails_on_purpose", "--exact", "--ignored", "--nocapture"])
        .env(FAIL_ENV, out.path())
        .env_remove(crate::support::db::KEEP_ENV);
    for (k, v) in env {
        c.env(k, v);
    }
    let child = c.output().unwrap();
    let stderr = String::from_utf8_lossy(&child.stderr).into_owned();
    assert!(!child.status.success(), "the child test passed: {stderr}");
    assert!(stderr.contains("failing on purpose"), "{stderr}");
    let names = std::fs::read_to_string(out.path()).unwrap();
    let mut lines = names.lines().map(str::to_string);
    (stderr, lines.next().unwrap(), lines.next().unwrap())
}

fn database_exists(name: &str) -> bool {
    !query_url(&server_url(), &format!("SELECT 1 FROM pg_database WHERE datname = '{name}'")).is_empty()
}

#[test]
fn a_failed_tests_database_and_directory_are_removed() {
    let _serial = serial();
    let (_, db, dir) = run_failing(&[]);
    assert!(!database_exists(&db), "{db} is left behind");
    assert!(!std::path::Path::new(&dir).exists(), "{dir} is left behind");
}

#[test]
fn keep_keeps_a_failed_tests_database_and_says_so() {
    let _serial = serial();
    let (stderr, db, dir) = run_failing(&[("CHATMIGRATE_TEST_KEEP", "1")]);
    let kept = Db::adopt(&db);
    assert!(database_exists(&db), "{db} was dropped");
    assert!(kept.table_exists("evidence"));
    assert!(
        stderr.contains(&format!("CHATMIGRATE_TEST_KEEP: kept database {db} of the failed test")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("CHATMIGRATE_TEST_KEEP: kept directory {dir} of the failed test")),
        "{stderr}"
    );
    assert!(std::path::Path::new(&dir).join("V1__a.sql").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_databases_of_a_run_that_died_are_dropped_by_the_next() {
    let _serial = serial();
    // A pid that no longer runs: a child that has exited.
    let mut gone = Command::new(std::env::current_exe().unwrap())
        .args(["--list", "--exact", "no such test"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    gone.wait().unwrap();
    let left = format!("cmt_{}_0_0", gone.id());
    query_url(&server_url(), &format!("CREATE DATABASE {left}"));
    let _guard = Db::adopt(&left);
    let (stderr, _, _) = run_failing(&[]);
    assert!(!database_exists(&left), "{left} survived the next run");
    assert!(
        stderr.contains("database(s) left by test runs that ended without cleaning up: ") && stderr.contains(&left),
        "{stderr}"
    );
}
