-- chatmigrate:no-transaction
--
-- Undo of V4: the HNSW index goes, CONCURRENTLY (reads and writes of the
-- table go on), so statement by statement outside a transaction.
DROP INDEX CONCURRENTLY IF EXISTS idx_st_chat_history_vector_hnsw;
