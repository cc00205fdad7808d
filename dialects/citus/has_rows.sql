-- Does a table that is about to be distributed hold rows? {table} is the
-- server's own regclass text for it (from table_state.sql), never user input.
SELECT EXISTS (SELECT 1 FROM {table})::text
