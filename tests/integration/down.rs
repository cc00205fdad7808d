//! `chatmigrate down` through the real binary: undo files run like
//! migrations (transactional with the history change, or statement by
//! statement and resumable), the history row removed and the log saying
//! who undid what and when, the refusals before anything runs, `--dry-run`
//! showing what is sent; on the direct backend, through the Data API test
//! server, and the shipped chat schema (live Citus when configured).

use crate::support::both::Both;
use crate::support::dataapi::Options;
use crate::support::*;

fn set(dir: &Dir) {
    dir.write("V1__a.sql", "CREATE TABLE a (id int);\n");
    dir.write("V1__a.undo.sql", "DROP TABLE a;\n");
    dir.write(
        "V2__b.sql",
        "-- chatmigrate:no-transaction\nCREATE TABLE IF NOT EXISTS b (id int);\n\nCREATE INDEX CONCURRENTLY IF NOT EXISTS b_id ON b (id);\n",
    );
    dir.write(
        "V2__b.undo.sql",
        "-- chatmigrate:no-transaction\nDROP INDEX CONCURRENTLY IF EXISTS b_id;\n\nDROP TABLE IF EXISTS b;\n",
    );
    dir.write("V3__c.sql", "CREATE TABLE c (id int);\nINSERT INTO c VALUES (1);\n");
    dir.write("V3__c.undo.sql", "DROP TABLE c;\n");
}

fn story(env: &str) {
    let both = Both::start(Options::default());
    let db = Db::new();
    both.config(&db.name, &db.url, &[]);
    let dir = Dir::new();
    set(&dir);
    both.run(&db.name, env, &dir, &["up"]).assert_ok();
    assert_eq!(db.versions(), vec![1, 2, 3]);
    // The dry run sends nothing and shows the undo with its history change.
    let dry = both.run(&db.name, env, &dir, &["down", "--dry-run"]);
    dry.assert_ok();
    assert!(dry.stdout.contains("-- V3 c (one transaction)\n"), "{}", dry.stdout);
    assert!(dry.stdout.contains("DROP TABLE c;\n"), "{}", dry.stdout);
    assert!(
        dry.stdout.contains("DELETE FROM \"chatmigrate_history\" WHERE version = 3"),
        "{}",
        dry.stdout
    );
    assert!(db.table_exists("c"));
    // The last applied one, by default.
    let r = both.run(&db.name, env, &dir, &["down"]);
    r.assert_ok();
    assert!(r.stdout.starts_with("undone V3 c ("), "{}", r.stdout);
    assert!(!db.table_exists("c"));
    assert_eq!(db.versions(), vec![1, 2]);
    assert_eq!(
        db.scalar("SELECT action || ' ' || old_checksum || ' ' || new_checksum || ' ' || (done_by = current_user)::text || ' ' || (done_at > now() - interval '1 minute')::text FROM chatmigrate_history_log WHERE version = 3"),
        format!(
            "undo {} {} true true",
            chatmigrate::__private::migration::checksum("CREATE TABLE c (id int);\nINSERT INTO c VALUES (1);\n"),
            chatmigrate::__private::migration::checksum("DROP TABLE c;\n")
        )
    );
    // Status shows it pending again; up applies it again.
    let st = both.run(&db.name, env, &dir, &["status"]);
    assert!(st.stdout.contains("3        c     pending"), "{}", st.stdout);
    both.run(&db.name, env, &dir, &["up"]).assert_ok();
    // --target: every one above it, newest first, a no-transaction undo among them.
    let r = both.run(&db.name, env, &dir, &["down", "--target", "1"]);
    r.assert_ok();
    assert_eq!(r.stdout.lines().filter(|l| l.starts_with("undone V")).count(), 2, "{}", r.stdout);
    assert!(!db.table_exists("b") && !db.table_exists("c"));
    assert_eq!(db.versions(), vec![1]);
    assert_eq!(
        db.scalar("SELECT string_agg(action || ':' || version, ',' ORDER BY id) FROM chatmigrate_history_log WHERE id > (SELECT min(id) FROM chatmigrate_history_log)"),
        "undo:3,undo-step:2,undo:2"
    );
    // Refusals, before anything runs.
    both.run(&db.name, env, &dir, &["down", "--target", "5"])
        .assert_error("down --target 5: the target is above the highest applied version 1");
    dir.remove("V1__a.undo.sql");
    let r = both.run(&db.name, env, &dir, &["down"]);
    r.assert_error("down: no undo file for V1 a: nothing was undone");
    assert!(r.hint().contains("V1__a.undo.sql"), "{}", r.hint());
    assert!(db.table_exists("a"));
    dir.write("V9__gone.undo.sql", "SELECT 1;\n");
    let r = both.run(&db.name, env, &dir, &["up"]);
    r.assert_error(&format!(
        "{}: an undo file without its migration: there is no V9__gone.sql",
        dir.shown("V9__gone.undo.sql")
    ));
    dir.remove("V9__gone.undo.sql");
    dir.write("V1__a.undo.sql", "DROP TABLE a;\n");
    dir.write("V1__a.sql", "CREATE TABLE a (id bigint);\n");
    let r = both.run(&db.name, env, &dir, &["down"]);
    assert_eq!(r.code, 2, "{r:#?}");
    assert!(r.error_line().contains("version 1 was applied with checksum"), "{}", r.stderr);
    assert!(db.table_exists("a"));
    dir.write("V1__a.sql", "CREATE TABLE a (id int);\n");
    both.run(&db.name, env, &dir, &["down"]).assert_ok();
    assert!(!db.table_exists("a") && db.versions().is_empty());
    both.run(&db.name, env, &dir, &["down"]).assert_ok();
}

#[test]
fn down_on_the_direct_backend() {
    story("direct");
}

#[test]
fn down_through_the_data_api() {
    story("aurora");
}

/// A failing transactional undo rolls back whole; a failing no-transaction
/// undo is logged with the statements done, and the next `down` resumes
/// after them (the first statement is not run twice).
#[test]
fn a_failed_undo_rolls_back_or_resumes() {
    let (db, dir) = (Db::new(), Dir::new());
    dir.write("V1__t.sql", "CREATE TABLE trace (n int);\nCREATE TABLE t (id int);\n");
    dir.write("V1__t.undo.sql", "DROP TABLE t;\nSELECT 1/0;\n");
    cm(&db, &dir, &["up"]).assert_ok();
    let r = cm(&db, &dir, &["down"]);
    r.assert_error(&format!(
        "{}:2:1: the undo of version 1 failed: division by zero (SQLSTATE 22012)",
        dir.shown("V1__t.undo.sql")
    ));
    assert!(r.hint().contains("rolled back"), "{}", r.hint());
    assert!(db.table_exists("t"), "rolled back");
    assert_eq!(db.versions(), vec![1]);
    // No transaction: statement 1 stays done, the log says how far.
    dir.write(
        "V1__t.undo.sql",
        "-- chatmigrate:no-transaction\nINSERT INTO trace VALUES (1);\n\nSELECT 1/0;\n\nDROP TABLE IF EXISTS t;\n\nSELECT 3;\n",
    );
    let r = cm(&db, &dir, &["down"]);
    r.assert_error(&format!(
        "{}:4:1: the undo of version 1 failed: division by zero (SQLSTATE 22012)",
        dir.shown("V1__t.undo.sql")
    ));
    assert!(r.hint().contains("resumes at that statement"), "{}", r.hint());
    assert_eq!(db.scalar("SELECT count(*) FROM trace"), "1");
    assert_eq!(db.versions(), vec![1], "still applied until the undo ends");
    assert_eq!(
        db.scalar("SELECT detail FROM chatmigrate_history_log WHERE action = 'undo-failed'"),
        "1/4: statement 2 at ".to_string() + &dir.shown("V1__t.undo.sql") + ":4:1: division by zero (SQLSTATE 22012)"
    );
    // `status` shows it: applied still, its undo part way, what runs next.
    let st = cm(&db, &dir, &["--color", "never", "status", "--exit-code"]);
    assert_eq!(st.code, 1, "{st:#?}");
    let lines: Vec<&str> = st.stdout.lines().collect();
    assert!(lines[1].starts_with("1        t     undoing "), "{}", st.stdout);
    assert_eq!(
        lines[2],
        "         its undo stopped after 1 of 4 statements; `chatmigrate down` resumes it at statement 2"
    );
    assert_eq!(
        lines[3],
        format!(
            "         statement 2 at {}:4:1: division by zero (SQLSTATE 22012)",
            dir.shown("V1__t.undo.sql")
        )
    );
    assert_eq!(lines[4], format!("1 undoing on {}", lines[4].split(" on ").nth(1).unwrap()));
    let json = cm(&db, &dir, &["--format", "json", "status"]);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["migrations"][0]["state"], "undoing");
    assert_eq!(
        v["migrations"][0]["undo"],
        serde_json::json!({"statements_done": 1, "statements_total": 4, "error": format!("statement 2 at {}:4:1: division by zero (SQLSTATE 22012)", dir.shown("V1__t.undo.sql"))})
    );
    assert_eq!(v["summary"]["undoing"], 1);
    // The failing statement fixed: `down` resumes at it.
    dir.write(
        "V1__t.undo.sql",
        "-- chatmigrate:no-transaction\nINSERT INTO trace VALUES (1);\n\nSELECT 1;\n\nDROP TABLE IF EXISTS t;\n\nSELECT 2;\n",
    );
    let r = cm(&db, &dir, &["down"]);
    r.assert_ok();
    assert!(!db.table_exists("t"));
    assert_eq!(db.scalar("SELECT count(*) FROM trace"), "1", "statement 1 is not run again");
    assert!(db.versions().is_empty());
    // Undone: pending, no longer undoing.
    let st = cm(&db, &dir, &["status"]);
    assert!(st.stdout.contains("1        t     pending"), "{}", st.stdout);
}

/// The shipped chat schema goes down to nothing and up again, on the direct
/// backend and through the Data API.
#[test]
fn the_chat_schema_goes_down_and_up_again() {
    let db = Db::new();
    cm_embedded(&db, &["up"]).assert_ok();
    let r = cm_embedded(&db, &["down", "--target", "0"]);
    r.assert_ok();
    assert_eq!(r.stdout.lines().count(), 4, "{}", r.stdout);
    assert!(db.versions().is_empty());
    assert!(!db.table_exists("st_chat_history_table") && !db.table_exists("st_chat_history_vector_table"));
    assert_eq!(db.scalar("SELECT count(*) FROM pg_extension WHERE extname = 'vector'"), "0");
    cm_embedded(&db, &["up"]).assert_ok();
    assert_eq!(db.versions(), vec![1, 2, 3, 4]);

    let both = Both::start(Options::default());
    let db = Db::new();
    both.config(&db.name, &db.url, &[]);
    let conf = both.conf.path().join(format!("{}.toml", db.name));
    let empty = Dir::new();
    let run = |args: &[&str]| {
        let mut full = vec!["--config", conf.to_str().unwrap(), "--env", "aurora"];
        full.extend_from_slice(args);
        run_in(empty.path(), &full, &AWS_ENV)
    };
    run(&["up"]).assert_ok();
    run(&["down", "--steps", "2"]).assert_ok();
    assert_eq!(db.versions(), vec![1, 2]);
    run(&["up"]).assert_ok();
    assert_eq!(db.versions(), vec![1, 2, 3, 4]);
}

#[test]
fn new_undo_creates_the_pair_and_the_library_goes_down() {
    let (db, dir) = (Db::new(), Dir::new());
    let r = cm(&db, &dir, &["new", "--sequential", "--undo", "add_x"]);
    r.assert_ok();
    assert_eq!(
        r.stdout,
        format!("created {} and {}\n", dir.shown("V1__add_x.sql"), dir.shown("V1__add_x.undo.sql"))
    );
    dir.write("V1__add_x.sql", "CREATE TABLE x (id int);\n");
    dir.write("V1__add_x.undo.sql", "DROP TABLE x;\n");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let m = chatmigrate::Migrator::from_url(&db.url).unwrap().migrations([dir.path()]);
    rt.block_on(m.up()).unwrap();
    assert!(db.table_exists("x"));
    let report = rt.block_on(m.down()).unwrap();
    assert_eq!(report.undone.iter().map(|u| u.version).collect::<Vec<_>>(), vec![1]);
    assert!(!db.table_exists("x") && db.versions().is_empty());
}

/// The chat schema on the live Citus coordinator: down to nothing (V8 to
/// V1, the distributed tables undistributed first) and up again.
#[test]
fn live_citus_chat_schema_down_and_up() {
    let Some(l) = crate::support::citus::live("live_citus_chat_schema_down_and_up") else {
        return;
    };
    l.run(&["up"]).assert_ok();
    let r = l.run(&["down", "--steps", "3"]);
    r.assert_ok();
    assert_eq!(
        l.scalar("SELECT string_agg(version::text, ',' ORDER BY version) FROM chatmigrate_history"),
        "1,2,3,4,5"
    );
    assert_eq!(
        l.scalar("SELECT count(*) FROM pg_dist_partition WHERE logicalrelid::text LIKE 'st_chat_history%'"),
        "0"
    );
    l.run(&["up"]).assert_ok();
    assert_eq!(
        l.scalar("SELECT count(*) FROM pg_dist_partition WHERE logicalrelid::text LIKE 'st_chat_history%'"),
        "2"
    );
    l.run(&["down", "--target", "0"]).assert_ok();
    assert_eq!(l.scalar("SELECT count(*) FROM chatmigrate_history"), "0");
    l.reset();
}

/// The lint reads undo files too: `down` applies `up`'s gate (error-level
/// rules, with the live sizes) to the undos about to run, and
/// `chatmigrate lint` reports on every undo file. A `DROP INDEX` without
/// CONCURRENTLY on a table with rows is flagged there as in a migration; a
/// `DROP TABLE` (what an undo is for) is not a finding; a transactional
/// undo that builds an index CONCURRENTLY is refused before anything runs.
#[test]
fn the_lint_reads_undo_files() {
    let (db, dir) = (Db::new(), Dir::new());
    dir.write(
        "V1__t.sql",
        "CREATE TABLE t (id int);\nINSERT INTO t SELECT generate_series(1, 20000);\n",
    );
    dir.write("V1__t.undo.sql", "DROP TABLE t;\n");
    dir.write(
        "V2__i.sql",
        "-- chatmigrate:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS t_id ON t (id);\n",
    );
    dir.write("V2__i.undo.sql", "DROP INDEX t_id;\n");
    cm(&db, &dir, &["up"]).assert_ok();
    let lint = cm(&db, &dir, &["--color", "never", "lint"]);
    lint.assert_ok();
    assert!(
        lint.stdout.contains(&format!(
            "{}:1:1: warning[require-concurrent-index-deletion]",
            dir.shown("V2__i.undo.sql")
        )),
        "{}",
        lint.stdout
    );
    assert!(!lint.stdout.contains("dropping-column-or-table"), "{}", lint.stdout);
    assert!(lint.stdout.contains("in 4 files"), "{}", lint.stdout);
    // A transactional undo with a CONCURRENTLY build: refused by the gate.
    dir.write("V2__i.undo.sql", "DROP INDEX CONCURRENTLY IF EXISTS t_id;\n");
    let r = cm(&db, &dir, &["down"]);
    assert_eq!(r.code, 2, "{r:#?}");
    assert!(
        r.error_line()
            .starts_with(&format!("error: {}:1:1: [transaction-incompatible]", dir.shown("V2__i.undo.sql"))),
        "{}",
        r.stderr
    );
    assert_eq!(db.versions(), vec![1, 2]);
    dir.write(
        "V2__i.undo.sql",
        "-- chatmigrate:no-transaction\nDROP INDEX CONCURRENTLY IF EXISTS t_id;\n",
    );
    let r = cm(&db, &dir, &["down", "--target", "0"]);
    r.assert_ok();
    assert!(db.versions().is_empty() && !db.table_exists("t"));
}

/// In an undo about to run, a `DROP INDEX` without CONCURRENTLY on a table
/// that holds rows is an error (the gate reads the live sizes, the index's
/// table found through the migration that made it): refused before
/// anything runs, exit 2; on an empty table it runs.
#[test]
fn an_undo_dropping_an_index_of_a_table_with_rows_is_refused() {
    let (db, dir) = (Db::new(), Dir::new());
    dir.write(
        "V1__t.sql",
        "CREATE TABLE t (id int);\nINSERT INTO t VALUES (1), (2), (3);\nCREATE INDEX t_id ON t (id);\n",
    );
    dir.write("V1__t.undo.sql", "DROP TABLE t;\n");
    dir.write("V2__u.sql", "CREATE TABLE u (id int);\n");
    dir.write("V2__u.undo.sql", "DROP TABLE u;\nDROP INDEX t_id;\n");
    cm(&db, &dir, &["up"]).assert_ok();
    db.exec("ANALYZE t");
    let r = cm(&db, &dir, &["down", "--target", "0"]);
    assert_eq!(r.code, 2, "{r:#?}");
    assert!(
        r.error_line().starts_with(&format!(
            "error: {}:2:1: [require-concurrent-index-deletion] DROP INDEX t_id without CONCURRENTLY takes an ACCESS EXCLUSIVE lock on table t: every query on the table waits behind it; table t holds about 3 rows (",
            dir.shown("V2__u.undo.sql")
        )),
        "{}",
        r.stderr
    );
    assert!(r.hint().starts_with("hint: drop it CONCURRENTLY"), "{}", r.hint());
    // Nothing ran: both applied, both tables and the index there.
    assert_eq!(db.versions(), vec![1, 2]);
    assert!(db.table_exists("u") && db.table_exists("t"));
    assert_eq!(db.scalar("SELECT to_regclass('t_id') IS NOT NULL"), "t");
    // `lint` without a database keeps it a warning (exit 0).
    let lint = cm(&db, &dir, &["--color", "never", "lint", &dir.shown("V2__u.undo.sql")]);
    lint.assert_ok();
    assert!(
        lint.stdout.contains(":2:1: warning[require-concurrent-index-deletion]"),
        "{}",
        lint.stdout
    );
    // Empty, the index goes without waiting on anyone's rows.
    db.exec("DELETE FROM t");
    db.exec("VACUUM ANALYZE t");
    cm(&db, &dir, &["down", "--target", "0"]).assert_ok();
    assert!(db.versions().is_empty() && !db.table_exists("t"));
}

/// `lint PATH` takes one undo file (read under its migration's version and
/// name, without `dropping-column-or-table`) or one repeatable migration.
#[test]
fn lint_takes_one_undo_file_or_repeatable_file() {
    let (db, dir) = (Db::new(), Dir::new());
    dir.write("V1__t.sql", "CREATE TABLE t (id int);\nCREATE INDEX t_id ON t (id);\n");
    dir.write("V1__t.undo.sql", "DROP INDEX t_id;\nDROP TABLE t;\n");
    dir.write("R__v.sql", "CREATE OR REPLACE VIEW v AS SELECT id FROM t;\n");
    let undo = dir.shown("V1__t.undo.sql");
    let r = cm(&db, &dir, &["--color", "never", "lint", &undo]);
    assert_eq!(r.code, 0, "{r:#?}");
    assert_eq!(
        r.stdout,
        format!(
            "{undo}:1:1: warning[require-concurrent-index-deletion]: DROP INDEX t_id without CONCURRENTLY takes an ACCESS EXCLUSIVE lock on table t: every query on the table waits behind it
   | DROP INDEX t_id
   = help: drop it CONCURRENTLY, one index per statement, in a migration that starts with `-- chatmigrate:no-transaction`:
             DROP INDEX CONCURRENTLY IF EXISTS t_id;

1 warning in 1 file (23 rules)
"
        )
    );
    let r = cm(&db, &dir, &["--color", "never", "lint", &dir.shown("R__v.sql")]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "no problems in 1 file (23 rules)\n"), "{r:#?}");
    // An error-level finding in a repeatable file: exit 1.
    dir.write("R__w.sql", "ALTER TABLE t ADD COLUMN n int NOT NULL;\n");
    let r = cm(&db, &dir, &["--color", "never", "lint", &dir.shown("R__w.sql")]);
    assert_eq!(r.code, 1, "{r:#?}");
    assert!(
        r.stdout.starts_with(&format!("{}:1:1: error[", dir.shown("R__w.sql"))),
        "{}",
        r.stdout
    );
    dir.remove("R__w.sql");
    // An undo file not named after a migration.
    dir.write("notes.undo.sql", "SELECT 1;\n");
    let r = cm(&db, &dir, &["lint", &dir.shown("notes.undo.sql")]);
    r.assert_error(&format!(
        "{}: an undo file is named after its migration: V{{version}}__{{name}}.undo.sql",
        dir.shown("notes.undo.sql")
    ));
}
