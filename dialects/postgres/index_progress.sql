-- While an index build runs longer than about two seconds: its progress,
-- read from a second, short-lived session (never the one that runs the
-- build and holds the migration lock), about once a second. The build is
-- server process $1 when it is known (a Data API statement that outlived
-- its call), else the session of this database running exactly the
-- statement $2 (pg_stat_activity keeps only its first
-- track_activity_query_size bytes: a prefix that long matches). The columns
-- are read as text: pid, phase, blocks done, blocks total, tuples done,
-- tuples total, lockers done, lockers total, then the session a
-- CONCURRENTLY build waits for (current_locker_pid joined with
-- pg_stat_activity: pid, application_name, usename, state, seconds since
-- its transaction began), seconds since the build began, the command, the
-- index (once known) and the table. No row: the build has not started
-- reporting, or has ended.
SELECT p.pid::text,
       p.phase,
       p.blocks_done::text, p.blocks_total::text,
       p.tuples_done::text, p.tuples_total::text,
       p.lockers_done::text, p.lockers_total::text,
       nullif(p.current_locker_pid, 0)::text,
       l.application_name, l.usename::text, l.state,
       floor(extract(epoch FROM clock_timestamp() - l.xact_start))::bigint::text,
       floor(extract(epoch FROM clock_timestamp() - a.query_start))::bigint::text,
       p.command,
       CASE WHEN p.index_relid <> 0 THEN p.index_relid::regclass::text END,
       p.relid::regclass::text
FROM pg_stat_progress_create_index p
JOIN pg_stat_activity a ON a.pid = p.pid
LEFT JOIN pg_stat_activity l ON l.pid = nullif(p.current_locker_pid, 0)
WHERE p.datname = current_database() AND p.pid <> pg_backend_pid()
  AND (p.pid = $1
       OR ($1 = 0
           AND (a.query = $2
                OR (octet_length(a.query) >= (SELECT setting::int FROM pg_settings WHERE name = 'track_activity_query_size') - 8
                    AND left($2, length(a.query)) = a.query))))
ORDER BY a.query_start
LIMIT 1
