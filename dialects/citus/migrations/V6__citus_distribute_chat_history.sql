-- chatmigrate:no-transaction
--
-- Citus only (backend = "citus"; see docs/citus.md).
--
-- The chat history and its vectors, distributed by userid (32 shards by
-- default, citus.shard_count) and colocated: a user's rows and vectors live
-- on the same worker, so joins and foreign keys by userid stay local. Both
-- primary keys are (userid, primarykey): on Citus a key must include the
-- distribution column. The indexes, the HNSW index included, are created on
-- every shard.
--
-- Outside a transaction, statement by statement: on a table that already
-- has rows chatmigrate sends create_distributed_table_concurrently, so
-- writes go on while the rows move (citus_distribute_concurrently). Each
-- call is skipped when the table is hash-distributed already, so a run that
-- stopped between the two resumes cleanly (a concurrent distribution that
-- failed half-way leaves a Citus local table, partmethod 'n', which the
-- next run distributes).
SELECT create_distributed_table('st_chat_history_table', 'userid')
WHERE NOT EXISTS (
    SELECT 1 FROM pg_dist_partition WHERE logicalrelid = 'st_chat_history_table'::regclass AND partmethod = 'h'
);

SELECT create_distributed_table('st_chat_history_vector_table', 'userid', colocate_with => 'st_chat_history_table')
WHERE NOT EXISTS (
    SELECT 1 FROM pg_dist_partition WHERE logicalrelid = 'st_chat_history_vector_table'::regclass AND partmethod = 'h'
);
