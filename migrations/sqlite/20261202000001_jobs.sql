-- One durable queue for every kind of background work (pipeline runs now; syncs, sends, remote
-- actions, webhooks and schedules later), and the nodes that execute it. Portable SQL.
--
-- A job is claimed by a node for a lease: `lease_owner` (the node), `lease_expires_at`, and
-- `lease_token`, which grows by one at every claim. Heartbeats renew the lease; every write a job's
-- holder makes (finishing, committing a run item) names its token, so a holder whose lease expired
-- and was taken over by another node changes nothing. Expired leases are reclaimed by any node; a
-- live lease is never taken.

CREATE TABLE jobs (
    tenant_id        TEXT NOT NULL,
    id               TEXT NOT NULL,
    kind             TEXT NOT NULL,          -- pipeline_run | ...
    payload          TEXT NOT NULL,          -- JSON, per kind
    state            TEXT NOT NULL,          -- queued | running | completed | dead | cancelled
    run_at           BIGINT NOT NULL,        -- not claimed before (Unix ms)
    attempts         BIGINT NOT NULL,        -- attempts begun since the job last made progress
    max_attempts     BIGINT NOT NULL,
    lease_owner      TEXT,                   -- the node holding it (while running)
    lease_token      BIGINT NOT NULL,        -- the fence: grows at every claim
    lease_expires_at BIGINT,
    interrupted      BIGINT NOT NULL,        -- 1 when its last holder stopped without finishing
    resumed          BIGINT NOT NULL,        -- times it was picked up after an interruption
    last_error       TEXT,
    idempotency_key  TEXT,                   -- unique per tenant and kind (NULLs never collide)
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    finished_at      BIGINT,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX jobs_by_idempotency_key ON jobs (tenant_id, kind, idempotency_key);
-- Claiming: ready jobs in order, and leases by expiry.
CREATE INDEX jobs_ready ON jobs (state, run_at);
CREATE INDEX jobs_leases ON jobs (state, lease_expires_at);
-- Listing a tenant's jobs, and counting what each tenant has running (fairness, caps).
CREATE INDEX jobs_by_tenant ON jobs (tenant_id, state, id);

-- Every process that serves or executes jobs, with its heartbeat.
CREATE TABLE nodes (
    id           TEXT PRIMARY KEY,
    hostname     TEXT NOT NULL,
    pid          BIGINT NOT NULL,
    roles        TEXT NOT NULL,              -- JSON array: "api", "worker"
    version      TEXT NOT NULL,
    started_at   BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL,
    stopped_at   BIGINT                      -- set by a graceful stop
);

-- A run is executed by its job. `selection` is what is still to be written as items (JSON; NULL once
-- every item is written): a run over a query or over everything writes its items in chunks, from its
-- job, instead of in one transaction holding the database.
ALTER TABLE runs ADD COLUMN job_id TEXT;
ALTER TABLE runs ADD COLUMN selection TEXT;
-- Transient failures of an item are retried; after a few it is marked failed.
ALTER TABLE run_items ADD COLUMN attempts BIGINT NOT NULL DEFAULT 0;

-- Runs made before the queue existed get their job, so a queued or interrupted run still executes.
INSERT INTO jobs (tenant_id, id, kind, payload, state, run_at, attempts, max_attempts, lease_owner,
                  lease_token, lease_expires_at, interrupted, resumed, last_error, idempotency_key,
                  created_at, updated_at, finished_at)
SELECT tenant_id, id, 'pipeline_run', '{"run_id":"' || id || '"}', 'queued', created_at, 0, 10, NULL,
       0, NULL, CASE WHEN status = 'running' THEN 1 ELSE 0 END, 0, NULL, 'run:' || id,
       created_at, created_at, NULL
FROM runs WHERE status IN ('queued', 'running');
UPDATE runs SET job_id = id WHERE status IN ('queued', 'running');
