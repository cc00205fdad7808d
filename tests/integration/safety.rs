//! Concurrency and failure: the migration lock, CONCURRENTLY builds next to
//! waiting runners, lock_timeout retries, invalid indexes, signals.

use std::time::{Duration, Instant};

use crate::support::*;

/// The shipped chat schema plus `n` generated migrations (every third one a
/// no-transaction file with CONCURRENTLY builds).
pub fn chat_plus_generated(dir: &Dir, n: usize) {
    generated(dir, n, None)
}

/// Like `chat_plus_generated`; with `sleep` (seconds), every generated
/// migration also spends that long in `pg_sleep` steps between its
/// statements, so a kill lands inside migrations rather than between runs.
pub fn generated(dir: &Dir, n: usize, sleep: Option<&str>) {
    for (name, body) in chatmigrate::__private::migration::embedded_files() {
        dir.write(name, body);
    }
    let p = sleep.map(|s| format!("SELECT pg_sleep({s});\n")).unwrap_or_default();
    for i in 0..n {
        let v = 100 + i;
        if i % 3 == 0 {
            dir.write(
                &format!("V{v}__n{v}.sql"),
                format!(
                    "-- chatmigrate:no-transaction\nCREATE TABLE IF NOT EXISTS n{v} (id int, v int);\n{p}CREATE INDEX CONCURRENTLY IF NOT EXISTS n{v}_a ON n{v} (id);\n{p}CREATE INDEX CONCURRENTLY IF NOT EXISTS n{v}_b ON n{v} (v);\n"
                ),
            );
        } else {
            dir.write(
                &format!("V{v}__c{v}.sql"),
                format!("CREATE TABLE c{v} (id int);\n{p}CREATE INDEX c{v}_id ON c{v} (id);\nINSERT INTO c{v} SELECT generate_series(1, 200);\n"),
            );
        }
    }
}

#[test]
fn eight_concurrent_runners_apply_every_migration_exactly_once() {
    let dir = Dir::new();
    chat_plus_generated(&dir, 50);
    let name = Db::fresh_name();
    let db = Db::adopt(&name);
    let m = dir.path().to_str().unwrap();
    let children: Vec<_> = (0..8)
        .map(|_| {
            spawn_in(
                dir.path(),
                &["--database-url", &db.url, "--migrations", m, "up", "--create-database"],
            )
        })
        .collect();
    let runs: Vec<Run> = children.into_iter().map(finish).collect();
    for r in &runs {
        assert_eq!(r.code, 0, "{r:#?}");
    }
    let history = db.history();
    assert_eq!(history.len(), 54);
    assert!(history.iter().all(|(_, s, _)| s == "applied"), "{history:?}");
    // Each version was applied by exactly one runner.
    let all: String = runs.iter().map(|r| r.stdout.clone()).collect();
    for (v, _, _) in &history {
        let n = all.lines().filter(|l| l.starts_with(&format!("applied V{v} "))).count();
        assert_eq!(n, 1, "V{v} applied {n} times:\n{all}");
    }
    assert_eq!(db.scalar("SELECT count(*) FROM pg_index WHERE NOT indisvalid"), "0");
    // Sessions end (and release their locks) right after the processes exit.
    wait_until(5, "advisory locks to be released", || {
        db.scalar("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())") == "0"
    });
}

#[test]
fn a_waiting_runner_does_not_block_a_concurrently_build() {
    let (db, dir) = (Db::new(), Dir::new());
    db.exec("CREATE TABLE big (id int); INSERT INTO big SELECT generate_series(1, 20000);");
    dir.write(
        "V1__slow.sql",
        "-- chatmigrate:no-transaction\nSELECT pg_sleep(1.5);\nCREATE INDEX CONCURRENTLY IF NOT EXISTS big_id ON big (id);\nSELECT pg_sleep(0.5);\n",
    );
    let m = dir.path().to_str().unwrap();
    let started = Instant::now();
    let first = spawn_in(dir.path(), &["--database-url", &db.url, "--migrations", m, "up"]);
    wait_until(10, "first runner to hold the lock", || {
        db.scalar("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())") == "1"
    });
    // The second runner polls for the lock while the first builds the index.
    let second = spawn_in(
        dir.path(),
        &["--database-url", &db.url, "--migrations", m, "up", "--lock-wait", "30s"],
    );
    let first = finish(first);
    let took = started.elapsed();
    first.assert_ok();
    assert!(took < Duration::from_secs(10), "the build waited on the waiting runner: {took:?}");
    let second = finish(second);
    second.assert_ok();
    assert!(second.stdout.starts_with("nothing to apply"), "{}", second.stdout);
    assert_eq!(
        db.scalar("SELECT indisvalid::text FROM pg_index WHERE indexrelid = 'big_id'::regclass"),
        "true"
    );
}

#[test]
fn lock_wait_timeout_names_the_holder() {
    let (db, dir) = (Db::new(), Dir::new());
    dir.write("V1__a.sql", "CREATE TABLE a (id int);\n");
    let key = chatmigrate::__private::dialect::ToolSql::new(
        &chatmigrate::__private::config::HistoryTable {
            schema: None,
            table: "chatmigrate_history".into(),
        },
        &db.name,
    )
    .lock_key();
    let holder = Holder::hold(&db.url, "holder_test", &format!("SELECT pg_advisory_lock({key})"), None);
    let pid = db.scalar("SELECT pid FROM pg_stat_activity WHERE application_name = 'holder_test'");
    let started = Instant::now();
    let r = cm(&db, &dir, &["up", "--lock-wait", "1s"]);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(r.code, 2, "{r:#?}");
    let first = r.error_line();
    assert!(
        first.starts_with(&format!("error: could not take the migration lock within 1 s; held by pid {pid} (application_name 'holder_test', client 127.0.0.1/32, connected since 20")),
        "{first}"
    );
    assert_eq!(r.hint(), "hint: another chatmigrate is running; wait for it, or raise --lock-wait");
    assert!(!db.table_exists("a"));
    drop(holder);
    cm(&db, &dir, &["up"]).assert_ok();
}

fn config_with_retries(db: &Db, dir: &Dir, retries: u32) -> String {
    let cfg = dir.path().join("cfg.toml");
    std::fs::write(
        &cfg,
        format!(
            "[environments.t]\nurl = \"{}\"\nmigrations = [\"m\"]\nlock_retries = {retries}\n",
            db.url
        ),
    )
    .unwrap();
    cfg.display().to_string()
}

#[test]
fn lock_timeout_is_retried_then_names_the_blocker() {
    let (db, dir) = (Db::new(), Dir::new());
    db.exec("CREATE TABLE a (id int)");
    dir.write(
        "m/V1__alter.sql",
        "-- chatmigrate:lock-timeout 200ms\nALTER TABLE a ADD COLUMN b int;\n",
    );
    let cfg = config_with_retries(&db, &dir, 2);
    let holder = Holder::hold(&db.url, "blocker_test", "BEGIN; LOCK TABLE a IN ACCESS EXCLUSIVE MODE;", None);
    let pid = db.scalar("SELECT pid FROM pg_stat_activity WHERE application_name = 'blocker_test'");
    let r = run_in(dir.path(), &["--config", &cfg, "--env", "t", "up"], &[]);
    assert_eq!(r.code, 2, "{r:#?}");
    assert!(
        r.stdout
            .contains("V1 alter: lock_timeout on attempt 1 of 3; rolled back, retrying in "),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("V1 alter: lock_timeout on attempt 2 of 3;"), "{}", r.stdout);
    assert_eq!(
        r.stderr.lines().next().unwrap(),
        format!(
            "error: {}:2:1: version 1 could not get its locks after 3 attempt(s) (lock_timeout); blocking: pid {pid} (blocker_test, idle in transaction) holds AccessExclusiveLock on a: BEGIN; LOCK TABLE a IN ACCESS EXCLUSIVE MODE;",
            dir.path().join("m/V1__alter.sql").display()
        )
    );
    assert!(db.versions().is_empty());
    assert_eq!(
        db.scalar("SELECT count(*) FROM information_schema.columns WHERE table_name = 'a'"),
        "1"
    );
    drop(holder);
    // A blocker that goes away during the retries: the migration gets through.
    let _holder = Holder::hold(
        &db.url,
        "brief_blocker",
        "BEGIN; LOCK TABLE a IN ACCESS EXCLUSIVE MODE;",
        Some(Duration::from_millis(400)),
    );
    let r = run_in(dir.path(), &["--config", &cfg, "--env", "t", "up"], &[]);
    r.assert_ok();
    assert!(r.stdout.contains("lock_timeout on attempt 1 of 3"), "{}", r.stdout);
    assert_eq!(db.versions(), vec![1]);
}

#[test]
fn invalid_index_from_a_failed_concurrently_build_is_dropped_before_the_retry() {
    let (db, dir) = (Db::new(), Dir::new());
    db.exec("CREATE TABLE t (v int); INSERT INTO t VALUES (1), (1), (2);");
    dir.write(
        "V1__uniq.sql",
        "-- chatmigrate:no-transaction\nCREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS t_v ON t (v);\n",
    );
    let r = cm(&db, &dir, &["up"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("could not create unique index \"t_v\""), "{}", r.stderr);
    assert_eq!(
        db.scalar("SELECT indisvalid::text FROM pg_index WHERE indexrelid = 't_v'::regclass"),
        "false"
    );
    assert_eq!(db.history(), vec![(1, "failed".into(), 0)]);
    db.exec("DELETE FROM t WHERE ctid IN (SELECT ctid FROM t WHERE v = 1 LIMIT 1)");
    let r = cm(&db, &dir, &["up"]);
    r.assert_ok();
    assert!(
        r.stdout
            .contains("V1: dropped invalid index public.t_v left by an earlier failed CONCURRENTLY build; building it again"),
        "{}",
        r.stdout
    );
    assert_eq!(
        db.scalar("SELECT indisvalid::text FROM pg_index WHERE indexrelid = 't_v'::regclass"),
        "true"
    );
    assert_eq!(db.history(), vec![(1, "applied".into(), 1)]);
}

#[test]
fn sigint_during_a_transactional_migration_rolls_it_back() {
    let (db, dir) = (Db::new(), Dir::new());
    dir.write("V1__a.sql", "CREATE TABLE a (id int);\n");
    dir.write(
        "V2__slow.sql",
        "CREATE TABLE b (id int);\nSELECT pg_sleep(20);\nCREATE TABLE b2 (id int);\n",
    );
    dir.write("V3__c.sql", "CREATE TABLE c (id int);\n");
    let m = dir.path().to_str().unwrap();
    let child = spawn_in(dir.path(), &["--database-url", &db.url, "--migrations", m, "up"]);
    wait_until(10, "the sleep to run", || {
        db.scalar("SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(20)%' AND pid <> pg_backend_pid()") == "1"
    });
    let started = Instant::now();
    signal(&child, "INT");
    let r = finish(child);
    assert!(started.elapsed() < Duration::from_secs(5), "did not stop promptly");
    assert_eq!(r.code, 130, "{r:#?}");
    assert_eq!(
        r.stderr.lines().next().unwrap(),
        "error: interrupted by SIGINT: 1 migration(s) applied in this run; V2 slow was rolled back; 1 later migration(s) not started"
    );
    assert!(r.stdout.contains("applied V1 a"));
    assert_eq!(db.versions(), vec![1]);
    assert!(!db.table_exists("b") && !db.table_exists("c"));
    wait_until(5, "the lock to be released", || {
        db.scalar("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())") == "0"
    });
}

#[test]
fn sigterm_during_a_no_transaction_migration_finishes_the_statement_and_records_progress() {
    let (db, dir) = (Db::new(), Dir::new());
    dir.write("V1__nt.sql", "-- chatmigrate:no-transaction\nCREATE TABLE IF NOT EXISTS x (id int);\nSELECT pg_sleep(1);\nCREATE TABLE IF NOT EXISTS y (id int);\n");
    let m = dir.path().to_str().unwrap();
    let child = spawn_in(dir.path(), &["--database-url", &db.url, "--migrations", m, "up"]);
    wait_until(10, "the sleep to run", || {
        db.scalar("SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(1)%' AND datname = current_database() AND pid <> pg_backend_pid()") == "1"
    });
    signal(&child, "TERM");
    let r = finish(child);
    assert_eq!(r.code, 143, "{r:#?}");
    // A statement that runs on past a second after the signal (a loaded
    // machine) is waited for with a line that says so, before the error.
    let mut lines = r
        .stderr
        .lines()
        .skip_while(|l| l.starts_with("waiting for V1 statement 2 of 3 to finish: "));
    assert_eq!(
        lines.next().unwrap(),
        "error: interrupted by SIGTERM: 0 migration(s) applied in this run; V1 nt stopped after statement 2 of 3 (recorded as partial; `up` resumes it); 0 later migration(s) not started"
    );
    assert_eq!(db.history(), vec![(1, "partial".into(), 2)]);
    assert!(db.table_exists("x") && !db.table_exists("y"));
    let s = cm(&db, &dir, &["status"]);
    assert!(
        s.stdout.contains("partial") && s.stdout.contains("2 of 3 statements done"),
        "{}",
        s.stdout
    );
    let r = cm(&db, &dir, &["up"]);
    r.assert_ok();
    assert!(r.stdout.contains("resuming V1 nt at statement 3 of 3"), "{}", r.stdout);
    assert!(db.table_exists("y"));
}

#[test]
fn sigint_during_a_long_no_transaction_statement_says_what_it_waits_for() {
    let (db, dir) = (Db::new(), Dir::new());
    dir.write(
        "V1__nt.sql",
        "-- chatmigrate:no-transaction\nCREATE TABLE IF NOT EXISTS x (id int);\nSELECT pg_sleep(2.5);\nCREATE TABLE IF NOT EXISTS y (id int);\n",
    );
    let m = dir.path().to_str().unwrap();
    let child = spawn_in(dir.path(), &["--database-url", &db.url, "--migrations", m, "up"]);
    wait_until(10, "the sleep to run", || {
        db.scalar("SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(2.5)%' AND datname = current_database() AND pid <> pg_backend_pid()") == "1"
    });
    signal(&child, "INT");
    let r = finish(child);
    assert_eq!(r.code, 130, "{r:#?}");
    // At once, then while the statement runs on: what it waits for.
    assert!(
        r.stdout
            .contains("SIGINT: stopping after the current statement: V1 statement 2 of 3 (`SELECT pg_sleep(2.5)`)\n"),
        "{}",
        r.stdout
    );
    assert!(
        r.stderr
            .starts_with("waiting for V1 statement 2 of 3 to finish: 1 s (SIGINT: stopping after it)\n"),
        "{}",
        r.stderr
    );
    assert_eq!(
        r.error_line(),
        "error: interrupted by SIGINT: 0 migration(s) applied in this run; V1 nt stopped after statement 2 of 3 (recorded as partial; `up` resumes it); 0 later migration(s) not started"
    );
    assert_eq!(db.history(), vec![(1, "partial".into(), 2)]);
    assert!(!db.table_exists("y"));
}

#[test]
fn of_concurrent_create_database_runners_only_the_creator_says_it_created_it() {
    let name = Db::fresh_name();
    let db = Db::adopt(&name);
    let dir = Dir::new();
    dir.write("V1__a.sql", "CREATE TABLE a (id int);\n");
    let m = dir.path().to_str().unwrap();
    let children: Vec<_> = (0..6)
        .map(|i| {
            let mut args = vec!["--database-url", db.url.as_str(), "--migrations", m];
            if i % 2 == 0 {
                args.extend(["--format", "json"]);
            }
            args.extend(["up", "--create-database"]);
            spawn_in(dir.path(), &args)
        })
        .collect();
    let runs: Vec<Run> = children.into_iter().map(finish).collect();
    let mut said = 0;
    for (i, r) in runs.iter().enumerate() {
        r.assert_ok();
        if i % 2 == 0 {
            let v: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap();
            said += usize::from(v["created_database"] == serde_json::json!(true));
        } else {
            said += r.stdout.matches(&format!("created database {name}\n")).count();
        }
    }
    assert_eq!(said, 1, "{runs:#?}");
    assert_eq!(db.versions(), vec![1]);
}
