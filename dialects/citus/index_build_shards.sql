-- Planning a pgvector index build on a table Citus manages: the build runs
-- on the workers, one shard at a time per connection, so what counts is a
-- shard's rows, not the table's (the coordinator's shell of a distributed
-- table is empty). $1: the table as the statement names it (`t`, `s.t`).
-- One row when Citus manages the table (none otherwise: the build is the
-- coordinator's own), every value text: the number of shards, the largest
-- shard's row estimate (reltuples once analyzed, else the statistics' live
-- tuples) and heap blocks, asked of every shard placement
-- (run_command_on_shards), and the database's name as an identifier (the
-- workers' database has the same name: ALTER ROLE ... IN DATABASE), and the
-- current role's own settings in this database (`name=value` lines, from
-- pg_db_role_setting), which the build's role setting must give back.
WITH t AS (
    SELECT p.logicalrelid AS oid FROM pg_dist_partition p
    WHERE p.logicalrelid = to_regclass(CASE WHEN position('.' IN $1) > 0
                                            THEN quote_ident(split_part($1, '.', 1)) || '.' || quote_ident(split_part($1, '.', 2))
                                            ELSE quote_ident($1) END)
), s AS (
    SELECT r.result FROM t, run_command_on_shards(t.oid,
        $$SELECT CASE WHEN c.reltuples >= 0 THEN c.reltuples::bigint
                      ELSE coalesce((SELECT s.n_live_tup FROM pg_stat_all_tables s WHERE s.relid = c.oid), 0) END
                 || ' ' || pg_relation_size(c.oid) / current_setting('block_size')::bigint
          FROM pg_class c WHERE c.oid = '%s'::regclass$$) r
    WHERE r.success
)
SELECT (SELECT count(*) FROM s)::text,
       coalesce((SELECT max(split_part(s.result, ' ', 1)::bigint) FROM s), 0)::text,
       coalesce((SELECT max(split_part(s.result, ' ', 2)::bigint) FROM s), 0)::text,
       quote_ident(current_database()),
       (SELECT array_to_string(r.setconfig, E'\n') FROM pg_db_role_setting r
        WHERE r.setrole = (SELECT oid FROM pg_roles WHERE rolname = current_user)
          AND r.setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database()))
FROM t
