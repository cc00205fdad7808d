-- The history table and its log of repairs/baselines. Run under the
-- migration lock, so concurrent first runs never race on CREATE TABLE.
-- (The table of repeatable migrations is repeatable_create.sql's.)
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
)
