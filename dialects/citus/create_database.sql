-- Before CREATE DATABASE through the maintenance database: does the server
-- run Citus (the setting exists only where citus is loaded), and would the
-- new database reach the workers?
SELECT current_setting('citus.enable_create_database_propagation', true)
