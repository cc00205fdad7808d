-- After a CONCURRENTLY build or rebuild: the indexes it made that the
-- server left not valid or not ready, although the statement ended without
-- an error (pgvector #925; REINDEX TABLE CONCURRENTLY skips an invalid
-- index with only a WARNING). $1 / $2: the index's name and schema (NULL:
-- the current schema) of a CREATE INDEX or REINDEX INDEX; $3: the table
-- key of a REINDEX TABLE (every index of the table). One row per index:
-- its qualified name, indisvalid, indisready.
SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname), i.indisvalid::text, i.indisready::text
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE (NOT i.indisvalid OR NOT i.indisready)
  AND ((c.relname = $1 AND n.nspname = coalesce($2, current_schema()))
       OR i.indrelid = to_regclass(CASE WHEN position('.' IN $3) > 0
                                        THEN quote_ident(split_part($3, '.', 1)) || '.' || quote_ident(split_part($3, '.', 2))
                                        ELSE quote_ident($3) END))
ORDER BY 1
