-- Summaries of chats with their embedding (Bedrock Cohere multilingual v3:
-- 1024 dimensions), for similarity search. Key (userid, primarykey), as in
-- st_chat_history_table, so both distribute by userid and colocate on Citus.
CREATE TABLE st_chat_history_vector_table (
    primarykey   bigserial    NOT NULL,
    userid       text         NOT NULL,
    theme        text         NOT NULL,
    chatid       bigint       NOT NULL CHECK (chatid >= 0),
    chat_summary text         NOT NULL,
    metadata     jsonb,
    chat_vector  vector(1024) NOT NULL,
    PRIMARY KEY (userid, primarykey)
);
