-- `chatmigrate down` undid a migration: the repeatable migrations' rows go
-- (each logged, version 0, action repeatable-reset), so the next `up`
-- applies every R__ file again after the versioned ones; what an undo
-- dropped (a view on a dropped table) comes back with it.
WITH gone AS (
    DELETE FROM {repeatable} RETURNING name, checksum
)
INSERT INTO {log} (version, action, old_checksum, detail)
SELECT 0, 'repeatable-reset', checksum, 'R__' || name || ': applied again by the next up (down undid a migration)'
FROM gone
