-- Before a CONCURRENTLY build on Citus: the index of the statement's name
-- ($1, in schema $2 or the current one), qualified, when a failed or killed
-- build left it INVALID on the coordinator or left one of its shard
-- indexes not valid or not ready on a worker (the coordinator's may then be
-- valid, and IF NOT EXISTS would skip the build): DROP INDEX CONCURRENTLY
-- of it drops its shard indexes too, and the build runs again. No row
-- otherwise.
SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname)
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relname = $1 AND n.nspname = coalesce($2, current_schema())
  AND (NOT i.indisvalid
       OR EXISTS (SELECT 1 FROM pg_dist_partition d,
                  LATERAL run_command_on_placements(d.logicalrelid,
                      format($f$SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                                WHERE i.indrelid = '%%s'::regclass AND (NOT i.indisvalid OR NOT i.indisready)
                                  AND c.relname LIKE %L$f$, replace(c.relname, '%', '%%') || '\_%%')) p
                  WHERE d.logicalrelid = i.indrelid AND p.success AND p.result <> '0'))
