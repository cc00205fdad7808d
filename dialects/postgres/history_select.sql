SELECT version, name, checksum, status, statements_done, statements_total,
       to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
       execution_ms, installed_by, tool_version, backend, out_of_order, error
FROM {history} ORDER BY version
