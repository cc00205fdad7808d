SELECT holder, to_char(acquired_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
       greatest(0, ceil(extract(epoch FROM expires_at - now())))::bigint::text
FROM {lease} WHERE name = 'migrations'
