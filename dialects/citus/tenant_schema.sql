-- Is the schema of chatmigrate's own tables a distributed schema (Citus
-- 12.0 and later: pg_dist_schema)? Then its tables are distributed and
-- chatmigrate refuses to use it. {schema_text}: the schema's name as a
-- literal.
SELECT EXISTS (SELECT 1 FROM pg_dist_schema WHERE schemaid = to_regnamespace({schema_text}))::text
