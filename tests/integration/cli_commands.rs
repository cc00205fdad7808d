//! `new`, `baseline`, `verify`, help and exit codes.

use crate::support::*;

#[test]
fn new_creates_timestamped_and_sequential_files() {
    let dir = Dir::new();
    let m = dir.path().to_str().unwrap();
    let r = run_in(dir.path(), &["--migrations", m, "new", "add_users"], &[]);
    r.assert_ok();
    let files: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(files.len(), 1);
    let f = &files[0];
    let version: i64 = f.strip_prefix('V').unwrap().split("__").next().unwrap().parse().unwrap();
    assert!(version > 20_260_000_000_000 && f.ends_with("__add_users.sql"), "{f}");
    assert_eq!(r.stdout, format!("created {}\n", dir.shown(f)));
    let r = run_in(
        dir.path(),
        &["--migrations", m, "new", "next_one", "--sequential", "--no-transaction"],
        &[],
    );
    r.assert_ok();
    let p = dir.path().join(format!("V{}__next_one.sql", version + 1));
    assert!(std::fs::read_to_string(p).unwrap().starts_with("-- chatmigrate:no-transaction\n"));
    // A usage error, whose hint shows a name that works (not the config reference).
    let r = run_in(dir.path(), &["--migrations", m, "new", "Bad-Name"], &[]);
    r.assert_error("new: the name `Bad-Name` may hold only letters, digits and underscores");
    assert_eq!(
        r.hint(),
        "hint: e.g. `chatmigrate new bad_name`: the file is then V<version>__bad_name.sql"
    );
    let j = run_in(dir.path(), &["--format", "json", "--migrations", m, "new", "x y"], &[]);
    assert_eq!(j.code, 2);
    let v: serde_json::Value = serde_json::from_str(&j.stdout).unwrap();
    assert_eq!(v["error"]["kind"], "usage", "{v}");
}

#[test]
fn baseline_records_without_running() {
    let (db, dir) = (Db::new(), Dir::new());
    dir.write("V1__a.sql", "CREATE TABLE a (id int);\n");
    dir.write("V2__b.sql", "CREATE TABLE b (id int);\n");
    dir.write("V3__c.sql", "CREATE TABLE c (id int);\n");
    db.exec("CREATE TABLE a (id int); CREATE TABLE b (id int);");
    let r = cm(&db, &dir, &["baseline", "--target", "2"]);
    r.assert_ok();
    assert_eq!(r.stdout, "baseline: recorded 2 migration(s) as applied without running them\n");
    assert_eq!(db.history(), vec![(1, "applied".into(), 1), (2, "applied".into(), 1)]);
    assert_eq!(
        db.scalar("SELECT count(*) FROM chatmigrate_history_log WHERE action = 'baseline'"),
        "2"
    );
    cm(&db, &dir, &["up"]).assert_ok();
    assert_eq!(db.versions(), vec![1, 2, 3]);
    cm(&db, &dir, &["baseline", "--target", "9"]).assert_error("--target 9: no migration file has that version");
    let r = cm(&db, &dir, &["baseline"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("--target <VERSION>|--from-refinery"), "{}", r.stderr);
}

#[test]
fn baseline_over_an_existing_history_is_refused_unless_allowed() {
    let (db, dir) = (Db::new(), Dir::new());
    dir.write("V1__a.sql", "CREATE TABLE a (id int);\n");
    cm(&db, &dir, &["up"]).assert_ok();
    dir.write("V2__b.sql", "CREATE TABLE b (id int);\n");
    dir.write("V3__c.sql", "CREATE TABLE c (id int);\n");
    // V2 and V3 never ran: marking them applied would skip them for good.
    let r = cm(&db, &dir, &["baseline", "--target", "3"]);
    r.assert_error("baseline --target 3: the history already holds 1 row(s) (V1); it would mark V2, V3 as applied without running them");
    assert_eq!(
        r.hint(),
        "hint: run `chatmigrate up` to apply them, or pass --allow-existing if they are already in the database"
    );
    assert_eq!(db.versions(), vec![1]);
    assert_eq!(db.scalar("SELECT count(*) FROM chatmigrate_history_log"), "0");
    let j = cm(&db, &dir, &["--format", "json", "baseline", "--target", "2"]);
    assert_eq!(j.code, 2);
    let v: serde_json::Value = serde_json::from_str(j.stdout.trim()).unwrap();
    assert_eq!(v["error"]["kind"], "plan");
    assert_eq!(db.versions(), vec![1]);
    // Nothing to mark: nothing to refuse.
    cm(&db, &dir, &["baseline", "--target", "1"]).assert_ok();
    // The user says they are in the database already.
    db.exec("CREATE TABLE b (id int)");
    let r = cm(&db, &dir, &["baseline", "--target", "2", "--allow-existing"]);
    r.assert_ok();
    assert_eq!(r.stdout, "baseline: recorded 1 migration(s) as applied without running them\n");
    assert_eq!(db.versions(), vec![1, 2]);
    assert_eq!(
        db.scalar("SELECT string_agg(version || ' ' || action || ' ' || detail, '; ') FROM chatmigrate_history_log"),
        "2 baseline baseline --target 2"
    );
    cm(&db, &dir, &["up"]).assert_ok();
    assert_eq!(db.versions(), vec![1, 2, 3]);
    // The flag the user gave is the one named.
    dir.remove("V2__b.sql");
    cm(&db, &dir, &["baseline", "--target", "2"]).assert_error("--target 2: no migration file has that version");
    let r = cm(&db, &dir, &["baseline", "--from-refinery", "--allow-existing"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .starts_with("error: the argument '--from-refinery' cannot be used with '--allow-existing'"),
        "{}",
        r.stderr
    );
}

#[test]
fn baseline_from_refinery_imports_and_checks_refinery_checksums() {
    let (db, dir) = (Db::new(), Dir::new());
    let files = [
        ("V1__first", "CREATE TABLE a (id int);\n"),
        ("V2__second", "CREATE TABLE b (id int);\n"),
    ];
    db.exec("CREATE TABLE refinery_schema_history (version int4 PRIMARY KEY, name varchar(255), applied_on varchar(255), checksum varchar(255))");
    for (i, (stem, sql)) in files.iter().enumerate() {
        dir.write(&format!("{stem}.sql"), sql);
        let sum = refinery_core::Migration::unapplied(stem, sql).unwrap().checksum();
        let name = stem.split("__").nth(1).unwrap();
        db.exec(&format!(
            "INSERT INTO refinery_schema_history VALUES ({}, '{name}', '2025-01-01T00:00:00Z', '{sum}')",
            i + 1
        ));
        db.exec(sql);
    }
    dir.write("V3__third.sql", "CREATE TABLE c (id int);\n");
    let r = cm(&db, &dir, &["baseline", "--from-refinery"]);
    r.assert_ok();
    assert_eq!(r.stdout, "baseline: recorded 2 migration(s) as applied without running them\n");
    assert_eq!(db.versions(), vec![1, 2]);
    assert_eq!(
        db.scalar("SELECT detail FROM chatmigrate_history_log WHERE version = 1"),
        "applied by refinery on 2025-01-01T00:00:00Z"
    );
    cm(&db, &dir, &["up"]).assert_ok();
    assert_eq!(db.versions(), vec![1, 2, 3]);

    // A file that changed since refinery applied it is not adopted.
    let other = Db::new();
    other.exec("CREATE TABLE refinery_schema_history (version int4 PRIMARY KEY, name varchar(255), applied_on varchar(255), checksum varchar(255))");
    other.exec("INSERT INTO refinery_schema_history VALUES (1, 'first', 'x', '12345')");
    let r = cm(&other, &dir, &["baseline", "--from-refinery"]);
    let ours = refinery_core::Migration::unapplied("V1__first", files[0].1).unwrap().checksum();
    r.assert_error(&format!(
        "{}: version 1 was applied with checksum refinery:12345 (first) but the file now has refinery:{ours} (first)",
        dir.shown("V1__first.sql")
    ));
    assert!(other.versions().is_empty());
}

#[test]
fn help_and_usage_errors() {
    let dir = Dir::new();
    let r = run_in(dir.path(), &["--help"], &[]);
    r.assert_ok();
    for cmd in [
        "up",
        "status",
        "new",
        "verify",
        "baseline",
        "repair",
        "lint",
        "wait",
        "database",
        "completions",
        "man",
    ] {
        assert!(r.stdout.contains(&format!("\n  {cmd} ")), "{}", r.stdout);
    }
    assert!(
        r.stdout
            .contains("\nExit codes:\n  0         ok\n  1         ran fine and found something"),
        "{}",
        r.stdout
    );
    let r = run_in(dir.path(), &["up", "--bogus"], &[]);
    assert_eq!(r.code, 2);
    let r = run_in(dir.path(), &["--version"], &[]);
    assert_eq!(r.stdout, format!("chatmigrate {}\n", env!("CARGO_PKG_VERSION")));
}

#[test]
fn color_is_off_without_a_terminal_and_forced_with_always() {
    let (db, dir) = (Db::new(), Dir::new());
    dir.write("V1__a.sql", "CREATE TABLE a (id int);\n");
    let r = cm(&db, &dir, &["up"]);
    assert!(!r.stdout.contains('\x1b'));
    let r = cm(&db, &dir, &["--color", "always", "status"]);
    assert!(r.stdout.contains("\x1b[32mapplied"), "{}", r.stdout);
    // Nothing listens on port 1: refused at once (refused_timeout 0s).
    dir.write("chatmigrate.toml", "[environments.t]\nrefused_timeout = \"0s\"\n");
    let r = run_in(
        dir.path(),
        &[
            "--env",
            "t",
            "--database-url",
            "postgres://u@127.0.0.1:1/x",
            "--color",
            "always",
            "status",
        ],
        &[],
    );
    assert!(r.stderr.starts_with("\x1b[1;31merror:\x1b[0m"), "{}", r.stderr);
}

#[test]
fn verbose_names_config_target_and_backend_capabilities() {
    let (db, dir) = (Db::new(), Dir::new());
    dir.write("V1__a.sql", "CREATE TABLE a (id int);\n");
    let r = cm(&db, &dir, &["-v", "up"]);
    r.assert_ok();
    assert!(
        r.stderr.starts_with("config: none; environment: none; target: postgres@127.0.0.1:"),
        "{}",
        r.stderr
    );
    assert!(
        r.stdout.contains(&format!(
            "connected to postgres@127.0.0.1:{}/{} (postgres: lease row held by a session advisory lock, one round trip per transactional migration)",
            port(),
            db.name
        )),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("applying V1 a ..."), "{}", r.stdout);
    assert!(!r.output().contains(&server_password()));
}
