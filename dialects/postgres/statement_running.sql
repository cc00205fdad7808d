-- Is the statement the Data API timed out on still running in that backend?
SELECT count(*)::text FROM pg_stat_activity WHERE pid = $1 AND state = 'active'
