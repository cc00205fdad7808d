-- `status`: does the coordinator reach each active worker? One connection
-- per worker, opened by the coordinator in parallel; a worker that does not
-- answer within citus.node_connection_timeout (set for this transaction)
-- reads success = false. Citus closes these connections when the
-- transaction ends. {timeout_ms}: a whole number of milliseconds.
BEGIN;
SET LOCAL citus.node_connection_timeout TO {timeout_ms};
SELECT nodename || ':' || nodeport, success::text, result FROM run_command_on_workers($chatmigrate$SELECT 1$chatmigrate$);
COMMIT
