SELECT version::text, name, checksum, status, statements_done::text, statements_total::text,
       extract(epoch FROM applied_at)::bigint::text,
       execution_ms::text, installed_by, tool_version, backend, out_of_order::text, error
FROM {history} WHERE version > $1 ORDER BY version LIMIT $2
