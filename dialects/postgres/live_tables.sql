-- The gate of `up`, `lint --pending` and `verify`: the tables the pending
-- migrations touch and the objects they create, as the catalog has them, in
-- one query for the whole run. $1: table keys as the lint knows them (`t`,
-- `s.t`); $2 / $3: kinds and names of objects (relation, type, schema,
-- function, extension). Every value is text (the Data API returns text).
--
-- One row per table key: 'table', the key, whether it exists, its relkind,
-- estimated rows, whether the rows were estimated from the size, total
-- bytes (heap, TOAST, indexes) and heap bytes; a partitioned table sums its
-- leaves. Rows: the planner's estimate (reltuples scaled to the current
-- size) once analyzed, else the statistics' live tuples, else the heap size
-- over an estimated row width (32 bytes per variable-width column, as the
-- planner assumes). One row per object that exists: 'object', kind, name.
-- {heap} / {total} are the size expressions for one leaf `l` (Citus
-- replaces them for its distributed tables). Measuring a table takes an
-- ACCESS SHARE lock on it: a table that another session holds (or waits
-- for) in ACCESS EXCLUSIVE mode is measured from the catalog instead
-- (relpages of the table, its TOAST table and its indexes), so the gate
-- never waits behind a lock; `up` itself then waits with its lock_timeout.
WITH t AS (
    SELECT k.key,
           to_regclass(CASE WHEN position('.' IN k.key) > 0
                            THEN quote_ident(split_part(k.key, '.', 1)) || '.' || quote_ident(split_part(k.key, '.', 2))
                            ELSE quote_ident(k.key) END) AS rel
    FROM unnest($1::text[]) AS k(key)
), leaf AS (
    SELECT t.key, l.oid, l.relkind, l.reltuples, l.relpages,
           CASE WHEN x.locked THEN l.relpages::bigint * current_setting('block_size')::bigint ELSE {heap} END AS heap,
           CASE WHEN x.locked THEN current_setting('block_size')::bigint *
                    (SELECT coalesce(sum(p.relpages), 0)::bigint FROM pg_class p
                     WHERE p.oid = l.oid OR p.oid = l.reltoastrelid
                        OR p.oid IN (SELECT i.indexrelid FROM pg_index i WHERE i.indrelid = l.oid))
                ELSE {total} END AS total,
           coalesce(s.n_live_tup, 0) AS live_tup,
           (SELECT 28 + coalesce(sum(CASE WHEN a.attlen > 0 THEN a.attlen ELSE 32 END), 0)
            FROM pg_attribute a WHERE a.attrelid = l.oid AND a.attnum > 0 AND NOT a.attisdropped) AS width
    FROM t
    JOIN pg_class c ON c.oid = t.rel
    JOIN pg_class l ON l.oid = c.oid AND c.relkind <> 'p'
                    OR l.oid IN (SELECT p.relid FROM pg_partition_tree(c.oid) p WHERE p.isleaf AND c.relkind = 'p')
    LEFT JOIN pg_stat_all_tables s ON s.relid = l.oid
    CROSS JOIN LATERAL (
        SELECT EXISTS (SELECT 1 FROM pg_locks k
                       WHERE k.locktype = 'relation' AND k.relation = l.oid AND k.mode = 'AccessExclusiveLock'
                         AND k.database = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database())) AS locked
    ) x
), est AS (
    SELECT key, relkind, heap, total,
           CASE WHEN relpages > 0 AND reltuples >= 0
                THEN reltuples / relpages * (heap / current_setting('block_size')::bigint)
                WHEN live_tup > 0 THEN live_tup
                WHEN heap = 0 THEN 0
                ELSE (heap / current_setting('block_size')::bigint) * floor((current_setting('block_size')::bigint - 24) / width)
           END AS rows,
           NOT (relpages > 0 AND reltuples >= 0) AND live_tup = 0 AND heap > 0 AS estimated
    FROM leaf
)
SELECT 'table', t.key, (t.rel IS NOT NULL)::text,
       (SELECT relkind::text FROM pg_class WHERE oid = t.rel),
       round(sum(e.rows))::bigint::text, bool_or(e.estimated)::text,
       sum(e.total)::bigint::text, sum(e.heap)::bigint::text
FROM t LEFT JOIN est e ON e.key = t.key
GROUP BY t.key, t.rel
UNION ALL
SELECT 'object', o.kind, o.name, NULL, NULL, NULL, NULL, NULL
FROM unnest($2::text[], $3::text[]) AS o(kind, name)
WHERE CASE o.kind
          WHEN 'relation' THEN to_regclass(o.name) IS NOT NULL
          WHEN 'type' THEN to_regtype(o.name) IS NOT NULL
          WHEN 'schema' THEN to_regnamespace(o.name) IS NOT NULL
          WHEN 'function' THEN to_regprocedure(o.name) IS NOT NULL
          WHEN 'extension' THEN EXISTS (SELECT 1 FROM pg_extension WHERE extname = o.name)
          ELSE false
      END
