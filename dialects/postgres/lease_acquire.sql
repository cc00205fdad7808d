-- Take the lease when it is free or expired; a live lease is never stolen.
-- A row comes back only when this runner now holds it.
INSERT INTO {lease} AS l (name, owner, acquired_at, expires_at, holder)
VALUES ('migrations', $1, now(), now() + $2::interval, $3)
ON CONFLICT (name) DO UPDATE SET
    owner = EXCLUDED.owner, acquired_at = EXCLUDED.acquired_at,
    expires_at = EXCLUDED.expires_at, holder = EXCLUDED.holder
WHERE l.expires_at < now() OR l.owner = EXCLUDED.owner
RETURNING owner
