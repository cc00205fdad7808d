//! The shipped chat schema, from the embedded set, on a real server.

use crate::support::*;

#[test]
fn create_database_then_chat_schema_from_embedded_set() {
    let name = Db::fresh_name();
    let db = Db::adopt(&name);
    let r = cm_embedded(&db, &["up", "--create-database"]);
    r.assert_ok();
    assert!(r.stdout.starts_with(&format!("created database {name}\n")), "{}", r.stdout);
    for line in [
        "applied V1 st_chat_history_table (",
        "applied V2 vector_extension (",
        "applied V3 st_chat_history_vector_table (",
        "applied V4 st_chat_history_vector_hnsw (no transaction, 1 statement, ",
    ] {
        assert!(r.stdout.contains(line), "missing `{line}` in:\n{}", r.stdout);
    }
    assert_eq!(
        db.history(),
        vec![
            (1, "applied".into(), 3),
            (2, "applied".into(), 1),
            (3, "applied".into(), 1),
            (4, "applied".into(), 1)
        ]
    );

    // The seed's columns and types, with the (userid, primarykey) key.
    let cols = db.query(
        "SELECT column_name, format_type(atttypid, atttypmod), attnotnull::text, coalesce(pg_get_expr(adbin, adrelid), '')
         FROM information_schema.columns c
         JOIN pg_attribute a ON a.attrelid = 'st_chat_history_table'::regclass AND a.attname = c.column_name
         LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
         WHERE table_name = 'st_chat_history_table' ORDER BY ordinal_position",
    );
    let cols: Vec<String> = cols
        .iter()
        .map(|r| r.iter().map(|c| c.clone().unwrap_or_default()).collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        cols,
        vec![
            "primarykey bigint true nextval('st_chat_history_table_primarykey_seq'::regclass)",
            "userid text true ",
            "themename text true ",
            "chatid bigint true ",
            "userinput text false ",
            "botresponse text false ",
            "timestamp timestamp with time zone false now()",
        ]
    );
    assert_eq!(
        db.scalar(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'st_chat_history_table'::regclass AND contype = 'p'"
        ),
        "PRIMARY KEY (userid, primarykey)"
    );
    assert_eq!(
        db.scalar(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'st_chat_history_table'::regclass AND contype = 'c'"
        ),
        "CHECK ((chatid >= 0))"
    );
    // No UNIQUE on userid: many messages per user.
    assert_eq!(
        db.scalar("SELECT count(*) FROM pg_constraint WHERE conrelid = 'st_chat_history_table'::regclass AND contype = 'u'"),
        "0"
    );
    db.exec("INSERT INTO st_chat_history_table (userid, themename, chatid) VALUES ('u1', 't', 0), ('u1', 't', 1)");
    let idx = db.query("SELECT indexname FROM pg_indexes WHERE tablename = 'st_chat_history_table' ORDER BY 1");
    let idx: Vec<_> = idx.into_iter().map(|r| r[0].clone().unwrap()).collect();
    assert_eq!(
        idx,
        vec![
            "idx_st_chat_history_timestamp",
            "idx_st_chat_history_userid",
            "st_chat_history_table_pkey"
        ]
    );

    // pgvector and the vector table.
    assert_eq!(db.scalar("SELECT count(*) FROM pg_extension WHERE extname = 'vector'"), "1");
    assert_eq!(db.scalar("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'st_chat_history_vector_table'::regclass AND attname = 'chat_vector'"), "vector(1024)");
    let vcols: Vec<_> = db
        .query("SELECT column_name || ' ' || is_nullable FROM information_schema.columns WHERE table_name = 'st_chat_history_vector_table' ORDER BY ordinal_position")
        .into_iter()
        .map(|r| r[0].clone().unwrap())
        .collect();
    assert_eq!(
        vcols,
        vec![
            "primarykey NO",
            "userid NO",
            "theme NO",
            "chatid NO",
            "chat_summary NO",
            "metadata YES",
            "chat_vector NO"
        ]
    );
    assert_eq!(db.scalar("SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'st_chat_history_vector_table'::regclass AND contype = 'p'"), "PRIMARY KEY (userid, primarykey)");

    // The HNSW index: valid, vector_l2_ops, and used for nearest-neighbour search.
    let def = db.scalar("SELECT pg_get_indexdef('idx_st_chat_history_vector_hnsw'::regclass)");
    assert_eq!(
        def,
        "CREATE INDEX idx_st_chat_history_vector_hnsw ON public.st_chat_history_vector_table USING hnsw (chat_vector vector_l2_ops)"
    );
    assert_eq!(
        db.scalar("SELECT indisvalid::text FROM pg_index WHERE indexrelid = 'idx_st_chat_history_vector_hnsw'::regclass"),
        "true"
    );
    db.exec(
        "INSERT INTO st_chat_history_vector_table (userid, theme, chatid, chat_summary, chat_vector)
         SELECT 'u' || i, 't', i, 's', array_fill(i::real / 10, ARRAY[1024])::vector FROM generate_series(1, 10) i",
    );
    let nearest = db.scalar("SET enable_seqscan = off; SELECT chatid FROM st_chat_history_vector_table ORDER BY chat_vector <-> array_fill(0.31::real, ARRAY[1024])::vector LIMIT 1");
    assert_eq!(nearest, "3");

    // Every identifier lowercase without '.' or '-' (the seed's rule).
    let bad = db.scalar(
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'public' AND (c.relname <> lower(c.relname) OR c.relname ~ '[.-]')",
    );
    assert_eq!(bad, "0");

    // Second run: nothing to do, and status shows everything applied.
    let r = cm_embedded(&db, &["up"]);
    r.assert_ok();
    assert_eq!(
        r.stdout,
        format!("nothing to apply: postgres@127.0.0.1:{}/{name} is up to date\n", port())
    );
    let s = cm_embedded(&db, &["status", "--exit-code"]);
    s.assert_ok();
    assert!(
        s.stdout.ends_with(&format!("4 applied on postgres@127.0.0.1:{}/{name}\n", port())),
        "{}",
        s.stdout
    );
}
