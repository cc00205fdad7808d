-- A repeatable migration (R__ file) applied: its row, by name, takes the
-- checksum it ran with. The values are history_upsert.sql's ($2 name,
-- $3 checksum, $6 statements, $7 ms, $8 tool version, $9 backend); on the
-- Data API the VALUES line is replaced as there (lease_fence.sql). The
-- update takes its values from the proposed row only (EXCLUDED), as
-- history_upsert.sql does for Citus.
INSERT INTO {repeatable} AS r (name, checksum, statements_total, execution_ms, tool_version, backend)
SELECT v.name, v.checksum, v.total, v.ms, v.tool, v.backend FROM (
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
) AS v(version, name, checksum, status, done, total, ms, tool, backend, ooo, error)
ON CONFLICT (name) DO UPDATE SET
    checksum = EXCLUDED.checksum, statements_total = EXCLUDED.statements_total,
    applied_at = EXCLUDED.applied_at, execution_ms = EXCLUDED.execution_ms,
    installed_by = EXCLUDED.installed_by, tool_version = EXCLUDED.tool_version, backend = EXCLUDED.backend
RETURNING r.execution_ms::text
