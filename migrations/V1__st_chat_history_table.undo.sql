-- Undo of V1 (`chatmigrate down`): the chat history table goes, with its
-- two indexes and every row in it.
DROP TABLE st_chat_history_table;
