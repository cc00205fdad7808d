-- Before `up` waits for the migration lock on a session transport: is it
-- held by a server process that is building an index? A build left on the
-- server at an earlier run's deadline keeps the session, and with it the
-- advisory lock ($1, the lock key), until it ends: `up` then waits for the
-- build with its progress instead of for a lock it would time out on. The
-- server process, or no row.
SELECT p.pid::text
FROM pg_stat_progress_create_index p
JOIN pg_locks k ON k.pid = p.pid
WHERE p.datname = current_database() AND p.pid <> pg_backend_pid()
  AND k.locktype = 'advisory' AND k.granted AND k.objsubid = 1
  AND k.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND ((k.classid::bigint << 32) | k.objid::bigint) = $1
LIMIT 1
