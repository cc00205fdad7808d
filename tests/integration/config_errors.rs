//! Configuration: strict TOML, unknown keys, environments, precedence.

use crate::support::*;

#[test]
fn invalid_toml_names_file_line_and_column() {
    let dir = Dir::new();
    dir.write("chatmigrate.toml", "[environments.dev]\nhost = \"127.0.0.1\nport = 5432\n");
    let r = run_in(dir.path(), &["--env", "dev", "status"], &[]);
    r.assert_error("chatmigrate.toml:2:18: invalid basic string");
    assert_eq!(r.hint(), "hint: every key is listed with a comment in docs/config.reference.toml");
    let cfg = dir.write("other.toml", "[environments.dev]\nport = \"x\"\n");
    let r = run_in(dir.path(), &["--config", cfg.to_str().unwrap(), "--env", "dev", "status"], &[]);
    r.assert_error(&format!(
        "{}:2:8: invalid type: string \"x\", expected a whole number",
        cfg.display()
    ));
}

#[test]
fn unknown_key_is_named() {
    let dir = Dir::new();
    dir.write(
        "chatmigrate.toml",
        "[environments.dev]\nhost = \"127.0.0.1\"\npasword_env = \"X\"\n",
    );
    let r = run_in(dir.path(), &["--env", "dev", "status"], &[]);
    r.assert_error("chatmigrate.toml:3:1: unknown key `pasword_env` in [environments.dev]");
    dir.write("chatmigrate.toml", "default_enviroment = \"dev\"\n");
    run_in(dir.path(), &["status"], &[]).assert_error("chatmigrate.toml:1:1: unknown key `default_enviroment` in the top level");
}

#[test]
fn unknown_environment_and_bad_values() {
    let dir = Dir::new();
    dir.write("chatmigrate.toml", "[environments.dev]\nsslmode = \"verify-all\"\n");
    run_in(dir.path(), &["--env", "prod", "status"], &[]).assert_error("environment `prod` is not defined in chatmigrate.toml");
    run_in(dir.path(), &["--env", "dev", "status"], &[])
        .assert_error("invalid setting sslmode: `verify-all` is not one of disable, prefer, require, verify-ca, verify-full");
    dir.write("chatmigrate.toml", "[environments.dev]\nbackend = \"mysql\"\n");
    run_in(dir.path(), &["--env", "dev", "status"], &[])
        .assert_error("invalid setting backend: `mysql` is not a backend this build supports (postgres, rds-data, citus)");
}

#[test]
fn environment_from_file_with_password_env_and_precedence() {
    let (db, dir) = (Db::new(), Dir::new());
    dir.write("m/V1__a.sql", "CREATE TABLE a (id int);\n");
    let url = db.url.replace(&format!(":{}@", server_password()), "@");
    dir.write(
        "chatmigrate.toml",
        format!("default_env = \"dev\"\n[environments.dev]\nurl = \"{url}\"\npassword_env = \"MY_DB_PASSWORD\"\nmigrations = [\"m\"]\n"),
    );
    // default_env + password_env: no password in the file.
    run_in(dir.path(), &["up"], &[("MY_DB_PASSWORD", &server_password())]).assert_ok();
    assert_eq!(db.versions(), vec![1]);
    // Environment variables beat the file: PGDATABASE points elsewhere.
    let other = Db::new();
    run_in(
        dir.path(),
        &["up"],
        &[("MY_DB_PASSWORD", &server_password()), ("PGDATABASE", &other.name)],
    )
    .assert_ok();
    assert_eq!(other.versions(), vec![1]);
    // DATABASE_URL beats PG* variables; --database-url beats both.
    let third = Db::new();
    run_in(
        dir.path(),
        &["up"],
        &[
            ("MY_DB_PASSWORD", &server_password()),
            ("PGDATABASE", &other.name),
            ("DATABASE_URL", &third.url),
        ],
    )
    .assert_ok();
    assert_eq!(third.versions(), vec![1]);
    let fourth = Db::new();
    run_in(dir.path(), &["--database-url", &fourth.url, "up"], &[("DATABASE_URL", &third.url)]).assert_ok();
    assert_eq!(fourth.versions(), vec![1]);
    // --migrations overrides the environment's directories.
    dir.write("n/V7__z.sql", "CREATE TABLE z (id int);\n");
    let fifth = Db::new();
    run_in(dir.path(), &["--database-url", &fifth.url, "--migrations", "n", "up"], &[]).assert_ok();
    assert_eq!(fifth.versions(), vec![7]);
}

/// The repository's own chatmigrate.toml, in `dir`.
fn repository_config(dir: &Dir) {
    let text = std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("chatmigrate.toml")).unwrap();
    dir.write("chatmigrate.toml", text);
}

/// The README's "Errors" example, with the repository's config (whose dev
/// environment has create_database = true): --database-url names the
/// database, so it is created only with --create-database.
#[test]
fn database_url_is_created_only_when_asked_whatever_the_environment_says() {
    let dir = Dir::new();
    repository_config(&dir);
    let name = Db::fresh_name();
    let url = with_db(&server_url(), &name).replace(&format!(":{}@", server_password()), "@");
    let password = server_password();
    let env = [("PGPASSWORD", password.as_str())];
    let exists = || {
        query_url(
            &server_url(),
            &format!("SELECT count(*)::text FROM pg_database WHERE datname = '{name}'"),
        )[0][0]
            .clone()
    };
    let r = run_in(dir.path(), &["--database-url", &url, "up"], &env);
    r.assert_error(&format!("database `{name}` does not exist on 127.0.0.1:{}", port()));
    assert_eq!(r.hint(), "hint: create it with `chatmigrate up --create-database`");
    assert_eq!(exists().as_deref(), Some("0"));
    let db = Db::adopt(&name);
    run_in(dir.path(), &["--database-url", &url, "up", "--create-database"], &env).assert_ok();
    assert_eq!(db.versions(), vec![1, 2, 3, 4]);
}

/// Without `eval "$(bash scripts/pg.sh env)"`, the dev environment says which
/// variable is missing and which command sets it, before connecting.
#[test]
fn the_dev_environments_missing_password_names_the_variable_and_the_command() {
    let dir = Dir::new();
    repository_config(&dir);
    for args in [&["status"][..], &["up"], &["--env", "dev", "up", "--dry-run"]] {
        let r = run_in(dir.path(), args, &[]);
        r.assert_error("cannot connect to postgres@127.0.0.1:5432/st_chat_db: no password: CHATMIGRATE_DEV_PASSWORD is not set (password_env of environment `dev`)");
        assert_eq!(
            r.hint(),
            "hint: set CHATMIGRATE_DEV_PASSWORD with: eval \"$(bash scripts/pg.sh env)\""
        );
    }
    // Commands that do not connect do not need it.
    run_in(dir.path(), &["--migrations", "m", "new", "x", "--sequential"], &[]).assert_ok();
}

#[test]
fn reference_config_is_accepted_by_the_binary() {
    let dir = Dir::new();
    let reference = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/config.reference.toml");
    // Parses and resolves (the example host is not contacted by `new`).
    let r = run_in(
        dir.path(),
        &[
            "--config",
            reference.to_str().unwrap(),
            "--env",
            "example",
            "--migrations",
            dir.path().to_str().unwrap(),
            "new",
            "x",
            "--sequential",
        ],
        &[],
    );
    r.assert_ok();
}
