-- Replaces the VALUES line of history_upsert.sql on the Data API: the row is
-- written only while this runner ($12 = owner) holds a live lease, and FOR
-- KEY SHARE keeps another runner from taking the lease over until this
-- transaction ends. The upsert returns the version it wrote: no row back =
-- the lease was lost (never read from numberOfRecordsUpdated, which some
-- implementations leave 0 for an INSERT).
SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11
WHERE EXISTS (SELECT 1 FROM {lease}
              WHERE name = 'migrations' AND owner = $12 AND pid IS NULL AND expires_at > now()
              FOR KEY SHARE)
