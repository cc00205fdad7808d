-- Undo of V5 (Citus): the theme reference table goes (on every node).
DROP TABLE st_chat_theme_table;
