-- The schema model, part 1 of 2 (issue 13): every table, view, materialized
-- view, sequence and foreign table of the database, one JSON object per
-- relation, with a table's columns, constraints, indexes and triggers nested
-- in it, so the whole schema is read in a fixed number of queries. Every
-- value is text (the Data API returns text only).
--
-- Left out: the system schemas, extension members (pg_depend deptype 'e')
-- and what belongs to them, identity sequences (part of their column),
-- and the relations in $1 (chatmigrate's own tables, quoted and qualified)
-- with the sequences they own. NOT NULL constraints are the columns'
-- `not_null`; triggers cloned onto partitions are their parent's. Columns,
-- constraints, indexes and triggers are aggregated per table in one pass each
-- (not one subquery per table); an index's name comes quoted as
-- pg_get_indexdef writes it, so the part after ON is cut off without a second
-- call.
WITH skip AS (
    SELECT to_regclass(x) AS oid FROM unnest($1::text[]) AS x
), rel AS (
    SELECT c.oid, c.relname, c.relkind, c.relpersistence, c.relispartition, c.relpartbound, n.nspname
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
      AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
      AND n.nspname NOT LIKE 'pg\_temp\_%' AND n.nspname NOT LIKE 'pg\_toast\_temp\_%'
      AND c.oid NOT IN (SELECT oid FROM skip WHERE oid IS NOT NULL)
      AND NOT EXISTS (SELECT 1 FROM pg_depend d
                      WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                        AND (d.deptype = 'e'
                             OR (c.relkind = 'S' AND d.deptype IN ('a', 'i') AND d.refobjid IN (SELECT oid FROM skip))
                             OR (c.relkind = 'S' AND d.deptype = 'i')))
      AND NOT EXISTS (SELECT 1 FROM pg_depend d
                      WHERE d.classid = 'pg_namespace'::regclass AND d.objid = n.oid AND d.deptype = 'e')
), cols AS (
    SELECT a.attrelid AS oid,
           json_agg(json_build_object(
               'name', a.attname,
               'type', format_type(a.atttypid, a.atttypmod),
               'not_null', a.attnotnull,
               'default', CASE WHEN a.attgenerated = '' THEN pg_get_expr(ad.adbin, ad.adrelid) END,
               'generated', CASE WHEN a.attgenerated <> '' THEN pg_get_expr(ad.adbin, ad.adrelid) END,
               'generated_kind', nullif(a.attgenerated::text, ''),
               'identity', nullif(a.attidentity::text, ''),
               'collation', CASE WHEN a.attcollation <> ty.typcollation THEN
                   (SELECT co.collname FROM pg_collation co WHERE co.oid = a.attcollation) END)
               ORDER BY a.attnum) AS j
    FROM rel r
    JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
    JOIN pg_type ty ON ty.oid = a.atttypid
    LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
    WHERE r.relkind IN ('r', 'p', 'f')
    GROUP BY a.attrelid
), cons AS (
    SELECT k.conrelid AS oid,
           json_agg(json_build_object(
               'name', k.conname,
               'type', k.contype::text,
               'definition', regexp_replace(pg_get_constraintdef(k.oid, true), ' NOT VALID$', ''),
               'validated', k.convalidated,
               'columns', (SELECT json_agg(a.attname ORDER BY u.ord)
                           FROM unnest(k.conkey) WITH ORDINALITY AS u(attnum, ord)
                           JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.attnum),
               'references', CASE WHEN k.contype = 'f' THEN
                   (SELECT fn.nspname || '.' || f.relname FROM pg_class f
                    JOIN pg_namespace fn ON fn.oid = f.relnamespace WHERE f.oid = k.confrelid) END)
               ORDER BY k.conname) AS j
    FROM rel r
    JOIN pg_constraint k ON k.conrelid = r.oid AND k.contype IN ('p', 'u', 'c', 'f', 'x')
    WHERE r.relkind IN ('r', 'p', 'f')
    GROUP BY k.conrelid
), idx AS (
    SELECT i.indrelid AS oid,
           json_agg(json_build_object(
               'name', ic.relname,
               'quoted', quote_ident(ic.relname),
               'method', am.amname,
               'unique', i.indisunique,
               'valid', i.indisvalid,
               'definition', pg_get_indexdef(i.indexrelid),
               'constraint', k.conname)
               ORDER BY ic.relname) AS j
    FROM rel r
    JOIN pg_index i ON i.indrelid = r.oid
    JOIN pg_class ic ON ic.oid = i.indexrelid
    JOIN pg_am am ON am.oid = ic.relam
    LEFT JOIN pg_constraint k ON k.conindid = i.indexrelid AND k.conrelid = i.indrelid AND k.contype IN ('p', 'u', 'x')
    WHERE r.relkind IN ('r', 'p', 'm')
    GROUP BY i.indrelid
), trg AS (
    SELECT t.tgrelid AS oid,
           json_agg(json_build_object('name', t.tgname, 'definition', pg_get_triggerdef(t.oid, true)) ORDER BY t.tgname) AS j
    FROM rel r
    JOIN pg_trigger t ON t.tgrelid = r.oid AND NOT t.tgisinternal AND t.tgparentid = 0
    GROUP BY t.tgrelid
)
SELECT json_build_object(
    'schema', r.nspname,
    'name', r.relname,
    'kind', r.relkind::text,
    'unlogged', r.relpersistence = 'u',
    'partition_of', CASE WHEN r.relispartition THEN
        (SELECT pn.nspname || '.' || p.relname FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent
         JOIN pg_namespace pn ON pn.oid = p.relnamespace WHERE i.inhrelid = r.oid LIMIT 1) END,
    'partition_bound', CASE WHEN r.relispartition THEN pg_get_expr(r.relpartbound, r.oid) END,
    'partition_key', CASE WHEN r.relkind = 'p' THEN pg_get_partkeydef(r.oid) END,
    'view', CASE WHEN r.relkind IN ('v', 'm') THEN pg_get_viewdef(r.oid, true) END,
    'sequence', CASE WHEN r.relkind = 'S' THEN
        (SELECT json_build_object('type', format_type(s.seqtypid, NULL), 'start', s.seqstart::text,
                                  'increment', s.seqincrement::text, 'min', s.seqmin::text, 'max', s.seqmax::text,
                                  'cache', s.seqcache::text, 'cycle', s.seqcycle)
         FROM pg_sequence s WHERE s.seqrelid = r.oid) END,
    'owned_by', CASE WHEN r.relkind = 'S' THEN
        (SELECT tn.nspname || '.' || t.relname || '.' || a.attname
         FROM pg_depend d JOIN pg_class t ON t.oid = d.refobjid
         JOIN pg_namespace tn ON tn.oid = t.relnamespace
         JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid
         WHERE d.classid = 'pg_class'::regclass AND d.objid = r.oid AND d.deptype = 'a'
           AND d.refclassid = 'pg_class'::regclass AND d.refobjsubid > 0 LIMIT 1) END,
    'columns', CASE WHEN r.relkind IN ('r', 'p', 'f') THEN coalesce(cols.j, '[]') END,
    'constraints', CASE WHEN r.relkind IN ('r', 'p', 'f') THEN coalesce(cons.j, '[]') END,
    'indexes', CASE WHEN r.relkind IN ('r', 'p', 'm') THEN coalesce(idx.j, '[]') END,
    'triggers', CASE WHEN r.relkind IN ('r', 'p', 'v', 'f') THEN coalesce(trg.j, '[]') END
)::text
FROM rel r
LEFT JOIN cols ON cols.oid = r.oid
LEFT JOIN cons ON cons.oid = r.oid
LEFT JOIN idx ON idx.oid = r.oid
LEFT JOIN trg ON trg.oid = r.oid
ORDER BY r.nspname, r.relname
LIMIT {limit} OFFSET {offset}
