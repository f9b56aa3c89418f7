//! Jobs: the durable queue every kind of background work goes through (see the `jobs` migration).
//!
//! Claiming happens in one write transaction: jobs whose lease expired after their last attempt die,
//! then the tenant to serve is chosen — the one with the fewest jobs running cluster-wide (every
//! node's leases are rows here), under the per-tenant cap, oldest ready job first — and its oldest
//! ready job is leased with `UPDATE ... RETURNING`. On SQLite the transaction is the single writer.
//! On PostgreSQL several nodes claim at once: the chosen tenant's claims are serialised by a
//! transaction-scoped advisory lock (so its cap holds exactly: the count of its running jobs is taken
//! again under the lock), and the job row is taken `FOR UPDATE SKIP LOCKED`, so a job that another
//! transaction holds (a claim, a holder's fenced commit) is passed over instead of waited for.
//! Queuing a job notifies `wasmail_jobs` (delivered at commit) to wake every node's workers.
//!
//! Every write a holder makes names its lease ([`Lease`]): owner and token. A holder whose lease
//! expired and was reclaimed by another node (token moved on), or whose job was cancelled, changes
//! nothing and learns it (`false`, or [`StoreError::LeaseLost`] inside a transaction).

use super::{
    Arg, Backend, DbRow, Page, Result, Store, StoreError, WriteTx, from_json, new_id, now_ms,
    on_pool, on_tx, to_json,
};
use crate::domain::{JobState, NodeId, TenantId};

/// The PostgreSQL channel that wakes workers when a job is queued or ready again.
pub const JOBS_CHANNEL: &str = "wasmail_jobs";

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

/// A ready job: queued and due, or running on a lease that ran out with attempts left (one whose
/// last attempt it was is buried instead; the bury skips rows locked at that moment, so this keeps
/// such a job from being claimed once more than its attempts allow).
const READY: &str = "((state = 'queued' AND run_at <= $1) OR (state = 'running' \
                      AND lease_expires_at < $1 AND attempts < max_attempts))";

fn job(row: &impl DbRow) -> Result<JobRow> {
    let state: String = row.col("state")?;
    Ok(JobRow {
        tenant: TenantId::new(row.col::<String>("tenant_id")?),
        id: row.col("id")?,
        kind: row.col("kind")?,
        payload: from_json(&row.col::<String>("payload")?, "job payload")?,
        state: JobState::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown job state {state:?}")))?,
        run_at: row.col("run_at")?,
        attempts: row.col("attempts")?,
        max_attempts: row.col("max_attempts")?,
        lease_owner: row.col("lease_owner")?,
        lease_token: row.col("lease_token")?,
        lease_expires_at: row.col("lease_expires_at")?,
        resumed: row.col("resumed")?,
        last_error: row.col("last_error")?,
        idempotency_key: row.col("idempotency_key")?,
        created_at: row.col("created_at")?,
        updated_at: row.col("updated_at")?,
        finished_at: row.col("finished_at")?,
    })
}

/// Queues a job inside a transaction; with an idempotency key already used (same tenant and kind),
/// returns the existing job's id instead. Returns `(id, created)`. The unique index decides between
/// concurrent inserts of one key (the second waits for the first to commit, then finds its job).
pub(crate) async fn insert_job(tx: &mut WriteTx, new: &NewJob) -> Result<(String, bool)> {
    let id = new_id();
    let now = now_ms();
    let sql = format!(
        "INSERT INTO jobs ({COLUMNS}, interrupted) VALUES \
         ($1, $2, $3, $4, 'queued', $5, 0, $6, NULL, 0, NULL, 0, NULL, $7, $8, $8, NULL, 0) \
         ON CONFLICT (tenant_id, kind, idempotency_key) DO NOTHING"
    );
    let inserted = on_tx!(tx, |c| {
        sqlx::query(&sql)
            .bind(new.tenant.as_str())
            .bind(&id)
            .bind(&new.kind)
            .bind(to_json(&new.payload))
            .bind(new.run_at)
            .bind(new.max_attempts.max(1))
            .bind(&new.idempotency_key)
            .bind(now)
            .execute(&mut *c)
            .await?
            .rows_affected()
            == 1
    });
    if inserted {
        notify_jobs(tx).await?;
        return Ok((id, true));
    }
    on_tx!(tx, |c| {
        let row = sqlx::query(
            "SELECT id FROM jobs WHERE tenant_id = $1 AND kind = $2 AND idempotency_key = $3",
        )
        .bind(new.tenant.as_str())
        .bind(&new.kind)
        .bind(&new.idempotency_key)
        .fetch_one(&mut *c)
        .await?;
        Ok((row.at(0)?, false))
    })
}

/// On PostgreSQL, wakes every node's workers when the transaction commits.
async fn notify_jobs(tx: &mut WriteTx) -> Result<()> {
    if let super::TxConn::Postgres(c) = tx.conn() {
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(JOBS_CHANNEL)
            .execute(&mut *c)
            .await?;
    }
    Ok(())
}

/// Inside a holder's write transaction: proves the lease is still this holder's, or fails with
/// [`StoreError::LeaseLost`] so the transaction rolls back. A read, not a write: on SQLite the
/// write transaction (`BEGIN IMMEDIATE`) already excludes every other writer until it commits, so
/// no one can take the lease between this check and the commit, and a write would only add a
/// row update to every commit. On PostgreSQL the read locks the job row (`FOR SHARE`) until the
/// commit: a claim passes it over (`SKIP LOCKED`) and a cancel waits for the commit.
pub(crate) async fn fence(tx: &mut WriteTx, lease: &Lease) -> Result<()> {
    let sql = format!(
        "SELECT 1 FROM jobs WHERE {}{}",
        held(1),
        tx.backend().for_share()
    );
    let holder = on_tx!(tx, |c| {
        sqlx::query(&sql)
            .bind(lease.tenant.as_str())
            .bind(&lease.job)
            .bind(lease.owner.as_str())
            .bind(lease.token)
            .fetch_optional(&mut *c)
            .await?
            .is_some()
    });
    match holder.then_some(()) {
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
        let backend = tx.backend();
        let skip_locked = match backend {
            Backend::Sqlite => "",
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        };
        // A job whose holder vanished after its last attempt is not tried again.
        let bury = format!(
            "UPDATE jobs SET state = 'dead', finished_at = $1, updated_at = $1, lease_owner = NULL, \
             lease_expires_at = NULL, interrupted = 1, \
             last_error = 'its node stopped (lease expired) during its last attempt' \
             WHERE (tenant_id, id) IN (SELECT tenant_id, id FROM jobs WHERE state = 'running' \
                AND lease_expires_at < $1 AND attempts >= max_attempts{skip_locked})"
        );
        on_tx!(tx, |c| {
            sqlx::query(&bury).bind(now).execute(&mut *c).await?;
        });
        let kinds_sql = kinds_clause(kinds, 3);
        // A tenant found at its cap under the lock, or whose ready jobs are all held by other
        // transactions right now, is passed over for the next one (a few times at most), rather
        // than leaving this worker idle until its next poll while other tenants' jobs wait.
        let next = format!(
            "SELECT id, state, interrupted FROM jobs WHERE tenant_id = $2 AND {READY} \
             AND {kinds_sql} ORDER BY run_at, id LIMIT 1{skip_locked}"
        );
        let mut passed_over: Vec<String> = Vec::new();
        let (tenant, id, interrupted) = loop {
            if passed_over.len() > 3 {
                tx.commit().await?;
                return Ok(None);
            }
            let first_excluded = 3 + kinds.len();
            let excluded: String = (0..passed_over.len())
                .map(|i| format!(" AND ready.tenant_id <> ${}", first_excluded + i))
                .collect();
            let pick = format!(
                "WITH busy AS (SELECT tenant_id, COUNT(*) AS n FROM jobs \
                               WHERE state = 'running' AND lease_expires_at >= $1 GROUP BY tenant_id), \
                      ready AS (SELECT tenant_id, MIN(run_at) AS first FROM jobs \
                                WHERE {READY} AND {kinds_sql} GROUP BY tenant_id) \
                 SELECT ready.tenant_id FROM ready LEFT JOIN busy ON busy.tenant_id = ready.tenant_id \
                 WHERE COALESCE(busy.n, 0) < $2{excluded} \
                 ORDER BY COALESCE(busy.n, 0), ready.first LIMIT 1"
            );
            let tenant: Option<String> = on_tx!(tx, |c| {
                let mut query = sqlx::query(&pick).bind(now).bind(policy.per_tenant);
                for kind in kinds {
                    query = query.bind(*kind);
                }
                for other in &passed_over {
                    query = query.bind(other);
                }
                query
                    .fetch_optional(&mut *c)
                    .await?
                    .map(|row| row.at(0))
                    .transpose()?
            });
            let Some(tenant) = tenant else {
                // Nothing to claim, but the jobs buried above stay buried.
                tx.commit().await?;
                return Ok(None);
            };
            if let super::TxConn::Postgres(c) = tx.conn() {
                // One claim per tenant at a time, cluster-wide, and its count taken again under
                // the lock: another node's claim for it may have committed since the choice above.
                sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
                    .bind(format!("wasmail.claim:{tenant}"))
                    .execute(&mut *c)
                    .await?;
                let busy: i64 = sqlx::query(
                    "SELECT COUNT(*) FROM jobs WHERE tenant_id = $1 AND state = 'running' \
                     AND lease_expires_at >= $2",
                )
                .bind(&tenant)
                .bind(now)
                .fetch_one(&mut *c)
                .await?
                .at(0)?;
                if busy >= policy.per_tenant {
                    passed_over.push(tenant);
                    continue;
                }
            }
            let found: Option<(String, bool)> = on_tx!(tx, |c| {
                let mut query = sqlx::query(&next).bind(now).bind(&tenant);
                for kind in kinds {
                    query = query.bind(*kind);
                }
                match query.fetch_optional(&mut *c).await? {
                    Some(row) => Some((
                        row.at(0)?,
                        row.at::<String>(1)? == "running" || row.at::<i64>(2)? != 0,
                    )),
                    None => None,
                }
            });
            match found {
                Some((id, interrupted)) => break (tenant, id, interrupted),
                // Every ready job of the tenant is held by another transaction right now.
                None => passed_over.push(tenant),
            }
        };
        let update = format!(
            "UPDATE jobs SET state = 'running', lease_owner = $1, lease_token = lease_token + 1, \
             lease_expires_at = $2, attempts = attempts + 1, interrupted = 0, \
             resumed = resumed + $3, updated_at = $4 \
             WHERE tenant_id = $5 AND id = $6 RETURNING {COLUMNS}"
        );
        let job = on_tx!(tx, |c| {
            let row = sqlx::query(&update)
                .bind(owner.as_str())
                .bind(now + policy.lease_ms)
                .bind(i64::from(interrupted))
                .bind(now)
                .bind(&tenant)
                .bind(&id)
                .fetch_one(&mut *c)
                .await?;
            job(&row)?
        });
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
        let mut tx = self.write_tx().await?;
        let done = on_tx!(tx, |c| {
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
            query.execute(&mut *c).await?.rows_affected() == 1
        });
        if done && binds.wakes {
            notify_jobs(&mut tx).await?;
        }
        tx.commit().await?;
        Ok(done)
    }

    /// Renews a lease for `lease_ms` from now; `false` when it is lost (taken over, cancelled).
    pub async fn renew_lease(&self, lease: &Lease, lease_ms: i64) -> Result<bool> {
        let until = now_ms() + lease_ms;
        self.fenced(
            lease,
            "lease_expires_at = $6",
            FencedBinds {
                time: Some(until),
                ..FencedBinds::default()
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
                wakes: true,
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
                text: Some(error),
                ..FencedBinds::default()
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
            FencedBinds {
                wakes: true,
                ..FencedBinds::default()
            },
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
            FencedBinds {
                wakes: true,
                ..FencedBinds::default()
            },
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
        Ok(on_pool!(self, |c| {
            let mut query = sqlx::query(&sql)
                .bind(now)
                .bind(tenant.as_str())
                .bind(per_tenant);
            for kind in kinds {
                query = query.bind(*kind);
            }
            query.fetch_optional(c).await?.is_some()
        }))
    }

    /// Deletes up to `limit` completed or cancelled jobs that finished before `before` (Unix ms);
    /// dead, queued and running jobs are never pruned. Returns how many.
    pub async fn prune_jobs(&self, before: i64, limit: i64) -> Result<u64> {
        self.write(
            "DELETE FROM jobs WHERE (tenant_id, id) IN (SELECT tenant_id, id FROM jobs \
             WHERE state IN ('completed', 'cancelled') AND finished_at < $1 LIMIT $2)",
            vec![Arg::Int(before), Arg::Int(limit)],
        )
        .await
    }

    /// How many jobs (of every tenant) are in `state`.
    pub async fn count_jobs(&self, state: JobState) -> Result<i64> {
        on_pool!(self, |c| {
            sqlx::query("SELECT COUNT(*) FROM jobs WHERE state = $1")
                .bind(state.as_str())
                .fetch_one(c)
                .await?
                .at(0)
        })
    }

    /// One of the tenant's jobs.
    pub async fn job(&self, tenant: &TenantId, id: &str) -> Result<JobRow> {
        let sql = format!("SELECT {COLUMNS} FROM jobs WHERE tenant_id = $1 AND id = $2");
        on_pool!(self, |c| {
            let row = sqlx::query(&sql)
                .bind(tenant.as_str())
                .bind(id)
                .fetch_optional(c)
                .await?
                .ok_or(StoreError::NotFound)?;
            job(&row)
        })
    }

    /// A page of jobs, newest first: the tenant's, or every tenant's (`None`, for the admin).
    pub async fn jobs(
        &self,
        tenant: Option<&TenantId>,
        filter: &JobFilter,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<JobRow>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM jobs WHERE ($1 = '' OR tenant_id = $1) AND ($2 = '' OR state = $2) \
             AND ($3 = '' OR kind = $3) AND ($4 = '' OR id < $4) ORDER BY id DESC LIMIT $5"
        );
        let mut items = on_pool!(self, |c| {
            let rows = sqlx::query(&sql)
                .bind(tenant.map(TenantId::as_str).unwrap_or_default())
                .bind(filter.state.map(JobState::as_str).unwrap_or_default())
                .bind(filter.kind.as_deref().unwrap_or_default())
                .bind(cursor.unwrap_or_default())
                .bind(i64::from(limit) + 1)
                .fetch_all(c)
                .await?;
            rows.iter().map(job).collect::<Result<Vec<_>>>()?
        });
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
        // The job as retried comes back from the update itself: a worker woken by the commit
        // may claim it before a read after the commit would run.
        let sql = format!(
            "UPDATE jobs SET state = 'queued', run_at = $1, attempts = 0, finished_at = NULL, \
             updated_at = $1 WHERE tenant_id = $2 AND id = $3 AND state = 'dead' RETURNING {COLUMNS}"
        );
        let mut tx = self.write_tx().await?;
        let retried = on_tx!(tx, |c| {
            sqlx::query(&sql)
                .bind(now_ms())
                .bind(tenant.as_str())
                .bind(id)
                .fetch_optional(&mut *c)
                .await?
                .map(|row| job(&row))
                .transpose()?
        });
        if retried.is_some() {
            notify_jobs(&mut tx).await?;
        }
        tx.commit().await?;
        match retried {
            Some(job) => Ok(job),
            None => {
                let job = self.job(tenant, id).await?;
                Err(StoreError::Conflict(format!(
                    "only a dead job can be retried; this one is {}",
                    job.state.as_str()
                )))
            }
        }
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
pub(crate) async fn cancel_job_in(tx: &mut WriteTx, tenant: &TenantId, id: &str) -> Result<bool> {
    Ok(on_tx!(tx, |c| {
        sqlx::query(
            "UPDATE jobs SET state = 'cancelled', finished_at = $1, updated_at = $1, \
             lease_owner = NULL, lease_expires_at = NULL WHERE tenant_id = $2 AND id = $3 \
             AND state IN ('queued', 'running', 'dead')",
        )
        .bind(now_ms())
        .bind(tenant.as_str())
        .bind(id)
        .execute(&mut *c)
        .await?
        .rows_affected()
            == 1
    }))
}

/// The values a fenced update binds after the fence's five (`$6`, then `$7`).
#[derive(Default)]
struct FencedBinds<'a> {
    time: Option<i64>,
    text: Option<&'a str>,
    /// The job is ready again: wake the workers (PostgreSQL).
    wakes: bool,
}
