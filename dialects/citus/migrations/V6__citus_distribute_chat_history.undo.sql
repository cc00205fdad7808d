-- chatmigrate:no-transaction
--
-- Undo of V6 (Citus): both tables become local tables of the coordinator
-- again (their rows are copied back from the shards). The colocated vector
-- table first; each statement does nothing when its table is not
-- distributed, so a stopped undo resumes safely.
SELECT undistribute_table('st_chat_history_vector_table')
WHERE EXISTS (
    SELECT 1 FROM pg_dist_partition WHERE logicalrelid = 'st_chat_history_vector_table'::regclass
);

SELECT undistribute_table('st_chat_history_table')
WHERE EXISTS (
    SELECT 1 FROM pg_dist_partition WHERE logicalrelid = 'st_chat_history_table'::regclass
);
