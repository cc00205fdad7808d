-- dry run on citus@c-chat.example.postgres.cosmos.azure.com:5432/citus: nothing is sent

-- V1 st_chat_history_table (one transaction)
BEGIN;
SET LOCAL citus.multi_shard_modify_mode TO 'sequential';
SET LOCAL lock_timeout = '5000ms';
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
INSERT INTO "chatmigrate_history" AS h (version, name, checksum, status, statements_done, statements_total,
                            execution_ms, tool_version, backend, out_of_order, error)
VALUES (1, 'st_chat_history_table', 'sha256:3175bf8cc7759bd76c4d71e71c42380fddab8ac302856b50136efb55504939a7', 'applied', 3, 3, (extract(epoch FROM clock_timestamp() - now()) * 1000)::bigint, '0.1.0', 'citus', false, NULL)
ON CONFLICT (version) DO UPDATE SET
    name = EXCLUDED.name, checksum = EXCLUDED.checksum, status = EXCLUDED.status,
    statements_done = EXCLUDED.statements_done, statements_total = EXCLUDED.statements_total,
    applied_at = EXCLUDED.applied_at, execution_ms = h.execution_ms + EXCLUDED.execution_ms,
    installed_by = EXCLUDED.installed_by, tool_version = EXCLUDED.tool_version, backend = EXCLUDED.backend,
    out_of_order = EXCLUDED.out_of_order, error = EXCLUDED.error
RETURNING h.execution_ms::text;
COMMIT;

-- V2 vector_extension (one transaction)
BEGIN;
SET LOCAL citus.multi_shard_modify_mode TO 'sequential';
SET LOCAL lock_timeout = '5000ms';
CREATE EXTENSION IF NOT EXISTS vector;
INSERT INTO "chatmigrate_history" AS h (version, name, checksum, status, statements_done, statements_total,
                            execution_ms, tool_version, backend, out_of_order, error)
VALUES (2, 'vector_extension', 'sha256:6bd3d89a44377b64b02c60e52be7a7740a39c1668a25684ddc3d7de9ac7898f8', 'applied', 1, 1, (extract(epoch FROM clock_timestamp() - now()) * 1000)::bigint, '0.1.0', 'citus', false, NULL)
ON CONFLICT (version) DO UPDATE SET
    name = EXCLUDED.name, checksum = EXCLUDED.checksum, status = EXCLUDED.status,
    statements_done = EXCLUDED.statements_done, statements_total = EXCLUDED.statements_total,
    applied_at = EXCLUDED.applied_at, execution_ms = h.execution_ms + EXCLUDED.execution_ms,
    installed_by = EXCLUDED.installed_by, tool_version = EXCLUDED.tool_version, backend = EXCLUDED.backend,
    out_of_order = EXCLUDED.out_of_order, error = EXCLUDED.error
RETURNING h.execution_ms::text;
COMMIT;

-- V3 st_chat_history_vector_table (one transaction)
BEGIN;
SET LOCAL citus.multi_shard_modify_mode TO 'sequential';
SET LOCAL lock_timeout = '5000ms';
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
INSERT INTO "chatmigrate_history" AS h (version, name, checksum, status, statements_done, statements_total,
                            execution_ms, tool_version, backend, out_of_order, error)
VALUES (3, 'st_chat_history_vector_table', 'sha256:1287786be901187cf75cd35dca64ea84bab2c809e0840778b0c73180a555643d', 'applied', 1, 1, (extract(epoch FROM clock_timestamp() - now()) * 1000)::bigint, '0.1.0', 'citus', false, NULL)
ON CONFLICT (version) DO UPDATE SET
    name = EXCLUDED.name, checksum = EXCLUDED.checksum, status = EXCLUDED.status,
    statements_done = EXCLUDED.statements_done, statements_total = EXCLUDED.statements_total,
    applied_at = EXCLUDED.applied_at, execution_ms = h.execution_ms + EXCLUDED.execution_ms,
    installed_by = EXCLUDED.installed_by, tool_version = EXCLUDED.tool_version, backend = EXCLUDED.backend,
    out_of_order = EXCLUDED.out_of_order, error = EXCLUDED.error
RETURNING h.execution_ms::text;
COMMIT;

-- V4 st_chat_history_vector_hnsw (no transaction, statement by statement)
INSERT INTO "chatmigrate_history" AS h (version, name, checksum, status, statements_done, statements_total,
                            execution_ms, tool_version, backend, out_of_order, error)
VALUES (4, 'st_chat_history_vector_hnsw', 'sha256:4cf206a05432514e1520a02ba80e17461ffefe2ec0a87f5dc9f199a7d47ae3ce', 'partial', 0, 1, 0, '0.1.0', 'citus', false, NULL)
ON CONFLICT (version) DO UPDATE SET
    name = EXCLUDED.name, checksum = EXCLUDED.checksum, status = EXCLUDED.status,
    statements_done = EXCLUDED.statements_done, statements_total = EXCLUDED.statements_total,
    applied_at = EXCLUDED.applied_at, execution_ms = h.execution_ms + EXCLUDED.execution_ms,
    installed_by = EXCLUDED.installed_by, tool_version = EXCLUDED.tool_version, backend = EXCLUDED.backend,
    out_of_order = EXCLUDED.out_of_order, error = EXCLUDED.error
RETURNING h.execution_ms::text;
-- check: an INVALID index idx_st_chat_history_vector_hnsw left by an earlier failed build? (then DROP INDEX CONCURRENTLY IF EXISTS it first)
SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname)
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relname = 'idx_st_chat_history_vector_hnsw' AND n.nspname = coalesce(NULL, current_schema())
  AND (NOT i.indisvalid
       OR EXISTS (SELECT 1 FROM pg_dist_partition d,
                  LATERAL run_command_on_placements(d.logicalrelid,
                      format($f$SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                                WHERE i.indrelid = '%%s'::regclass AND (NOT i.indisvalid OR NOT i.indisready)
                                  AND c.relname LIKE %L$f$, replace(c.relname, '%', '%%') || '\_%%')) p
                  WHERE d.logicalrelid = i.indrelid AND p.success AND p.result <> '0'));
CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_st_chat_history_vector_hnsw
    ON st_chat_history_vector_table USING hnsw (chat_vector vector_l2_ops);
-- check: did statement 1 leave an index INVALID or not ready? (then it fails: the next up drops and builds it again)
WITH target AS (
    SELECT i.indrelid AS rel, c.relname AS idx
    FROM pg_index i
    JOIN pg_class c ON c.oid = i.indexrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relname = 'idx_st_chat_history_vector_hnsw' AND n.nspname = coalesce(NULL, current_schema())
    UNION ALL
    SELECT to_regclass(CASE WHEN position('.' IN NULL) > 0
                            THEN quote_ident(split_part(NULL, '.', 1)) || '.' || quote_ident(split_part(NULL, '.', 2))
                            ELSE quote_ident(NULL) END), NULL
), placement AS (
    SELECT t.idx, p.shardid, p.nodename, p.nodeport, p.success, p.result
    FROM target t
    JOIN pg_dist_partition d ON d.logicalrelid = t.rel,
    LATERAL run_command_on_placements(t.rel,
        $$SELECT coalesce(string_agg(c.relname || ' ' || i.indisvalid || ' ' || i.indisready, ';'), '')
          FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
          WHERE i.indrelid = '%s'::regclass AND (NOT i.indisvalid OR NOT i.indisready)$$) p
    WHERE t.rel IS NOT NULL
)
SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname), i.indisvalid::text, i.indisready::text
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE (NOT i.indisvalid OR NOT i.indisready)
  AND i.indexrelid IN (SELECT c2.oid FROM pg_class c2 JOIN pg_namespace n2 ON n2.oid = c2.relnamespace
                       WHERE c2.relname = 'idx_st_chat_history_vector_hnsw' AND n2.nspname = coalesce(NULL, current_schema())
                       UNION ALL
                       SELECT i2.indexrelid FROM pg_index i2 JOIN target t ON t.rel = i2.indrelid AND t.idx IS NULL)
UNION ALL
SELECT 'shard index ' || split_part(e, ' ', 1) || ' (shard ' || p.shardid || ' on worker ' || p.nodename || ':' || p.nodeport || ')',
       split_part(e, ' ', 2), split_part(e, ' ', 3)
FROM placement p, unnest(string_to_array(p.result, ';')) e
WHERE p.success AND p.result <> '' AND (p.idx IS NULL OR split_part(e, ' ', 1) LIKE p.idx || '\_%')
UNION ALL
SELECT 'the indexes of shard ' || p.shardid || ' on worker ' || p.nodename || ':' || p.nodeport || ' could not be read: ' || p.result, 'false', 'false'
FROM placement p
WHERE NOT p.success
ORDER BY 1;
INSERT INTO "chatmigrate_history" AS h (version, name, checksum, status, statements_done, statements_total,
                            execution_ms, tool_version, backend, out_of_order, error)
VALUES (4, 'st_chat_history_vector_hnsw', 'sha256:4cf206a05432514e1520a02ba80e17461ffefe2ec0a87f5dc9f199a7d47ae3ce', 'applied', 1, 1, <elapsed ms>, '0.1.0', 'citus', false, NULL)
ON CONFLICT (version) DO UPDATE SET
    name = EXCLUDED.name, checksum = EXCLUDED.checksum, status = EXCLUDED.status,
    statements_done = EXCLUDED.statements_done, statements_total = EXCLUDED.statements_total,
    applied_at = EXCLUDED.applied_at, execution_ms = h.execution_ms + EXCLUDED.execution_ms,
    installed_by = EXCLUDED.installed_by, tool_version = EXCLUDED.tool_version, backend = EXCLUDED.backend,
    out_of_order = EXCLUDED.out_of_order, error = EXCLUDED.error
RETURNING h.execution_ms::text;

-- V5 citus_chat_theme_reference_table (one transaction)
BEGIN;
SET LOCAL citus.multi_shard_modify_mode TO 'sequential';
SET LOCAL lock_timeout = '5000ms';
CREATE TABLE st_chat_theme_table (
    themename  text        PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now()
);
SELECT create_reference_table('st_chat_theme_table');
INSERT INTO st_chat_theme_table (themename)
SELECT themename FROM st_chat_history_table
UNION
SELECT theme FROM st_chat_history_vector_table
ON CONFLICT DO NOTHING;
INSERT INTO "chatmigrate_history" AS h (version, name, checksum, status, statements_done, statements_total,
                            execution_ms, tool_version, backend, out_of_order, error)
VALUES (5, 'citus_chat_theme_reference_table', 'sha256:1c92ab9085f829ca133026b671b70e0f465c2b731831a0bae947fa426b8b1b1d', 'applied', 3, 3, (extract(epoch FROM clock_timestamp() - now()) * 1000)::bigint, '0.1.0', 'citus', false, NULL)
ON CONFLICT (version) DO UPDATE SET
    name = EXCLUDED.name, checksum = EXCLUDED.checksum, status = EXCLUDED.status,
    statements_done = EXCLUDED.statements_done, statements_total = EXCLUDED.statements_total,
    applied_at = EXCLUDED.applied_at, execution_ms = h.execution_ms + EXCLUDED.execution_ms,
    installed_by = EXCLUDED.installed_by, tool_version = EXCLUDED.tool_version, backend = EXCLUDED.backend,
    out_of_order = EXCLUDED.out_of_order, error = EXCLUDED.error
RETURNING h.execution_ms::text;
COMMIT;

-- V6 citus_distribute_chat_history (no transaction, statement by statement)
INSERT INTO "chatmigrate_history" AS h (version, name, checksum, status, statements_done, statements_total,
                            execution_ms, tool_version, backend, out_of_order, error)
VALUES (6, 'citus_distribute_chat_history', 'sha256:fe7cf6b9bd5dcf6138c038d4fc07831a89ea2d5d37dc12dd346d398097e6a770', 'partial', 0, 2, 0, '0.1.0', 'citus', false, NULL)
ON CONFLICT (version) DO UPDATE SET
    name = EXCLUDED.name, checksum = EXCLUDED.checksum, status = EXCLUDED.status,
    statements_done = EXCLUDED.statements_done, statements_total = EXCLUDED.statements_total,
    applied_at = EXCLUDED.applied_at, execution_ms = h.execution_ms + EXCLUDED.execution_ms,
    installed_by = EXCLUDED.installed_by, tool_version = EXCLUDED.tool_version, backend = EXCLUDED.backend,
    out_of_order = EXCLUDED.out_of_order, error = EXCLUDED.error
RETURNING h.execution_ms::text;
SELECT create_distributed_table('st_chat_history_table', 'userid')
WHERE NOT EXISTS (
    SELECT 1 FROM pg_dist_partition WHERE logicalrelid = 'st_chat_history_table'::regclass AND partmethod = 'h'
);
INSERT INTO "chatmigrate_history" AS h (version, name, checksum, status, statements_done, statements_total,
                            execution_ms, tool_version, backend, out_of_order, error)
VALUES (6, 'citus_distribute_chat_history', 'sha256:fe7cf6b9bd5dcf6138c038d4fc07831a89ea2d5d37dc12dd346d398097e6a770', 'partial', 1, 2, <elapsed ms>, '0.1.0', 'citus', false, NULL)
ON CONFLICT (version) DO UPDATE SET
    name = EXCLUDED.name, checksum = EXCLUDED.checksum, status = EXCLUDED.status,
    statements_done = EXCLUDED.statements_done, statements_total = EXCLUDED.statements_total,
    applied_at = EXCLUDED.applied_at, execution_ms = h.execution_ms + EXCLUDED.execution_ms,
    installed_by = EXCLUDED.installed_by, tool_version = EXCLUDED.tool_version, backend = EXCLUDED.backend,
    out_of_order = EXCLUDED.out_of_order, error = EXCLUDED.error
RETURNING h.execution_ms::text;
SELECT create_distributed_table('st_chat_history_vector_table', 'userid', colocate_with => 'st_chat_history_table')
WHERE NOT EXISTS (
    SELECT 1 FROM pg_dist_partition WHERE logicalrelid = 'st_chat_history_vector_table'::regclass AND partmethod = 'h'
);
INSERT INTO "chatmigrate_history" AS h (version, name, checksum, status, statements_done, statements_total,
                            execution_ms, tool_version, backend, out_of_order, error)
VALUES (6, 'citus_distribute_chat_history', 'sha256:fe7cf6b9bd5dcf6138c038d4fc07831a89ea2d5d37dc12dd346d398097e6a770', 'applied', 2, 2, <elapsed ms>, '0.1.0', 'citus', false, NULL)
ON CONFLICT (version) DO UPDATE SET
    name = EXCLUDED.name, checksum = EXCLUDED.checksum, status = EXCLUDED.status,
    statements_done = EXCLUDED.statements_done, statements_total = EXCLUDED.statements_total,
    applied_at = EXCLUDED.applied_at, execution_ms = h.execution_ms + EXCLUDED.execution_ms,
    installed_by = EXCLUDED.installed_by, tool_version = EXCLUDED.tool_version, backend = EXCLUDED.backend,
    out_of_order = EXCLUDED.out_of_order, error = EXCLUDED.error
RETURNING h.execution_ms::text;

-- V7 citus_theme_foreign_keys (one transaction)
BEGIN;
SET LOCAL citus.multi_shard_modify_mode TO 'sequential';
SET LOCAL lock_timeout = '5000ms';
ALTER TABLE st_chat_history_table
    ADD CONSTRAINT st_chat_history_theme_fkey
    FOREIGN KEY (themename) REFERENCES st_chat_theme_table (themename) NOT VALID;
ALTER TABLE st_chat_history_vector_table
    ADD CONSTRAINT st_chat_history_vector_theme_fkey
    FOREIGN KEY (theme) REFERENCES st_chat_theme_table (themename) NOT VALID;
INSERT INTO "chatmigrate_history" AS h (version, name, checksum, status, statements_done, statements_total,
                            execution_ms, tool_version, backend, out_of_order, error)
VALUES (7, 'citus_theme_foreign_keys', 'sha256:7766fe863f38c192fc6cf52994742d4dffcb90fc9182af6e977088d3fc533218', 'applied', 2, 2, (extract(epoch FROM clock_timestamp() - now()) * 1000)::bigint, '0.1.0', 'citus', false, NULL)
ON CONFLICT (version) DO UPDATE SET
    name = EXCLUDED.name, checksum = EXCLUDED.checksum, status = EXCLUDED.status,
    statements_done = EXCLUDED.statements_done, statements_total = EXCLUDED.statements_total,
    applied_at = EXCLUDED.applied_at, execution_ms = h.execution_ms + EXCLUDED.execution_ms,
    installed_by = EXCLUDED.installed_by, tool_version = EXCLUDED.tool_version, backend = EXCLUDED.backend,
    out_of_order = EXCLUDED.out_of_order, error = EXCLUDED.error
RETURNING h.execution_ms::text;
COMMIT;

-- V8 citus_validate_theme_foreign_keys (one transaction)
BEGIN;
SET LOCAL citus.multi_shard_modify_mode TO 'sequential';
SET LOCAL lock_timeout = '5000ms';
INSERT INTO st_chat_theme_table (themename)
SELECT themename FROM st_chat_history_table
UNION
SELECT theme FROM st_chat_history_vector_table
ON CONFLICT DO NOTHING;
ALTER TABLE st_chat_history_table VALIDATE CONSTRAINT st_chat_history_theme_fkey;
ALTER TABLE st_chat_history_vector_table VALIDATE CONSTRAINT st_chat_history_vector_theme_fkey;
INSERT INTO "chatmigrate_history" AS h (version, name, checksum, status, statements_done, statements_total,
                            execution_ms, tool_version, backend, out_of_order, error)
VALUES (8, 'citus_validate_theme_foreign_keys', 'sha256:09c550cfef586deb0669201c4c372d2b4d153ced5c70e15e0fbbfd540db99872', 'applied', 3, 3, (extract(epoch FROM clock_timestamp() - now()) * 1000)::bigint, '0.1.0', 'citus', false, NULL)
ON CONFLICT (version) DO UPDATE SET
    name = EXCLUDED.name, checksum = EXCLUDED.checksum, status = EXCLUDED.status,
    statements_done = EXCLUDED.statements_done, statements_total = EXCLUDED.statements_total,
    applied_at = EXCLUDED.applied_at, execution_ms = h.execution_ms + EXCLUDED.execution_ms,
    installed_by = EXCLUDED.installed_by, tool_version = EXCLUDED.tool_version, backend = EXCLUDED.backend,
    out_of_order = EXCLUDED.out_of_order, error = EXCLUDED.error
RETURNING h.execution_ms::text;
COMMIT;
