-- chatmigrate:no-transaction
--
-- HNSW index for nearest-neighbour search on chat_vector. The application
-- stores normalised embeddings, so L2 order equals cosine order and the L2
-- class (vector_l2_ops, or halfvec_l2_ops for a halfvec column: the
-- embedding_type placeholder) serves cosine similarity (docs/schema.md).
--
-- Built CONCURRENTLY (writes continue during the build), so this file runs
-- statement by statement outside a transaction; an HNSW build wants more
-- maintenance_work_mem than the default 64MB.
SET maintenance_work_mem = '256MB';

CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_st_chat_history_vector_hnsw
    ON st_chat_history_vector_table USING hnsw (chat_vector ${embedding_type}_l2_ops);

RESET maintenance_work_mem;
