-- The schema model, part 2 of 2 (issue 13): schemas, extensions with their
-- versions, types (enums, composites, domains, ranges), functions and
-- procedures (by signature, with their definition and its SHA-256), and
-- the session's schema search path; one JSON object per object, as text.
-- Left out: the system schemas and every extension member (pg_depend
-- deptype 'e'), array types and tables' row types.
WITH ns AS (
    SELECT n.oid, n.nspname FROM pg_namespace n
    WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
      AND n.nspname NOT LIKE 'pg\_temp\_%' AND n.nspname NOT LIKE 'pg\_toast\_temp\_%'
      AND NOT EXISTS (SELECT 1 FROM pg_depend d
                      WHERE d.classid = 'pg_namespace'::regclass AND d.objid = n.oid AND d.deptype = 'e')
), member AS (
    SELECT d.classid, d.objid FROM pg_depend d WHERE d.deptype = 'e'
), o AS (
    SELECT 0 AS ord, json_build_object('kind', 'search_path', 'names', to_json(current_schemas(false))) AS j
    UNION ALL
    SELECT 1, json_build_object('kind', 'schema', 'name', ns.nspname) FROM ns
    UNION ALL
    SELECT 2, json_build_object('kind', 'extension', 'name', e.extname, 'schema', n.nspname, 'version', e.extversion)
    FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
    UNION ALL
    SELECT 3, json_build_object(
        'kind', 'type', 'schema', ns.nspname, 'name', t.typname, 'type', t.typtype::text,
        'labels', CASE WHEN t.typtype = 'e' THEN
            (SELECT json_agg(e.enumlabel ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid) END,
        'attributes', CASE WHEN t.typtype = 'c' THEN
            (SELECT json_agg(json_build_array(a.attname, format_type(a.atttypid, a.atttypmod)) ORDER BY a.attnum)
             FROM pg_attribute a WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped) END,
        'base', CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod)
                     WHEN t.typtype = 'r' THEN (SELECT format_type(r.rngsubtype, NULL) FROM pg_range r WHERE r.rngtypid = t.oid) END,
        'not_null', t.typnotnull,
        'default', t.typdefault,
        'checks', CASE WHEN t.typtype = 'd' THEN
            (SELECT json_agg(pg_get_constraintdef(k.oid, true) ORDER BY k.conname) FROM pg_constraint k
             WHERE k.contypid = t.oid AND k.contype = 'c') END)
    FROM pg_type t JOIN ns ON ns.oid = t.typnamespace
    WHERE t.typtype IN ('e', 'c', 'd', 'r')
      AND (t.typtype <> 'c' OR (SELECT c.relkind FROM pg_class c WHERE c.oid = t.typrelid) = 'c')
      AND NOT EXISTS (SELECT 1 FROM member m WHERE m.classid = 'pg_type'::regclass AND m.objid = t.oid)
    UNION ALL
    SELECT 4, json_build_object(
        'kind', 'function', 'schema', ns.nspname, 'name', p.proname,
        'args', pg_get_function_identity_arguments(p.oid),
        'prokind', p.prokind::text,
        'returns', pg_get_function_result(p.oid),
        'definition', CASE WHEN p.prokind <> 'a' THEN pg_get_functiondef(p.oid) END,
        'hash', encode(sha256(convert_to(
            CASE WHEN p.prokind <> 'a' THEN pg_get_functiondef(p.oid)
                 ELSE (SELECT concat_ws(' ', a.aggtransfn, a.aggfinalfn, format_type(a.aggtranstype, NULL), a.agginitval)
                       FROM pg_aggregate a WHERE a.aggfnoid = p.oid) END, 'UTF8')), 'hex'))
    FROM pg_proc p JOIN ns ON ns.oid = p.pronamespace
    WHERE NOT EXISTS (SELECT 1 FROM member m WHERE m.classid = 'pg_proc'::regclass AND m.objid = p.oid)
)
SELECT o.j::text FROM o ORDER BY o.ord, o.j::text
LIMIT {limit} OFFSET {offset}
