-- Frees the lease ($1 = owner) and, for a session holder ($3), drops the
-- advisory lock ($2), in one statement.
WITH freed AS (
    UPDATE {lease} SET owner = NULL, pid = NULL, expires_at = NULL
    WHERE name = 'migrations' AND owner = $1
    RETURNING 1
)
SELECT (SELECT count(*) FROM freed)::text, CASE WHEN $3 THEN pg_advisory_unlock($2)::text END
