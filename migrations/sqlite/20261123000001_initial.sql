-- wasmail's schema. Portable SQL (types, statements and placeholders that PostgreSQL also takes) except
-- where noted; times are Unix milliseconds, ids are UUIDv7 text (ordered by creation).
-- Every tenant-owned row carries tenant_id, first in its primary key, and every query filters by it.

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE tenants (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    limits     TEXT NOT NULL,            -- JSON PluginLimits
    created_at BIGINT NOT NULL
);

-- Uploaded components, by content hash. Per tenant, so deleting a tenant's plugin never touches what
-- another tenant uploaded, and nothing is shared between tenants.
CREATE TABLE components (
    tenant_id TEXT NOT NULL,
    sha256    TEXT NOT NULL,
    bytes     BLOB NOT NULL,
    PRIMARY KEY (tenant_id, sha256)
);

CREATE TABLE plugins (
    tenant_id    TEXT NOT NULL,
    name         TEXT NOT NULL,
    next_version BIGINT NOT NULL,        -- version numbers are never reused, even after a delete
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, name)
);

CREATE TABLE plugin_versions (
    tenant_id  TEXT NOT NULL,
    name       TEXT NOT NULL,
    version    BIGINT NOT NULL,
    sha256     TEXT NOT NULL,
    size       BIGINT NOT NULL,
    world      TEXT NOT NULL,
    imports    TEXT NOT NULL,            -- JSON array of import names
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, name, version)
);

CREATE TABLE messages (
    tenant_id    TEXT NOT NULL,
    id           TEXT NOT NULL,
    folder       TEXT NOT NULL,
    flags        TEXT NOT NULL,          -- JSON array
    tags         TEXT NOT NULL,          -- JSON array; message_tags indexes it
    trashed_from TEXT,                   -- the folder a discarded message came from
    subject      TEXT,
    from_name    TEXT,
    from_address TEXT,
    date         BIGINT,                 -- the Date header
    message_id   TEXT,                   -- the Message-ID header
    size         BIGINT NOT NULL,
    sha256       TEXT NOT NULL,
    attachments  BIGINT NOT NULL,
    parsed       BIGINT NOT NULL,        -- 0 when mail-parser could not read it; raw bytes are kept
    received_at  BIGINT NOT NULL,
    search_rowid BIGINT,                 -- its row in message_search (SQLite's full-text index)
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX messages_by_folder ON messages (tenant_id, folder, id);
CREATE INDEX messages_by_date ON messages (tenant_id, date);

CREATE TABLE message_tags (
    tenant_id  TEXT NOT NULL,
    message_id TEXT NOT NULL,
    tag        TEXT NOT NULL,
    PRIMARY KEY (tenant_id, message_id, tag)
);
CREATE INDEX message_tags_by_tag ON message_tags (tenant_id, tag, message_id);

-- The bytes as received, apart from the row that lists and filters read.
CREATE TABLE message_raw (
    tenant_id  TEXT NOT NULL,
    message_id TEXT NOT NULL,
    raw        BLOB NOT NULL,
    PRIMARY KEY (tenant_id, message_id)
);

-- SQLite only: the full-text index over subject and text body (PostgreSQL will use tsvector).
-- Searches go by rowid (messages.search_rowid): reading the UNINDEXED columns of thousands of
-- matches means reading their whole rows, bodies included, and took ~15 ms per 2,000 matches.
CREATE VIRTUAL TABLE message_search USING fts5 (
    subject,
    body,
    tenant_id UNINDEXED,
    message_id UNINDEXED,
    tokenize = 'unicode61 remove_diacritics 2'
);

CREATE TABLE pipelines (
    tenant_id  TEXT NOT NULL,
    id         TEXT NOT NULL,
    name       TEXT NOT NULL,
    kind       TEXT NOT NULL,
    on_import  BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, name)
);

CREATE TABLE pipeline_stages (
    tenant_id      TEXT NOT NULL,
    pipeline_id    TEXT NOT NULL,
    position       BIGINT NOT NULL,
    plugin         TEXT NOT NULL,
    plugin_version BIGINT NOT NULL,
    config         TEXT NOT NULL,        -- JSON, given to the plugin as is
    on_error       TEXT NOT NULL,        -- continue | stop | quarantine
    PRIMARY KEY (tenant_id, pipeline_id, position)
);
CREATE INDEX pipeline_stages_by_plugin ON pipeline_stages (tenant_id, plugin, plugin_version);

CREATE TABLE runs (
    tenant_id   TEXT NOT NULL,
    id          TEXT NOT NULL,
    pipeline_id TEXT NOT NULL,
    trigger     TEXT NOT NULL,           -- api | import
    status      TEXT NOT NULL,           -- queued | running | completed | failed | cancelled
    stages      TEXT NOT NULL,           -- JSON snapshot of the pipeline's stages when the run was made
    total       BIGINT NOT NULL,
    resumed     BIGINT NOT NULL,         -- times a restart picked the run up again
    error       TEXT,
    created_at  BIGINT NOT NULL,
    started_at  BIGINT,
    finished_at BIGINT,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX runs_by_status ON runs (status, created_at);
CREATE INDEX runs_by_pipeline ON runs (tenant_id, pipeline_id, id);

CREATE TABLE run_items (
    tenant_id  TEXT NOT NULL,
    run_id     TEXT NOT NULL,
    seq        BIGINT NOT NULL,
    message_id TEXT NOT NULL,
    status     TEXT NOT NULL,            -- pending | ok | stage_failed | quarantined | missing
    result     TEXT,                     -- JSON: per-stage results and what was applied
    PRIMARY KEY (tenant_id, run_id, seq)
);
CREATE INDEX run_items_pending ON run_items (tenant_id, run_id, status, seq);
