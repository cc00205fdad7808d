-- The size expressions of dialects/postgres/live_tables.sql on Citus, for a
-- leaf `l`: a distributed or reference table's shell on the coordinator is
-- empty, so its shards are measured (citus_relation_size and
-- citus_total_relation_size ask every worker). First line: heap; second: total.
-- Third and fourth: the same when a worker cannot be reached (the coordinator
-- alone): a distributed or reference table's size is unknown (NULL).
CASE WHEN EXISTS (SELECT 1 FROM pg_dist_partition p WHERE p.logicalrelid = l.oid) THEN citus_relation_size(l.oid) ELSE pg_relation_size(l.oid) END
CASE WHEN EXISTS (SELECT 1 FROM pg_dist_partition p WHERE p.logicalrelid = l.oid) THEN citus_total_relation_size(l.oid) ELSE pg_total_relation_size(l.oid) END
CASE WHEN EXISTS (SELECT 1 FROM pg_dist_partition p WHERE p.logicalrelid = l.oid) THEN NULL ELSE pg_relation_size(l.oid) END
CASE WHEN EXISTS (SELECT 1 FROM pg_dist_partition p WHERE p.logicalrelid = l.oid) THEN NULL ELSE pg_total_relation_size(l.oid) END
