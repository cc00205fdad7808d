-- One page of the history, in numeric version order. Every column is cast
-- to text for the output, so the ORDER BY names the table's column (`h.`):
-- a bare `version` would bind to the text output column and sort '10'
-- before '9', while the next page's cursor (`h.version > $1`) is numeric.
SELECT h.version::text AS version, h.name, h.checksum, h.status, h.statements_done::text, h.statements_total::text,
       extract(epoch FROM h.applied_at)::bigint::text,
       h.execution_ms::text, h.installed_by, h.tool_version, h.backend, h.out_of_order::text, h.error
FROM {history} h WHERE h.version > $1 ORDER BY h.version LIMIT $2
