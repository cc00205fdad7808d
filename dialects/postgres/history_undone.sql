-- `chatmigrate down`: the undo of version $1 is done. Its history row goes
-- and the history log says who undid it and when (old_checksum: the
-- migration's, new_checksum: the undo file's). Sent in the undo's own
-- transaction, or last after a no-transaction undo's statements. Returns
-- the removed row's execution_ms (no row: nothing was removed).
-- $1 version, $2 name, $3 undo checksum, $4 statements of the undo, $5 ms,
-- $6 backend.
WITH gone AS (
    DELETE FROM {history} WHERE version = $1 {fence}
    RETURNING version, checksum
), logged AS (
    INSERT INTO {log} (version, action, old_checksum, new_checksum, detail)
    SELECT version, 'undo', checksum, $3, 'undo of ' || $2 || ': ' || $4 || ' statement(s), ' || $5 || ' ms, backend ' || $6
    FROM gone
    RETURNING version
)
SELECT ($5)::text FROM logged
