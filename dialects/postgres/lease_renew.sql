UPDATE {lease} SET expires_at = now() + $2::interval
WHERE name = 'migrations' AND owner = $1 AND expires_at >= now()
RETURNING owner
