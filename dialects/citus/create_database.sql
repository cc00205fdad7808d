-- Before CREATE DATABASE through the maintenance database: does the server
-- run Citus (citus.shard_count exists in every release, wherever citus is
-- in shared_preload_libraries), and would the new database reach the
-- workers (citus.enable_create_database_propagation: NULL before Citus
-- 12.2, which never propagates CREATE DATABASE)?
SELECT (current_setting('citus.shard_count', true) IS NOT NULL)::text,
       current_setting('citus.enable_create_database_propagation', true)
