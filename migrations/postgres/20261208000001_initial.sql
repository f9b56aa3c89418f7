-- wasmail's schema on PostgreSQL: the same tables, columns and statements as on SQLite
-- (migrations/sqlite, up to 20261207000002), with PostgreSQL's types and the invariants held by the
-- database itself, since several nodes write at once (READ COMMITTED):
--   * BYTEA for bytes; BIGINT for times (Unix ms), counters and 0/1 flags (CHECKed), so one
--     statement text serves both databases;
--   * JSON stays TEXT: no statement reads inside it (tags are indexed in message_tags), so JSONB
--     would only cost a parse on every write and a re-serialisation on every read;
--   * foreign keys: every tenant-owned row goes with its tenant; a stage names an existing plugin
--     version (deleting a version in use fails); items go with their run, tags with their message;
--   * full text: message_search holds a tsvector of the tokens wasmail extracted (see
--     host/src/store/search.rs), under a GIN index.
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

CREATE TABLE components (
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    sha256    TEXT NOT NULL,
    bytes     BYTEA NOT NULL,
    PRIMARY KEY (tenant_id, sha256)
);

CREATE TABLE plugins (
    tenant_id    TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
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
    PRIMARY KEY (tenant_id, name, version),
    FOREIGN KEY (tenant_id, name) REFERENCES plugins (tenant_id, name) ON DELETE CASCADE,
    -- No cascade: bytes a version names are never deleted under it (the delete fails instead).
    -- Checked at commit: deleting a tenant removes versions (through plugins) and components
    -- (directly) in one statement, in an order the check must not see halfway.
    FOREIGN KEY (tenant_id, sha256) REFERENCES components (tenant_id, sha256)
        DEFERRABLE INITIALLY DEFERRED
);
CREATE INDEX plugin_versions_by_sha ON plugin_versions (tenant_id, sha256);

-- The bytes as received. Copies of a message share them (messages.raw_id).
CREATE TABLE message_raw (
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    raw_id    TEXT NOT NULL,
    raw       BYTEA NOT NULL,
    PRIMARY KEY (tenant_id, raw_id)
);
-- Large values are compressed and moved out of line by TOAST already; raw mail is mostly text.

-- The full-text index: one row per stored text (copies share it), tokens as a tsvector.
CREATE TABLE message_search (
    rowid      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id  TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    message_id TEXT NOT NULL,
    document   TSVECTOR NOT NULL
);
CREATE INDEX message_search_document ON message_search USING GIN (document);

CREATE TABLE messages (
    tenant_id    TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
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
    parsed       BIGINT NOT NULL CHECK (parsed IN (0, 1)),
    received_at  BIGINT NOT NULL,
    search_rowid BIGINT REFERENCES message_search (rowid) DEFERRABLE INITIALLY DEFERRED,
    raw_id       TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    -- Deferred: a message row is written before its bytes in the same transaction.
    FOREIGN KEY (tenant_id, raw_id) REFERENCES message_raw (tenant_id, raw_id)
        DEFERRABLE INITIALLY DEFERRED
);
CREATE INDEX messages_by_folder ON messages (tenant_id, folder, id);
CREATE INDEX messages_by_date ON messages (tenant_id, date);
CREATE INDEX messages_by_raw ON messages (tenant_id, raw_id);
CREATE INDEX messages_by_search ON messages (search_rowid);

CREATE TABLE message_tags (
    tenant_id  TEXT NOT NULL,
    message_id TEXT NOT NULL,
    tag        TEXT NOT NULL,
    PRIMARY KEY (tenant_id, message_id, tag),
    FOREIGN KEY (tenant_id, message_id) REFERENCES messages (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX message_tags_by_tag ON message_tags (tenant_id, tag, message_id);

CREATE TABLE pipelines (
    tenant_id  TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id         TEXT NOT NULL,
    name       TEXT NOT NULL,
    kind       TEXT NOT NULL,
    on_import  BIGINT NOT NULL CHECK (on_import IN (0, 1)),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, name)
);
CREATE INDEX pipelines_on_import ON pipelines (tenant_id, on_import);

CREATE TABLE pipeline_stages (
    tenant_id      TEXT NOT NULL,
    pipeline_id    TEXT NOT NULL,
    position       BIGINT NOT NULL,
    plugin         TEXT NOT NULL,
    plugin_version BIGINT NOT NULL,
    config         TEXT NOT NULL,        -- JSON, given to the plugin as is
    on_error       TEXT NOT NULL CHECK (on_error IN ('continue', 'stop', 'quarantine')),
    PRIMARY KEY (tenant_id, pipeline_id, position),
    FOREIGN KEY (tenant_id, pipeline_id) REFERENCES pipelines (tenant_id, id) ON DELETE CASCADE,
    -- A version in use cannot be deleted (wasmail also checks first, to name the pipelines).
    FOREIGN KEY (tenant_id, plugin, plugin_version) REFERENCES plugin_versions (tenant_id, name, version)
);
CREATE INDEX pipeline_stages_by_plugin ON pipeline_stages (tenant_id, plugin, plugin_version);

-- One durable queue for every kind of background work (see migrations/sqlite/20261202000001_jobs.sql).
CREATE TABLE jobs (
    tenant_id        TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id               TEXT NOT NULL,
    kind             TEXT NOT NULL,
    payload          TEXT NOT NULL,          -- JSON, per kind
    state            TEXT NOT NULL CHECK (state IN ('queued', 'running', 'completed', 'dead', 'cancelled')),
    run_at           BIGINT NOT NULL,
    attempts         BIGINT NOT NULL,
    max_attempts     BIGINT NOT NULL,
    lease_owner      TEXT,
    lease_token      BIGINT NOT NULL,
    lease_expires_at BIGINT,
    interrupted      BIGINT NOT NULL CHECK (interrupted IN (0, 1)),
    resumed          BIGINT NOT NULL,
    last_error       TEXT,
    idempotency_key  TEXT,                   -- unique per tenant and kind (NULLs never collide)
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    finished_at      BIGINT,
    PRIMARY KEY (tenant_id, id),
    -- A running job has a holder and a lease; no other state does.
    CHECK ((state = 'running') = (lease_owner IS NOT NULL AND lease_expires_at IS NOT NULL))
);
CREATE UNIQUE INDEX jobs_by_idempotency_key ON jobs (tenant_id, kind, idempotency_key);
CREATE INDEX jobs_ready ON jobs (state, run_at);
CREATE INDEX jobs_leases ON jobs (state, lease_expires_at);
CREATE INDEX jobs_by_tenant ON jobs (tenant_id, state, id);
CREATE INDEX jobs_finished ON jobs (state, finished_at);

CREATE TABLE nodes (
    id           TEXT PRIMARY KEY,
    hostname     TEXT NOT NULL,
    pid          BIGINT NOT NULL,
    roles        TEXT NOT NULL,              -- JSON array: "api", "worker"
    version      TEXT NOT NULL,
    started_at   BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL,
    stopped_at   BIGINT
);

CREATE TABLE runs (
    tenant_id   TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id          TEXT NOT NULL,
    pipeline_id TEXT NOT NULL,           -- no foreign key: finished runs outlive their pipeline
    trigger     TEXT NOT NULL CHECK (trigger IN ('api', 'import')),
    status      TEXT NOT NULL CHECK (status IN ('queued', 'running', 'completed', 'failed', 'cancelled')),
    stages      TEXT NOT NULL,           -- JSON snapshot of the pipeline's stages when the run was made
    total       BIGINT NOT NULL,
    resumed     BIGINT NOT NULL,
    error       TEXT,
    created_at  BIGINT NOT NULL,
    started_at  BIGINT,
    finished_at BIGINT,
    job_id      TEXT,                    -- no foreign key: finished jobs are pruned, runs are kept
    selection   TEXT,                    -- JSON: what is still to be written as items
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX runs_by_status ON runs (status, created_at);
CREATE INDEX runs_by_pipeline ON runs (tenant_id, pipeline_id, id);
CREATE INDEX runs_active ON runs (tenant_id, pipeline_id) WHERE status IN ('queued', 'running');

CREATE TABLE run_items (
    tenant_id  TEXT NOT NULL,
    run_id     TEXT NOT NULL,
    seq        BIGINT NOT NULL,
    message_id TEXT NOT NULL,
    status     TEXT NOT NULL CHECK (status IN ('pending', 'ok', 'stage_failed', 'quarantined', 'missing', 'failed')),
    result     TEXT,                     -- JSON: per-stage results and what was applied
    attempts   BIGINT NOT NULL DEFAULT 0,
    done_at    BIGINT,
    PRIMARY KEY (tenant_id, run_id, seq),
    FOREIGN KEY (tenant_id, run_id) REFERENCES runs (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX run_items_pending ON run_items (tenant_id, run_id, status, seq);

CREATE TABLE tenant_tokens (
    tenant_id  TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    jti        TEXT NOT NULL,
    issued_at  BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT,
    PRIMARY KEY (tenant_id, jti)
);

CREATE TABLE token_cutoffs (
    tenant_id     TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    issued_before BIGINT NOT NULL,
    set_at        BIGINT NOT NULL,
    PRIMARY KEY (tenant_id)
);
