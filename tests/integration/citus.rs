//! The `citus` backend.
//!
//! Always: the golden dry run of the chat schema for a citus environment
//! (computed without a connection, `tests/integration/golden/`), the
//! refusals that need no Citus (a database without the citus extension,
//! `--create-database`), the configuration key and the directive.
//!
//! With `CHATMIGRATE_TEST_CITUS_URL` (a coordinator's URL, with password):
//! the whole chat schema on the live cluster, asserted from Citus itself;
//! 8 concurrent runners; refusal on a worker (its URL from
//! `CHATMIGRATE_TEST_CITUS_WORKER_URL`, else the first active worker in
//! `pg_dist_node` with the coordinator URL's user, password and database);
//! the parallel-operation traps avoided by sequential mode; distributing
//! tables that have rows; `--create-database`. These tests drop and
//! recreate the chat tables and chatmigrate's history in that database, one
//! test at a time: point the variable at a scratch database.

use chatmigrate::__private::render::{self, Outcome, Style, UpOutcome};
use chatmigrate::__private::runner::{self, UpOptions};
use chatmigrate::{Config, Env, Overrides};

use crate::support::citus::{citus_config, live, query_each};
use crate::support::*;

const GOLDEN: &str = "tests/integration/golden/citus_dry_run.sql";

/// No environment variables: the golden test must not see the test
/// server's PG* variables.
struct NoEnv;

impl Env for NoEnv {
    fn var(&self, _key: &str) -> Option<String> {
        None
    }
}

/// The dry run of the embedded chat schema for a citus environment, as
/// `up --dry-run` prints it on a database where nothing is applied yet.
fn offline_dry_run(dir: &Dir, extra: &str) -> String {
    let path = citus_config(dir, extra);
    let o = Overrides {
        config_path: Some(path),
        env: Some("citus".into()),
        ..Overrides::default()
    };
    let cfg = Config::load(&o, &NoEnv).unwrap();
    let report = runner::dry_run_offline(&cfg, &UpOptions::default()).unwrap();
    let up = Outcome::Up(UpOutcome {
        report,
        dry_run: true,
        duration_ms: 0,
    });
    let mut out = Vec::new();
    render::outcome(&Style::text(), &mut out, &up).unwrap();
    String::from_utf8(out).unwrap()
}

/// A live dry run without the catalog reads it shows before a statement (a
/// `-- citus reads the catalog ...` line and one read up to its `;`), and
/// how many there were.
fn without_reads(dry: &str) -> (usize, String) {
    let (mut reads, mut skipping, mut out) = (0, false, String::new());
    for line in dry.lines() {
        if line.starts_with("-- citus reads the catalog to choose how to send ") {
            reads += 1;
            skipping = true;
        } else if skipping {
            skipping = !line.ends_with(';');
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    (reads, out)
}

fn golden() -> String {
    std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(GOLDEN)).unwrap()
}

#[test]
fn golden_dry_run_of_the_chat_schema_on_citus() {
    let dir = Dir::new();
    let out = offline_dry_run(
        &dir,
        "host = \"c-chat.example.postgres.cosmos.azure.com\"\nuser = \"citus\"\ndbname = \"citus\"\n",
    );
    if std::env::var_os("CHATMIGRATE_BLESS").is_some() {
        std::fs::write(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(GOLDEN), &out).unwrap();
    }
    assert_eq!(out, golden(), "the dry run changed; CHATMIGRATE_BLESS=1 rewrites {GOLDEN}");

    // Every transaction opens with sequential mode; nothing is group-committed
    // (the coordinator's commit decides the workers' two-phase commit), and
    // create_object_propagation is never touched.
    let begins = out.matches("BEGIN;\n").count();
    assert_eq!(begins, 6, "{out}");
    assert_eq!(
        out.matches("BEGIN;\nSET LOCAL citus.multi_shard_modify_mode TO 'sequential';\n")
            .count(),
        begins
    );
    assert!(!out.contains("synchronous_commit"));
    assert!(!out.contains("create_object_propagation"));
    // The citus-only files come after the portable ones, in one version space.
    let headers: Vec<&str> = out.lines().filter(|l| l.starts_with("-- V")).collect();
    assert_eq!(
        headers,
        vec![
            "-- V1 st_chat_history_table (one transaction)",
            "-- V2 vector_extension (one transaction)",
            "-- V3 st_chat_history_vector_table (one transaction)",
            "-- V4 st_chat_history_vector_hnsw (no transaction, statement by statement)",
            "-- V5 citus_chat_theme_reference_table (one transaction)",
            "-- V6 citus_distribute_chat_history (no transaction, statement by statement)",
            "-- V7 citus_theme_foreign_keys (one transaction)",
            "-- V8 citus_validate_theme_foreign_keys (one transaction)",
        ]
    );
}

#[test]
fn parallel_mode_from_the_environment() {
    let dir = Dir::new();
    // In parallel mode Citus refuses V8 (a reference-table write after reading
    // the distributed tables): the lint gate says so before anything runs...
    citus_config(&dir, "citus_multi_shard_modify_mode = \"parallel\"\n");
    let r = run_in(dir.path(), &["--env", "citus", "lint"], &[]);
    assert_eq!(r.code, 1, "{r:#?}");
    assert!(
        r.stdout
            .contains("embedded:citus/V8__citus_validate_theme_foreign_keys.sql:11:1: error[citus-parallel-operation]"),
        "{}",
        r.stdout
    );
    // ...so an environment that runs parallel anyway excludes the rule.
    let out = offline_dry_run(
        &dir,
        "citus_multi_shard_modify_mode = \"parallel\"\nlint_exclude = [\"citus-parallel-operation\"]\n",
    );
    assert_eq!(
        out.matches("BEGIN;\nSET LOCAL citus.multi_shard_modify_mode TO 'parallel';\n")
            .count(),
        6
    );
    assert!(!out.contains("'sequential'"));
}

#[test]
fn bad_citus_settings_are_refused() {
    let dir = Dir::new();
    citus_config(&dir, "citus_multi_shard_modify_mode = \"serial\"\n");
    run_in(dir.path(), &["--env", "citus", "status"], &[])
        .assert_error("invalid setting citus_multi_shard_modify_mode: `serial` is not one of sequential, parallel");
    citus_config(&dir, "citus_distribute_concurrently = \"yes\"\n");
    run_in(dir.path(), &["--env", "citus", "status"], &[])
        .assert_error("chatmigrate.toml:3:33: invalid type: string \"yes\", expected a boolean");
}

#[test]
fn citus_parallel_directive_is_checked_and_ignored_elsewhere() {
    let (db, dir) = (Db::new(), Dir::new());
    dir.write(
        "V1__a.sql",
        "-- chatmigrate:no-transaction\n-- chatmigrate:citus-parallel\nCREATE TABLE a (id int);\n",
    );
    cm(&db, &dir, &["up"]).assert_error(&format!(
        "{}:2:1: citus-parallel sets the mode of the file's transaction, and a no-transaction file has none: remove one of the two directives",
        dir.shown("V1__a.sql")
    ));
    dir.write("V1__a.sql", "-- chatmigrate:citus-parallel now\nCREATE TABLE a (id int);\n");
    let r = cm(&db, &dir, &["up"]);
    r.assert_error(&format!(
        "{}:1:1: citus-parallel takes no argument, got `now`",
        dir.shown("V1__a.sql")
    ));
    assert!(r.hint().contains("citus-parallel"), "{}", r.hint());
    assert!(db.history().is_empty());
    // On plain PostgreSQL the directive changes nothing.
    dir.write("V1__a.sql", "-- chatmigrate:citus-parallel\nCREATE TABLE a (id int);\n");
    let r = cm(&db, &dir, &["up", "--dry-run"]);
    r.assert_ok();
    assert!(!r.stdout.contains("citus"), "{}", r.stdout);
    cm(&db, &dir, &["up"]).assert_ok();
    assert!(db.table_exists("a"));
}

#[test]
fn new_sequential_counts_every_directory_of_the_environment() {
    let dir = Dir::new();
    citus_config(&dir, "migrations = [\"m\", \"m-citus\"]\n");
    dir.write("m/V1__a.sql", "CREATE TABLE a (id int);\n");
    dir.write("m-citus/V5__b.sql", "SELECT create_distributed_table('a', 'id');\n");
    run_in(dir.path(), &["--env", "citus", "new", "c", "--sequential"], &[]).assert_ok();
    assert!(dir.path().join("m/V6__c.sql").exists());
}

#[test]
fn a_database_without_citus_is_refused_before_anything_runs() {
    let db = Db::new();
    let dir = Dir::new();
    citus_config(&dir, "");
    for cmd in [&["up"][..], &["up", "--dry-run"], &["status"]] {
        let mut args = vec!["--env", "citus", "--database-url", &db.url];
        args.extend_from_slice(cmd);
        let r = run_in(dir.path(), &args, &[]);
        r.assert_error(&format!(
            "postgres@127.0.0.1:{}/{} is not a Citus coordinator: the citus extension is not installed in this database",
            port(),
            db.name
        ));
        assert_eq!(
            r.hint(),
            "hint: connect to the database that has the citus extension (on an Azure elastic cluster the one named when it was created, `postgres` by default; on Azure Cosmos DB for PostgreSQL dbname = \"citus\"), or use backend = \"postgres\""
        );
    }
    assert!(!db.table_exists("chatmigrate_history"));
}

/// A trust-authenticated role of the test server (scripts/pg.sh lets
/// `cm_trust_*` in without a password), dropped at the end.
struct Role {
    name: String,
}

impl Role {
    fn new(settings: &[&str]) -> Role {
        let name = format!("cm_trust_{}", Db::fresh_name());
        query_url(&server_url(), &format!("CREATE ROLE {name} LOGIN CREATEDB"));
        for setting in settings {
            query_url(&server_url(), &format!("ALTER ROLE {name} SET {setting}"));
        }
        Role { name }
    }

    fn url(&self, db: &str) -> String {
        let url = with_db(&server_url(), db);
        let (scheme, rest) = url.split_once("://").unwrap();
        format!("{scheme}://{}@{}", self.name, rest.split_once('@').unwrap().1)
    }
}

impl Drop for Role {
    fn drop(&mut self) {
        query_url(&server_url(), &format!("DROP ROLE IF EXISTS {}", self.name));
    }
}

#[test]
fn create_database_is_refused_on_citus_and_nothing_is_created() {
    let dir = Dir::new();
    citus_config(&dir, "");
    let name = Db::fresh_name();
    // Where Citus is loaded, its settings exist; role-level values stand in
    // for them on the test server (a plain PostgreSQL, which accepts any
    // `citus.*` placeholder).
    let role = Role::new(&["citus.shard_count = '32'", "citus.enable_create_database_propagation = 'off'"]);
    let exists = || {
        query_url(
            &server_url(),
            &format!("SELECT count(*)::text FROM pg_database WHERE datname = '{name}'"),
        )[0][0]
            .clone()
    };
    for args in [&["up", "--create-database"][..], &["up", "--create-database", "--dry-run"]] {
        let url = role.url(&name);
        let mut full = vec!["--env", "citus", "--database-url", &url];
        full.extend_from_slice(args);
        let r = run_in(dir.path(), &full, &[]);
        r.assert_error(&format!(
            "will not create database `{name}` on {}@127.0.0.1:{}: with citus.enable_create_database_propagation off (the default) it would exist on the coordinator only, without the citus extension and without nodes",
            role.name,
            port()
        ));
        assert!(r.hint().contains("use the `citus` database (dbname = \"citus\")"), "{}", r.hint());
        assert!(!r.stdout.contains("created database"), "{}", r.stdout);
        assert_eq!(exists().as_deref(), Some("0"));
    }
    // Citus 12.1 (Azure's elastic clusters): loaded, without the setting.
    let old = Role::new(&["citus.shard_count = '32'"]);
    let url = old.url(&name);
    let r = run_in(
        dir.path(),
        &["--env", "citus", "--database-url", &url, "up", "--create-database"],
        &[],
    );
    r.assert_error(&format!(
        "will not create database `{name}` on {}@127.0.0.1:{}: this Citus release does not propagate CREATE DATABASE (it has no citus.enable_create_database_propagation), so it would exist on the coordinator only, without the citus extension and without nodes",
        old.name,
        port()
    ));
    assert_eq!(exists().as_deref(), Some("0"));
    // Without Citus on the server at all.
    let plain = Role::new(&[]);
    let url = plain.url(&name);
    let r = run_in(
        dir.path(),
        &["--env", "citus", "--database-url", &url, "up", "--create-database"],
        &[],
    );
    r.assert_error(&format!(
        "will not create database `{name}` on {}@127.0.0.1:{}: the server does not run Citus (no citus.* settings), so there is no coordinator to create it on",
        plain.name,
        port()
    ));
    assert_eq!(exists().as_deref(), Some("0"));
}

// ----- against a live Citus coordinator -----

#[test]
fn live_chat_schema_on_a_coordinator() {
    let Some(l) = live("live_chat_schema_on_a_coordinator") else {
        return;
    };

    // The dry run on the live coordinator is the golden one (another
    // target), plus the catalog read Citus makes before each
    // create_distributed_table to choose how to send it (a comment, then the
    // read; on a new database, one read each: the table is not there yet).
    let r = l.run(&["up", "--dry-run"]);
    r.assert_ok();
    let g = golden();
    let body = |s: &str| s.split_once('\n').map(|(_, b)| b.to_string()).unwrap_or_default();
    let (reads, live) = without_reads(&r.stdout);
    assert_eq!(reads, 2, "{}", r.stdout);
    assert_eq!(body(&live), body(&g));
    assert_eq!(
        r.stdout.lines().next().unwrap(),
        format!("-- dry run on {}: nothing is sent", l.target(&l.url))
    );

    let r = l.run(&["-v", "up"]);
    r.assert_ok();
    let version = l.scalar("SELECT split_part(citus_version(), ' ', 2)");
    assert!(r.stdout.contains(&format!("\ncitus: {version} (coordinator)\n")), "{}", r.stdout);
    for v in 1..=8 {
        assert!(r.stdout.contains(&format!("applied V{v} ")), "V{v} in:\n{}", r.stdout);
    }
    let history: Vec<String> = l
        .query("SELECT version || ' ' || status || ' ' || backend FROM chatmigrate_history ORDER BY version")
        .into_iter()
        .map(|r| r[0].clone().unwrap())
        .collect();
    assert_eq!(history, (1..=8).map(|v| format!("{v} applied citus")).collect::<Vec<_>>());

    // Distribution and colocation, from Citus.
    let tables: Vec<String> = l
        .query(
            "SELECT table_name::text || ' ' || citus_table_type || ' ' || distribution_column || ' ' || shard_count
             FROM citus_tables WHERE table_name::text LIKE 'st_chat%' ORDER BY 1",
        )
        .into_iter()
        .map(|r| r[0].clone().unwrap())
        .collect();
    let shards = l.scalar("SHOW citus.shard_count");
    assert_eq!(
        tables,
        vec![
            format!("st_chat_history_table distributed userid {shards}"),
            format!("st_chat_history_vector_table distributed userid {shards}"),
            "st_chat_theme_table reference <none> 1".to_string(),
        ]
    );
    assert_eq!(
        l.scalar(
            "SELECT count(DISTINCT colocation_id) FROM citus_tables WHERE table_name IN ('st_chat_history_table'::regclass, 'st_chat_history_vector_table'::regclass)"
        ),
        "1"
    );
    // Shards on the workers: each active worker holds shards of both tables.
    let workers = l.workers();
    assert!(!workers.is_empty());
    for w in &workers {
        let (host, port) = w.rsplit_once(':').unwrap();
        for t in ["st_chat_history_table", "st_chat_history_vector_table"] {
            let n: i64 = l
                .scalar(&format!(
                    "SELECT count(*) FROM citus_shards WHERE table_name = '{t}'::regclass AND nodename = '{host}' AND nodeport = {port}"
                ))
                .parse()
                .unwrap();
            assert!(n > 0, "no shard of {t} on {w}");
        }
    }
    // The HNSW index on every shard.
    let per_shard = l.query(
        "SELECT result FROM run_command_on_shards('st_chat_history_vector_table',
           $$SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam
             WHERE i.indrelid = '%s'::regclass AND a.amname = 'hnsw'$$)",
    );
    assert_eq!(per_shard.len(), shards.parse::<usize>().unwrap());
    assert!(per_shard.iter().all(|r| r[0].as_deref() == Some("1")), "{per_shard:?}");
    // The foreign keys to the reference table, validated.
    assert_eq!(
        l.scalar("SELECT string_agg(conname || ':' || convalidated, ',' ORDER BY conname) FROM pg_constraint WHERE confrelid = 'st_chat_theme_table'::regclass"),
        "st_chat_history_theme_fkey:true,st_chat_history_vector_theme_fkey:true"
    );

    // The application's path: the theme first, then rows; nearest first.
    l.query("INSERT INTO st_chat_theme_table (themename) VALUES ('t') ON CONFLICT DO NOTHING");
    l.query(
        "INSERT INTO st_chat_history_vector_table (userid, theme, chatid, chat_summary, chat_vector)
         SELECT 'u' || i, 't', i, 's', array_fill(i::real / 10, ARRAY[1024])::vector FROM generate_series(1, 20) i",
    );
    // With sequential scans off on the shards too, every shard answers from
    // its HNSW index, and the nearest row comes first.
    let knn =
        "SELECT chatid FROM st_chat_history_vector_table ORDER BY chat_vector <-> array_fill(0.31::real, ARRAY[1024])::vector LIMIT 1";
    let no_seqscan = [
        "BEGIN",
        "SET LOCAL citus.propagate_set_commands TO 'local'",
        "SET LOCAL enable_seqscan TO off",
        "SET LOCAL citus.explain_all_tasks TO on",
    ];
    let explain = format!("EXPLAIN (COSTS OFF) {knn}");
    let plan = query_each(&l.url, &[&no_seqscan[..], &[explain.as_str()]].concat());
    let index_scans = plan
        .iter()
        .filter(|r| {
            r[0].as_deref()
                .is_some_and(|line| line.contains("Index Scan using idx_st_chat_history_vector_hnsw_"))
        })
        .count();
    assert_eq!(index_scans, shards.parse::<usize>().unwrap(), "{plan:?}");
    assert_eq!(query_each(&l.url, &[&no_seqscan[..], &[knn]].concat())[0][0].as_deref(), Some("3"));
    let e = tokio_postgres_error(
        &l.url,
        "INSERT INTO st_chat_history_table (userid, themename, chatid) VALUES ('u1', 'no such theme', 1)",
    );
    assert!(e.contains("violates foreign key constraint"), "{e}");

    // status: the release and the workers above the table, and in JSON.
    let s = l.run(&["status", "--exit-code"]);
    s.assert_ok();
    assert!(
        s.stdout.starts_with(&format!(
            "citus: {version} (coordinator)\nworkers: {} active ({})\nVERSION",
            workers.len(),
            workers.join(", ")
        )),
        "{}",
        s.stdout
    );
    let j = l.run(&["--format", "json", "status"]);
    let v: serde_json::Value = serde_json::from_str(&j.stdout).unwrap();
    assert_eq!(v["server"]["citus"], format!("{version} (coordinator)"));
    // Nothing left to do.
    let again = l.run(&["up"]);
    again.assert_ok();
    assert!(again.stdout.starts_with("nothing to apply"), "{}", again.stdout);
}

/// The server's error for `sql` (which must fail), as text.
fn tokio_postgres_error(url: &str, sql: &str) -> String {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
        let h = tokio::spawn(conn);
        let e = client.simple_query(sql).await.expect_err(sql);
        drop(client);
        let _ = h.await;
        e.as_db_error().map(|d| d.message().to_string()).unwrap_or_else(|| e.to_string())
    })
}

#[test]
fn live_eight_runners_apply_every_migration_exactly_once() {
    let Some(l) = live("live_eight_runners_apply_every_migration_exactly_once") else {
        return;
    };
    // The chat schema (portable and citus-only) plus distributed tables of its own.
    for (name, body) in chatmigrate::__private::migration::embedded_files() {
        l.dir.write(&format!("m/{name}"), body);
    }
    for (name, body) in chatmigrate::__private::migration::embedded_citus_files() {
        l.dir.write(&format!("m/{name}"), body);
    }
    for i in 1..=4 {
        l.dir.write(
            &format!("m/V{}__gen_{i}.sql", 100 + i),
            format!(
                "CREATE TABLE cmt_gen_{i} (tenant bigint, id bigint, PRIMARY KEY (tenant, id));\nSELECT create_distributed_table('cmt_gen_{i}', 'tenant');\nCREATE INDEX cmt_gen_{i}_id ON cmt_gen_{i} (id);\nINSERT INTO cmt_gen_{i} SELECT g % 10, g FROM generate_series(1, 100) g;\n"
            ),
        );
    }
    let m = l.dir.path().join("m");
    let m = m.to_str().unwrap();
    let children: Vec<_> = (0..8)
        .map(|_| spawn_in(l.dir.path(), &["--env", "citus", "--database-url", &l.url, "--migrations", m, "up"]))
        .collect();
    let runs: Vec<Run> = children.into_iter().map(finish).collect();
    for r in &runs {
        assert_eq!(r.code, 0, "{r:#?}");
    }
    let versions: Vec<i64> = (1..=8).chain(101..=104).collect();
    for v in &versions {
        let applied = runs.iter().filter(|r| r.stdout.contains(&format!("applied V{v} "))).count();
        assert_eq!(applied, 1, "V{v} applied by {applied} runners");
    }
    assert_eq!(
        l.scalar("SELECT count(*)::text || ' ' || count(DISTINCT version)::text FROM chatmigrate_history WHERE status = 'applied'"),
        format!("{} {}", versions.len(), versions.len())
    );
    for i in 1..=4 {
        assert_eq!(l.scalar(&format!("SELECT count(*) FROM cmt_gen_{i}")), "100");
    }
}

#[test]
fn live_a_worker_is_refused() {
    let Some(l) = live("live_a_worker_is_refused") else { return };
    let worker = l.worker_url();
    let coordinator = l.scalar("SELECT nodename || ':' || nodeport FROM pg_dist_node WHERE groupid = 0 AND noderole = 'primary'");
    let group = query_url(&worker, "SELECT groupid::text FROM pg_dist_local_group")[0][0]
        .clone()
        .unwrap();
    for cmd in [&["up"][..], &["status"], &["up", "--dry-run"]] {
        let r = l.run_on(&worker, cmd);
        r.assert_error(&format!(
            "{} is a Citus worker (group {group}), not the coordinator ({coordinator}): the migration lock and the distributed metadata live on the coordinator",
            l.target(&worker)
        ));
        assert!(
            r.hint().starts_with("hint: point the environment at the coordinator"),
            "{}",
            r.hint()
        );
    }
    // Nothing was written on the worker (nor through it).
    assert_eq!(
        query_url(&worker, "SELECT to_regclass('chatmigrate_history') IS NULL")[0][0].as_deref(),
        Some("t")
    );
    assert_eq!(l.scalar("SELECT to_regclass('chatmigrate_history') IS NULL"), "t");
}

#[test]
fn live_parallel_operation_passes_in_sequential_mode() {
    let Some(l) = live("live_parallel_operation_passes_in_sequential_mode") else {
        return;
    };
    let body = |t: &str, k: &str| {
        format!("CREATE TABLE {t} (tenant bigint, id bigint, PRIMARY KEY (tenant, id));\nSELECT create_distributed_table('{t}', 'tenant');\nCREATE TYPE {k} AS ENUM ('a', 'b');\nALTER TABLE {t} ADD COLUMN kind {k};\n")
    };
    l.dir.write("m/V1__docs.sql", body("cmt_docs", "cmt_kind"));
    let m = l.dir.path().join("m");
    let m = m.to_str().unwrap();
    l.run(&["--migrations", m, "up"]).assert_ok();
    // The type reached every worker (sequential mode propagates it in the
    // transaction; 'automatic' propagation would have left it behind).
    let on_workers = l.query("SELECT result FROM run_command_on_workers($$SELECT count(*) FROM pg_type WHERE typname = 'cmt_kind'$$)");
    assert!(
        !on_workers.is_empty() && on_workers.iter().all(|r| r[0].as_deref() == Some("1")),
        "{on_workers:?}"
    );

    // The same in parallel mode (the file asks for it): the lint refuses it
    // before anything runs...
    let file = format!("-- chatmigrate:citus-parallel\n{}", body("cmt_docs_par", "cmt_kind_par"));
    l.dir.write("m/V2__docs_par.sql", file);
    let r = l.run(&["--migrations", m, "up"]);
    assert_eq!(r.code, 2, "{}", r.output());
    assert!(
        r.error_line().starts_with(&format!(
            "error: {}:4:1: [citus-parallel-operation]",
            l.dir.shown("m/V2__docs_par.sql")
        )),
        "{}",
        r.output()
    );
    assert_eq!(l.scalar("SELECT to_regclass('cmt_docs_par') IS NULL"), "t");
    // ...and with the rule silenced, Citus's trap: rolled back, with the fix.
    let file = format!("-- chatmigrate:citus-parallel\n{}", body("cmt_docs_par", "cmt_kind_par")).replace(
        "CREATE TYPE",
        "-- chatmigrate:ignore citus-parallel-operation -- the live test wants Citus's own refusal\nCREATE TYPE",
    );
    l.dir.write("m/V2__docs_par.sql", file);
    let r = l.run(&["--migrations", m, "up"]);
    r.assert_error(&format!(
        "{}:5:1: version 2 failed: cannot run type command because there was a parallel operation on a distributed table in the transaction; DETAIL: When running command on/for a distributed type, Citus needs to perform all operations over a single connection per node to ensure consistency.; HINT: Try re-running the transaction with \"SET LOCAL citus.multi_shard_modify_mode TO 'sequential';\" (SQLSTATE XX000)",
        l.dir.shown("m/V2__docs_par.sql")
    ));
    assert_eq!(
        r.hint(),
        "hint: chatmigrate runs transactional migrations with SET LOCAL citus.multi_shard_modify_mode TO 'sequential', which avoids this: remove `-- chatmigrate:citus-parallel` from the file (or citus_multi_shard_modify_mode = \"parallel\" from the environment), or move the statement to a migration of its own; this migration was rolled back"
    );
    assert_eq!(l.scalar("SELECT to_regclass('cmt_docs_par') IS NULL"), "t");
    assert_eq!(l.scalar("SELECT max(version)::text FROM chatmigrate_history"), "1");
    // Without the directive it applies.
    l.dir.write("m/V2__docs_par.sql", body("cmt_docs_par", "cmt_kind_par"));
    l.run(&["--migrations", m, "up"]).assert_ok();
    assert_eq!(
        l.scalar("SELECT citus_table_type FROM citus_tables WHERE table_name = 'cmt_docs_par'::regclass"),
        "distributed"
    );
}

#[test]
fn live_shipped_schema_needs_sequential_mode() {
    let Some(l) = live("live_shipped_schema_needs_sequential_mode") else {
        return;
    };
    // V8 reads the distributed tables, then writes the reference table they
    // reference: Citus refuses that in parallel mode, even on empty tables.
    citus_config(&l.dir, "citus_multi_shard_modify_mode = \"parallel\"\n");
    let r = l.run(&["up"]);
    assert_eq!(r.code, 2, "{}", r.output());
    assert!(
        r.error_line()
            .starts_with("error: embedded:citus/V8__citus_validate_theme_foreign_keys.sql:11:1: [citus-parallel-operation]"),
        "{}",
        r.output()
    );
    assert!(r.stdout.is_empty(), "the lint refuses before anything runs: {}", r.stdout);
    // With the rule excluded, Citus itself refuses V8.
    citus_config(
        &l.dir,
        "citus_multi_shard_modify_mode = \"parallel\"\nlint_exclude = [\"citus-parallel-operation\"]\n",
    );
    let r = l.run(&["up"]);
    r.assert_error("embedded:citus/V8__citus_validate_theme_foreign_keys.sql:11:1: version 8 failed: cannot modify table \"st_chat_theme_table\" because there was a parallel operation on a distributed table; DETAIL: When there is a foreign key to a reference table or to a local table, Citus needs to perform all operations over a single connection per node to ensure consistency.; HINT: Try re-running the transaction with \"SET LOCAL citus.multi_shard_modify_mode TO 'sequential';\" (SQLSTATE XX000)");
    assert!(
        r.hint()
            .contains("or citus_multi_shard_modify_mode = \"parallel\" from the environment"),
        "{}",
        r.hint()
    );
    assert!(r.stdout.contains("applied V7 "), "{}", r.stdout);
    assert_eq!(l.scalar("SELECT max(version)::text FROM chatmigrate_history"), "7");
    // The default (sequential) applies it.
    citus_config(&l.dir, "");
    let r = l.run(&["up"]);
    r.assert_ok();
    assert!(
        r.stdout.starts_with("applied V8 citus_validate_theme_foreign_keys ("),
        "{}",
        r.stdout
    );
}

#[test]
fn live_distributing_tables_that_have_rows() {
    let Some(l) = live("live_distributing_tables_that_have_rows") else {
        return;
    };
    l.run(&["up", "--target", "5"]).assert_ok();
    l.query("INSERT INTO st_chat_history_table (userid, themename, chatid) SELECT 'u' || i, 'theme' || (i % 3), i FROM generate_series(1, 500) i");
    l.query(
        "INSERT INTO st_chat_history_vector_table (userid, theme, chatid, chat_summary, chat_vector)
         SELECT 'u' || i, 'v', i, 's', array_fill(i::real / 10, ARRAY[1024])::vector FROM generate_series(1, 10) i",
    );
    let can = l.scalar(
        "SELECT (current_setting('wal_level') = 'logical'
                 AND coalesce('citus' = ANY (string_to_array(replace(current_setting('output_plugin_libraries', true), ' ', ''), ',')), true)
                 AND EXISTS (SELECT 1 FROM pg_proc WHERE proname = 'create_distributed_table_concurrently'))::text",
    );
    let dry = l.run(&["up", "--dry-run"]);
    dry.assert_ok();
    let r = l.run(&["up"]);
    r.assert_ok();
    for t in ["st_chat_history_table", "st_chat_history_vector_table"] {
        let note = if can == "true" {
            format!(
                "V6: {t} has rows: sent as create_distributed_table_concurrently, so writes to it go on while its rows move to the shards"
            )
        } else {
            format!("V6: {t} has rows: create_distributed_table copies them and blocks INSERT, UPDATE and DELETE on {t} until it commits (reads go on); not sent as create_distributed_table_concurrently, because ")
        };
        assert!(r.stdout.contains(&note), "{note}\nnot in:\n{}", r.stdout);
        let in_dry = note.replacen("V6: ", "-- note: ", 1);
        assert!(dry.stdout.contains(&in_dry), "{in_dry}\nnot in:\n{}", dry.stdout);
    }
    if can == "true" {
        assert!(dry
            .stdout
            .contains("SELECT create_distributed_table_concurrently('st_chat_history_table', 'userid')"));
    } else {
        // The blocking call's own notices are shown (Citus copies the rows).
        assert!(
            r.stdout.contains("V6: server NOTICE: Copying data from local table..."),
            "{}",
            r.stdout
        );
    }
    assert_eq!(l.scalar("SELECT count(*) FROM st_chat_history_table"), "500");
    assert_eq!(
        l.scalar("SELECT string_agg(citus_table_type, ',' ORDER BY table_name::text) FROM citus_tables WHERE table_name::text LIKE 'st_chat_history%'"),
        "distributed,distributed"
    );
    // V8 added the themes of the existing rows before validating.
    assert_eq!(l.scalar("SELECT count(*) FROM st_chat_theme_table"), "4");
}

#[test]
fn live_create_database_is_refused() {
    let Some(l) = live("live_create_database_is_refused") else { return };
    let name = Db::fresh_name();
    let url = {
        let (head, query) = match l.url.split_once('?') {
            Some((h, q)) => (h.to_string(), format!("?{q}")),
            None => (l.url.clone(), String::new()),
        };
        format!("{}/{name}{query}", head.rsplit_once('/').unwrap().0)
    };
    // NULL on Citus 12.1, which has no such setting.
    let setting = l.scalar("SELECT coalesce(current_setting('citus.enable_create_database_propagation', true), 'none')");
    let r = l.run_on(&url, &["up", "--create-database"]);
    let target = l.target(&url);
    let server = target.rsplit_once('/').unwrap().0;
    let why = match setting.as_str() {
        "on" => "with citus.enable_create_database_propagation on it would be created on every node, but without the citus extension and without nodes (pg_dist_node is per database)",
        "none" => "this Citus release does not propagate CREATE DATABASE (it has no citus.enable_create_database_propagation), so it would exist on the coordinator only, without the citus extension and without nodes",
        _ => "with citus.enable_create_database_propagation off (the default) it would exist on the coordinator only, without the citus extension and without nodes",
    };
    r.assert_error(&format!("will not create database `{name}` on {server}: {why}"));
    assert_eq!(l.scalar(&format!("SELECT count(*) FROM pg_database WHERE datname = '{name}'")), "0");
}
