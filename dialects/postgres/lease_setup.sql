-- The migration lock of every transport: one permanent row of the lease
-- table ('migrations'; owner NULL = free). A session holder (direct,
-- Citus) records its server pid and is live while that pid holds the
-- session advisory lock on the lock key; a Data API holder records an
-- expiry that its heartbeat renews. Run before the lease is first asked
-- for in a run; creates the table (and its schema), upgrades a table of an
-- older release in place and inserts the row, each only when missing, so a
-- run on a database that has them takes no lock and logs no error here.
-- Races between first runners (23505, 42P07, 42710) are retried.
DO $chatmigrate$
BEGIN
    IF to_regclass({lease_text}) IS NULL THEN
        {create_schema}
        CREATE TABLE IF NOT EXISTS {lease} (
            name        text        PRIMARY KEY,
            owner       text,
            acquired_at timestamptz,
            expires_at  timestamptz,
            holder      text,
            pid         integer
        );
    ELSIF NOT EXISTS (SELECT 1 FROM pg_attribute
                      WHERE attrelid = to_regclass({lease_text}) AND attname = 'pid' AND NOT attisdropped) THEN
        PERFORM set_config('lock_timeout', '10s', true);
        ALTER TABLE {lease} ADD COLUMN IF NOT EXISTS pid integer,
            ALTER COLUMN owner DROP NOT NULL, ALTER COLUMN acquired_at DROP NOT NULL,
            ALTER COLUMN expires_at DROP NOT NULL, ALTER COLUMN holder DROP NOT NULL;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM {lease} WHERE name = 'migrations') THEN
        INSERT INTO {lease} (name) VALUES ('migrations') ON CONFLICT DO NOTHING;
    END IF;
END
$chatmigrate$
