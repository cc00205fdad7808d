//! The connect-time probe: whether the history exists is asked without an
//! error (a first run on a new database raises no ERROR on the server), a
//! read-only role or database is refused at once for writes and works for
//! reads, and a replica (a real hot standby) serves the read-only commands
//! while `up` waits for a writer, as in a failover.

use std::time::{Duration, Instant};

use crate::support::dataapi::{DataApiServer, Options};
use crate::support::standby::Pair;
use crate::support::*;

fn two(dir: &Dir) {
    dir.write("V1__a.sql", "CREATE TABLE a (id int);\n");
    dir.write("V2__b.sql", "CREATE TABLE b (id int);\n");
}

/// Transactions that rolled back in `db` (every ERROR rolls one back), once
/// every session but the test's own has ended (a session's statistics are
/// flushed before it leaves the server's process list).
fn rollbacks(db: &Db) -> (i64, i64) {
    wait_until(10, "the runner's sessions to end", || {
        query_url(
            &server_url(),
            &format!("SELECT count(*) FROM pg_stat_activity WHERE datname = '{}'", db.name),
        )[0][0]
            .as_deref()
            == Some("0")
    });
    let r = query_url(
        &server_url(),
        &format!(
            "SELECT xact_rollback, xact_commit FROM pg_stat_database WHERE datname = '{}'",
            db.name
        ),
    );
    let n = |i: usize| r[0][i].as_deref().unwrap().parse::<i64>().unwrap();
    (n(0), n(1))
}

#[test]
fn a_first_run_on_a_new_database_raises_no_error() {
    let (db, dir) = (Db::new(), Dir::new());
    two(&dir);
    let s = cm(&db, &dir, &["status"]);
    s.assert_ok();
    assert!(
        s.stdout.ends_with("2 pending on ") || s.stdout.contains("\n2 pending on "),
        "{}",
        s.stdout
    );
    cm(&db, &dir, &["verify"]).assert_ok();
    cm(&db, &dir, &["lint", "--pending"]).assert_ok();
    cm(&db, &dir, &["up", "--dry-run"]).assert_ok();
    cm(&db, &dir, &["up"]).assert_ok();
    assert_eq!(db.versions(), vec![1, 2]);
    let (rolled_back, committed) = rollbacks(&db);
    assert!(committed > 0, "statistics are collected");
    assert_eq!(
        rolled_back, 0,
        "an ERROR on the server (e.g. reading a history table that does not exist)"
    );
}

#[test]
fn a_first_run_through_the_data_api_raises_no_error() {
    let api = DataApiServer::start(&server_url(), Options::default());
    let (db, dir, conf) = (Db::new(), Dir::new(), Dir::new());
    two(&dir);
    let path = conf.write("chatmigrate.toml", format!("[environments.aurora]\n{}", api.environment(&db.name)));
    let run = |args: &[&str]| {
        let mut full = vec![
            "--config",
            path.to_str().unwrap(),
            "--env",
            "aurora",
            "--migrations",
            dir.path().to_str().unwrap(),
        ];
        full.extend_from_slice(args);
        run_in(conf.path(), &full, &AWS_ENV)
    };
    run(&["status"]).assert_ok();
    run(&["up"]).assert_ok();
    assert_eq!(db.versions(), vec![1, 2]);
    let (rolled_back, committed) = rollbacks(&db);
    assert!(committed > 0, "statistics are collected");
    assert_eq!(
        rolled_back, 0,
        "an ERROR on the server (e.g. reading a history table that does not exist)"
    );

    // A read-only database through the Data API: reads work, writes stop at once.
    dir.write("V3__c.sql", "CREATE TABLE c (id int);\n");
    query_url(
        &server_url(),
        &format!("ALTER DATABASE {} SET default_transaction_read_only = on", db.name),
    );
    let s = run(&["status"]);
    s.assert_ok();
    assert!(s.stdout.contains("\n2 applied, 1 pending on "), "{}", s.stdout);
    let started = Instant::now();
    let r = run(&["up"]);
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    r.assert_error(&format!(
        "rds-data:chat/{}: the session is read-only (default_transaction_read_only = on, set for database {}); migrations need a session that may write",
        db.name, db.name
    ));
    assert_eq!(db.versions(), vec![1, 2]);
    query_url(
        &server_url(),
        &format!("ALTER DATABASE {} RESET default_transaction_read_only", db.name),
    );
}

/// A login role of its own (dropped at the end) that reads `db`'s history.
struct Role {
    name: String,
    url: String,
    db: String,
}

impl Role {
    fn read_only(db: &Db) -> Role {
        let name = format!("{}_ro", db.name);
        query_url(
            &server_url(),
            &format!("CREATE ROLE {name} LOGIN PASSWORD 'ro-secret'; ALTER ROLE {name} SET default_transaction_read_only = on"),
        );
        db.exec(&format!("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {name}"));
        let url = db
            .url
            .replacen(&format!("postgres:{}@", server_password()), &format!("{name}:ro-secret@"), 1);
        assert_ne!(url, db.url);
        Role {
            name,
            url,
            db: db.name.clone(),
        }
    }

    fn cm(&self, dir: &Dir, args: &[&str]) -> Run {
        let mut full = vec!["--database-url", &self.url, "--migrations", dir.path().to_str().unwrap()];
        full.extend_from_slice(args);
        run_in(dir.path(), &full, &[])
    }
}

impl Drop for Role {
    fn drop(&mut self) {
        let db = Db::adopt(&self.db);
        db.exec(&format!("DROP OWNED BY {}", self.name));
        std::mem::forget(db);
        query_url(&server_url(), &format!("DROP ROLE IF EXISTS {}", self.name));
    }
}

#[test]
fn a_read_only_role_reads_and_is_refused_writes_at_once() {
    let (db, dir) = (Db::new(), Dir::new());
    two(&dir);
    cm(&db, &dir, &["up"]).assert_ok();
    dir.write("V3__c.sql", "CREATE TABLE c (id int);\n");
    let role = Role::read_only(&db);

    // The read-only commands work on a read-only session.
    let s = role.cm(&dir, &["status"]);
    s.assert_ok();
    assert!(s.stdout.contains("\n2 applied, 1 pending on "), "{}", s.stdout);
    role.cm(&dir, &["verify"]).assert_ok();
    role.cm(&dir, &["lint", "--pending"]).assert_ok();
    let d = role.cm(&dir, &["up", "--dry-run"]);
    d.assert_ok();
    assert!(d.stdout.contains("\n-- V3 c (one transaction)\n"), "{}", d.stdout);

    // Writing is refused at once (not taken for a failover), naming the setting.
    let target = format!("{}@127.0.0.1:{}/{}", role.name, port(), db.name);
    for args in [&["up"][..], &["repair"], &["baseline", "--target", "3", "--allow-existing"]] {
        let started = Instant::now();
        let r = role.cm(&dir, args);
        assert!(started.elapsed() < Duration::from_secs(5), "{args:?}: {:?}", started.elapsed());
        r.assert_error(&format!(
            "{target}: the session is read-only (default_transaction_read_only = on, set for role {}); migrations need a session that may write",
            role.name
        ));
        assert_eq!(
            r.hint(),
            format!(
                "hint: connect as a role that may write, or run `ALTER ROLE \"{}\" RESET default_transaction_read_only`; `status`, `verify`, `lint --pending` and `up --dry-run` work on a read-only session",
                role.name
            )
        );
        assert!(!r.stderr.contains("waiting for"), "{}", r.stderr);
        assert!(!r.output().contains("ro-secret"));
    }
    assert_eq!(db.versions(), vec![1, 2]);
    assert!(!db.table_exists("c"));
}

#[test]
fn a_read_only_database_is_refused_writes_and_named() {
    let (db, dir) = (Db::new(), Dir::new());
    two(&dir);
    query_url(
        &server_url(),
        &format!("ALTER DATABASE {} SET default_transaction_read_only = on", db.name),
    );
    let r = cm(&db, &dir, &["up"]);
    r.assert_error(&format!(
        "postgres@127.0.0.1:{}/{}: the session is read-only (default_transaction_read_only = on, set for database {}); migrations need a session that may write",
        port(),
        db.name,
        db.name
    ));
    assert!(
        r.hint().starts_with(&format!(
            "hint: run `ALTER DATABASE \"{}\" RESET default_transaction_read_only`",
            db.name
        )),
        "{}",
        r.hint()
    );
    cm(&db, &dir, &["status"]).assert_ok();
    query_url(
        &server_url(),
        &format!("ALTER DATABASE {} RESET default_transaction_read_only", db.name),
    );
    cm(&db, &dir, &["up"]).assert_ok();
    assert_eq!(db.versions(), vec![1, 2]);
}

/// `up`/`status` through the binary against a URL, with the files of `dir`
/// and the config lines `extra`.
fn run_url(url: &str, dir: &Dir, extra: &str, args: &[&str]) -> Run {
    let conf_dir = Dir::new();
    let conf = conf_dir.write("chatmigrate.toml", format!("[environments.t]\n{extra}\n"));
    let mut full = vec![
        "--config",
        conf.to_str().unwrap(),
        "--env",
        "t",
        "--database-url",
        url,
        "--migrations",
        dir.path().to_str().unwrap(),
    ];
    full.extend_from_slice(args);
    run_in(dir.path(), &full, &[])
}

#[test]
fn a_replica_serves_reads_and_up_waits_for_a_writer_until_failover() {
    let pair = Pair::start();
    let files = Dir::new();
    two(&files);
    query_url(&Pair::url(pair.primary, "postgres"), "CREATE DATABASE app");
    let (primary, standby) = (Pair::url(pair.primary, "app"), Pair::url(pair.standby, "app"));
    run_url(&primary, &files, "", &["up"]).assert_ok();
    files.write("V3__c.sql", "CREATE TABLE c (id int);\n");
    pair.wait_replayed();
    assert_eq!(
        query_url(&standby, "SELECT pg_is_in_recovery()::text")[0][0].as_deref(),
        Some("true")
    );

    // Reads work on the replica.
    let s = run_url(&standby, &files, "", &["status"]);
    s.assert_ok();
    assert!(s.stdout.contains("\n2 applied, 1 pending on "), "{}", s.stdout);
    run_url(&standby, &files, "", &["verify"]).assert_ok();
    run_url(&standby, &files, "", &["lint", "--pending"]).assert_ok();
    let d = run_url(&standby, &files, "", &["up", "--dry-run"]);
    d.assert_ok();
    assert!(d.stdout.contains("\n-- V3 c (one transaction)\n"), "{}", d.stdout);

    // Writes wait for a writer (a failover), within resume_timeout.
    let target = format!("postgres@127.0.0.1:{}/app", pair.standby);
    let r = run_url(&standby, &files, "resume_timeout = \"2s\"", &["up"]);
    r.assert_error(&format!(
        "{target} is a read-only replica (in recovery) and no writer took its place within 2 s"
    ));
    assert_eq!(
        r.hint(),
        "hint: point the environment at the writer (for Aurora the cluster endpoint, not the reader endpoint); `status`, `verify`, `lint --pending` and `up --dry-run` work on a read-only session"
    );
    assert!(
        r.stderr.contains("waiting for a writer: ") && r.stderr.contains(": the server is a replica in recovery)\n"),
        "{}",
        r.stderr
    );

    // The standby is promoted while `up` waits: `up` goes on there.
    let conf_dir = Dir::new();
    let conf = conf_dir.write("chatmigrate.toml", "[environments.t]\nresume_timeout = \"30s\"\n");
    let child = spawn_in(
        files.path(),
        &[
            "--config",
            conf.to_str().unwrap(),
            "--env",
            "t",
            "--database-url",
            &standby,
            "--migrations",
            files.path().to_str().unwrap(),
            "up",
        ],
    );
    std::thread::sleep(Duration::from_millis(1500));
    pair.promote();
    let r = finish(child);
    r.assert_ok();
    assert!(r.stdout.contains("applied V3 c ("), "{}", r.stdout);
    assert!(r.stderr.contains("waiting for a writer: "), "{}", r.stderr);
    assert_eq!(
        query_url(
            &standby,
            "SELECT string_agg(version::text, ',' ORDER BY version) FROM chatmigrate_history"
        )[0][0]
            .as_deref(),
        Some("1,2,3")
    );
}
