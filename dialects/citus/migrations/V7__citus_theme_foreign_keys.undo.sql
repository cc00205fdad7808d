-- Undo of V7 (Citus): the two foreign keys to the theme table go.
ALTER TABLE st_chat_history_vector_table DROP CONSTRAINT st_chat_history_vector_theme_fkey;

ALTER TABLE st_chat_history_table DROP CONSTRAINT st_chat_history_theme_fkey;
