-- Is this database a Citus database? The installed citus extension's version,
-- or NULL: a column added to the connect-time probe (postgres/probe.sql), so
-- it costs no round trip of its own. Asked before the Citus probe, which
-- needs the extension's catalog.
(SELECT extversion FROM pg_extension WHERE extname = 'citus')
