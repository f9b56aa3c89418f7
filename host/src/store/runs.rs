//! Runs: a pipeline applied to a fixed list of messages, item by item, resumable after a restart.
//!
//! A run's items are written when the run is made (the selection is resolved once), each starting
//! `pending`. Processing an item commits its results and the actions it applied in one transaction,
//! so after a crash an item is either fully done or still pending, and resuming repeats nothing.

use super::messages::{StoredEnvelope, copy_message, read_envelope, write_envelope};
use super::pipelines::{StageRow, stages};
use super::{Page, Result, Store, StoreError, from_json, new_id, now_ms, to_json};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    /// Waiting for a worker.
    Queued,
    /// Being executed.
    Running,
    /// Every item was processed.
    Completed,
    /// The run could not execute (e.g. a stage could not be prepared); `error` says why.
    Failed,
    /// Cancelled; items not processed stay pending.
    Cancelled,
}

impl RunStatus {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    /// Parses a stable name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "queued" => Self::Queued,
            "running" => Self::Running,
            "completed" => Self::Completed,
            "failed" => Self::Failed,
            "cancelled" => Self::Cancelled,
            _ => return None,
        })
    }

    /// Whether the run will not change any more.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled)
    }
}

/// What happened to one message of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemStatus {
    /// Not processed yet.
    Pending,
    /// Every stage that ran succeeded.
    Ok,
    /// A stage failed; its `on_error` was `continue` or `stop`.
    StageFailed,
    /// A stage failed and the message was moved to quarantine.
    Quarantined,
    /// The message no longer exists.
    Missing,
}

impl ItemStatus {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Ok => "ok",
            Self::StageFailed => "stage_failed",
            Self::Quarantined => "quarantined",
            Self::Missing => "missing",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "pending" => Self::Pending,
            "ok" => Self::Ok,
            "stage_failed" => Self::StageFailed,
            "quarantined" => Self::Quarantined,
            "missing" => Self::Missing,
            other => {
                return Err(StoreError::Corrupt(format!(
                    "unknown item status {other:?}"
                )));
            }
        })
    }
}

/// How many items are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunCounts {
    /// Not processed yet.
    pub pending: i64,
    /// Succeeded.
    pub ok: i64,
    /// A stage failed.
    pub stage_failed: i64,
    /// Quarantined.
    pub quarantined: i64,
    /// Message gone.
    pub missing: i64,
}

/// A stored run.
#[derive(Debug, Clone)]
pub struct RunRow {
    /// Its id.
    pub id: String,
    /// The pipeline it runs.
    pub pipeline_id: String,
    /// `api` or `import`.
    pub trigger: String,
    /// Where it is.
    pub status: RunStatus,
    /// The pipeline's stages when the run was made.
    pub stages: Vec<StageRow>,
    /// Messages covered.
    pub total: i64,
    /// Times a restart picked it up again.
    pub resumed: i64,
    /// Why it failed.
    pub error: Option<String>,
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
    /// Per-stage results and what was applied (JSON).
    pub result: Option<serde_json::Value>,
}

/// A pending item handed to a worker.
#[derive(Debug, Clone)]
pub struct WorkItem {
    /// Position in the run.
    pub seq: i64,
    /// The message.
    pub message_id: String,
}

const COLUMNS: &str = "id, pipeline_id, trigger, status, stages, total, resumed, error, created_at, \
                       started_at, finished_at";

fn run(row: &AnyRow) -> Result<RunRow> {
    let status: String = row.try_get("status")?;
    Ok(RunRow {
        id: row.try_get("id")?,
        pipeline_id: row.try_get("pipeline_id")?,
        trigger: row.try_get("trigger")?,
        status: RunStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown run status {status:?}")))?,
        stages: from_json(&row.try_get::<String, _>("stages")?, "run stages")?,
        total: row.try_get("total")?,
        resumed: row.try_get("resumed")?,
        error: row.try_get("error")?,
        created_at: row.try_get("created_at")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
        counts: RunCounts::default(),
    })
}

/// Makes a run of `pipeline` over `messages` inside a transaction.
async fn create_run_in(
    conn: &mut AnyConnection,
    tenant: &str,
    pipeline: &str,
    trigger: &str,
    messages: &[String],
) -> Result<String> {
    let stages = stages(conn, tenant, pipeline).await?;
    let id = new_id();
    sqlx::query(&format!(
        "INSERT INTO runs (tenant_id, {COLUMNS}) \
         VALUES ($1, $2, $3, $4, 'queued', $5, $6, 0, NULL, $7, NULL, NULL)"
    ))
    .bind(tenant)
    .bind(&id)
    .bind(pipeline)
    .bind(trigger)
    .bind(to_json(&stages))
    .bind(messages.len() as i64)
    .bind(now_ms())
    .execute(&mut *conn)
    .await?;
    // Multi-row inserts keep a run over a whole mailbox to a few hundred statements.
    for (chunk_no, chunk) in messages.chunks(200).enumerate() {
        let mut sql = String::from(
            "INSERT INTO run_items (tenant_id, run_id, seq, message_id, status) VALUES ",
        );
        for i in 0..chunk.len() {
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!(
                "($1, $2, ${}, ${}, 'pending')",
                3 + 2 * i,
                4 + 2 * i
            ));
        }
        let mut query = sqlx::query(&sql).bind(tenant).bind(&id);
        for (i, message) in chunk.iter().enumerate() {
            query = query.bind((chunk_no * 200 + i) as i64).bind(message);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(id)
}

/// Queues a run of every on-import pipeline over a just-imported message.
/// Queues every on-import pipeline over a just-imported message. A message joins the pipeline's
/// import run that is still queued (same stages) instead of making a run of its own, so a burst of
/// imports becomes a few runs of many messages rather than one run per message. Only a queued run is
/// joined: a running one may be about to find no pending item and complete.
pub(crate) async fn queue_import_runs(
    conn: &mut AnyConnection,
    tenant: &str,
    message: &str,
) -> Result<Vec<String>> {
    let pipelines = sqlx::query(
        "SELECT id FROM pipelines WHERE tenant_id = $1 AND on_import = 1 ORDER BY name",
    )
    .bind(tenant)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| r.try_get::<String, _>(0))
    .collect::<Result<Vec<_>, _>>()?;
    let mut runs = Vec::with_capacity(pipelines.len());
    for pipeline in pipelines {
        let current = to_json(&stages(conn, tenant, &pipeline).await?);
        let open = sqlx::query(
            "SELECT id, total FROM runs WHERE tenant_id = $1 AND pipeline_id = $2 \
             AND trigger = 'import' AND status = 'queued' AND stages = $3 ORDER BY id DESC LIMIT 1",
        )
        .bind(tenant)
        .bind(&pipeline)
        .bind(&current)
        .fetch_optional(&mut *conn)
        .await?;
        let run = match open {
            Some(row) => {
                let (id, total): (String, i64) = (row.try_get(0)?, row.try_get(1)?);
                sqlx::query(
                    "INSERT INTO run_items (tenant_id, run_id, seq, message_id, status) \
                     VALUES ($1, $2, $3, $4, 'pending')",
                )
                .bind(tenant)
                .bind(&id)
                .bind(total)
                .bind(message)
                .execute(&mut *conn)
                .await?;
                sqlx::query("UPDATE runs SET total = total + 1 WHERE tenant_id = $1 AND id = $2")
                    .bind(tenant)
                    .bind(&id)
                    .execute(&mut *conn)
                    .await?;
                id
            }
            None => {
                create_run_in(conn, tenant, &pipeline, "import", &[message.to_string()]).await?
            }
        };
        runs.push(run);
    }
    Ok(runs)
}

impl Store {
    /// Makes a run of the tenant's `pipeline` over `messages`.
    pub async fn create_run(
        &self,
        tenant: &str,
        pipeline: &str,
        trigger: &str,
        messages: &[String],
    ) -> Result<RunRow> {
        let mut tx = self.write_tx().await?;
        let exists = sqlx::query("SELECT 1 FROM pipelines WHERE tenant_id = $1 AND id = $2")
            .bind(tenant)
            .bind(pipeline)
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_none() {
            return Err(StoreError::NotFound);
        }
        let id = create_run_in(&mut tx, tenant, pipeline, trigger, messages).await?;
        tx.commit().await?;
        self.run(tenant, &id).await
    }

    /// One run with its counts.
    pub async fn run(&self, tenant: &str, id: &str) -> Result<RunRow> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM runs WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(tenant)
        .bind(id)
        .fetch_optional(self.pool())
        .await?
        .ok_or(StoreError::NotFound)?;
        let mut run = run(&row)?;
        run.counts = self.run_counts(tenant, id).await?;
        Ok(run)
    }

    async fn run_counts(&self, tenant: &str, id: &str) -> Result<RunCounts> {
        let rows = sqlx::query(
            "SELECT status, COUNT(*) FROM run_items WHERE tenant_id = $1 AND run_id = $2 GROUP BY status",
        )
        .bind(tenant)
        .bind(id)
        .fetch_all(self.pool())
        .await?;
        let mut counts = RunCounts::default();
        for row in &rows {
            let n: i64 = row.try_get(1)?;
            match ItemStatus::parse(&row.try_get::<String, _>(0)?)? {
                ItemStatus::Pending => counts.pending = n,
                ItemStatus::Ok => counts.ok = n,
                ItemStatus::StageFailed => counts.stage_failed = n,
                ItemStatus::Quarantined => counts.quarantined = n,
                ItemStatus::Missing => counts.missing = n,
            }
        }
        Ok(counts)
    }

    /// A page of the tenant's runs, newest first, optionally of one pipeline.
    pub async fn runs(
        &self,
        tenant: &str,
        pipeline: Option<&str>,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<RunRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM runs WHERE tenant_id = $1 AND ($2 = '' OR pipeline_id = $2) \
             AND ($3 = '' OR id < $3) ORDER BY id DESC LIMIT $4"
        ))
        .bind(tenant)
        .bind(pipeline.unwrap_or_default())
        .bind(cursor.unwrap_or_default())
        .bind(i64::from(limit) + 1)
        .fetch_all(self.pool())
        .await?;
        let mut items = Vec::with_capacity(rows.len());
        for row in &rows {
            let mut run = run(row)?;
            run.counts = self.run_counts(tenant, &run.id).await?;
            items.push(run);
        }
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
        tenant: &str,
        run: &str,
        after: i64,
        limit: u32,
    ) -> Result<Vec<RunItemRow>> {
        sqlx::query(
            "SELECT seq, message_id, status, result FROM run_items \
             WHERE tenant_id = $1 AND run_id = $2 AND seq > $3 ORDER BY seq LIMIT $4",
        )
        .bind(tenant)
        .bind(run)
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(|r| {
            let result: Option<String> = r.try_get("result")?;
            Ok(RunItemRow {
                seq: r.try_get("seq")?,
                message_id: r.try_get("message_id")?,
                status: ItemStatus::parse(&r.try_get::<String, _>("status")?)?,
                result: result
                    .map(|t| from_json(&t, "run item result"))
                    .transpose()?,
            })
        })
        .collect()
    }

    /// Cancels a queued or running run; a finished one is a conflict.
    pub async fn cancel_run(&self, tenant: &str, id: &str) -> Result<RunRow> {
        let run = self.run(tenant, id).await?;
        if run.status.is_final() {
            return Err(StoreError::Conflict(format!(
                "the run is already {}",
                run.status.as_str()
            )));
        }
        self.write_one(
            sqlx::query(
                "UPDATE runs SET status = 'cancelled', finished_at = $1 \
                 WHERE tenant_id = $2 AND id = $3 AND status IN ('queued', 'running')",
            )
            .bind(now_ms())
            .bind(tenant)
            .bind(id),
        )
        .await?;
        self.run(tenant, id).await
    }

    /// Puts runs left `running` by a stopped process back in the queue; returns how many.
    ///
    /// Only for a single node (the embedded default), where nothing else can be running them.
    pub async fn requeue_interrupted_runs(&self) -> Result<u64> {
        let done = self
            .write_one(sqlx::query(
                "UPDATE runs SET status = 'queued', resumed = resumed + 1 WHERE status = 'running'",
            ))
            .await?;
        Ok(done.rows_affected())
    }

    /// Claims the oldest queued run, preferring tenants not in `busy` so one tenant's long runs do
    /// not hold up everyone else's.
    pub async fn claim_run(&self, busy: &[String]) -> Result<Option<(String, RunRow)>> {
        let candidates = sqlx::query(
            "SELECT tenant_id, id FROM runs WHERE status = 'queued' ORDER BY created_at, id LIMIT 64",
        )
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(|r| Ok((r.try_get::<String, _>(0)?, r.try_get::<String, _>(1)?)))
        .collect::<Result<Vec<_>>>()?;
        let mut ordered: Vec<&(String, String)> = candidates
            .iter()
            .filter(|(t, _)| !busy.contains(t))
            .collect();
        ordered.extend(candidates.iter().filter(|(t, _)| busy.contains(t)));
        for (tenant, id) in ordered {
            let claimed = self
                .write_one(
                    sqlx::query(
                        "UPDATE runs SET status = 'running', started_at = COALESCE(started_at, $1) \
                         WHERE tenant_id = $2 AND id = $3 AND status = 'queued'",
                    )
                    .bind(now_ms())
                    .bind(tenant)
                    .bind(id),
                )
                .await?;
            if claimed.rows_affected() == 1 {
                return Ok(Some((tenant.clone(), self.run(tenant, id).await?)));
            }
        }
        Ok(None)
    }

    /// The run's status now (a worker checks it between batches, to notice a cancel).
    pub async fn run_status(&self, tenant: &str, id: &str) -> Result<RunStatus> {
        let row = sqlx::query("SELECT status FROM runs WHERE tenant_id = $1 AND id = $2")
            .bind(tenant)
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .ok_or(StoreError::NotFound)?;
        let status: String = row.try_get(0)?;
        RunStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown run status {status:?}")))
    }

    /// The next pending items of a run.
    pub async fn pending_items(
        &self,
        tenant: &str,
        run: &str,
        limit: u32,
    ) -> Result<Vec<WorkItem>> {
        sqlx::query(
            "SELECT seq, message_id FROM run_items WHERE tenant_id = $1 AND run_id = $2 \
             AND status = 'pending' ORDER BY seq LIMIT $3",
        )
        .bind(tenant)
        .bind(run)
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(|r| {
            Ok(WorkItem {
                seq: r.try_get(0)?,
                message_id: r.try_get(1)?,
            })
        })
        .collect()
    }

    /// Commits one item: `apply` turns the message's current envelope into the new one and the
    /// folders to copy it to; the new envelope, the copies and the item's result are written in one
    /// transaction. A message deleted meanwhile makes the item `missing`.
    pub async fn complete_item(
        &self,
        tenant: &str,
        run: &str,
        item: &WorkItem,
        status: ItemStatus,
        result: &serde_json::Value,
        apply: impl FnOnce(StoredEnvelope) -> (StoredEnvelope, Vec<String>),
    ) -> Result<ItemStatus> {
        let mut tx = self.write_tx().await?;
        let status = match read_envelope(&mut tx, tenant, &item.message_id).await? {
            None => ItemStatus::Missing,
            Some(current) => {
                let (next, copies) = apply(current.clone());
                if next != current {
                    write_envelope(&mut tx, tenant, &item.message_id, &next).await?;
                }
                for folder in copies {
                    copy_message(&mut tx, tenant, &item.message_id, &folder).await?;
                }
                status
            }
        };
        sqlx::query(
            "UPDATE run_items SET status = $1, result = $2 WHERE tenant_id = $3 AND run_id = $4 AND seq = $5",
        )
        .bind(status.as_str())
        .bind(to_json(result))
        .bind(tenant)
        .bind(run)
        .bind(item.seq)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(status)
    }

    /// Ends a run that is still running (a cancel in the meantime wins).
    pub async fn finish_run(
        &self,
        tenant: &str,
        id: &str,
        status: RunStatus,
        error: Option<&str>,
    ) -> Result<()> {
        self.write_one(
            sqlx::query(
                "UPDATE runs SET status = $1, error = $2, finished_at = $3 \
                 WHERE tenant_id = $4 AND id = $5 AND status = 'running'",
            )
            .bind(status.as_str())
            .bind(error)
            .bind(now_ms())
            .bind(tenant)
            .bind(id),
        )
        .await?;
        Ok(())
    }

    /// Puts a running run back in the queue (this node is shutting down mid-run); the next start
    /// resumes it.
    pub async fn release_run(&self, tenant: &str, id: &str) -> Result<()> {
        self.write_one(
            sqlx::query(
                "UPDATE runs SET status = 'queued', resumed = resumed + 1 \
                 WHERE tenant_id = $1 AND id = $2 AND status = 'running'",
            )
            .bind(tenant)
            .bind(id),
        )
        .await?;
        Ok(())
    }
}
