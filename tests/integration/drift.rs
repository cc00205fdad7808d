//! History against files: checksums, CRLF/BOM, missing files, out of order.

use crate::support::*;

fn two(dir: &Dir) {
    dir.write("V1__a.sql", "CREATE TABLE a (id int);\n");
    dir.write("V2__b.sql", "CREATE TABLE b (id int);\n");
}

/// An edited applied file (refused by `up`, reported by `verify` and
/// `status` on every backend: contract.rs) is accepted by `repair`, which
/// logs who accepted which checksums; `up` then goes on.
#[test]
fn repair_accepts_an_edited_applied_file_and_logs_it() {
    let (db, dir) = (Db::new(), Dir::new());
    two(&dir);
    cm(&db, &dir, &["up"]).assert_ok();
    let applied = db.scalar("SELECT checksum FROM chatmigrate_history WHERE version = 1");
    assert!(applied.starts_with("sha256:") && applied.len() == 71, "{applied}");
    dir.write("V1__a.sql", "CREATE TABLE a (id bigint);\n");
    dir.write("V3__c.sql", "CREATE TABLE c (id int);\n");
    let now = chatmigrate::__private::migration::checksum("CREATE TABLE a (id bigint);\n");
    assert_eq!(cm(&db, &dir, &["up"]).code, 2);
    assert!(!db.table_exists("c"), "nothing may run after drift");
    let rep = cm(&db, &dir, &["repair"]);
    rep.assert_ok();
    assert_eq!(rep.stdout, "repair: accepted 1 changed checksum(s), cleared 0 failed row(s)\n");
    assert_eq!(db.scalar("SELECT action || ' ' || old_checksum || ' ' || new_checksum || ' ' || (done_by = current_user)::text FROM chatmigrate_history_log"), format!("repair-checksum {applied} {now} true"));
    cm(&db, &dir, &["up"]).assert_ok();
    assert!(db.table_exists("c"));
    cm(&db, &dir, &["verify"]).assert_ok();
}

#[test]
fn crlf_only_change_is_not_drift() {
    let (db, dir) = (Db::new(), Dir::new());
    dir.write("V1__a.sql", "CREATE TABLE a (id int);\nCREATE TABLE a2 (id int);\n");
    cm(&db, &dir, &["up"]).assert_ok();
    dir.write("V1__a.sql", "CREATE TABLE a (id int);\r\nCREATE TABLE a2 (id int);\r\n");
    let r = cm(&db, &dir, &["up"]);
    r.assert_ok();
    assert!(r.stdout.starts_with("nothing to apply"), "{}", r.stdout);
    cm(&db, &dir, &["verify"]).assert_ok();
}

#[test]
fn bom_is_not_sql_and_not_drift() {
    let (db, dir) = (Db::new(), Dir::new());
    dir.write("V1__a.sql", "\u{feff}CREATE TABLE a (id int);\n");
    cm(&db, &dir, &["up"]).assert_ok();
    assert!(db.table_exists("a"));
    dir.write("V1__a.sql", "CREATE TABLE a (id int);\n");
    cm(&db, &dir, &["verify"]).assert_ok();
    cm(&db, &dir, &["status", "--exit-code"]).assert_ok();
}

#[test]
fn missing_applied_file() {
    let (db, dir) = (Db::new(), Dir::new());
    two(&dir);
    cm(&db, &dir, &["up"]).assert_ok();
    dir.remove("V2__b.sql");
    dir.write("V3__c.sql", "CREATE TABLE c (id int);\n");
    let r = cm(&db, &dir, &["up"]);
    r.assert_error("version 2 (b) is applied in the database but has no migration file");
    assert!(!db.table_exists("c"));
    let s = cm(&db, &dir, &["status"]);
    assert!(s.stdout.contains("missing"), "{}", s.stdout);
    assert_eq!(cm(&db, &dir, &["verify"]).code, 1);
}

#[test]
fn out_of_order_needs_the_flag_and_is_recorded() {
    let (db, dir) = (Db::new(), Dir::new());
    dir.write("V1__a.sql", "CREATE TABLE a (id int);\n");
    dir.write("V3__c.sql", "CREATE TABLE c (id int);\n");
    cm(&db, &dir, &["up"]).assert_ok();
    dir.write("V2__b.sql", "CREATE TABLE b (id int);\n");
    let r = cm(&db, &dir, &["up"]);
    r.assert_error(&format!(
        "{}: version 2 is below the highest applied version 3 (out of order)",
        dir.shown("V2__b.sql")
    ));
    assert!(!db.table_exists("b"));
    let r = cm(&db, &dir, &["up", "--allow-out-of-order"]);
    r.assert_ok();
    assert!(r.stdout.contains("applied V2 b (out of order, "), "{}", r.stdout);
    assert_eq!(
        db.scalar("SELECT out_of_order::text FROM chatmigrate_history WHERE version = 2"),
        "true"
    );
    // `status` says so below the row (JSON: out_of_order).
    let r = cm(&db, &dir, &["status"]);
    let lines: Vec<&str> = r.stdout.lines().collect();
    let row = lines.iter().position(|l| l.starts_with("2 ")).unwrap();
    assert_eq!(
        lines[row + 1],
        "         applied out of order: a higher version was applied before it",
        "{}",
        r.stdout
    );
    assert_eq!(lines.iter().filter(|l| l.contains("out of order")).count(), 1, "{}", r.stdout);
}

#[test]
fn a_renamed_applied_file_is_drift_until_repaired() {
    let (db, dir) = (Db::new(), Dir::new());
    two(&dir);
    cm(&db, &dir, &["up"]).assert_ok();
    // Same version, same text, new name.
    dir.remove("V1__a.sql");
    dir.write("V1__create_a.sql", "CREATE TABLE a (id int);\n");
    dir.write("V3__c.sql", "CREATE TABLE c (id int);\n");
    let r = cm(&db, &dir, &["up"]);
    r.assert_error(&format!(
        "{}: version 1 was applied as `a` but the file is now named `create_a`",
        dir.shown("V1__create_a.sql")
    ));
    assert_eq!(
        r.hint(),
        "hint: rename the file back to V1__a.sql, or accept the new name with `chatmigrate repair`"
    );
    assert!(!db.table_exists("c"), "nothing may run after drift");
    let s = cm(&db, &dir, &["status", "--exit-code"]);
    assert_eq!(s.code, 1);
    assert!(
        s.stdout.contains("applied as a; the file is named create_a (same checksum)"),
        "{}",
        s.stdout
    );
    assert!(s.stdout.contains("1 applied, 1 pending, 1 renamed on "), "{}", s.stdout);
    let j = cm(&db, &dir, &["--format", "json", "status"]);
    let v: serde_json::Value = serde_json::from_str(j.stdout.trim()).unwrap();
    let m = &v["migrations"][0];
    assert_eq!(
        (&m["state"], &m["name"], &m["applied_name"]),
        (
            &serde_json::json!("renamed"),
            &serde_json::json!("create_a"),
            &serde_json::json!("a")
        )
    );
    assert_eq!(v["summary"]["renamed"], 1);
    let v = cm(&db, &dir, &["verify"]);
    assert_eq!(v.code, 1, "{v:#?}");
    assert_eq!(
        v.stdout,
        format!(
            "renamed: V1 create_a ({}): applied as `a`; the file is named `create_a` (same checksum)\n\
             1 drifted migration(s) on postgres@127.0.0.1:{}/{}; accept changed or renamed files with `chatmigrate repair`\n",
            dir.shown("V1__create_a.sql"),
            port(),
            db.name
        )
    );
    // repair records the new name and logs it.
    let rep = cm(&db, &dir, &["repair"]);
    rep.assert_ok();
    assert_eq!(
        rep.stdout,
        "repair: accepted 0 changed checksum(s), 1 new name(s), cleared 0 failed row(s)\n"
    );
    assert_eq!(db.scalar("SELECT name FROM chatmigrate_history WHERE version = 1"), "create_a");
    assert_eq!(
        db.scalar("SELECT action || ': ' || detail FROM chatmigrate_history_log"),
        format!("repair-name: renamed from `a` to `create_a` ({})", dir.shown("V1__create_a.sql"))
    );
    cm(&db, &dir, &["verify"]).assert_ok();
    cm(&db, &dir, &["up"]).assert_ok();
    assert_eq!(db.versions(), vec![1, 2, 3]);
}

#[test]
fn verify_reports_drift_first_and_the_lint_of_pending_files_too() {
    let (db, dir) = (Db::new(), Dir::new());
    two(&dir);
    cm(&db, &dir, &["up"]).assert_ok();
    // Past the gate's threshold: a plain index build on it is a hazard.
    crate::gate::fill(&db, "a", 20_000, "INSERT INTO a SELECT generate_series(2, {rows} + 1)");
    dir.write("V1__a.sql", "CREATE TABLE a (id bigint);\n");
    dir.write("V3__c.sql", "CREATE INDEX a_id ON a (id);\n");
    let r = cm(&db, &dir, &["verify"]);
    assert_eq!(r.code, 1, "{r:#?}");
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert!(lines[0].starts_with("changed: V1 a ("), "{}", r.stdout);
    assert!(lines[1].starts_with("1 drifted migration(s) on "), "{}", r.stdout);
    assert_eq!(lines[2], "");
    assert!(
        lines[3].starts_with(&format!(
            "{}:1:1: error[require-concurrent-index-creation]: ",
            dir.shown("V3__c.sql")
        )),
        "{}",
        r.stdout
    );
    assert_eq!(*lines.last().unwrap(), "1 error in 1 file (14 rules)");
    assert_eq!(r.stderr, "");
    // JSON: both, in one object.
    let j = cm(&db, &dir, &["--format", "json", "verify"]);
    assert_eq!(j.code, 1);
    let v: serde_json::Value = serde_json::from_str(j.stdout.trim()).unwrap();
    assert_eq!(v["drift"][0]["state"], "changed");
    assert_eq!(v["lint"]["summary"]["errors"], 1);
    assert_eq!(v["lint"]["findings"][0]["rule"], "require-concurrent-index-creation");
    assert_eq!(v["message"], "drift found; lint errors in files not applied yet");
    // Drift first also when a pending file does not parse (exit 2 for that).
    dir.write("V3__c.sql", "CREAT TABLE c (id int);\n");
    let r = cm(&db, &dir, &["verify"]);
    assert_eq!(r.code, 2, "{r:#?}");
    assert!(r.stdout.starts_with("changed: V1 a ("), "{}", r.stdout);
    assert!(
        r.error_line().starts_with(&format!("error: {}:1:1: ", dir.shown("V3__c.sql"))),
        "{}",
        r.stderr
    );
}
