//! The bad-input corpus: file names, directives, durations, config keys and
//! values, URLs, unreadable paths, odd files and runtime SQL errors. Each
//! case runs the real binary and asserts the exact `error:` line, a `hint:`
//! line, exit 2, the same error as the JSON object with `--format json`, and
//! that nothing was written: every case runs `up --create-database` against a
//! database that does not exist, which must still not exist afterwards.
//!
//! Placeholders in the expected lines stand for run-time values only:
//! `{m}` the migrations directory, `{url}` / `{shown}` the database URL (with
//! its password / as printed, redacted), `{db}` its name, `{port}` the port.

use std::path::Path;

use crate::support::*;

/// One bad input.
struct Case {
    what: &'static str,
    /// Files of the migrations directory `m/` (besides a good V1__a.sql).
    files: Vec<(String, Vec<u8>)>,
    /// More set-up inside `m/` (links, FIFOs, directories).
    setup: Option<fn(&Path)>,
    /// chatmigrate.toml in the working directory (placeholders allowed).
    config: Option<String>,
    /// The command line; default: `--database-url {url} --migrations {m} up --create-database`.
    args: Option<Vec<&'static str>>,
    env: Vec<(&'static str, &'static str)>,
    error: String,
    /// The exact hint, when the case is about it; otherwise any hint.
    hint: Option<String>,
}

fn case(what: &'static str) -> Case {
    Case {
        what,
        files: Vec::new(),
        setup: None,
        config: None,
        args: None,
        env: Vec::new(),
        error: String::new(),
        hint: None,
    }
}

impl Case {
    fn file(mut self, name: &str, body: impl AsRef<[u8]>) -> Case {
        self.files.push((name.to_string(), body.as_ref().to_vec()));
        self
    }
    fn setup(mut self, f: fn(&Path)) -> Case {
        self.setup = Some(f);
        self
    }
    fn config(mut self, text: &str) -> Case {
        self.config = Some(text.to_string());
        self
    }
    fn args(mut self, args: &[&'static str]) -> Case {
        self.args = Some(args.to_vec());
        self
    }
    fn env(mut self, k: &'static str, v: &'static str) -> Case {
        self.env.push((k, v));
        self
    }
    fn error(mut self, line: &str) -> Case {
        self.error = line.to_string();
        self
    }
    fn hint(mut self, hint: &str) -> Case {
        self.hint = Some(hint.to_string());
        self
    }
}

const FORM: &str = " (expected V{version}__{name}.sql, e.g. V20250101120000__create_users.sql)";
const DIRECTIVES: &str =
    "known directives: no-transaction, lock-timeout <dur>, statement-timeout <dur>, citus-parallel, adopt-fix, placeholders-in-dollar-quotes, ignore <rule> -- <reason>";
const ENCODE: &str = "percent-encode the password (`@` is %40, `%` is %25, `/` is %2F, `?` is %3F, `#` is %23), e.g. postgres://app:p%40ss%25word@db.example.com:5432/st_chat_db, or leave the password out of the URL and set PGPASSWORD";

fn database_exists(name: &str) -> bool {
    !query_url(&server_url(), &format!("SELECT 1 FROM pg_database WHERE datname = '{name}'")).is_empty()
}

/// Runs every case; collects the failures so one run shows them all.
fn run_cases(cases: Vec<Case>) {
    assert!(cases.iter().all(|c| !c.error.is_empty()), "a case without an expected error");
    let server = server_url();
    let port = server.rsplit_once(':').unwrap().1.split('/').next().unwrap().to_string();
    let mut failures = Vec::new();
    for c in &cases {
        let tmp = tempfile::tempdir().unwrap();
        let m = tmp.path().join("m");
        std::fs::create_dir(&m).unwrap();
        std::fs::write(m.join("V1__a.sql"), "CREATE TABLE a (id int);\n").unwrap();
        for (name, body) in &c.files {
            std::fs::write(m.join(name), body).unwrap();
        }
        if let Some(f) = c.setup {
            f(&m);
        }
        let db = Db::fresh_name();
        let url = with_db(&server, &db);
        let shown = url.replace(&format!(":{}@", server_password()), ":***@");
        let fill = |s: &str| {
            s.replace("{m}", &m.display().to_string())
                .replace("{url}", &url)
                .replace("{shown}", &shown)
                .replace("{db}", &db)
                .replace("{port}", &port)
        };
        if let Some(text) = &c.config {
            std::fs::write(tmp.path().join("chatmigrate.toml"), fill(text)).unwrap();
        }
        let default = ["--database-url", "{url}", "--migrations", "{m}", "up", "--create-database"];
        let args: Vec<String> = c.args.as_deref().unwrap_or(&default).iter().map(|a| fill(a)).collect();
        let want = format!("error: {}", fill(&c.error));
        for json in [false, true] {
            let mut full: Vec<&str> = if json { vec!["--format", "json"] } else { vec![] };
            full.extend(args.iter().map(String::as_str));
            let r = run_in(tmp.path(), &full, &c.env);
            let mut problems = Vec::new();
            if r.code != 2 {
                problems.push(format!("exit {} (want 2)", r.code));
            }
            if r.error_line() != want {
                problems.push(format!("error line\n   got: {}\n  want: {want}", r.error_line()));
            }
            match &c.hint {
                Some(h) if r.hint() != format!("hint: {}", fill(h)) => {
                    problems.push(format!("hint\n   got: {}\n  want: hint: {}", r.hint(), fill(h)))
                }
                None if !r.hint().starts_with("hint: ") => problems.push(format!("no hint line: {:?}", r.hint())),
                _ => {}
            }
            if r.stderr.contains("panicked") || r.stderr.contains(&server_password()) {
                problems.push("a panic or the password on stderr".into());
            }
            if json {
                match serde_json::from_str::<serde_json::Value>(r.stdout.trim()) {
                    Ok(v) if v["ok"] == false && v["error"]["message"] == want["error: ".len()..] && v["error"]["hint"].is_string() => {}
                    _ => problems.push(format!("JSON error object: {:?}", r.stdout)),
                }
            }
            if database_exists(&db) {
                problems.push(format!("database {db} was created"));
                query_url(&server, &format!("DROP DATABASE {db} WITH (FORCE)"));
            }
            if !problems.is_empty() {
                failures.push(format!(
                    "[{}{}] {}\n  stderr: {}",
                    c.what,
                    if json { ", json" } else { "" },
                    problems.join("\n  "),
                    r.stderr.trim_end()
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} case(s) failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

fn name_cases() -> Vec<Case> {
    let sql = "SELECT 1;\n";
    vec![
        case("version 0")
            .file("V0__zero.sql", sql)
            .error("{m}/V0__zero.sql: version `0` is out of range (1 to 9223372036854775807)")
            .hint("rename the file with a version from 1 to 9223372036854775807, e.g. V20250101120000__name.sql (`chatmigrate new <name>` picks a free one)"),
        case("negative version")
            .file("V-1__neg.sql", sql)
            .error(&format!("{{m}}/V-1__neg.sql: not a migration file name: the version must be digits only{FORM}"))
            .hint("rename the file, or create one with `chatmigrate new <name>`"),
        case("one underscore")
            .file("V2_one.sql", sql)
            .error(&format!("{{m}}/V2_one.sql: not a migration file name: two underscores separate the version from the name{FORM}")),
        case("lower-case v")
            .file("v2__lower.sql", sql)
            .error(&format!("{{m}}/v2__lower.sql: not a migration file name: the V must be upper-case{FORM}")),
        case("space in the name")
            .file("V2__add users.sql", sql)
            .error(&format!("{{m}}/V2__add users.sql: not a migration file name: the name may hold only letters, digits and underscores{FORM}")),
        case("dash in the name")
            .file("V2__add-users.sql", sql)
            .error(&format!("{{m}}/V2__add-users.sql: not a migration file name: the name may hold only letters, digits and underscores{FORM}")),
        case("unicode in the name")
            .file("V2__café.sql", sql)
            .error(&format!("{{m}}/V2__café.sql: not a migration file name: the name may hold only letters, digits and underscores{FORM}")),
        case("version past i64")
            .file("V99999999999999999999__huge.sql", sql)
            .error("{m}/V99999999999999999999__huge.sql: version `99999999999999999999` is out of range (1 to 9223372036854775807)"),
        case("version i64::MAX + 1")
            .file("V9223372036854775808__huge.sql", sql)
            .error("{m}/V9223372036854775808__huge.sql: version `9223372036854775808` is out of range (1 to 9223372036854775807)"),
        case("no version")
            .file("V__none.sql", sql)
            .error(&format!("{{m}}/V__none.sql: not a migration file name: the version after the V is missing{FORM}")),
        case("empty name")
            .file("V2__.sql", sql)
            .error(&format!("{{m}}/V2__.sql: not a migration file name: the name after the two underscores is empty{FORM}")),
        case("upper-case extension")
            .file("V2__x.SQL", sql)
            .error(&format!("{{m}}/V2__x.SQL: not a migration file name: migration files end in .sql{FORM}")),
        case("backup file")
            .file("V2__x.sql.bak", sql)
            .error(&format!("{{m}}/V2__x.sql.bak: not a migration file name: migration files end in .sql{FORM}")),
        case("not a migration at all")
            .file("notes.txt", "todo")
            .error(&format!("{{m}}/notes.txt: not a migration file name{FORM}")),
        case("V1 and V01")
            .file("V01__again.sql", sql)
            .error("version 1 is used twice: {m}/V01__again.sql and {m}/V1__a.sql")
            .hint("give one of the files a new version (`chatmigrate new <name>` picks a free one)"),
        case("same version, two names")
            .file("V2__b.sql", sql)
            .file("V2__c.sql", sql)
            .error("version 2 is used twice: {m}/V2__b.sql and {m}/V2__c.sql"),
        case("non-UTF-8 file name")
            .setup(|m| {
                use std::os::unix::ffi::OsStrExt;
                std::fs::write(m.join(std::ffi::OsStr::from_bytes(b"V2__caf\xe9.sql")), "SELECT 1;").unwrap();
            })
            .error(&format!("{{m}}/V2__caf\u{fffd}.sql: not a migration file name{FORM}")),
    ]
}

fn directive_cases() -> Vec<Case> {
    let f = "{m}/V2__d.sql";
    vec![
        case("unknown directive")
            .file("V2__d.sql", "-- chatmigrate:no-transactions\nSELECT 1;\n")
            .error(&format!("{f}:1:1: unknown directive `no-transactions`"))
            .hint(DIRECTIVES),
        case("directive after SQL")
            .file("V2__d.sql", "SELECT 1;\n-- chatmigrate:no-transaction\nSELECT 2;\n")
            .error(&format!("{f}:2:1: `no-transaction` works only in the comments at the top of the file, before the first statement")),
        case("directive after the last statement")
            .file("V2__d.sql", "SELECT 1;\n\n-- chatmigrate:lock-timeout 2s\n")
            .error(&format!("{f}:3:1: `lock-timeout` comes after the last statement, where it applies to nothing: move it to the top of the file (or, for ignore, above its statement)")),
        case("overflowing duration")
            .file("V2__d.sql", "-- chatmigrate:lock-timeout 10000000000000000h\nSELECT 1;\n")
            .error(&format!("{f}:1:1: lock-timeout `10000000000000000h` is out of range (1ms to 24h, or off)"))
            .hint("write it as `-- chatmigrate:lock-timeout 5s`, with a duration from 1ms to 24h, or off"),
        case("seconds past u64")
            .file("V2__d.sql", "-- chatmigrate:statement-timeout 18446744073709551616\nSELECT 1;\n")
            .error(&format!("{f}:1:1: statement-timeout `18446744073709551616` is out of range (1ms to 24h, or off)")),
        case("negative duration")
            .file("V2__d.sql", "-- chatmigrate:lock-timeout -5s\nSELECT 1;\n")
            .error(&format!("{f}:1:1: lock-timeout `-5s` is out of range (1ms to 24h, or off)")),
        case("duration over 24h")
            .file("V2__d.sql", "-- chatmigrate:statement-timeout 25h\nSELECT 1;\n")
            .error(&format!("{f}:1:1: statement-timeout `25h` is out of range (1ms to 24h, or off)")),
        case("not a duration")
            .file("V2__d.sql", "--\n-- chatmigrate:statement-timeout two minutes\nSELECT 1;\n")
            .error(&format!("{f}:2:1: statement-timeout `two minutes` is not a duration (e.g. 500ms, 30s, 5min, 1h)")),
        case("missing argument")
            .file("V2__d.sql", "-- chatmigrate:lock-timeout\nSELECT 1;\n")
            .error(&format!("{f}:1:1: lock-timeout needs a duration (1ms to 24h, or off)")),
        case("argument where none is taken")
            .file("V2__d.sql", "-- chatmigrate:no-transaction yes\nSELECT 1;\n")
            .error(&format!("{f}:1:1: no-transaction takes no argument, got `yes`")),
        case("directive twice")
            .file("V2__d.sql", "-- chatmigrate:lock-timeout 2s\n-- chatmigrate:lock-timeout 3s\nSELECT 1;\n")
            .error(&format!("{f}:2:1: `lock-timeout` is given twice (first on line 1): keep one")),
        case("citus-parallel in a no-transaction file")
            .file("V2__d.sql", "-- chatmigrate:no-transaction\n-- chatmigrate:citus-parallel\nSELECT 1;\n")
            .error(&format!("{f}:2:1: citus-parallel sets the mode of the file's transaction, and a no-transaction file has none: remove one of the two directives")),
        case("ignore without a reason")
            .file("V2__d.sql", "-- chatmigrate:ignore prefer-timestamptz\nSELECT 1;\n")
            .error(&format!("{f}:1:1: ignore needs a rule id and a reason: -- chatmigrate:ignore <rule> -- <reason>")),
    ]
}

fn duration_and_config_cases() -> Vec<Case> {
    let up = |w: &'static str| -> Vec<&'static str> {
        vec![
            "--database-url",
            "{url}",
            "--migrations",
            "{m}",
            "up",
            "--create-database",
            "--lock-wait",
            w,
        ]
    };
    let toml = |extra: &str| format!("[environments.dev]\nurl = \"{{url}}\"\nmigrations = [\"m\"]\ncreate_database = true\n{extra}\n");
    let env_up: &[&'static str] = &["--env", "dev", "up"];
    vec![
        case("--lock-wait overflowing")
            .args(&up("10000000000000000h"))
            .error("--lock-wait `10000000000000000h` is out of range (0s to 24h)")
            .hint("give --lock-wait a duration from 0s to 24h, e.g. --lock-wait 5min"),
        case("--lock-wait past u64 seconds")
            .args(&up("18446744073709551616"))
            .error("--lock-wait `18446744073709551616` is out of range (0s to 24h)"),
        case("--lock-wait over 24h").args(&up("25h")).error("--lock-wait `25h` is out of range (0s to 24h)"),
        case("--lock-wait negative").args(&up("-1s")).error("--lock-wait `-1s` is out of range (0s to 24h)"),
        case("--lock-wait words").args(&up("soon")).error("--lock-wait `soon` is not a duration (e.g. 500ms, 30s, 5min, 1h)"),
        case("--lock-wait unit only").args(&up("ms")).error("--lock-wait `ms` is not a duration (e.g. 500ms, 30s, 5min, 1h)"),
        case("--lock-wait empty").args(&up("")).error("--lock-wait needs a duration (0s to 24h)"),
        case("connect_timeout overflowing")
            .config(&toml("connect_timeout = \"10000000000000000h\""))
            .args(env_up)
            .error("chatmigrate.toml:5:19: connect_timeout `10000000000000000h` is out of range (1ms to 24h)")
            .hint("set connect_timeout to a duration from 1ms to 24h, e.g. connect_timeout = \"30s\" (every key: docs/config.reference.toml)"),
        case("lock_wait not a duration")
            .config(&toml("lock_wait = \"1e3\""))
            .args(env_up)
            .error("chatmigrate.toml:5:13: lock_wait `1e3` is not a duration (e.g. 500ms, 30s, 5min, 1h)"),
        case("lock_timeout negative")
            .config(&toml("lock_timeout = \"-1s\""))
            .args(env_up)
            .error("chatmigrate.toml:5:16: lock_timeout `-1s` is out of range (1ms to 24h, or off)"),
        case("lease_ttl too short")
            .config(&toml("lease_ttl = \"10ms\""))
            .args(env_up)
            .error("chatmigrate.toml:5:13: lease_ttl `10ms` is out of range (100ms to 24h)"),
        case("transaction_keepalive over 24h")
            .config(&toml("transaction_keepalive = \"2000min\""))
            .args(env_up)
            .error("chatmigrate.toml:5:25: transaction_keepalive `2000min` is out of range (100ms to 24h)"),
        case("resume_timeout over 24h")
            .config(&toml("resume_timeout = 90000"))
            .args(env_up)
            .error("chatmigrate.toml:5:18: resume_timeout `90000` is out of range (0s to 24h)"),
        case("request_timeout zero")
            .config(&toml("request_timeout = \"0\""))
            .args(env_up)
            .error("chatmigrate.toml:5:19: request_timeout `0` is out of range (1ms to 24h)"),
        case("port out of range")
            .config(&toml("port = 99999"))
            .args(env_up)
            .error("chatmigrate.toml:5:8: port `99999` is out of range (1 to 65535)")
            .hint("set port to a whole number from 1 to 65535, e.g. port = 5432 (every key: docs/config.reference.toml)"),
        case("port of the wrong type")
            .config(&toml("port = \"5432x\""))
            .args(env_up)
            .error("chatmigrate.toml:5:8: invalid type: string \"5432x\", expected a whole number")
            .hint("every key is listed with a comment in docs/config.reference.toml"),
        case("lock_retries too many")
            .config(&toml("lock_retries = 1000"))
            .args(env_up)
            .error("chatmigrate.toml:5:16: lock_retries `1000` is out of range (0 to 100)"),
        case("lock_retries negative")
            .config(&toml("lock_retries = -1"))
            .args(env_up)
            .error("chatmigrate.toml:5:16: lock_retries `-1` is out of range (0 to 100)"),
        case("boolean of the wrong type")
            .config(&toml("group_commit = \"yes\""))
            .args(env_up)
            .error("chatmigrate.toml:5:16: invalid type: string \"yes\", expected a boolean"),
        case("unknown key")
            .config(&toml("hots = \"db\""))
            .args(env_up)
            .error("chatmigrate.toml:5:1: unknown key `hots` in [environments.dev]")
            .hint("every key is listed with a comment in docs/config.reference.toml"),
        case("bad sslmode")
            .config(&toml("sslmode = \"verify-all\""))
            .args(env_up)
            .error("invalid setting sslmode: `verify-all` is not one of disable, prefer, require, verify-ca, verify-full"),
        case("bad backend")
            .config(&toml("backend = \"mysql\""))
            .args(env_up)
            .error("invalid setting backend: `mysql` is not a backend this build supports (postgres, rds-data, citus)"),
        case("rds-data without its ARNs")
            .config(&toml("backend = \"rds-data\""))
            .args(env_up)
            .error("invalid setting backend: `rds-data` needs resource_arn (the cluster ARN) and secret_arn (its Secrets Manager secret)"),
        case("invalid TOML")
            .config("[environments.dev]\nhost = \"127.0.0.1\nport = 5432\n")
            .args(env_up)
            .error("chatmigrate.toml:2:18: invalid basic string"),
        case("empty --env")
            .config(&toml(""))
            .args(&["--env", "", "up"])
            .error("invalid setting --env: the environment name is empty"),
        case("empty default_env")
            .config(&format!("default_env = \"\"\n{}", toml("")))
            .args(&["up"])
            .error("invalid setting default_env: the environment name is empty"),
        case("missing environment")
            .config(&toml(""))
            .args(&["--env", "prod", "up"])
            .error("environment `prod` is not defined in chatmigrate.toml")
            .hint("add an [environments.<name>] table, or pick one that exists with --env"),
        case("missing config file")
            .args(&["--config", "nope.toml", "up"])
            .error("nope.toml: cannot read config file: No such file or directory (os error 2)"),
        case("PGPORT out of range")
            .args(&["--migrations", "{m}", "up", "--create-database"])
            .env("PGPORT", "99999")
            .error("PGPORT `99999` is out of range (1 to 65535)")
            .hint("set PGPORT to a whole number from 1 to 65535, or unset it"),
        case("PGPORT not a number")
            .args(&["--migrations", "{m}", "up", "--create-database"])
            .env("PGPORT", "54x")
            .error("PGPORT `54x` is not a whole number"),
        case("PGSSLMODE unknown")
            .args(&["--migrations", "{m}", "up", "--create-database"])
            .env("PGSSLMODE", "on")
            .error("invalid setting PGSSLMODE: `on` is not one of disable, prefer, require, verify-ca, verify-full"),
        case("sequential version past i64")
            .file("V9223372036854775807__last.sql", "SELECT 1;\n")
            .args(&["--migrations", "{m}", "new", "next", "--sequential"])
            .error("no version is left after {m}/V9223372036854775807__last.sql: it has the highest version a migration can have (9223372036854775807)"),
        case("new with a bad name")
            .args(&["--migrations", "{m}", "new", "add-users"])
            .error("new: the name `add-users` may hold only letters, digits and underscores"),
    ]
}

fn url_cases() -> Vec<Case> {
    let up = |url: &'static str| -> Vec<&'static str> { vec!["--database-url", url, "--migrations", "{m}", "up", "--create-database"] };
    vec![
        case("bad scheme")
            .args(&up("mysql://postgres@127.0.0.1:{port}/{db}"))
            .error("invalid database URL mysql://postgres@127.0.0.1:{port}/{db}: expected a postgres:// or postgresql:// URL")
            .hint("the form is postgres://user@host:port/dbname?sslmode=verify-full (put the password in PGPASSWORD or password_env)"),
        case("no scheme")
            .args(&up("postgres:pw@127.0.0.1:{port}/{db}"))
            .error("invalid database URL ***@127.0.0.1:{port}/{db}: expected a postgres:// or postgresql:// URL"),
        case("port out of range")
            .args(&up("postgres://postgres@127.0.0.1:99999/{db}"))
            .error("invalid database URL postgres://postgres@127.0.0.1:99999/{db}: port `99999` is out of range (1 to 65535)")
            .hint("give the port a whole number from 1 to 65535, e.g. postgres://user@host:5432/dbname"),
        case("port not a number")
            .args(&up("postgres://postgres@127.0.0.1:54x/{db}"))
            .error("invalid database URL postgres://postgres@127.0.0.1:54x/{db}: port `54x` is not a whole number"),
        case("raw @ in the password")
            .args(&up("postgres://postgres:p@ss@127.0.0.1:{port}/{db}"))
            .error("invalid database URL postgres://postgres:***@127.0.0.1:{port}/{db}: the password holds a raw `@`, which a URL reads as a separator")
            .hint(ENCODE),
        case("raw % in the password")
            .args(&up("postgres://postgres:100%sure@127.0.0.1:{port}/{db}"))
            .error("invalid database URL postgres://postgres:***@127.0.0.1:{port}/{db}: the password holds a `%` that starts no %XX escape")
            .hint(ENCODE),
        case("raw / in the password")
            .args(&up("postgres://postgres:a/b@127.0.0.1:{port}/{db}"))
            .error("invalid database URL postgres://postgres:***@127.0.0.1:{port}/{db}: the password holds a raw `/`, which a URL reads as a separator")
            .hint(ENCODE),
        case("unknown option")
            .args(&up("postgres://postgres@127.0.0.1:{port}/{db}?sslmod=require"))
            .error("invalid database URL postgres://postgres@127.0.0.1:{port}/{db}?sslmod=require: unknown option `sslmod`"),
        case("bad sslmode in the URL")
            .args(&up("postgres://postgres@127.0.0.1:{port}/{db}?sslmode=on"))
            .error("invalid database URL postgres://postgres@127.0.0.1:{port}/{db}?sslmode=on: sslmode `on` is not one of disable, prefer, require, verify-ca, verify-full"),
        case("connect_timeout zero")
            .args(&up("postgres://postgres@127.0.0.1:{port}/{db}?connect_timeout=0"))
            .error("invalid database URL postgres://postgres@127.0.0.1:{port}/{db}?connect_timeout=0: connect_timeout `0` is out of range (1ms to 24h)")
            .hint("give connect_timeout a duration from 1ms to 24h in the URL, e.g. ?connect_timeout=10"),
        case("connect_timeout past i64")
            .args(&up("postgres://postgres@127.0.0.1:{port}/{db}?connect_timeout=99999999999999999999"))
            .error("invalid database URL postgres://postgres@127.0.0.1:{port}/{db}?connect_timeout=99999999999999999999: connect_timeout `99999999999999999999` is out of range (1ms to 24h)"),
        case("connect_timeout in key=value form")
            .args(&up("host=127.0.0.1 port={port} dbname={db} connect_timeout=100000"))
            .error("invalid database URL host=127.0.0.1 port={port} dbname={db} connect_timeout=100000: connect_timeout `100000` is out of range (1ms to 24h)"),
        case("bad URL in the config file")
            .config("[environments.dev]\nurl = \"postgres://postgres:p@ss@127.0.0.1:{port}/{db}\"\nmigrations = [\"m\"]\n")
            .args(&["--env", "dev", "up", "--create-database"])
            .error("invalid database URL postgres://postgres:***@127.0.0.1:{port}/{db}: the password holds a raw `@`, which a URL reads as a separator")
            .hint(ENCODE),
        case("bad DATABASE_URL")
            .args(&["--migrations", "{m}", "up", "--create-database"])
            .env("DATABASE_URL", "postgres://postgres@127.0.0.1:0/x")
            .error("invalid database URL postgres://postgres@127.0.0.1:0/x: port `0` is out of range (1 to 65535)"),
    ]
}

fn path_cases() -> Vec<Case> {
    vec![
        case("missing directory")
            .args(&["--database-url", "{url}", "--migrations", "{m}/nope", "up", "--create-database"])
            .error("{m}/nope: cannot read: No such file or directory (os error 2)")
            .hint("check the path and its permissions"),
        case("a file where the directory should be")
            .args(&["--database-url", "{url}", "--migrations", "{m}/V1__a.sql", "up", "--create-database"])
            .error("{m}/V1__a.sql: cannot read: Not a directory (os error 20)"),
        case("directory symlink loop")
            .setup(|m| std::os::unix::fs::symlink(m.join("loop"), m.join("loop")).unwrap())
            .args(&["--database-url", "{url}", "--migrations", "{m}/loop", "up", "--create-database"])
            .error("{m}/loop: cannot read: Too many levels of symbolic links (os error 40)"),
        case("dangling symlink")
            .setup(|m| std::os::unix::fs::symlink(m.join("gone.sql"), m.join("V2__link.sql")).unwrap())
            .error("{m}/V2__link.sql: is a symbolic link to {m}/gone.sql, which does not exist")
            .hint("restore the link's target, or remove the link"),
        case("file symlink loop")
            .setup(|m| {
                std::os::unix::fs::symlink(m.join("V3__b.sql"), m.join("V2__a.sql")).unwrap();
                std::os::unix::fs::symlink(m.join("V2__a.sql"), m.join("V3__b.sql")).unwrap();
            })
            .error("{m}/V2__a.sql: cannot read: Too many levels of symbolic links (os error 40)"),
        case("a directory where a file should be")
            .setup(|m| std::fs::create_dir(m.join("V2__dir.sql")).unwrap())
            .error("{m}/V2__dir.sql: is a directory, not a migration file")
            .hint("rename the directory so that its name does not end in .sql, or move its files up"),
        case("a link to a directory")
            .setup(|m| {
                std::fs::create_dir(m.join("sub")).unwrap();
                std::os::unix::fs::symlink(m.join("sub"), m.join("V2__sub.sql")).unwrap();
            })
            .error("{m}/V2__sub.sql: is a directory, not a migration file"),
        case("a FIFO")
            .setup(|m| {
                let p = std::ffi::CString::new(m.join("V2__fifo.sql").into_os_string().into_encoded_bytes()).unwrap();
                // SAFETY: a valid NUL-terminated path.
                assert_eq!(unsafe { libc::mkfifo(p.as_ptr(), 0o644) }, 0);
            })
            .error("{m}/V2__fifo.sql: is a FIFO (named pipe), not a regular file")
            .hint("replace it with a regular file that holds the SQL"),
        case("a socket")
            .setup(|m| {
                let l = std::os::unix::net::UnixListener::bind(m.join("V2__sock.sql")).unwrap();
                std::mem::forget(l);
            })
            .error("{m}/V2__sock.sql: is a socket, not a regular file"),
        case("a device")
            .setup(|m| std::os::unix::fs::symlink("/dev/null", m.join("V2__null.sql")).unwrap())
            .error("{m}/V2__null.sql: is a device, not a regular file"),
        case("non-UTF-8 text")
            .file("V2__latin1.sql", b"SELECT 'caf\xe9';\n")
            .error("{m}/V2__latin1.sql: file is not valid UTF-8 (byte 11)")
            .hint("save the file as UTF-8"),
        case("UTF-16 text")
            .file("V2__utf16.sql", b"\xff\xfeS\x00E\x00L\x00")
            .error("{m}/V2__utf16.sql: file is not valid UTF-8 (byte 0)"),
        case("huge file")
            .setup(|m| {
                let f = std::fs::File::create(m.join("V2__huge.sql")).unwrap();
                f.set_len(40 * 1024 * 1024).unwrap();
            })
            .error("{m}/V2__huge.sql: is 40.0 MiB, over the 32 MiB limit for one migration file")
            .hint("split it into several migrations, or load bulk data with COPY outside the migration files"),
        case("empty file")
            .file("V2__empty.sql", "")
            .error("{m}/V2__empty.sql: migration is empty (no SQL statements)")
            .hint("add SQL to the file or delete it"),
        case("BOM only").file("V2__bom.sql", "\u{feff}").error("{m}/V2__bom.sql: migration is empty (no SQL statements)"),
        case("comments only")
            .file("V2__comments.sql", "-- later\n/* nothing */\n;\n")
            .error("{m}/V2__comments.sql: migration is empty (no SQL statements)"),
        case("NUL byte")
            .file("V2__nul.sql", b"SELECT 1;\nSELECT \x00;\n")
            .error("{m}/V2__nul.sql:2:8: NUL byte in SQL text"),
        case("syntax error")
            .file("V2__typo.sql", "CREATE TABLE b (id int);\n\nCREATE TABLE c (\n    id int,,\n    x text\n);\n")
            .error("{m}/V2__typo.sql:4:12: syntax error at or near \",\"")
            .hint("fix the SQL at that position; nothing was sent to the database"),
        case("unterminated string")
            .file("V2__quote.sql", "SELECT 1;\nSELECT 'oops;\n")
            .error("{m}/V2__quote.sql:2:8: unterminated quoted string at or near \"'oops;\\n\""),
        case("CONCURRENTLY in a transaction")
            .file("V2__idx.sql", "CREATE INDEX CONCURRENTLY a_id ON a (id);\n")
            .error("{m}/V2__idx.sql:1:1: [transaction-incompatible] CREATE INDEX CONCURRENTLY cannot run inside a transaction block, and this file runs in one (`CREATE INDEX CONCURRENTLY a_id ON a (id)`)"),
    ]
}

#[test]
fn bad_file_names() {
    run_cases(name_cases());
}

#[test]
fn bad_directives() {
    run_cases(directive_cases());
}

#[test]
fn bad_durations_and_config() {
    run_cases(duration_and_config_cases());
}

#[test]
fn bad_urls() {
    run_cases(url_cases());
}

#[test]
fn unreadable_and_odd_files() {
    run_cases(path_cases());
}

#[test]
fn the_corpus_has_at_least_60_inputs() {
    let n = name_cases().len() + directive_cases().len() + duration_and_config_cases().len() + url_cases().len() + path_cases().len() + 2;
    assert!(n >= 60, "{n} bad inputs");
}

/// Errors the server reports: at file:line:col, exit 2, and the failed
/// migration left nothing behind (transactional) or is recorded as failed
/// with the statements before it done (no-transaction).
#[test]
fn runtime_sql_errors() {
    let (db, dir) = (Db::new(), Dir::new());
    dir.write("V1__a.sql", "CREATE TABLE a (id int);\n");
    dir.write("V2__b.sql", "CREATE TABLE b (id int);\n\nINSERT INTO nope\n  VALUES (1);\n");
    let r = cm(&db, &dir, &["up"]);
    r.assert_error(&format!(
        "{}:3:13: version 2 failed: relation \"nope\" does not exist (SQLSTATE 42P01)",
        dir.shown("V2__b.sql")
    ));
    assert_eq!(
        r.hint(),
        "hint: fix the migration and run `chatmigrate up` again; this migration was rolled back"
    );
    assert_eq!(db.history(), vec![(1, "applied".into(), 1)]);
    assert!(!db.table_exists("b"), "the failed migration's table exists");

    let (db, dir) = (Db::new(), Dir::new());
    dir.write(
        "V1__c.sql",
        "-- chatmigrate:no-transaction\nCREATE TABLE IF NOT EXISTS c (id int);\nCREATE INDEX CONCURRENTLY IF NOT EXISTS c_x ON c (x);\nCREATE TABLE IF NOT EXISTS d (id int);\n",
    );
    let r = cm(&db, &dir, &["up"]);
    r.assert_error(&format!(
        "{}:3:1: version 1 failed: column \"x\" does not exist (SQLSTATE 42703)",
        dir.shown("V1__c.sql")
    ));
    assert_eq!(
        r.hint(),
        "hint: fix the failing statement and run `chatmigrate up` again: it resumes at that statement (the ones before it stay done)"
    );
    assert_eq!(db.history(), vec![(1, "failed".into(), 1)]);
    assert!(db.table_exists("c") && !db.table_exists("d"));
}

/// A panic that slips through is one `error:` line (text) or the JSON error
/// object (kind "internal"), exit 2, no backtrace; the loader's names the
/// file it was reading. Forced through a debug-build failpoint.
#[test]
fn a_panic_is_an_internal_error_not_a_backtrace() {
    let dir = Dir::new();
    dir.write("V1__a.sql", "SELECT 1;\n");
    let m = dir.path().to_str().unwrap();
    let hint =
        "hint: please report it with this output, `chatmigrate --version` and the command you ran (RUST_BACKTRACE=1 adds a backtrace)";
    let r = run_in(
        dir.path(),
        &["--migrations", m, "lint"],
        &[("CHATMIGRATE_TEST_PANIC", "load"), ("RUST_BACKTRACE", "0")],
    );
    assert_eq!(r.code, 2, "{r:#?}");
    let line = r.error_line();
    assert!(
        line.starts_with(&format!(
            "error: internal error while reading {}: test panic while reading a migration file at src/migration.rs:",
            dir.shown("V1__a.sql")
        )) && line.ends_with(" (this is a bug in chatmigrate)"),
        "{}",
        r.stderr
    );
    assert_eq!(r.hint(), hint);
    assert_eq!(r.stderr.lines().count(), 2, "{}", r.stderr);

    let r = run_in(
        dir.path(),
        &["--format", "json", "--migrations", m, "lint"],
        &[("CHATMIGRATE_TEST_PANIC", "main"), ("RUST_BACKTRACE", "0")],
    );
    assert_eq!(r.code, 2, "{r:#?}");
    let v: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["error"]["kind"], "internal");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("internal error: test panic in main at src/main.rs:"));
    assert_eq!(v["error"]["hint"], hint.trim_start_matches("hint: "));
    assert_eq!(r.stderr.lines().count(), 2, "only the error and its hint: {}", r.stderr);

    // RUST_BACKTRACE asks for the backtrace: it comes first, then the error.
    let r = run_in(
        dir.path(),
        &["--migrations", m, "lint"],
        &[("CHATMIGRATE_TEST_PANIC", "main"), ("RUST_BACKTRACE", "1")],
    );
    assert_eq!(r.code, 2);
    assert!(r.stderr.starts_with("panic at src/main.rs:"), "{}", r.stderr);
    assert!(r.stderr.contains("\nerror: internal error: test panic in main"), "{}", r.stderr);
}

/// A command line clap refuses, with `--format json`: the JSON error object
/// on stdout (kind "usage"), clap's text on stderr, exit 2.
#[test]
fn usage_errors_in_json() {
    let dir = Dir::new();
    for (args, message) in [
        (vec!["--format", "json", "status", "--bogus"], "unexpected argument '--bogus' found"),
        (
            vec!["--format=json", "up", "--target", "x"],
            "invalid value 'x' for '--target <VERSION>': invalid digit found in string",
        ),
        (vec!["--format", "json", "launch"], "unrecognized subcommand 'launch'"),
    ] {
        let r = run_in(dir.path(), &args, &[]);
        assert_eq!(r.code, 2, "{r:#?}");
        let v: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {r:#?}"));
        assert_eq!(v["ok"], false);
        assert_eq!(v["error"]["kind"], "usage");
        assert_eq!(v["error"]["message"], message);
        assert!(v["error"]["hint"].is_string());
        assert!(r.stderr.starts_with(&format!("error: {message}")), "{}", r.stderr);
    }
    // Help and version are not errors.
    let r = run_in(dir.path(), &["--format", "json", "--version"], &[]);
    assert_eq!((r.code, r.stdout.starts_with("chatmigrate ")), (0, true), "{r:#?}");
}
