-- A table named in create_distributed_table: its name as the server prints
-- it (NULL when it does not exist yet) and whether it is hash-distributed
-- already (a Citus local table, left by a failed concurrent distribution,
-- is not).
SELECT to_regclass($1)::text,
       EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = to_regclass($1) AND partmethod = 'h')::text
