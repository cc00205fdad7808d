-- An index's state after a CONCURRENTLY build the Data API timed out on:
-- 'valid', 'invalid', or no row (not there).
SELECT CASE WHEN i.indisvalid THEN 'valid' ELSE 'invalid' END
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relname = $1 AND n.nspname = coalesce($2, current_schema())
