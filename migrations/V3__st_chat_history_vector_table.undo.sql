-- Undo of V3: the vector table goes, with every row in it.
DROP TABLE st_chat_history_vector_table;
