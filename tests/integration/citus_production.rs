//! The `citus` backend in production (issue 16), on a live coordinator
//! (`CHATMIGRATE_TEST_CITUS_URL`, as in `citus.rs`; each test skips without it):
//!
//! - a table with rows is distributed with create_distributed_table_concurrently
//!   only when every condition holds (a replica identity, replication factor
//!   1, the citus output plugin allowed), otherwise as written with a note
//!   that says what is blocked and why; the server's notices are shown;
//! - with schema-based sharding on, chatmigrate's own tables stay local to
//!   the coordinator, a distributed history schema is refused with the fix,
//!   and the history upsert works even on a distributed table;
//! - the lint follows alter_distributed_table;
//! - an unguarded create_distributed_table in a no-transaction file is
//!   flagged, and the guarded one resumes after a cut run;
//! - citus_rebalance_start is noted and citus_rebalance_wait waited for;
//! - a migration user that is not a superuser (as on Azure);
//! - an error whose HINT Citus relays inside the message, split out;
//! - a worker stopped during a run: a Citus node failure naming the node,
//!   no reconnect, `status` shows it, `citus_node_wait` rides it out, and a
//!   CONCURRENTLY build resumes. This one also needs the shell commands that
//!   stop and start one worker, `CHATMIGRATE_TEST_CITUS_WORKER_STOP` and
//!   `CHATMIGRATE_TEST_CITUS_WORKER_START` (docs/citus.md, Testing).

use std::time::{Duration, Instant};

use crate::support::citus::{citus_config, live, query_each, Live};
use crate::support::*;

/// Drops what a test creates.
fn drop_tables(l: &Live, tables: &[&str]) {
    for t in tables {
        l.query(&format!("DROP TABLE IF EXISTS {t} CASCADE"));
    }
}

/// The migrations directory of a test, as an argument.
fn migrations(l: &Live) -> String {
    l.dir.path().join("m").to_str().unwrap().to_string()
}

/// Lets the citus output plugin decode WAL in the scratch database while a
/// test runs: PostgreSQL 16.15, 17.11 and 18.6 allow only pgoutput and
/// test_decoding by default (`output_plugin_libraries`). A role setting in
/// this database, which Citus passes on to the workers; reset when dropped.
struct CitusPlugin<'a> {
    l: &'a Live,
    set: bool,
}

impl<'a> CitusPlugin<'a> {
    fn allow(l: &'a Live) -> CitusPlugin<'a> {
        let list = l.query("SELECT current_setting('output_plugin_libraries', true)")[0][0].clone();
        let set = match list {
            Some(list) if !list.split(',').any(|p| p.trim() == "citus") => {
                let db = l.scalar("SELECT quote_ident(current_database())");
                l.query(&format!(
                    "ALTER ROLE CURRENT_USER IN DATABASE {db} SET output_plugin_libraries = {list}, citus"
                ));
                true
            }
            _ => false,
        };
        CitusPlugin { l, set }
    }
}

impl Drop for CitusPlugin<'_> {
    fn drop(&mut self) {
        if self.set {
            let db = self.l.scalar("SELECT quote_ident(current_database())");
            self.l
                .query(&format!("ALTER ROLE CURRENT_USER IN DATABASE {db} RESET output_plugin_libraries"));
        }
    }
}

#[test]
fn live_the_concurrent_form_needs_a_replica_identity_and_factor_one() {
    let Some(l) = live("live_the_concurrent_form_needs_a_replica_identity_and_factor_one") else {
        return;
    };
    let tables = ["cmt_logs", "cmt_logs_full", "cmt_keyed", "cmt_factor"];
    drop_tables(&l, &tables);
    if l.scalar("SHOW wal_level") != "logical" {
        eprintln!("skipping live_the_concurrent_form_needs_a_replica_identity_and_factor_one: wal_level is not logical");
        return;
    }
    let _plugin = CitusPlugin::allow(&l);
    l.dir.write(
        "m/V1__tables.sql",
        "CREATE TABLE cmt_logs (id bigint, msg text);
CREATE TABLE cmt_logs_full (id bigint, msg text);
ALTER TABLE cmt_logs_full REPLICA IDENTITY FULL;
CREATE TABLE cmt_keyed (id bigint PRIMARY KEY, msg text);
CREATE TABLE cmt_factor (id bigint PRIMARY KEY, msg text);
INSERT INTO cmt_logs SELECT g, 'm' FROM generate_series(1, 2000) g;
INSERT INTO cmt_logs_full SELECT g, 'm' FROM generate_series(1, 2000) g;
INSERT INTO cmt_keyed SELECT g, 'm' FROM generate_series(1, 2000) g;
INSERT INTO cmt_factor SELECT g, 'm' FROM generate_series(1, 2000) g;
",
    );
    let guard = |t: &str| {
        format!("SELECT create_distributed_table('{t}', 'id') WHERE NOT EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = '{t}'::regclass AND partmethod = 'h');\n")
    };
    l.dir.write(
        "m/V2__distribute.sql",
        format!(
            "-- chatmigrate:no-transaction\n{}{}{}SET citus.shard_replication_factor = 2;\n{}RESET citus.shard_replication_factor;\n",
            guard("cmt_logs"),
            guard("cmt_logs_full"),
            guard("cmt_keyed"),
            guard("cmt_factor")
        ),
    );
    let m = migrations(&l);
    l.run(&["--migrations", &m, "up", "--target", "1"]).assert_ok();

    let no_identity = "cmt_logs has rows: create_distributed_table copies them and blocks INSERT, UPDATE and DELETE on cmt_logs until it commits (reads go on); not sent as create_distributed_table_concurrently, because cmt_logs has neither a primary key nor a replica identity, so create_distributed_table_concurrently would make its UPDATE and DELETE fail while its rows move (INSERT would work): add a primary key, or ALTER TABLE cmt_logs REPLICA IDENTITY FULL, in an earlier migration";
    let concurrently = |t: &str| {
        format!("{t} has rows: sent as create_distributed_table_concurrently, so writes to it go on while its rows move to the shards")
    };

    // The dry run reads the tables as they are.
    let dry = l.run(&["--migrations", &m, "up", "--dry-run"]);
    dry.assert_ok();
    assert!(dry.stdout.contains(&format!("-- note: {no_identity}")), "{}", dry.stdout);
    assert!(
        dry.stdout.contains(&format!("-- note: {}", concurrently("cmt_keyed"))),
        "{}",
        dry.stdout
    );
    assert!(dry
        .stdout
        .contains("SELECT create_distributed_table_concurrently('cmt_logs_full', 'id')"));

    let r = l.run(&["--migrations", &m, "up"]);
    r.assert_ok();
    assert!(r.stdout.contains(&format!("V2: {no_identity}\n")), "{}", r.stdout);
    // The blocking call's own notices, from the server.
    assert!(
        r.stdout.contains("V2: server NOTICE: Copying data from local table...\n"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains(&format!("V2: {}\n", concurrently("cmt_logs_full"))),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains(&format!("V2: {}\n", concurrently("cmt_keyed"))), "{}", r.stdout);
    // The session's replication factor, set by the file, is read when the call is sent.
    assert!(
        r.stdout.contains("V2: cmt_factor has rows: create_distributed_table copies them and blocks INSERT, UPDATE and DELETE on cmt_factor until it commits (reads go on); not sent as create_distributed_table_concurrently, because create_distributed_table_concurrently needs citus.shard_replication_factor = 1, and this session has 2\n"),
        "{}",
        r.stdout
    );
    for t in tables {
        assert_eq!(
            l.scalar(&format!(
                "SELECT citus_table_type || ' ' || (SELECT count(*) FROM {t}) FROM citus_tables WHERE table_name = '{t}'::regclass"
            )),
            "distributed 2000",
            "{t}"
        );
    }
    // Two placements per shard where the file asked for them.
    assert_eq!(
        l.scalar("SELECT min(n)::text FROM (SELECT count(*) AS n FROM pg_dist_placement p JOIN pg_dist_shard s USING (shardid) WHERE s.logicalrelid = 'cmt_factor'::regclass GROUP BY shardid) x"),
        "2"
    );
    // Writes work on every table, the one without a key too.
    for t in tables {
        l.query(&format!("UPDATE {t} SET msg = 'u' WHERE id = 7"));
        l.query(&format!("DELETE FROM {t} WHERE id = 8"));
    }
    drop_tables(&l, &tables);
}

/// A superuser role whose sessions have schema-based sharding on (a role
/// setting, which Citus passes on to the workers), dropped at the end with
/// what it owns.
struct ShardingRole<'a> {
    l: &'a Live,
}

const SHARDING_ROLE: &str = "cmt_sharding";

impl<'a> ShardingRole<'a> {
    fn new(l: &'a Live) -> ShardingRole<'a> {
        let r = ShardingRole { l };
        r.drop_all();
        l.query(&format!("CREATE ROLE {SHARDING_ROLE} LOGIN SUPERUSER"));
        l.query(&format!("ALTER ROLE {SHARDING_ROLE} SET citus.enable_schema_based_sharding = on"));
        r
    }

    fn url(&self) -> String {
        let (scheme, rest) = self.l.url.split_once("://").unwrap();
        let (_, hostpart) = rest.split_once('@').unwrap();
        format!("{scheme}://{SHARDING_ROLE}@{hostpart}")
    }

    fn drop_all(&self) {
        for s in ["cmt_ops", "cmt_tenant", "cmt_hist"] {
            self.l.query(&format!("DROP SCHEMA IF EXISTS {s} CASCADE"));
        }
        if self
            .l
            .scalar(&format!("SELECT count(*) FROM pg_roles WHERE rolname = '{SHARDING_ROLE}'"))
            == "1"
        {
            self.l.query(&format!("DROP OWNED BY {SHARDING_ROLE}"));
            self.l.query(&format!("DROP ROLE {SHARDING_ROLE}"));
        }
    }
}

impl Drop for ShardingRole<'_> {
    fn drop(&mut self) {
        self.drop_all();
    }
}

#[test]
fn live_schema_based_sharding_keeps_chatmigrate_tables_local() {
    let Some(l) = live("live_schema_based_sharding_keeps_chatmigrate_tables_local") else {
        return;
    };
    if l.scalar("SELECT coalesce(current_setting('citus.enable_schema_based_sharding', true), 'none')") == "none" {
        eprintln!("skipping live_schema_based_sharding_keeps_chatmigrate_tables_local: this Citus has no schema-based sharding (12.0+)");
        return;
    }
    let role = ShardingRole::new(&l);
    let url = role.url();
    assert_eq!(
        query_url(&url, "SHOW citus.enable_schema_based_sharding")[0][0].as_deref(),
        Some("on")
    );
    citus_config(&l.dir, "history_schema = \"cmt_ops\"\n");
    // The application's own schema becomes a distributed schema, as the
    // setting says; chatmigrate's stays a regular one.
    l.dir.write(
        "m/V1__tenant.sql",
        "CREATE SCHEMA cmt_tenant;\nCREATE TABLE cmt_tenant.notes (id bigint PRIMARY KEY, body text);\n",
    );
    let m = migrations(&l);
    let r = l.run_on(&url, &["--migrations", &m, "up"]);
    r.assert_ok();
    let schemas = |l: &Live| {
        l.scalar("SELECT coalesce(string_agg(schema_name::text, ',' ORDER BY schema_name::text), '') FROM citus_schemas WHERE schema_name::text LIKE 'cmt_%'")
    };
    assert_eq!(schemas(&l), "cmt_tenant");
    assert_eq!(
        l.scalar("SELECT string_agg(table_name::text || ' ' || citus_table_type, ',' ORDER BY table_name::text) FROM citus_tables WHERE table_name::text LIKE 'cmt_%'"),
        "cmt_tenant.notes schema"
    );
    assert_eq!(
        l.scalar("SELECT string_agg(c.relname, ',' ORDER BY c.relname) FROM pg_class c WHERE c.relnamespace = 'cmt_ops'::regnamespace AND c.relkind = 'r'"),
        "chatmigrate_history,chatmigrate_history_lease,chatmigrate_history_log"
    );
    // Later runs write the history again (the upsert on a local table).
    l.dir
        .write("m/V2__more.sql", "CREATE TABLE cmt_tenant.more (id bigint PRIMARY KEY);\n");
    l.run_on(&url, &["--migrations", &m, "up"]).assert_ok();
    assert_eq!(
        l.scalar("SELECT string_agg(version::text || status, ',' ORDER BY version) FROM cmt_ops.chatmigrate_history"),
        "1applied,2applied"
    );

    // A history schema that is a distributed schema already: refused before
    // anything is created in it, with the fix.
    l.query("DROP SCHEMA cmt_ops CASCADE");
    l.query("DROP SCHEMA cmt_tenant CASCADE");
    query_url(&url, "CREATE SCHEMA cmt_ops");
    assert_eq!(schemas(&l), "cmt_ops");
    let r = l.run_on(&url, &["--migrations", &m, "up"]);
    r.assert_error(&format!(
        "history_schema `cmt_ops` is a distributed schema on {} (citus_schemas): chatmigrate's own tables (history, log, lease) there are single-shard distributed tables, not local tables of the coordinator",
        l.target(&url)
    ));
    assert!(r.hint().contains("SELECT citus_schema_undistribute('cmt_ops')"), "{}", r.hint());
    assert_eq!(
        l.scalar("SELECT count(*) FROM pg_class WHERE relnamespace = 'cmt_ops'::regnamespace"),
        "0"
    );
    // The fix it names works.
    l.query("SELECT citus_schema_undistribute('cmt_ops')");
    l.run_on(&url, &["--migrations", &m, "status"]).assert_ok();
    l.run_on(&url, &["--migrations", &m, "up"]).assert_ok();
    assert_eq!(schemas(&l), "cmt_tenant");

    // The history tables as an older release left them, distributed in a
    // distributed schema: the upsert chatmigrate sends is accepted there
    // (Citus refuses now() and current_user in DO UPDATE SET).
    query_url(&url, "CREATE SCHEMA cmt_hist");
    let history = chatmigrate::__private::config::HistoryTable {
        schema: Some("cmt_hist".into()),
        table: "chatmigrate_history".into(),
    };
    let dialect = chatmigrate::__private::dialect::ToolSql::new(&history, "x");
    for sql in dialect.create_history() {
        query_url(&url, &sql);
    }
    assert_eq!(
        l.scalar("SELECT citus_table_type FROM citus_tables WHERE table_name = 'cmt_hist.chatmigrate_history'::regclass"),
        "schema"
    );
    let file = chatmigrate::Migration::parse("V1__a.sql", "V1__a.sql", b"SELECT 1;").unwrap();
    let file = chatmigrate::__private::migration::split(&file).unwrap();
    let mut row = chatmigrate::__private::history::Row::new(&file, "citus", chatmigrate::__private::history::Status::Partial, 0, false);
    for (done, status) in [
        (0, chatmigrate::__private::history::Status::Partial),
        (1, chatmigrate::__private::history::Status::Applied),
    ] {
        row.statements_done = done;
        row.status = status;
        let values = chatmigrate::__private::dialect::history_values(&row, chatmigrate::__private::dialect::Value::Int(5));
        query_url(&url, &dialect.upsert_history(&values));
    }
    assert_eq!(
        l.scalar("SELECT status || ' ' || statements_done || ' ' || execution_ms FROM cmt_hist.chatmigrate_history"),
        "applied 1 10"
    );
    drop(role);
    assert_eq!(schemas(&l), "");
}

#[test]
fn live_lint_follows_alter_distributed_table() {
    let Some(l) = live("live_lint_follows_alter_distributed_table") else {
        return;
    };
    drop_tables(&l, &["cmt_moved"]);
    l.dir.write(
        "m/V1__moved.sql",
        "CREATE TABLE cmt_moved (tenant bigint, chatid bigint, code text);\nSELECT create_distributed_table('cmt_moved', 'tenant');\nINSERT INTO cmt_moved SELECT g % 7, g, 'c' || g FROM generate_series(1, 500) g;\n",
    );
    l.dir.write(
        "m/V2__redistribute.sql",
        "SELECT alter_distributed_table('cmt_moved', distribution_column := 'chatid');\n",
    );
    // Valid only because the table is distributed by chatid now.
    l.dir.write(
        "m/V3__unique.sql",
        "-- chatmigrate:no-transaction\nCREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS cmt_moved_chatid_code ON cmt_moved (chatid, code);\n",
    );
    let m = migrations(&l);
    let lint = l.run(&["--migrations", &m, "lint"]);
    assert!(
        !lint.stdout.contains("citus-unique-without-distribution-column"),
        "{}",
        lint.output()
    );
    l.run(&["--migrations", &m, "up"]).assert_ok();
    assert_eq!(
        l.scalar("SELECT distribution_column FROM citus_tables WHERE table_name = 'cmt_moved'::regclass"),
        "chatid"
    );
    assert_eq!(
        l.scalar("SELECT indisvalid::text FROM pg_index WHERE indexrelid = 'cmt_moved_chatid_code'::regclass"),
        "true"
    );
    // The old distribution column no longer makes a key valid.
    l.dir.write(
        "m/V4__old.sql",
        "-- chatmigrate:no-transaction\nCREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS cmt_moved_tenant_code ON cmt_moved (tenant, code);\n",
    );
    let r = l.run(&["--migrations", &m, "up"]);
    assert_eq!(r.code, 2, "{}", r.output());
    assert!(
        r.error_line()
            .contains("[citus-unique-without-distribution-column] unique key (tenant, code) on cmt_moved, which is distributed by chatid"),
        "{}",
        r.output()
    );
    drop_tables(&l, &["cmt_moved"]);
}

#[test]
fn live_an_unguarded_distribution_is_flagged_and_the_guarded_one_resumes() {
    let Some(l) = live("live_an_unguarded_distribution_is_flagged_and_the_guarded_one_resumes") else {
        return;
    };
    drop_tables(&l, &["cmt_big"]);
    l.dir.write(
        "m/V1__big.sql",
        "CREATE TABLE cmt_big (id bigint PRIMARY KEY, v text);\nINSERT INTO cmt_big SELECT g, 'v' FROM generate_series(1, 1000) g;\n",
    );
    l.dir.write(
        "m/V2__distribute.sql",
        "-- chatmigrate:no-transaction\nSELECT create_distributed_table('cmt_big', 'id');\n",
    );
    let m = migrations(&l);
    let r = l.run(&["--migrations", &m, "up"]);
    r.assert_error(&format!(
        "{}:2:1: [prefer-robust-stmts] create_distributed_table('cmt_big') without a guard in a no-transaction file fails if it runs again, and chatmigrate runs it again when a run was cut after the statement finished but before its progress was recorded (`SELECT create_distributed_table('cmt_big', 'id')`)",
        l.dir.shown("m/V2__distribute.sql")
    ));
    assert!(
        r.output()
            .contains("WHERE NOT EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = 'cmt_big'::regclass AND partmethod = 'h');"),
        "{}",
        r.output()
    );
    assert_eq!(l.scalar("SELECT to_regclass('cmt_big') IS NULL"), "t");

    // The guarded form runs, and runs again when the run was cut after the
    // call took effect but before its progress was recorded.
    l.dir.write(
        "m/V2__distribute.sql",
        "-- chatmigrate:no-transaction\nSELECT create_distributed_table('cmt_big', 'id') WHERE NOT EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = 'cmt_big'::regclass AND partmethod = 'h');\n",
    );
    l.run(&["--migrations", &m, "up"]).assert_ok();
    l.query("UPDATE chatmigrate_history SET status = 'partial', statements_done = 0 WHERE version = 2");
    let r = l.run(&["--migrations", &m, "up"]);
    r.assert_ok();
    assert!(r.stdout.contains("applied V2 distribute"), "{}", r.stdout);
    assert_eq!(
        l.scalar("SELECT citus_table_type FROM citus_tables WHERE table_name = 'cmt_big'::regclass"),
        "distributed"
    );

    // Unguarded and let through: Citus's own refusal on the re-run, with the guard as the fix.
    l.dir.write(
        "m/V2__distribute.sql",
        "-- chatmigrate:no-transaction\n-- chatmigrate:ignore prefer-robust-stmts -- the test wants Citus's refusal\nSELECT create_distributed_table('cmt_big', 'id');\n",
    );
    l.query(&format!(
        "UPDATE chatmigrate_history SET status = 'partial', statements_done = 0, checksum = '{}' WHERE version = 2",
        chatmigrate::__private::migration::checksum(&std::fs::read_to_string(l.dir.path().join("m/V2__distribute.sql")).unwrap())
    ));
    let r = l.run(&["--migrations", &m, "up"]);
    r.assert_error(&format!(
        "{}:3:1: version 2 failed: table \"cmt_big\" is already distributed (SQLSTATE 42P16)",
        l.dir.shown("m/V2__distribute.sql")
    ));
    assert!(r.hint().contains("guard the call"), "{}", r.hint());
    drop_tables(&l, &["cmt_big"]);
}

#[test]
fn live_rebalance_start_is_noted_and_rebalance_wait_waited_for() {
    let Some(l) = live("live_rebalance_start_is_noted_and_rebalance_wait_waited_for") else {
        return;
    };
    drop_tables(&l, &["cmt_rebal"]);
    let workers = l.workers();
    if workers.len() < 2 {
        eprintln!("skipping live_rebalance_start_is_noted_and_rebalance_wait_waited_for: it needs two workers");
        return;
    }
    l.dir.write(
        "m/V1__rebal.sql",
        "CREATE TABLE cmt_rebal (id bigint PRIMARY KEY);\nSELECT create_distributed_table('cmt_rebal', 'id', shard_count := 16, colocate_with := 'none');\nINSERT INTO cmt_rebal SELECT generate_series(1, 1000);\n",
    );
    let m = migrations(&l);
    l.run(&["--migrations", &m, "up"]).assert_ok();
    // Every shard on the first worker: the rebalancer has moves to make.
    let (host, port) = workers[0].rsplit_once(':').unwrap();
    for r in l.query(&format!(
        "SELECT shardid::text, nodename, nodeport::text FROM citus_shards WHERE table_name = 'cmt_rebal'::regclass AND NOT (nodename = '{host}' AND nodeport = {port})"
    )) {
        let (shard, from, from_port) = (r[0].clone().unwrap(), r[1].clone().unwrap(), r[2].clone().unwrap());
        l.query(&format!(
            "SELECT citus_move_shard_placement({shard}, '{from}', {from_port}, '{host}', {port}, shard_transfer_mode := 'block_writes')"
        ));
    }
    let on_first = |l: &Live| {
        l.scalar(&format!(
            "SELECT count(*) FROM citus_shards WHERE table_name = 'cmt_rebal'::regclass AND nodename = '{host}' AND nodeport = {port}"
        ))
    };
    assert_eq!(on_first(&l), "16");
    l.dir.write(
        "m/V2__rebalance.sql",
        "-- chatmigrate:no-transaction\nSELECT citus_rebalance_start(shard_transfer_mode := 'block_writes');\nSELECT citus_rebalance_wait();\n",
    );
    let dry = l.run(&["--migrations", &m, "up", "--dry-run"]);
    assert!(
        dry.stdout.contains("-- note: citus_rebalance_start() starts the rebalance as a background job and returns at once: the migration is recorded as applied while shards still move"),
        "{}",
        dry.stdout
    );
    let started = Instant::now();
    let r = l.run(&["--migrations", &m, "up"]);
    r.assert_ok();
    eprintln!("rebalance of 16 shards with citus_rebalance_wait(): {:?}", started.elapsed());
    assert!(
        r.stdout.contains("V2: citus_rebalance_start() starts the rebalance"),
        "{}",
        r.stdout
    );
    // The wait says what it waits for (8 moves take seconds: Citus's
    // background task queue runs them one by one).
    assert!(
        r.stderr.contains("waiting for the Citus rebalance to finish: 1 s (citus_rebalance_wait(); SELECT * FROM citus_rebalance_status() shows its progress)\n"),
        "{}",
        r.stderr
    );
    // citus_rebalance_wait() returned once the job had ended: the shards are spread.
    assert_ne!(on_first(&l), "16");
    assert_eq!(
        l.scalar("SELECT state::text FROM pg_dist_background_job ORDER BY job_id DESC LIMIT 1"),
        "finished"
    );
    drop_tables(&l, &["cmt_rebal"]);
}

/// One worker stopped by `CHATMIGRATE_TEST_CITUS_WORKER_STOP` and started
/// again by `CHATMIGRATE_TEST_CITUS_WORKER_START`, at the latest when this
/// is dropped (so a failed test leaves the cluster whole).
struct StoppedWorker<'a> {
    l: &'a Live,
    start: String,
    /// `host:port` of the worker the coordinator cannot reach.
    node: String,
    running: bool,
}

fn shell(command: &str) {
    let status = std::process::Command::new("sh").arg("-c").arg(command).status().unwrap();
    assert!(status.success(), "{command}: {status}");
}

/// The workers the coordinator cannot reach.
fn unreachable(l: &Live) -> Vec<String> {
    l.query("SELECT nodename || ':' || nodeport FROM run_command_on_workers('SELECT 1') WHERE NOT success")
        .into_iter()
        .map(|r| r[0].clone().unwrap())
        .collect()
}

impl<'a> StoppedWorker<'a> {
    fn stop(l: &'a Live) -> Option<StoppedWorker<'a>> {
        let (Ok(stop), Ok(start)) = (
            std::env::var("CHATMIGRATE_TEST_CITUS_WORKER_STOP"),
            std::env::var("CHATMIGRATE_TEST_CITUS_WORKER_START"),
        ) else {
            return None;
        };
        assert!(unreachable(l).is_empty(), "a worker is down before the test");
        shell(&stop);
        let down = unreachable(l);
        assert_eq!(down.len(), 1, "{stop} did not stop one worker: {down:?}");
        Some(StoppedWorker {
            l,
            start,
            node: down[0].clone(),
            running: false,
        })
    }

    fn start(&mut self) {
        if !self.running {
            self.running = true;
            shell(&self.start);
            let since = Instant::now();
            while !unreachable(self.l).is_empty() {
                assert!(since.elapsed() < Duration::from_secs(60), "the worker did not come back");
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
}

impl Drop for StoppedWorker<'_> {
    fn drop(&mut self) {
        self.start();
    }
}

#[test]
fn live_a_worker_stopped_during_a_run() {
    let Some(l) = live("live_a_worker_stopped_during_a_run") else {
        return;
    };
    if std::env::var_os("CHATMIGRATE_TEST_CITUS_WORKER_STOP").is_none() {
        eprintln!(
            "skipping live_a_worker_stopped_during_a_run: CHATMIGRATE_TEST_CITUS_WORKER_STOP / _START are not set (docs/citus.md, Testing)"
        );
        return;
    }
    drop_tables(&l, &["cmt_nodes"]);
    l.dir.write(
        "m/V1__nodes.sql",
        "CREATE TABLE cmt_nodes (tenant bigint, id bigint, PRIMARY KEY (tenant, id));\nSELECT create_distributed_table('cmt_nodes', 'tenant');\nINSERT INTO cmt_nodes SELECT g % 10, g FROM generate_series(1, 1000) g;\n",
    );
    let m = migrations(&l);
    l.run(&["--migrations", &m, "up"]).assert_ok();
    l.dir.write("m/V2__note.sql", "ALTER TABLE cmt_nodes ADD COLUMN note text;\n");

    let mut w = StoppedWorker::stop(&l).unwrap();
    let (host, port) = w.node.rsplit_once(':').unwrap();
    let (host, port) = (host.to_string(), port.to_string());

    // A transactional migration: a Citus node failure, named, with how to
    // check the node; the coordinator session is not reconnected.
    let started = Instant::now();
    let r = l.run(&["--migrations", &m, "up"]);
    let took = started.elapsed();
    assert_eq!(r.code, 2, "{}", r.output());
    let line = r.error_line();
    assert!(
        line.starts_with(&format!(
            "error: {}:1:1: version 2 failed: connection to the remote node ",
            l.dir.shown("m/V2__note.sql")
        )) && line.contains(&format!("@{host}:{port} failed with the following error: "))
            && line.ends_with("(SQLSTATE 08006)"),
        "{}",
        r.output()
    );
    assert!(!line.contains('\n'));
    assert!(
        r.hint().starts_with(&format!("hint: a Citus node failure, not chatmigrate's connection (the coordinator session is fine): the coordinator could not reach the worker {host}:{port} (")),
        "{}",
        r.hint()
    );
    assert!(r.hint().contains(&format!("pg_isready -h {host} -p {port}")), "{}", r.hint());
    assert!(r.hint().ends_with("; this migration was rolled back"), "{}", r.hint());
    assert!(!r.output().contains("reconnect"), "{}", r.output());
    eprintln!("node failure reported in {took:?}");
    assert!(took < Duration::from_secs(15), "{took:?}");
    assert_eq!(l.scalar("SELECT max(version)::text FROM chatmigrate_history"), "1");

    // status names the worker the coordinator cannot reach.
    let s = l.run(&["--migrations", &m, "status"]);
    assert_eq!(s.code, 0, "{}", s.output());
    assert!(s.stdout.contains("; 1 unreachable from the coordinator\n"), "{}", s.stdout);
    assert!(
        s.stdout.contains(&format!(
            "unreachable: {host}:{port} (failed to connect to {host}:{port}): a node failure"
        )),
        "{}",
        s.stdout
    );
    let j = l.run(&["--migrations", &m, "--format", "json", "status"]);
    let v: serde_json::Value = serde_json::from_str(&j.stdout).unwrap();
    assert!(v["server"]["unreachable"].as_str().unwrap().starts_with(&format!("{host}:{port}")));

    // With citus_node_wait, `up` waits for the node (a progress line says
    // so) and applies the migration once it is back.
    citus_config(&l.dir, "citus_node_wait = \"90s\"\n");
    let child = spawn_in(
        l.dir.path(),
        &["--env", "citus", "--database-url", &l.url, "--migrations", &m, "up"],
    );
    std::thread::sleep(Duration::from_secs(3));
    w.start();
    let r = finish(child);
    r.assert_ok();
    assert!(
        r.stderr.contains(&format!(
            "waiting for Citus worker {host}:{port} (the coordinator cannot reach it): "
        )),
        "{}",
        r.output()
    );
    assert!(r.stdout.contains("applied V2 note"), "{}", r.output());
    drop(w);

    // A CONCURRENTLY build in a no-transaction file: stopped by the node
    // failure, it resumes at the statement (its INVALID index dropped first).
    citus_config(&l.dir, "");
    l.dir.write(
        "m/V3__index.sql",
        "-- chatmigrate:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS cmt_nodes_id ON cmt_nodes (id);\n",
    );
    let mut w = StoppedWorker::stop(&l).unwrap();
    let r = l.run(&["--migrations", &m, "up"]);
    assert_eq!(r.code, 2, "{}", r.output());
    assert!(r.error_line().contains("connection to the remote node "), "{}", r.output());
    assert!(
        r.hint().ends_with("; `chatmigrate up` then resumes at the failing statement"),
        "{}",
        r.hint()
    );
    w.start();
    let r = l.run(&["--migrations", &m, "up"]);
    r.assert_ok();
    assert_eq!(
        l.scalar("SELECT indisvalid::text FROM pg_index WHERE indexrelid = 'cmt_nodes_id'::regclass"),
        "true"
    );
    let per_shard = query_each(
        &l.url,
        &["SELECT count(*) FILTER (WHERE result = 't') || '/' || count(*) FROM run_command_on_shards('cmt_nodes', $$SELECT bool_and(indisvalid) FROM pg_index WHERE indrelid = '%s'::regclass AND indisunique = false$$)"],
    );
    let counts = per_shard[0][0].clone().unwrap();
    let (valid, all) = counts.split_once('/').unwrap();
    assert_eq!(valid, all, "{counts}");
    drop_tables(&l, &["cmt_nodes"]);
}

#[test]
fn live_a_migration_user_that_is_not_a_superuser() {
    // As on Azure, where the admin user is not a superuser: chatmigrate's
    // own SQL needs no superuser, and what it may not read (the
    // superuser-only output_plugin_libraries) it says it cannot tell.
    let Some(l) = live("live_a_migration_user_that_is_not_a_superuser") else {
        return;
    };
    const ROLE: &str = "cmt_plain";
    let cleanup = |l: &Live| {
        l.query("DROP TABLE IF EXISTS cmt_plain_t CASCADE");
        l.query("DROP SCHEMA IF EXISTS cmt_plain_ops CASCADE");
        if l.scalar(&format!("SELECT count(*) FROM pg_roles WHERE rolname = '{ROLE}'")) == "1" {
            l.query(&format!("DROP OWNED BY {ROLE}"));
            l.query(&format!("DROP ROLE {ROLE}"));
        }
    };
    cleanup(&l);
    let db = l.scalar("SELECT quote_ident(current_database())");
    l.query(&format!("CREATE ROLE {ROLE} LOGIN"));
    l.query(&format!("GRANT CREATE ON DATABASE {db} TO {ROLE}"));
    l.query(&format!("GRANT CREATE ON SCHEMA public TO {ROLE}"));
    let url = {
        let (scheme, rest) = l.url.split_once("://").unwrap();
        format!("{scheme}://{ROLE}@{}", rest.split_once('@').unwrap().1)
    };
    citus_config(&l.dir, "history_schema = \"cmt_plain_ops\"\n");
    l.dir.write(
        "m/V1__t.sql",
        "CREATE TABLE cmt_plain_t (k bigint PRIMARY KEY);\nINSERT INTO cmt_plain_t SELECT generate_series(1, 100);\n",
    );
    l.dir.write(
        "m/V2__distribute.sql",
        "-- chatmigrate:no-transaction\nSELECT create_distributed_table('cmt_plain_t', 'k') WHERE NOT EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = 'cmt_plain_t'::regclass AND partmethod = 'h');\n",
    );
    let m = migrations(&l);
    let r = l.run_on(&url, &["--migrations", &m, "up"]);
    r.assert_ok();
    let hidden = l.scalar(&format!("SELECT (NOT pg_has_role('{ROLE}', 'pg_read_all_settings', 'USAGE') AND EXISTS (SELECT 1 FROM pg_settings WHERE name = 'output_plugin_libraries'))::text"));
    if hidden == "true" {
        assert!(
            r.stdout.contains("whether output_plugin_libraries allows it is hidden from this user (grant it pg_read_all_settings to let chatmigrate read the setting)"),
            "{}",
            r.stdout
        );
    }
    assert_eq!(
        l.scalar("SELECT citus_table_type FROM citus_tables WHERE table_name = 'cmt_plain_t'::regclass"),
        "distributed"
    );
    let s = l.run_on(&url, &["--migrations", &m, "status"]);
    s.assert_ok();
    assert!(s.stdout.contains("2 applied on"), "{}", s.stdout);
    assert!(!s.stdout.contains("unreachable"), "{}", s.stdout);
    cleanup(&l);
}

#[test]
fn live_a_hint_relayed_inside_the_message_is_shown_as_a_hint() {
    let Some(l) = live("live_a_hint_relayed_inside_the_message_is_shown_as_a_hint") else {
        return;
    };
    // Only where the server restricts output plugins and citus is not among them.
    let list = l.query("SELECT current_setting('output_plugin_libraries', true)")[0][0].clone();
    if list.is_none_or(|l| l.split(',').any(|p| p.trim() == "citus")) {
        eprintln!("skipping live_a_hint_relayed_inside_the_message_is_shown_as_a_hint: the server lets citus decode WAL");
        return;
    }
    drop_tables(&l, &["cmt_relay"]);
    l.dir.write(
        "m/V1__t.sql",
        "CREATE TABLE cmt_relay (id bigint PRIMARY KEY);\nINSERT INTO cmt_relay SELECT generate_series(1, 100);\n",
    );
    l.dir.write(
        "m/V2__concurrently.sql",
        "-- chatmigrate:no-transaction\nSELECT create_distributed_table_concurrently('cmt_relay', 'id') WHERE NOT EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = 'cmt_relay'::regclass AND partmethod = 'h');\n",
    );
    let m = migrations(&l);
    let r = l.run(&["--migrations", &m, "up"]);
    // Citus relays the error of its replication connection with the
    // remote "ERROR:" and "HINT:" lines in the message text.
    r.assert_error(&format!(
        "{}:2:1: version 2 failed: library \"citus\" may not be used as an output plugin; HINT: If it is safe for all REPLICATION users to use this library as an output plugin, add it to \"output_plugin_libraries\" and reload the server configuration. (SQLSTATE XX000)",
        l.dir.shown("m/V2__concurrently.sql")
    ));
    assert!(
        r.hint().contains("add citus to output_plugin_libraries on every node"),
        "{}",
        r.hint()
    );
    // The server's WARNING before it, shown as a note of the Citus call.
    assert!(
        r.stdout
            .contains("V2: server WARNING: library \"citus\" may not be used as an output plugin; HINT: If it is safe"),
        "{}",
        r.stdout
    );
    drop_tables(&l, &["cmt_relay"]);
}

#[test]
fn another_connection_of_the_server_failing_is_not_a_lost_session() {
    // What a Citus worker failure looks like on a plain PostgreSQL: the
    // server reports, as an ERROR on a session that goes on, that its own
    // connection to another server failed (08001 here, from dblink). It is
    // the migration's failure, not a lost connection: no reconnect.
    let (db, dir) = (Db::new(), Dir::new());
    dir.write(
        "V1__remote.sql",
        "CREATE EXTENSION IF NOT EXISTS dblink;\nSELECT dblink_connect('host=127.0.0.1 port=1 dbname=nowhere connect_timeout=2');\n",
    );
    let r = cm(&db, &dir, &["up"]);
    assert_eq!(r.code, 2, "{}", r.output());
    assert!(
        r.error_line()
            .contains("V1__remote.sql:2:1: version 1 failed: could not establish connection"),
        "{}",
        r.output()
    );
    // One line, the remote server's text included.
    assert!(
        r.error_line()
            .ends_with("failed: Connection refused Is the server running on that host and accepting TCP/IP connections? (SQLSTATE 08001)"),
        "{}",
        r.output()
    );
    assert!(r.hint().ends_with("this migration was rolled back"), "{}", r.hint());
    assert!(
        !r.output().contains("reconnect") && !r.output().contains("connection lost"),
        "{}",
        r.output()
    );
    assert!(db.history().is_empty());
    assert_eq!(db.scalar("SELECT count(*) FROM pg_extension WHERE extname = 'dblink'"), "0");
}
