-- What chatmigrate needs to know about a Citus node: the release, this
-- node's group (0 on the coordinator, the worker's group on a worker with
-- metadata), the active and inactive workers, the coordinator as the
-- metadata names it, how many nodes are active (citus_is_coordinator() asks
-- for group 0 and at least one), and what changes how migrations behave
-- (create_distributed_table_concurrently decodes WAL with the citus output
-- plugin: it needs wal_level = logical and, on servers that restrict output
-- plugins, citus in output_plugin_libraries; NULL where no such setting, or
-- where this user may not read it (a superuser-only setting: pg_settings
-- hides its row, and current_setting() raises an error even with
-- missing_ok), which the last column tells;
-- citus.enable_schema_based_sharding: NULL before Citus 12.0, which has no
-- distributed schemas).
SELECT split_part(citus_version(), ' ', 2),
       (SELECT groupid FROM pg_dist_local_group)::text,
       (SELECT string_agg(nodename || ':' || nodeport, ', ' ORDER BY nodeid)
          FROM pg_dist_node WHERE groupid <> 0 AND noderole = 'primary' AND isactive),
       (SELECT count(*) FROM pg_dist_node WHERE groupid <> 0 AND noderole = 'primary' AND NOT isactive)::text,
       (SELECT nodename || ':' || nodeport FROM pg_dist_node WHERE groupid = 0 AND noderole = 'primary' LIMIT 1),
       (SELECT count(*) FROM pg_dist_node WHERE isactive)::text,
       EXISTS (SELECT 1 FROM pg_proc WHERE proname = 'create_distributed_table_concurrently')::text,
       current_setting('wal_level'),
       coalesce(current_setting('citus.create_object_propagation', true), ''),
       (SELECT setting FROM pg_settings WHERE name = 'output_plugin_libraries'),
       current_setting('citus.enable_schema_based_sharding', true),
       (NOT pg_has_role(current_user, 'pg_read_all_settings', 'USAGE'))::text
