//! The gate that knows the database (issue 13, points 1 and 2), through the
//! real binary on the real PostgreSQL, directly and through the Data API
//! test server:
//!
//! - a typical 50-migration history (tables, ADD COLUMN, btree / partial /
//!   GIN / BRIN indexes on tables made by earlier migrations, an enum, a
//!   trigger function, a generated column, a view, pgvector and two HNSW
//!   indexes) applies on an empty database with no refusal, while
//!   `chatmigrate lint` without a database keeps its conservative verdicts;
//! - with its last migration held back and its table filled past the
//!   threshold, `up` (and `lint --pending`, `verify`) refuses that
//!   migration with the table's estimated rows and size; a lower threshold
//!   in the config refuses sooner;
//! - rules whose statement would certainly fail refuse whatever the size;
//! - objects that pending migrations create and that exist already are
//!   refused before anything is written, listed with their file:line.

use crate::support::dataapi::{DataApiServer, Options};
use crate::support::*;

fn target(db: &Db) -> String {
    format!("postgres@127.0.0.1:{}/{}", port(), db.name)
}

/// The held-back migration: two plain index builds on `messages`.
pub const HELD_BACK: &str = "-- Lookups by role, and full-text search over bodies.\nCREATE INDEX idx_messages_role ON messages (role, created_at);\nCREATE INDEX idx_messages_body_fts ON messages USING gin (to_tsvector('simple', body));\n";

/// A typical history of 50 migrations, as a team writes it (each a
/// transactional file, indexes built plainly on tables made earlier).
pub fn history() -> Vec<(String, String)> {
    let mut v: Vec<&str> = vec![
        "CREATE TYPE message_role AS ENUM ('user', 'assistant', 'system');",
        "CREATE TABLE users (id bigserial PRIMARY KEY, email text NOT NULL, created_at timestamptz NOT NULL DEFAULT now());",
        "CREATE TABLE conversations (id bigserial PRIMARY KEY, user_id bigint NOT NULL REFERENCES users (id), title text, created_at timestamptz NOT NULL DEFAULT now());",
        "CREATE TABLE messages (id bigserial PRIMARY KEY, conversation_id bigint NOT NULL REFERENCES conversations (id), role message_role NOT NULL, body text NOT NULL, created_at timestamptz NOT NULL DEFAULT now());",
        "CREATE INDEX idx_messages_conversation ON messages (conversation_id);",
        "CREATE UNIQUE INDEX idx_users_email ON users (lower(email));",
        "ALTER TABLE users ADD COLUMN display_name text;",
        "ALTER TABLE messages ADD COLUMN token uuid DEFAULT gen_random_uuid();",
        "CREATE INDEX idx_messages_created_brin ON messages USING brin (created_at);",
        "ALTER TABLE messages ADD COLUMN metadata jsonb NOT NULL DEFAULT '{}';",
        "CREATE INDEX idx_messages_metadata ON messages USING gin (metadata jsonb_path_ops);",
        "CREATE INDEX idx_conversations_titled ON conversations (user_id) WHERE title IS NOT NULL;",
        "CREATE FUNCTION touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN\n    NEW.updated_at := now();\n    RETURN NEW;\nEND\n$$;",
        "ALTER TABLE conversations ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();",
        "CREATE TRIGGER trg_conversations_touch BEFORE UPDATE ON conversations FOR EACH ROW EXECUTE FUNCTION touch_updated_at();",
        "ALTER TABLE messages ADD COLUMN body_length integer GENERATED ALWAYS AS (length(body)) STORED;",
        "CREATE VIEW conversation_stats AS SELECT c.id, count(m.id) AS messages FROM conversations c LEFT JOIN messages m ON m.conversation_id = c.id GROUP BY c.id;",
        "CREATE EXTENSION IF NOT EXISTS vector;",
        "CREATE TABLE message_embeddings (message_id bigint PRIMARY KEY REFERENCES messages (id), embedding vector(1024) NOT NULL);",
        "CREATE INDEX idx_message_embeddings_hnsw ON message_embeddings USING hnsw (embedding vector_l2_ops);",
        "CREATE TABLE documents (id bigserial PRIMARY KEY, title text NOT NULL, body text NOT NULL);",
        "ALTER TABLE documents ADD COLUMN embedding vector(1024);",
        "CREATE INDEX idx_documents_hnsw ON documents USING hnsw (embedding vector_cosine_ops);",
        "ALTER TABLE users ADD CONSTRAINT users_email_not_blank CHECK (email <> '');",
        "ALTER TABLE conversations ADD CONSTRAINT conversations_title_length CHECK (length(title) <= 200);",
        "ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email);",
        "ALTER TABLE documents ALTER COLUMN title SET NOT NULL;",
        "ALTER TABLE users ALTER COLUMN display_name SET DEFAULT '';",
        "CREATE TABLE tags (id bigserial PRIMARY KEY, name text NOT NULL);",
        "CREATE TABLE message_tags (message_id bigint NOT NULL REFERENCES messages (id), tag_id bigint NOT NULL REFERENCES tags (id), PRIMARY KEY (message_id, tag_id));",
        "CREATE INDEX idx_message_tags_tag ON message_tags (tag_id);",
        "ALTER TABLE tags ADD COLUMN color text DEFAULT 'gray';",
        "CREATE UNIQUE INDEX idx_tags_name ON tags (lower(name));",
        "ALTER TABLE documents ADD COLUMN author_id bigint REFERENCES users (id);",
        "CREATE INDEX idx_documents_author ON documents (author_id);",
        "ALTER TYPE message_role ADD VALUE 'tool';",
        "CREATE INDEX idx_documents_fts ON documents USING gin (to_tsvector('simple', body));",
        "ALTER TABLE conversations ADD COLUMN archived boolean NOT NULL DEFAULT false;",
        "CREATE INDEX idx_conversations_open ON conversations (user_id, updated_at) WHERE NOT archived;",
        "CREATE TABLE audit_log (id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now(), actor bigint, action text NOT NULL, detail jsonb);",
        "CREATE INDEX idx_audit_log_at ON audit_log USING brin (at);",
        "ALTER TABLE audit_log ADD COLUMN request_id uuid DEFAULT gen_random_uuid();",
        "CREATE INDEX idx_audit_log_actor ON audit_log (actor) WHERE actor IS NOT NULL;",
        "ALTER TABLE audit_log ALTER COLUMN detail SET DEFAULT '{}';",
        "CREATE OR REPLACE VIEW conversation_stats AS SELECT c.id, count(m.id) AS messages, max(m.created_at) AS last_message_at FROM conversations c LEFT JOIN messages m ON m.conversation_id = c.id GROUP BY c.id;",
        "ALTER TABLE users ADD COLUMN locale text NOT NULL DEFAULT 'ja';",
        "CREATE INDEX idx_users_locale ON users (locale);",
        "ALTER TABLE message_embeddings ADD CONSTRAINT message_embeddings_dims CHECK (vector_dims(embedding) = 1024);",
        "ALTER TABLE tags ADD CONSTRAINT tags_name_not_blank CHECK (name <> '');",
    ];
    v.push(HELD_BACK);
    assert_eq!(v.len(), 50);
    v.into_iter()
        .enumerate()
        .map(|(i, sql)| (format!("V{}__step_{}.sql", i + 1, i + 1), format!("{sql}\n")))
        .collect()
}

pub fn write_history(dir: &Dir) {
    for (name, sql) in history() {
        dir.write(&name, sql);
    }
}

/// `812 bytes`, `64 kB`, `3.2 MB`: as chatmigrate prints sizes (units of 1024).
pub fn pretty(n: i64) -> String {
    let units = ["bytes", "kB", "MB", "GB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < units.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} bytes")
    } else if v < 10.0 && v.fract() >= 0.05 {
        format!("{v:.1} {}", units[u])
    } else {
        format!("{:.0} {}", v.round(), units[u])
    }
}

/// `20,000`.
pub fn thousands(n: i64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Fills `table` with `rows` rows (by `insert`, an INSERT ... SELECT over
/// generate_series(1, rows) as `i`), then VACUUM ANALYZE with autovacuum
/// off for it, so its size stays put while the test reads it.
pub fn fill(db: &Db, table: &str, rows: i64, insert: &str) {
    db.exec(&format!("ALTER TABLE {table} SET (autovacuum_enabled = false)"));
    db.exec(&insert.replace("{rows}", &rows.to_string()));
    db.exec(&format!("VACUUM ANALYZE {table}"));
}

/// What the gate says about a large table, as the test reads its size.
pub fn large(db: &Db, table: &str, rows: i64, threshold: &str) -> String {
    let bytes: i64 = db.scalar(&format!("SELECT pg_total_relation_size('{table}')")).parse().unwrap();
    format!(
        "table {table} holds about {} rows ({}), above the gate's threshold of {threshold}",
        thousands(rows),
        pretty(bytes)
    )
}

fn fill_messages(db: &Db, rows: i64) {
    db.exec("INSERT INTO users (email) SELECT 'u' || i || '@example.com' FROM generate_series(1, 100) i");
    db.exec("INSERT INTO conversations (user_id, title) SELECT 1 + i % 100, 'c' || i FROM generate_series(1, 500) i");
    fill(
        db,
        "messages",
        rows,
        "INSERT INTO messages (conversation_id, role, body) SELECT 1 + i % 500, 'user', 'hello ' || i FROM generate_series(1, {rows}) i",
    );
}

/// The refusal of the held-back V50 on a filled `messages`.
fn held_back_refusal(dir_shown: &str, note: &str) -> String {
    format!(
        "{dir_shown}:2:1: [require-concurrent-index-creation] CREATE INDEX without CONCURRENTLY locks table messages against writes (SHARE lock) until the build ends; {note} (`CREATE INDEX idx_messages_role ON messages (role, created_at)`)"
    )
}

#[test]
fn a_typical_history_applies_on_an_empty_database() {
    let (db, dir) = (Db::new(), Dir::new());
    write_history(&dir);
    // Without a database, lint stays conservative: tables made by earlier
    // migrations may hold rows.
    let r = run_in(
        dir.path(),
        &["--color", "never", "--migrations", dir.path().to_str().unwrap(), "lint"],
        &[],
    );
    assert_eq!(r.code, 1, "{r:#?}");
    let errors = r.stdout.matches(": error[").count();
    assert!(errors >= 14, "{errors} errors:\n{}", r.stdout);
    for rule in [
        "require-concurrent-index-creation",
        "pgvector-index-concurrently",
        "adding-field-with-default",
        "constraint-missing-not-valid",
        "disallowed-unique-constraint",
        "adding-not-nullable-field",
    ] {
        assert!(r.stdout.contains(&format!("error[{rule}]")), "{rule}:\n{}", r.stdout);
    }
    // With the database (empty): nothing to refuse.
    let r = cm(&db, &dir, &["lint", "--pending"]);
    r.assert_ok();
    let r = cm(&db, &dir, &["verify"]);
    r.assert_ok();
    let r = cm(&db, &dir, &["up"]);
    r.assert_ok();
    assert_eq!(db.versions(), (1..=50).collect::<Vec<i64>>());
    assert!(r.stdout.contains("50 migration(s) applied to "), "{}", r.stdout);
    // The trigger, the generated column, the enum value and the view work.
    db.exec("INSERT INTO users (email) VALUES ('a@example.com')");
    db.exec("INSERT INTO conversations (user_id, title) VALUES (1, 't')");
    db.exec("INSERT INTO messages (conversation_id, role, body) VALUES (1, 'tool', 'héllo')");
    assert_eq!(db.scalar("SELECT body_length FROM messages"), "5");
    assert_eq!(db.scalar("SELECT messages FROM conversation_stats"), "1");
}

#[test]
fn a_held_back_migration_on_a_filled_table_is_refused_with_its_size() {
    let (db, dir) = (Db::new(), Dir::new());
    write_history(&dir);
    cm(&db, &dir, &["up", "--target", "49"]).assert_ok();
    fill_messages(&db, 20_000);
    let note = large(&db, "messages", 20_000, "10,000 rows or 10 MB");
    let r = cm(&db, &dir, &["--color", "never", "up"]);
    r.assert_error(&held_back_refusal(&dir.shown("V50__step_50.sql"), &note));
    assert_eq!(
        r.hint(),
        "hint: build it CONCURRENTLY (writes go on), in a migration of its own that starts with `-- chatmigrate:no-transaction` (as shown below); 1 more finding(s) below; or accept it with `-- chatmigrate:ignore require-concurrent-index-creation -- <reason>` above the statement"
    );
    assert!(
        r.stderr.contains(&format!(
            "{}:3:1: error[require-concurrent-index-creation]: CREATE INDEX without CONCURRENTLY locks table messages against writes (SHARE lock) until the build ends; {note}\n",
            dir.shown("V50__step_50.sql")
        )),
        "{}",
        r.stderr
    );
    assert_eq!(r.stdout, "");
    assert_eq!(db.versions(), (1..=49).collect::<Vec<i64>>(), "nothing applied");
    assert_eq!(
        db.scalar("SELECT count(*) FROM pg_indexes WHERE indexname = 'idx_messages_role'"),
        "0"
    );
    // lint --pending and verify judge the same way, from the same sizes.
    let r = cm(&db, &dir, &["--color", "never", "lint", "--pending"]);
    assert_eq!(r.code, 1, "{r:#?}");
    assert!(r.stdout.contains(&note), "{}", r.stdout);
    let r = cm(&db, &dir, &["--color", "never", "verify"]);
    assert_eq!(r.code, 1, "{r:#?}");
    assert!(r.stdout.contains(&note), "{}", r.stdout);
    // A small table is no hazard: empty it and the same file applies.
    db.exec("TRUNCATE messages CASCADE");
    db.exec("VACUUM ANALYZE messages");
    cm(&db, &dir, &["up"]).assert_ok();
    assert_eq!(db.versions().len(), 50);
}

#[test]
fn the_threshold_is_a_setting() {
    let (db, dir, conf) = (Db::new(), Dir::new(), Dir::new());
    write_history(&dir);
    cm(&db, &dir, &["up", "--target", "49"]).assert_ok();
    fill_messages(&db, 500);
    // 500 rows: small for the default threshold ...
    let r = cm(&db, &dir, &["--color", "never", "lint", "--pending"]);
    r.assert_ok();
    // ... large above 100 rows.
    let config = conf.write(
        "chatmigrate.toml",
        format!(
            "[environments.t]\nurl = \"{}\"\nlint_large_table_rows = 100\nlint_large_table_mb = 1\n",
            db.url
        ),
    );
    let args = |extra: &[&str]| {
        let mut a = vec![
            "--color",
            "never",
            "--config",
            config.to_str().unwrap(),
            "--env",
            "t",
            "--migrations",
            dir.path().to_str().unwrap(),
        ];
        a.extend_from_slice(extra);
        a.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    let a = args(&["up"]);
    let r = run_in(conf.path(), &a.iter().map(String::as_str).collect::<Vec<_>>(), &[]);
    let note = large(&db, "messages", 500, "100 rows or 1 MB");
    r.assert_error(&held_back_refusal(&dir.shown("V50__step_50.sql"), &note));
    assert_eq!(db.versions().len(), 49);
    // Out of range: named where it is written.
    conf.write("chatmigrate.toml", "[environments.t]\nlint_large_table_mb = -1\n");
    let r = run_in(conf.path(), &["--config", config.to_str().unwrap(), "--env", "t", "status"], &[]);
    r.assert_error(&format!(
        "{}:2:23: lint_large_table_mb `-1` is out of range (0 to 1073741824)",
        config.display()
    ));
}

#[test]
fn certain_failures_refuse_whatever_the_size() {
    let (db, dir) = (Db::new(), Dir::new());
    // On a new, empty table: the server would refuse it in a transaction anyway.
    dir.write(
        "V1__t.sql",
        "CREATE TABLE t (a int);\nCREATE INDEX CONCURRENTLY idx_t_a ON t (a);\n",
    );
    let r = cm(&db, &dir, &["--color", "never", "up"]);
    assert_eq!(r.code, 2, "{r:#?}");
    assert!(r.error_line().contains("[transaction-incompatible]"), "{}", r.stderr);
    assert!(db.history().is_empty() && !db.table_exists("t"));
    // ADD COLUMN ... NOT NULL without a default fails on any row: refused
    // on a table with one row, far below the threshold; allowed on an empty one.
    dir.write("V1__t.sql", "CREATE TABLE t (a int);\n");
    cm(&db, &dir, &["up"]).assert_ok();
    dir.write("V2__b.sql", "ALTER TABLE t ADD COLUMN b int NOT NULL;\n");
    db.exec("INSERT INTO t VALUES (1)");
    db.exec("VACUUM ANALYZE t");
    let r = cm(&db, &dir, &["--color", "never", "up"]);
    let bytes: i64 = db.scalar("SELECT pg_total_relation_size('t')").parse().unwrap();
    r.assert_error(&format!(
        "{}:1:1: [adding-not-nullable-field] ADD COLUMN b NOT NULL without a DEFAULT fails as soon as t has a row (existing rows would hold NULL); table t holds about 1 rows ({}) (`ALTER TABLE t ADD COLUMN b int NOT NULL`)",
        dir.shown("V2__b.sql"),
        pretty(bytes)
    ));
    db.exec("DELETE FROM t");
    db.exec("VACUUM ANALYZE t");
    cm(&db, &dir, &["up"]).assert_ok();
    assert_eq!(db.versions(), vec![1, 2]);
}

#[test]
fn objects_that_exist_already_are_refused_before_anything_runs() {
    let (db, dir) = (Db::new(), Dir::new());
    dir.write(
        "V1__msg.sql",
        "-- Messages.\nCREATE TABLE msg (id bigserial PRIMARY KEY, body text);\n\nCREATE INDEX idx_msg_body ON msg (body);\n",
    );
    dir.write(
        "V2__more.sql",
        "CREATE TABLE IF NOT EXISTS other (a int);\nCREATE SEQUENCE msg_seq;\nCREATE TYPE mood AS ENUM ('ok');\nCREATE EXTENSION vector;\n",
    );
    dir.write("V3__drop.sql", "DROP TABLE msg;\nCREATE TABLE msg (a int);\n");
    // Made by hand, as the files would make them.
    db.exec("CREATE TABLE msg (id bigserial PRIMARY KEY, body text)");
    db.exec("CREATE INDEX idx_msg_body ON msg (body)");
    db.exec("CREATE TYPE mood AS ENUM ('ok')");
    db.exec("INSERT INTO msg (body) VALUES ('kept')");
    let (v1, v2) = (dir.shown("V1__msg.sql"), dir.shown("V2__more.sql"));
    let r = cm(&db, &dir, &["up"]);
    r.assert_error(&format!(
        "3 object(s) that the pending migrations create already exist in postgres@127.0.0.1:{}/{}: table msg ({v1}:2:1), index idx_msg_body on msg ({v1}:4:1), type mood ({v2}:3:1); nothing was applied",
        port(),
        db.name
    ));
    assert_eq!(
        r.hint(),
        "hint: this database was built without chatmigrate: `chatmigrate adopt` compares it with the migrations and records them as applied when they match, or shows what differs (docs/adopt.md)"
    );
    assert!(
        r.stderr.ends_with(&format!(
            "\n\n  table msg ({v1}:2:1)\n  index idx_msg_body on msg ({v1}:4:1)\n  type mood ({v2}:3:1)\n"
        )),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("fix the migration"), "{}", r.stderr);
    // Nothing written: no history table, the data as it was.
    assert!(!db.table_exists("chatmigrate_history"));
    assert!(!db.table_exists("other"));
    assert_eq!(db.scalar("SELECT body FROM msg"), "kept");
    // JSON lists them too.
    let r = cm(&db, &dir, &["--format", "json", "up"]);
    assert_eq!(r.code, 2);
    let v: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(v["error"]["kind"], "plan");
    assert_eq!(v["objects"][1]["kind"], "index");
    assert_eq!(v["objects"][1]["name"], "idx_msg_body");
    assert_eq!(v["objects"][1]["table"], "msg");
    assert_eq!(v["objects"][1]["location"], format!("{v1}:4:1"));
    // A dry run says the same, and also writes nothing.
    let r = cm(&db, &dir, &["up", "--dry-run"]);
    assert_eq!(r.code, 2);
    assert!(r
        .error_line()
        .starts_with("error: 3 object(s) that the pending migrations create already exist"));
}

/// Every kind of object `up` looks up: each one made by hand is listed
/// with its file:line, whatever its kind or schema. With a history (a
/// database that chatmigrate manages, where someone made the next
/// migration's object by hand), the refusal comes the same way, and again
/// nothing is written.
#[test]
fn every_kind_of_existing_object_is_listed() {
    let (db, dir) = (Db::new(), Dir::new());
    dir.write(
        "V1__kinds.sql",
        "CREATE SCHEMA app;
CREATE TABLE app.items (id bigint PRIMARY KEY, name text);
CREATE INDEX idx_items_name ON app.items (name);
CREATE SEQUENCE app.item_numbers;
CREATE VIEW app.item_names AS SELECT name FROM app.items;
CREATE MATERIALIZED VIEW app.item_count AS SELECT count(*) AS n FROM app.items;
CREATE TYPE app.color AS ENUM ('red', 'green');
CREATE TYPE app.pair AS (a int, b text);
CREATE DOMAIN app.positive AS integer CHECK (VALUE > 0);
CREATE FUNCTION app.item_name(p_id bigint) RETURNS text LANGUAGE sql AS 'SELECT name FROM app.items WHERE id = p_id';
CREATE PROCEDURE app.rename_item(p_id bigint, p_name text) LANGUAGE sql AS 'UPDATE app.items SET name = p_name WHERE id = p_id';
CREATE EXTENSION pg_trgm;
",
    );
    let v1 = std::fs::read_to_string(dir.path().join("V1__kinds.sql")).unwrap();
    db.exec(&v1);
    let r = cm(&db, &dir, &["up"]);
    let shown = dir.shown("V1__kinds.sql");
    r.assert_error(&format!(
        "12 object(s) that the pending migrations create already exist in {}: schema app ({shown}:1:1), table app.items ({shown}:2:1), index app.idx_items_name on app.items ({shown}:3:1), ...; nothing was applied",
        target(&db)
    ));
    let listed: Vec<&str> = r.stderr.lines().filter(|l| l.starts_with("  ")).collect();
    assert_eq!(
        listed,
        [
            format!("  schema app ({shown}:1:1)"),
            format!("  table app.items ({shown}:2:1)"),
            format!("  index app.idx_items_name on app.items ({shown}:3:1)"),
            format!("  sequence app.item_numbers ({shown}:4:1)"),
            format!("  view app.item_names ({shown}:5:1)"),
            format!("  materialized view app.item_count ({shown}:6:1)"),
            format!("  type app.color ({shown}:7:1)"),
            format!("  type app.pair ({shown}:8:1)"),
            format!("  type app.positive ({shown}:9:1)"),
            format!("  function app.item_name(int8) ({shown}:10:1)"),
            format!("  procedure app.rename_item(int8, text) ({shown}:11:1)"),
            format!("  extension pg_trgm ({shown}:12:1)"),
        ]
    );
    assert!(!db.table_exists("chatmigrate_history"));

    // A managed database: V1 recorded, V2's table made by hand meanwhile.
    let (managed, dir2) = (Db::new(), Dir::new());
    dir2.write("V1__a.sql", "CREATE TABLE a (id int);\n");
    cm(&managed, &dir2, &["up"]).assert_ok();
    dir2.write("V2__b.sql", "CREATE TABLE b (id int);\nCREATE INDEX idx_b ON b (id);\n");
    managed.exec("CREATE TABLE b (id int)");
    managed.exec("INSERT INTO b VALUES (7)");
    let r = cm(&managed, &dir2, &["up"]);
    r.assert_error(&format!(
        "1 object(s) that the pending migrations create already exist in {}: table b ({}:1:1); nothing was applied",
        target(&managed),
        dir2.shown("V2__b.sql")
    ));
    assert_eq!(managed.versions(), vec![1]);
    assert_eq!(managed.scalar("SELECT count(*) FROM pg_indexes WHERE indexname = 'idx_b'"), "0");
    assert_eq!(managed.scalar("SELECT id FROM b"), "7");
}

// ----- through the Data API test server -----

fn api_run(server: &DataApiServer, conf: &Dir, db: &str, dir: &Dir, args: &[&str]) -> Run {
    let config = conf.write(
        "chatmigrate.toml",
        format!("[environments.aurora]\n{}resume_timeout = \"20s\"\n", server.environment(db)),
    );
    let mut full = vec![
        "--color",
        "never",
        "--config",
        config.to_str().unwrap(),
        "--env",
        "aurora",
        "--migrations",
        dir.path().to_str().unwrap(),
    ];
    full.extend_from_slice(args);
    run_in(conf.path(), &full, &AWS_ENV)
}

#[test]
fn the_gate_through_the_data_api() {
    let server = DataApiServer::start(&server_url(), Options::default());
    let (db, dir, conf) = (Db::new(), Dir::new(), Dir::new());
    write_history(&dir);
    // The whole history on an empty database: no refusal.
    let r = api_run(&server, &conf, &db.name, &dir, &["up", "--target", "49"]);
    r.assert_ok();
    assert_eq!(db.versions(), (1..=49).collect::<Vec<i64>>());
    // V50 held back; messages filled past the threshold.
    fill_messages(&db, 20_000);
    let note = large(&db, "messages", 20_000, "10,000 rows or 10 MB");
    let r = api_run(&server, &conf, &db.name, &dir, &["up"]);
    r.assert_error(&held_back_refusal(&dir.shown("V50__step_50.sql"), &note));
    assert_eq!(db.versions().len(), 49);
    // The one query of the gate went through the Data API as text.
    let calls = server.calls_of("Execute");
    assert!(
        calls
            .iter()
            .any(|c| c.sql.as_deref().is_some_and(|s| s.contains("pg_total_relation_size"))),
        "the size query went through the Data API"
    );
    // Objects that exist: refused the same way.
    let other = Db::new();
    other.exec("CREATE TYPE message_role AS ENUM ('user')");
    let r = api_run(&server, &conf, &other.name, &dir, &["up"]);
    r.assert_error(&format!(
        "1 object(s) that the pending migrations create already exist in rds-data:chat/{}: type message_role ({}:1:1); nothing was applied",
        other.name,
        dir.shown("V1__step_1.sql")
    ));
    assert!(other.history().is_empty());
    // An empty database through the Data API: the whole history, no refusal.
    let fresh = Db::new();
    api_run(&server, &conf, &fresh.name, &dir, &["up"]).assert_ok();
    assert_eq!(fresh.versions().len(), 50);
}
