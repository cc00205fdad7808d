-- Citus only (backend = "citus"; see docs/citus.md).
--
-- Adds the themes of rows written since V5, then checks the rows that
-- existed before V7's foreign keys. VALIDATE CONSTRAINT takes SHARE UPDATE
-- EXCLUSIVE: reads and writes go on while the shards are scanned.
--
-- Reading the distributed tables and then writing the reference table in
-- one transaction is what Citus refuses in parallel mode ("cannot modify
-- table ... because there was a parallel operation on a distributed
-- table"); chatmigrate runs transactional migrations in sequential mode.
INSERT INTO st_chat_theme_table (themename)
SELECT themename FROM st_chat_history_table
UNION
SELECT theme FROM st_chat_history_vector_table
ON CONFLICT DO NOTHING;

ALTER TABLE st_chat_history_table VALIDATE CONSTRAINT st_chat_history_theme_fkey;

ALTER TABLE st_chat_history_vector_table VALIDATE CONSTRAINT st_chat_history_vector_theme_fkey;
