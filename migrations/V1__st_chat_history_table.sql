-- The chat history: one row per exchange between a user and the bot.
--
-- Differences from the seed (see docs/schema.md):
--   * the seed's `userid text NOT NULL UNIQUE` allowed one message per user;
--     the UNIQUE is dropped.
--   * the primary key is (userid, primarykey), so the same table distributes
--     by userid on Citus (a distributed table's keys must include the
--     distribution column).
CREATE TABLE st_chat_history_table (
    primarykey  bigserial   NOT NULL,
    userid      text        NOT NULL,
    themename   text        NOT NULL,
    chatid      bigint      NOT NULL CHECK (chatid >= 0),
    userinput   text,
    botresponse text,
    timestamp   timestamptz DEFAULT now(),
    PRIMARY KEY (userid, primarykey)
);

CREATE INDEX idx_st_chat_history_userid ON st_chat_history_table (userid);

CREATE INDEX idx_st_chat_history_timestamp ON st_chat_history_table (timestamp);
