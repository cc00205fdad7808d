-- The Data API's migration lock: a lease row (there is no session between
-- calls to hold an advisory lock). Created before the lease is taken;
-- IF NOT EXISTS races between first runners are retried.
CREATE TABLE IF NOT EXISTS {lease} (
    name        text        PRIMARY KEY,
    owner       text        NOT NULL,
    acquired_at timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    holder      text        NOT NULL
)
