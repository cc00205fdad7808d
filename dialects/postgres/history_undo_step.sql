-- `chatmigrate down`, a no-transaction undo: statement $4 of its $5 is done
-- (action undo-step), or failed (undo-failed, with the error), logged so a
-- later `down` resumes after the statements done. The history row stays
-- as it is until the undo ends. $1 version, $2 action, $3 undo checksum,
-- $4 statements done, $5 statements of the undo, $6 error.
INSERT INTO {log} (version, action, old_checksum, new_checksum, detail)
SELECT $1, $2, h.checksum, $3, $4 || '/' || $5 || coalesce(': ' || $6, '')
FROM {history} h WHERE h.version = $1 {fence}
RETURNING version::text
