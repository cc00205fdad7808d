SELECT version, name, checksum, status, statements_done, statements_total,
       extract(epoch FROM applied_at)::bigint,
       execution_ms, installed_by, tool_version, backend, out_of_order, error
FROM {history} ORDER BY version
