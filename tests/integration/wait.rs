//! `chatmigrate wait` on the direct path: at once when the server answers,
//! through a server that is starting (connections refused, which `up` gives
//! up on after refused_timeout) or holds the connect, until `--timeout` with
//! what to check, and not at all on what waiting does not cure. A missing
//! database counts as ready. (Through the Data API while Aurora resumes:
//! docs.rs runs docs/aurora.md's example.)

use std::time::{Duration, Instant};

use crate::support::proxy::{Fault, Proxy};
use crate::support::*;

fn shown(port: impl std::fmt::Display, db: &str) -> String {
    format!("postgres@127.0.0.1:{port}/{db}")
}

#[test]
fn wait_returns_at_once_when_the_server_answers() {
    let db = Db::new();
    let tmp = tempfile::tempdir().unwrap();
    let r = run_in(tmp.path(), &["--database-url", &db.url, "wait"], &[]);
    r.assert_ok();
    assert_eq!(r.stdout, format!("{} accepts queries\n", shown(port(), &db.name)));
    assert_eq!(r.stderr, "");
    let j = run_in(tmp.path(), &["--format", "json", "--database-url", &db.url, "wait"], &[]);
    j.assert_ok();
    let v: serde_json::Value = serde_json::from_str(&j.stdout).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["database_exists"], true);
    assert_eq!(v["target"], shown(port(), &db.name));
    assert!(v["waited_ms"].as_u64().unwrap() < 5000, "{v}");
}

#[test]
fn wait_counts_a_missing_database_as_ready() {
    let name = Db::fresh_name();
    let _db = Db::adopt(&name);
    let tmp = tempfile::tempdir().unwrap();
    let url = with_db(&server_url(), &name);
    let r = run_in(tmp.path(), &["--database-url", &url, "wait"], &[]);
    r.assert_ok();
    assert_eq!(
        r.stdout,
        format!(
            "{}: the server accepts queries; database `{name}` does not exist yet (`chatmigrate up --create-database` creates it)\n",
            shown(port(), &name)
        )
    );
    let j = run_in(tmp.path(), &["--format", "json", "--database-url", &url, "wait"], &[]);
    let v: serde_json::Value = serde_json::from_str(&j.stdout).unwrap();
    assert_eq!(v["database_exists"], false, "{v}");
}

/// Nothing listens for 3 s (a server starting, e.g. a container): `wait`
/// retries the refused connections with a progress line each second and
/// returns once a query is answered.
#[test]
fn wait_rides_out_a_server_that_is_starting() {
    let db = Db::new();
    let proxy = Proxy::start_refusing(&[], Duration::from_secs(3));
    let tmp = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let r = run_in(tmp.path(), &["--database-url", &proxy.url(&db), "wait", "--timeout", "60s"], &[]);
    let took = started.elapsed();
    r.assert_ok();
    assert!(took >= Duration::from_secs(3) && took < Duration::from_secs(20), "{took:?}");
    let line = r.stdout.trim_end();
    let prefix = format!("{} accepts queries (after ", shown(proxy.port, &db.name));
    assert!(line.starts_with(&prefix) && line.ends_with(" s)"), "{line}");
    let waits: Vec<&str> = r.stderr.lines().collect();
    assert!(waits.len() >= 2, "{}", r.stderr);
    for w in &waits {
        assert!(
            w.starts_with("waiting for the database to accept connections: ") && w.ends_with(": connection refused)"),
            "{w}"
        );
    }
    // `up` gives a refused connection refused_timeout only (here 1 s): a
    // wrong port is more likely there than a server starting.
    let proxy = Proxy::start_refusing(&[], Duration::from_secs(30));
    let dir = Dir::new();
    dir.write("chatmigrate.toml", "[environments.x]\nrefused_timeout = \"1s\"\n");
    let started = Instant::now();
    let r = run_in(dir.path(), &["--env", "x", "--database-url", &proxy.url(&db), "up"], &[]);
    assert_eq!(r.code, 2, "{r:#?}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

/// A connect the server holds (a paused instance) is reported while held.
#[test]
fn wait_rides_out_a_held_connect() {
    let db = Db::new();
    let proxy = Proxy::start(&[Fault::Hold(Duration::from_millis(2500))]);
    let tmp = tempfile::tempdir().unwrap();
    let r = run_in(tmp.path(), &["--database-url", &proxy.url(&db), "wait"], &[]);
    r.assert_ok();
    assert!(
        r.stderr
            .lines()
            .any(|l| l.starts_with("waiting for the database to accept connections: ") && l.ends_with("(attempt 1: no answer yet)")),
        "{}",
        r.stderr
    );
}

#[test]
fn wait_gives_up_after_its_timeout_and_says_what_to_check() {
    let db = Db::new();
    let proxy = Proxy::start_refusing(&[], Duration::from_secs(120));
    let tmp = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let r = run_in(tmp.path(), &["--database-url", &proxy.url(&db), "wait", "--timeout", "2s"], &[]);
    let took = started.elapsed();
    assert!(took >= Duration::from_secs(2) && took < Duration::from_secs(6), "{took:?}");
    r.assert_error(&format!(
        "{} did not accept a query within 2 s (last: connection refused)",
        shown(proxy.port, &db.name)
    ));
    assert_eq!(
        r.hint(),
        format!(
            "hint: check that the server runs and listens on 127.0.0.1:{} (`chatmigrate -v wait` shows the target); raise --timeout to wait longer",
            proxy.port
        )
    );
    let j = run_in(
        tmp.path(),
        &["--format", "json", "--database-url", &proxy.url(&db), "wait", "--timeout", "1s"],
        &[],
    );
    assert_eq!(j.code, 2);
    let v: serde_json::Value = serde_json::from_str(&j.stdout).unwrap();
    assert_eq!(v["error"]["kind"], "connect", "{v}");
}

/// A wrong password or a bad flag stops at once: waiting would not help.
#[test]
fn wait_stops_at_once_on_what_waiting_does_not_cure() {
    let db = Db::new();
    let tmp = tempfile::tempdir().unwrap();
    let wrong = db.url.replace(&format!(":{}@", server_password()), ":wrong@");
    let started = Instant::now();
    let r = run_in(tmp.path(), &["--database-url", &wrong, "wait", "--timeout", "60s"], &[]);
    assert_eq!(r.code, 2, "{r:#?}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(r.error_line().contains("password authentication failed"), "{}", r.stderr);
    assert!(!r.output().contains("wrong"), "no password in the output: {}", r.output());
    run_in(tmp.path(), &["--database-url", &db.url, "wait", "--timeout", "0s"], &[])
        .assert_error("--timeout `0s` is out of range (1s to 24h)");
}
