//! Placeholders (`${name}`) through the real binary: values from the
//! config file, the environment's table and `--placeholder`; the built-ins;
//! what is substituted where; an unknown one refused at file:line:col
//! before anything runs; a changed value is not drift; `status -v` shows
//! the values. The shipped chat schema's embedding dimension: 1536 and
//! 3072 (halfvec) applied, 5000 refused naming HNSW's limit, and a database
//! that applied V3/V4 before they had placeholders is not drift. On the
//! direct backend and through the Data API test server.

use crate::support::both::Both;
use crate::support::dataapi::Options;
use crate::support::*;

const SET: &[(&str, &str)] = &[
    (
        "V1__schema.sql",
        "CREATE EXTENSION IF NOT EXISTS vector;\nCREATE SCHEMA ${app_schema};\nCREATE TABLE ${app_schema}.notes (id int, v vector(${embedding_dimensions}), origin text DEFAULT '${database}/${backend}', tag text DEFAULT '$${literal}');\n",
    ),
    (
        "V2__function.sql",
        "-- A function body is not scanned: its ${x} and $1 stay.\nCREATE FUNCTION ${app_schema}.greet(n text) RETURNS text LANGUAGE plpgsql AS $fn$\nBEGIN\n  RETURN 'hi ${x} ' || $1;\nEND\n$fn$;\n",
    ),
];

fn set() -> Dir {
    let dir = Dir::new();
    for (name, text) in SET {
        dir.write(name, text);
    }
    dir
}

/// One story on `env` of a `Both` config (`direct` or `aurora`).
fn story(env: &str, backend: &str) {
    let both = Both::start(Options::default());
    let db = Db::new();
    let conf = both.config(&db.name, &db.url, &[]);
    // The environment's values (TOML keys of [environments.X.placeholders]).
    let text = std::fs::read_to_string(&conf).unwrap();
    let text = text
        .replace(
            "[environments.aurora]",
            "[environments.aurora.placeholders]\napp_schema = \"app_a\"\nembedding_dimensions = 8\n\n[environments.aurora]",
        )
        .replace(
            "[environments.direct]",
            "[placeholders]\napp_schema = \"ignored\"\n\n[environments.direct.placeholders]\napp_schema = \"app_a\"\nembedding_dimensions = 8\n\n[environments.direct]",
        );
    std::fs::write(&conf, text).unwrap();
    let dir = set();
    let run = both.run(&db.name, env, &dir, &["up"]);
    run.assert_ok();
    assert_eq!(
        db.scalar("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'app_a.notes'::regclass AND attname = 'v'"),
        "vector(8)"
    );
    assert_eq!(
        db.scalar("SELECT pg_get_expr(adbin, adrelid) FROM pg_attrdef WHERE adrelid = 'app_a.notes'::regclass ORDER BY adnum LIMIT 1"),
        format!("'{}/{backend}'::text", db.name)
    );
    assert_eq!(
        db.scalar("SELECT pg_get_expr(adbin, adrelid) FROM pg_attrdef WHERE adrelid = 'app_a.notes'::regclass ORDER BY adnum DESC LIMIT 1"),
        "'${literal}'::text"
    );
    assert_eq!(db.scalar("SELECT app_a.greet('you')"), "hi ${x} you");
    // The checksum is the file's text before substitution.
    assert_eq!(
        db.scalar("SELECT checksum FROM chatmigrate_history WHERE version = 1"),
        chatmigrate::__private::migration::checksum(SET[0].1)
    );
    // Another value is not drift.
    let other = both.run(&db.name, env, &dir, &["--placeholder", "embedding_dimensions=16", "verify"]);
    other.assert_ok();
    both.run(
        &db.name,
        env,
        &dir,
        &["--placeholder", "embedding_dimensions=16", "status", "--exit-code"],
    )
    .assert_ok();
    // `status -v` shows every value and where it came from.
    let st = both.run(&db.name, env, &dir, &["--placeholder", "app_schema=app_b", "status", "-v"]);
    st.assert_ok();
    for line in [
        "placeholder app_schema = app_b (--placeholder)\n".to_string(),
        format!("placeholder backend = {backend} (built-in)\n"),
        format!("placeholder database = {} (built-in)\n", db.name),
        format!("placeholder embedding_dimensions = 8 ([environments.{env}.placeholders])\n"),
        "placeholder embedding_type = vector (default (dimensions up to 2000))\n".to_string(),
        "placeholder history_table = \"chatmigrate_history\" (built-in)\n".to_string(),
    ] {
        assert!(st.stdout.contains(&line), "{line} in\n{}", st.stdout);
    }
    let json = both.run(&db.name, env, &dir, &["--format", "json", "status", "-v"]);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert!(v["placeholders"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["name"] == "app_schema" && p["value"] == "app_a"));
    // An unknown placeholder: refused at its place, nothing runs.
    dir.write(
        "V3__more.sql",
        "CREATE TABLE app_a.more (id int);\nCREATE TABLE app_a.other (t text DEFAULT ${nope});\n",
    );
    let bad = both.run(&db.name, env, &dir, &["up"]);
    bad.assert_error(&format!("{}:2:42: unknown placeholder `${{nope}}`", dir.shown("V3__more.sql")));
    assert!(bad.hint().contains("--placeholder nope=<value>"), "{}", bad.hint());
    assert!(!db.table_exists("more"));
    assert_eq!(db.versions(), vec![1, 2]);
    // Given with the flag, it applies.
    both.run(&db.name, env, &dir, &["--placeholder", "nope='x'", "up"]).assert_ok();
    assert_eq!(db.versions(), vec![1, 2, 3]);
}

#[test]
fn placeholders_on_the_direct_backend() {
    story("direct", "postgres");
}

#[test]
fn placeholders_through_the_data_api() {
    story("aurora", "rds-data");
}

#[test]
fn the_user_built_in_and_bad_values() {
    let (db, dir) = (Db::new(), Dir::new());
    dir.write("V1__u.sql", "CREATE TABLE u (who text DEFAULT '${user}');\n");
    cm(&db, &dir, &["up"]).assert_ok();
    assert_eq!(
        db.scalar("SELECT pg_get_expr(adbin, adrelid) FROM pg_attrdef WHERE adrelid = 'u'::regclass"),
        "'postgres'::text"
    );
    cm(&db, &dir, &["--placeholder", "user=x", "status"])
        .assert_error("--placeholder user: `user` is built in (its value comes from the target): choose another name");
    let r = cm(&db, &dir, &["--placeholder", "no equals", "status"]);
    r.assert_error("--placeholder `no equals` is not name=value (a name is letters, digits and underscores)");
    dir.write("V2__bad.sql", "SELECT '${not-a-name}';\n");
    let r = cm(&db, &dir, &["up"]);
    r.assert_error(&format!(
        "{}:1:9: `${{` starts a placeholder, but `${{not-a-name}}';` is not one (${{name}}: letters, digits and underscores)",
        dir.shown("V2__bad.sql")
    ));
    assert_eq!(r.hint(), "hint: write $${ for a literal ${");
}

/// The chat schema with the dimension of another model, on `env`.
fn chat_schema(env: &str) {
    let both = Both::start(Options::default());
    // 1536 (OpenAI text-embedding-3-small): vector.
    let db = Db::new();
    both.config(&db.name, &db.url, &[]);
    let empty = Dir::new();
    let conf = both.conf.path().join(format!("{}.toml", db.name));
    let run = |args: &[&str]| {
        let mut full = vec!["--config", conf.to_str().unwrap(), "--env", env];
        full.extend_from_slice(args);
        run_in(empty.path(), &full, &AWS_ENV)
    };
    run(&["--placeholder", "embedding_dimensions=1536", "up"]).assert_ok();
    assert_eq!(
        db.scalar("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'st_chat_history_vector_table'::regclass AND attname = 'chat_vector'"),
        "vector(1536)"
    );
    // 3072 (OpenAI text-embedding-3-large): halfvec, and its HNSW class.
    let db2 = Db::new();
    both.config(&db2.name, &db2.url, &[]);
    let conf2 = both.conf.path().join(format!("{}.toml", db2.name));
    let run2 = |args: &[&str]| {
        let mut full = vec!["--config", conf2.to_str().unwrap(), "--env", env];
        full.extend_from_slice(args);
        run_in(empty.path(), &full, &AWS_ENV)
    };
    run2(&["--placeholder", "embedding_dimensions=3072", "up"]).assert_ok();
    assert_eq!(
        db2.scalar("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'st_chat_history_vector_table'::regclass AND attname = 'chat_vector'"),
        "halfvec(3072)"
    );
    assert!(db2
        .scalar("SELECT pg_get_indexdef('idx_st_chat_history_vector_hnsw'::regclass)")
        .ends_with("USING hnsw (chat_vector halfvec_l2_ops)"));
    // Above HNSW's limit: refused before anything runs.
    let db3 = Db::new();
    both.config(&db3.name, &db3.url, &[]);
    let conf3 = both.conf.path().join(format!("{}.toml", db3.name));
    let mut full = vec!["--config", conf3.to_str().unwrap(), "--env", env];
    full.extend(["--placeholder", "embedding_dimensions=5000", "up"]);
    let r = run_in(empty.path(), &full, &AWS_ENV);
    r.assert_error("--placeholder embedding_dimensions: 5000 dimensions are above HNSW's limit of 4000 (for halfvec; 2000 for vector)");
    assert!(!db3.table_exists("chatmigrate_history") && !db3.table_exists("st_chat_history_table"));
    let mut full = vec!["--config", conf3.to_str().unwrap(), "--env", env];
    full.extend([
        "--placeholder",
        "embedding_dimensions=3072",
        "--placeholder",
        "embedding_type=vector",
        "up",
    ]);
    let r = run_in(empty.path(), &full, &AWS_ENV);
    r.assert_error("--placeholder embedding_type: 3072 dimensions are above HNSW's limit of 2000 for vector: use halfvec (up to 4000), or leave embedding_type out");
    assert!(!db3.table_exists("chatmigrate_history"));
}

#[test]
fn chat_schema_dimensions_direct() {
    chat_schema("direct");
}

#[test]
fn chat_schema_dimensions_data_api() {
    chat_schema("aurora");
}

/// A database that applied V3 and V4 as they were before the placeholders
/// (`vector(1024)`, `vector_l2_ops`): its history holds their earlier
/// checksums, which the shipped files accept.
#[test]
fn the_chat_schema_applied_before_placeholders_is_not_drift() {
    let db = Db::new();
    cm_embedded(&db, &["up"]).assert_ok();
    db.exec(
        "UPDATE chatmigrate_history SET checksum = CASE version \
         WHEN 3 THEN 'sha256:b50d0a7618118e5d501a8339cae071ea62c4953ab29fa617ec9aca19437613f9' \
         WHEN 4 THEN 'sha256:109c1b17e82d60b5167dc9cfe50e427735a1731e5973c8a216f8f7803e0833d4' ELSE checksum END",
    );
    cm_embedded(&db, &["verify"]).assert_ok();
    cm_embedded(&db, &["status", "--exit-code"]).assert_ok();
    let up = cm_embedded(&db, &["up"]);
    up.assert_ok();
    assert!(up.stdout.starts_with("nothing to apply"), "{}", up.stdout);
    // Any other checksum still is drift.
    db.exec("UPDATE chatmigrate_history SET checksum = 'sha256:00' WHERE version = 3");
    assert_eq!(cm_embedded(&db, &["verify"]).code, 1);
}

/// The chat schema with 1536 dimensions on the live Citus coordinator
/// (CHATMIGRATE_TEST_CITUS_URL): the distributed vector table has them.
#[test]
fn live_citus_chat_schema_dimensions() {
    let Some(l) = crate::support::citus::live("live_citus_chat_schema_dimensions") else {
        return;
    };
    l.run(&["--placeholder", "embedding_dimensions=1536", "up"]).assert_ok();
    assert_eq!(
        l.scalar("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'st_chat_history_vector_table'::regclass AND attname = 'chat_vector'"),
        "vector(1536)"
    );
    assert_eq!(
        l.scalar("SELECT partmethod FROM pg_dist_partition WHERE logicalrelid = 'st_chat_history_vector_table'::regclass"),
        "h"
    );
    l.run(&["status", "--exit-code"]).assert_ok();
    l.reset();
}

/// `CHATMIGRATE_PLACEHOLDER_<NAME>` gives `${name}` a value with no config
/// file (a Lambda's environment): over the config file, under
/// `--placeholder`; `status -v` names the variable; a bad name is refused
/// naming it, before anything runs.
#[test]
fn placeholders_from_environment_variables() {
    let (db, dir) = (Db::new(), Dir::new());
    dir.write("V1__t.sql", "CREATE TABLE ${table_name} (id int, label text DEFAULT '${label}');\n");
    let env = [
        ("CHATMIGRATE_PLACEHOLDER_TABLE_NAME", "from_env"),
        ("CHATMIGRATE_PLACEHOLDER_LABEL", "env"),
    ];
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let mut full: Vec<&str> = vec!["--database-url", &db.url, "--migrations", dir.path().to_str().unwrap()];
        full.extend_from_slice(args);
        run_in(dir.path(), &full, env)
    };
    // Without a value: the unknown placeholder, named at its place.
    run(&["up"], &[]).assert_error(&format!("{}:1:14: unknown placeholder `${{table_name}}`", dir.shown("V1__t.sql")));
    let st = run(&["--placeholder", "label=flag", "status", "-v"], &env);
    st.assert_ok();
    assert!(
        st.stdout
            .contains("placeholder table_name = from_env (CHATMIGRATE_PLACEHOLDER_TABLE_NAME)\n"),
        "{}",
        st.stdout
    );
    assert!(st.stdout.contains("placeholder label = flag (--placeholder)\n"), "{}", st.stdout);
    run(&["up"], &env).assert_ok();
    assert_eq!(
        db.scalar("SELECT column_default FROM information_schema.columns WHERE table_name = 'from_env' AND column_name = 'label'"),
        "'env'::text"
    );
    // Over the config file's value.
    let conf = Dir::new();
    let conf = conf.write("chatmigrate.toml", "[placeholders]\nlabel = \"file\"\ntable_name = \"from_file\"\n");
    let st = run(&["--config", conf.to_str().unwrap(), "--format", "json", "status", "-v"], &env);
    let v: serde_json::Value = serde_json::from_str(&st.stdout).unwrap();
    let label = v["placeholders"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "label")
        .unwrap()
        .clone();
    assert_eq!(
        label,
        serde_json::json!({"name": "label", "value": "env", "from": "CHATMIGRATE_PLACEHOLDER_LABEL"})
    );
    // A name that is not one.
    let r = run(&["up"], &[("CHATMIGRATE_PLACEHOLDER_9LIVES", "x")]);
    r.assert_error(
        "CHATMIGRATE_PLACEHOLDER_9LIVES 9lives: a placeholder's name is letters, digits and underscores, not starting with a digit",
    );
    assert_eq!(db.versions(), vec![1]);
}
