-- The Data API heartbeat: extends a live lease; a row only while $1 holds it.
UPDATE {lease} SET expires_at = now() + $2::interval
WHERE name = 'migrations' AND owner = $1 AND pid IS NULL AND expires_at > now()
RETURNING owner
