-- One page of the history as `up` plans with it: only the columns planning
-- and resuming read (version, name, checksum, status, statements done,
-- execution time), in numeric version order (see history_select.sql). A
-- no-op `up` reads every row, so it asks for no more.
SELECT h.version::text AS version, h.name, h.checksum, h.status, h.statements_done::text, h.execution_ms::text
FROM {history} h WHERE h.version > $1 ORDER BY h.version LIMIT $2
