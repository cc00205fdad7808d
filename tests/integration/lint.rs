//! `chatmigrate lint` and the lint gate of `up`, through the real binary:
//! text and JSON output, exit codes, PATHs with the set as context,
//! `--pending` against a real database, ignores, per-environment config,
//! backend-gated rules, and `up` refusing with the same report before
//! anything is applied.

use crate::support::*;

const V1: &str = "CREATE TABLE msg (id bigserial PRIMARY KEY, userid text NOT NULL, sent_at timestamp);\n";
const V2: &str = "-- Index for the history page.\nCREATE INDEX idx_msg_userid ON msg (userid);\n";

fn report_v2(dir: &Dir) -> String {
    format!(
        "{}:2:1: error[require-concurrent-index-creation]: CREATE INDEX without CONCURRENTLY locks table msg against writes (SHARE lock) until the build ends; it was not created in this migration, so it may hold rows
   | CREATE INDEX idx_msg_userid ON msg (userid)
   = help: build it CONCURRENTLY (writes go on), in a migration of its own that starts with `-- chatmigrate:no-transaction`:
             CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_msg_userid ON msg USING btree (userid);

",
        dir.shown("V2__msg_index.sql")
    )
}

/// `report_v2` as `up`, `lint --pending` and `verify` print it: with the
/// size of `msg` as the database has it.
fn report_v2_live(dir: &Dir, note: &str) -> String {
    report_v2(dir).replace("it was not created in this migration, so it may hold rows", note)
}

/// Applies V1 and fills `msg` past the gate's threshold; returns what the
/// gate says about it.
fn large_msg(db: &Db, dir: &Dir) -> String {
    dir.write("V1__msg.sql", V1);
    cm(db, dir, &["up"]).assert_ok();
    crate::gate::fill(
        db,
        "msg",
        20_000,
        "INSERT INTO msg (userid, sent_at) SELECT 'u' || i, now() FROM generate_series(1, {rows}) i",
    );
    crate::gate::large(db, "msg", 20_000, "10,000 rows or 10 MB")
}

fn warning_v1(dir: &Dir) -> String {
    format!(
        "{}:1:75: warning[prefer-timestamptz]: msg.sent_at is timestamp without time zone: its values carry no offset, so they depend on the TimeZone of each writer
   | CREATE TABLE msg (id bigserial PRIMARY KEY, userid text NOT NULL, sen...
   = help: use timestamptz (stored as UTC, shown in each reader's zone): sent_at timestamptz

",
        dir.shown("V1__msg.sql")
    )
}

/// Runs `lint` on `dir` without any database setting (lint needs none).
fn lint(dir: &Dir, args: &[&str]) -> Run {
    let mut full = vec!["--color", "never", "--migrations", dir.path().to_str().unwrap(), "lint"];
    full.extend_from_slice(args);
    run_in(dir.path(), &full, &[])
}

#[test]
fn text_output_and_exit_codes() {
    let dir = Dir::new();
    dir.write("V1__msg.sql", V1);
    // Warnings only: exit 0.
    let r = lint(&dir, &[]);
    r.assert_ok();
    assert_eq!(r.stdout, format!("{}1 warning in 1 file (23 rules)\n", warning_v1(&dir)));
    assert_eq!(r.stderr, "");
    // An error-level finding: exit 1, findings in file order.
    dir.write("V2__msg_index.sql", V2);
    let r = lint(&dir, &[]);
    assert_eq!(r.code, 1, "{r:#?}");
    assert_eq!(
        r.stdout,
        format!("{}{}1 error, 1 warning in 2 files (23 rules)\n", warning_v1(&dir), report_v2(&dir))
    );
    // Clean: exit 0.
    let clean = Dir::new();
    clean.write(
        "V1__a.sql",
        "CREATE TABLE a (id bigint PRIMARY KEY);\nCREATE INDEX a_id ON a (id);\n",
    );
    let r = lint(&clean, &[]);
    r.assert_ok();
    assert_eq!(r.stdout, "no problems in 1 file (23 rules)\n");
    // Could not run: exit 2 with the file's line and column.
    clean.write("V2__bad.sql", "CREATE TABLE b (id int,, x int);\n");
    lint(&clean, &[]).assert_error(&format!("{}:1:24: syntax error at or near \",\"", clean.shown("V2__bad.sql")));
}

#[test]
fn json_output_is_stable() {
    let dir = Dir::new();
    dir.write("V1__msg.sql", V1);
    dir.write("V2__msg_index.sql", V2);
    let r = lint(&dir, &["--format", "json"]);
    assert_eq!(r.code, 1);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let rules = v["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 23);
    assert_eq!(rules[0], "transaction-incompatible");
    let mut pinned = v.clone();
    pinned["rules"] = serde_json::json!("...");
    assert_eq!(
        pinned,
        serde_json::json!({
            "ok": true,
            "format": 1,
            "files": 2,
            "rules": "...",
            "summary": {"errors": 1, "warnings": 1},
            "findings": [
                {
                    "rule": "prefer-timestamptz",
                    "level": "warning",
                    "path": dir.shown("V1__msg.sql"),
                    "line": 1,
                    "column": 75,
                    "excerpt": "CREATE TABLE msg (id bigserial PRIMARY KEY, userid text NOT NULL, sen...",
                    "message": "msg.sent_at is timestamp without time zone: its values carry no offset, so they depend on the TimeZone of each writer",
                    "help": "use timestamptz (stored as UTC, shown in each reader's zone): sent_at timestamptz"
                },
                {
                    "rule": "require-concurrent-index-creation",
                    "level": "error",
                    "path": dir.shown("V2__msg_index.sql"),
                    "line": 2,
                    "column": 1,
                    "excerpt": "CREATE INDEX idx_msg_userid ON msg (userid)",
                    "message": "CREATE INDEX without CONCURRENTLY locks table msg against writes (SHARE lock) until the build ends; it was not created in this migration, so it may hold rows",
                    "help": "build it CONCURRENTLY (writes go on), in a migration of its own that starts with `-- chatmigrate:no-transaction`:\n  CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_msg_userid ON msg USING btree (userid);"
                }
            ]
        })
    );
    // A failure to run is the usual error object.
    dir.write("V3__bad.sql", "SELEC 1;\n");
    let r = lint(&dir, &["--format", "json"]);
    assert_eq!(r.code, 2);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["error"]["kind"], "migration-file");
}

#[test]
fn paths_are_linted_with_the_set_as_context() {
    let dir = Dir::new();
    dir.write("V1__msg.sql", V1);
    dir.write("V2__msg_index.sql", V2);
    // Only V2 is reported on; V1 (from the environment's set) says msg exists.
    let v2 = dir.path().join("V2__msg_index.sql");
    let r = lint(&dir, &[v2.to_str().unwrap()]);
    assert_eq!(r.code, 1);
    assert_eq!(r.stdout, format!("{}1 error in 1 file (23 rules)\n", report_v2(&dir)));
    // A file outside the set: its own CREATE TABLE makes the index harmless.
    let other = Dir::new();
    let f = other.write("V9__t.sql", "CREATE TABLE t (id bigint);\nCREATE INDEX t_id ON t (id);\n");
    let r = lint(&dir, &[f.to_str().unwrap()]);
    r.assert_ok();
    assert_eq!(r.stdout, "no problems in 1 file (23 rules)\n");
    // A directory.
    let r = lint(&dir, &[other.path().to_str().unwrap()]);
    r.assert_ok();
    // Missing file: exit 2.
    let r = lint(&dir, &["nope/V1__x.sql"]);
    assert_eq!(r.code, 2);
    assert!(r.error_line().starts_with("error: nope/V1__x.sql: cannot read:"), "{}", r.stderr);
}

#[test]
fn pending_lints_only_what_the_database_has_not_applied() {
    let (db, dir) = (Db::new(), Dir::new());
    let note = large_msg(&db, &dir);
    dir.write("V2__msg_index.sql", V2);
    // V1 is applied: its warning is not reported, V2 is, with msg's size.
    let r = cm(&db, &dir, &["--color", "never", "lint", "--pending"]);
    assert_eq!(r.code, 1, "{r:#?}");
    assert_eq!(r.stdout, format!("{}1 error in 1 file (23 rules)\n", report_v2_live(&dir, &note)));
    // Nothing pending.
    let ok = Dir::new();
    ok.write("V1__msg.sql", V1);
    let r = cm(&db, &ok, &["lint", "--pending"]);
    r.assert_ok();
    assert_eq!(r.stdout, "no problems in 0 files (23 rules)\n");
    // A database that does not exist yet: everything is pending, and msg
    // is made by V1 in the same run: new, so V2's index is no hazard.
    let missing = Db::adopt(&Db::fresh_name());
    let r = cm(&missing, &dir, &["--color", "never", "lint", "--pending"]);
    r.assert_ok();
    assert!(r.stdout.ends_with("1 warning in 2 files (23 rules)\n"), "{}", r.stdout);
    std::mem::forget(missing);
    // PATHs and --pending do not mix.
    let r = cm(&db, &dir, &["lint", "--pending", "x.sql"]);
    assert_eq!(r.code, 2);
}

#[test]
fn up_refuses_with_the_same_report_and_applies_nothing() {
    let (db, dir) = (Db::new(), Dir::new());
    let note = large_msg(&db, &dir);
    dir.write("V2__msg_index.sql", V2);
    let r = cm(&db, &dir, &["--color", "never", "up"]);
    r.assert_error(&format!(
        "{}:2:1: [require-concurrent-index-creation] CREATE INDEX without CONCURRENTLY locks table msg against writes (SHARE lock) until the build ends; {note} (`CREATE INDEX idx_msg_userid ON msg (userid)`)",
        dir.shown("V2__msg_index.sql")
    ));
    assert_eq!(
        r.hint(),
        "hint: build it CONCURRENTLY (writes go on), in a migration of its own that starts with `-- chatmigrate:no-transaction` (as shown below); or accept it with `-- chatmigrate:ignore require-concurrent-index-creation -- <reason>` above the statement"
    );
    // After the two lines: the report `lint` prints for the error-level rules.
    let report = r.stderr.split_once("\n\n").map(|(_, rest)| rest).unwrap_or("");
    assert_eq!(report, format!("{}1 error in 1 file (14 rules)\n", report_v2_live(&dir, &note)));
    assert_eq!(r.stdout, "");
    assert_eq!(db.versions(), vec![1], "nothing applied");
    assert_eq!(db.scalar("SELECT count(*) FROM pg_indexes WHERE indexname = 'idx_msg_userid'"), "0");
    // JSON: the error object carries the lint document.
    let r = cm(&db, &dir, &["--format", "json", "up"]);
    assert_eq!(r.code, 2);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["error"]["kind"], "lint");
    assert_eq!(v["lint"]["summary"]["errors"], 1);
    assert_eq!(v["lint"]["findings"][0]["rule"], "require-concurrent-index-creation");
    // With a reason above the statement, `up` applies both; lint still shows the warning.
    dir.write(
        "V2__msg_index.sql",
        "-- Index for the history page.\n-- chatmigrate:ignore require-concurrent-index-creation -- msg is empty until the release after this one\nCREATE INDEX idx_msg_userid ON msg (userid);\n",
    );
    cm(&db, &dir, &["up"]).assert_ok();
    assert_eq!(db.versions(), vec![1, 2]);
}

#[test]
fn the_gate_reads_applied_migrations_as_context() {
    let (db, dir) = (Db::new(), Dir::new());
    dir.write("V1__msg.sql", V1);
    cm(&db, &dir, &["up"]).assert_ok();
    // Nothing pending: nothing to lint, nothing to say.
    let r = cm(&db, &dir, &["up"]);
    r.assert_ok();
    assert!(r.stdout.starts_with("nothing to apply"), "{}", r.stdout);
    // V1 ran in an earlier `up`: msg exists. Empty, it is no hazard ...
    dir.write("V2__msg_index.sql", V2);
    cm(&db, &dir, &["up", "--dry-run"]).assert_ok();
    // ... with rows past the threshold it is.
    crate::gate::fill(
        &db,
        "msg",
        20_000,
        "INSERT INTO msg (userid) SELECT 'u' || i FROM generate_series(1, {rows}) i",
    );
    let r = cm(&db, &dir, &["up"]);
    assert_eq!(r.code, 2);
    assert!(r.error_line().contains("[require-concurrent-index-creation]"), "{}", r.stderr);
    assert_eq!(db.versions(), vec![1]);
    // Written the safe way, it applies.
    dir.write(
        "V2__msg_index.sql",
        "-- chatmigrate:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS idx_msg_userid ON msg (userid);\n",
    );
    cm(&db, &dir, &["up"]).assert_ok();
    assert_eq!(db.versions(), vec![1, 2]);
}

#[test]
fn ignores_unused_ignores_and_environment_lists() {
    let dir = Dir::new();
    let m = dir.path().join("m");
    std::fs::create_dir_all(&m).unwrap();
    dir.write("m/V1__msg.sql", V1);
    dir.write(
        "m/V2__msg_index.sql",
        "-- chatmigrate:ignore prefer-timestamptz -- nothing to ignore here\n-- chatmigrate:ignore citus-distribution-column-change -- for the Citus environment\nCREATE INDEX idx_msg_userid ON msg (userid);\n",
    );
    dir.write(
        "chatmigrate.toml",
        "default_env = \"dev\"\n[environments.dev]\nmigrations = [\"m\"]\nlint_exclude = [\"prefer-timestamptz\", \"require-concurrent-index-creation\"]\n[environments.citus]\nbackend = \"citus\"\nmigrations = [\"m\"]\nlint_include = []\n[environments.bad]\nlint_exclude = [\"transaction-incompatible\"]\n[environments.typo]\nlint_include = [\"no-such-rule\"]\n",
    );
    // dev: both rules excluded; the ignore of an excluded rule is not unused;
    // the Citus rule's ignore is not reported on plain PostgreSQL.
    let r = run_in(dir.path(), &["--color", "never", "lint"], &[]);
    r.assert_ok();
    assert_eq!(r.stdout, "no problems in 2 files (21 rules)\n");
    // citus: the Citus rules run, the index rule fires, the ignores of
    // prefer-timestamptz and of the Citus rule suppress nothing.
    let r = run_in(dir.path(), &["--color", "never", "--env", "citus", "lint"], &[]);
    assert_eq!(r.code, 1);
    // Paths from the config are relative to its directory, as written.
    let shown = "m/V2__msg_index.sql";
    assert!(r.stdout.contains(&format!("{shown}:1:1: warning[unused-ignore]: ignore of prefer-timestamptz suppresses nothing: prefer-timestamptz reports nothing in this file")), "{}", r.stdout);
    assert!(
        r.stdout.contains(&format!(
            "{shown}:2:1: warning[unused-ignore]: ignore of citus-distribution-column-change suppresses nothing"
        )),
        "{}",
        r.stdout
    );
    assert!(r.stdout.ends_with("1 error, 3 warnings in 2 files (28 rules)\n"), "{}", r.stdout);
    // Bad lists are config errors.
    run_in(dir.path(), &["--env", "bad", "lint"], &[]).assert_error(
        "invalid setting lint_exclude: lint_exclude: `transaction-incompatible` cannot be excluded: the server would refuse the statement anyway",
    );
    run_in(dir.path(), &["--env", "typo", "lint"], &[])
        .assert_error("invalid setting lint_include: lint_include: no rule has the id `no-such-rule` (the rules: docs/lint.md)");
}

#[test]
fn citus_rules_run_for_a_citus_environment() {
    let dir = Dir::new();
    dir.write(
        "m/V1__msg.sql",
        "CREATE TABLE msg (id bigserial PRIMARY KEY, userid text NOT NULL);\n",
    );
    dir.write("m/V2__distribute.sql", "SELECT create_distributed_table('msg', 'userid');\n");
    dir.write(
        "chatmigrate.toml",
        "[environments.pg]\nmigrations = [\"m\"]\n[environments.citus]\nbackend = \"citus\"\nmigrations = [\"m\"]\n",
    );
    run_in(dir.path(), &["--env", "pg", "lint"], &[]).assert_ok();
    let r = run_in(dir.path(), &["--color", "never", "--env", "citus", "lint"], &[]);
    assert_eq!(r.code, 1);
    let (v1, v2) = ("m/V1__msg.sql", "m/V2__distribute.sql");
    assert_eq!(
        r.stdout,
        format!("{v2}:1:1: error[citus-unique-without-distribution-column]: create_distributed_table('msg', 'userid'): its PRIMARY KEY msg_pkey (id), from {v1}:1:1, lacks the distribution column userid; Citus refuses it with ERROR: cannot create constraint on \"msg\" DETAIL: Distributed relations cannot have UNIQUE, EXCLUDE, or PRIMARY KEY constraints that do not include the partition column (with an equality operator if EXCLUDE).
   | SELECT create_distributed_table('msg', 'userid')
   = help: make the key include userid before distributing, e.g. PRIMARY KEY (userid, id), or distribute by a column the key has

1 error in 2 files (28 rules)
")
    );
}

#[test]
fn shipped_schema_passes() {
    let tmp = tempfile::tempdir().unwrap();
    let r = run_in(tmp.path(), &["lint"], &[]);
    r.assert_ok();
    assert_eq!(r.stdout, "no problems in 8 files (23 rules)\n");
    // The repository's own environment (chatmigrate.toml, dev).
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let r = run_in(root, &["lint"], &[]);
    r.assert_ok();
    assert_eq!(r.stdout, "no problems in 8 files (23 rules)\n");
}

#[test]
fn verify_lints_only_what_is_not_applied() {
    let (db, dir) = (Db::new(), Dir::new());
    large_msg(&db, &dir);
    // Applied before a rule could object (here: recorded by baseline).
    dir.write("V2__msg_index.sql", V2);
    cm(&db, &dir, &["baseline", "--target", "2", "--allow-existing"]).assert_ok();
    cm(&db, &dir, &["verify"]).assert_ok();
    // Not applied: verify reports what `up` would refuse, and exits 1 as
    // `lint` does on an error-level finding.
    dir.write("V3__again.sql", "CREATE INDEX idx_msg_sent ON msg (sent_at);\n");
    let r = cm(&db, &dir, &["verify"]);
    assert_eq!(r.code, 1, "{r:#?}");
    assert!(
        r.stdout.contains("V3__again.sql:1:1: error[require-concurrent-index-creation]: "),
        "{}",
        r.stdout
    );
    assert!(r.stdout.ends_with("\n1 error in 1 file (14 rules)\n"), "{}", r.stdout);
    assert_eq!(r.stderr, "");
}
