//! Property tests through the real binary, where a user types: durations
//! in flags, values in chatmigrate.toml, URLs, migration file names and
//! directives. Whatever the input: exit 0, 1 or 2, never a panic (101); an
//! error is one `error:` line naming the input, then a `hint:` line; with
//! `--format json`, stdout holds the JSON error object; a password is never
//! printed. Fewer cases than the unit properties (each runs the binary).

use proptest::prelude::*;

use crate::support::*;

/// Common checks on one run; `names` must appear in the error line.
fn check(r: &Run, json: bool, names: &[&str]) -> Result<(), TestCaseError> {
    prop_assert!(matches!(r.code, 0..=2), "exit {}: {}", r.code, r.stderr);
    prop_assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    if r.code == 2 {
        let line = r.error_line();
        prop_assert!(line.starts_with("error: "), "{}", r.stderr);
        prop_assert!(names.iter().any(|n| line.contains(n)), "the error names none of {names:?}: {line}");
        prop_assert!(r.hint().starts_with("hint: "), "{}", r.stderr);
        if json {
            let v: serde_json::Value =
                serde_json::from_str(r.stdout.trim()).map_err(|e| TestCaseError::fail(format!("{e}: {:?}", r.stdout)))?;
            prop_assert_eq!(&v["ok"], false);
            prop_assert_eq!(v["error"]["message"].as_str(), Some(&line["error: ".len()..]));
        }
    }
    Ok(())
}

fn with_format(json: bool, args: &[&str]) -> Vec<String> {
    let mut full: Vec<String> = if json { vec!["--format".into(), "json".into()] } else { vec![] };
    full.extend(args.iter().map(|a| a.to_string()));
    full
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, failure_persistence: None, ..ProptestConfig::default() })]

    /// `up --lock-wait X --dry-run` on a database that does not exist:
    /// a valid X plans (exit 0, nothing created), any other is refused.
    #[test]
    fn lock_wait_flag(text in prop_oneof!["-?[0-9]{0,22}(\\.[0-9]{0,3})?(ms|s|min|h|d)?", "\\PC{0,12}"], json in any::<bool>()) {
        let dir = Dir::new();
        let db = Db::fresh_name();
        let url = with_db(&server_url(), &db);
        let lock_wait = format!("--lock-wait={text}");
        let args = with_format(json, &["--database-url", &url, "--migrations", dir.path().to_str().unwrap(), "up", "--dry-run", "--create-database", &lock_wait]);
        let r = run_in(dir.path(), &args.iter().map(String::as_str).collect::<Vec<_>>(), &[]);
        check(&r, json, &["--lock-wait"])?;
        let created = !query_url(&server_url(), &format!("SELECT 1 FROM pg_database WHERE datname = '{db}'")).is_empty();
        prop_assert!(!created, "database {} was created", db);
    }

    /// One key of `[environments.dev]` with a value of any shape, read by
    /// `new` (which resolves the whole config and touches no database).
    #[test]
    fn config_values(
        key in prop_oneof![
            Just("lock_wait"), Just("connect_timeout"), Just("lock_timeout"), Just("statement_timeout"), Just("resume_timeout"),
            Just("request_timeout"), Just("lease_ttl"), Just("transaction_keepalive"), Just("port"), Just("lock_retries"),
            Just("sslmode"), Just("url"),
        ],
        value in prop_oneof![
            any::<i64>().prop_map(|n| n.to_string()),
            "-?[0-9]{1,22}(ms|s|min|h)?".prop_map(|t| format!("\"{t}\"")),
            "\\PC{0,10}".prop_map(|t| format!("{t:?}")),
            Just("true".to_string()),
            Just("[1]".to_string()),
        ],
        json in any::<bool>(),
    ) {
        let dir = Dir::new();
        dir.write("chatmigrate.toml", format!("[environments.dev]\nmigrations = [\"m\"]\n{key} = {value}\n"));
        let args = with_format(json, &["--env", "dev", "new", "x", "--sequential"]);
        let r = run_in(dir.path(), &args.iter().map(String::as_str).collect::<Vec<_>>(), &[]);
        check(&r, json, &[key, "chatmigrate.toml", "invalid database URL"])?;
        prop_assert_eq!(r.code == 0, dir.path().join("m/V1__x.sql").exists());
    }

    /// URLs with tricky user names, passwords, ports and parameters.
    #[test]
    fn database_urls(
        user in "[a-z@%/?#]{0,5}",
        password in "[A-Za-z0-9@%/?#:]{0,8}",
        port in proptest::option::of("-?[0-9]{0,7}"),
        query in proptest::collection::vec((prop_oneof![Just("connect_timeout"), Just("port"), Just("sslmode"), Just("nope")], "[0-9a-z@%-]{0,6}"), 0..3),
        json in any::<bool>(),
    ) {
        let dir = Dir::new();
        let secret = format!("Qx{password}Qx");
        let port = port.map(|p| format!(":{p}")).unwrap_or_default();
        let q: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let url = format!("postgres://{user}:{secret}@127.0.0.1{port}/db{}{}", if q.is_empty() { "" } else { "?" }, q.join("&"));
        let args = with_format(json, &["--database-url", &url, "--migrations", dir.path().to_str().unwrap(), "new", "x", "--sequential"]);
        let r = run_in(dir.path(), &args.iter().map(String::as_str).collect::<Vec<_>>(), &[]);
        check(&r, json, &["invalid database URL"])?;
        prop_assert!(!r.output().contains(&secret), "the password was printed: {}", r.output());
    }

    /// A migration directory with one file of any name and a directive of
    /// any shape, linted (no database): read, or refused naming the file.
    #[test]
    fn migration_files(
        name in prop_oneof!["[Vv]?-?[0-9]{0,21}_{1,2}[a-z_ é-]{0,8}\\.sql", "\\PC{1,16}"],
        word in prop_oneof![
            Just("no-transaction".to_string()), Just("lock-timeout".to_string()), Just("statement-timeout".to_string()),
            Just("citus-parallel".to_string()), "[a-z-]{0,10}",
        ],
        arg in prop_oneof!["-?[0-9]{0,21}(ms|s|min|h)?", "\\PC{0,10}"],
        sql in prop_oneof![Just("SELECT 1;".to_string()), Just("CREATE TABLE t (id int);".to_string()), "[a-zA-Z0-9 ;,()'*]{0,30}"],
        json in any::<bool>(),
    ) {
        prop_assume!(!name.contains('/') && !name.starts_with('.') && name != ".." && !name.ends_with(".md"));
        let dir = Dir::new();
        dir.write("m/V1__base.sql", "SELECT 1;\n");
        dir.write(&format!("m/{name}"), format!("-- chatmigrate:{word} {arg}\n{sql}\n"));
        let m = dir.path().join("m");
        let args = with_format(json, &["--migrations", m.to_str().unwrap(), "lint"]);
        let r = run_in(dir.path(), &args.iter().map(String::as_str).collect::<Vec<_>>(), &[]);
        // lint exits 1 for error-level findings; 2 must name the file.
        check(&r, json, &[&name, "is used twice"])?;
    }
}
