-- The pgvector indexes (HNSW, IVFFlat) a REINDEX rebuilds, so that their
-- builds can be planned like a CREATE INDEX (dialects/postgres/index_build_plan.sql
-- then reads each one's table). $1: the index of a REINDEX INDEX, $2: the
-- table of a REINDEX TABLE (as the statement names them: `t`, `s.t`; the
-- other NULL). One row per vector index, every value text: its table (as
-- schema.table), its access method, its storage options (pg_class.reloptions,
-- `m=24,ef_construction=100`), its first column's name in the table (NULL
-- for an expression), the type and type modifier the index stores (the
-- index's own attribute: the dimensions also for an expression), and
-- whether it is partial.
SELECT n.nspname || '.' || t.relname,
       a.amname,
       coalesce(array_to_string(c.reloptions, ','), ''),
       (SELECT ta.attname FROM pg_attribute ta
        WHERE ta.attrelid = i.indrelid AND ta.attnum = i.indkey[0] AND i.indkey[0] <> 0),
       (SELECT ty.typname FROM pg_attribute ia JOIN pg_type ty ON ty.oid = ia.atttypid
        WHERE ia.attrelid = i.indexrelid AND ia.attnum = 1),
       (SELECT ia.atttypmod FROM pg_attribute ia WHERE ia.attrelid = i.indexrelid AND ia.attnum = 1),
       (i.indpred IS NOT NULL)::text
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_am a ON a.oid = c.relam
JOIN pg_class t ON t.oid = i.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE a.amname IN ('hnsw', 'ivfflat')
  AND (i.indexrelid = to_regclass(CASE WHEN position('.' IN $1) > 0
                                       THEN quote_ident(split_part($1, '.', 1)) || '.' || quote_ident(split_part($1, '.', 2))
                                       ELSE quote_ident($1) END)
       OR i.indrelid = to_regclass(CASE WHEN position('.' IN $2) > 0
                                        THEN quote_ident(split_part($2, '.', 1)) || '.' || quote_ident(split_part($2, '.', 2))
                                        ELSE quote_ident($2) END))
ORDER BY c.relname
