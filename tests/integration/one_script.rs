//! One script: what `up --dry-run` prints is what `up` then sends, on every
//! backend of the suite. The dry run is read as JSON (`dry_run[].sql`: each
//! pending migration's requests, in order) and compared with what the
//! server received for the migrations, request by request:
//! - direct PostgreSQL and the live Citus coordinator: through a logging
//!   proxy (`support::wire_log`) that records every query string as the
//!   server receives it (a direct transaction is one query string, BEGIN to
//!   COMMIT; Citus gets one per statement);
//! - the Data API: the test server's request log (BeginTransaction and
//!   CommitTransaction are BEGIN and COMMIT, ExecuteStatement its SQL).
//!
//! What the server receives around the migrations is the tool's own
//! bookkeeping and is cut off: the probe, the history read, the lock and
//! the history tables before (up to the history read under the lock), the
//! lock's release after; the Data API lease's heartbeat anywhere. Values
//! known only at run time match any value of their kind: `<elapsed ms>` a
//! number, `<lease owner>` a string literal.
//!
//! Each test runs the files in two parts, so the dry run also covers a
//! migration in the middle of a run and a no-transaction file that resumes
//! (after a failed statement, fixed): the settings it made before are made
//! again (direct, Citus), the statement left running elsewhere is checked
//! for (the Data API).

use serde_json::Value;

use crate::support::citus;
use crate::support::cli::AWS_ENV;
use crate::support::dataapi::{DataApiServer, Options};
use crate::support::db::try_query_url;
use crate::support::wire_log::WireLog;
use crate::support::*;

/// The migrations of the first part; `{ns}` is the test's schema.
const PART_ONE: &[(&str, &str)] = &[
    (
        "V10__t.sql",
        "-- chatmigrate:lock-timeout 3s\n-- chatmigrate:statement-timeout 1min\nCREATE TABLE {ns}.t (id bigint PRIMARY KEY, v text);\nCREATE INDEX t_v ON {ns}.t (v);\n",
    ),
    (
        "V20__t_index.sql",
        "-- chatmigrate:no-transaction\n-- chatmigrate:lock-timeout 2s\nSET maintenance_work_mem = '64MB';\nCREATE INDEX CONCURRENTLY IF NOT EXISTS t_v_id ON {ns}.t (v, id);\nALTER TABLE {ns}.t ADD COLUMN IF NOT EXISTS w int;\n",
    ),
    (
        "V30__rows.sql",
        "INSERT INTO {ns}.t (id, v) SELECT g, 'v' || g FROM generate_series(1, 1000) g;\nALTER TABLE {ns}.t ADD COLUMN IF NOT EXISTS x int;\n",
    ),
];

/// The second part: a no-transaction file whose third statement fails
/// (`nope` is no column), then runs fixed.
const PART_TWO: (&str, &str) = (
    "V90__resume.sql",
    "-- chatmigrate:no-transaction\nSET work_mem = '8MB';\nCREATE INDEX CONCURRENTLY IF NOT EXISTS t_w ON {ns}.t (w);\nCREATE INDEX CONCURRENTLY IF NOT EXISTS t_x ON {ns}.t (nope);\n",
);

fn write(dir: &Dir, ns: &str, (name, body): (&str, &str)) {
    dir.write(name, body.replace("{ns}", ns));
}

/// The requests of a dry run (`up --dry-run --format json`), in order;
/// with `pipelined`, a transaction's requests are one query string.
fn dry_requests(r: &Run, pipelined: bool) -> Vec<String> {
    r.assert_ok();
    let v: Value = serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}", r.stdout));
    let mut out = Vec::new();
    let mut batch: Option<Vec<String>> = None;
    for step in v["dry_run"].as_array().unwrap() {
        for s in step["sql"].as_array().unwrap() {
            let s = s.as_str().unwrap().to_string();
            match &mut batch {
                Some(b) => {
                    let end = s == "COMMIT";
                    b.push(s);
                    if end {
                        out.push(batch.take().unwrap().join(";\n"));
                    }
                }
                None if pipelined && s == "BEGIN" => batch = Some(vec![s]),
                None => out.push(s),
            }
        }
    }
    assert!(batch.is_none(), "a transaction without COMMIT in {}", r.stdout);
    out
}

/// What the server received for the migrations: after the history read
/// under the lock, before the lock's release.
fn migration_part(received: &[String]) -> Vec<String> {
    let received: Vec<&String> = received.iter().filter(|s| !is_heartbeat(s)).collect();
    let end = received
        .iter()
        .rposition(|s| s.starts_with("WITH freed AS ("))
        .unwrap_or_else(|| panic!("no release of the lock in {received:#?}"));
    let start = received[..end]
        .iter()
        .rposition(|s| s.starts_with("SELECT h.version::text AS version"))
        .unwrap_or_else(|| panic!("no history read in {received:#?}"))
        + 1;
    received[start..end].iter().map(|s| s.to_string()).collect()
}

/// The Data API lease's heartbeat (on a timer of its own).
fn is_heartbeat(s: &str) -> bool {
    s.starts_with("UPDATE") && s.contains("SET expires_at = now() +")
}

/// `sent` is `dry` with its placeholders filled in: `<elapsed ms>` by a
/// number, `<lease owner>` by a string literal.
fn same(dry: &str, sent: &str) -> bool {
    let mut rest = sent;
    for (i, part) in dry.split('<').enumerate() {
        let literal = if i == 0 {
            part
        } else if let Some(after) = part.strip_prefix("elapsed ms>") {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return false;
            }
            rest = &rest[digits..];
            after
        } else if let Some(after) = part.strip_prefix("lease owner>") {
            let Some(quoted) = rest.strip_prefix('\'') else { return false };
            let Some(close) = quoted.find('\'') else { return false };
            rest = &quoted[close + 1..];
            after
        } else {
            // A `<` of the SQL itself.
            rest = match rest.strip_prefix('<') {
                Some(r) => r,
                None => return false,
            };
            part
        };
        let Some(after) = rest.strip_prefix(literal) else { return false };
        rest = after;
    }
    rest.is_empty()
}

fn assert_same(backend: &str, dry: &[String], sent: &[String]) {
    let show = |v: &[String]| {
        v.iter()
            .enumerate()
            .map(|(i, s)| format!("[{i}] {s}"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(
        dry.len(),
        sent.len(),
        "{backend}: the dry run has {} requests, the server received {}\n--- dry run:\n{}\n--- received:\n{}",
        dry.len(),
        sent.len(),
        show(dry),
        show(sent)
    );
    for (i, (d, s)) in dry.iter().zip(sent).enumerate() {
        assert!(same(d, s), "{backend}: request {i} differs\n--- dry run:\n{d}\n--- received:\n{s}");
    }
}

#[test]
fn the_placeholder_matcher() {
    assert!(same("a <elapsed ms>, b", "a 12, b"));
    assert!(!same("a <elapsed ms>, b", "a , b"));
    assert!(same("owner = <lease owner> AND x < 3", "owner = 'h:1:ff' AND x < 3"));
    assert!(!same("owner = <lease owner>", "owner = NULL"));
    assert!(!same("a", "ab") && !same("ab", "a"));
}

/// One backend's target for [`case`].
struct Target<'a> {
    backend: &'a str,
    /// A transaction is one query string (BEGIN to COMMIT).
    pipelined: bool,
    /// The schema the migrations work in.
    ns: &'a str,
    dir: &'a Dir,
    /// Runs the binary on the target.
    run: &'a dyn Fn(&[&str]) -> Run,
    /// What the server received since `clear`.
    received: &'a dyn Fn() -> Vec<String>,
    clear: &'a dyn Fn(),
}

/// Runs the two parts on `t`; `before`: a run that comes first.
fn case(t: &Target, before: &[&str]) {
    let (backend, run) = (t.backend, t.run);
    for f in PART_ONE {
        write(t.dir, t.ns, *f);
    }
    if !before.is_empty() {
        run(before).assert_ok();
    }
    // Part one: the dry run, then the run, and what the server received.
    let dry = dry_requests(&run(&["--format", "json", "up", "--dry-run"]), t.pipelined);
    (t.clear)();
    run(&["up"]).assert_ok();
    assert_same(backend, &dry, &migration_part(&(t.received)()));

    // Part two: a no-transaction file stops at a failed statement...
    write(t.dir, t.ns, PART_TWO);
    let r = run(&["up"]);
    assert_eq!(r.code, 2, "{r:#?}");
    assert!(r.stderr.contains("V90__resume.sql:4:"), "{}", r.stderr);
    // ... and, fixed, resumes there: its dry run is what the run sends.
    write(t.dir, t.ns, (PART_TWO.0, &PART_TWO.1.replace("(nope)", "(x)")));
    let dry = dry_requests(&run(&["--format", "json", "up", "--dry-run"]), t.pipelined);
    (t.clear)();
    run(&["up"]).assert_ok();
    let sent = migration_part(&(t.received)());
    assert_same(backend, &dry, &sent);
    assert!(
        !sent.iter().any(|s| s.contains("t_w")),
        "{backend}: done before, not sent again: {sent:#?}"
    );
}

/// `host:port` of a `postgres://` URL.
fn address(url: &str) -> String {
    let rest = url.split_once("://").unwrap().1;
    let host = rest.rsplit_once('@').map(|(_, h)| h).unwrap_or(rest);
    host.split(['/', '?']).next().unwrap().to_string()
}

#[test]
fn dry_run_equals_what_postgres_received() {
    let (db, dir, conf) = (Db::new(), Dir::new(), Dir::new());
    let log = WireLog::start(&address(&db.url));
    let url = log.url(&db.url);
    let config = conf.write("chatmigrate.toml", "[environments.t]\nhistory_schema = \"s\"\n");
    let config = config.to_str().unwrap().to_string();
    let migrations = dir.path().to_str().unwrap().to_string();
    let run = |args: &[&str]| {
        let mut full = vec![
            "--config",
            &config,
            "--env",
            "t",
            "--database-url",
            &url,
            "--migrations",
            &migrations,
        ];
        full.extend_from_slice(args);
        run_in(conf.path(), &full, &[])
    };
    let received = || log.requests().into_iter().map(|r| r.sql).collect();
    let t = Target {
        backend: "postgres",
        pipelined: true,
        ns: "s",
        dir: &dir,
        run: &run,
        received: &received,
        clear: &|| log.clear(),
    };
    case(&t, &[]);
    assert_eq!(db.scalar("SELECT count(*) FROM s.t"), "1000");
}

#[test]
fn dry_run_equals_what_the_data_api_received() {
    let (db, dir, conf) = (Db::new(), Dir::new(), Dir::new());
    let server = DataApiServer::start(&server_url(), Options::default());
    let config = conf.write(
        "chatmigrate.toml",
        format!("[environments.t]\n{}history_schema = \"s\"\n", server.environment(&db.name)),
    );
    let config = config.to_str().unwrap().to_string();
    let migrations = dir.path().to_str().unwrap().to_string();
    let run = |args: &[&str]| {
        let mut full = vec!["--config", &config, "--env", "t", "--migrations", &migrations];
        full.extend_from_slice(args);
        run_in(conf.path(), &full, &AWS_ENV)
    };
    let seen = std::cell::Cell::new(0);
    let received = || {
        server.calls()[seen.get()..]
            .iter()
            .filter_map(|c| match c.op.as_str() {
                "BeginTransaction" => Some("BEGIN".to_string()),
                "CommitTransaction" => Some("COMMIT".to_string()),
                "RollbackTransaction" => Some("ROLLBACK".to_string()),
                "Execute" => c.sql.clone(),
                _ => None,
            })
            .collect()
    };
    let clear = || seen.set(server.calls().len());
    let t = Target {
        backend: "rds-data",
        pipelined: false,
        ns: "s",
        dir: &dir,
        run: &run,
        received: &received,
        clear: &clear,
    };
    case(&t, &[]);
}

#[test]
fn dry_run_equals_what_citus_received() {
    let Some(url) = citus::url_or_skip("one_script::dry_run_equals_what_citus_received") else {
        return;
    };
    let _cluster = citus::exclusive();
    let ns = format!("cmt_script_{}", std::process::id());
    let _drop = DropSchema(url.clone(), ns.clone());
    let (dir, conf) = (Dir::new(), Dir::new());
    let log = WireLog::start(&address(&url));
    let proxied = log.url(&url);
    let config = conf.write(
        "chatmigrate.toml",
        format!("[environments.t]\nbackend = \"citus\"\nhistory_schema = \"{ns}\"\n"),
    );
    let config = config.to_str().unwrap().to_string();
    let migrations = dir.path().to_str().unwrap().to_string();
    let run = |args: &[&str]| {
        let mut full = vec![
            "--config",
            &config,
            "--env",
            "t",
            "--database-url",
            &proxied,
            "--migrations",
            &migrations,
        ];
        full.extend_from_slice(args);
        run_in(conf.path(), &full, &[])
    };
    let received = || log.requests().into_iter().map(|r| r.sql).collect();
    // Citus's own calls: a table distributed in a transaction (the backend
    // reads the catalog to choose the form it sends; the dry run shows the
    // reads), after a first run made the tables.
    dir.write(
        "V5__tables.sql",
        format!("CREATE TABLE {ns}.d (tenant text NOT NULL, id bigint NOT NULL, PRIMARY KEY (tenant, id));\n"),
    );
    dir.write(
        "V40__distribute.sql",
        format!("SELECT create_distributed_table('{ns}.d', 'tenant');\n"),
    );
    let t = Target {
        backend: "citus",
        pipelined: false,
        ns: &ns,
        dir: &dir,
        run: &run,
        received: &received,
        clear: &|| log.clear(),
    };
    case(&t, &["up", "--target", "5"]);
    assert_eq!(
        query_url(
            &url,
            &format!("SELECT count(*) FROM pg_dist_partition WHERE logicalrelid = '{ns}.d'::regclass")
        )[0][0]
            .as_deref(),
        Some("1")
    );
}

/// Drops the test's schema on the shared coordinator when the test ends.
struct DropSchema(String, String);

impl Drop for DropSchema {
    fn drop(&mut self) {
        let _ = try_query_url(&self.0, &format!("DROP SCHEMA IF EXISTS {} CASCADE", self.1));
    }
}
