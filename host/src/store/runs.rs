//! Runs: a pipeline applied to a set of messages, item by item, executed by a job of the queue.
//!
//! A run over chosen messages writes its items when it is made. A run over a query (or over
//! everything) stores its selection instead — the filter and the newest message id at that moment —
//! and its job writes the items in chunks ([`Store::write_run_items`]), so a run over a whole mailbox
//! never holds the database in one long write. Processing an item commits its results and the
//! actions it applied in one transaction that also proves the job's lease ([`super::jobs::fence`]),
//! so an item is either fully done or still pending, exactly once, whichever node does it.

use super::envelope::{copy_message, read_envelope, write_envelope};
use super::jobs::{Lease, NewJob, cancel_job_in, fence, insert_job};
use super::pipelines::stages;
use super::{
    DbRow, Page, Result, Store, StoreError, WriteTx, from_json, new_id, now_ms, on_pool, on_tx,
    to_json,
};
use crate::domain::{
    ItemResult, ItemStatus, MessageFilter, RunCounts, RunStatus, Selection, Stage, StoredEnvelope,
    TenantId, Trigger,
};
use serde::{Deserialize, Serialize};

/// The job kind that executes runs.
pub const RUN_JOB: &str = "pipeline_run";

/// Messages of a selection written as items per transaction.
const ITEM_CHUNK: usize = 500;

/// A stored run.
#[derive(Debug, Clone)]
pub struct RunRow {
    /// Its id.
    pub id: String,
    /// The pipeline it runs.
    pub pipeline_id: String,
    /// `api` or `import`.
    pub trigger: Trigger,
    /// Where it is.
    pub status: RunStatus,
    /// The pipeline's stages when the run was made.
    pub stages: Vec<Stage>,
    /// Messages covered (while the items of a query are still being written: how many matched
    /// when the run was made).
    pub total: i64,
    /// Times it was picked up again after its node stopped.
    pub resumed: i64,
    /// Why it failed.
    pub error: Option<String>,
    /// The job executing it.
    pub job_id: Option<String>,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub started_at: Option<i64>,
    /// Unix ms.
    pub finished_at: Option<i64>,
    /// Items by state.
    pub counts: RunCounts,
}

/// One message's entry in a run.
#[derive(Debug, Clone)]
pub struct RunItemRow {
    /// Position in the run.
    pub seq: i64,
    /// The message.
    pub message_id: String,
    /// What happened.
    pub status: ItemStatus,
    /// Per-stage results and what was applied, once processed.
    pub result: Option<ItemResult>,
}

/// A pending item handed to a worker.
#[derive(Debug, Clone)]
pub struct WorkItem {
    /// Position in the run.
    pub seq: i64,
    /// The message.
    pub message_id: String,
    /// Attempts that failed transiently so far.
    pub attempts: i64,
}

/// What of a query selection is still to be written as items.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PendingSelection {
    filter: MessageFilter,
    /// The newest message id when the run was made: later messages (and copies made meanwhile)
    /// are not part of the run.
    upto: String,
    /// The last message id written.
    after: String,
    /// The next item's position.
    next_seq: i64,
}

/// The run's status as clients see it: a run whose job died is failed, with the job's error.
const COLUMNS: &str = "r.id, r.pipeline_id, r.trigger, \
     CASE WHEN r.status IN ('queued', 'running') AND j.state = 'dead' THEN 'failed' ELSE r.status END AS status, \
     r.stages, r.total, r.resumed, \
     CASE WHEN r.status IN ('queued', 'running') AND j.state = 'dead' THEN j.last_error ELSE r.error END AS error, \
     r.job_id, r.created_at, r.started_at, r.finished_at";

const FROM: &str = "runs r LEFT JOIN jobs j ON j.tenant_id = r.tenant_id AND j.id = r.job_id";

fn run(row: &impl DbRow) -> Result<RunRow> {
    let status: String = row.col("status")?;
    Ok(RunRow {
        id: row.col("id")?,
        pipeline_id: row.col("pipeline_id")?,
        trigger: {
            let trigger: String = row.col("trigger")?;
            Trigger::parse(&trigger)
                .ok_or_else(|| StoreError::Corrupt(format!("unknown run trigger {trigger:?}")))?
        },
        status: RunStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown run status {status:?}")))?,
        stages: from_json(&row.col::<String>("stages")?, "run stages")?,
        total: row.col("total")?,
        resumed: row.col("resumed")?,
        error: row.col("error")?,
        job_id: row.col("job_id")?,
        created_at: row.col("created_at")?,
        started_at: row.col("started_at")?,
        finished_at: row.col("finished_at")?,
        counts: RunCounts::default(),
    })
}

fn item_status(s: &str) -> Result<ItemStatus> {
    ItemStatus::parse(s).ok_or_else(|| StoreError::Corrupt(format!("unknown item status {s:?}")))
}

/// Writes items `first_seq..` for `messages` (multi-row inserts: a few statements per chunk).
async fn insert_items(
    tx: &mut WriteTx,
    tenant: &TenantId,
    run: &str,
    first_seq: i64,
    messages: &[String],
) -> Result<()> {
    for (chunk_no, chunk) in messages.chunks(200).enumerate() {
        let mut sql = String::from(
            "INSERT INTO run_items (tenant_id, run_id, seq, message_id, status, attempts) VALUES ",
        );
        for i in 0..chunk.len() {
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!(
                "($1, $2, ${}, ${}, 'pending', 0)",
                3 + 2 * i,
                4 + 2 * i
            ));
        }
        on_tx!(tx, |c| {
            let mut query = sqlx::query(&sql).bind(tenant.as_str()).bind(run);
            for (i, message) in chunk.iter().enumerate() {
                query = query
                    .bind(first_seq + (chunk_no * 200 + i) as i64)
                    .bind(message);
            }
            query.execute(&mut *c).await?;
        });
    }
    Ok(())
}

/// Makes a run of `pipeline` over `selection`, with its job, inside a transaction.
async fn create_run_in(
    tx: &mut WriteTx,
    tenant: &TenantId,
    pipeline: &str,
    trigger: Trigger,
    selection: &Selection,
    max_attempts: i64,
) -> Result<String> {
    let stages = stages(tx, tenant, pipeline).await?;
    let id = new_id();
    let (total, pending) = match selection {
        Selection::Messages(ids) => (ids.len() as i64, None),
        Selection::Query(filter) => {
            let cond = filter.conditions(tenant, tx.backend());
            let sql = format!(
                "SELECT COUNT(*), MAX(m.id) FROM messages m WHERE {}",
                cond.where_clause()
            );
            let (count, upto): (i64, Option<String>) = on_tx!(tx, |c| {
                let row = cond.bind(sqlx::query(&sql)).fetch_one(&mut *c).await?;
                (row.at(0)?, row.at(1)?)
            });
            let pending = upto.map(|upto| PendingSelection {
                filter: filter.clone(),
                upto,
                after: String::new(),
                next_seq: 0,
            });
            (count, pending)
        }
    };
    let (job, _) = insert_job(
        tx,
        &NewJob {
            tenant: tenant.clone(),
            kind: RUN_JOB.into(),
            payload: serde_json::json!({ "run_id": id }),
            run_at: now_ms(),
            max_attempts,
            idempotency_key: Some(format!("run:{id}")),
        },
    )
    .await?;
    on_tx!(tx, |c| {
        sqlx::query(
            "INSERT INTO runs (tenant_id, id, pipeline_id, trigger, status, stages, total, resumed, \
             error, created_at, started_at, finished_at, job_id, selection) \
             VALUES ($1, $2, $3, $4, 'queued', $5, $6, 0, NULL, $7, NULL, NULL, $8, $9)",
        )
        .bind(tenant.as_str())
        .bind(&id)
        .bind(pipeline)
        .bind(trigger.as_str())
        .bind(to_json(&stages))
        .bind(total)
        .bind(now_ms())
        .bind(&job)
        .bind(pending.as_ref().map(to_json))
        .execute(&mut *c)
        .await?;
    });
    if let Selection::Messages(ids) = selection {
        insert_items(tx, tenant, &id, 0, ids).await?;
    }
    Ok(id)
}

/// Queues every on-import pipeline over a just-imported message. A message joins the pipeline's
/// import run that is still queued (same stages) instead of making a run of its own, so a burst of
/// imports becomes a few runs of many messages rather than one run per message. Only a queued run is
/// joined: a running one may be about to find no pending item and complete (a run becomes
/// `running` in the same single-writer order as this join, before it reads its items).
pub(crate) async fn queue_import_runs(
    tx: &mut WriteTx,
    tenant: &TenantId,
    message: &str,
    max_attempts: i64,
) -> Result<Vec<String>> {
    // Locked for share (PostgreSQL) until the import commits, as `create_run` does: a pipeline
    // being deleted or changed meanwhile waits, then sees this run (queued, with the stages read
    // here) and refuses, or went first and is not found here.
    let pipelines_sql = format!(
        "SELECT id FROM pipelines WHERE tenant_id = $1 AND on_import = 1 ORDER BY name{}",
        tx.backend().for_share()
    );
    let pipelines: Vec<String> = on_tx!(tx, |c| {
        sqlx::query(&pipelines_sql)
            .bind(tenant.as_str())
            .fetch_all(&mut *c)
            .await?
            .iter()
            .map(|r| r.at(0))
            .collect::<Result<_>>()?
    });
    // On PostgreSQL the open run is locked until this import commits: a concurrent import of the
    // same tenant waits, then reads the run's new total (and appends after it), and the worker's
    // `start_run` waits too, so the run cannot start between this join and its commit.
    let open_sql = format!(
        "SELECT id, total FROM runs r WHERE tenant_id = $1 AND pipeline_id = $2 \
         AND trigger = 'import' AND status = 'queued' AND stages = $3 \
         AND EXISTS (SELECT 1 FROM jobs j WHERE j.tenant_id = r.tenant_id \
                     AND j.id = r.job_id AND j.state IN ('queued', 'running')) \
         ORDER BY id DESC LIMIT 1{}",
        tx.backend().for_update()
    );
    let mut runs = Vec::with_capacity(pipelines.len());
    for pipeline in pipelines {
        let current = to_json(&stages(tx, tenant, &pipeline).await?);
        let open: Option<(String, i64)> = on_tx!(tx, |c| {
            match sqlx::query(&open_sql)
                .bind(tenant.as_str())
                .bind(&pipeline)
                .bind(&current)
                .fetch_optional(&mut *c)
                .await?
            {
                Some(row) => Some((row.at(0)?, row.at(1)?)),
                None => None,
            }
        });
        let run = match open {
            Some((id, total)) => {
                insert_items(tx, tenant, &id, total, &[message.to_string()]).await?;
                on_tx!(tx, |c| {
                    sqlx::query(
                        "UPDATE runs SET total = total + 1 WHERE tenant_id = $1 AND id = $2",
                    )
                    .bind(tenant.as_str())
                    .bind(&id)
                    .execute(&mut *c)
                    .await?;
                });
                id
            }
            None => {
                create_run_in(
                    tx,
                    tenant,
                    &pipeline,
                    Trigger::Import,
                    &Selection::Messages(vec![message.to_string()]),
                    max_attempts,
                )
                .await?
            }
        };
        runs.push(run);
    }
    Ok(runs)
}

impl Store {
    /// Makes a run of the tenant's `pipeline` over `selection`, queued as a job.
    pub async fn create_run(
        &self,
        tenant: &TenantId,
        pipeline: &str,
        trigger: Trigger,
        selection: &Selection,
    ) -> Result<RunRow> {
        let max_attempts = self.run_attempts;
        let mut tx = self.write_tx().await?;
        // Locked (PostgreSQL) until the run is in: a concurrent delete of the pipeline waits, then
        // finds the run and refuses; or it went first, and this finds no pipeline.
        let sql = format!(
            "SELECT 1 FROM pipelines WHERE tenant_id = $1 AND id = $2{}",
            tx.backend().for_share()
        );
        let exists = on_tx!(tx, |c| {
            sqlx::query(&sql)
                .bind(tenant.as_str())
                .bind(pipeline)
                .fetch_optional(&mut *c)
                .await?
                .is_some()
        });
        if !exists {
            return Err(StoreError::NotFound);
        }
        let id = create_run_in(&mut tx, tenant, pipeline, trigger, selection, max_attempts).await?;
        tx.commit().await?;
        self.run(tenant, &id).await
    }

    /// One run with its counts.
    pub async fn run(&self, tenant: &TenantId, id: &str) -> Result<RunRow> {
        let sql = format!("SELECT {COLUMNS} FROM {FROM} WHERE r.tenant_id = $1 AND r.id = $2");
        let mut run = on_pool!(self, |c| {
            let row = sqlx::query(&sql)
                .bind(tenant.as_str())
                .bind(id)
                .fetch_optional(c)
                .await?
                .ok_or(StoreError::NotFound)?;
            run(&row)?
        });
        self.add_counts(tenant, std::slice::from_mut(&mut run))
            .await?;
        Ok(run)
    }

    /// Fills in the counts (items by state) of a page of runs with one query, not one per run.
    /// Items a run over a query has not written yet (its job writes them in chunks) count as
    /// pending, so the counts add up to `total` from the start.
    async fn add_counts(&self, tenant: &TenantId, runs: &mut [RunRow]) -> Result<()> {
        if runs.is_empty() {
            return Ok(());
        }
        let placeholders: Vec<String> = (0..runs.len()).map(|i| format!("${}", i + 2)).collect();
        let sql = format!(
            "SELECT run_id, status, COUNT(*) FROM run_items WHERE tenant_id = $1 \
             AND run_id IN ({}) GROUP BY run_id, status",
            placeholders.join(", ")
        );
        let counted: Vec<(String, String, i64)> = on_pool!(self, |c| {
            let mut query = sqlx::query(&sql).bind(tenant.as_str());
            for run in runs.iter() {
                query = query.bind(&run.id);
            }
            query
                .fetch_all(c)
                .await?
                .iter()
                .map(|r| Ok((r.at(0)?, r.at(1)?, r.at(2)?)))
                .collect::<Result<_>>()?
        });
        for run in runs.iter_mut() {
            let mut counts = RunCounts::default();
            for (_, status, n) in counted.iter().filter(|(id, _, _)| *id == run.id) {
                counts.add(item_status(status)?, *n);
            }
            counts.pending += (run.total - counts.counted()).max(0);
            run.counts = counts;
        }
        Ok(())
    }

    /// A page of the tenant's runs, newest first, optionally of one pipeline.
    pub async fn runs(
        &self,
        tenant: &TenantId,
        pipeline: Option<&str>,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<RunRow>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM {FROM} WHERE r.tenant_id = $1 AND ($2 = '' OR r.pipeline_id = $2) \
             AND ($3 = '' OR r.id < $3) ORDER BY r.id DESC LIMIT $4"
        );
        let rows = on_pool!(self, |c| {
            sqlx::query(&sql)
                .bind(tenant.as_str())
                .bind(pipeline.unwrap_or_default())
                .bind(cursor.unwrap_or_default())
                .bind(i64::from(limit) + 1)
                .fetch_all(c)
                .await?
                .iter()
                .map(run)
                .collect::<Result<Vec<_>>>()?
        });
        let mut items = rows;
        self.add_counts(tenant, &mut items).await?;
        let next_cursor = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(|r| r.id.clone())
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    /// Items of a run after position `after`, in order.
    pub async fn run_items(
        &self,
        tenant: &TenantId,
        run: &str,
        after: i64,
        limit: u32,
    ) -> Result<Vec<RunItemRow>> {
        on_pool!(self, |c| {
            sqlx::query(
                "SELECT seq, message_id, status, result FROM run_items \
                 WHERE tenant_id = $1 AND run_id = $2 AND seq > $3 ORDER BY seq LIMIT $4",
            )
            .bind(tenant.as_str())
            .bind(run)
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(c)
            .await?
            .iter()
            .map(|r| {
                let result: Option<String> = r.col("result")?;
                Ok(RunItemRow {
                    seq: r.col("seq")?,
                    message_id: r.col("message_id")?,
                    status: item_status(&r.col::<String>("status")?)?,
                    result: result
                        .map(|t| from_json(&t, "run item result"))
                        .transpose()?,
                })
            })
            .collect()
        })
    }

    /// Cancels a queued or running run, and its job; a finished one is a conflict.
    pub async fn cancel_run(&self, tenant: &TenantId, id: &str) -> Result<RunRow> {
        let run = self.run(tenant, id).await?;
        let mut tx = self.write_tx().await?;
        // The job's row first (PostgreSQL), then the run's: the order the job's holder takes them
        // in (its fence locks the job, then it writes the run), or the two would deadlock.
        if let Some(job) = &run.job_id {
            let lock = format!(
                "SELECT 1 FROM jobs WHERE tenant_id = $1 AND id = $2{}",
                tx.backend().for_update()
            );
            on_tx!(tx, |c| {
                sqlx::query(&lock)
                    .bind(tenant.as_str())
                    .bind(job)
                    .fetch_optional(&mut *c)
                    .await?;
            });
        }
        // The run's own status decides, not the one shown: a run whose job died shows `failed`
        // but is still queued or running underneath, and cancelling it ends both.
        let cancelled = on_tx!(tx, |c| {
            sqlx::query(
                "UPDATE runs SET status = 'cancelled', finished_at = $1 \
                 WHERE tenant_id = $2 AND id = $3 AND status IN ('queued', 'running')",
            )
            .bind(now_ms())
            .bind(tenant.as_str())
            .bind(id)
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        if cancelled == 0 {
            drop(tx);
            let status = self.run_status(tenant, id).await?;
            return Err(StoreError::Conflict(format!(
                "the run is already {}",
                status.as_str()
            )));
        }
        if let Some(job) = &run.job_id {
            cancel_job_in(&mut tx, tenant, job).await?;
        }
        tx.commit().await?;
        self.run(tenant, id).await
    }

    /// The run's status now (a worker checks it during a batch, to notice a cancel).
    pub async fn run_status(&self, tenant: &TenantId, id: &str) -> Result<RunStatus> {
        let status: String = on_pool!(self, |c| {
            sqlx::query("SELECT status FROM runs WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.as_str())
                .bind(id)
                .fetch_optional(c)
                .await?
                .ok_or(StoreError::NotFound)?
                .at(0)?
        });
        RunStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown run status {status:?}")))
    }

    /// The holder of a run's job starts (or resumes) it: `running`, and counted as resumed when a
    /// previous holder stopped without finishing. `false` when it is not queued or running any
    /// more (cancelled, or ended).
    pub async fn start_run(&self, lease: &Lease, id: &str, interrupted: bool) -> Result<bool> {
        let mut tx = self.write_tx().await?;
        fence(&mut tx, lease).await?;
        let done = on_tx!(tx, |c| {
            sqlx::query(
                "UPDATE runs SET status = 'running', started_at = COALESCE(started_at, $1), \
                 resumed = resumed + $2 WHERE tenant_id = $3 AND id = $4 \
                 AND status IN ('queued', 'running')",
            )
            .bind(now_ms())
            .bind(i64::from(interrupted))
            .bind(lease.tenant.as_str())
            .bind(id)
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        tx.commit().await?;
        Ok(done == 1)
    }

    /// Writes the next chunk of a query run's items; `false` once every item is written.
    pub async fn write_run_items(&self, lease: &Lease, id: &str) -> Result<bool> {
        let tenant = &lease.tenant;
        let mut tx = self.write_tx().await?;
        fence(&mut tx, lease).await?;
        let selection: Option<String> = on_tx!(tx, |c| {
            sqlx::query("SELECT selection FROM runs WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.as_str())
                .bind(id)
                .fetch_optional(&mut *c)
                .await?
                .ok_or(StoreError::NotFound)?
                .at(0)?
        });
        let Some(text) = selection else {
            return Ok(false);
        };
        let mut pending: PendingSelection = from_json(&text, "run selection")?;
        let mut cond = pending.filter.conditions(tenant, tx.backend());
        cond.push("m.id <= {}", super::Arg::Text(pending.upto.clone()));
        cond.push("m.id > {}", super::Arg::Text(pending.after.clone()));
        let sql = format!(
            "SELECT m.id FROM messages m WHERE {} ORDER BY m.id LIMIT {ITEM_CHUNK}",
            cond.where_clause()
        );
        let ids: Vec<String> = on_tx!(tx, |c| {
            cond.bind(sqlx::query(&sql))
                .fetch_all(&mut *c)
                .await?
                .iter()
                .map(|r| r.at(0))
                .collect::<Result<_>>()?
        });
        insert_items(&mut tx, tenant, id, pending.next_seq, &ids).await?;
        pending.next_seq += ids.len() as i64;
        let more = ids.len() == ITEM_CHUNK;
        if let Some(last) = ids.last() {
            pending.after = last.clone();
        }
        // Once every item is written the run's total is what was written (messages may have
        // moved in or out of a folder filter since the run was counted).
        let next = more.then(|| to_json(&pending));
        on_tx!(tx, |c| {
            sqlx::query(
                "UPDATE runs SET selection = $1, total = CASE WHEN $2 THEN total ELSE $3 END \
                 WHERE tenant_id = $4 AND id = $5",
            )
            .bind(&next)
            .bind(more)
            .bind(pending.next_seq)
            .bind(tenant.as_str())
            .bind(id)
            .execute(&mut *c)
            .await?;
        });
        tx.commit().await?;
        Ok(more)
    }

    /// The next pending items of a run.
    pub async fn pending_items(
        &self,
        tenant: &TenantId,
        run: &str,
        limit: u32,
    ) -> Result<Vec<WorkItem>> {
        on_pool!(self, |c| {
            sqlx::query(
                "SELECT seq, message_id, attempts FROM run_items WHERE tenant_id = $1 \
                 AND run_id = $2 AND status = 'pending' ORDER BY seq LIMIT $3",
            )
            .bind(tenant.as_str())
            .bind(run)
            .bind(i64::from(limit))
            .fetch_all(c)
            .await?
            .iter()
            .map(|r| {
                Ok(WorkItem {
                    seq: r.at(0)?,
                    message_id: r.at(1)?,
                    attempts: r.at(2)?,
                })
            })
            .collect()
        })
    }

    /// Commits processed items under the job's lease, in one transaction (one fence check and
    /// one commit for a whole batch rather than one per item). For each, `apply` turns the
    /// message's current envelope into the new one and the folders to copy it to; the new
    /// envelope, the copies and the item's result are written together. A message deleted
    /// meanwhile makes its item `missing`. An item already done (by a holder before this one) is
    /// left as it is: effects happen once.
    pub async fn complete_items(
        &self,
        lease: &Lease,
        run: &str,
        done: &[DoneItem],
        apply: impl Fn(&ItemResult, StoredEnvelope) -> (StoredEnvelope, Vec<String>),
    ) -> Result<()> {
        let mut tx = self.write_tx().await?;
        fence(&mut tx, lease).await?;
        for item in done {
            commit_item(&mut tx, &lease.tenant, run, item, &apply).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Records a failed attempt at an item: a permanent failure, or the last of `max_attempts`
    /// transient ones, marks it `failed` with `error`; otherwise it stays pending for another try.
    /// Returns the item's status after.
    pub async fn fail_item(
        &self,
        lease: &Lease,
        run: &str,
        item: &WorkItem,
        error: &str,
        permanent: bool,
        max_attempts: i64,
    ) -> Result<ItemStatus> {
        let give_up = permanent || item.attempts + 1 >= max_attempts;
        let status = if give_up {
            ItemStatus::Failed
        } else {
            ItemStatus::Pending
        };
        let result = give_up.then(|| to_json(&ItemResult::failed(error)));
        let mut tx = self.write_tx().await?;
        fence(&mut tx, lease).await?;
        on_tx!(tx, |c| {
            sqlx::query(
                "UPDATE run_items SET status = $1, result = $2, attempts = attempts + 1, \
                 done_at = $6 WHERE tenant_id = $3 AND run_id = $4 AND seq = $5 \
                 AND status = 'pending'",
            )
            .bind(status.as_str())
            .bind(&result)
            .bind(lease.tenant.as_str())
            .bind(run)
            .bind(item.seq)
            .bind(give_up.then(now_ms))
            .execute(&mut *c)
            .await?;
        });
        tx.commit().await?;
        Ok(status)
    }

    /// Ends a run that is still running (a cancel in the meantime wins), under the job's lease.
    pub async fn finish_run(
        &self,
        lease: &Lease,
        id: &str,
        status: RunStatus,
        error: Option<&str>,
    ) -> Result<()> {
        let mut tx = self.write_tx().await?;
        fence(&mut tx, lease).await?;
        on_tx!(tx, |c| {
            sqlx::query(
                "UPDATE runs SET status = $1, error = $2, finished_at = $3 \
                 WHERE tenant_id = $4 AND id = $5 AND status = 'running'",
            )
            .bind(status.as_str())
            .bind(error)
            .bind(now_ms())
            .bind(lease.tenant.as_str())
            .bind(id)
            .execute(&mut *c)
            .await?;
        });
        tx.commit().await?;
        Ok(())
    }
}

/// A processed item, ready to commit.
#[derive(Debug, Clone)]
pub struct DoneItem {
    /// The item.
    pub item: WorkItem,
    /// Its status if its message is still there.
    pub status: ItemStatus,
    /// What the stages decided.
    pub result: ItemResult,
}

/// Commits one item inside a fenced transaction (see [`Store::complete_items`]).
async fn commit_item(
    tx: &mut WriteTx,
    tenant: &TenantId,
    run: &str,
    done: &DoneItem,
    apply: &impl Fn(&ItemResult, StoredEnvelope) -> (StoredEnvelope, Vec<String>),
) -> Result<()> {
    let item = &done.item;
    let still_pending = on_tx!(tx, |c| {
        sqlx::query(
            "SELECT 1 FROM run_items WHERE tenant_id = $1 AND run_id = $2 AND seq = $3 \
             AND status = 'pending'",
        )
        .bind(tenant.as_str())
        .bind(run)
        .bind(item.seq)
        .fetch_optional(&mut *c)
        .await?
        .is_some()
    });
    if !still_pending {
        return Ok(());
    }
    let status = match read_envelope(tx, tenant, &item.message_id).await? {
        None => ItemStatus::Missing,
        Some(current) => {
            let (next, copies) = apply(&done.result, current.clone());
            if next != current {
                write_envelope(tx, tenant, &item.message_id, &next).await?;
            }
            for folder in copies {
                copy_message(tx, tenant, &item.message_id, &folder).await?;
            }
            done.status
        }
    };
    on_tx!(tx, |c| {
        sqlx::query(
            "UPDATE run_items SET status = $1, result = $2, done_at = $6 \
             WHERE tenant_id = $3 AND run_id = $4 AND seq = $5",
        )
        .bind(status.as_str())
        .bind(to_json(&done.result))
        .bind(tenant.as_str())
        .bind(run)
        .bind(item.seq)
        .bind(now_ms())
        .execute(&mut *c)
        .await?;
    });
    Ok(())
}
