//! The direct path's connection faults (AWS reference §7, 17–24), through
//! the scripted TCP fault proxy (`support::proxy`): a connection cut before
//! or after the server saw a migration, reconnects and the lock of the lost
//! session, a resuming instance's held connects, refused connections, EOF,
//! reset and FATAL answers at start-up.

use std::time::{Duration, Instant};

use crate::support::proxy::{Fault, Proxy};
use crate::support::*;

fn files(dir: &Dir) {
    dir.write("V1__a.sql", "CREATE TABLE a (id int);\n");
    dir.write(
        "V2__b.sql",
        "CREATE TABLE b (id int);\nSELECT 'cut-here-marker';\nCREATE TABLE b2 (id int);\n",
    );
    dir.write("V3__c.sql", "CREATE TABLE c (id int);\n");
}

/// `up` through a proxy with `script`, on a fresh database.
fn up_via(script: &[Fault], extra: &[&str]) -> (Db, Dir, Run, Proxy) {
    let (db, dir) = (Db::new(), Dir::new());
    files(&dir);
    let proxy = Proxy::start(script);
    let r = up_through(&proxy, &db, &dir, extra, &["up"]);
    (db, dir, r, proxy)
}

/// Runs `command` through `proxy` on `db` with the files of `dir`, with the
/// config lines `extra` (an environment of their own).
fn up_through(proxy: &Proxy, db: &Db, dir: &Dir, extra: &[&str], command: &[&str]) -> Run {
    let url = proxy.url(db);
    let mut args = vec!["--database-url", &url, "--migrations", dir.path().to_str().unwrap()];
    let conf_dir = Dir::new();
    let conf;
    if !extra.is_empty() {
        conf = conf_dir.write("chatmigrate.toml", format!("[environments.t]\n{}\n", extra.join("\n")));
        args.extend(["--config", conf.to_str().unwrap(), "--env", "t"]);
    }
    args.extend_from_slice(command);
    run_in(dir.path(), &args, &[])
}

// Scenario 23: the connection drops mid-migration.

#[test]
fn cut_before_the_server_sees_the_migration_reconnects_and_reruns_it() {
    let (db, _dir, r, _p) = up_via(&[Fault::CutBefore(b"cut-here-marker")], &[]);
    r.assert_ok();
    assert!(
        r.stdout
            .contains("connection lost (V2 b: connection closed); reconnecting (attempt 1) to re-read the history"),
        "{}",
        r.stdout
    );
    assert_eq!(db.versions(), vec![1, 2, 3]);
    assert!(db.table_exists("b2"));
}

#[test]
fn cut_after_commit_is_resolved_from_history_not_resent() {
    let (db, _dir, r, _p) = up_via(&[Fault::CutAfter(b"cut-here-marker")], &[]);
    r.assert_ok();
    assert!(r.stdout.contains("reconnecting (attempt 1)"), "{}", r.stdout);
    // V2 committed before the cut: the history says so and it is not re-run,
    // but this run applied it, and says so (once).
    assert_eq!(
        r.stdout
            .matches("applied V2 b (committed; its answer was lost with the connection, ")
            .count(),
        1,
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("\n3 migration(s) applied to "), "{}", r.stdout);
    assert_eq!(db.versions(), vec![1, 2, 3]);
    assert_eq!(db.scalar("SELECT count(*) FROM b"), "0", "V2 ran once");

    // The JSON report lists it among the applied ones.
    let (db, dir) = (Db::new(), Dir::new());
    files(&dir);
    let proxy = Proxy::start(&[Fault::CutAfter(b"cut-here-marker")]);
    let r = up_through(&proxy, &db, &dir, &[], &["--format", "json", "up"]);
    r.assert_ok();
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let applied: Vec<(i64, bool)> = v["applied"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["version"].as_i64().unwrap(), a["answer_lost"].as_bool().unwrap()))
        .collect();
    assert_eq!(applied, vec![(1, false), (2, true), (3, false)], "{}", r.stdout);
    assert_eq!(db.versions(), vec![1, 2, 3]);
}

/// The wait after a reconnect: the lost connection's server session still
/// runs its batch, and holds the migration lock, for two more seconds.
#[test]
fn after_a_reconnect_the_wait_for_the_lost_sessions_lock_is_reported() {
    let (db, dir) = (Db::new(), Dir::new());
    dir.write("V1__a.sql", "CREATE TABLE a (id int);\n");
    dir.write(
        "V2__b.sql",
        "CREATE TABLE b (id int);\nSELECT 'cut-here-marker';\nSELECT pg_sleep(2.5);\n",
    );
    dir.write("V3__c.sql", "CREATE TABLE c (id int);\n");
    let proxy = Proxy::start(&[Fault::CutAfter(b"cut-here-marker")]);
    let r = up_through(&proxy, &db, &dir, &[], &["up"]);
    r.assert_ok();
    // The holder named is this run's own lost session.
    let wait = r
        .stderr
        .lines()
        .find(|l| l.starts_with("waiting for the migration lock: 1 s (attempt "))
        .unwrap_or_else(|| panic!("{}", r.stderr));
    assert!(
        wait.contains(": held by pid ") && wait.contains("(application_name 'chatmigrate', "),
        "{wait}"
    );
    // The old session committed V2 while it held the lock.
    assert!(
        r.stdout
            .contains("applied V2 b (committed; its answer was lost with the connection, "),
        "{}",
        r.stdout
    );
    assert_eq!(db.versions(), vec![1, 2, 3]);
}

#[test]
fn a_connection_that_keeps_dropping_stops_after_three_reconnects() {
    let cut = Fault::CutBefore(b"cut-here-marker");
    let (db, _dir, r, _p) = up_via(&[cut, cut, cut, cut], &[]);
    r.assert_error("connection lost during V2 b: connection closed");
    assert!(r.stdout.contains("reconnecting (attempt 3)"), "{}", r.stdout);
    assert_eq!(db.versions(), vec![1]);
    assert!(!db.table_exists("b"), "V2 half-applied");
}

// Scenarios 17, 18, 22: a resuming instance's connects.

#[test]
fn held_connect_succeeds_within_the_connect_timeout() {
    let (db, _dir, r, _p) = up_via(&[Fault::Hold(Duration::from_millis(2500))], &["connect_timeout = \"5s\""]);
    r.assert_ok();
    assert_eq!(db.versions(), vec![1, 2, 3]);
    // Not a silent wait: reported while the attempt is still held.
    assert!(
        r.stderr.starts_with(
            "waiting for the database to accept connections: 1 s (attempt 1: no answer yet)\n\
             waiting for the database to accept connections: 2 s (attempt 1: no answer yet)\n"
        ),
        "{}",
        r.stderr
    );
}

// A refused connection: a writer that reboots, or nothing there at all.

#[test]
fn a_refused_reconnect_is_retried_within_resume_timeout() {
    let (db, dir) = (Db::new(), Dir::new());
    files(&dir);
    let proxy = Proxy::start(&[Fault::CutThenRefuse(b"cut-here-marker", Duration::from_millis(3000))]);
    // refused_timeout is for a server never reached; this run reached it.
    let r = up_through(&proxy, &db, &dir, &["refused_timeout = \"1s\""], &["up"]);
    r.assert_ok();
    assert!(
        r.stdout
            .contains("connection lost (V2 b: connection closed); reconnecting (attempt 1)"),
        "{}",
        r.stdout
    );
    // Refused for 3 s, past refused_timeout: retried, and said so.
    let waits: Vec<&str> = r.stderr.lines().filter(|l| l.starts_with("waiting for ")).collect();
    assert!(waits.len() >= 2, "{}", r.stderr);
    assert!(
        waits
            .iter()
            .all(|l| l.starts_with("waiting for the database to accept connections: ") && l.ends_with(": connection refused)")),
        "{}",
        r.stderr
    );
    assert_eq!(db.versions(), vec![1, 2, 3]);
}

#[test]
fn a_first_connect_refused_past_refused_timeout_stops_with_host_and_port() {
    let (db, dir) = (Db::new(), Dir::new());
    files(&dir);
    let proxy = Proxy::start_refusing(&[], Duration::from_secs(60));
    let started = Instant::now();
    let r = up_through(&proxy, &db, &dir, &["refused_timeout = \"2s\""], &["up"]);
    let took = started.elapsed();
    assert_eq!(r.code, 2, "{r:#?}");
    assert!(took >= Duration::from_secs(2) && took < Duration::from_secs(5), "{took:?}");
    let waits: Vec<&str> = r.stderr.lines().filter(|l| l.starts_with("waiting for ")).collect();
    assert!(!waits.is_empty(), "{}", r.stderr);
    assert!(
        waits
            .iter()
            .all(|l| l.starts_with("waiting for the database to accept connections: ") && l.ends_with(": connection refused)")),
        "{}",
        r.stderr
    );
    assert_eq!(
        r.error_line(),
        format!(
            "error: cannot connect to postgres@127.0.0.1:{}/{}: error connecting to server: Connection refused (os error 111)",
            proxy.port, db.name
        )
    );
    assert_eq!(
        r.hint(),
        format!("hint: nothing accepts connections on 127.0.0.1:{} (refused for 2 s): check host and port, and that the server is running; raise refused_timeout to wait longer for a server that is starting", proxy.port)
    );
    assert_eq!(proxy.accepted(), 0);
    assert_eq!(db.versions(), Vec::<i64>::new());
}

#[test]
fn a_first_connect_is_retried_while_the_server_starts() {
    let (db, dir) = (Db::new(), Dir::new());
    files(&dir);
    // Default refused_timeout (10 s): a server that starts within it is waited for.
    let proxy = Proxy::start_refusing(&[], Duration::from_millis(2000));
    let r = up_through(&proxy, &db, &dir, &[], &["up"]);
    r.assert_ok();
    assert!(r.stderr.contains(": connection refused)\n"), "{}", r.stderr);
    assert_eq!(db.versions(), vec![1, 2, 3]);
}

#[test]
fn held_connect_past_the_deadline_fails_cleanly() {
    let hold = Fault::Hold(Duration::from_secs(3));
    let (db, _dir, r, p) = up_via(&[hold; 10], &["connect_timeout = \"500ms\"", "resume_timeout = \"2s\""]);
    assert_eq!(r.code, 2, "{r:#?}");
    let first = r.error_line();
    assert!(first.contains("did not become available within 2 s"), "{first}");
    assert!(first.contains("no answer within 500 ms"), "{first}");
    assert!(r.hint().starts_with("hint: check that the cluster is available"), "{}", r.hint());
    assert!(p.accepted() >= 2, "retried: {}", p.accepted());
    assert!(r.stderr.contains("waiting for the database to accept connections"), "{}", r.stderr);
    assert_eq!(db.versions(), Vec::<i64>::new());
}

#[test]
fn eof_reset_and_starting_up_are_retried() {
    let script = [
        Fault::Eof,
        Fault::Reset,
        Fault::Fatal("57P03", "the database system is starting up"),
        Fault::Eof,
    ];
    let (db, _dir, r, p) = up_via(&script, &[]);
    r.assert_ok();
    assert_eq!(p.accepted(), 5, "four failed attempts, then one that worked");
    assert_eq!(db.versions(), vec![1, 2, 3]);
}

// Scenarios 19, 20: 28000 during resume is retried once; a lasting one fails.

#[test]
fn transient_28000_is_retried_once() {
    let f = Fault::Fatal(
        "28000",
        "no pg_hba.conf entry for host \"10.0.0.1\", user \"app\", database \"d\", SSL encryption",
    );
    let (db, _dir, r, _p) = up_via(&[f], &[]);
    r.assert_ok();
    assert_eq!(db.versions(), vec![1, 2, 3]);
}

#[test]
fn lasting_28000_fails_after_one_retry() {
    let f = Fault::Fatal("28000", "PAM authentication failed for user \"app\"");
    let (db, _dir, r, p) = up_via(&[f; 5], &[]);
    assert_eq!(r.code, 2, "{r:#?}");
    let first = r.error_line();
    assert!(
        first.ends_with("PAM authentication failed for user \"app\" (SQLSTATE 28000)"),
        "{first}"
    );
    assert_eq!(p.accepted(), 2, "one retry, not more");
    assert_eq!(db.versions(), Vec::<i64>::new());
}
