//! One database, every transport: the history past the Data API's 500-row
//! page, and the differential test (the same workload applied through each
//! backend gives the same `status --format json` through every transport,
//! and a second `up` through each applies nothing).

use std::time::{Duration, Instant};

use crate::support::both::Both;
use crate::support::dataapi::Options;
use crate::support::*;

/// Issue 11 point 1: with more rows than one Data API page (500), the
/// history used to come back in text order ('1', '10', '100', ...) while
/// the next page's cursor was numeric: `status` showed a phantom pending
/// version and `up --allow-out-of-order` applied it a second time.
#[test]
fn history_past_one_page_reads_in_version_order_through_the_data_api() {
    let (both, db, dir) = (Both::start(Options::default()), Db::new(), Dir::new());
    db.exec("CREATE TABLE runs (v int)");
    for v in 1..=511 {
        dir.write(&format!("V{v}__m{v}.sql"), format!("INSERT INTO runs VALUES ({v});\n"));
    }
    both.config(&db.name, &db.url, &[]);
    both.run(&db.name, "direct", &dir, &["up", "--quiet"]).assert_ok();
    let r = both.run(&db.name, "aurora", &dir, &["status", "--exit-code"]);
    assert_eq!(r.code, 0, "every version is applied: {}", r.stdout);
    assert!(!r.stdout.contains("pending"), "{}", r.stdout);
    let r = both.run(&db.name, "aurora", &dir, &["up", "--allow-out-of-order"]);
    r.assert_ok();
    assert!(r.stdout.starts_with("nothing to apply"), "{}", r.stdout);
    assert_eq!(db.scalar("SELECT count(*) || '/' || count(DISTINCT v) FROM runs"), "511/511");
    // Timestamp versions after sequential ones (text order interleaves them).
    for k in 0..498 {
        let v = 20240101000000i64 + k;
        dir.write(&format!("V{v}__t{k}.sql"), format!("INSERT INTO runs VALUES ({});\n", 1000 + k));
    }
    both.run(&db.name, "aurora", &dir, &["up", "--quiet"]).assert_ok();
    let r = both.run(&db.name, "aurora", &dir, &["up"]);
    r.assert_ok();
    assert!(r.stdout.starts_with("nothing to apply"), "{}", r.stdout);
    assert_eq!(db.scalar("SELECT count(*) || '/' || count(DISTINCT v) FROM runs"), "1009/1009");
}

/// The differential workload: the shipped chat schema plus `n` generated
/// migrations, sequential (V100...) and timestamp versions (V2024...)
/// mixed, every 50th a no-transaction file with a CONCURRENTLY build. Each
/// transactional one inserts its version into `gen_log` (primary key: a
/// second run fails loudly), so the database itself shows what ran.
pub fn workload(dir: &Dir, n: usize) {
    for (name, body) in chatmigrate::__private::migration::embedded_files() {
        dir.write(name, body);
    }
    dir.write(
        "V10__gen_log.sql",
        "CREATE TABLE gen_log (v bigint PRIMARY KEY, at timestamptz DEFAULT now());\n",
    );
    for i in 0..n {
        let v = if i % 2 == 0 {
            100 + i as i64
        } else {
            20240101000000 + i as i64 * 100
        };
        if i % 50 == 25 {
            dir.write(
                &format!("V{v}__nt{i}.sql"),
                format!(
                    "-- chatmigrate:no-transaction\nCREATE TABLE IF NOT EXISTS nt{i} (id int, v int);\nCREATE INDEX CONCURRENTLY IF NOT EXISTS nt{i}_id ON nt{i} (id);\n"
                ),
            );
        } else if i % 7 == 0 {
            dir.write(
                &format!("V{v}__two{i}.sql"),
                format!("INSERT INTO gen_log (v) VALUES ({v});\nCOMMENT ON TABLE gen_log IS 'last: {v}';\n"),
            );
        } else {
            dir.write(&format!("V{v}__g{i}.sql"), format!("INSERT INTO gen_log (v) VALUES ({v});\n"));
        }
    }
}

/// `status --format json` without what differs from run to run or by
/// transport (the target, times, who installed it).
fn status_json(r: &Run) -> serde_json::Value {
    assert_eq!(r.code, 0, "{r:#?}");
    let mut v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}", r.stdout));
    let o = v.as_object_mut().unwrap();
    o.remove("target");
    o.remove("server");
    for m in o["migrations"].as_array_mut().unwrap() {
        let m = m.as_object_mut().unwrap();
        for k in ["applied_at", "execution_ms", "installed_by"] {
            assert!(m.remove(k).is_some(), "status JSON has no {k}: {m:?}");
        }
    }
    v
}

/// Issue 11 point 1: the same workload (chat schema + 2,000 generated
/// migrations) applied through each transport gives the same history, read
/// through every transport, and a second `up` through each applies nothing.
#[test]
fn the_same_workload_reads_the_same_through_every_transport() {
    const N: usize = 2000;
    let dir = Dir::new();
    workload(&dir, N);
    let total = 4 + 1 + N;
    let no_tx = (0..N).filter(|i| i % 50 == 25).count();

    // (database name, URL, Data API + configs reaching it, transports that apply)
    let mut targets: Vec<(String, String, Both, Vec<&str>)> = Vec::new();
    let (d1, d2) = (Db::new(), Db::new());
    for (db, env) in [(&d1, "direct"), (&d2, "aurora")] {
        let both = Both::start(Options::default());
        both.config(&db.name, &db.url, &["lock_wait = \"120s\""]);
        targets.push((db.name.clone(), db.url.clone(), both, vec![env]));
    }
    // A live Citus coordinator (one test at a time): applied as backend
    // citus, read as citus, directly and through the Data API.
    let live = crate::support::citus::live("the_same_workload_reads_the_same_through_every_transport");
    if let Some(l) = &live {
        l.query("DROP TABLE IF EXISTS gen_log CASCADE");
        for i in (0..N).filter(|i| i % 50 == 25) {
            l.query(&format!("DROP TABLE IF EXISTS nt{i} CASCADE"));
        }
        let name = l.url.rsplit('/').next().unwrap().split('?').next().unwrap().to_string();
        let both = Both::on(&l.url, Options::default());
        let conf = both.config(&name, &l.url, &["lock_wait = \"120s\""]);
        let text = std::fs::read_to_string(&conf).unwrap();
        std::fs::write(
            &conf,
            format!(
                "{text}\n[environments.citus]\nbackend = \"citus\"\nurl = \"{}\"\nlock_wait = \"120s\"\n",
                l.url
            ),
        )
        .unwrap();
        targets.push((name, l.url.clone(), both, vec!["citus"]));
    }

    let mut reference: Option<serde_json::Value> = None;
    for (name, url, both, applying) in &targets {
        let env = applying[0];
        let started = Instant::now();
        let r = both.run(name, env, &dir, &["up", "--format", "json"]);
        let took = started.elapsed();
        assert_eq!(r.code, 0, "{env}: {}", r.stderr);
        let out: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        assert_eq!(out["applied"].as_array().unwrap().len(), total, "{env}");
        eprintln!(
            "differential: {total} migrations ({no_tx} without a transaction) applied through {env} in {:.1} s",
            took.as_secs_f64()
        );
        // Each transactional generated migration ran exactly once.
        let rows = query_url(url, "SELECT count(*)::text, count(DISTINCT v)::text FROM gen_log");
        let want = (N - no_tx).to_string();
        assert_eq!(
            (rows[0][0].as_deref(), rows[0][1].as_deref()),
            (Some(&*want), Some(&*want)),
            "{env}"
        );

        // Read through every transport that reaches this database.
        let mut readers = vec!["direct", "aurora"];
        if env == "citus" {
            readers.push("citus");
        }
        for reader in &readers {
            let started = Instant::now();
            let st = status_json(&both.run(name, reader, &dir, &["status", "--format", "json"]));
            eprintln!(
                "differential: status of the database applied through {env}, read through {reader}: {:.1} s",
                started.elapsed().as_secs_f64()
            );
            let migrations = st["migrations"].as_array().unwrap();
            assert_eq!(migrations.len(), total, "{env} read through {reader}");
            assert!(
                migrations.iter().all(|m| m["state"] == "applied"),
                "{env} read through {reader}: {:?}",
                migrations.iter().find(|m| m["state"] != "applied")
            );
            match &reference {
                None => reference = Some(st),
                Some(want) => assert!(st == *want, "{env} read through {reader} differs: {}", first_difference(want, &st)),
            }
        }
        // A second `up` through each transport applies nothing.
        for reader in &readers {
            let started = Instant::now();
            let r = both.run(name, reader, &dir, &["up"]);
            r.assert_ok();
            assert!(
                r.stdout.starts_with("nothing to apply"),
                "{env}, again through {reader}: {}",
                r.stdout
            );
            eprintln!("differential: no-op up through {reader}: {:.1} s", started.elapsed().as_secs_f64());
        }
        let rows = query_url(url, "SELECT count(*)::text FROM gen_log");
        assert_eq!(rows[0][0].as_deref(), Some(&*want), "{env}: nothing ran twice");
        assert!(started.elapsed() < Duration::from_secs(600));
    }
    if let Some(l) = &live {
        l.query("DROP TABLE IF EXISTS gen_log CASCADE");
        for i in (0..N).filter(|i| i % 50 == 25) {
            l.query(&format!("DROP TABLE IF EXISTS nt{i} CASCADE"));
        }
    }
}

/// The first migration entry where two status outputs differ.
fn first_difference(a: &serde_json::Value, b: &serde_json::Value) -> String {
    let (ma, mb) = (a["migrations"].as_array().unwrap(), b["migrations"].as_array().unwrap());
    for (x, y) in ma.iter().zip(mb) {
        if x != y {
            return format!("{x} vs {y}");
        }
    }
    format!("summary {} vs {}", a["summary"], b["summary"])
}
