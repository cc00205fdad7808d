-- The schema of chatmigrate's own tables (history_schema), made before
-- the lease table and the history are created in it: where it is missing,
-- it is created with citus.enable_schema_based_sharding off for that
-- statement, so it is a regular schema and the tables stay local to the
-- coordinator (in a distributed schema every new table becomes a
-- single-shard distributed table). {schema} is the quoted name,
-- {schema_text} the same as a literal. Races between first runners (23505,
-- 42P06) are retried.
DO $chatmigrate$
BEGIN
    IF to_regnamespace({schema_text}) IS NULL THEN
        IF current_setting('citus.enable_schema_based_sharding', true) IS NOT NULL THEN
            PERFORM set_config('citus.enable_schema_based_sharding', 'off', true);
        END IF;
        CREATE SCHEMA IF NOT EXISTS {schema};
    END IF;
END
$chatmigrate$
