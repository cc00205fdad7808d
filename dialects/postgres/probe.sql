-- Asked once right after connecting, on every backend, in the same round
-- trip: is the server a replica (in recovery: a writer is waited for when
-- the run writes), is the session read-only (default_transaction_read_only,
-- and where it was set: a role, a database, the server's file), who and
-- where the session is (for the error that names the setting), and does the
-- history table exist. to_regclass answers NULL for a missing table or
-- schema instead of raising an error, so a first run on a new database logs
-- no ERROR. $1 is the history table's quoted, qualified name, $2 the
-- table of the applied repeatable migrations (R__ files). Where the
-- read-only setting comes from is looked up only for a read-only session:
-- pg_settings builds a row for every setting of the server, which costs
-- more than the rest of this query, on every command.
SELECT pg_is_in_recovery()::text,
       current_setting('transaction_read_only'),
       CASE WHEN current_setting('transaction_read_only') = 'on'
            THEN (SELECT source FROM pg_settings WHERE name = 'default_transaction_read_only') END,
       current_user::text,
       current_database()::text,
       (to_regclass($1) IS NOT NULL)::text,
       (to_regclass($2) IS NOT NULL)::text
