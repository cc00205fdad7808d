-- chatmigrate:no-transaction
--
-- HNSW index for nearest-neighbour search on chat_vector. The application
-- stores normalised embeddings, so L2 order equals cosine order and the L2
-- class (vector_l2_ops, or halfvec_l2_ops for a halfvec column: the
-- embedding_type placeholder) serves cosine similarity (docs/schema.md).
--
-- Built CONCURRENTLY (writes continue during the build), so this file runs
-- statement by statement outside a transaction. On a populated table the
-- HNSW graph wants more maintenance_work_mem than the default 64MB:
-- chatmigrate plans it for this build from the table's size and sets it
-- around the statement (docs/vector-indexes.md; --dry-run shows it).

CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_st_chat_history_vector_hnsw
    ON st_chat_history_vector_table USING hnsw (chat_vector ${embedding_type}_l2_ops);
