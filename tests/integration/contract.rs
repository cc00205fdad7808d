//! The contract story: one story, [`story`], run against every backend of
//! the suite with the same expectations (as atuin's `db_story` runs one
//! story against every database). What a user sees through the real binary
//! is compared with one golden text per step, after masking what differs
//! from run to run (the target's name, times, checksums, the schema and
//! directory names): the output of every backend is the same text.
//!
//! The story, on a new database (a schema of its own on Citus):
//! 1. apply a transactional, a no-transaction and a transactional file;
//! 2. a second `up` applies nothing;
//! 3. `status`, as text and as JSON;
//! 4. drift: an applied file edited is `verify` exit 1 and `status` "changed",
//!    `up` refuses it with exit 2 and runs nothing; restored, `up` goes on;
//! 5. a failing statement: `file:line:col`, SQLSTATE, hint, the file rolled
//!    back; fixed, it applies;
//! 6. a no-transaction file fails at its third statement: recorded as failed
//!    with 2 of 4 done (`status` text and JSON); fixed, `up` resumes at the
//!    third statement and the first two do not run again;
//! 7. `up --dry-run` shows the pending file and changes nothing;
//! 8. the lock: while a first runner holds it, a second waits and says for
//!    whom, then finds nothing to apply; the migration ran once.
//!
//! Backends (`support::backends`): direct PostgreSQL, the Data API test
//! server (here its default; rds_data_variants.rs runs the story on its
//! other variants), and the live Citus coordinator when
//! `CHATMIGRATE_TEST_CITUS_URL` is set (else skipped, with the reason
//! printed).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::support::backends::{Backend, Citus, DataApi, Postgres, Target};
use crate::support::cli::{command, spawn};
use crate::support::dataapi::Options;
use crate::support::db::{history_at, query_url};
use crate::support::*;

#[test]
fn story_on_postgres() {
    story(&Postgres);
}

#[test]
fn story_on_the_data_api() {
    story(&DataApi(Options::default()));
}

#[test]
fn story_on_citus() {
    let _cluster = crate::support::citus::exclusive();
    story(&Citus);
}

/// One run of the story: the target, the schema it works in, its config
/// and its migrations directory.
struct StoryRun {
    backend: &'static str,
    target: Target,
    ns: String,
    conf: Dir,
    dir: Dir,
}

impl StoryRun {
    /// Writes migration `name`, with `{ns}` replaced by the run's schema.
    fn write(&self, name: &str, body: &str) {
        self.dir.write(name, body.replace("{ns}", &self.ns));
    }

    fn args<'a>(&'a self, config: &'a str, args: &[&'a str]) -> Vec<&'a str> {
        let mut full = vec![
            "--config",
            config,
            "--env",
            "story",
            "--migrations",
            self.dir.path().to_str().unwrap(),
        ];
        full.extend_from_slice(args);
        full
    }

    /// Runs the binary on the target.
    fn run(&self, args: &[&str]) -> Run {
        let config = self.conf.shown("chatmigrate.toml");
        run_in(self.conf.path(), &self.args(&config, args), self.target.env)
    }

    /// Starts the binary on the target in the background.
    fn spawn(&self, args: &[&str]) -> std::process::Child {
        let config = self.conf.shown("chatmigrate.toml");
        spawn(command(self.conf.path(), &self.args(&config, args), self.target.env))
    }

    /// SQL on the target database, directly (for the test's own checks).
    fn scalar(&self, sql: &str) -> String {
        let sql = sql.replace("{ns}", &self.ns);
        query_url(&self.target.url, &sql)[0][0].clone().unwrap_or_default()
    }

    /// The history rows: (version, status, statements done).
    fn history(&self) -> Vec<(i64, String, i32)> {
        history_at(&self.target.url, &format!("{}.chatmigrate_history", self.ns))
    }

    /// `text` with what differs between runs and backends replaced:
    /// `<target>`, `<db>`, `<ns>`, `<dir>`, `<checksum>`, `<time>`, `<duration>`.
    fn mask(&self, text: &str) -> String {
        let text = text
            .replace(&self.target.shown, "<target>")
            .replace(&self.target.database, "<db>")
            .replace(&self.ns, "<ns>")
            .replace(&self.dir.path().display().to_string(), "<dir>");
        mask_durations(&mask_times(&mask_checksums(&text)))
    }

    /// stdout, masked.
    fn masked_stdout(&self, r: &Run) -> String {
        self.mask(&r.stdout)
    }

    /// `status`'s stdout, masked, with the lines about the server (Citus:
    /// its release and workers) checked and removed.
    fn masked_status(&self, r: &Run) -> String {
        let mut lines = r.stdout.lines();
        for prefix in self.target.server_lines {
            let line = lines.next().unwrap_or_default();
            assert!(
                line.starts_with(prefix),
                "{}: `{prefix}…` expected first in:\n{}",
                self.backend,
                r.stdout
            );
        }
        let rest: Vec<&str> = lines.collect();
        self.mask(&format!("{}\n", rest.join("\n")))
    }

    /// `status --format json`, masked: checksums (after checking that the
    /// applied one is the file's), times, who applied, the server and target.
    fn status_json(&self, r: &Run) -> Value {
        let mut v: Value = serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{}: {e}: {}", self.backend, r.stdout));
        let server = v.as_object_mut().unwrap().remove("server");
        assert_eq!(
            server.is_some(),
            !self.target.server_lines.is_empty(),
            "{}: {}",
            self.backend,
            r.stdout
        );
        for m in v["migrations"].as_array_mut().unwrap() {
            let file = self.dir.read(&format!("V{}__{}.sql", m["version"], m["name"].as_str().unwrap()));
            assert_eq!(m["file_checksum"], checksum(&file), "{}: {m}", self.backend);
            if m["state"] != "changed" {
                assert_eq!(m["applied_checksum"], m["file_checksum"], "{}: {m}", self.backend);
            }
            if m["state"] != "pending" {
                assert!(m["execution_ms"].is_u64(), "{}: {m}", self.backend);
                m["execution_ms"] = json!("<ms>");
                assert!(m["installed_by"].is_string(), "{}: {m}", self.backend);
                m["installed_by"] = json!("<user>");
            }
        }
        serde_json::from_str(&self.mask(&v.to_string())).unwrap()
    }
}

static RUNS: AtomicUsize = AtomicUsize::new(0);

/// The story (see the module docs) against one backend.
pub fn story<B: Backend>(backend: &B) {
    let started = Instant::now();
    let ns = format!("cmt_story_{}_{}", std::process::id(), RUNS.fetch_add(1, Ordering::SeqCst));
    let Some(target) = backend.target(&ns) else { return };
    let s = StoryRun {
        backend: backend.name(),
        target,
        ns,
        conf: Dir::new(),
        dir: Dir::new(),
    };
    let name = s.backend;
    s.conf.write(
        "chatmigrate.toml",
        format!(
            "[environments.story]\n{}history_schema = \"{}\"\nlock_wait = \"60s\"\n",
            s.target.environment, s.ns
        ),
    );

    // 1. A transactional, a no-transaction and a transactional file, on a new database.
    s.write(
        "V1__t.sql",
        "CREATE TABLE {ns}.t (id int PRIMARY KEY, v text);\nINSERT INTO {ns}.t VALUES (1, 'a'), (2, 'b');\n",
    );
    s.write(
        "V2__t_index.sql",
        "-- chatmigrate:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS t_v ON {ns}.t (v);\n",
    );
    s.write("V3__t_column.sql", "ALTER TABLE {ns}.t ADD COLUMN w int;\n");
    let r = if s.target.create {
        s.run(&["up", "--create-database"])
    } else {
        s.run(&["up"])
    };
    r.assert_ok();
    let created = if s.target.create { "created database <db>\n" } else { "" };
    assert_eq!(
        s.masked_stdout(&r),
        format!(
            "{created}applied V1 t (<duration>)\n\
             applied V2 t_index (no transaction, 1 statement, <duration>)\n\
             applied V3 t_column (<duration>)\n\
             3 migration(s) applied to <target> in <duration>\n"
        ),
        "{name}"
    );
    // Nothing on stderr but, on a loaded machine, the line a connect that
    // takes over a second prints (every wait says what it waits for).
    let unexpected: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| !l.starts_with("waiting for the database to accept connections: "))
        .collect();
    assert!(unexpected.is_empty(), "{name}: {}", r.stderr);
    assert_eq!(
        s.history(),
        vec![(1, "applied".into(), 2), (2, "applied".into(), 1), (3, "applied".into(), 1)],
        "{name}"
    );
    assert_eq!(s.scalar("SELECT count(*) FROM {ns}.t"), "2", "{name}");
    assert_eq!(
        s.scalar("SELECT indisvalid FROM pg_index WHERE indexrelid = '{ns}.t_v'::regclass"),
        "t",
        "{name}"
    );

    // 2. Nothing left: a second `up` applies nothing.
    let r = s.run(&["up"]);
    r.assert_ok();
    assert_eq!(s.masked_stdout(&r), "nothing to apply: <target> is up to date\n", "{name}");

    // 3. status, as text and as JSON.
    let r = s.run(&["status", "--exit-code"]);
    r.assert_ok();
    assert_eq!(
        s.masked_status(&r),
        "VERSION  NAME      STATE     APPLIED AT            TIME\n\
         1        t         applied   <time>  <duration>\n\
         2        t_index   applied   <time>  <duration>\n\
         3        t_column  applied   <time>  <duration>\n\
         3 applied on <target>\n",
        "{name}"
    );
    let applied = |version: i64, name: &str, done: i64| {
        json!({
            "applied_at": "<time>", "applied_checksum": "<checksum>", "applied_name": name, "error": null,
            "execution_ms": "<ms>", "file_checksum": "<checksum>", "installed_by": "<user>", "name": name,
            "out_of_order": false, "path": format!("<dir>/V{version}__{name}.sql"), "state": "applied",
            "statements_done": done, "statements_total": done, "version": version,
        })
    };
    let r = s.run(&["status", "--format", "json"]);
    r.assert_ok();
    assert_eq!(
        s.status_json(&r),
        json!({
            "database_exists": true,
            "migrations": [applied(1, "t", 2), applied(2, "t_index", 1), applied(3, "t_column", 1)],
            "ok": true,
            "summary": {"applied": 3},
            "target": "<target>",
        }),
        "{name}"
    );

    // 4. Drift: an applied file edited.
    let v1 = s.dir.read("V1__t.sql");
    s.dir.write("V1__t.sql", format!("{v1}-- edited\n"));
    let r = s.run(&["verify"]);
    assert_eq!(r.code, 1, "{name}: {r:#?}");
    // Text output shows checksums short (`sha256:` and 8 hex digits, then `…`).
    let short = chatmigrate::__private::migration::short_checksum;
    let (was, now) = (short(&checksum(&v1)), short(&checksum(&s.dir.read("V1__t.sql"))));
    assert_eq!(
        r.stdout,
        format!(
            "changed: V1 t ({}): applied {was} but the file has {now}\n\
             1 drifted migration(s) on {}; accept changed or renamed files with `chatmigrate repair`\n",
            s.dir.shown("V1__t.sql"),
            s.target.shown
        ),
        "{name}"
    );
    let r = s.run(&["status", "--exit-code"]);
    assert_eq!(r.code, 1, "{name}: {r:#?}");
    assert!(
        s.masked_status(&r).contains("\n1        t         changed   <time>  <duration>\n"),
        "{name}: {}",
        r.stdout
    );
    s.write("V4__more.sql", "CREATE TABLE {ns}.more (id int);\n");
    let r = s.run(&["up"]);
    r.assert_error(&format!(
        "{}: version 1 was applied with checksum {was} but the file now has {now}",
        s.dir.shown("V1__t.sql")
    ));
    assert_eq!(
        r.hint(),
        "hint: restore the applied file, or accept the new text with `chatmigrate repair`",
        "{name}"
    );
    assert_eq!(r.stdout, "", "{name}");
    assert_eq!(s.history().len(), 3, "{name}: nothing may run after drift");
    assert_eq!(s.scalar("SELECT to_regclass('{ns}.more') IS NULL"), "t", "{name}");
    s.dir.write("V1__t.sql", &v1);
    let r = s.run(&["up"]);
    r.assert_ok();
    assert_eq!(
        s.masked_stdout(&r),
        "applied V4 more (<duration>)\n1 migration(s) applied to <target> in <duration>\n",
        "{name}"
    );

    // 5. A failing statement: file:line:col, rolled back; fixed, applied.
    s.write(
        "V5__fails.sql",
        "CREATE TABLE {ns}.marker (id int);\nALTER TABLE {ns}.missing ADD COLUMN x int;\n",
    );
    let r = s.run(&["up"]);
    r.assert_error(&format!(
        "{}:2:1: version 5 failed: relation \"{}.missing\" does not exist (SQLSTATE 42P01)",
        s.dir.shown("V5__fails.sql"),
        s.ns
    ));
    assert_eq!(
        r.hint(),
        "hint: fix the migration and run `chatmigrate up` again; this migration was rolled back",
        "{name}"
    );
    assert_eq!(s.scalar("SELECT to_regclass('{ns}.marker') IS NULL"), "t", "{name}: rolled back");
    assert_eq!(s.history().len(), 4, "{name}: no history row");
    s.write(
        "V5__fails.sql",
        "CREATE TABLE {ns}.marker (id int);\nCREATE TABLE {ns}.missing (id int);\n",
    );
    let r = s.run(&["up"]);
    r.assert_ok();
    assert_eq!(
        s.masked_stdout(&r),
        "applied V5 fails (<duration>)\n1 migration(s) applied to <target> in <duration>\n",
        "{name}"
    );

    // 6. A no-transaction file fails at its third statement, and resumes
    //    there once fixed (the INSERT before it would add a second row if it
    //    ran again).
    s.write(
        "V6__resume.sql",
        "-- chatmigrate:no-transaction\nCREATE TABLE IF NOT EXISTS {ns}.nt (id int);\nINSERT INTO {ns}.nt VALUES (1);\n\
         ALTER TABLE {ns}.nt_missing ADD COLUMN IF NOT EXISTS x int;\nCREATE INDEX CONCURRENTLY IF NOT EXISTS nt_id ON {ns}.nt (id);\n",
    );
    let r = s.run(&["up"]);
    let failure = format!(
        "{}:4:1: relation \"{}.nt_missing\" does not exist (SQLSTATE 42P01)",
        s.dir.shown("V6__resume.sql"),
        s.ns
    );
    r.assert_error(&failure.replacen(":4:1: ", ":4:1: version 6 failed: ", 1));
    assert_eq!(
        r.hint(),
        "hint: fix the failing statement and run `chatmigrate up` again: it resumes at that statement (the ones before it stay done)",
        "{name}"
    );
    assert_eq!(s.history().last(), Some(&(6, "failed".to_string(), 2)), "{name}");
    let r = s.run(&["status", "--exit-code"]);
    assert_eq!(r.code, 1, "{name}: {r:#?}");
    assert_eq!(
        s.masked_status(&r),
        "VERSION  NAME      STATE     APPLIED AT            TIME\n\
         1        t         applied   <time>  <duration>\n\
         2        t_index   applied   <time>  <duration>\n\
         3        t_column  applied   <time>  <duration>\n\
         4        more      applied   <time>  <duration>\n\
         5        fails     applied   <time>  <duration>\n\
         6        resume    failed    <time>  <duration>\n\
         \x20        2 of 4 statements done\n\
         \x20        statement 3 at <dir>/V6__resume.sql:4:1: relation \"<ns>.nt_missing\" does not exist (SQLSTATE 42P01)\n\
         5 applied, 1 failed on <target>\n",
        "{name}"
    );
    let r = s.run(&["status", "--format", "json"]);
    r.assert_ok();
    let st = s.status_json(&r);
    assert_eq!(
        st["migrations"][5],
        json!({
            "applied_at": "<time>", "applied_checksum": "<checksum>", "applied_name": "resume",
            "error": "statement 3 at <dir>/V6__resume.sql:4:1: relation \"<ns>.nt_missing\" does not exist (SQLSTATE 42P01)",
            "execution_ms": "<ms>", "file_checksum": "<checksum>", "installed_by": "<user>", "name": "resume",
            "out_of_order": false, "path": "<dir>/V6__resume.sql", "state": "failed",
            "statements_done": 2, "statements_total": 4, "version": 6,
        }),
        "{name}"
    );
    assert_eq!(st["summary"], json!({"applied": 5, "failed": 1}), "{name}");
    let fixed = s.dir.read("V6__resume.sql").replace(
        &format!("ALTER TABLE {}.nt_missing ADD COLUMN IF NOT EXISTS x int;", s.ns),
        &format!("CREATE TABLE IF NOT EXISTS {}.nt_missing (id int);", s.ns),
    );
    s.dir.write("V6__resume.sql", &fixed);
    let r = s.run(&["up"]);
    r.assert_ok();
    assert_eq!(
        s.masked_stdout(&r),
        "resuming V6 resume at statement 3 of 4\n\
         applied V6 resume (no transaction, 4 statements, resumed at statement 3, <duration>)\n\
         1 migration(s) applied to <target> in <duration>\n",
        "{name}"
    );
    assert_eq!(s.history().last(), Some(&(6, "applied".to_string(), 4)), "{name}");
    assert_eq!(s.scalar("SELECT count(*) FROM {ns}.nt"), "1", "{name}: the INSERT ran once");
    assert_eq!(
        s.scalar("SELECT indisvalid FROM pg_index WHERE indexrelid = '{ns}.nt_id'::regclass"),
        "t",
        "{name}"
    );
    assert_eq!(
        s.scalar("SELECT checksum FROM {ns}.chatmigrate_history WHERE version = 6"),
        checksum(&fixed),
        "{name}: the fixed file's checksum is recorded"
    );

    // 7. A dry run shows the pending file and changes nothing.
    s.write("V7__slow.sql", "INSERT INTO {ns}.t VALUES (70, 'lock');\nSELECT pg_sleep(3);\n");
    let r = s.run(&["up", "--dry-run"]);
    r.assert_ok();
    let dry = s.masked_stdout(&r);
    assert!(
        dry.starts_with("-- dry run on <target>: nothing is sent\n\n-- V7 slow (one transaction)\n"),
        "{name}: {dry}"
    );
    assert!(
        dry.contains("\nINSERT INTO <ns>.t VALUES (70, 'lock');\nSELECT pg_sleep(3);\n"),
        "{name}: {dry}"
    );
    assert_eq!(s.history().len(), 6, "{name}");
    assert_eq!(s.scalar("SELECT count(*) FROM {ns}.t WHERE id = 70"), "0", "{name}");

    // 8. The lock: a second runner waits while the first holds it, says for
    //    whom, then applies nothing.
    let first = s.spawn(&["up"]);
    let pid = first.id();
    let holder = format!("chatmigrate process {pid}, backend {name}");
    wait_until(30, "the first runner to hold the lock", || {
        s.scalar("SELECT coalesce(max(holder), '') FROM {ns}.chatmigrate_history_lease WHERE owner IS NOT NULL")
            .contains(&holder)
    });
    let second = s.run(&["up"]);
    let first = finish(first);
    first.assert_ok();
    assert_eq!(
        s.masked_stdout(&first),
        "applied V7 slow (<duration>)\n1 migration(s) applied to <target> in <duration>\n",
        "{name}"
    );
    second.assert_ok();
    assert_eq!(s.masked_stdout(&second), "nothing to apply: <target> is up to date\n", "{name}");
    // Once a second, what it waits for; the first line names the holder (a
    // later one may find the lock just released, and says less).
    let waits: Vec<&str> = second
        .stderr
        .lines()
        .filter(|l| !l.starts_with("waiting for the database to accept connections: "))
        .collect();
    assert!(
        waits.first().is_some_and(|l| l.contains(&holder)) && waits.iter().all(|l| l.starts_with("waiting for the migration lock: ")),
        "{name}: {}",
        second.stderr
    );
    assert_eq!(s.scalar("SELECT count(*) FROM {ns}.t WHERE id = 70"), "1", "{name}: V7 ran once");
    assert_eq!(
        s.scalar("SELECT count(*) FROM {ns}.chatmigrate_history_lease WHERE owner IS NOT NULL"),
        "0",
        "{name}: the lock is free"
    );
    let r = s.run(&["verify"]);
    r.assert_ok();
    assert_eq!(s.masked_stdout(&r), "verified 7 file(s) against <target>: no drift\n", "{name}");
    eprintln!("{name}: the contract story in {:.1} s", started.elapsed().as_secs_f64());
}

/// `sha256:<hex>` of a file without BOM and CRLF, as chatmigrate records it.
fn checksum(text: &str) -> String {
    let hex: String = Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// Replaces every `sha256:<64 hex digits>` with `<checksum>`.
fn mask_checksums(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("sha256:") {
        let hex = &rest[i + 7..];
        let n = hex.bytes().take_while(u8::is_ascii_hexdigit).count();
        out.push_str(&rest[..i]);
        if n == 64 {
            out.push_str("<checksum>");
            rest = &hex[64..];
        } else {
            out.push_str("sha256:");
            rest = hex;
        }
    }
    out.push_str(rest);
    out
}

/// Replaces every UTC timestamp `YYYY-MM-DDTHH:MM:SSZ` with `<time>`.
fn mask_times(text: &str) -> String {
    const SHAPE: &[u8] = b"dddd-dd-ddTdd:dd:ddZ";
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        let fits = b.len() - i >= SHAPE.len()
            && SHAPE
                .iter()
                .zip(&b[i..])
                .all(|(s, c)| if *s == b'd' { c.is_ascii_digit() } else { s == c });
        if fits {
            out.push_str("<time>");
            i += SHAPE.len();
        } else {
            let ch = text[i..].chars().next().unwrap();
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

/// Replaces every duration as chatmigrate prints one (`4 ms`, `3.0 s`)
/// with `<duration>`.
fn mask_durations(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        let starts_number = b[i].is_ascii_digit() && (i == 0 || !b[i - 1].is_ascii_alphanumeric());
        if starts_number {
            let mut j = i;
            while j < b.len() && (b[j].is_ascii_digit() || b[j] == b'.') {
                j += 1;
            }
            let unit = ["ms", "s"]
                .into_iter()
                .find(|u| text[j..].starts_with(&format!(" {u}")) && !b.get(j + 1 + u.len()).is_some_and(u8::is_ascii_alphanumeric));
            if let Some(u) = unit {
                out.push_str("<duration>");
                i = j + 1 + u.len();
                continue;
            }
            out.push_str(&text[i..j]);
            i = j;
            continue;
        }
        let ch = text[i..].chars().next().unwrap();
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}
