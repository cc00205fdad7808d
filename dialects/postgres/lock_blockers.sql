SELECT a.pid, coalesce(a.application_name, ''), coalesce(a.state, ''),
       left(regexp_replace(coalesce(a.query, ''), '\s+', ' ', 'g'), 120),
       l.relation::regclass::text, l.mode
FROM pg_locks l
JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.granted AND a.pid <> pg_backend_pid()
  AND l.relation IN (SELECT to_regclass(t) FROM unnest($1) AS t)
ORDER BY a.xact_start NULLS LAST
LIMIT 5
