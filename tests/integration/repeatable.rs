//! Repeatable migrations (`R__{name}.sql`) through the real binary: applied
//! after every versioned one, in name order, again whenever their checksum
//! changes (a placeholder's value is not a change), recorded in
//! `chatmigrate_history_repeatable`; `status` (text and JSON) shows them
//! applied, pending, outdated or missing; a failing one rolls back with its
//! row; `--target`, `down`, `verify`, `repair`, `baseline` and `--dry-run`
//! handle them; on the direct backend, through the Data API test server,
//! and on live Citus when configured.

use crate::support::both::Both;
use crate::support::dataapi::Options;
use crate::support::*;

const VIEW: &str = "CREATE OR REPLACE VIEW notes_tagged AS SELECT id, tag FROM notes WHERE tag IS NOT NULL;\n";
const FUNC: &str = "CREATE OR REPLACE FUNCTION note_count() RETURNS bigint LANGUAGE sql AS $$ SELECT count(*) FROM notes $$;\n";

fn set(dir: &Dir) {
    dir.write("V1__notes.sql", "CREATE TABLE notes (id int PRIMARY KEY);\n");
    dir.write("V1__notes.undo.sql", "DROP TABLE notes CASCADE;\n");
    dir.write("V2__notes_tag.sql", "ALTER TABLE notes ADD COLUMN tag text;\n");
    dir.write(
        "V2__notes_tag.undo.sql",
        "DROP VIEW IF EXISTS notes_tagged;\nALTER TABLE notes DROP COLUMN tag;\n",
    );
    dir.write("R__notes_views.sql", VIEW);
    dir.write("R__a_functions.sql", FUNC);
}

/// What the table of repeatables holds: `name checksum` per row, by name.
fn rows(db: &Db) -> String {
    if !db.table_exists("chatmigrate_history_repeatable") {
        // Made only when the first repeatable migration is applied.
        return "(no table)".into();
    }
    db.scalar("SELECT coalesce(string_agg(name || ' ' || checksum, ',' ORDER BY name), '') FROM chatmigrate_history_repeatable")
}

fn sum(text: &str) -> String {
    chatmigrate::__private::migration::checksum(text)
}

fn story(env: &str) {
    let both = Both::start(Options::default());
    let db = Db::new();
    both.config(&db.name, &db.url, &[]);
    let dir = Dir::new();
    set(&dir);

    // --target below the newest version: the repeatables wait (the view
    // reads a column V2 adds).
    let r = both.run(&db.name, env, &dir, &["up", "--target", "1"]);
    r.assert_ok();
    assert_eq!(r.stdout.lines().filter(|l| l.starts_with("applied")).count(), 1, "{}", r.stdout);
    assert_eq!(rows(&db), "(no table)");
    let st = both.run(&db.name, env, &dir, &["status"]);
    assert!(st.stdout.contains("R        a_functions  pending "), "{}", st.stdout);

    // The rest: versioned first, then the repeatables in name order.
    let r = both.run(&db.name, env, &dir, &["up"]);
    r.assert_ok();
    let applied: Vec<&str> = r
        .stdout
        .lines()
        .filter(|l| l.starts_with("applied"))
        .map(|l| l.split(" (").next().unwrap())
        .collect();
    assert_eq!(
        applied,
        vec!["applied V2 notes_tag", "applied R__a_functions", "applied R__notes_views"]
    );
    assert_eq!(rows(&db), format!("a_functions {},notes_views {}", sum(FUNC), sum(VIEW)));
    assert_eq!(db.versions(), vec![1, 2]);
    // Nothing changed: nothing to apply.
    let before = both.server.calls().len();
    let r = both.run(&db.name, env, &dir, &["up"]);
    assert!(r.stdout.starts_with("nothing to apply"), "{}", r.stdout);
    if env == "aurora" {
        // The history and the repeatables in one call, as without them.
        let calls = both.server.calls();
        let reads: Vec<&str> = calls[before..]
            .iter()
            .filter_map(|c| c.sql.as_deref())
            .filter(|s| s.contains("FROM \"chatmigrate_history_repeatable\""))
            .collect();
        assert_eq!(reads.len(), 1, "{reads:#?}");
        assert!(
            reads[0].contains("FROM \"chatmigrate_history\" h") && reads[0].contains("UNION ALL"),
            "{}",
            reads[0]
        );
    }

    // A change: outdated in status (text and JSON), applied again alone.
    let view2 = "CREATE OR REPLACE VIEW notes_tagged AS SELECT id, tag, upper(tag) AS shout FROM notes WHERE tag IS NOT NULL;\n";
    dir.write("R__notes_views.sql", view2);
    let st = both.run(&db.name, env, &dir, &["status"]);
    assert!(st.stdout.contains("R        notes_views  outdated"), "{}", st.stdout);
    assert!(st.stdout.contains(": `up` applies it again\n"), "{}", st.stdout);
    assert!(st.stdout.contains("3 applied, 1 outdated on "), "{}", st.stdout);
    let json = both.run(&db.name, env, &dir, &["status", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let last = &v["migrations"][3];
    assert_eq!(
        (
            last["kind"].as_str(),
            last["name"].as_str(),
            last["state"].as_str(),
            last["version"].as_i64()
        ),
        (Some("repeatable"), Some("notes_views"), Some("outdated"), Some(0)),
        "{v}"
    );
    assert_eq!(last["file_checksum"].as_str(), Some(sum(view2).as_str()));
    assert_eq!(last["applied_checksum"].as_str(), Some(sum(VIEW).as_str()));
    assert_eq!(v["summary"]["outdated"], 1);
    // The dry run is the script up sends: the file in one transaction with
    // its row, nothing sent.
    let dry = both.run(&db.name, env, &dir, &["up", "--dry-run"]);
    dry.assert_ok();
    assert!(dry.stdout.contains("\n-- R__notes_views (one transaction)\n"), "{}", dry.stdout);
    assert!(
        dry.stdout.contains("INSERT INTO \"chatmigrate_history_repeatable\" AS r"),
        "{}",
        dry.stdout
    );
    assert!(!dry.stdout.contains("R__a_functions"), "{}", dry.stdout);
    assert_eq!(
        db.scalar("SELECT count(*) FROM information_schema.columns WHERE table_name = 'notes_tagged'"),
        "2"
    );
    let r = both.run(&db.name, env, &dir, &["up"]);
    r.assert_ok();
    assert!(r.stdout.starts_with("applied R__notes_views ("), "{}", r.stdout);
    assert_eq!(
        db.scalar("SELECT count(*) FROM information_schema.columns WHERE table_name = 'notes_tagged'"),
        "3"
    );
    assert_eq!(rows(&db), format!("a_functions {},notes_views {}", sum(FUNC), sum(view2)));
    // verify: no drift.
    both.run(&db.name, env, &dir, &["verify"]).assert_ok();

    // A failing one rolls back with its row: the view and the row as they were.
    dir.write(
        "R__notes_views.sql",
        "CREATE OR REPLACE VIEW notes_tagged AS SELECT id, tag, upper(tag) AS shout FROM notes;\nSELECT no_such_column FROM notes;\n",
    );
    let r = both.run(&db.name, env, &dir, &["up"]);
    assert_eq!(r.code, 2, "{r:#?}");
    assert!(
        r.error_line().starts_with(&format!(
            "error: {}:2:8: the repeatable migration failed: column \"no_such_column\" does not exist",
            dir.shown("R__notes_views.sql")
        )),
        "{}",
        r.stderr
    );
    assert_eq!(rows(&db), format!("a_functions {},notes_views {}", sum(FUNC), sum(view2)));
    assert_eq!(db.scalar("SELECT count(*) FROM notes_tagged"), "0");
    assert!(db.scalar("SELECT pg_get_viewdef('notes_tagged')").contains("WHERE"));
    dir.write("R__notes_views.sql", view2);

    // down: no undo for a repeatable; its rows are reset so the next up
    // makes the view again after V2's undo dropped it.
    let dry = both.run(&db.name, env, &dir, &["down", "--dry-run"]);
    dry.assert_ok();
    assert!(
        dry.stdout.contains("-- first: the repeatable migrations' rows are removed (logged), so the next up applies every R__ file again\nWITH gone AS (\n    DELETE FROM \"chatmigrate_history_repeatable\""),
        "{}",
        dry.stdout
    );
    assert_eq!(rows(&db), format!("a_functions {},notes_views {}", sum(FUNC), sum(view2)));
    let r = both.run(&db.name, env, &dir, &["down"]);
    r.assert_ok();
    assert_eq!(rows(&db), "");
    assert!(!db.table_exists("notes_tagged"));
    assert_eq!(
        db.scalar("SELECT string_agg(action || ':' || version, ',' ORDER BY id) FROM chatmigrate_history_log"),
        "repeatable-reset:0,repeatable-reset:0,undo:2"
    );
    let r = both.run(&db.name, env, &dir, &["--format", "json", "up"]);
    r.assert_ok();
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let applied: Vec<String> = v["applied"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            format!(
                "{} {} {}",
                a["version"],
                a["name"].as_str().unwrap(),
                a["kind"].as_str().unwrap_or("-")
            )
        })
        .collect();
    assert_eq!(
        applied,
        vec!["2 notes_tag -", "0 a_functions repeatable", "0 notes_views repeatable"]
    );
    assert_eq!(db.scalar("SELECT note_count()"), "0");

    // A repeatable file removed: missing in status, drift for verify, its
    // row removed by repair (logged); up is not refused.
    dir.remove("R__a_functions.sql");
    let st = both.run(&db.name, env, &dir, &["status"]);
    assert!(st.stdout.contains("R        a_functions  missing"), "{}", st.stdout);
    assert!(st.stdout.contains("no file R__a_functions.sql"), "{}", st.stdout);
    let v = both.run(&db.name, env, &dir, &["verify"]);
    assert_eq!(v.code, 1, "{v:#?}");
    assert!(
        v.stdout
            .starts_with("missing: R__a_functions is applied but no file R__a_functions.sql is in the set\n"),
        "{}",
        v.stdout
    );
    let r = both.run(&db.name, env, &dir, &["up"]);
    assert!(r.stdout.starts_with("nothing to apply"), "{}", r.stdout);
    let r = both.run(&db.name, env, &dir, &["repair"]);
    r.assert_ok();
    assert!(r.stdout.contains("removed 1 repeatable row(s) without a file"), "{}", r.stdout);
    assert_eq!(rows(&db), format!("notes_views {}", sum(view2)));
    both.run(&db.name, env, &dir, &["verify"]).assert_ok();
}

#[test]
fn repeatables_on_the_direct_backend() {
    story("direct");
}

#[test]
fn repeatables_through_the_data_api() {
    story("aurora");
}

/// The checksum is the text's before placeholders are substituted: a new
/// value is not a change. `no-transaction` is refused at its line.
#[test]
fn placeholders_and_directives_in_a_repeatable() {
    let (db, dir) = (Db::new(), Dir::new());
    dir.write("V1__t.sql", "CREATE TABLE t (id int);\n");
    dir.write(
        "R__v.sql",
        "CREATE OR REPLACE VIEW v AS SELECT id, '${label}'::text AS label FROM t;\n",
    );
    cm(&db, &dir, &["--placeholder", "label=one", "up"]).assert_ok();
    let r = cm(&db, &dir, &["--placeholder", "label=two", "up"]);
    assert!(r.stdout.starts_with("nothing to apply"), "{}", r.stdout);
    dir.write(
        "R__w.sql",
        "-- a view\n-- chatmigrate:no-transaction\nCREATE OR REPLACE VIEW w AS SELECT 1;\n",
    );
    let r = cm(&db, &dir, &["up"]);
    r.assert_error(&format!(
        "{}:2:1: `no-transaction` in a repeatable migration: an R__ file runs in one transaction with its history row; put statements that cannot run in a transaction (CREATE INDEX CONCURRENTLY) in a versioned file",
        dir.shown("R__w.sql")
    ));
    dir.remove("R__w.sql");
    dir.write("R__v.undo.sql", "DROP VIEW v;\n");
    let r = cm(&db, &dir, &["up"]);
    r.assert_error(&format!(
        "{}: a repeatable migration has no undo file: `down` reverts versioned migrations only",
        dir.shown("R__v.undo.sql")
    ));
    dir.remove("R__v.undo.sql");
    // Two directories with the same repeatable: named.
    let other = Dir::new();
    other.write("R__v.sql", "SELECT 1;\n");
    let r = run_in(
        dir.path(),
        &[
            "--database-url",
            &db.url,
            "--migrations",
            &dir.path().display().to_string(),
            "--migrations",
            &other.path().display().to_string(),
            "up",
        ],
        &[],
    );
    r.assert_error(&format!(
        "repeatable migration v is defined twice: {} and {}",
        dir.path().join("R__v.sql").display(),
        other.path().join("R__v.sql").display()
    ));
}

/// A set without R__ files makes no table of repeatables (a database of an
/// earlier release looks the same): `status` reads it, the first `up` that
/// applies a repeatable migration adds the table under the lock and leaves
/// the history table as it was.
#[test]
fn an_earlier_database_gets_the_table_of_repeatables() {
    let (db, dir) = (Db::new(), Dir::new());
    dir.write("V1__t.sql", "CREATE TABLE t (id int);\n");
    cm(&db, &dir, &["up"]).assert_ok();
    assert!(!db.table_exists("chatmigrate_history_repeatable"));
    let columns = "SELECT string_agg(column_name, ',' ORDER BY ordinal_position) FROM information_schema.columns WHERE table_name = 'chatmigrate_history'";
    let before = db.scalar(columns);
    dir.write("R__v.sql", "CREATE OR REPLACE VIEW v AS SELECT id FROM t;\n");
    let st = cm(&db, &dir, &["status"]);
    st.assert_ok();
    assert!(st.stdout.contains("R        v     pending"), "{}", st.stdout);
    cm(&db, &dir, &["up"]).assert_ok();
    assert_eq!(db.scalar(columns), before);
    assert_eq!(db.scalar("SELECT name FROM chatmigrate_history_repeatable"), "v");
    // baseline does not mark repeatables: the next up applies them.
    let db2 = Db::new();
    db2.exec("CREATE TABLE t (id int)");
    let r = cm(&db2, &dir, &["baseline", "--target", "1"]);
    r.assert_ok();
    assert!(r.stdout.contains("recorded 1 migration(s)"), "{}", r.stdout);
    let r = cm(&db2, &dir, &["up"]);
    assert!(r.stdout.starts_with("applied R__v ("), "{}", r.stdout);
}

/// `new --repeatable NAME` creates `R__NAME.sql`, and refuses a second.
#[test]
fn new_repeatable_creates_the_file() {
    let (db, dir) = (Db::new(), Dir::new());
    let r = cm(&db, &dir, &["new", "--repeatable", "views"]);
    r.assert_ok();
    assert_eq!(r.stdout, format!("created {}\n", dir.path().join("R__views.sql").display()));
    assert!(dir.read("R__views.sql").contains("CREATE OR REPLACE"));
    let r = cm(&db, &dir, &["new", "--repeatable", "views"]);
    r.assert_error(&format!("new: {} exists already", dir.path().join("R__views.sql").display()));
}

/// On the live Citus coordinator: a view over a distributed table, applied
/// after the versioned files, again when it changes; a failing one rolls
/// back; status shows it.
#[test]
fn live_citus_repeatables() {
    let Some(l) = crate::support::citus::live("live_citus_repeatables") else {
        return;
    };
    let m = l.dir.path().join("m");
    std::fs::create_dir_all(&m).unwrap();
    std::fs::write(
        m.join("V1__cmt_gen.sql"),
        "CREATE TABLE cmt_gen_1 (id bigint PRIMARY KEY, tag text);\nSELECT create_distributed_table('cmt_gen_1', 'id');\n",
    )
    .unwrap();
    std::fs::write(
        m.join("R__cmt_views.sql"),
        "CREATE OR REPLACE VIEW cmt_rep_view AS SELECT id FROM cmt_gen_1;\n",
    )
    .unwrap();
    let run = |args: &[&str]| {
        let mut full = vec!["--migrations", "m"];
        full.extend_from_slice(args);
        l.run(&full)
    };
    let r = run(&["up"]);
    r.assert_ok();
    assert!(r.stdout.contains("applied R__cmt_views ("), "{}", r.stdout);
    assert_eq!(l.scalar("SELECT count(*) FROM cmt_rep_view"), "0");
    std::fs::write(
        m.join("R__cmt_views.sql"),
        "CREATE OR REPLACE VIEW cmt_rep_view AS SELECT id, tag FROM cmt_gen_1;\n",
    )
    .unwrap();
    let st = run(&["status", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&st.stdout).unwrap();
    assert_eq!(v["migrations"][1]["state"], "outdated", "{v}");
    run(&["up"]).assert_ok();
    assert_eq!(
        l.scalar("SELECT count(*) FROM information_schema.columns WHERE table_name = 'cmt_rep_view'"),
        "2"
    );
    std::fs::write(
        m.join("R__cmt_views.sql"),
        "CREATE OR REPLACE VIEW cmt_rep_view AS SELECT id, tag, 1 AS one FROM cmt_gen_1;\nSELECT nope FROM cmt_gen_1;\n",
    )
    .unwrap();
    let r = run(&["up"]);
    assert_eq!(r.code, 2, "{r:#?}");
    assert_eq!(
        l.scalar("SELECT count(*) FROM information_schema.columns WHERE table_name = 'cmt_rep_view'"),
        "2"
    );
    let st = run(&["status"]);
    assert!(st.stdout.contains("R        cmt_views  outdated"), "{}", st.stdout);
    l.query("DROP VIEW IF EXISTS cmt_rep_view");
    l.reset();
}
