-- The first call of every Data API migration transaction, carrying its
-- settings ({settings}: set_config(...) calls, or 1): it returns a row only
-- while $1 holds a live lease, and FOR KEY SHARE keeps the lease row locked
-- until the transaction ends. The heartbeat's UPDATE (no key column) does
-- not conflict with it; a takeover (FOR UPDATE SKIP LOCKED) does, so a
-- runner killed inside a transaction, which the Data API keeps open for up
-- to 3 minutes after its last call, holds the lease until it is rolled back.
SELECT {settings} FROM {lease}
WHERE name = 'migrations' AND owner = $1 AND pid IS NULL AND expires_at > now()
FOR KEY SHARE
