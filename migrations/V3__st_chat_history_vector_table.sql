-- Summaries of chats with their embedding, for similarity search. Key
-- (userid, primarykey), as in st_chat_history_table, so both distribute by
-- userid and colocate on Citus.
--
-- The column takes the embedding model's dimension: the placeholders
-- embedding_dimensions (default 1024, Bedrock Cohere multilingual v3) and
-- embedding_type (vector up to 2000 dimensions, halfvec above, up to 4000:
-- HNSW's limits). docs/schema.md lists the common models.
CREATE TABLE st_chat_history_vector_table (
    primarykey   bigserial    NOT NULL,
    userid       text         NOT NULL,
    theme        text         NOT NULL,
    chatid       bigint       NOT NULL CHECK (chatid >= 0),
    chat_summary text         NOT NULL,
    metadata     jsonb,
    chat_vector  ${embedding_type}(${embedding_dimensions}) NOT NULL,
    PRIMARY KEY (userid, primarykey)
);
