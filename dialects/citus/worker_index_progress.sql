-- The index builds on the workers (a Citus coordinator's
-- pg_stat_progress_create_index has no row for a build on shards: it runs
-- on the workers, over Citus's own connections, one per shard placement):
-- asked of every worker with run_command_on_workers while a build of this
-- run goes on, about once a second. One row per worker: its name, whether
-- it answered, and its builds in this database as a JSON array of
-- {pid, phase, blocks_done, blocks_total, tuples_done, tuples_total,
-- index, table, command}.
SELECT nodename || ':' || nodeport, success::text, result
FROM run_command_on_workers($cmd$
SELECT coalesce(json_agg(json_build_object(
         'pid', p.pid, 'phase', p.phase,
         'blocks_done', p.blocks_done, 'blocks_total', p.blocks_total,
         'tuples_done', p.tuples_done, 'tuples_total', p.tuples_total,
         'index', CASE WHEN p.index_relid <> 0 THEN p.index_relid::regclass::text END,
         'table', p.relid::regclass::text, 'command', p.command)), '[]')
FROM pg_stat_progress_create_index p
WHERE p.datname = current_database()
$cmd$)
ORDER BY 1
