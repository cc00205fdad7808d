-- What planning a pgvector index build needs, read just before the build
-- (earlier migrations of the same run may have filled the table). $1: the
-- table as the statement names it (`t`, `s.t`); $2: the indexed column
-- (NULL for an expression). One row, every value text (the Data API
-- returns text): the server's version number and maintenance_work_mem (kB),
-- the table's row estimate (the planner's: reltuples scaled to the current
-- size once analyzed, else the statistics' live tuples, as the gate reads
-- it, dialects/postgres/live_tables.sql), its heap blocks, and the column's
-- type and type modifier (the dimensions). No row when the table does not
-- exist yet. Measuring the table takes an ACCESS SHARE lock on it: while
-- another session holds (or waits for) it in ACCESS EXCLUSIVE mode, its
-- blocks are read from the catalog instead (relpages, as of the last
-- VACUUM or ANALYZE), so planning never waits behind a lock; the build
-- itself then waits with its lock_timeout.
SELECT current_setting('server_version_num'),
       (SELECT setting FROM pg_settings WHERE name = 'maintenance_work_mem'),
       CASE WHEN c.relpages > 0 AND c.reltuples >= 0
            THEN ceil(c.reltuples / c.relpages * b.blocks)::bigint
            ELSE coalesce((SELECT s.n_live_tup FROM pg_stat_all_tables s WHERE s.relid = c.oid), 0) END,
       b.blocks,
       (SELECT t.typname FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
        WHERE a.attrelid = c.oid AND a.attname = $2 AND NOT a.attisdropped),
       (SELECT a.atttypmod FROM pg_attribute a
        WHERE a.attrelid = c.oid AND a.attname = $2 AND NOT a.attisdropped)
FROM pg_class c
CROSS JOIN LATERAL (
    SELECT CASE WHEN EXISTS (SELECT 1 FROM pg_locks k
                             WHERE k.locktype = 'relation' AND k.relation = c.oid
                               AND k.mode = 'AccessExclusiveLock' AND k.pid <> pg_backend_pid()
                               AND k.database = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database()))
                THEN c.relpages::bigint
                ELSE pg_relation_size(c.oid, 'main') / current_setting('block_size')::bigint END AS blocks
) b
WHERE c.oid = to_regclass(CASE WHEN position('.' IN $1) > 0
                               THEN quote_ident(split_part($1, '.', 1)) || '.' || quote_ident(split_part($1, '.', 2))
                               ELSE quote_ident($1) END)
