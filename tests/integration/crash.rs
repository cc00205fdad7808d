//! kill -9 at random points, 30 times on one database, then a run to the
//! end; after every kill the catalog must agree with the history.

use std::time::Duration;

use crate::safety::generated;
use crate::support::*;

/// Small deterministic generator (xorshift), so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn index_state(db: &Db, name: &str) -> Option<bool> {
    db.query(&format!(
        "SELECT i.indisvalid::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = '{name}'"
    ))
    .first()
    .map(|r| r[0].as_deref() == Some("true"))
}

/// Statements of a generated no-transaction file: table, sleep, index a,
/// sleep, index b; of a transactional one: table, sleep, index, insert.
const NT_TABLE: i32 = 1;
const NT_INDEX_A: i32 = 3;
const NT_INDEX_B: i32 = 5;
const TX_STATEMENTS: i32 = 4;

/// Checks every invariant between the history rows and the catalog.
fn check(db: &Db, trial: usize) {
    let rows: std::collections::HashMap<i64, (String, i32)> = db.history().into_iter().map(|(v, s, d)| (v, (s, d))).collect();
    for i in 0..100 {
        let v = 100 + i as i64;
        let row = rows.get(&v);
        if i % 3 == 0 {
            let t = format!("n{v}");
            let done = match row {
                Some((s, _)) if s == "applied" => NT_INDEX_B,
                Some((_, d)) => *d,
                None => -1,
            };
            let has_table = db.table_exists(&t);
            let a = index_state(db, &format!("{t}_a"));
            let b = index_state(db, &format!("{t}_b"));
            // Statements up to `done` are fully present; statement done+1 may
            // be in flight (present, possibly invalid); later ones absent.
            if done >= NT_TABLE {
                assert!(has_table, "trial {trial}: V{v} done={done} but no table");
            }
            if done >= NT_INDEX_A {
                assert_eq!(a, Some(true), "trial {trial}: V{v} done={done} but index a {a:?}");
            }
            if done >= NT_INDEX_B {
                assert_eq!(b, Some(true), "trial {trial}: V{v} applied but index b {b:?}");
            }
            if done < 0 {
                assert!(!has_table, "trial {trial}: V{v} has no row but its table exists");
            }
            // The statement after `done` may have been in flight; the ones
            // after it never started.
            if done + 1 < NT_INDEX_A {
                assert!(a.is_none(), "trial {trial}: V{v} done={done} but index a exists");
            }
            if done + 1 < NT_INDEX_B {
                assert!(b.is_none(), "trial {trial}: V{v} done={done} but index b exists");
            }
        } else {
            let t = format!("c{v}");
            match row {
                Some((s, d)) => {
                    assert_eq!((s.as_str(), *d), ("applied", TX_STATEMENTS), "trial {trial}: V{v}");
                    assert_eq!(db.scalar(&format!("SELECT count(*) FROM {t}")), "200", "trial {trial}: V{v} rows");
                    assert_eq!(index_state(db, &format!("{t}_id")), Some(true));
                }
                None => assert!(!db.table_exists(&t), "trial {trial}: V{v} partly present without a history row"),
            }
        }
    }
}

fn schema_dump(db: &Db) -> String {
    let bin = std::env::var("CHATMIGRATE_PG_BIN").expect("CHATMIGRATE_PG_BIN (set by scripts/test.sh)");
    let out = std::process::Command::new(format!("{bin}/pg_dump"))
        .args(["--schema-only", "--no-owner", "--exclude-table=chatmigrate_history*", "-d", &db.url])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with("--") && !l.starts_with("\\restrict") && !l.starts_with("\\unrestrict"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn kill_minus_9_at_random_points_never_breaks_the_history() {
    let dir = Dir::new();
    generated(&dir, 100, Some("0.03"));
    let m = dir.path().to_str().unwrap();
    let db = Db::new();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let trials = 30;
    let mut kills = Vec::new();
    for trial in 0..trials {
        let child = spawn_in(dir.path(), &["--database-url", &db.url, "--migrations", m, "up"]);
        let delay = 40 + rng.next() % 200;
        std::thread::sleep(Duration::from_millis(delay));
        signal(&child, "KILL");
        let r = finish(child);
        // It either was killed, or finished before the kill.
        assert!(r.code == -1 || r.code == 0, "trial {trial}: {r:#?}");
        // The server ends the killed session after its last statement; wait
        // for that before looking at the catalog.
        wait_until(30, "the killed session to end", || {
            db.scalar("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'chatmigrate' AND pid <> pg_backend_pid()") == "0"
        });
        check(&db, trial);
        let h = db.history();
        let applied = h.iter().filter(|r| r.1 == "applied").count();
        let partial = h.iter().filter(|r| r.1 != "applied").count();
        kills.push((delay, applied, partial));
    }
    // The kills must land mid-run, not after a finished run.
    let mid_run = kills.iter().filter(|k| k.1 < 104).count();
    assert!(mid_run >= 20, "only {mid_run} of {trials} kills landed before the end: {kills:?}");
    assert!(
        kills.iter().any(|k| k.2 > 0),
        "no kill left a partial no-transaction migration: {kills:?}"
    );
    let r = cm(&db, &Dir::new(), &["--migrations", m, "up"]);
    r.assert_ok();
    check(&db, trials);
    assert_eq!(db.history().len(), 104);
    // The final schema equals a clean run's.
    let clean = Db::new();
    run_in(dir.path(), &["--database-url", &clean.url, "--migrations", m, "up"], &[]).assert_ok();
    assert_eq!(schema_dump(&db), schema_dump(&clean));
    eprintln!("crash harness: {trials} kills, {mid_run} mid-run; (delay ms, applied rows, partial rows) after each: {kills:?}");
}
