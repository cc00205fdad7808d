//! `chatmigrate database create|drop|reset`: the database of an environment
//! marked `dev = true`, and no other (refused with the reason: another
//! environment, a URL naming the database, no environment, the maintenance
//! database), with nothing dropped or created when refused.

use crate::support::*;

/// A chatmigrate.toml with `dev` (marked) and `prod` (not) on the test
/// server, both for database `name`; the password comes from CM_TEST_PW.
fn config(dir: &Dir, name: &str) {
    let env = |dev: bool| {
        format!(
            "host = \"127.0.0.1\"\nport = {}\nuser = \"postgres\"\ndbname = \"{name}\"\npassword_env = \"CM_TEST_PW\"\nsslmode = \"disable\"\nmigrations = [\"m\"]\n{}",
            port(),
            if dev { "dev = true\n" } else { "" }
        )
    };
    dir.write(
        "chatmigrate.toml",
        format!(
            "default_env = \"dev\"\n[environments.dev]\n{}[environments.prod]\n{}",
            env(true),
            env(false)
        ),
    );
    dir.write("m/V1__a.sql", "CREATE TABLE a (id int);\n");
    dir.write("m/V2__b.sql", "CREATE TABLE b (id int);\n");
}

fn exists(name: &str) -> bool {
    query_url(&server_url(), &format!("SELECT count(*) FROM pg_database WHERE datname = '{name}'"))[0][0].as_deref() == Some("1")
}

#[test]
fn database_create_drop_and_reset_act_on_a_dev_environment() {
    let (dir, name) = (Dir::new(), Db::fresh_name());
    let db = Db::adopt(&name);
    config(&dir, &name);
    let pw = server_password();
    let env = [("CM_TEST_PW", pw.as_str())];
    let run = |args: &[&str]| run_in(dir.path(), args, &env);
    let server = format!("postgres@127.0.0.1:{}", port());

    let r = run(&["database", "create"]);
    r.assert_ok();
    assert_eq!(r.stdout, format!("created database {name} on {server}\n"));
    assert!(exists(&name));
    let r = run(&["database", "create"]);
    r.assert_ok();
    assert_eq!(r.stdout, format!("database {name} already exists on {server}: nothing to create\n"));

    run(&["up"]).assert_ok();
    // A session left open on it (a psql, an app) does not stop the drop.
    let _open = Holder::hold(&db.url, "left-open", "SELECT 1", None);
    let r = run(&["database", "drop"]);
    r.assert_ok();
    assert_eq!(r.stdout, format!("dropped database {name} on {server}\n"));
    assert!(!exists(&name));
    let r = run(&["database", "drop"]);
    r.assert_ok();
    assert_eq!(r.stdout, format!("database {name} does not exist on {server}: nothing to drop\n"));

    // reset: drop (nothing here), create, apply.
    let r = run(&["database", "reset", "--target", "1"]);
    r.assert_ok();
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines[0], format!("database {name} does not exist on {server}: nothing to drop"));
    assert_eq!(lines[1], format!("created database {name}"));
    assert!(lines[2].starts_with("applied V1 a ("), "{}", r.stdout);
    assert_eq!(db.versions(), vec![1]);
    db.exec("CREATE TABLE leftover (id int)");
    let r = run(&["database", "reset"]);
    r.assert_ok();
    assert_eq!(r.stdout.lines().next().unwrap(), format!("dropped database {name} on {server}"));
    assert_eq!(db.versions(), vec![1, 2]);
    assert!(!db.table_exists("leftover"), "reset starts from an empty database");

    let j = run(&["--format", "json", "database", "drop"]);
    j.assert_ok();
    let v: serde_json::Value = serde_json::from_str(&j.stdout).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["action"], "drop");
    assert_eq!(v["changed"], true);
    assert_eq!(v["database"], name.as_str());
    assert!(!exists(&name));
}

#[test]
fn database_commands_refuse_what_is_not_a_dev_database() {
    let (dir, db) = (Dir::new(), Db::new());
    config(&dir, &db.name);
    let pw = server_password();
    let env = [("CM_TEST_PW", pw.as_str())];
    let server = format!("postgres@127.0.0.1:{}", port());
    let name = &db.name;

    let r = run_in(dir.path(), &["--env", "prod", "database", "drop"], &env);
    r.assert_error(&format!(
        "will not drop database `{name}` on {server}: environment `prod` is not marked as a development environment (dev = true)"
    ));
    assert_eq!(
        r.hint(),
        "hint: `database create|drop|reset` act only on a development database: add `dev = true` to [environments.prod] if it is one; `chatmigrate up --create-database` creates any database"
    );
    let r = run_in(dir.path(), &["--env", "prod", "database", "reset"], &env);
    assert!(
        r.error_line().starts_with(&format!("error: will not reset database `{name}`")),
        "{}",
        r.stderr
    );

    // A URL names the database instead of the dev environment.
    let r = run_in(dir.path(), &["--database-url", &db.url, "database", "drop"], &env);
    r.assert_error(&format!(
        "will not drop database `{name}` on {server}: --database-url names the database, not development environment `dev`"
    ));
    assert_eq!(
        r.hint(),
        "hint: leave out --database-url to act on the database of environment `dev`"
    );
    let r = run_in(
        dir.path(),
        &["database", "drop"],
        &[("CM_TEST_PW", pw.as_str()), ("DATABASE_URL", db.url.as_str())],
    );
    r.assert_error(&format!(
        "will not drop database `{name}` on {server}: DATABASE_URL names the database, not development environment `dev`"
    ));
    assert_eq!(r.hint(), "hint: unset DATABASE_URL to act on the database of environment `dev`");

    // No environment at all.
    let tmp = tempfile::tempdir().unwrap();
    let r = run_in(tmp.path(), &["--database-url", &db.url, "database", "create"], &[]);
    r.assert_error(&format!(
        "will not create database `{name}` on {server}: no environment is chosen (--env, CHATMIGRATE_ENV or default_env), so none is marked as a development one"
    ));
    let j = run_in(
        tmp.path(),
        &["--format", "json", "--database-url", &db.url, "database", "drop"],
        &[],
    );
    let v: serde_json::Value = serde_json::from_str(&j.stdout).unwrap();
    assert_eq!(v["error"]["kind"], "config", "{v}");

    // The maintenance database itself.
    let dir2 = Dir::new();
    config(&dir2, "postgres");
    run_in(dir2.path(), &["database", "drop"], &env).assert_error(
        "will not drop database `postgres`: it is maintenance_db, the database chatmigrate connects to in order to create and drop databases",
    );

    assert!(exists(name), "nothing was dropped");
    assert!(exists("postgres"));
}
