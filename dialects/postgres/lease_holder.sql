-- Who holds the migration lock, for the wait lines and the timeout error
-- ($1 the advisory lock key, $2 the lease table's name as text). One row:
--  0-6  the lease: owner, holder, server pid of a session holder, live,
--       acquired at, seconds to expiry (Data API holder), expired at;
--  7-10 another session holding the advisory lock (a session holder, or
--       a session of an older release or of another tool): pid,
--       application_name, client address, connected since;
--  11-14 a transaction holding a row lock on the lease table (a Data API
--       migration transaction, possibly abandoned by a killed runner): pid,
--       state, since, seconds since its last call ended.
SELECT l.owner, l.holder, l.pid::text,
       (l.owner IS NOT NULL AND CASE WHEN l.pid IS NOT NULL THEN adv.pid IS NOT DISTINCT FROM l.pid
                                     ELSE l.expires_at > now() END)::text,
       to_char(l.acquired_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
       greatest(0, ceil(extract(epoch FROM l.expires_at - now())))::bigint::text,
       to_char(l.expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
       adv.pid::text, adv.app, adv.client, adv.since,
       tx.pid::text, tx.state, tx.since, tx.idle::text
FROM (SELECT 1) AS one
LEFT JOIN {lease} l ON l.name = 'migrations'
LEFT JOIN LATERAL (
    SELECT a.pid, coalesce(a.application_name, '') AS app, coalesce(a.client_addr::text, 'local') AS client,
           to_char(a.backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS since
    FROM pg_locks k JOIN pg_stat_activity a ON a.pid = k.pid
    WHERE k.locktype = 'advisory' AND k.granted AND k.objsubid = 1 AND k.pid <> pg_backend_pid()
      AND k.database = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND ((k.classid::bigint << 32) | k.objid::bigint) = $1
    LIMIT 1
) adv ON true
LEFT JOIN LATERAL (
    SELECT a.pid, coalesce(a.state, '') AS state,
           to_char(a.state_change AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS since,
           greatest(0, floor(extract(epoch FROM clock_timestamp() - a.state_change)))::bigint AS idle
    FROM pg_locks k JOIN pg_stat_activity a ON a.pid = k.pid
    WHERE k.locktype = 'relation' AND k.relation = to_regclass($2) AND k.mode = 'RowShareLock'
      AND k.granted AND k.pid <> pg_backend_pid()
    ORDER BY a.xact_start NULLS LAST
    LIMIT 1
) tx ON true
