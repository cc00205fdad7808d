-- The applied repeatable migrations as `up` plans with them: the columns
-- of history_select_plan.sql (version 0 marks a repeatable's row).
SELECT '0' AS version, r.name, r.checksum, 'applied', r.statements_total::text, r.execution_ms::text
FROM {repeatable} r ORDER BY r.name
