//! One migration lock across transports (issue 11 point 2): direct and
//! Data API runners on one database exclude each other, name the holder
//! while they wait, wait for a transaction a killed Data API runner left
//! open, and take a killed direct runner's lease as soon as the server has
//! ended its session.

use std::time::{Duration, Instant};

use crate::support::both::Both;
use crate::support::dataapi::Options;
use crate::support::*;

/// The lease row: (owner set, server pid of a session holder, holder).
fn lease(db: &Db) -> Option<(Option<String>, Option<String>, Option<String>)> {
    if !db.table_exists("chatmigrate_history_lease") {
        return None;
    }
    db.query("SELECT owner, pid::text, holder FROM chatmigrate_history_lease WHERE name = 'migrations'")
        .into_iter()
        .next()
        .map(|r| (r[0].clone(), r[1].clone(), r[2].clone()))
}

/// Is the lease held by the chatmigrate process `pid`?
fn held_by(db: &Db, pid: u32) -> bool {
    lease(db)
        .is_some_and(|(owner, _, holder)| owner.is_some() && holder.is_some_and(|h| h.contains(&format!("chatmigrate process {pid},"))))
}

/// How many times each (version, statement) of `runs_log` ran.
fn runs(db: &Db) -> Vec<(i64, i64, i64)> {
    db.query("SELECT v, stmt, count(*) FROM runs_log GROUP BY v, stmt ORDER BY v, stmt")
        .into_iter()
        .map(|r| {
            let n = |i: usize| r[i].as_ref().unwrap().parse::<i64>().unwrap();
            (n(0), n(1), n(2))
        })
        .collect()
}

#[test]
fn four_direct_and_four_data_api_runners_apply_each_migration_once() {
    let (both, db, dir) = (Both::start(Options::default()), Db::new(), Dir::new());
    for (name, body) in chatmigrate::__private::migration::embedded_files() {
        dir.write(name, body);
    }
    db.exec("CREATE TABLE runs_log (v bigint, stmt int)");
    let mut no_tx = Vec::new();
    for i in 0..60i64 {
        let v = 100 + i;
        if i % 5 == 2 {
            no_tx.push(v);
            // Every statement is its own autocommit call: sent twice, it
            // would log twice.
            dir.write(
                &format!("V{v}__n{v}.sql"),
                format!(
                    "-- chatmigrate:no-transaction\nINSERT INTO runs_log VALUES ({v}, 1);\nCREATE TABLE IF NOT EXISTS n{v} (id int);\nCREATE INDEX CONCURRENTLY IF NOT EXISTS n{v}_id ON n{v} (id);\nINSERT INTO runs_log VALUES ({v}, 4);\n"
                ),
            );
        } else {
            dir.write(
                &format!("V{v}__c{v}.sql"),
                format!(
                    "INSERT INTO runs_log VALUES ({v}, 1);\nCREATE TABLE c{v} (id int);\nINSERT INTO c{v} SELECT generate_series(1, 50);\n"
                ),
            );
        }
    }
    both.config(&db.name, &db.url, &["lock_wait = \"300s\""]);
    let children: Vec<_> = (0..8)
        .map(|i| both.spawn(&db.name, if i % 2 == 0 { "direct" } else { "aurora" }, &dir, &["up"]))
        .collect();
    let runs_out: Vec<Run> = children.into_iter().map(finish).collect();
    for r in &runs_out {
        assert_eq!(r.code, 0, "{r:#?}");
    }
    let all: String = runs_out.iter().map(|r| r.stdout.clone()).collect();
    let versions: Vec<i64> = (1..=4).chain(100..160).collect();
    for v in &versions {
        let n = all.lines().filter(|l| l.starts_with(&format!("applied V{v} "))).count();
        assert_eq!(n, 1, "V{v} applied {n} times:\n{all}");
    }
    assert_eq!(db.versions(), versions);
    assert!(db.history().iter().all(|(_, s, _)| s == "applied"));
    // Server-side: every statement that logs ran once.
    let want: Vec<(i64, i64, i64)> = (100..160)
        .flat_map(|v| {
            let mut r = vec![(v, 1, 1)];
            if no_tx.contains(&v) {
                r.push((v, 4, 1));
            }
            r
        })
        .collect();
    assert_eq!(runs(&db), want);
    assert_eq!(db.scalar("SELECT count(*) FROM pg_index WHERE NOT indisvalid"), "0");
    // The lease is free again.
    assert_eq!(lease(&db).map(|l| l.0), Some(None), "the lease is free");
    wait_until(10, "advisory locks to be released", || {
        db.scalar("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())") == "0"
    });
}

#[test]
fn a_direct_runner_and_a_data_api_runner_exclude_each_other_and_name_the_holder() {
    let (both, db, dir) = (Both::start(Options::default()), Db::new(), Dir::new());
    dir.write("V1__slow.sql", "CREATE TABLE a (id int);\nSELECT pg_sleep(8);\n");
    both.config(&db.name, &db.url, &[]);

    // A direct runner holds the lock: a Data API runner gives up naming it...
    let holder = both.spawn(&db.name, "direct", &dir, &["up"]);
    let pid = holder.id();
    wait_until(20, "the direct runner to hold the lease", || held_by(&db, pid));
    let (_, server_pid, _) = lease(&db).unwrap();
    let server_pid = server_pid.expect("a session holder records its server pid");
    let r = both.run(&db.name, "aurora", &dir, &["up", "--lock-wait", "1s"]);
    assert_eq!(r.code, 2, "{r:#?}");
    let line = r.error_line();
    assert!(
        line.starts_with(&format!(
            "error: could not take the migration lock within 1 s; held by pid {server_pid} (application_name 'chatmigrate', client 127.0.0.1/32, connected since 20"
        )) && line.contains("): 'chatmigrate' on host ") && line.contains(&format!("(chatmigrate process {pid}, backend postgres) since 20")),
        "{line}"
    );
    assert_eq!(r.hint(), "hint: another chatmigrate is running; wait for it, or raise --lock-wait");
    // ... and one that may wait says every second what it waits for.
    let waiter = both.run(&db.name, "aurora", &dir, &["up", "--lock-wait", "60s"]);
    waiter.assert_ok();
    assert!(waiter.stdout.starts_with("nothing to apply"), "{}", waiter.stdout);
    let waits: Vec<&str> = waiter
        .stderr
        .lines()
        .filter(|l| l.starts_with("waiting for the migration lock: "))
        .collect();
    assert!(!waits.is_empty(), "{}", waiter.stderr);
    assert!(
        waits[0].contains(&format!("held by pid {server_pid} (application_name 'chatmigrate'"))
            && waits[0].contains(&format!("chatmigrate process {pid}, backend postgres")),
        "{}",
        waits[0]
    );
    finish(holder).assert_ok();
    assert_eq!(db.versions(), vec![1]);

    // The reverse: a Data API runner holds the lease; a direct runner waits.
    dir.write("V2__slow.sql", "CREATE TABLE b (id int);\nSELECT pg_sleep(8);\n");
    let holder = both.spawn(&db.name, "aurora", &dir, &["up"]);
    let pid = holder.id();
    wait_until(20, "the Data API runner to hold the lease", || held_by(&db, pid));
    let r = both.run(&db.name, "direct", &dir, &["up", "--lock-wait", "1s"]);
    assert_eq!(r.code, 2, "{r:#?}");
    let line = r.error_line();
    assert!(
        line.starts_with("error: could not take the migration lock within 1 s; held by 'chatmigrate' on host ")
            && line.contains(&format!("(chatmigrate process {pid}, backend rds-data) since 20"))
            && line.contains("(lease expires in "),
        "{line}"
    );
    let waiter = both.run(&db.name, "direct", &dir, &["up", "--lock-wait", "60s"]);
    waiter.assert_ok();
    assert!(waiter.stdout.starts_with("nothing to apply"), "{}", waiter.stdout);
    assert!(
        waiter
            .stderr
            .lines()
            .any(|l| l.starts_with("waiting for the migration lock: ")
                && l.contains(&format!("chatmigrate process {pid}, backend rds-data"))),
        "{}",
        waiter.stderr
    );
    finish(holder).assert_ok();
    assert_eq!(db.versions(), vec![1, 2]);
    assert_eq!(lease(&db).map(|l| l.0), Some(None), "the lease is free");
}

#[test]
fn a_data_api_runner_killed_inside_a_transaction_is_waited_for_knowingly() {
    // The Data API rolls back an idle transaction after 3 minutes; here 5 s.
    let (db, dir) = (Db::new(), Dir::new());
    let both = Both::start(Options {
        transaction_idle_timeout: Duration::from_secs(5),
        ..Options::default()
    });
    db.exec("CREATE TABLE runs_log (v bigint, stmt int)");
    dir.write("V1__a.sql", "CREATE TABLE a (id int);\n");
    let sleeps = "SELECT pg_sleep(0.5);\n".repeat(8);
    dir.write(
        "V2__b.sql",
        format!("INSERT INTO runs_log VALUES (2, 1);\n{sleeps}CREATE TABLE b (id int);\n"),
    );
    both.config(&db.name, &db.url, &["lease_ttl = \"2s\"", "lock_wait = \"60s\""]);
    let mut first = both.spawn(&db.name, "aurora", &dir, &["up"]);
    // Killed inside V2's transaction, which holds the lease row.
    wait_until(30, "V2's transaction to hold the lease row", || {
        db.versions() == vec![1]
            && db.scalar(
                "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)
                 WHERE l.relation = 'chatmigrate_history_lease'::regclass AND l.mode = 'RowShareLock' AND a.xact_start < now() - interval '200 ms'",
            ) != "0"
    });
    first.kill().unwrap();
    let _ = first.wait();
    let started = Instant::now();
    let r = both.run(&db.name, "aurora", &dir, &["up"]);
    r.assert_ok();
    assert!(r.stdout.contains("applied V2 b"), "{}", r.stdout);
    assert!(
        r.stderr.lines().any(|l| l.starts_with("waiting for the migration lock: ")
            && l.contains("a Data API migration transaction still holds the lease row (server pid ")
            && l.contains("the Data API rolls an abandoned transaction back 3 minutes after its last call")),
        "{}",
        r.stderr
    );
    assert!(started.elapsed() < Duration::from_secs(40));
    assert_eq!(db.versions(), vec![1, 2]);
    assert_eq!(runs(&db), vec![(2, 1, 1)], "V2 committed once");
    assert_eq!(both.server.open_transactions(), 0);
}

#[test]
fn a_killed_direct_runners_lease_is_free_when_its_session_ends() {
    let (both, db, dir) = (Both::start(Options::default()), Db::new(), Dir::new());
    dir.write("V1__a.sql", "CREATE TABLE a (id int);\nSELECT pg_sleep(3);\n");
    both.config(&db.name, &db.url, &["lock_wait = \"60s\""]);
    let mut first = both.spawn(&db.name, "direct", &dir, &["up"]);
    wait_until(20, "the direct runner to hold the lease", || held_by(&db, first.id()));
    let server_pid = lease(&db).unwrap().1.unwrap();
    first.kill().unwrap();
    let _ = first.wait();
    // The server runs the batch it received to its end (V1 commits), then
    // ends the session; the lease row still names the killed runner.
    wait_until(30, "the killed runner's session to end", || {
        db.scalar(&format!("SELECT count(*) FROM pg_stat_activity WHERE pid = {server_pid}")) == "0"
    });
    let (owner, pid, _) = lease(&db).unwrap();
    assert!(owner.is_some(), "the killed runner never released the lease");
    assert_eq!(pid.as_deref(), Some(server_pid.as_str()));
    // A Data API runner (lease_ttl 60 s) takes it at once: no expiry to wait for.
    dir.write("V2__b.sql", "CREATE TABLE b (id int);\n");
    let started = Instant::now();
    let r = both.run(&db.name, "aurora", &dir, &["up"]);
    r.assert_ok();
    assert!(r.stdout.contains("applied V2 b"), "{}", r.stdout);
    assert!(!r.stderr.contains("waiting for the migration lock"), "{}", r.stderr);
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(db.versions(), vec![1, 2]);
}

#[test]
fn a_live_session_holding_the_advisory_lock_is_never_taken_over() {
    let (both, db, dir) = (Both::start(Options::default()), Db::new(), Dir::new());
    dir.write("V1__a.sql", "CREATE TABLE a (id int);\n");
    both.config(&db.name, &db.url, &[]);
    let key = chatmigrate::__private::dialect::ToolSql::new(
        &chatmigrate::__private::config::HistoryTable {
            schema: None,
            table: "chatmigrate_history".into(),
        },
        &db.name,
    )
    .lock_key();
    // A session of another release (or another tool) holds the advisory lock.
    let holder = Holder::hold(&db.url, "holder_test", &format!("SELECT pg_advisory_lock({key})"), None);
    let pid = db.scalar("SELECT pid FROM pg_stat_activity WHERE application_name = 'holder_test'");
    let r = both.run(&db.name, "aurora", &dir, &["up", "--lock-wait", "2s"]);
    assert_eq!(r.code, 2, "{r:#?}");
    assert!(
        r.error_line().starts_with(&format!(
            "error: could not take the migration lock within 2 s; held by pid {pid} (application_name 'holder_test', client 127.0.0.1/32, connected since 20"
        )),
        "{}",
        r.error_line()
    );
    assert!(
        r.stderr
            .lines()
            .any(|l| l.starts_with("waiting for the migration lock: 1 s (attempt ")
                && l.contains(&format!("held by pid {pid} (application_name 'holder_test'"))),
        "{}",
        r.stderr
    );
    assert!(!db.table_exists("a"));
    drop(holder);
    both.run(&db.name, "aurora", &dir, &["up"]).assert_ok();
    assert_eq!(db.versions(), vec![1]);
}

#[test]
fn a_resumed_data_api_migration_waits_for_its_statement_still_running_on_the_server() {
    let (both, db, dir) = (Both::start(Options::default()), Db::new(), Dir::new());
    let cic = "CREATE INDEX CONCURRENTLY IF NOT EXISTS big_id ON big (id)";
    dir.write(
        "V1__big.sql",
        format!("-- chatmigrate:no-transaction\nCREATE TABLE IF NOT EXISTS big (id int);\n{cic};\n"),
    );
    both.config(&db.name, &db.url, &["lease_ttl = \"2s\"", "lock_wait = \"60s\""]);
    // An open snapshot keeps the CONCURRENTLY build waiting until dropped.
    let snapshot = Holder::hold(
        &db.url,
        "snapshot_test",
        "BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM pg_class;",
        None,
    );
    let mut first = both.spawn(&db.name, "aurora", &dir, &["up"]);
    let running = format!("SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query = '{cic}'");
    wait_until(30, "the build to run", || {
        if let Ok(Some(status)) = first.try_wait() {
            let mut err = String::new();
            std::io::Read::read_to_string(first.stderr.as_mut().unwrap(), &mut err).unwrap();
            let mut out = String::new();
            std::io::Read::read_to_string(first.stdout.as_mut().unwrap(), &mut out).unwrap();
            panic!("the first runner ended ({status}): {out}{err}");
        }
        db.scalar(&running) == "1"
    });
    first.kill().unwrap();
    let _ = first.wait();
    let second = both.spawn(&db.name, "aurora", &dir, &["up"]);
    let pid = second.id();
    wait_until(30, "the next runner to take the lease", || held_by(&db, pid));
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(db.scalar(&running), "1", "the build was not sent again");
    drop(snapshot);
    let r = finish(second);
    r.assert_ok();
    assert!(
        r.stdout.contains("statement 2 is still running on the server (process ")
            && r.stdout
                .contains("sent by an earlier runner that stopped: waiting for it to end, then reading its outcome from the catalog"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("applied V1 big"), "{}", r.stdout);
    let sent = both
        .server
        .calls_of("Execute")
        .iter()
        .filter(|c| c.sql.as_deref() == Some(cic))
        .count();
    assert_eq!(sent, 1, "the build was sent once");
    assert_eq!(
        db.scalar("SELECT indisvalid::text FROM pg_index WHERE indexrelid = 'big_id'::regclass"),
        "true"
    );
    assert_eq!(db.history(), vec![(1, "applied".to_string(), 2)]);
}

#[test]
fn a_lease_table_of_an_older_release_is_upgraded_in_place() {
    let (both, db, dir) = (Both::start(Options::default()), Db::new(), Dir::new());
    dir.write("V1__a.sql", "CREATE TABLE a (id int);\n");
    dir.write("V2__b.sql", "CREATE TABLE b (id int);\n");
    // As an older release left it: NOT NULL columns, no pid, an expired row.
    db.exec(
        "CREATE TABLE chatmigrate_history_lease (name text PRIMARY KEY, owner text NOT NULL, acquired_at timestamptz NOT NULL, expires_at timestamptz NOT NULL, holder text NOT NULL);
         INSERT INTO chatmigrate_history_lease VALUES ('migrations', 'old:1:1', now() - interval '2 min', now() - interval '1 min', 'old (pid 1)')",
    );
    both.config(&db.name, &db.url, &["lock_wait = \"60s\""]);
    // First runners of both transports race on the upgrade.
    let children: Vec<_> = (0..4)
        .map(|i| both.spawn(&db.name, if i % 2 == 0 { "direct" } else { "aurora" }, &dir, &["up"]))
        .collect();
    let runs: Vec<Run> = children.into_iter().map(finish).collect();
    for r in &runs {
        assert_eq!(r.code, 0, "{r:#?}");
    }
    let all: String = runs.iter().map(|r| r.stdout.clone()).collect();
    assert_eq!(all.matches("applied V1 a").count(), 1, "{all}");
    assert_eq!(db.versions(), vec![1, 2]);
    assert_eq!(
        db.scalar(
            "SELECT string_agg(attname || ':' || attnotnull, ',' ORDER BY attnum) FROM pg_attribute WHERE attrelid = 'chatmigrate_history_lease'::regclass AND attnum > 0"
        ),
        "name:true,owner:false,acquired_at:false,expires_at:false,holder:false,pid:false"
    );
    assert_eq!(lease(&db).map(|l| l.0), Some(None), "the lease is free");
    // A row an older release deleted on release is put back.
    db.exec("DELETE FROM chatmigrate_history_lease");
    dir.write("V3__c.sql", "CREATE TABLE c (id int);\n");
    both.run(&db.name, "aurora", &dir, &["up"]).assert_ok();
    assert_eq!(db.versions(), vec![1, 2, 3]);
    assert_eq!(db.scalar("SELECT count(*) FROM chatmigrate_history_lease"), "1");
}
