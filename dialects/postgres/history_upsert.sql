INSERT INTO {history} AS h (version, name, checksum, status, statements_done, statements_total,
                            execution_ms, tool_version, backend, out_of_order, error)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
ON CONFLICT (version) DO UPDATE SET
    name = EXCLUDED.name, checksum = EXCLUDED.checksum, status = EXCLUDED.status,
    statements_done = EXCLUDED.statements_done, statements_total = EXCLUDED.statements_total,
    applied_at = EXCLUDED.applied_at, execution_ms = h.execution_ms + EXCLUDED.execution_ms,
    installed_by = EXCLUDED.installed_by, tool_version = EXCLUDED.tool_version, backend = EXCLUDED.backend,
    out_of_order = EXCLUDED.out_of_order, error = EXCLUDED.error
RETURNING h.execution_ms::text
