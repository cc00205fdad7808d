-- The applied repeatable migrations (R__ files), keyed by name: the
-- history table's key is the version, which a repeatable migration has
-- not, and a table of its own leaves what other readers of the history
-- table see unchanged. Created under the lock, only when a run is about to
-- write its first row (a set without R__ files never makes it), so a
-- database of an earlier release gets it then, with nothing else touched.
CREATE TABLE IF NOT EXISTS {repeatable} (
    name             text        PRIMARY KEY,
    checksum         text        NOT NULL,
    statements_total integer     NOT NULL,
    applied_at       timestamptz NOT NULL DEFAULT now(),
    execution_ms     bigint      NOT NULL,
    installed_by     text        NOT NULL DEFAULT current_user,
    tool_version     text        NOT NULL,
    backend          text        NOT NULL
)
