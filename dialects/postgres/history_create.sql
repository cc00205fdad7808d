-- The history table, its log of repairs/baselines, and the applied
-- repeatable migrations (R__ files, keyed by name: the history table's key
-- is the version, which a repeatable has not; a table of its own leaves
-- what other readers of the history table see unchanged, and IF NOT EXISTS
-- adds it to a database of an earlier release on its next locked run).
-- Run under the migration lock, so concurrent first runs never race on
-- CREATE TABLE.
CREATE TABLE IF NOT EXISTS {history} (
    version          bigint      PRIMARY KEY,
    name             text        NOT NULL,
    checksum         text        NOT NULL,
    status           text        NOT NULL CHECK (status IN ('applied', 'partial', 'failed')),
    statements_done  integer     NOT NULL,
    statements_total integer     NOT NULL,
    applied_at       timestamptz NOT NULL DEFAULT now(),
    execution_ms     bigint      NOT NULL,
    installed_by     text        NOT NULL DEFAULT current_user,
    tool_version     text        NOT NULL,
    backend          text        NOT NULL,
    out_of_order     boolean     NOT NULL DEFAULT false,
    error            text
);
CREATE TABLE IF NOT EXISTS {log} (
    id           bigserial   PRIMARY KEY,
    version      bigint      NOT NULL,
    action       text        NOT NULL,
    old_checksum text,
    new_checksum text,
    detail       text,
    done_by      text        NOT NULL DEFAULT current_user,
    done_at      timestamptz NOT NULL DEFAULT now()
);
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
