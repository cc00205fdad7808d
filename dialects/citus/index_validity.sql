-- After a CONCURRENTLY build or rebuild on Citus: what dialects/postgres/index_validity.sql
-- reads on the coordinator, and on a table Citus manages also every shard
-- placement's indexes (run_command_on_placements): a shard index the
-- workers left not valid or not ready, although the statement ended without
-- an error, fails the statement too. $1 / $2: the index's name and schema
-- (NULL: the current schema) of a CREATE INDEX or REINDEX INDEX; $3: the
-- table key of a REINDEX TABLE. One row per index: a name (for a shard's:
-- the shard index, its shard and worker), indisvalid, indisready; a
-- placement that could not be read is a row too (with its error).
WITH target AS (
    SELECT i.indrelid AS rel, c.relname AS idx
    FROM pg_index i
    JOIN pg_class c ON c.oid = i.indexrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relname = $1 AND n.nspname = coalesce($2, current_schema())
    UNION ALL
    SELECT to_regclass(CASE WHEN position('.' IN $3) > 0
                            THEN quote_ident(split_part($3, '.', 1)) || '.' || quote_ident(split_part($3, '.', 2))
                            ELSE quote_ident($3) END), NULL
), placement AS (
    SELECT t.idx, p.shardid, p.nodename, p.nodeport, p.success, p.result
    FROM target t
    JOIN pg_dist_partition d ON d.logicalrelid = t.rel,
    LATERAL run_command_on_placements(t.rel,
        $$SELECT coalesce(string_agg(c.relname || ' ' || i.indisvalid || ' ' || i.indisready, ';'), '')
          FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
          WHERE i.indrelid = '%s'::regclass AND (NOT i.indisvalid OR NOT i.indisready)$$) p
    WHERE t.rel IS NOT NULL
)
SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname), i.indisvalid::text, i.indisready::text
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE (NOT i.indisvalid OR NOT i.indisready)
  AND i.indexrelid IN (SELECT c2.oid FROM pg_class c2 JOIN pg_namespace n2 ON n2.oid = c2.relnamespace
                       WHERE c2.relname = $1 AND n2.nspname = coalesce($2, current_schema())
                       UNION ALL
                       SELECT i2.indexrelid FROM pg_index i2 JOIN target t ON t.rel = i2.indrelid AND t.idx IS NULL)
UNION ALL
SELECT 'shard index ' || split_part(e, ' ', 1) || ' (shard ' || p.shardid || ' on worker ' || p.nodename || ':' || p.nodeport || ')',
       split_part(e, ' ', 2), split_part(e, ' ', 3)
FROM placement p, unnest(string_to_array(p.result, ';')) e
WHERE p.success AND p.result <> '' AND (p.idx IS NULL OR split_part(e, ' ', 1) LIKE p.idx || '\_%')
UNION ALL
SELECT 'the indexes of shard ' || p.shardid || ' on worker ' || p.nodename || ':' || p.nodeport || ' could not be read: ' || p.result, 'false', 'false'
FROM placement p
WHERE NOT p.success
ORDER BY 1
