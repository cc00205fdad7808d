//! Progress of long index builds (issue 14, point 2) against the real
//! PostgreSQL 18 + pgvector: an HNSW build made slow for real (thousands
//! of rows, no parallel workers) and a CONCURRENTLY build blocked by a
//! transaction held open from a test session show their phase, the session
//! waited for, and blocks done of total advancing: as plain lines when
//! stdout is not a terminal, as JSON objects on stderr with `--format
//! json`, not at all with `-q`, and to the library's callback.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::db::Holder;
use crate::support::*;

/// A table of `rows` random normalised `vector(128)` values, analysed, in a
/// database whose index builds get no parallel workers (the build is one
/// process: slow enough to watch, the same on every run).
fn vectors(rows: u32, dir: &Dir) -> Db {
    let db = Db::new();
    dir.write(
        "V1__vectors.sql",
        "CREATE EXTENSION IF NOT EXISTS vector;\nCREATE TABLE vectors (id bigserial PRIMARY KEY, embedding vector(128));\n",
    );
    cm(&db, dir, &["up"]).assert_ok();
    db.exec(&format!(
        "INSERT INTO vectors (embedding)
         SELECT l2_normalize((SELECT array_agg(random_normal()::real) FROM generate_series(1, 128) WHERE g > 0)::vector)
         FROM generate_series(1, {rows}) g"
    ));
    db.exec("ANALYZE vectors");
    db.exec(&format!("ALTER DATABASE {} SET max_parallel_maintenance_workers = 0", db.name));
    db
}

/// The progress lines of a text run's stdout.
/// Writes `file`, a no-transaction `CREATE INDEX CONCURRENTLY` of `index` on
/// `t (id)`, and holds a transaction that wrote `value` into `t` open in a
/// session named `app` for `secs` seconds: the build waits for it.
fn blocked_index_build(dir: &Dir, url: &str, file: &str, index: &str, app: &str, value: i64, secs: u64) -> Holder {
    dir.write(
        file,
        format!("-- chatmigrate:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS {index} ON t (id);\n"),
    );
    Holder::hold(
        url,
        app,
        &format!("BEGIN; INSERT INTO t VALUES ({value})"),
        Some(Duration::from_secs(secs)),
    )
}

fn text_lines(out: &str) -> Vec<&str> {
    out.lines()
        .filter(|l| {
            l.split_once(' ')
                .is_some_and(|(v, rest)| v.starts_with('V') && !v.ends_with(':') && rest.starts_with("statement 1: "))
        })
        .collect()
}

/// The JSON progress objects of a run's stderr.
fn json_readings(err: &str) -> Vec<serde_json::Value> {
    err.lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .filter(|v| v["event"] == "index_progress")
        .collect()
}

/// An HNSW build of 6,000 rows (ef_construction 160) runs for several seconds: not on a
/// terminal, `up` prints its first reading (phase, blocks done of total,
/// elapsed) and no more than one line per 10 s, then that it ended; with
/// `--format json` each reading is one object on stderr and stdout keeps
/// its one document, the blocks done advance and the last object says it
/// ended; with `-q` nothing is shown.
#[test]
fn a_long_hnsw_build_shows_its_progress_as_text_json_and_not_with_quiet() {
    let dir = Dir::new();
    let db = vectors(6000, &dir);
    dir.write(
        "V2__hnsw.sql",
        "-- chatmigrate:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS vectors_hnsw ON vectors USING hnsw (embedding vector_l2_ops) WITH (ef_construction = 160);\n",
    );
    let r = cm(&db, &dir, &["--color", "never", "up"]);
    r.assert_ok();
    let lines = text_lines(&r.stdout);
    assert!(lines.len() >= 2, "{}", r.output());
    assert!(
        lines[0].starts_with("V2 statement 1: CREATE INDEX CONCURRENTLY ") && lines[0].contains(" on vectors: building index"),
        "{}",
        r.output()
    );
    assert!(lines[0].contains(" blocks (") && lines[0].contains(" s elapsed"), "{}", r.output());
    let last = lines.last().unwrap();
    assert!(last.contains(": ended after "), "{}", r.output());
    // At most one line per 10 s, plus the last.
    let secs: u64 = last
        .rsplit(": ended after ")
        .next()
        .unwrap()
        .trim_end_matches(" s")
        .parse()
        .unwrap();
    assert!(lines.len() as u64 <= secs / 10 + 2, "{}", r.output());
    assert_eq!(
        db.scalar("SELECT indisvalid FROM pg_index WHERE indexrelid = 'vectors_hnsw'::regclass"),
        "t"
    );

    // JSON: the same build again, as REINDEX CONCURRENTLY.
    dir.write(
        "V3__reindex.sql",
        "-- chatmigrate:no-transaction\nREINDEX INDEX CONCURRENTLY vectors_hnsw;\n",
    );
    let r = cm(&db, &dir, &["up", "--format", "json"]);
    r.assert_ok();
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}", r.stdout));
    assert_eq!(doc["applied"].as_array().map(Vec::len), Some(1), "{doc}");
    let readings = json_readings(&r.stderr);
    assert!(readings.len() >= 3, "{}", r.stderr);
    let building: Vec<&serde_json::Value> = readings
        .iter()
        .filter(|v| v["phase"].as_str().is_some_and(|p| p.starts_with("building index")) && v["unit"] == "blocks")
        .collect();
    assert!(building.len() >= 2, "{}", r.stderr);
    for v in &readings {
        assert_eq!((v["version"].as_i64(), v["statement"].as_u64()), (Some(3), Some(1)), "{v}");
        assert_eq!(v["command"], "REINDEX CONCURRENTLY", "{v}");
        assert!(v["pid"].as_i64().is_some_and(|p| p > 0), "{v}");
    }
    let (first, last) = (building[0], building[building.len() - 1]);
    assert!(first["total"].as_u64().unwrap() > 0, "{first}");
    assert!(
        last["done"].as_u64() > first["done"].as_u64() || last["phase"] != first["phase"],
        "{}",
        r.stderr
    );
    assert!(
        readings
            .windows(2)
            .all(|w| w[0]["elapsed_s"].as_u64() <= w[1]["elapsed_s"].as_u64()),
        "{}",
        r.stderr
    );
    assert_eq!(readings.last().unwrap()["ended"], true, "{}", r.stderr);

    // -q: the build runs and nothing of it shows.
    dir.write(
        "V4__reindex_again.sql",
        "-- chatmigrate:no-transaction\nREINDEX INDEX vectors_hnsw;\n",
    );
    let r = cm(&db, &dir, &["-q", "up"]);
    r.assert_ok();
    assert!(!r.output().contains("statement 1: REINDEX"), "{}", r.output());
    assert_eq!(db.versions(), [1, 2, 3, 4]);
}

/// A CONCURRENTLY build waits for a transaction that wrote to its table,
/// held open by another session for 4 s: the progress names that session
/// (pid, application_name, user, state, the age of its transaction), in
/// the text of `up` and to the library's callback.
#[test]
fn a_concurrent_build_names_the_session_it_waits_for() {
    let dir = Dir::new();
    let db = Db::new();
    dir.write("V1__t.sql", "CREATE TABLE t (id int);\n");
    cm(&db, &dir, &["up"]).assert_ok();
    let holder = blocked_index_build(&dir, &db.url, "V2__t_id.sql", "t_id", "holdout_cli", 1, 4);
    let r = cm(&db, &dir, &["--color", "never", "up"]);
    drop(holder);
    r.assert_ok();
    let line = text_lines(&r.stdout)
        .into_iter()
        .find(|l| l.contains("waiting for writers before build: waiting for pid "))
        .unwrap_or_else(|| panic!("{}", r.output()));
    assert!(
        line.contains("(application_name 'holdout_cli', user ") && line.contains(", idle in transaction, transaction open "),
        "{line}"
    );
    assert!(line.contains(": 0 of 1 sessions (0%)"), "{line}");

    // The library: the same readings, to the callback.
    let holder = blocked_index_build(&dir, &db.url, "V3__t_id2.sql", "t_id2", "holdout_lib", 2, 4);
    let seen: Arc<Mutex<Vec<chatmigrate::BuildProgress>>> = Arc::default();
    let into = seen.clone();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let report = rt
        .block_on(async {
            chatmigrate::Migrator::from_url(&db.url)?
                .migrations([dir.path()])
                .on_progress(move |p| into.lock().unwrap().push(p.clone()))
                .up()
                .await
        })
        .unwrap();
    drop(holder);
    assert_eq!(report.applied.len(), 1);
    let seen = seen.lock().unwrap();
    let waiting = seen
        .iter()
        .find_map(|p| p.waiting_for.as_ref())
        .unwrap_or_else(|| panic!("{seen:?}"));
    assert_eq!(waiting.application_name, "holdout_lib");
    assert_eq!(waiting.state, "idle in transaction");
    assert!(seen.iter().all(|p| p.version == 3 && p.statement == 1));
    assert!(seen.last().unwrap().ended, "{seen:?}");
}

/// Through the Data API (its test server, statement timeout 3 s): a
/// CONCURRENTLY build held up by a transaction for 7 s. Before the timeout
/// the progress comes from a second client's calls (the build's statement
/// text), after it from the polling of the statement that goes on with
/// continueAfterTimeout (its server process): separate ExecuteStatement
/// calls either way, while the build's own call is open or has timed out.
/// The build is sent once.
#[test]
fn the_data_api_reads_progress_with_calls_of_its_own() {
    use crate::support::cli::AWS_ENV;
    use crate::support::dataapi::{DataApiServer, Options};
    let server = DataApiServer::start(
        &db::server_url(),
        Options {
            statement_timeout: Duration::from_secs(3),
            ..Options::default()
        },
    );
    let (db, dir, conf) = (Db::new(), Dir::new(), Dir::new());
    let conf = conf.write(
        "chatmigrate.toml",
        format!("[environments.aurora]\n{}resume_timeout = \"20s\"\n", server.environment(&db.name)),
    );
    let up = |extra: &[&str]| {
        let mut a = vec![
            "--config",
            conf.to_str().unwrap(),
            "--env",
            "aurora",
            "--color",
            "never",
            "--migrations",
            dir.path().to_str().unwrap(),
        ];
        a.extend_from_slice(extra);
        run_in(dir.path(), &a, &AWS_ENV)
    };
    dir.write("V1__t.sql", "CREATE TABLE t (id int);\n");
    up(&["up"]).assert_ok();
    let holder = blocked_index_build(&dir, &db.url, "V2__t_id.sql", "t_id", "holdout_api", 1, 7);
    let r = up(&["up"]);
    drop(holder);
    r.assert_ok();
    let lines = text_lines(&r.stdout);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("waiting for writers before build: waiting for pid ") && l.contains("(application_name 'holdout_api', ")),
        "{}",
        r.stdout
    );
    assert!(lines.last().is_some_and(|l| l.contains(": ended after ")), "{}", r.stdout);
    assert!(r.stdout.contains("V2: statement 1 still running on the server"), "{}", r.stdout);
    let reads: Vec<String> = server
        .calls_of("Execute")
        .into_iter()
        .filter_map(|c| c.sql)
        .filter(|s| s.contains("pg_stat_progress_create_index"))
        .collect();
    assert!(reads.iter().any(|s| s.contains("(p.pid = 0")), "by the statement's text: {reads:?}");
    assert!(
        reads.iter().any(|s| !s.contains("(p.pid = 0")),
        "by the server process of the statement that outlived its call: {reads:?}"
    );
    let builds = server
        .calls_of("Execute")
        .iter()
        .filter(|c| c.sql.as_deref().is_some_and(|s| s.starts_with("CREATE INDEX CONCURRENTLY")))
        .count();
    assert_eq!(builds, 1, "sent once");
    assert_eq!(
        db.scalar("SELECT indisvalid FROM pg_index WHERE indexrelid = 't_id'::regclass"),
        "t"
    );
}

/// The process's own deadline (`Migrator::stop_before`, a Lambda's
/// remaining time) comes 3 s into a CONCURRENTLY build that waits 9 s for
/// a transaction held open: `up` returns at the deadline and leaves the
/// server building (the row says statement 0 of 1 done). The next `up`,
/// started at once, finds the build holding the lock, waits for it with its
/// progress (naming the session the build waits for), then finds the index
/// valid and records the migration without building it a second time.
#[test]
fn a_build_that_outlives_the_deadline_is_left_building_and_picked_up_by_the_next_up() {
    let dir = Dir::new();
    let db = Db::new();
    dir.write("V1__t.sql", "CREATE TABLE t (id int);\n");
    cm(&db, &dir, &["up"]).assert_ok();
    let holder = blocked_index_build(&dir, &db.url, "V2__t_id.sql", "t_id", "holdout_deadline", 1, 9);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let started = std::time::Instant::now();
    let e = rt
        .block_on(async {
            chatmigrate::Migrator::from_url(&db.url)?
                .migrations([dir.path()])
                .stop_before(std::time::Instant::now() + Duration::from_secs(3))
                .up()
                .await
        })
        .unwrap_err();
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(6),
        "returned {took:?} after the start, the deadline was at 3 s"
    );
    match &e {
        chatmigrate::Error::Interrupted { signal, stopped, .. } => {
            assert_eq!(signal, chatmigrate::DEADLINE);
            assert!(stopped.starts_with("V2 t_id stopped after statement 0 of 1"), "{stopped}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(db.history(), vec![(1, "applied".into(), 1), (2, "partial".into(), 0)]);
    // The server goes on building.
    assert_eq!(
        db.scalar("SELECT count(*) FROM pg_stat_progress_create_index WHERE datname = current_database()"),
        "1"
    );
    let r = cm(&db, &dir, &["--color", "never", "up"]);
    drop(holder);
    r.assert_ok();
    assert!(
        r.stdout.contains("V2: statement 1 is still building on the server (process ")
            && r.stdout.contains("), left by an earlier run at its deadline; it holds the migration lock: waiting for it to end (it is not built a second time)"),
        "{}",
        r.output()
    );
    let lines = text_lines(&r.stdout);
    assert!(
        lines
            .first()
            .is_some_and(|l| l.contains("waiting for pid ") && l.contains("(application_name 'holdout_deadline', ")),
        "{}",
        r.output()
    );
    assert!(lines.last().is_some_and(|l| l.contains(": ended after ")), "{}", r.output());
    assert!(
        r.stdout.contains(
            "V2: statement 1: index t_id was built by the earlier run, which stopped during this statement (left building at its deadline, or killed), and is valid: not built again"
        ),
        "{}",
        r.output()
    );
    assert_eq!(db.history(), vec![(1, "applied".into(), 1), (2, "applied".into(), 1)]);
    assert_eq!(
        db.scalar("SELECT indisvalid FROM pg_index WHERE indexrelid = 't_id'::regclass"),
        "t"
    );
}

/// On the live Citus coordinator (runs only with CHATMIGRATE_TEST_CITUS_URL):
/// a CONCURRENTLY build on a distributed table runs on the workers, one
/// build per shard, which the coordinator's pg_stat_progress_create_index
/// does not show. The progress comes from the workers
/// (run_command_on_workers): the shard builds per worker, their phase,
/// blocks summed, under the coordinator's names of the index and table.
#[test]
fn live_citus_shows_the_shard_builds_on_each_worker() {
    let Some(l) = crate::support::citus::live("live_citus_shows_the_shard_builds_on_each_worker") else {
        return;
    };
    for q in [
        "DROP TABLE IF EXISTS cmt_progress CASCADE",
        "CREATE OR REPLACE FUNCTION cmt_slow(i int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$ BEGIN PERFORM pg_sleep(0.2); RETURN i; END $$",
        "CREATE TABLE cmt_progress (id int, x int)",
        "SELECT create_distributed_table('cmt_progress', 'id')",
        "INSERT INTO cmt_progress SELECT g, g FROM generate_series(1, 640) g",
    ] {
        l.query(q);
    }
    l.dir.write(
        "m/V1__slow_index.sql",
        "-- chatmigrate:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS cmt_progress_slow ON cmt_progress (cmt_slow(x));\n",
    );
    let r = l.run(&["--color", "never", "--migrations", "m", "up"]);
    let cleanup = |l: &crate::support::citus::Live| {
        l.query("DROP TABLE IF EXISTS cmt_progress CASCADE");
        l.query("DROP FUNCTION IF EXISTS cmt_slow(int)");
    };
    let lines: Vec<String> = text_lines(&r.stdout).into_iter().map(str::to_string).collect();
    let workers = l.workers();
    cleanup(&l);
    r.assert_ok();
    let first = lines.first().unwrap_or_else(|| panic!("{}", r.output()));
    assert!(
        first.starts_with("V1 statement 1: CREATE INDEX CONCURRENTLY cmt_progress_slow on cmt_progress: "),
        "{}",
        r.output()
    );
    for w in &workers {
        assert!(
            first.contains(&format!("{w}: ")) && first.contains(" shard builds, "),
            "{w}: {}",
            r.output()
        );
    }
    assert!(lines.last().is_some_and(|l| l.contains(": ended after ")), "{}", r.output());
}

/// On a terminal (the binary under `script`, a pseudo-terminal): the
/// progress is one line on stderr that updates in place and is cleared
/// when the build ends (no plain progress lines); with `-q` nothing.
#[test]
fn on_a_terminal_the_progress_is_one_updating_line() {
    if std::process::Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipping: no `script` to run the binary on a pseudo-terminal");
        return;
    }
    let dir = Dir::new();
    let db = Db::new();
    dir.write("V1__t.sql", "CREATE TABLE t (id int);\n");
    cm(&db, &dir, &["up"]).assert_ok();
    let on_tty = |args: &str| {
        let line = format!(
            "{} --database-url '{}' --migrations '{}' {args}",
            env!("CARGO_BIN_EXE_chatmigrate"),
            db.url,
            dir.path().display()
        );
        let out = std::process::Command::new("script")
            .args(["-qec", &line, "/dev/null"])
            .env("TERM", "xterm")
            .env_remove("NO_COLOR")
            .current_dir(dir.path())
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    for (version, args, shown) in [(2, "up", true), (3, "-q up", false)] {
        let holder = blocked_index_build(
            &dir,
            &db.url,
            &format!("V{version}__t_id{version}.sql"),
            &format!("t_id{version}"),
            "holdout_tty",
            version,
            4,
        );
        let (code, out) = on_tty(args);
        drop(holder);
        assert_eq!(code, Some(0), "{out}");
        // The line is cut to the terminal's width (80 columns here).
        let drawn = out.contains(&format!(
            "V{version} statement 1: CREATE INDEX CONCURRENTLY t_id{version} on t: waiting for writers"
        ));
        assert_eq!(drawn, shown, "{out:?}");
        if shown {
            // Drawn in place (carriage return / erase line), then cleared:
            // no plain `ended after` line.
            assert!(out.contains('\r') && out.contains("\u{1b}["), "{out:?}");
            assert!(!out.contains("ended after"), "{out:?}");
            assert!(
                out.contains(&format!(" V{version} t_id{version} (no transaction, 1 statement, ")),
                "{out:?}"
            );
        }
    }
}
