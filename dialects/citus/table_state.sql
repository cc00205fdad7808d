-- A table named in create_distributed_table, read just before the call is
-- sent: its name as the server prints it (NULL when it does not exist yet);
-- whether it is hash-distributed already (a Citus local table, left by a
-- failed concurrent distribution, is not); and what decides whether
-- create_distributed_table_concurrently can move its rows while writes go
-- on: whether it (every partition, for a partitioned table) can publish
-- UPDATE and DELETE to logical decoding (REPLICA IDENTITY FULL, or a
-- replica index: the primary key by default, the index of REPLICA IDENTITY
-- USING INDEX), this session's citus.shard_replication_factor, and the
-- tables that are not hash-distributed and have a foreign key to it (the
-- concurrent form refuses them; create_distributed_table does not).
WITH t AS (SELECT to_regclass($1) AS oid)
SELECT t.oid::regclass::text,
       EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = t.oid AND partmethod = 'h')::text,
       (SELECT coalesce(bool_and(c.relreplident = 'f' OR EXISTS (
                   SELECT 1 FROM pg_index i
                   WHERE i.indrelid = c.oid
                     AND CASE c.relreplident WHEN 'd' THEN i.indisprimary WHEN 'i' THEN i.indisreplident ELSE false END)), true)
          FROM pg_class c
         WHERE CASE WHEN (SELECT relkind FROM pg_class WHERE oid = t.oid) = 'p'
                    THEN c.oid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = t.oid)
                    ELSE c.oid = t.oid END)::text,
       current_setting('citus.shard_replication_factor'),
       (SELECT string_agg(DISTINCT f.conrelid::regclass::text, ', ')
          FROM pg_constraint f
         WHERE f.contype = 'f' AND f.confrelid = t.oid AND f.conrelid <> t.oid
           AND NOT EXISTS (SELECT 1 FROM pg_dist_partition p WHERE p.logicalrelid = f.conrelid AND p.partmethod = 'h'))
FROM t
