//! Bad migration files: each is refused before anything runs, with the file
//! named and the right form shown.

use crate::support::*;

/// Nothing ran: no history table and none of the fixture tables.
fn nothing_applied(db: &Db) {
    assert!(!db.table_exists("chatmigrate_history"), "history table was created");
    assert!(!db.table_exists("a"), "table a exists");
}

fn good(dir: &Dir) {
    dir.write("V1__a.sql", "CREATE TABLE a (id int);\n");
}

#[test]
fn bad_file_name() {
    let (db, dir) = (Db::new(), Dir::new());
    good(&dir);
    dir.write("V2_missing_underscore.sql", "SELECT 1;");
    let r = cm(&db, &dir, &["up"]);
    r.assert_error(&format!(
        "{}: not a migration file name: two underscores separate the version from the name (expected V{{version}}__{{name}}.sql, e.g. V20250101120000__create_users.sql)",
        dir.shown("V2_missing_underscore.sql")
    ));
    assert_eq!(r.hint(), "hint: rename the file, or create one with `chatmigrate new <name>`");
    nothing_applied(&db);
}

#[test]
fn duplicate_version() {
    let (db, dir) = (Db::new(), Dir::new());
    good(&dir);
    dir.write("V001__other.sql", "CREATE TABLE b (id int);");
    cm(&db, &dir, &["up"]).assert_error(&format!(
        "version 1 is used twice: {} and {}",
        dir.shown("V001__other.sql"),
        dir.shown("V1__a.sql")
    ));
    nothing_applied(&db);
}

#[test]
fn non_utf8_file() {
    let (db, dir) = (Db::new(), Dir::new());
    good(&dir);
    dir.write("V2__latin1.sql", b"SELECT 'caf\xe9';".as_slice());
    cm(&db, &dir, &["up"]).assert_error(&format!("{}: file is not valid UTF-8 (byte 11)", dir.shown("V2__latin1.sql")));
    nothing_applied(&db);
}

#[test]
fn empty_files() {
    let (db, dir) = (Db::new(), Dir::new());
    good(&dir);
    dir.write("V2__empty.sql", "");
    cm(&db, &dir, &["up"]).assert_error(&format!("{}: migration is empty (no SQL statements)", dir.shown("V2__empty.sql")));
    nothing_applied(&db);
    // Only comments: also empty, found when the file is split.
    dir.write("V2__empty.sql", "-- nothing here yet\n");
    cm(&db, &dir, &["up"]).assert_error(&format!("{}: migration is empty (no SQL statements)", dir.shown("V2__empty.sql")));
    nothing_applied(&db);
}

#[test]
fn sql_syntax_error_has_line_and_column() {
    let (db, dir) = (Db::new(), Dir::new());
    good(&dir);
    dir.write(
        "V2__typo.sql",
        "-- a comment\nCREATE TABLE b (id int);\n\nCREATE TABLE c (\n    id int,,\n    x text\n);\n",
    );
    let r = cm(&db, &dir, &["up"]);
    r.assert_error(&format!("{}:5:12: syntax error at or near \",\"", dir.shown("V2__typo.sql")));
    assert_eq!(r.hint(), "hint: fix the SQL at that position; nothing was sent to the database");
    nothing_applied(&db);
    assert!(!db.table_exists("b"));
}

#[test]
fn concurrently_in_transactional_file_is_refused_before_anything_runs() {
    let (db, dir) = (Db::new(), Dir::new());
    good(&dir);
    dir.write(
        "V2__idx.sql",
        "CREATE TABLE b (id int);\nCREATE INDEX CONCURRENTLY b_id ON b (id);\n",
    );
    let r = cm(&db, &dir, &["up"]);
    r.assert_error(&format!(
        "{}:2:1: [transaction-incompatible] CREATE INDEX CONCURRENTLY cannot run inside a transaction block, and this file runs in one (`CREATE INDEX CONCURRENTLY b_id ON b (id)`)",
        dir.shown("V2__idx.sql")
    ));
    assert_eq!(r.hint(), "hint: add `-- chatmigrate:no-transaction` as the file's first line (its statements then run one by one), or move the statement to a file of its own");
    nothing_applied(&db);
    // Other statements PostgreSQL refuses in a transaction block.
    for (sql, what) in [
        ("VACUUM a", "VACUUM"),
        ("CREATE DATABASE x", "CREATE DATABASE"),
        ("ALTER SYSTEM SET work_mem = '8MB'", "ALTER SYSTEM"),
        ("REINDEX TABLE CONCURRENTLY a", "REINDEX CONCURRENTLY"),
    ] {
        dir.write("V2__idx.sql", format!("{sql};\n"));
        let r = cm(&db, &dir, &["up"]);
        assert_eq!(r.code, 2);
        assert!(
            r.stderr.contains(&format!("[transaction-incompatible] {what} cannot run")),
            "{sql}: {}",
            r.stderr
        );
        nothing_applied(&db);
    }
}

#[test]
fn ignore_directive_cannot_silence_what_the_server_refuses() {
    let (db, dir) = (Db::new(), Dir::new());
    dir.write(
        "V1__a.sql",
        "-- chatmigrate:ignore transaction-incompatible -- please\nCREATE TABLE a (id int);\nVACUUM a;\n",
    );
    let r = cm(&db, &dir, &["up"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("[transaction-incompatible] VACUUM cannot run"), "{}", r.stderr);
    nothing_applied(&db);
}

#[test]
fn unknown_directive() {
    let (db, dir) = (Db::new(), Dir::new());
    dir.write("V1__a.sql", "-- chatmigrate:no-transactions\nCREATE TABLE a (id int);\n");
    cm(&db, &dir, &["up"]).assert_error(&format!("{}:1:1: unknown directive `no-transactions`", dir.shown("V1__a.sql")));
    nothing_applied(&db);
}

#[test]
fn hidden_files_and_notes_are_skipped_other_files_are_not() {
    let (db, dir) = (Db::new(), Dir::new());
    good(&dir);
    dir.write(".V1__a.sql.swp", "junk");
    dir.write("README.md", "# notes");
    cm(&db, &dir, &["up"]).assert_ok();
    dir.write("notes.txt", "junk");
    cm(&db, &dir, &["up"]).assert_error(&format!(
        "{}: not a migration file name (expected V{{version}}__{{name}}.sql, e.g. V20250101120000__create_users.sql)",
        dir.shown("notes.txt")
    ));
}
