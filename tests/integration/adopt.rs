//! `chatmigrate adopt` and `chatmigrate diff` (issue 13, points 3 to 6),
//! through the real binary on the real PostgreSQL, directly and through the
//! Data API test server.
//!
//! The acceptance case is the seed's hand-made database, built from the
//! seed's own SQL (seed/, see its README): `up` refuses it listing
//! what exists, `adopt` reports the UNIQUE on userid, the primary keys on
//! primarykey alone and the HNSW index's name, the written fix applied with
//! `up` turns it into the shipped schema without losing a row, and then
//! `adopt` records V1..V4 and `diff` reports no drift.

use crate::support::dataapi::{DataApiServer, Options};
use crate::support::*;

const SEED: [&str; 3] = [
    include_str!("seed/1_history_table.sql"),
    include_str!("seed/2_vector_extension.sql"),
    include_str!("seed/3_vector_table.sql"),
];

/// The seed's database, as its reader built it in the Query Editor (one run
/// per file), with `history` chat rows (one per user: the seed's UNIQUE) and
/// `vectors` summaries.
fn hand_made(db: &Db, history: i64, vectors: i64) {
    for sql in SEED {
        db.exec(sql);
    }
    db.exec(&format!(
        "INSERT INTO st_chat_history_table (userid, themename, chatid, userinput, botresponse)
         SELECT 'user' || i, 'theme' || (i % 7), i, 'question ' || i, 'answer ' || i FROM generate_series(1, {history}) i"
    ));
    db.exec(&format!(
        "INSERT INTO st_chat_history_vector_table (userid, theme, chatid, chat_summary, chat_vector)
         SELECT 'user' || i, 'theme', i, 'summary ' || i, array_fill((i % 97)::real / 97, ARRAY[1024])::vector FROM generate_series(1, {vectors}) i"
    ));
}

/// The four differences of the seed's database, as `adopt` prints them.
const SEED_DIFFERENCES: &str = "changed  constraint st_chat_history_table_pkey on st_chat_history_table: PRIMARY KEY (primarykey) in the database, PRIMARY KEY (userid, primarykey) in the migrations
extra    constraint st_chat_history_table_userid_key on st_chat_history_table: UNIQUE (userid) (the migrations do not make it)
changed  constraint st_chat_history_vector_table_pkey on st_chat_history_vector_table: PRIMARY KEY (primarykey) in the database, PRIMARY KEY (userid, primarykey) in the migrations
renamed  index st_chat_history_vector_table_chat_vector_idx on st_chat_history_vector_table: the migrations name it idx_st_chat_history_vector_hnsw (public.st_chat_history_vector_table USING hnsw (chat_vector vector_l2_ops))
";

/// The statements of the seed's fix, in order.
const SEED_FIX: &str = "ALTER TABLE public.st_chat_history_table DROP CONSTRAINT IF EXISTS st_chat_history_table_userid_key;
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS st_chat_history_table_pkey_new ON public.st_chat_history_table USING btree (userid, primarykey);
ALTER TABLE public.st_chat_history_table DROP CONSTRAINT IF EXISTS st_chat_history_table_pkey, ADD CONSTRAINT st_chat_history_table_pkey PRIMARY KEY USING INDEX st_chat_history_table_pkey_new;
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS st_chat_history_vector_table_pkey_new ON public.st_chat_history_vector_table USING btree (userid, primarykey);
ALTER TABLE public.st_chat_history_vector_table DROP CONSTRAINT IF EXISTS st_chat_history_vector_table_pkey, ADD CONSTRAINT st_chat_history_vector_table_pkey PRIMARY KEY USING INDEX st_chat_history_vector_table_pkey_new;
ALTER INDEX IF EXISTS public.st_chat_history_vector_table_chat_vector_idx RENAME TO idx_st_chat_history_vector_hnsw;
";

fn target(db: &Db) -> String {
    format!("postgres@127.0.0.1:{}/{}", port(), db.name)
}

/// The SQL statements of a file (no comments, no blank lines).
fn statements(text: &str) -> String {
    text.lines()
        .filter(|l| !l.starts_with("--") && !l.trim().is_empty())
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Scratch databases a run of process `pid` left behind.
fn scratch_left(pid: u32) -> String {
    query_url(
        &server_url(),
        &format!("SELECT count(*) FROM pg_database WHERE datname LIKE 'chatmigrate\\_scratch\\_{pid}\\_%'"),
    )[0][0]
        .clone()
        .unwrap()
}

/// Runs the binary with the built-in chat schema, and says which scratch
/// databases it left (by its process id).
fn run_and_check_scratch(db: &Db, args: &[&str]) -> Run {
    let tmp = tempfile::tempdir().unwrap();
    let mut full: Vec<&str> = vec!["--database-url", &db.url];
    full.extend_from_slice(args);
    let child = spawn_in(tmp.path(), &full);
    let pid = child.id();
    let r = finish(child);
    assert_eq!(scratch_left(pid), "0", "a scratch database was left by {args:?}: {r:#?}");
    r
}

#[test]
fn the_seeds_hand_made_database_is_adopted_after_its_fix() {
    let db = Db::new();
    hand_made(&db, 5_000, 300);
    let fixes = Dir::new();

    // `up` refuses before sending anything, listing what exists, and points to adopt.
    let r = cm_embedded(&db, &["up"]);
    r.assert_error(&format!(
        "4 object(s) that the pending migrations create already exist in {}: table st_chat_history_table (embedded:V1__st_chat_history_table.sql:9:1), index idx_st_chat_history_userid on st_chat_history_table (embedded:V1__st_chat_history_table.sql:20:1), index idx_st_chat_history_timestamp on st_chat_history_table (embedded:V1__st_chat_history_table.sql:22:1), ...; nothing was applied",
        target(&db)
    ));
    assert!(r.hint().contains("`chatmigrate adopt`"), "{}", r.stderr);
    assert!(r
        .stderr
        .contains("\n  table st_chat_history_vector_table (embedded:V3__st_chat_history_vector_table.sql:9:1)\n"));
    assert!(!db.table_exists("chatmigrate_history"));

    // adopt: the differences, nothing recorded, exit 1.
    let r = run_and_check_scratch(&db, &["adopt"]);
    assert_eq!(r.code, 1, "{r:#?}");
    assert_eq!(
        r.stdout,
        format!(
            "adopt: the schema of {} differs from the migrations V1..V4 (4 difference(s)); nothing was recorded\n{SEED_DIFFERENCES}to write a migration that turns the database's schema into the expected one: chatmigrate adopt --target 4 --write-fix adopt/V1__adopt_fix.sql\n",
            target(&db)
        )
    );
    assert_eq!(r.stderr, "");
    assert!(
        !db.table_exists("chatmigrate_history"),
        "adopt records nothing when the schemas differ"
    );

    // The fix: written in the safe forms, applied with `up`.
    let fix = fixes.path().join("V1__adopt_fix.sql");
    let r = run_and_check_scratch(&db, &["adopt", "--write-fix", fix.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{r:#?}");
    assert!(r.stdout.ends_with(&format!(
        "wrote {}: 6 statement(s); review it, apply it with `chatmigrate up --migrations {}`, then run `chatmigrate adopt --target 4` again\n",
        fix.display(),
        fixes.path().display()
    )), "{}", r.stdout);
    let text = std::fs::read_to_string(&fix).unwrap();
    assert!(
        text.starts_with("-- chatmigrate:no-transaction\n-- chatmigrate:adopt-fix\n"),
        "{text}"
    );
    assert_eq!(statements(&text), SEED_FIX);
    // Written again, it is the same fix (an adopt fix is overwritten, nothing else is).
    run_and_check_scratch(&db, &["adopt", "--write-fix", fix.to_str().unwrap()]);
    let text = std::fs::read_to_string(&fix).unwrap();
    assert_eq!(statements(&text), SEED_FIX);

    let r = cm(&db, &fixes, &["up"]);
    r.assert_ok();
    assert!(
        r.stdout.starts_with("applied V1 adopt_fix (no transaction, 6 statements, "),
        "{}",
        r.stdout
    );
    // No history row: the fix is in the log only.
    assert!(db.history().is_empty());
    assert_eq!(
        db.scalar("SELECT action || ' ' || new_checksum FROM chatmigrate_history_log"),
        format!("adopt-fix {}", checksum(&text))
    );
    // Every row is still there; the keys are the shipped ones.
    assert_eq!(db.scalar("SELECT count(*) FROM st_chat_history_table"), "5000");
    assert_eq!(db.scalar("SELECT count(*) FROM st_chat_history_vector_table"), "300");
    for t in ["st_chat_history_table", "st_chat_history_vector_table"] {
        assert_eq!(
            db.scalar(&format!(
                "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = '{t}'::regclass AND contype = 'p'"
            )),
            "PRIMARY KEY (userid, primarykey)"
        );
    }
    // A second message of the same user: impossible under the seed's UNIQUE.
    db.exec("INSERT INTO st_chat_history_table (userid, themename, chatid) VALUES ('user1', 'theme1', 5001)");
    // Applied twice, the fix is not run again.
    let r = cm(&db, &fixes, &["up"]);
    r.assert_ok();
    assert!(r.stdout.contains("was applied on "), "{}", r.stdout);

    // adopt now records V1..V4, like baseline, and logs each.
    let r = run_and_check_scratch(&db, &["adopt"]);
    r.assert_ok();
    assert_eq!(
        r.stdout,
        format!(
            "adopt: the schema of {} matches the migrations V1..V4; recorded 4 migration(s) as applied without running them\n",
            target(&db)
        )
    );
    assert_eq!(
        db.history(),
        vec![
            (1, "applied".into(), 3),
            (2, "applied".into(), 1),
            (3, "applied".into(), 1),
            (4, "applied".into(), 1)
        ]
    );
    assert_eq!(
        db.scalar("SELECT string_agg(version || ' ' || action, ', ' ORDER BY id) FROM chatmigrate_history_log"),
        "1 adopt-fix, 1 adopt, 2 adopt, 3 adopt, 4 adopt"
    );
    // No drift, nothing pending, and adopt will not run twice.
    let r = run_and_check_scratch(&db, &["diff", "--exit-code"]);
    r.assert_ok();
    assert_eq!(
        r.stdout,
        format!("no drift: {} has the schema of its 4 applied migration(s) (V1..V4)\n", target(&db))
    );
    let r = cm_embedded(&db, &["up"]);
    r.assert_ok();
    assert!(r.stdout.starts_with("nothing to apply"), "{}", r.stdout);
    let r = cm_embedded(&db, &["adopt"]);
    r.assert_error(&format!(
        "adopt: {} is managed by chatmigrate already: its history holds 4 row(s) (V1, V2, V3, V4)",
        target(&db)
    ));
    assert_eq!(db.scalar("SELECT count(*) FROM st_chat_history_table"), "5001");
}

/// The file's checksum as chatmigrate records it (SHA-256 of the text).
fn checksum(text: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(text.replace("\r\n", "\n").as_bytes());
    format!("sha256:{}", digest.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

#[test]
fn the_json_of_a_diff_is_stable() {
    let db = Db::new();
    hand_made(&db, 10, 1);
    let r = cm_embedded(&db, &["--format", "json", "adopt"]);
    assert_eq!(r.code, 1, "{r:#?}");
    let v: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["matched"], false);
    assert_eq!(v["version"], 4);
    assert_eq!(v["recorded"], serde_json::json!([]));
    assert!(v["scratch"].as_str().unwrap().contains("/chatmigrate_scratch_"), "{v}");
    assert_eq!(v["introspection"]["live"]["queries"], 2);
    assert_eq!(
        v["differences"].to_string(),
        r#"[{"attribute":"definition","change":"changed","expected":"PRIMARY KEY (userid, primarykey)","live":"PRIMARY KEY (primarykey)","live_name":null,"name":"st_chat_history_table_pkey","object":"constraint","schema":"public","table":"st_chat_history_table"},{"attribute":null,"change":"extra","expected":null,"live":"UNIQUE (userid)","live_name":null,"name":"st_chat_history_table_userid_key","object":"constraint","schema":"public","table":"st_chat_history_table"},{"attribute":"definition","change":"changed","expected":"PRIMARY KEY (userid, primarykey)","live":"PRIMARY KEY (primarykey)","live_name":null,"name":"st_chat_history_vector_table_pkey","object":"constraint","schema":"public","table":"st_chat_history_vector_table"},{"attribute":null,"change":"renamed","expected":"CREATE INDEX idx_st_chat_history_vector_hnsw ON public.st_chat_history_vector_table USING hnsw (chat_vector vector_l2_ops)","live":"CREATE INDEX st_chat_history_vector_table_chat_vector_idx ON public.st_chat_history_vector_table USING hnsw (chat_vector vector_l2_ops)","live_name":"st_chat_history_vector_table_chat_vector_idx","name":"idx_st_chat_history_vector_hnsw","object":"index","schema":"public","table":"st_chat_history_vector_table"}]"#
    );
}

/// The shipped migrations' SQL run by hand (not through chatmigrate).
fn shipped_by_hand(db: &Db) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let mut files: Vec<_> = std::fs::read_dir(&root).unwrap().map(|e| e.unwrap().path()).collect();
    files.retain(|f| !f.to_string_lossy().ends_with(".undo.sql"));
    files.sort();
    for f in files {
        // The placeholders' defaults, as chatmigrate substitutes them.
        let sql = std::fs::read_to_string(&f)
            .unwrap()
            .replace("${embedding_type}", "vector")
            .replace("${embedding_dimensions}", "1024");
        // One statement per query: V4 has CREATE INDEX CONCURRENTLY.
        for s in sql.split(";\n") {
            let s: String = s.lines().filter(|l| !l.starts_with("--")).collect::<Vec<_>>().join("\n");
            if !s.trim().is_empty() {
                db.exec(&s);
            }
        }
    }
}

#[test]
fn a_matching_database_is_adopted_and_drift_is_reported() {
    let db = Db::new();
    shipped_by_hand(&db);
    let r = cm_embedded(&db, &["adopt"]);
    r.assert_ok();
    assert_eq!(db.versions(), vec![1, 2, 3, 4]);
    cm_embedded(&db, &["diff", "--exit-code"]).assert_ok();

    // Drift made by hand in the console.
    db.exec("CREATE INDEX idx_by_hand ON st_chat_history_table (themename)");
    db.exec("ALTER TABLE st_chat_history_table DROP COLUMN botresponse");
    db.exec("ALTER TABLE st_chat_history_table ALTER COLUMN timestamp SET DEFAULT clock_timestamp()");
    db.exec("CREATE TABLE notes (id int)");
    let r = cm_embedded(&db, &["diff"]);
    r.assert_ok();
    let r = cm_embedded(&db, &["diff", "--exit-code"]);
    assert_eq!(r.code, 1, "{r:#?}");
    assert_eq!(
        r.stdout,
        format!(
            "drift: {} differs from the schema of its 4 applied migration(s) (V1..V4): 4 difference(s)
extra    table notes: (id integer) (the migrations do not make it)
missing  column botresponse on st_chat_history_table: botresponse text
changed  column timestamp on st_chat_history_table: default clock_timestamp() in the database, default now() in the migrations
extra    index idx_by_hand on st_chat_history_table: CREATE INDEX idx_by_hand ON public.st_chat_history_table USING btree (themename) (the migrations do not make it)
",
            target(&db)
        )
    );
    let r = cm_embedded(&db, &["--format", "json", "diff", "--exit-code"]);
    assert_eq!(r.code, 1);
    let v: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(v["drift"], true);
    assert_eq!(v["applied"], serde_json::json!([1, 2, 3, 4]));
    assert_eq!(v["differences"][1]["change"], "missing");
    assert_eq!(v["differences"][1]["object"], "column");
    assert_eq!(v["differences"][2]["attribute"], "default");
    // A file changed after it was applied: diff cannot know the schema it made.
    let dir = Dir::new();
    for (name, body) in [
        ("V1__st_chat_history_table.sql", "CREATE TABLE st_chat_history_table (a int);\n"),
        ("V2__vector_extension.sql", "CREATE EXTENSION IF NOT EXISTS vector;\n"),
    ] {
        dir.write(name, body);
    }
    let r = cm(&db, &dir, &["diff"]);
    r.assert_error("diff: V1 st_chat_history_table was applied with another text than its file has now, so the schema of the applied migrations is not known");
}

#[test]
fn adopt_refuses_what_it_cannot_adopt() {
    // An empty database: nothing to adopt.
    let db = Db::new();
    let r = cm_embedded(&db, &["adopt"]);
    r.assert_error(&format!(
        "adopt: none of the objects the migrations create exist in {}: there is nothing to adopt",
        target(&db)
    ));
    assert_eq!(
        r.hint(),
        "hint: run `chatmigrate up` to apply the migrations, or pass --target V to compare with the schema of the migrations up to V"
    );
    cm_embedded(&db, &["adopt", "--target", "9"]).assert_error("--target 9: no migration file has that version");
    // --write-fix must name a migration file of a directory of its own.
    let tmp = Dir::new();
    let bad = tmp.path().join("fix.sql");
    let r = cm_embedded(&db, &["adopt", "--write-fix", bad.to_str().unwrap()]);
    assert_eq!(r.code, 2);
    assert!(
        r.error_line()
            .starts_with(&format!("error: --write-fix {}: not a migration file name (", bad.display())),
        "{}",
        r.stderr
    );
    let taken = tmp.write("V1__mine.sql", "CREATE TABLE mine (a int);\n");
    cm_embedded(&db, &["adopt", "--write-fix", taken.to_str().unwrap()]).assert_error(&format!(
        "--write-fix {}: the file exists and is not an adopt fix: it is not overwritten",
        taken.display()
    ));
    let r = cm(
        &db,
        &tmp,
        &["adopt", "--write-fix", tmp.path().join("V2__fix.sql").to_str().unwrap()],
    );
    r.assert_error(&format!(
        "--write-fix {}: {} is a migration directory of this environment; an adopt fix runs alone",
        tmp.path().join("V2__fix.sql").display(),
        tmp.path().display()
    ));
    // An adopt fix runs alone.
    tmp.write(
        "V2__fix.sql",
        "-- chatmigrate:no-transaction\n-- chatmigrate:adopt-fix\nSELECT 1;\n",
    );
    let r = cm(&db, &tmp, &["up"]);
    r.assert_error(&format!(
        "{} is an adopt fix (-- chatmigrate:adopt-fix) and runs alone, but the migration set holds 2 file(s)",
        tmp.shown("V2__fix.sql")
    ));
    assert!(!db.table_exists("mine"));
    tmp.write("V2__fix.sql", "-- chatmigrate:adopt-fix\nSELECT 1;\n");
    let r = cm(&db, &tmp, &["up"]);
    r.assert_error(&format!(
        "{}:1:1: an adopt fix runs statement by statement: add `-- chatmigrate:no-transaction` above it",
        tmp.shown("V2__fix.sql")
    ));
}

#[test]
fn the_scratch_database_is_dropped_when_a_migration_fails() {
    let (db, dir) = (Db::new(), Dir::new());
    dir.write("V1__t.sql", "CREATE TABLE t (a int);\n");
    dir.write(
        "V2__bad.sql",
        "-- Names a table no migration makes.\nCREATE INDEX idx_nope ON nope (a);\n",
    );
    db.exec("CREATE TABLE t (a int)");
    let full = vec![
        "--database-url",
        &db.url,
        "--migrations",
        dir.path().to_str().unwrap(),
        "adopt",
        "--target",
        "2",
    ];
    let child = spawn_in(dir.path(), &full);
    let pid = child.id();
    let r = finish(child);
    assert_eq!(r.code, 2, "{r:#?}");
    let line = r.error_line();
    assert!(
        line.starts_with(&format!(
            "error: {}:2:1: V2 does not apply to an empty database (the scratch database postgres@127.0.0.1:",
            dir.shown("V2__bad.sql")
        )) && line.ends_with("): relation \"nope\" does not exist (SQLSTATE 42P01)"),
        "{line}"
    );
    assert_eq!(
        r.hint(),
        "hint: fix the migration: on an empty database it fails the same way (chatmigrate up shows it too)"
    );
    assert_eq!(scratch_left(pid), "0");
    assert!(!db.table_exists("chatmigrate_history"));
    // The default version: the highest whose objects all exist (V1 here).
    let r = cm(&db, &dir, &["adopt"]);
    r.assert_ok();
    assert_eq!(db.versions(), vec![1]);
}

#[test]
fn without_createdb_the_dev_database_is_used() {
    let n = Db::fresh_name();
    let role = format!("{n}_role");
    query_url(&server_url(), &format!("CREATE ROLE {role} LOGIN PASSWORD 'pw' NOCREATEDB"));
    let (live, dev) = (Db::adopt(&format!("{n}_live")), Db::adopt(&format!("{n}_dev")));
    query_url(&server_url(), &format!("CREATE DATABASE {} OWNER {role}", live.name));
    query_url(&server_url(), &format!("CREATE DATABASE {} OWNER {role}", dev.name));
    let url = |db: &str| format!("postgres://{role}:pw@127.0.0.1:{}/{db}", port());
    let dir = Dir::new();
    dir.write(
        "V1__t.sql",
        "CREATE TABLE t (id bigint PRIMARY KEY, a text DEFAULT 'x');\nCREATE INDEX idx_t_a ON t (a);\n",
    );
    // The database was made by hand, as the role.
    query_url(
        &url(&live.name),
        "CREATE TABLE t (id bigint PRIMARY KEY, a text DEFAULT 'x'); CREATE INDEX idx_t_a ON t (a)",
    );
    let run = |args: &[&str]| {
        let u = url(&live.name);
        let mut full = vec!["--database-url", u.as_str(), "--migrations", dir.path().to_str().unwrap()];
        full.extend_from_slice(args);
        run_in(dir.path(), &full, &[])
    };
    let r = run(&["adopt"]);
    assert_eq!(r.code, 2, "{r:#?}");
    let line = r.error_line().to_string();
    assert!(
        line.starts_with("error: cannot create the scratch database chatmigrate_scratch_")
            && line.ends_with(&format!(
                " on {role}@127.0.0.1:{}/{}: permission denied to create database (the migrations are applied there to learn the schema they make)",
                port(),
                live.name
            )),
        "{line}"
    );
    assert_eq!(
        r.hint(),
        format!("hint: give the role the privilege (ALTER ROLE {role} CREATEDB), or name an empty database for it with --dev-url or dev_url (docs/adopt.md)")
    );
    // With an empty dev database it works, and the dev database is emptied again.
    let dev_url = url(&dev.name);
    let r = run(&["adopt", "--dev-url", &dev_url]);
    r.assert_ok();
    assert_eq!(live.versions(), vec![1]);
    assert_eq!(
        dev.scalar("SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'"),
        "0"
    );
    // dev_url in the environment; drift found through it.
    query_url(&url(&live.name), "CREATE INDEX idx_by_hand ON t (id, a)");
    let conf = Dir::new();
    let config = conf.write(
        "chatmigrate.toml",
        format!("[environments.t]\nurl = \"{}\"\ndev_url = \"{dev_url}\"\n", url(&live.name)),
    );
    let r = run_in(
        conf.path(),
        &[
            "--config",
            config.to_str().unwrap(),
            "--env",
            "t",
            "--migrations",
            dir.path().to_str().unwrap(),
            "diff",
            "--exit-code",
        ],
        &[],
    );
    assert_eq!(r.code, 1, "{r:#?}");
    assert!(r.stdout.contains("extra    index idx_by_hand on t: "), "{}", r.stdout);
    assert!(!r.output().contains(":pw@"), "no password in output");
    // A dev database that is not empty is refused (it is not emptied).
    dev.exec("CREATE TABLE precious (a int)");
    let r = run(&["diff", "--dev-url", &dev_url]);
    r.assert_error(&format!(
        "the dev database {role}@127.0.0.1:{}/{} is not empty: it has table public.precious",
        port(),
        dev.name
    ));
    assert!(dev.table_exists("precious"));
    drop(live);
    drop(dev);
    query_url(&server_url(), &format!("DROP ROLE {role}"));
}

#[test]
fn adopt_through_the_data_api() {
    let server = DataApiServer::start(&server_url(), Options::default());
    let db = Db::new();
    hand_made(&db, 2_000, 50);
    let (conf, fixes) = (Dir::new(), Dir::new());
    let config = conf.write(
        "chatmigrate.toml",
        format!("[environments.aurora]\n{}resume_timeout = \"20s\"\n", server.environment(&db.name)),
    );
    let run = |args: &[&str]| {
        let mut full = vec!["--config", config.to_str().unwrap(), "--env", "aurora"];
        full.extend_from_slice(args);
        run_in(conf.path(), &full, &AWS_ENV)
    };
    let shown = format!("rds-data:chat/{}", db.name);
    let r = run(&["up"]);
    assert_eq!(r.code, 2);
    assert!(
        r.error_line()
            .starts_with("error: 4 object(s) that the pending migrations create already exist in rds-data:chat/"),
        "{}",
        r.stderr
    );
    let fix = fixes.path().join("V1__adopt_fix.sql");
    let r = run(&["adopt", "--write-fix", fix.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{r:#?}");
    assert!(
        r.stdout.starts_with(&format!(
            "adopt: the schema of {shown} differs from the migrations V1..V4 (4 difference(s)); nothing was recorded\n{SEED_DIFFERENCES}"
        )),
        "{}",
        r.stdout
    );
    // The scratch database was made, used and dropped through the Data API.
    let sql: Vec<String> = server.calls_of("Execute").into_iter().filter_map(|c| c.sql).collect();
    let created = sql
        .iter()
        .find(|s| s.starts_with("CREATE DATABASE \"chatmigrate_scratch_"))
        .expect("CREATE DATABASE through the Data API");
    let name = created.trim_start_matches("CREATE DATABASE \"").trim_end_matches('"').to_string();
    assert!(
        sql.iter().any(|s| s.starts_with(&format!("DROP DATABASE IF EXISTS \"{name}\""))),
        "dropped through the Data API"
    );
    assert_eq!(
        query_url(&server_url(), &format!("SELECT count(*) FROM pg_database WHERE datname = '{name}'"))[0][0].as_deref(),
        Some("0")
    );
    assert_eq!(statements(&std::fs::read_to_string(&fix).unwrap()), SEED_FIX);
    let r = run(&["--migrations", fixes.path().to_str().unwrap(), "up"]);
    r.assert_ok();
    assert_eq!(db.scalar("SELECT count(*) FROM st_chat_history_table"), "2000");
    let r = run(&["adopt"]);
    r.assert_ok();
    assert_eq!(db.versions(), vec![1, 2, 3, 4]);
    let r = run(&["diff", "--exit-code"]);
    r.assert_ok();
    assert_eq!(
        r.stdout,
        format!("no drift: {shown} has the schema of its 4 applied migration(s) (V1..V4)\n")
    );
}

/// On a live Citus coordinator (CHATMIGRATE_TEST_CITUS_URL): the chat
/// schema made without a history is adopted with its distribution compared
/// (the scratch database is a one-node Citus on the coordinator), drift on a
/// distributed table is found, and the gate measures a distributed table by
/// its shards.
#[test]
fn live_citus_adopt_diff_and_gate() {
    let Some(live) = crate::support::citus::live("live_citus_adopt_diff_and_gate") else {
        return;
    };
    // live.dir holds the config (environment `citus`).
    let run = |dirs: &[&std::path::Path], args: &[&str]| {
        let mut full: Vec<String> = vec!["--color".into(), "never".into()];
        for d in dirs {
            full.push("--migrations".into());
            full.push(d.display().to_string());
        }
        full.extend(args.iter().map(|a| a.to_string()));
        live.run(&full.iter().map(String::as_str).collect::<Vec<_>>())
    };
    run(&[], &["up"]).assert_ok();
    // As if it had been made by hand: no history.
    for t in ["chatmigrate_history", "chatmigrate_history_log", "chatmigrate_history_lease"] {
        live.query(&format!("DROP TABLE IF EXISTS {t} CASCADE"));
    }
    let r = run(&[], &["up"]);
    assert_eq!(r.code, 2, "{r:#?}");
    assert!(
        r.error_line()
            .contains("object(s) that the pending migrations create already exist"),
        "{}",
        r.stderr
    );
    let r = run(&[], &["adopt"]);
    r.assert_ok();
    assert!(
        r.stdout.contains("matches the migrations V1..V8; recorded 8 migration(s)"),
        "{}",
        r.stdout
    );
    let r = run(&[], &["diff", "--exit-code"]);
    r.assert_ok();
    assert!(r.stdout.starts_with("no drift: "), "{}", r.stdout);
    live.query("CREATE INDEX idx_by_hand ON st_chat_history_table (themename)");
    let r = run(&[], &["diff", "--exit-code"]);
    assert_eq!(r.code, 1, "{r:#?}");
    assert!(
        r.stdout.contains("extra    index idx_by_hand on st_chat_history_table: CREATE INDEX idx_by_hand ON public.st_chat_history_table USING btree (themename)"),
        "{}",
        r.stdout
    );
    live.query("DROP INDEX idx_by_hand");
    // The gate on a distributed table: its shards' size.
    live.query("INSERT INTO st_chat_theme_table (themename) VALUES ('t') ON CONFLICT DO NOTHING");
    live.query(
        "INSERT INTO st_chat_history_table (userid, themename, chatid, userinput, botresponse) SELECT 'u' || (i % 1000), 't', i, 'question ' || i, 'answer ' || i FROM generate_series(1, 60000) i",
    );
    let extra = Dir::new();
    extra.write(
        "V9__theme_index.sql",
        "CREATE INDEX idx_st_chat_history_theme ON st_chat_history_table (themename);\n",
    );
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let (shipped, citus) = (root.join("migrations"), root.join("dialects/citus/migrations"));
    let r = run(&[&shipped, &citus, extra.path()], &["up"]);
    assert_eq!(r.code, 2, "{r:#?}");
    assert!(
        r.error_line().contains("; table st_chat_history_table holds about ")
            && r.error_line().contains("), above the gate's threshold of 10,000 rows or 10 MB"),
        "{}",
        r.stderr
    );
    assert_eq!(live.query("SELECT count(*) FROM chatmigrate_history")[0][0].as_deref(), Some("8"));
}

#[test]
fn the_scratch_database_is_dropped_on_sigint() {
    let (db, dir) = (Db::new(), Dir::new());
    dir.write("V1__t.sql", "CREATE TABLE t (a int);\n");
    dir.write("V2__slow.sql", "SELECT pg_sleep(60);\n");
    db.exec("CREATE TABLE t (a int)");
    let full = vec![
        "--database-url",
        &db.url,
        "--migrations",
        dir.path().to_str().unwrap(),
        "adopt",
        "--target",
        "2",
    ];
    let child = spawn_in(dir.path(), &full);
    let pid = child.id();
    // Wait until V2 runs in the scratch database.
    wait_until(60, "V2 running in the scratch database", || {
        query_url(
            &server_url(),
            &format!("SELECT count(*) FROM pg_stat_activity WHERE datname LIKE 'chatmigrate\\_scratch\\_{pid}\\_%' AND query LIKE '%pg_sleep(60)%'"),
        )[0][0]
            .as_deref()
            == Some("1")
    });
    signal(&child, "INT");
    let r = finish(child);
    assert_eq!(r.code, 130, "{r:#?}");
    assert_eq!(
        r.error_line(),
        "error: interrupted by SIGINT: 0 migration(s) applied in this run; the scratch database was dropped; nothing was recorded"
    );
    assert_eq!(scratch_left(pid), "0");
    assert!(!db.table_exists("chatmigrate_history"));
}

/// `change object table.name [attribute]` of each difference of a JSON diff.
fn summary(v: &serde_json::Value) -> Vec<String> {
    v["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            format!(
                "{} {} {}{}{}",
                d["change"].as_str().unwrap(),
                d["object"].as_str().unwrap(),
                d["table"].as_str().map(|t| format!("{t}.")).unwrap_or_default(),
                d["name"].as_str().unwrap(),
                d["attribute"].as_str().map(|a| format!(" [{a}]")).unwrap_or_default(),
            )
        })
        .collect()
}

/// The 50-migration history of gate.rs (enum, trigger function, generated
/// column, view, FKs, CHECKs, partial / GIN / BRIN / HNSW indexes) read
/// back from the database it made compares equal to the schema its files
/// make; then every kind of drift made by hand is found, with what changed,
/// directly and, the same, through the Data API.
#[test]
fn every_kind_of_drift_in_a_rich_schema_is_found() {
    let (db, dir) = (Db::new(), Dir::new());
    crate::gate::write_history(&dir);
    cm(&db, &dir, &["up"]).assert_ok();
    let r = cm(&db, &dir, &["diff", "--exit-code"]);
    r.assert_ok();
    assert_eq!(
        r.stdout,
        format!(
            "no drift: {} has the schema of its 50 applied migration(s) (V1..V50)\n",
            target(&db)
        )
    );
    for sql in [
        "ALTER TABLE message_tags DROP CONSTRAINT message_tags_tag_id_fkey, ADD CONSTRAINT message_tags_tag_id_fkey FOREIGN KEY (tag_id) REFERENCES tags (id) ON DELETE CASCADE",
        "ALTER TABLE tags DROP CONSTRAINT tags_name_not_blank, ADD CONSTRAINT tags_name_not_blank CHECK (name <> '') NOT VALID",
        "ALTER TABLE users DROP CONSTRAINT users_email_key",
        "DROP INDEX idx_audit_log_actor",
        "CREATE INDEX idx_audit_log_actor ON audit_log (actor) WHERE actor > 0",
        "CREATE INDEX idx_by_hand ON messages (conversation_id) INCLUDE (role)",
        "DROP INDEX idx_documents_hnsw",
        "CREATE INDEX idx_documents_hnsw ON documents USING hnsw (embedding vector_l2_ops)",
        "ALTER INDEX idx_tags_name RENAME TO tags_lower_name_idx",
        "ALTER TABLE message_embeddings DROP CONSTRAINT message_embeddings_dims",
        "ALTER TABLE message_embeddings ALTER COLUMN embedding TYPE vector(512)",
        "ALTER TABLE users ALTER COLUMN display_name SET NOT NULL",
        "ALTER TABLE tags ALTER COLUMN color DROP DEFAULT",
        "ALTER TABLE tags ADD COLUMN n int GENERATED ALWAYS AS IDENTITY",
        "ALTER TABLE messages ALTER COLUMN body_length SET EXPRESSION AS (octet_length(body))",
        "ALTER TYPE message_role ADD VALUE 'bot'",
        "CREATE TYPE pair AS (a int, b text)",
        "ALTER SEQUENCE tags_id_seq INCREMENT BY 10",
        "CREATE OR REPLACE FUNCTION touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.updated_at := clock_timestamp(); RETURN NEW; END $$",
        "DROP TRIGGER trg_conversations_touch ON conversations",
        "CREATE OR REPLACE VIEW conversation_stats AS SELECT c.id, count(m.id) AS messages, max(m.created_at) AS last_message_at, 1 AS one FROM conversations c LEFT JOIN messages m ON m.conversation_id = c.id GROUP BY c.id",
        "CREATE SCHEMA reporting",
        "CREATE MATERIALIZED VIEW reporting.daily AS SELECT count(*) AS n FROM messages",
    ] {
        db.exec(sql);
    }
    let r = cm(&db, &dir, &["--format", "json", "diff", "--exit-code"]);
    assert_eq!(r.code, 1, "{r:#?}");
    let direct: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(
        summary(&direct),
        [
            "extra schema reporting",
            "changed type message_role [definition]",
            "extra type pair",
            "changed sequence tags_id_seq [definition]",
            "changed column message_embeddings.embedding [type]",
            "changed column messages.body_length [generated]",
            "changed column tags.color [default]",
            "extra column tags.n",
            "changed column users.display_name [not_null]",
            "missing constraint message_embeddings.message_embeddings_dims",
            "changed constraint message_tags.message_tags_tag_id_fkey [definition]",
            "changed constraint tags.tags_name_not_blank [validated]",
            "missing constraint users.users_email_key",
            "changed index audit_log.idx_audit_log_actor [definition]",
            "changed index documents.idx_documents_hnsw [definition]",
            "extra index messages.idx_by_hand",
            "renamed index tags.idx_tags_name",
            "missing trigger conversations.trg_conversations_touch",
            "changed view conversation_stats [definition]",
            "extra materialized_view daily",
            "changed function touch_updated_at() [definition]",
        ]
    );
    // The catalog was read in two queries, whatever the number of tables.
    assert_eq!(direct["introspection"]["live"]["queries"], 2);
    assert_eq!(direct["introspection"]["expected"]["queries"], 2);
    let r = cm(&db, &dir, &["diff"]);
    r.assert_ok();
    for line in [
        "extra    schema reporting (the migrations do not make it)\n",
        "changed  type message_role: ENUM ('user', 'assistant', 'system', 'tool', 'bot') in the database, ENUM ('user', 'assistant', 'system', 'tool') in the migrations\n",
        "changed  column embedding on message_embeddings: type vector(512) in the database, vector(1024) in the migrations\n",
        "changed  column body_length on messages: GENERATED ALWAYS AS (octet_length(body)) STORED in the database, GENERATED ALWAYS AS (length(body)) STORED in the migrations\n",
        "changed  column color on tags: no default in the database, default 'gray'::text in the migrations\n",
        "extra    column n on tags: n integer GENERATED ALWAYS AS IDENTITY NOT NULL (the migrations do not make it)\n",
        "changed  constraint message_tags_tag_id_fkey on message_tags: FOREIGN KEY (tag_id) REFERENCES tags(id) ON DELETE CASCADE in the database, FOREIGN KEY (tag_id) REFERENCES tags(id) in the migrations\n",
        "changed  constraint tags_name_not_blank on tags: NOT VALID in the database, validated in the migrations\n",
        "changed  index idx_documents_hnsw on documents: CREATE INDEX idx_documents_hnsw ON public.documents USING hnsw (embedding vector_l2_ops) in the database, CREATE INDEX idx_documents_hnsw ON public.documents USING hnsw (embedding vector_cosine_ops) in the migrations\n",
        "extra    index idx_by_hand on messages: CREATE INDEX idx_by_hand ON public.messages USING btree (conversation_id) INCLUDE (role) (the migrations do not make it)\n",
        "changed  view conversation_stats: SELECT c.id, count(m.id) AS messages, max(m.created_at) AS last_message_at, 1 AS one FROM conversations c LEFT JOIN messages m ON m.conversation_id = c.id GROUP BY c.id; in the database, SELECT c.id, count(m.id) AS messages, max(m.created_at) AS last_message_at FROM conversations c LEFT JOIN messages m ON m.conversation_id = c.id GROUP BY c.id; in the migrations\n",
        "extra    materialized view reporting.daily: SELECT count(*) AS n FROM messages; (the migrations do not make it)\n",
    ] {
        assert!(r.stdout.contains(line), "{line}\n{}", r.stdout);
    }
    assert_eq!(r.stdout.lines().count(), 22, "{}", r.stdout);

    // Through the Data API: the same differences, read as text.
    let server = DataApiServer::start(&server_url(), Options::default());
    let conf = Dir::new();
    let config = conf.write(
        "chatmigrate.toml",
        format!("[environments.aurora]\n{}resume_timeout = \"20s\"\n", server.environment(&db.name)),
    );
    let r = run_in(
        conf.path(),
        &[
            "--config",
            config.to_str().unwrap(),
            "--env",
            "aurora",
            "--migrations",
            dir.path().to_str().unwrap(),
            "--format",
            "json",
            "diff",
            "--exit-code",
        ],
        &AWS_ENV,
    );
    assert_eq!(r.code, 1, "{r:#?}");
    let api: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(api["differences"], direct["differences"]);
    assert_eq!(api["introspection"]["live"]["queries"], 2);
}

/// A database with the 50-migration history's schema, made without
/// chatmigrate and changed by hand since (keys, constraints, NOT NULL,
/// defaults, columns, indexes of every kind, a table, a trigger, a view, a
/// function): `adopt --write-fix` writes one fix for all of it, `up` applies
/// it without losing a row, and `adopt` then records V1..V50.
#[test]
fn a_hand_changed_rich_schema_is_fixed_and_adopted() {
    let (db, dir, fixes) = (Db::new(), Dir::new(), Dir::new());
    crate::gate::write_history(&dir);
    cm(&db, &dir, &["up"]).assert_ok();
    db.exec("DROP TABLE chatmigrate_history, chatmigrate_history_log");
    for sql in [
        "INSERT INTO users (email) SELECT 'u' || i || '@example.com' FROM generate_series(1, 300) i",
        "INSERT INTO conversations (user_id, title) SELECT 1 + i % 300, 'c' || i FROM generate_series(1, 600) i",
        "INSERT INTO messages (conversation_id, role, body) SELECT 1 + i % 600, 'user', 'hello ' || i FROM generate_series(1, 3000) i",
        "INSERT INTO tags (name) SELECT 'tag' || i FROM generate_series(1, 20) i",
        "INSERT INTO message_tags SELECT i, 1 + i % 20 FROM generate_series(1, 500) i",
        // Constraints: a foreign key and a CHECK dropped, a UNIQUE dropped,
        // a foreign key's action changed, a CHECK left NOT VALID, one added.
        "ALTER TABLE message_tags DROP CONSTRAINT message_tags_tag_id_fkey",
        "ALTER TABLE documents DROP CONSTRAINT documents_author_id_fkey, ADD CONSTRAINT documents_author_id_fkey FOREIGN KEY (author_id) REFERENCES users (id) ON DELETE SET NULL",
        "ALTER TABLE users DROP CONSTRAINT users_email_not_blank",
        "ALTER TABLE users DROP CONSTRAINT users_email_key",
        "ALTER TABLE tags DROP CONSTRAINT tags_name_not_blank, ADD CONSTRAINT tags_name_not_blank CHECK (name <> '') NOT VALID",
        "ALTER TABLE tags ADD CONSTRAINT tags_name_key UNIQUE (name)",
        "ALTER TABLE conversations ADD CONSTRAINT conversations_title_set CHECK (title IS NOT NULL)",
        // NOT NULL and defaults.
        "ALTER TABLE users ALTER COLUMN email DROP NOT NULL",
        "ALTER TABLE conversations ALTER COLUMN title SET NOT NULL",
        "ALTER TABLE tags ALTER COLUMN color DROP DEFAULT",
        "ALTER TABLE users ALTER COLUMN display_name SET DEFAULT 'anonymous'",
        // A column dropped (and its index with it).
        "ALTER TABLE users DROP COLUMN locale",
        // Indexes: missing, extra, changed, renamed, an HNSW one missing.
        "DROP INDEX idx_messages_conversation",
        "CREATE INDEX idx_by_hand ON messages (created_at)",
        "DROP INDEX idx_conversations_titled",
        "CREATE INDEX idx_conversations_titled ON conversations (user_id) WHERE title <> ''",
        "ALTER INDEX idx_tags_name RENAME TO tags_lower_name_idx",
        "DROP INDEX idx_message_embeddings_hnsw",
        // A trigger, a function and a view.
        "DROP TRIGGER trg_conversations_touch ON conversations",
        "CREATE OR REPLACE FUNCTION touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$",
        "DROP VIEW conversation_stats",
        "CREATE VIEW conversation_stats AS SELECT c.id, count(m.id) AS messages FROM conversations c LEFT JOIN messages m ON m.conversation_id = c.id GROUP BY c.id",
        // A table dropped.
        "DROP TABLE audit_log",
        // What a fix cannot do safely: a column's type, an extra column.
        "ALTER TABLE documents ALTER COLUMN title TYPE varchar(100)",
        "ALTER TABLE documents ADD COLUMN legacy text",
    ] {
        db.exec(sql);
    }
    let counts = |db: &Db| -> Vec<String> {
        ["users", "conversations", "messages", "tags", "message_tags"]
            .iter()
            .map(|t| db.scalar(&format!("SELECT count(*) FROM {t}")))
            .collect()
    };
    assert_eq!(counts(&db), ["300", "600", "3000", "20", "500"]);
    let fix = fixes.path().join("V1__adopt_fix.sql");
    let r = cm(&db, &dir, &["adopt", "--target", "50", "--write-fix", fix.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{r:#?}");
    assert!(
        r.stdout.starts_with(&format!(
            "adopt: the schema of {} differs from the migrations V1..V50 (25 difference(s)); nothing was recorded\n",
            target(&db)
        )),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.ends_with(&format!(
            "wrote {}: 37 statement(s), 2 difference(s) left to do by hand (listed at its top); review it, apply it with `chatmigrate up --migrations {}`, then run `chatmigrate adopt --target 50` again\n",
            fix.display(),
            fixes.path().display()
        )),
        "{}",
        r.stdout
    );
    let text = std::fs::read_to_string(&fix).unwrap();
    for part in [
        "-- Not expressed here (do it by hand or in a migration of its own, then run `chatmigrate adopt` again):\n--   extra    column legacy on documents: legacy text (the migrations do not make it) (its data would be lost: drop it in a migration of its own once nothing uses it)\n--   changed  column title on documents: type character varying(100) in the database, text in the migrations (changing a column's type rewrites the table under an ACCESS EXCLUSIVE lock; see docs/rules/changing-column-type.md)\n",
        // The table, with its sequence, constraints, indexes, ownership.
        "CREATE SEQUENCE IF NOT EXISTS public.audit_log_id_seq AS bigint",
        "CREATE TABLE IF NOT EXISTS public.audit_log (id bigint DEFAULT nextval('audit_log_id_seq'::regclass) NOT NULL, at timestamp with time zone DEFAULT now() NOT NULL, actor bigint, action text NOT NULL, detail jsonb DEFAULT '{}'::jsonb, request_id uuid DEFAULT gen_random_uuid(), CONSTRAINT audit_log_pkey PRIMARY KEY (id));\nCREATE INDEX CONCURRENTLY IF NOT EXISTS idx_audit_log_actor ON public.audit_log USING btree (actor) WHERE (actor IS NOT NULL);\nCREATE INDEX CONCURRENTLY IF NOT EXISTS idx_audit_log_at ON public.audit_log USING brin (at);\n",
        "ALTER SEQUENCE public.audit_log_id_seq OWNED BY public.audit_log.id;\n",
        // NOT NULL proven by a CHECK first; defaults; a column.
        "ALTER TABLE public.users ADD CONSTRAINT users_email_not_null_chk CHECK (email IS NOT NULL) NOT VALID;\nALTER TABLE public.users VALIDATE CONSTRAINT users_email_not_null_chk;\nALTER TABLE public.users ALTER COLUMN email SET NOT NULL;\nALTER TABLE public.users DROP CONSTRAINT users_email_not_null_chk;\n",
        "ALTER TABLE public.conversations ALTER COLUMN title DROP NOT NULL;\n",
        "ALTER TABLE public.tags ALTER COLUMN color SET DEFAULT 'gray'::text;\n",
        "ALTER TABLE public.users ALTER COLUMN display_name SET DEFAULT ''::text;\n",
        "ALTER TABLE public.users ADD COLUMN IF NOT EXISTS locale text DEFAULT 'ja'::text NOT NULL;\n",
        // Constraints: UNIQUE through a concurrent index, CHECK and FK NOT VALID then validated.
        "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS users_email_key ON public.users USING btree (email);\nALTER TABLE public.users ADD CONSTRAINT users_email_key UNIQUE USING INDEX users_email_key;\n",
        "ALTER TABLE public.documents DROP CONSTRAINT IF EXISTS documents_author_id_fkey, ADD CONSTRAINT documents_author_id_fkey FOREIGN KEY (author_id) REFERENCES users(id) NOT VALID;\nALTER TABLE public.documents VALIDATE CONSTRAINT documents_author_id_fkey;\n",
        "ALTER TABLE public.message_tags ADD CONSTRAINT message_tags_tag_id_fkey FOREIGN KEY (tag_id) REFERENCES tags(id) NOT VALID;\nALTER TABLE public.message_tags VALIDATE CONSTRAINT message_tags_tag_id_fkey;\n",
        "ALTER TABLE public.tags VALIDATE CONSTRAINT tags_name_not_blank;\n",
        "ALTER TABLE public.users ADD CONSTRAINT users_email_not_blank CHECK (email <> ''::text) NOT VALID;\n",
        "ALTER TABLE public.conversations DROP CONSTRAINT IF EXISTS conversations_title_set;\n",
        "ALTER TABLE public.tags DROP CONSTRAINT IF EXISTS tags_name_key;\n",
        // Indexes.
        "SET maintenance_work_mem = '256MB';\nCREATE INDEX CONCURRENTLY IF NOT EXISTS idx_message_embeddings_hnsw ON public.message_embeddings USING hnsw (embedding vector_l2_ops);\nRESET maintenance_work_mem;\n",
        "DROP INDEX CONCURRENTLY IF EXISTS public.idx_by_hand;\n",
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_messages_conversation ON public.messages USING btree (conversation_id);\n",
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_conversations_titled_new ON public.conversations USING btree (user_id) WHERE (title IS NOT NULL);\nDROP INDEX CONCURRENTLY IF EXISTS public.idx_conversations_titled;\nALTER INDEX public.idx_conversations_titled_new RENAME TO idx_conversations_titled;\n",
        "ALTER INDEX IF EXISTS public.tags_lower_name_idx RENAME TO idx_tags_name;\n",
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_users_locale ON public.users USING btree (locale);\n",
        // The view, the function, the trigger.
        "CREATE OR REPLACE VIEW public.conversation_stats AS\n SELECT c.id,",
        "CREATE OR REPLACE FUNCTION public.touch_updated_at()",
        "CREATE TRIGGER trg_conversations_touch BEFORE UPDATE ON conversations FOR EACH ROW EXECUTE FUNCTION touch_updated_at();\n",
    ] {
        assert!(text.contains(part), "{part}\n---\n{text}");
    }
    // Applied with `up`: no row lost; what is left is what it listed.
    let r = cm(&db, &fixes, &["up"]);
    r.assert_ok();
    assert!(
        r.stdout.starts_with("applied V1 adopt_fix (no transaction, 37 statements, "),
        "{}",
        r.stdout
    );
    assert_eq!(counts(&db), ["300", "600", "3000", "20", "500"]);
    let r = cm(&db, &dir, &["--format", "json", "adopt"]);
    assert_eq!(r.code, 1, "{r:#?}");
    let v: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(v["version"], 50);
    assert_eq!(
        summary(&v),
        ["extra column documents.legacy", "changed column documents.title [type]"]
    );
    // Done by hand, as the fix said: now it is adopted.
    db.exec("ALTER TABLE documents DROP COLUMN legacy");
    db.exec("ALTER TABLE documents ALTER COLUMN title TYPE text");
    let r = cm(&db, &dir, &["adopt"]);
    r.assert_ok();
    assert_eq!(
        r.stdout,
        format!(
            "adopt: the schema of {} matches the migrations V1..V50; recorded 50 migration(s) as applied without running them\n",
            target(&db)
        )
    );
    assert_eq!(db.versions(), (1..=50).collect::<Vec<i64>>());
    cm(&db, &dir, &["diff", "--exit-code"]).assert_ok();
    assert_eq!(counts(&db), ["300", "600", "3000", "20", "500"]);
    // The restored trigger and function work.
    db.exec("UPDATE conversations SET updated_at = '2000-01-01', title = 'x' WHERE id = 1");
    assert_eq!(db.scalar("SELECT updated_at > '2001-01-01' FROM conversations WHERE id = 1"), "t");
}

/// A migration whose extension is missing (made by hand without it):
/// adopt names what is missing, and the fix creates the extension and the
/// index that needs it.
#[test]
fn a_missing_extension_is_written_into_the_fix() {
    let (db, dir, fixes) = (Db::new(), Dir::new(), Dir::new());
    dir.write(
        "V1__names.sql",
        "CREATE EXTENSION IF NOT EXISTS pg_trgm;\nCREATE TABLE names (id bigint PRIMARY KEY, name text NOT NULL);\n",
    );
    dir.write(
        "V2__trgm.sql",
        "-- chatmigrate:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS idx_names_trgm ON names USING gin (name gin_trgm_ops);\n",
    );
    db.exec("CREATE TABLE names (id bigint PRIMARY KEY, name text NOT NULL)");
    db.exec("INSERT INTO names SELECT i, 'name ' || i FROM generate_series(1, 1000) i");
    let r = cm(&db, &dir, &["adopt"]);
    r.assert_error(&format!(
        "adopt: no migration has all the objects it creates in {}: V1 creates extension pg_trgm, which it lacks",
        target(&db)
    ));
    assert_eq!(
        r.hint(),
        "hint: pass --target V to compare with the schema of the migrations up to V (with --write-fix FILE, a migration that makes what is missing)"
    );
    let fix = fixes.path().join("V1__adopt_fix.sql");
    let r = cm(&db, &dir, &["adopt", "--target", "2", "--write-fix", fix.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{r:#?}");
    assert!(
        r.stdout.contains("\nmissing  extension pg_trgm: pg_trgm ")
            && r.stdout.contains(
                "\nmissing  index idx_names_trgm on names: CREATE INDEX idx_names_trgm ON public.names USING gin (name gin_trgm_ops)\n"
            ),
        "{}",
        r.stdout
    );
    assert_eq!(
        statements(&std::fs::read_to_string(&fix).unwrap()),
        "CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public;\nCREATE INDEX CONCURRENTLY IF NOT EXISTS idx_names_trgm ON public.names USING gin (name gin_trgm_ops);\n"
    );
    cm(&db, &fixes, &["up"]).assert_ok();
    cm(&db, &dir, &["adopt"]).assert_ok();
    assert_eq!(db.versions(), vec![1, 2]);
    assert_eq!(db.scalar("SELECT count(*) FROM names"), "1000");
}
