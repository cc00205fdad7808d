-- Citus only (backend = "citus"; see docs/citus.md).
--
-- Foreign keys from the distributed history tables to the reference table of
-- themes. NOT VALID: new rows are checked from now on; the rows already
-- there are checked by V8, which does not block writes.
ALTER TABLE st_chat_history_table
    ADD CONSTRAINT st_chat_history_theme_fkey
    FOREIGN KEY (themename) REFERENCES st_chat_theme_table (themename) NOT VALID;

ALTER TABLE st_chat_history_vector_table
    ADD CONSTRAINT st_chat_history_vector_theme_fkey
    FOREIGN KEY (theme) REFERENCES st_chat_theme_table (themename) NOT VALID;
