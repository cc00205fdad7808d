-- One page of the history, in numeric version order. Every column is cast
-- to text for the output, so the ORDER BY names the table's column (`h.`):
-- a bare `version` would bind to the text output column and sort '10'
-- before '9', while the next page's cursor (`h.version > $1`) is numeric.
-- The columns `status` and the other commands read (not tool_version and
-- backend, which only the table keeps); applied_at as whole epoch seconds
-- through date_part (double precision), which the server turns into text
-- faster than extract's numeric.
SELECT h.version::text AS version, h.name, h.checksum, h.status, h.statements_done::text, h.statements_total::text,
       date_part('epoch', h.applied_at)::bigint::text,
       h.execution_ms::text, h.installed_by, h.out_of_order::text, h.error
FROM {history} h WHERE h.version > $1 ORDER BY h.version LIMIT $2
