-- Replaces the VALUES line of history_upsert.sql on the Data API: the row is
-- written only while this runner ($12 = owner) holds a live lease, and FOR
-- SHARE keeps another runner from taking the lease over until this
-- transaction ends. No row written = the lease was lost.
SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11
WHERE EXISTS (SELECT 1 FROM {lease} WHERE name = 'migrations' AND owner = $12 AND expires_at > now() FOR SHARE)
