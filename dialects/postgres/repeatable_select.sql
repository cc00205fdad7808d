-- The applied repeatable migrations (R__ files), in name order, in the
-- columns of history_select.sql (version 0, which no versioned file has,
-- marks a repeatable's row; status applied), so every transport reads them
-- as it reads the history. Asked only where the table exists (the probe).
SELECT '0' AS version, r.name, r.checksum, 'applied', r.statements_total::text, r.statements_total::text,
       date_part('epoch', r.applied_at)::bigint::text,
       r.execution_ms::text, r.installed_by, 'false', NULL::text
FROM {repeatable} r ORDER BY r.name
