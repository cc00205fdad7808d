-- Is this database a Citus database? The installed citus extension's version,
-- or no row. Asked first: the probe below needs the extension's catalog.
SELECT extversion FROM pg_extension WHERE extname = 'citus'
