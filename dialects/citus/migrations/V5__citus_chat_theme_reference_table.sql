-- Citus only (backend = "citus"; see docs/citus.md).
--
-- The themes every user shares: a reference table, one shard copied to every
-- node, so the distributed history tables can join it and reference it with
-- a foreign key locally on each worker (V7). Filled with the themes the chat
-- tables already use; the application adds a theme before its first row
-- (INSERT ... ON CONFLICT DO NOTHING).
CREATE TABLE st_chat_theme_table (
    themename  text        PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now()
);

SELECT create_reference_table('st_chat_theme_table');

INSERT INTO st_chat_theme_table (themename)
SELECT themename FROM st_chat_history_table
UNION
SELECT theme FROM st_chat_history_vector_table
ON CONFLICT DO NOTHING;
