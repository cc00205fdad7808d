(extract(epoch FROM clock_timestamp() - now()) * 1000)::bigint
