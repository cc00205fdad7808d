//! Running migrations on PostgreSQL: atomicity, server errors mapped to
//! file:line:col with DETAIL and HINT, repair of failed rows, --target,
//! --dry-run, JSON. (A no-transaction file's progress and resume, on every
//! backend: contract.rs.)

use crate::support::*;

#[test]
fn failure_in_the_middle_of_a_transactional_migration_leaves_nothing() {
    let (db, dir) = (Db::new(), Dir::new());
    dir.write("V1__a.sql", "CREATE TABLE a (id int PRIMARY KEY);\n");
    dir.write(
        "V2__b.sql",
        "CREATE TABLE b (id int);\nINSERT INTO a VALUES (1);\n\nINSERT INTO a VALUES\n  (1);\nCREATE TABLE b2 (id int);\n",
    );
    dir.write("V3__c.sql", "CREATE TABLE c (id int);\n");
    let r = cm(&db, &dir, &["up"]);
    r.assert_error(&format!(
        "{}:4:1: version 2 failed: duplicate key value violates unique constraint \"a_pkey\"; DETAIL: Key (id)=(1) already exists. (SQLSTATE 23505)",
        dir.shown("V2__b.sql")
    ));
    assert_eq!(
        r.hint(),
        "hint: fix the migration and run `chatmigrate up` again; this migration was rolled back"
    );
    assert!(r.stdout.contains("applied V1 a"), "{}", r.stdout);
    assert!(!db.table_exists("b"), "part of V2 remains");
    assert!(!db.table_exists("b2"));
    assert_eq!(db.scalar("SELECT count(*) FROM a"), "0");
    assert!(!db.table_exists("c"));
    assert_eq!(db.versions(), vec![1]);
}

#[test]
fn server_error_position_maps_to_file_line_col_with_hint() {
    let (db, dir) = (Db::new(), Dir::new());
    dir.write(
        "V1__a.sql",
        "-- header\nCREATE TABLE a (id int);\nSELECT id,\n       nosuchcol\nFROM a;\n",
    );
    let r = cm(&db, &dir, &["up"]);
    r.assert_error(&format!(
        "{}:4:8: version 1 failed: column \"nosuchcol\" does not exist (SQLSTATE 42703)",
        dir.shown("V1__a.sql")
    ));
    // A server HINT is passed on.
    dir.write("V1__a.sql", "CREATE TABLE a (id int);\nSELECT * FROM a WHERE id = 'x'::intt;\n");
    let r = cm(&db, &dir, &["up"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.starts_with(&format!(
            "error: {}:2:33: version 1 failed: type \"intt\" does not exist",
            dir.shown("V1__a.sql")
        )),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("(SQLSTATE 42704)"), "{}", r.stderr);
    dir.write("V1__a.sql", "SELECT 1 + now();\n");
    let r = cm(&db, &dir, &["up"]);
    assert!(
        r.stderr.contains("; HINT: No operator matches the given name and argument types."),
        "{}",
        r.stderr
    );
    assert!(db.versions().is_empty());
}

#[test]
fn repair_clears_failed_rows() {
    let (db, dir) = (Db::new(), Dir::new());
    dir.write(
        "V1__x.sql",
        "-- chatmigrate:no-transaction\nCREATE TABLE IF NOT EXISTS x (id int);\nSELECT 1/0;\n",
    );
    assert_eq!(cm(&db, &dir, &["up"]).code, 2);
    assert_eq!(db.history(), vec![(1, "failed".into(), 1)]);
    let r = cm(&db, &dir, &["repair"]);
    r.assert_ok();
    assert_eq!(r.stdout, "repair: accepted 0 changed checksum(s), cleared 1 failed row(s)\n");
    assert!(db.history().is_empty());
    assert_eq!(db.scalar("SELECT action FROM chatmigrate_history_log"), "clear-failed");
    // The migration now runs from its first statement (so it must be re-runnable).
    dir.write(
        "V1__x.sql",
        "-- chatmigrate:no-transaction\nCREATE TABLE IF NOT EXISTS x (id int);\nSELECT 1;\n",
    );
    cm(&db, &dir, &["up"]).assert_ok();
    assert_eq!(db.history(), vec![(1, "applied".into(), 2)]);
}

#[test]
fn target_stops_at_a_version() {
    let (db, dir) = (Db::new(), Dir::new());
    for v in 1..=3 {
        dir.write(&format!("V{v}__t{v}.sql"), format!("CREATE TABLE t{v} (id int);\n"));
    }
    cm(&db, &dir, &["up", "--target", "2"]).assert_ok();
    assert_eq!(db.versions(), vec![1, 2]);
    cm(&db, &dir, &["up", "--target", "9"]).assert_error("--target 9: no migration file has that version");
    // Nothing to do up to the target is not "up to date" while V3 waits.
    let shown = format!("postgres@127.0.0.1:{}/{}", port(), db.name);
    let r = cm(&db, &dir, &["up", "--target", "2"]);
    r.assert_ok();
    assert_eq!(
        r.stdout,
        format!("nothing to apply up to V2: {shown} is at V2; 1 pending above V2\n")
    );
    cm(&db, &dir, &["up"]).assert_ok();
    assert_eq!(db.versions(), vec![1, 2, 3]);
    let r = cm(&db, &dir, &["up", "--target", "1"]);
    assert_eq!(r.stdout, format!("nothing to apply up to V1: {shown} is at V3\n"));
    let r = cm(&db, &dir, &["up", "--target", "3"]);
    assert_eq!(r.stdout, format!("nothing to apply: {shown} is up to date\n"));
}

/// The time `up` prints for a migration is the one its history row holds,
/// which `status` shows: with and without a transaction, and for a
/// no-transaction file resumed after a failure (the history adds the runs).
#[test]
fn up_and_status_show_the_same_time_for_a_migration() {
    let (db, dir) = (Db::new(), Dir::new());
    dir.write("V1__slow.sql", "SELECT pg_sleep(0.12);\nCREATE TABLE a (id int);\n");
    dir.write(
        "V2__slow_no_tx.sql",
        "-- chatmigrate:no-transaction\nSELECT pg_sleep(0.08);\nCREATE TABLE IF NOT EXISTS b (id int);\nSELECT pg_sleep(0.05);\n",
    );
    dir.write(
        "V3__fails.sql",
        "-- chatmigrate:no-transaction\nSELECT pg_sleep(0.06);\nSELECT 1/0;\n",
    );
    let r = cm(&db, &dir, &["--format", "json", "up"]);
    assert_eq!(r.code, 2, "{r:#?}");
    dir.write(
        "V3__fails.sql",
        "-- chatmigrate:no-transaction\nSELECT pg_sleep(0.06);\nSELECT pg_sleep(0.07);\n",
    );
    let up = cm(&db, &dir, &["--format", "json", "up"]);
    up.assert_ok();
    let up: serde_json::Value = serde_json::from_str(&up.stdout).unwrap();
    let status = cm(&db, &dir, &["--format", "json", "status"]);
    let status: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    let recorded = |v: i64| {
        status["migrations"].as_array().unwrap().iter().find(|m| m["version"] == v).unwrap()["execution_ms"]
            .as_i64()
            .unwrap()
    };
    // V1 and V2 ran in the first `up`; only V3 (resumed) in the second.
    assert_eq!(up["applied"].as_array().unwrap().len(), 1, "{up}");
    let v3 = &up["applied"][0];
    assert_eq!(v3["version"], 3);
    assert_eq!(v3["duration_ms"].as_i64().unwrap(), recorded(3), "{up}\n{status}");
    assert!(recorded(3) >= 130, "V3's two runs add up: {}", recorded(3));
    assert!(recorded(1) >= 120 && recorded(2) >= 130, "{status}");
    // The text of a fresh run, against its rows.
    let db2 = Db::new();
    let r = cm(&db2, &dir, &["up"]);
    r.assert_ok();
    let s2 = cm(&db2, &dir, &["--format", "json", "status"]);
    let s2: serde_json::Value = serde_json::from_str(&s2.stdout).unwrap();
    for (line, version) in r.stdout.lines().take(3).zip(1..) {
        let ms = s2["migrations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["version"] == version)
            .unwrap()["execution_ms"]
            .as_i64()
            .unwrap();
        assert!(
            line.ends_with(&format!("({ms} ms)")) || line.ends_with(&format!(", {ms} ms)")),
            "`up` printed {line:?}; the history holds {ms} ms"
        );
    }
}

#[test]
fn dry_run_prints_exact_statements_and_changes_nothing() {
    let (db, dir) = (Db::new(), Dir::new());
    dir.write("V1__a.sql", "CREATE TABLE a (id int);\n-- comment\nCREATE INDEX a_id ON a (id);\n");
    dir.write(
        "V2__b.sql",
        "-- chatmigrate:no-transaction\n-- chatmigrate:lock-timeout 2s\nCREATE INDEX CONCURRENTLY IF NOT EXISTS a_id2 ON a (id);\n",
    );
    dir.write(
        "V3__c.sql",
        "-- chatmigrate:lock-timeout 2s\n-- chatmigrate:statement-timeout 10min\nALTER TABLE a ADD COLUMN b int;\n",
    );
    let r = cm(&db, &dir, &["up", "--dry-run"]);
    r.assert_ok();
    let out = &r.stdout;
    let expect_start = format!("-- dry run on postgres@127.0.0.1:{}/{}: nothing is sent\n\n-- V1 a (one transaction)\nBEGIN;\nSET LOCAL lock_timeout = '5000ms';\nSET LOCAL synchronous_commit = off;\nCREATE TABLE a (id int);\nCREATE INDEX a_id ON a (id);\nINSERT INTO \"chatmigrate_history\"", port(), db.name);
    assert!(out.starts_with(&expect_start), "{out}");
    assert!(
        out.contains("\nCOMMIT;\n\n-- V2 b (no transaction, statement by statement)\nSET lock_timeout = '2000ms';\nINSERT INTO \"chatmigrate_history\""),
        "{out}"
    );
    assert!(
        out.contains("\nCREATE INDEX CONCURRENTLY IF NOT EXISTS a_id2 ON a (id);\n"),
        "{out}"
    );
    assert!(out.contains("\nRESET lock_timeout;\n\n-- V3 c"), "{out}");
    assert!(out.contains("\n-- V3 c (one transaction)\nBEGIN;\nSET LOCAL lock_timeout = '2000ms';\nSET LOCAL statement_timeout = '600000ms';\nALTER TABLE a ADD COLUMN b int;\n"), "{out}");
    assert!(out.ends_with("COMMIT;\n"), "{out}");
    assert!(!db.table_exists("chatmigrate_history") && !db.table_exists("a"));
    // Dry run against a database that does not exist yet.
    let missing = Db::adopt(&Db::fresh_name());
    let r = cm(&missing, &dir, &["up", "--dry-run", "--create-database"]);
    r.assert_ok();
    assert!(
        r.stdout.contains(&format!("CREATE DATABASE \"{}\";\n", missing.name)),
        "{}",
        r.stdout
    );
    assert_eq!(db_exists(&missing.name), "0");
    std::mem::forget(missing);
}

fn db_exists(name: &str) -> String {
    query_url(&server_url(), &format!("SELECT count(*) FROM pg_database WHERE datname = '{name}'"))[0][0]
        .clone()
        .unwrap()
}

#[test]
fn json_output_for_up_and_status() {
    let (db, dir) = (Db::new(), Dir::new());
    dir.write("V1__a.sql", "CREATE TABLE a (id int);\n");
    dir.write("V2__b.sql", "CREATE TABLE b (id int);\n");
    let r = cm(&db, &dir, &["--format", "json", "up", "--target", "1"]);
    r.assert_ok();
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["applied"][0]["version"], 1);
    assert_eq!(v["applied"][0]["transaction"], "transaction");
    let s = cm(&db, &dir, &["status", "--format", "json", "--exit-code"]);
    assert_eq!(s.code, 1);
    let v: serde_json::Value = serde_json::from_str(&s.stdout).unwrap();
    assert_eq!(v["migrations"][0]["state"], "applied");
    assert_eq!(v["migrations"][1]["state"], "pending");
    assert_eq!(v["summary"]["applied"], 1);
    assert_eq!(v["summary"]["pending"], 1);
    assert!(v["migrations"][0]["applied_at"].as_str().unwrap().ends_with('Z'));
    // Errors are JSON on stdout too, with the text on stderr.
    dir.write("V3__bad.sql", "SELEC 1;");
    let e = cm(&db, &dir, &["--format", "json", "up"]);
    assert_eq!(e.code, 2);
    let v: serde_json::Value = serde_json::from_str(&e.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["error"]["kind"], "migration-file");
}

#[test]
fn history_table_in_a_configured_schema_with_odd_names() {
    let (db, dir) = (Db::new(), Dir::new());
    dir.write("m/V1__a.sql", "CREATE TABLE a (id int);\n");
    let cfg = dir.write(
        "chatmigrate.toml",
        format!(
            "[environments.t]\nurl = \"{}\"\nmigrations = [\"m\"]\nhistory_schema = \"Ops Schema\"\nhistory_table = \"my-history\"\n",
            db.url
        ),
    );
    let r = run_in(dir.path(), &["--config", cfg.to_str().unwrap(), "--env", "t", "up"], &[]);
    r.assert_ok();
    assert_eq!(db.scalar("SELECT count(*) FROM \"Ops Schema\".\"my-history\""), "1");
    assert!(db.table_exists("\"Ops Schema\".\"my-history_log\""));
    let r = run_in(
        dir.path(),
        &["--config", cfg.to_str().unwrap(), "--env", "t", "status", "--exit-code"],
        &[],
    );
    r.assert_ok();
}
