//! The engine through the Data API: the real binary and the real
//! aws-sdk-rdsdata client against the test Data API server (support::dataapi),
//! which runs the SQL on the real PostgreSQL. Scenarios 1–16 of the AWS
//! reference §7, the chat schema, every command, and 8 concurrent runners.

use std::time::Duration;

use crate::support::cli::{command, spawn};
use crate::support::dataapi::{Call, Carrier, DataApiServer, Fault, FaultKind, Options};
use crate::support::*;

/// A Data API server plus a config pointing the binary at it.
struct Api {
    server: DataApiServer,
    conf: Dir,
}

impl Api {
    fn start(opts: Options) -> Api {
        Api {
            server: DataApiServer::start(&server_url(), opts),
            conf: Dir::new(),
        }
    }

    fn new() -> Api {
        Api::start(Options::default())
    }

    /// Runs the binary against database `db` with extra config lines.
    fn run(&self, db: &str, migrations: Option<&Dir>, extra: &[&str], args: &[&str]) -> Run {
        let conf = self.conf.write(
            "chatmigrate.toml",
            format!(
                "[environments.aurora]\n{}{}\n{}\n",
                self.server.environment(db),
                if extra.iter().any(|l| l.starts_with("resume_timeout")) {
                    ""
                } else {
                    "resume_timeout = \"20s\""
                },
                extra.join("\n")
            ),
        );
        let mut full = vec!["--config", conf.to_str().unwrap(), "--env", "aurora"];
        if let Some(m) = migrations {
            full.extend(["--migrations", m.path().to_str().unwrap()]);
        }
        full.extend_from_slice(args);
        run_in(self.conf.path(), &full, &AWS_ENV)
    }

    /// Starts `up` in the background with the config the last `run` wrote.
    fn spawn_up(&self, migrations: &Dir) -> std::process::Child {
        let config = self.conf.shown("chatmigrate.toml");
        let args = [
            "--config",
            &config,
            "--env",
            "aurora",
            "--migrations",
            migrations.path().to_str().unwrap(),
            "up",
        ];
        spawn(command(self.conf.path(), &args, &AWS_ENV))
    }

    fn sent(&self, needle: &str) -> usize {
        self.server
            .calls_of("Execute")
            .iter()
            .filter(|c| c.sql.as_deref().is_some_and(|s| s.contains(needle)))
            .count()
    }
}

fn two(dir: &Dir) {
    dir.write("V1__a.sql", "CREATE TABLE a (id int PRIMARY KEY);\nINSERT INTO a VALUES (1);\n");
    dir.write("V2__b.sql", "CREATE TABLE b (id int);\n");
}

#[test]
fn chat_schema_through_the_data_api_with_create_database() {
    let api = Api::new();
    let name = Db::fresh_name();
    let r = api.run(&name, None, &[], &["up", "--create-database"]);
    r.assert_ok();
    let db = Db::adopt(&name);
    assert_eq!(db.versions(), vec![1, 2, 3, 4]);
    assert!(r.stdout.contains("created database"), "{}", r.stdout);
    // V4 sets nothing of its own; on an empty table nothing is planned.
    assert!(!r.stdout.contains("maintenance_work_mem"), "{}", r.stdout);
    assert_eq!(
        db.scalar("SELECT indisvalid FROM pg_index WHERE indexrelid = 'idx_st_chat_history_vector_hnsw'::regclass"),
        "t"
    );
    assert_eq!(
        db.scalar("SELECT count(DISTINCT backend) || max(backend) FROM chatmigrate_history"),
        "1rds-data"
    );
    // AWS's rules: one statement per call, never `schema`, never ExecuteSql.
    let calls = api.server.calls();
    assert!(calls.iter().all(|c| !c.had_schema && c.op != "ExecuteSql"), "{calls:#?}");
    assert!(calls.iter().all(|c| c.outcome != "ValidationException"), "{calls:#?}");
    assert!(calls.iter().all(|c| c.access_key_id.as_deref() == Some("AKIDTEST")));
    // Calls per transactional migration: Begin + statements + history + Commit.
    let begins = api.server.calls_of("BeginTransaction").len();
    let commits = api.server.calls_of("CommitTransaction").len();
    assert_eq!((begins, commits), (3, 3), "V1-V3 transactional");
    assert_eq!(api.server.calls_of("RollbackTransaction").len(), 0);
    eprintln!("calls for the chat schema: {} ({:?})", calls.len(), count_ops(&calls));

    // status, verify, a no-op up through the same transport: contract.rs.
    db.exec("DROP TABLE IF EXISTS chatmigrate_history_lease");
}

// Issue 4 point 10: calls per migration for the shipped chat schema. Pinned
// here; bench/dataapi-calls.sh runs this test with CHATMIGRATE_BENCH_OUT set
// to write the table.

/// One transaction's calls: (statements, settings calls, history writes, total).
fn calls_per_transaction(calls: &[Call]) -> Vec<(usize, usize, usize, usize)> {
    let mut ids: Vec<String> = Vec::new();
    for c in calls.iter().filter(|c| c.op == "CommitTransaction") {
        ids.extend(c.transaction_id.clone());
    }
    ids.iter()
        .map(|id| {
            let mine: Vec<_> = calls.iter().filter(|c| c.transaction_id.as_deref() == Some(id)).collect();
            let execs: Vec<_> = mine.iter().filter(|c| c.op == "Execute").collect();
            let sql = |c: &&&Call| c.sql.clone().unwrap_or_default();
            // The first call: the settings and the lease row held FOR KEY SHARE.
            let settings = execs.iter().filter(|c| sql(c).ends_with("FOR KEY SHARE")).count();
            let history = execs
                .iter()
                .filter(|c| sql(c).contains("INSERT INTO \"chatmigrate_history\""))
                .count();
            // + BeginTransaction, which carries no transaction id.
            (execs.len() - settings - history, settings, history, mine.len() + 1)
        })
        .collect()
}

#[test]
fn calls_per_migration_for_the_chat_schema() {
    let mut report = String::from("Data API calls for the shipped chat schema (up --create-database on a new database)\n");
    for (label, extra) in [
        ("defaults (lock_timeout 5s, group_commit on)", &[][..]),
        (
            "lock_timeout = off, group_commit = false",
            &["lock_timeout = \"off\"", "group_commit = false"][..],
        ),
    ] {
        let api = Api::new();
        let name = Db::fresh_name();
        api.run(&name, None, extra, &["up", "--create-database"]).assert_ok();
        let db = Db::adopt(&name);
        assert_eq!(db.versions(), vec![1, 2, 3, 4]);
        let calls = api.server.calls();
        let per_tx = calls_per_transaction(&calls);
        assert_eq!(per_tx.len(), 3, "V1-V3 run in transactions");
        // With settings they ride on the call that holds the lease row;
        // without, that call is the one extra call per transaction.
        let settings_calls = 1;
        let with_settings = if extra.is_empty() { "set_config calls" } else { "no settings" };
        report += &format!("\n{label}: {} calls in all {:?}\n", calls.len(), count_ops(&calls));
        for (i, (stmts, settings, history, total)) in per_tx.iter().enumerate() {
            // Target: statements + Begin + Commit + the history row + one
            // call holding the lease row (carrying lock_timeout and
            // synchronous_commit as set_config calls, where set).
            assert_eq!(*history, 1);
            assert_eq!(*settings, settings_calls);
            assert_eq!(*total, stmts + 3 + settings, "V{}", i + 1);
            report += &format!(
                "  V{}: {total} calls = {stmts} statement(s) + BeginTransaction + CommitTransaction + 1 history row + {settings} call holding the lease row ({with_settings})\n",
                i + 1
            );
        }
        let in_tx: usize = per_tx.iter().map(|t| t.3).sum();
        // Once per run: probe (the new database: 3D000), probe + exists +
        // CREATE DATABASE on the maintenance database, probe (which finds no
        // history table, so the history is not read before the lock), lease
        // setup, lease, 2 history tables, history read, lease release; V4
        // (no transaction): running row, invalid-index check, the
        // CONCURRENTLY build, the validity check after it, its row, applied row.
        assert_eq!(calls.len() - in_tx, 17);
        report += &format!(
            "  outside the migration transactions: {} = once per run 11 (probe on the new database, probe + exists + CREATE DATABASE on the maintenance database, probe, lease setup, lease, 2 history tables, history read, lease release) + V4 without a transaction 6 (running row, invalid-index check, CREATE INDEX CONCURRENTLY, validity check, statement row, applied row)\n",
            calls.len() - in_tx
        );
        db.exec("DROP TABLE IF EXISTS chatmigrate_history_lease");
    }
    if let Ok(path) = std::env::var("CHATMIGRATE_BENCH_OUT") {
        std::fs::write(path, &report).unwrap();
    }
}

fn count_ops(calls: &[Call]) -> Vec<(String, usize)> {
    let mut out: Vec<(String, usize)> = Vec::new();
    for c in calls {
        match out.iter_mut().find(|(op, _)| *op == c.op) {
            Some((_, n)) => *n += 1,
            None => out.push((c.op.clone(), 1)),
        }
    }
    out
}

#[test]
fn dry_run_baseline_and_repair_through_the_data_api() {
    let (api, db, dir) = (Api::new(), Db::new(), Dir::new());
    two(&dir);
    let r = api.run(&db.name, Some(&dir), &[], &["up", "--dry-run"]);
    r.assert_ok();
    assert!(r.stdout.contains("CREATE TABLE a (id int PRIMARY KEY)"), "{}", r.stdout);
    assert!(!db.table_exists("a"));
    api.run(&db.name, Some(&dir), &[], &["baseline", "--target", "1"]).assert_ok();
    assert_eq!(db.versions(), vec![1]);
    api.run(&db.name, Some(&dir), &[], &["up"]).assert_ok();
    assert_eq!(db.versions(), vec![1, 2]);
    dir.write("V2__b.sql", "CREATE TABLE b (id int); -- edited\n");
    let r = api.run(&db.name, Some(&dir), &[], &["verify"]);
    assert_eq!(r.code, 1, "{r:#?}");
    api.run(&db.name, Some(&dir), &[], &["repair"]).assert_ok();
    api.run(&db.name, Some(&dir), &[], &["verify"]).assert_ok();
}

// Session settings over the Data API: a no-transaction file's timeout
// directives and SETs cannot outlive one call. Dry-run and up both say so;
// the transactional prelude is one set_config call, as up sends it.

#[test]
fn session_settings_are_shown_skipped_in_dry_run_and_up() {
    let (api, db, dir) = (Api::new(), Db::new(), Dir::new());
    dir.write("V1__a.sql", "CREATE TABLE a (id int);\n");
    dir.write(
        "V2__i.sql",
        "-- chatmigrate:no-transaction\n-- chatmigrate:lock-timeout 2s\nSET maintenance_work_mem = '256MB';\nCREATE INDEX CONCURRENTLY IF NOT EXISTS i ON a (id);\n",
    );
    let r = api.run(&db.name, Some(&dir), &[], &["up", "--dry-run"]);
    r.assert_ok();
    for line in [
        "SELECT set_config('lock_timeout', '5000ms', true), set_config('synchronous_commit', 'off', true)",
        "-- skipped on rds-data (a session setting does not outlive one call): SET lock_timeout = '2000ms'",
        "-- skipped on rds-data (a session setting does not outlive one call): SET maintenance_work_mem = '256MB'",
    ] {
        assert!(r.stdout.contains(line), "{line}\n{}", r.stdout);
    }
    assert!(!r.stdout.contains("RESET lock_timeout"), "{}", r.stdout);
    let r = api.run(&db.name, Some(&dir), &[], &["up"]);
    r.assert_ok();
    assert!(r.stdout.contains("V2: skipped `SET lock_timeout = '2000ms'`"), "{}", r.stdout);
    assert!(
        r.stdout.contains("V2: skipped `SET maintenance_work_mem = '256MB'`"),
        "{}",
        r.stdout
    );
    assert_eq!(api.sent("SET lock_timeout"), 0);
    assert_eq!(db.versions(), vec![1, 2]);
}

// Scenarios 1, 3, 4, 15: resuming, on every carrier, at the probe and at BeginTransaction.

#[test]
fn resuming_for_a_few_calls_then_applies_once() {
    let (api, db, dir) = (Api::new(), Db::new(), Dir::new());
    two(&dir);
    api.server.fault(Fault::new(FaultKind::Resuming).times(8));
    api.server.fault(
        Fault::new(FaultKind::Resuming)
            .op("BeginTransaction")
            .times(2)
            .carrier(Carrier::BodyType),
    );
    let r = api.run(&db.name, Some(&dir), &[], &["up"]);
    r.assert_ok();
    assert!(r.stderr.contains("waiting for Aurora to resume: "), "{}", r.stderr);
    assert_eq!(db.versions(), vec![1, 2]);
    assert_eq!(db.scalar("SELECT count(*) FROM a"), "1", "V1 ran once");
}

#[test]
fn probe_statement_timeout_and_body_only_codes_count_as_resuming() {
    let (api, db, dir) = (Api::new(), Db::new(), Dir::new());
    two(&dir);
    api.server
        .fault(Fault::new(FaultKind::StatementTimeout).sql_contains("pg_is_in_recovery()").times(2));
    api.server
        .fault(Fault::new(FaultKind::Resuming).times(2).carrier(Carrier::BodyCode));
    api.run(&db.name, Some(&dir), &[], &["up"]).assert_ok();
    assert_eq!(db.versions(), vec![1, 2]);
}

// Scenario 2: the resume never finishes.

#[test]
fn resume_that_never_finishes_stops_at_the_deadline_with_nothing_written() {
    let (api, db, dir) = (Api::new(), Db::new(), Dir::new());
    two(&dir);
    api.server.fault(Fault::new(FaultKind::Resuming).always());
    let r = api.run(&db.name, Some(&dir), &["resume_timeout = \"2s\""], &["up"]);
    assert_eq!(r.code, 2, "{r:#?}");
    let e = r.error_line();
    assert!(
        e.starts_with(&format!("error: rds-data:chat/{} did not become available within 2 s (", db.name)),
        "{e}"
    );
    assert!(e.ends_with("DatabaseResumingException: The Aurora DB instance arn:aws:rds:us-east-1:123456789012:cluster:chat is resuming after being auto-paused. Please wait a few seconds and try again.)") || e.contains("last: DatabaseResumingException"), "{e}");
    assert!(r.hint().starts_with("hint: check that the cluster is available"), "{}", r.hint());
    assert!(!db.table_exists("chatmigrate_history"));
}

// Scenario 5: a CONCURRENTLY build outlives the Data API's statement timeout.

#[test]
fn concurrent_index_past_the_statement_timeout_is_polled_not_resent() {
    let api = Api::start(Options {
        statement_timeout: Duration::from_millis(300),
        ..Options::default()
    });
    let (db, dir) = (Db::new(), Dir::new());
    dir.write("V1__t.sql", "CREATE TABLE t (id int);\n");
    dir.write(
        "V2__idx.sql",
        "-- chatmigrate:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS t_id ON t (id);\n",
    );
    api.run(&db.name, Some(&dir), &[], &["up", "--target", "1"]).assert_ok();
    // An open transaction on t keeps the build waiting past the timeout.
    let holder = Holder::hold(
        &db.url,
        "holder",
        "BEGIN; INSERT INTO t VALUES (1)",
        Some(Duration::from_millis(1500)),
    );
    let r = api.run(&db.name, Some(&dir), &[], &["up"]);
    drop(holder);
    r.assert_ok();
    assert!(r.stdout.contains("V2: statement 1 still running on the server"), "{}", r.stdout);
    assert_eq!(api.sent("CREATE INDEX CONCURRENTLY"), 1, "sent once");
    assert_eq!(
        db.scalar("SELECT indisvalid FROM pg_index WHERE indexrelid = 't_id'::regclass"),
        "t"
    );
    assert_eq!(db.history(), vec![(1, "applied".into(), 1), (2, "applied".into(), 1)]);
}

// Scenario 6: the transaction expires mid-migration.

#[test]
fn expired_transaction_is_rolled_back_and_started_over_once() {
    let (api, db, dir) = (Api::new(), Db::new(), Dir::new());
    dir.write(
        "V1__a.sql",
        "CREATE TABLE a (id int);\nINSERT INTO a VALUES (1);\nCREATE TABLE a2 (id int);\n",
    );
    api.server
        .fault(Fault::new(FaultKind::ExpireTransaction).sql_contains("CREATE TABLE a2"));
    let r = api.run(&db.name, Some(&dir), &[], &["up"]);
    r.assert_ok();
    assert!(
        r.stdout.contains(
            "V1 a: the transaction was rolled back (TransactionNotFoundException: Transaction may be expired.); starting it over"
        ),
        "{}",
        r.stdout
    );
    assert_eq!(db.scalar("SELECT count(*) FROM a"), "1", "not half-applied, not doubled");
    assert_eq!(db.versions(), vec![1]);
}

#[test]
fn a_transaction_that_keeps_expiring_is_reported_not_applied() {
    let (api, db, dir) = (Api::new(), Db::new(), Dir::new());
    dir.write("V1__a.sql", "CREATE TABLE a (id int);\nCREATE TABLE a2 (id int);\n");
    api.server
        .fault(Fault::new(FaultKind::ExpireTransaction).sql_contains("CREATE TABLE a2").always());
    let r = api.run(&db.name, Some(&dir), &[], &["up"]);
    let e = r.error_line().to_string();
    assert_eq!(r.code, 2);
    assert!(
        e.ends_with(
            "the Data API ended the transaction (TransactionNotFoundException: Transaction may be expired.); nothing of it was applied"
        ),
        "{e}"
    );
    assert!(!db.table_exists("a"));
    assert_eq!(db.versions(), Vec::<i64>::new());
}

// Scenario 7: "Transaction is still running a query" (a call that raced
// another on the same transaction) is retried: the call was refused, not run.

#[test]
fn transaction_still_running_a_query_is_retried_not_restarted() {
    let (api, db, dir) = (Api::new(), Db::new(), Dir::new());
    dir.write("V1__a.sql", "CREATE TABLE a (id int);\nINSERT INTO a VALUES (1);\n");
    api.server
        .fault(Fault::new(FaultKind::TransactionBusy).sql_contains("INSERT INTO a").times(2));
    let r = api.run(&db.name, Some(&dir), &[], &["up"]);
    r.assert_ok();
    assert!(!r.stdout.contains("starting it over"), "{}", r.stdout);
    assert_eq!(db.scalar("SELECT count(*) FROM a"), "1");
    assert_eq!(api.sent("INSERT INTO a"), 3, "two refused, one run");
    assert_eq!(api.server.calls_of("BeginTransaction").len(), 1);
    assert_eq!(db.versions(), vec![1]);
}

// The keep-alive: a transaction waiting out a backoff is kept from the
// Data API's idle expiry (3 minutes; 1 s here) by `SELECT 1` calls in it.

/// `up` of two migrations while the second one's statement is throttled
/// for 2.5 s inside its transaction, with a 1 s idle expiry.
fn up_throttled_in_a_transaction(keepalive: &str) -> (Api, Db, Run) {
    let opts = Options {
        transaction_idle_timeout: Duration::from_secs(1),
        ..Options::default()
    };
    let (api, db, dir) = (Api::start(opts), Db::new(), Dir::new());
    two(&dir);
    api.server.fault(
        Fault::new(FaultKind::Throttling)
            .sql_contains("CREATE TABLE b")
            .for_duration(Duration::from_millis(2500)),
    );
    let r = api.run(
        &db.name,
        Some(&dir),
        &[&format!("transaction_keepalive = \"{keepalive}\"")],
        &["up"],
    );
    (api, db, r)
}

#[test]
fn a_transaction_waiting_in_backoff_is_kept_alive() {
    let (api, db, r) = up_throttled_in_a_transaction("300ms");
    r.assert_ok();
    assert!(!r.stdout.contains("starting it over"), "the transaction expired: {}", r.stdout);
    let keepalives = api
        .server
        .calls_of("Execute")
        .into_iter()
        .filter(|c| c.transaction_id.is_some() && c.sql.as_deref() == Some("SELECT 1"))
        .count();
    assert!(keepalives >= 3, "{keepalives} keep-alive calls");
    assert_eq!(db.versions(), vec![1, 2]);
}

#[test]
fn without_the_keep_alive_the_same_wait_expires_the_transaction() {
    let (_api, db, r) = up_throttled_in_a_transaction("1h");
    r.assert_ok();
    assert!(
        r.stdout
            .contains("V2 b: the transaction was rolled back (TransactionNotFoundException"),
        "{}",
        r.stdout
    );
    assert_eq!(db.versions(), vec![1, 2]);
}

// Scenario 13: UnsupportedResultException. The tool's own queries cast every
// column to text, so the server's type rules never trip them; if one does
// anyway, the error names the query and the fix.

#[test]
fn tool_queries_return_only_text_and_an_unsupported_result_is_reported() {
    let (api, db, dir) = (Api::new(), Db::new(), Dir::new());
    two(&dir);
    api.run(&db.name, Some(&dir), &[], &["up"]).assert_ok();
    api.run(&db.name, Some(&dir), &[], &["status"]).assert_ok();
    api.run(&db.name, Some(&dir), &[], &["verify"]).assert_ok();
    assert!(api.server.calls().iter().all(|c| c.outcome != "UnsupportedResultException"));
    api.server.fault(
        Fault::new(FaultKind::UnsupportedResult)
            .sql_contains("FROM \"chatmigrate_history\" h WHERE h.version >")
            .always(),
    );
    let r = api.run(&db.name, Some(&dir), &[], &["status"]);
    assert_eq!(r.code, 2, "{}", r.output());
    r.assert_error(&format!(
        "reading the history table on rds-data:chat/{}: AWS answered UnsupportedResultException: The result contains the unsupported data type point.",
        db.name
    ));
    assert!(r.hint().contains("this is a bug: please report it"), "{}", r.hint());
}

#[test]
fn a_migration_statement_whose_result_the_data_api_cannot_carry_fails_with_the_fix() {
    let (api, db, dir) = (Api::new(), Db::new(), Dir::new());
    dir.write(
        "V1__v.sql",
        "CREATE EXTENSION IF NOT EXISTS vector;\nSELECT '[1,2,3]'::vector;\nCREATE TABLE after_it (id int);\n",
    );
    let r = api.run(&db.name, Some(&dir), &[], &["up"]);
    assert_eq!(r.code, 2);
    assert!(
        r.error_line().ends_with(
            "V1__v.sql:2:1: version 1 failed: the Data API cannot return this statement's result (The result contains the unsupported data type vector.); HINT: cast the value to text (`::text`), or return something the Data API can carry, e.g. `SELECT count(*) FROM (...) s` (SQLSTATE 0A000)"
        ),
        "{}",
        r.output()
    );
    assert_eq!(
        r.hint(),
        "hint: fix the migration and run `chatmigrate up` again; this migration was rolled back"
    );
    assert!(!db.table_exists("after_it"), "half-applied");
    assert_eq!(db.versions(), Vec::<i64>::new());
}

// Scenario 8: 5xx on a non-idempotent statement outside a transaction.

#[test]
fn server_errors_on_a_statement_outside_a_transaction_are_sent_once_and_unknown() {
    for kind in [
        FaultKind::Internal,
        FaultKind::DatabaseUnavailable,
        FaultKind::ServiceUnavailable,
        FaultKind::Html502,
    ] {
        let (api, db, dir) = (Api::new(), Db::new(), Dir::new());
        dir.write(
            "V1__a.sql",
            "-- chatmigrate:no-transaction\nCREATE TABLE IF NOT EXISTS nt_marker (id int);\n",
        );
        // (The gate's catalog query names the table too: the fault is for the statement.)
        api.server
            .fault(Fault::new(kind).sql_contains("CREATE TABLE IF NOT EXISTS nt_marker").after_run());
        let r = api.run(&db.name, Some(&dir), &[], &["up"]);
        assert_eq!(r.code, 2, "{kind:?}: {r:#?}");
        assert!(
            r.error_line().contains(": outcome unknown: the Data API did not answer ("),
            "{kind:?}: {}",
            r.error_line()
        );
        assert!(r.hint().starts_with("hint: run `chatmigrate status`"), "{}", r.hint());
        assert_eq!(api.sent("CREATE TABLE IF NOT EXISTS nt_marker"), 1, "{kind:?}: re-sent");
    }
}

// Scenario 9: throttling backs off and retries.

#[test]
fn throttling_is_retried_with_backoff() {
    let (api, db, dir) = (Api::new(), Db::new(), Dir::new());
    two(&dir);
    api.server
        .fault(Fault::new(FaultKind::Throttling).sql_contains("CREATE TABLE b").times(5));
    let r = api.run(&db.name, Some(&dir), &[], &["up"]);
    r.assert_ok();
    assert!(r.stderr.contains("waiting for throttling to pass"), "{}", r.stderr);
    assert_eq!(db.versions(), vec![1, 2]);
    assert_eq!(api.sent("CREATE TABLE b"), 6);
}

// Scenario 10: what the splitter sends, one statement per call.

#[test]
fn adversarial_sql_is_split_into_single_statements() {
    let (api, db, dir) = (Api::new(), Db::new(), Dir::new());
    dir.write(
        "V1__tricky.sql",
        "CREATE TABLE t (s text);\nINSERT INTO t VALUES ('a;b'), (E'\\';'); -- ;\n/* ; */ INSERT INTO t VALUES ($$;$$);\n\
         CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $fn$ SELECT 1; $fn$;\n",
    );
    api.run(&db.name, Some(&dir), &[], &["up"]).assert_ok();
    assert_eq!(db.scalar("SELECT string_agg(s, '|' ORDER BY s) FROM t"), "';|;|a;b");
    assert!(api.server.calls().iter().all(|c| c.outcome != "ValidationException"));
}

// Scenario 12: configuration and permission errors fail fast.

#[test]
fn fatal_aws_errors_fail_fast_with_a_hint() {
    for (kind, code, hint) in [
        (
            FaultKind::HttpEndpointNotEnabled,
            "HttpEndpointNotEnabledException",
            "hint: enable the Data API",
        ),
        (
            FaultKind::AccessDenied,
            "AccessDeniedException",
            "hint: the AWS identity needs rds-data:",
        ),
        (FaultKind::Forbidden, "ForbiddenException", "hint: the AWS identity needs rds-data:"),
        (FaultKind::InvalidSecret, "InvalidSecretException", "hint: check secret_arn"),
        (FaultKind::SecretsErrorNotFound, "SecretsErrorException", "hint: check secret_arn"),
        (FaultKind::DatabaseNotFound, "DatabaseNotFoundException", "hint: check resource_arn"),
    ] {
        let (api, db, dir) = (Api::new(), Db::new(), Dir::new());
        two(&dir);
        api.server.fault(Fault::new(kind).always());
        let r = api.run(&db.name, Some(&dir), &[], &["up"]);
        assert_eq!(r.code, 2, "{r:#?}");
        assert!(r.error_line().contains(&format!("AWS answered {code}")), "{}", r.error_line());
        assert!(r.hint().starts_with(hint), "{}", r.hint());
        assert_eq!(api.server.calls().len(), 1, "{code}: no retries");
    }
    // A Secrets Manager timeout inside the Data API is retried twice.
    let (api, db, dir) = (Api::new(), Db::new(), Dir::new());
    two(&dir);
    api.server.fault(Fault::new(FaultKind::SecretsErrorTimeout).always());
    let r = api.run(&db.name, Some(&dir), &[], &["up"]);
    assert_eq!(r.code, 2);
    assert_eq!(api.server.calls().len(), 3);
}

// Scenario 14: history is read in pages.

#[test]
fn history_is_read_in_pages() {
    let (api, db, dir) = (Api::new(), Db::new(), Dir::new());
    for v in 1..=1100 {
        dir.write(&format!("V{v}__m.sql"), "SELECT 1;\n");
    }
    cm(&db, &dir, &["up"]).assert_ok();
    let r = api.run(&db.name, Some(&dir), &[], &["status"]);
    r.assert_ok();
    assert_eq!(api.sent("FROM \"chatmigrate_history\" h WHERE h.version >"), 3, "pages of 500");
    assert!(r.stdout.contains("1100"), "{}", r.stdout);
}

// Scenario 16: a hung response inside a transaction.

#[test]
fn hung_response_inside_a_transaction_rolls_back_and_starts_over() {
    let (api, db, dir) = (Api::new(), Db::new(), Dir::new());
    two(&dir);
    api.server
        .fault(Fault::new(FaultKind::Hang(Duration::from_secs(5))).sql_contains("CREATE TABLE b"));
    let r = api.run(&db.name, Some(&dir), &["request_timeout = \"1s\""], &["up"]);
    r.assert_ok();
    assert!(r.stdout.contains("V2 b: the transaction was rolled back (timeout"), "{}", r.stdout);
    assert_eq!(db.versions(), vec![1, 2]);
}

// A statement over the Data API's limit is refused before anything runs.

#[test]
fn statement_over_65536_characters_is_refused_before_running() {
    let (api, db, dir) = (Api::new(), Db::new(), Dir::new());
    dir.write("V1__a.sql", "CREATE TABLE a (id int);\n");
    dir.write("V2__big.sql", format!("SELECT 1;\nSELECT '{}';\n", "x".repeat(70_000)));
    let r = api.run(&db.name, Some(&dir), &[], &["up"]);
    r.assert_error(&format!(
        "{}:2:1: [data-api-statement-too-long] statement is 70009 characters long; the Data API accepts at most 65536 in one call (`SELECT '{}...`)",
        dir.shown("V2__big.sql"),
        "x".repeat(61)
    ));
    assert!(!db.table_exists("a"), "nothing ran");
}

// The lease: 8 concurrent runners apply everything exactly once; a killed
// runner's lease expires by itself.

#[test]
fn eight_runners_through_the_data_api_apply_each_migration_once() {
    let (api, db, dir) = (Api::new(), Db::new(), Dir::new());
    for v in 1..=20 {
        dir.write(
            &format!("V{v}__m{v}.sql"),
            format!("CREATE TABLE m{v} (id int);\nSELECT pg_sleep(0.01);\n"),
        );
    }
    let conf = api.run(&db.name, Some(&dir), &[], &["status"]);
    conf.assert_ok();
    let children: Vec<_> = (0..8).map(|_| api.spawn_up(&dir)).collect();
    let runs: Vec<Run> = children.into_iter().map(finish).collect();
    let mut applied = Vec::new();
    for r in &runs {
        r.assert_ok();
        applied.extend(r.stdout.lines().filter(|l| l.starts_with("applied V")).map(str::to_string));
    }
    assert_eq!(applied.len(), 20, "{applied:#?}");
    assert_eq!(db.versions(), (1..=20).collect::<Vec<_>>());
}

#[test]
fn a_killed_runners_lease_expires_and_the_next_runner_goes_on() {
    // The killed runner's transaction ends with its statement (the server's
    // statement timeout cancels it): its lease is then only expired.
    let api = Api::start(Options {
        statement_timeout: Duration::from_secs(2),
        ..Options::default()
    });
    let (db, dir) = (Db::new(), Dir::new());
    dir.write("V1__a.sql", "CREATE TABLE a (id int);\n");
    dir.write("V2__slow.sql", "SELECT pg_sleep(30);\n");
    let r = api.run(&db.name, Some(&dir), &["lease_ttl = \"2s\""], &["status"]);
    r.assert_ok();
    let child = api.spawn_up(&dir);
    wait_until(20, "V1 applied", || db.versions() == vec![1]);
    // Killed inside V2's statement, not between two calls (an idle
    // transaction would hold the lease row until the Data API's 3 minutes).
    wait_until(20, "V2's statement running", || {
        query_url(
            &server_url(),
            &format!(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = '{}' AND state = 'active' AND query LIKE '%pg_sleep(30)%' AND pid <> pg_backend_pid()",
                db.name
            ),
        )[0][0]
            .as_deref()
            == Some("1")
    });
    signal(&child, "KILL");
    let _ = finish(child);
    dir.write("V2__slow.sql", "SELECT 1;\n");
    let r = api.run(&db.name, Some(&dir), &["lease_ttl = \"2s\"", "lock_wait = \"20s\""], &["up"]);
    r.assert_ok();
    assert_eq!(db.versions(), vec![1, 2]);
}
