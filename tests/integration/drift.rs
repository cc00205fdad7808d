//! History against files: checksums, CRLF/BOM, missing files, out of order.

use crate::common::*;

fn two(dir: &Dir) {
    dir.write("V1__a.sql", "CREATE TABLE a (id int);\n");
    dir.write("V2__b.sql", "CREATE TABLE b (id int);\n");
}

#[test]
fn edited_applied_file_is_refused_with_both_checksums() {
    let (db, dir) = (Db::new(), Dir::new());
    two(&dir);
    cm(&db, &dir, &["up"]).assert_ok();
    let applied = db.scalar("SELECT checksum FROM chatmigrate_history WHERE version = 1");
    assert!(applied.starts_with("sha256:") && applied.len() == 71, "{applied}");
    dir.write("V1__a.sql", "CREATE TABLE a (id bigint);\n");
    dir.write("V3__c.sql", "CREATE TABLE c (id int);\n");
    let now = chatmigrate::migration::checksum("CREATE TABLE a (id bigint);\n");
    let r = cm(&db, &dir, &["up"]);
    r.assert_error(&format!(
        "{}: version 1 was applied with checksum {applied} but the file now has {now}",
        dir.shown("V1__a.sql")
    ));
    assert_eq!(
        r.hint(),
        "hint: restore the applied file, or accept the new text with `chatmigrate repair`"
    );
    assert!(!db.table_exists("c"), "nothing may run after drift");
    // verify says the same with exit 1; status marks it changed.
    let v = cm(&db, &dir, &["verify"]);
    assert_eq!(v.code, 1, "{v:#?}");
    assert!(v.stdout.contains("changed: V1 a"), "{}", v.stdout);
    let s = cm(&db, &dir, &["status", "--exit-code"]);
    assert_eq!(s.code, 1);
    assert!(s.stdout.contains("changed"), "{}", s.stdout);
    // repair accepts it, logs who and when, and up proceeds.
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
}
