-- The coordinator's own address as the cluster knows it (group 0), for the
-- one-node Citus in a scratch database (adopt, diff); no row if it was
-- never registered.
SELECT nodename, nodeport::text FROM pg_dist_node WHERE groupid = 0 AND noderole = 'primary' LIMIT 1
