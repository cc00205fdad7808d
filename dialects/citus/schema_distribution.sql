-- The schema model on Citus (issue 13): how each table is distributed
-- (method, column, colocation group, replication model) and the ids of its
-- shards, whose tables and indexes on this node are Citus's, not the
-- schema's. One JSON object per table, as text.
SELECT json_build_object(
    'schema', n.nspname,
    'table', c.relname,
    'method', p.partmethod::text,
    'column', CASE WHEN p.partmethod = 'h' THEN column_to_column_name(p.logicalrelid, p.partkey) END,
    'colocation', p.colocationid,
    'replication', p.repmodel::text,
    'shards', coalesce((SELECT json_agg(s.shardid ORDER BY s.shardid) FROM pg_dist_shard s WHERE s.logicalrelid = p.logicalrelid), '[]')
)::text
FROM pg_dist_partition p
JOIN pg_class c ON c.oid = p.logicalrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
ORDER BY n.nspname, c.relname
LIMIT {limit} OFFSET {offset}
