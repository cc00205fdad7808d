-- Before a resumed no-transaction migration sends its next statement: is
-- that exact statement ($1) still running in another session of this
-- database? A Data API runner killed during a statement sent with
-- continueAfterTimeout leaves it running on the server. The server process
-- and how long it has run, or no row. pg_stat_activity keeps only the first
-- track_activity_query_size bytes of a query: a prefix that long matches.
SELECT a.pid::text, greatest(0, floor(extract(epoch FROM clock_timestamp() - a.query_start)))::bigint::text
FROM pg_stat_activity a
WHERE a.datname = current_database() AND a.state = 'active' AND a.pid <> pg_backend_pid()
  AND (a.query = $1
       OR (octet_length(a.query) >= (SELECT setting::int FROM pg_settings WHERE name = 'track_activity_query_size') - 8
           AND left($1, length(a.query)) = a.query))
ORDER BY a.query_start
LIMIT 1
