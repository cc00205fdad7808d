-- Takes the migration lease, the same statement on every transport; never
-- waits on a lock. $1 owner, $2 holder (who, for the wait lines), $3 the
-- lease's time to live (NULL for a session holder), $4 the advisory lock
-- key, $5 true for a session holder (direct, Citus).
-- A session holder first takes the session advisory lock (kept across
-- polls; the server releases it with the session, even while a killed
-- runner's last statement still runs), then the lease with its server pid.
-- The lease is taken when no other session holds the advisory lock and it
-- is free, ours, held by a session that no longer holds the advisory lock,
-- or expired; a row locked by a Data API transaction (FOR KEY SHARE, see
-- lease_guard.sql) is skipped, so an abandoned transaction is waited for.
-- Answers: holds the advisory lock, took the lease, the lease row exists.
WITH me AS MATERIALIZED (
    SELECT CASE
        WHEN NOT $5 THEN false
        WHEN EXISTS (SELECT 1 FROM pg_locks k
                     WHERE k.locktype = 'advisory' AND k.pid = pg_backend_pid() AND k.granted AND k.objsubid = 1
                       AND ((k.classid::bigint << 32) | k.objid::bigint) = $4) THEN true
        ELSE pg_try_advisory_lock($4)
    END AS advisory
), free AS (
    SELECT l.name FROM {lease} l, me
    WHERE l.name = 'migrations' AND me.advisory = $5
      AND NOT EXISTS (SELECT 1 FROM pg_locks k
                      WHERE k.locktype = 'advisory' AND k.granted AND k.objsubid = 1 AND k.pid <> pg_backend_pid()
                        AND k.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                        AND ((k.classid::bigint << 32) | k.objid::bigint) = $4)
      AND (l.owner IS NULL OR l.owner = $1 OR l.pid IS NOT NULL OR l.expires_at IS NULL OR l.expires_at <= now())
    FOR UPDATE OF l SKIP LOCKED
), took AS (
    UPDATE {lease} l
    SET owner = $1, holder = $2, acquired_at = now(),
        pid = CASE WHEN $5 THEN pg_backend_pid() END, expires_at = now() + $3::interval
    FROM free WHERE l.name = free.name
    RETURNING l.owner
)
SELECT (SELECT advisory FROM me)::text, EXISTS (SELECT 1 FROM took)::text,
       EXISTS (SELECT 1 FROM {lease} WHERE name = 'migrations')::text
