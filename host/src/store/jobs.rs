//! Jobs: the durable queue every kind of background work goes through (see the `jobs` migration).
//!
//! Claiming happens in one write transaction: jobs whose lease expired after their last attempt die,
//! then the tenant to serve is chosen — the one with the fewest jobs running cluster-wide (every
//! node's leases are rows here), under the per-tenant cap, oldest ready job first — and its oldest
//! ready job is leased with `UPDATE ... RETURNING`. On SQLite the transaction is the single writer;
//! on PostgreSQL the same choice takes `FOR UPDATE SKIP LOCKED` on the job row instead (the next
//! issue), so the statements are written to need nothing else.
//!
//! Every write a holder makes names its lease ([`Lease`]): owner and token. A holder whose lease
//! expired and was reclaimed by another node (token moved on), or whose job was cancelled, changes
//! nothing and learns it (`false`, or [`StoreError::LeaseLost`] inside a transaction).

use super::{Page, Result, Store, StoreError, from_json, new_id, now_ms, to_json};
use crate::domain::{JobState, NodeId, TenantId};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

/// A stored job.
#[derive(Debug, Clone)]
pub struct JobRow {
    /// Owner.
    pub tenant: TenantId,
    /// Its id.
    pub id: String,
    /// What it does (`pipeline_run`, ...): which handler runs it.
    pub kind: String,
    /// The handler's input.
    pub payload: serde_json::Value,
    /// Where it is.
    pub state: JobState,
    /// Not claimed before this, Unix ms.
    pub run_at: i64,
    /// Attempts begun since it was queued, last gave way to other tenants' work, or was retried.
    pub attempts: i64,
    /// After this many failed attempts it is dead.
    pub max_attempts: i64,
    /// The node holding it (while running).
    pub lease_owner: Option<String>,
    /// The fence: grows at every claim.
    pub lease_token: i64,
    /// When the lease runs out unless renewed, Unix ms.
    pub lease_expires_at: Option<i64>,
    /// Times it was picked up after a holder stopped without finishing it.
    pub resumed: i64,
    /// The last failure.
    pub last_error: Option<String>,
    /// Unique per tenant and kind.
    pub idempotency_key: Option<String>,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub updated_at: i64,
    /// Unix ms.
    pub finished_at: Option<i64>,
}

/// A job to queue.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// Owner.
    pub tenant: TenantId,
    /// Which handler runs it.
    pub kind: String,
    /// The handler's input.
    pub payload: serde_json::Value,
    /// Not before this, Unix ms.
    pub run_at: i64,
    /// Failed attempts before it is dead.
    pub max_attempts: i64,
    /// Queuing the same key again (same tenant and kind) returns the existing job, for as long as
    /// the job is kept (completed and cancelled jobs are pruned after `job_retention_hours`).
    pub idempotency_key: Option<String>,
}

/// What a holder presents to change its job: the fence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The job's tenant.
    pub tenant: TenantId,
    /// The job.
    pub job: String,
    /// The node holding it.
    pub owner: NodeId,
    /// The token of this claim.
    pub token: i64,
}

/// A job just claimed.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// The job, as leased.
    pub job: JobRow,
    /// Its fence.
    pub lease: Lease,
    /// Whether a previous holder stopped without finishing it (crashed, lost its lease, or was
    /// shut down): the handler resumes rather than starts.
    pub interrupted: bool,
}

/// How a claim chooses.
#[derive(Debug, Clone, Copy)]
pub struct ClaimPolicy {
    /// Lease length, ms.
    pub lease_ms: i64,
    /// Most jobs one tenant may have running at once, all nodes together.
    pub per_tenant: i64,
}

/// A filter over jobs.
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    /// In this state.
    pub state: Option<JobState>,
    /// Of this kind.
    pub kind: Option<String>,
}

const COLUMNS: &str = "tenant_id, id, kind, payload, state, run_at, attempts, max_attempts, \
                       lease_owner, lease_token, lease_expires_at, resumed, last_error, \
                       idempotency_key, created_at, updated_at, finished_at";

/// The fence every holder's write names: still running, and still this holder's claim. Its four
/// placeholders (tenant, job, owner, token) are numbered from `first`.
fn held(first: usize) -> String {
    let [tenant, job, owner, token] = [first, first + 1, first + 2, first + 3];
    format!(
        "tenant_id = ${tenant} AND id = ${job} AND state = 'running' \
         AND lease_owner = ${owner} AND lease_token = ${token}"
    )
}

/// A ready job: queued and due, or running on a lease that ran out.
const READY: &str =
    "((state = 'queued' AND run_at <= $1) OR (state = 'running' AND lease_expires_at < $1))";

fn job(row: &AnyRow) -> Result<JobRow> {
    let state: String = row.try_get("state")?;
    Ok(JobRow {
        tenant: TenantId::new(row.try_get::<String, _>("tenant_id")?),
        id: row.try_get("id")?,
        kind: row.try_get("kind")?,
        payload: from_json(&row.try_get::<String, _>("payload")?, "job payload")?,
        state: JobState::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown job state {state:?}")))?,
        run_at: row.try_get("run_at")?,
        attempts: row.try_get("attempts")?,
        max_attempts: row.try_get("max_attempts")?,
        lease_owner: row.try_get("lease_owner")?,
        lease_token: row.try_get("lease_token")?,
        lease_expires_at: row.try_get("lease_expires_at")?,
        resumed: row.try_get("resumed")?,
        last_error: row.try_get("last_error")?,
        idempotency_key: row.try_get("idempotency_key")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        finished_at: row.try_get("finished_at")?,
    })
}

/// Queues a job inside a transaction; with an idempotency key already used (same tenant and kind),
/// returns the existing job's id instead. Returns `(id, created)`.
pub(crate) async fn insert_job(conn: &mut AnyConnection, new: &NewJob) -> Result<(String, bool)> {
    if let Some(key) = &new.idempotency_key {
        let existing = sqlx::query(
            "SELECT id FROM jobs WHERE tenant_id = $1 AND kind = $2 AND idempotency_key = $3",
        )
        .bind(new.tenant.as_str())
        .bind(&new.kind)
        .bind(key)
        .fetch_optional(&mut *conn)
        .await?;
        if let Some(row) = existing {
            return Ok((row.try_get(0)?, false));
        }
    }
    let id = new_id();
    let now = now_ms();
    sqlx::query(&format!(
        "INSERT INTO jobs ({COLUMNS}, interrupted) VALUES \
         ($1, $2, $3, $4, 'queued', $5, 0, $6, NULL, 0, NULL, 0, NULL, $7, $8, $8, NULL, 0)"
    ))
    .bind(new.tenant.as_str())
    .bind(&id)
    .bind(&new.kind)
    .bind(to_json(&new.payload))
    .bind(new.run_at)
    .bind(new.max_attempts.max(1))
    .bind(&new.idempotency_key)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok((id, true))
}

/// Inside a holder's write transaction: proves the lease is still this holder's, or fails with
/// [`StoreError::LeaseLost`] so the transaction rolls back. A read, not a write: on SQLite the
/// write transaction (`BEGIN IMMEDIATE`) already excludes every other writer until it commits, so
/// no one can take the lease between this check and the commit, and a write would only add a
/// row update to every commit. PostgreSQL will need the same read to lock the job row
/// (`FOR SHARE`).
pub(crate) async fn fence(conn: &mut AnyConnection, lease: &Lease) -> Result<()> {
    let holder = sqlx::query(&format!("SELECT 1 FROM jobs WHERE {}", held(1)))
        .bind(lease.tenant.as_str())
        .bind(&lease.job)
        .bind(lease.owner.as_str())
        .bind(lease.token)
        .fetch_optional(&mut *conn)
        .await?;
    match holder {
        Some(_) => Ok(()),
        None => Err(StoreError::LeaseLost),
    }
}

/// `kind IN ($n, ...)` for the kinds a node runs, its placeholders numbered from `first`.
fn kinds_clause(kinds: &[&str], first: usize) -> String {
    let list: Vec<String> = (0..kinds.len())
        .map(|i| format!("${}", first + i))
        .collect();
    format!("kind IN ({})", list.join(", "))
}

impl Store {
    /// Queues a job (or returns the one its idempotency key already names).
    pub async fn enqueue(&self, new: &NewJob) -> Result<JobRow> {
        let mut tx = self.write_tx().await?;
        let (id, _) = insert_job(&mut tx, new).await?;
        tx.commit().await?;
        self.job(&new.tenant, &id).await
    }

    /// Leases the next job of one of `kinds` to `owner`, fairly between tenants (see the module).
    pub async fn claim_job(
        &self,
        owner: &NodeId,
        kinds: &[&str],
        policy: ClaimPolicy,
    ) -> Result<Option<Claimed>> {
        if kinds.is_empty() {
            return Ok(None);
        }
        let now = now_ms();
        let mut tx = self.write_tx().await?;
        // A job whose holder vanished after its last attempt is not tried again.
        sqlx::query(
            "UPDATE jobs SET state = 'dead', finished_at = $1, updated_at = $1, lease_owner = NULL, \
             lease_expires_at = NULL, interrupted = 1, \
             last_error = 'its node stopped (lease expired) during its last attempt' \
             WHERE state = 'running' AND lease_expires_at < $1 AND attempts >= max_attempts",
        )
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let kinds_sql = kinds_clause(kinds, 3);
        let pick = format!(
            "WITH busy AS (SELECT tenant_id, COUNT(*) AS n FROM jobs \
                           WHERE state = 'running' AND lease_expires_at >= $1 GROUP BY tenant_id), \
                  ready AS (SELECT tenant_id, MIN(run_at) AS first FROM jobs \
                            WHERE {READY} AND {kinds_sql} GROUP BY tenant_id) \
             SELECT ready.tenant_id FROM ready LEFT JOIN busy ON busy.tenant_id = ready.tenant_id \
             WHERE COALESCE(busy.n, 0) < $2 ORDER BY COALESCE(busy.n, 0), ready.first LIMIT 1"
        );
        let mut query = sqlx::query(&pick).bind(now).bind(policy.per_tenant);
        for kind in kinds {
            query = query.bind(*kind);
        }
        let Some(row) = query.fetch_optional(&mut *tx).await? else {
            // Nothing to claim, but the jobs buried above stay buried.
            tx.commit().await?;
            return Ok(None);
        };
        let tenant: String = row.try_get(0)?;
        let next = format!(
            "SELECT id, state, interrupted FROM jobs WHERE tenant_id = $2 AND {READY} AND {kinds_sql} \
             ORDER BY run_at, id LIMIT 1"
        );
        let mut query = sqlx::query(&next).bind(now).bind(&tenant);
        for kind in kinds {
            query = query.bind(*kind);
        }
        let row = query.fetch_one(&mut *tx).await.map_err(StoreError::from)?;
        let id: String = row.try_get(0)?;
        let interrupted =
            row.try_get::<String, _>(1)? == "running" || row.try_get::<i64, _>(2)? != 0;
        let claimed = sqlx::query(&format!(
            "UPDATE jobs SET state = 'running', lease_owner = $1, lease_token = lease_token + 1, \
             lease_expires_at = $2, attempts = attempts + 1, interrupted = 0, \
             resumed = resumed + $3, updated_at = $4 \
             WHERE tenant_id = $5 AND id = $6 RETURNING {COLUMNS}"
        ))
        .bind(owner.as_str())
        .bind(now + policy.lease_ms)
        .bind(i64::from(interrupted))
        .bind(now)
        .bind(&tenant)
        .bind(&id)
        .fetch_one(&mut *tx)
        .await?;
        let job = job(&claimed)?;
        tx.commit().await?;
        let lease = Lease {
            tenant: job.tenant.clone(),
            job: job.id.clone(),
            owner: owner.clone(),
            token: job.lease_token,
        };
        Ok(Some(Claimed {
            job,
            lease,
            interrupted,
        }))
    }

    /// Runs one fenced update of a held job; `false` when the lease is no longer the holder's.
    async fn fenced(&self, lease: &Lease, set: &str, binds: FencedBinds<'_>) -> Result<bool> {
        let sql = format!("UPDATE jobs SET {set}, updated_at = $1 WHERE {}", held(2));
        let mut query = sqlx::query(&sql)
            .bind(now_ms())
            .bind(lease.tenant.as_str())
            .bind(&lease.job)
            .bind(lease.owner.as_str())
            .bind(lease.token);
        if let Some(at) = binds.time {
            query = query.bind(at);
        }
        if let Some(text) = binds.text {
            query = query.bind(text);
        }
        Ok(self.write_one(query).await?.rows_affected() == 1)
    }

    /// Renews a lease for `lease_ms` from now; `false` when it is lost (taken over, cancelled).
    pub async fn renew_lease(&self, lease: &Lease, lease_ms: i64) -> Result<bool> {
        let until = now_ms() + lease_ms;
        self.fenced(
            lease,
            "lease_expires_at = $6",
            FencedBinds {
                time: Some(until),
                text: None,
            },
        )
        .await
    }

    /// The holder finished the job.
    pub async fn complete_job(&self, lease: &Lease) -> Result<bool> {
        self.fenced(
            lease,
            "state = 'completed', finished_at = $1, lease_owner = NULL, lease_expires_at = NULL, \
             last_error = NULL",
            FencedBinds::default(),
        )
        .await
    }

    /// The attempt failed transiently: try again at `run_at` (the caller checked attempts remain).
    pub async fn retry_job_at(&self, lease: &Lease, run_at: i64, error: &str) -> Result<bool> {
        self.fenced(
            lease,
            "state = 'queued', run_at = $6, last_error = $7, lease_owner = NULL, \
             lease_expires_at = NULL",
            FencedBinds {
                time: Some(run_at),
                text: Some(error),
            },
        )
        .await
    }

    /// The job failed for good (its last attempt, or a permanent failure): dead, retryable by hand.
    pub async fn bury_job(&self, lease: &Lease, error: &str) -> Result<bool> {
        self.fenced(
            lease,
            "state = 'dead', finished_at = $1, last_error = $6, lease_owner = NULL, \
             lease_expires_at = NULL",
            FencedBinds {
                time: None,
                text: Some(error),
            },
        )
        .await
    }

    /// The holder stops without finishing (this node is shutting down): the job is ready again at
    /// once for any node, and this attempt does not count against it.
    pub async fn release_job(&self, lease: &Lease) -> Result<bool> {
        self.fenced(
            lease,
            "state = 'queued', run_at = $1, attempts = attempts - 1, interrupted = 1, \
             lease_owner = NULL, lease_expires_at = NULL",
            FencedBinds::default(),
        )
        .await
    }

    /// The holder made progress and gives way to other tenants' work: the job goes to the back of
    /// the queue (ready now), with its attempts reset (progress means the job is not failing).
    pub async fn yield_job(&self, lease: &Lease) -> Result<bool> {
        self.fenced(
            lease,
            "state = 'queued', run_at = $1, attempts = 0, lease_owner = NULL, \
             lease_expires_at = NULL",
            FencedBinds::default(),
        )
        .await
    }

    /// Whether a ready job of another tenant waits for a worker (and its tenant is under the cap):
    /// a long job between two steps yields to it.
    pub async fn others_waiting(
        &self,
        tenant: &TenantId,
        kinds: &[&str],
        per_tenant: i64,
    ) -> Result<bool> {
        let now = now_ms();
        let sql = format!(
            // READY's columns are the outer `j`'s: the subquery names its own rows `r`.
            "SELECT 1 FROM jobs j WHERE {READY} AND j.tenant_id <> $2 \
             AND j.{} AND (SELECT COUNT(*) FROM jobs r WHERE r.tenant_id = j.tenant_id \
                          AND r.state = 'running' AND r.lease_expires_at >= $1) < $3 LIMIT 1",
            kinds_clause(kinds, 4)
        );
        let mut query = sqlx::query(&sql)
            .bind(now)
            .bind(tenant.as_str())
            .bind(per_tenant);
        for kind in kinds {
            query = query.bind(*kind);
        }
        Ok(query.fetch_optional(self.pool()).await?.is_some())
    }

    /// Deletes up to `limit` completed or cancelled jobs that finished before `before` (Unix ms);
    /// dead, queued and running jobs are never pruned. Returns how many.
    pub async fn prune_jobs(&self, before: i64, limit: i64) -> Result<u64> {
        let done = self
            .write_one(
                sqlx::query(
                    "DELETE FROM jobs WHERE (tenant_id, id) IN (SELECT tenant_id, id FROM jobs \
                     WHERE state IN ('completed', 'cancelled') AND finished_at < $1 LIMIT $2)",
                )
                .bind(before)
                .bind(limit),
            )
            .await?;
        Ok(done.rows_affected())
    }

    /// How many jobs (of every tenant) are in `state`.
    pub async fn count_jobs(&self, state: JobState) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) FROM jobs WHERE state = $1")
            .bind(state.as_str())
            .fetch_one(self.pool())
            .await?;
        Ok(row.try_get(0)?)
    }

    /// One of the tenant's jobs.
    pub async fn job(&self, tenant: &TenantId, id: &str) -> Result<JobRow> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM jobs WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(tenant.as_str())
        .bind(id)
        .fetch_optional(self.pool())
        .await?
        .ok_or(StoreError::NotFound)?;
        job(&row)
    }

    /// A page of jobs, newest first: the tenant's, or every tenant's (`None`, for the admin).
    pub async fn jobs(
        &self,
        tenant: Option<&TenantId>,
        filter: &JobFilter,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<JobRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM jobs WHERE ($1 = '' OR tenant_id = $1) AND ($2 = '' OR state = $2) \
             AND ($3 = '' OR kind = $3) AND ($4 = '' OR id < $4) ORDER BY id DESC LIMIT $5"
        ))
        .bind(tenant.map(TenantId::as_str).unwrap_or_default())
        .bind(filter.state.map(JobState::as_str).unwrap_or_default())
        .bind(filter.kind.as_deref().unwrap_or_default())
        .bind(cursor.unwrap_or_default())
        .bind(i64::from(limit) + 1)
        .fetch_all(self.pool())
        .await?;
        let mut items = rows.iter().map(job).collect::<Result<Vec<_>>>()?;
        let next_cursor = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(|j| j.id.clone())
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    /// Revives a dead job: queued now, with its attempts back to zero. Only a dead job can be
    /// retried (409 otherwise).
    pub async fn retry_job(&self, tenant: &TenantId, id: &str) -> Result<JobRow> {
        let done = self
            .write_one(
                sqlx::query(
                    "UPDATE jobs SET state = 'queued', run_at = $1, attempts = 0, finished_at = NULL, \
                     updated_at = $1 WHERE tenant_id = $2 AND id = $3 AND state = 'dead'",
                )
                .bind(now_ms())
                .bind(tenant.as_str())
                .bind(id),
            )
            .await?;
        let job = self.job(tenant, id).await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!(
                "only a dead job can be retried; this one is {}",
                job.state.as_str()
            )));
        }
        Ok(job)
    }

    /// Cancels a queued or running job (a running one's holder loses its lease at its next
    /// heartbeat or write). 409 once it has ended.
    pub async fn cancel_job(&self, tenant: &TenantId, id: &str) -> Result<JobRow> {
        let mut tx = self.write_tx().await?;
        let done = cancel_job_in(&mut tx, tenant, id).await?;
        tx.commit().await?;
        let job = self.job(tenant, id).await?;
        if !done {
            return Err(StoreError::Conflict(format!(
                "the job is already {}",
                job.state.as_str()
            )));
        }
        Ok(job)
    }
}

/// Cancels a queued, running or dead job inside a transaction; `false` when it had ended.
pub(crate) async fn cancel_job_in(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    id: &str,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE jobs SET state = 'cancelled', finished_at = $1, updated_at = $1, lease_owner = NULL, \
         lease_expires_at = NULL WHERE tenant_id = $2 AND id = $3 \
         AND state IN ('queued', 'running', 'dead')",
    )
    .bind(now_ms())
    .bind(tenant.as_str())
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The values a fenced update binds after the fence's five (`$6`, then `$7`).
#[derive(Default)]
struct FencedBinds<'a> {
    time: Option<i64>,
    text: Option<&'a str>,
}
