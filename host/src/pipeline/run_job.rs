//! The job that executes a run (`pipeline_run`): a [`Handler`] of the queue.
//!
//! An attempt starts (or resumes) the run, writes the items of a query selection a chunk at a time,
//! prepares the stages, then processes pending items a batch at a time; a batch's results and
//! effects commit in one transaction under the job's lease. Between chunks and batches it stops for a
//! shutdown (the job is released and resumes elsewhere or at the next start) and yields to other
//! tenants' waiting jobs (so one tenant's 100,000-message run delays another's by at most a batch).
//! During a batch it watches for a cancel, which drops the items in flight uncommitted.
//!
//! Failures are kept as small as they are: an item that fails transiently is retried (in a later
//! batch), one that fails permanently (damaged stored data) is marked `failed`; neither fails the
//! run. A stage that cannot be prepared fails the run (every item would fail the same way). A store
//! failure around the run (not an item) is a transient failure of the job: retried with backoff.

use super::execute::{ReadyStage, apply_to, execute};
use super::stages::StageCache;
use super::{PipelineError, ingest};
use crate::domain::{ItemResult, ItemStatus, RunStatus, TenantId};
use crate::queue::{Handler, JobContext, Outcome};
use crate::sandbox::{FailureKind, Keep, LoadError, PluginLimits};
use crate::store::{DoneItem, JobRow, Lease, RUN_JOB, RunRow, Store, StoreError, WorkItem};
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use std::time::Duration;

/// How often a batch in flight looks whether its run was cancelled (on any node: the database says).
const CANCEL_POLL: Duration = Duration::from_millis(100);

/// Transient failures of one item before it is marked failed.
const ITEM_ATTEMPTS: i64 = 3;

/// Executes runs.
#[derive(Debug, Clone)]
pub struct RunJobs {
    store: Store,
    stages: StageCache,
    batch: usize,
}

impl RunJobs {
    /// Runs over `store`, `batch` messages of a run at once.
    pub fn new(store: Store, stages: StageCache, batch: usize) -> Self {
        Self {
            store,
            stages,
            batch: batch.max(1),
        }
    }
}

/// Why a run's stages could not be prepared.
enum PrepareError {
    /// Trying again may succeed (the database or the engine failed): the job retries.
    Transient(PipelineError),
    /// Every attempt would fail the same way (the plugin version is gone, the plugin rejects its
    /// configuration or exceeds its budgets): the run fails, saying which stage and why.
    Permanent(String),
}

/// Whether a preparation failure is the stage's own (it would fail every attempt), rather than
/// the database's or this node's.
fn fails_every_attempt(e: &PipelineError) -> bool {
    match e {
        PipelineError::Store(StoreError::NotFound | StoreError::Corrupt(_)) => true,
        PipelineError::Load(LoadError::ShuttingDown | LoadError::Engine(_)) => false,
        PipelineError::Load(_) => true,
        PipelineError::Store(_) | PipelineError::Internal(_) => false,
    }
}

/// Whether a failed commit is about the item's own data (damaged rows, a constraint it breaks)
/// rather than the database as a whole.
fn concerns_the_item(e: &StoreError) -> bool {
    match e {
        StoreError::Corrupt(_) => true,
        StoreError::Database(sqlx::Error::Database(db)) => {
            use sqlx::error::ErrorKind;
            matches!(
                db.kind(),
                ErrorKind::UniqueViolation
                    | ErrorKind::ForeignKeyViolation
                    | ErrorKind::NotNullViolation
                    | ErrorKind::CheckViolation
            )
        }
        _ => false,
    }
}

/// Why an attempt stopped early.
enum Stop {
    /// The answer to give the queue.
    With(Outcome),
    /// A failure of the store or the pipeline.
    Error(PipelineError),
}

impl From<PipelineError> for Stop {
    fn from(e: PipelineError) -> Self {
        match e {
            PipelineError::Store(StoreError::LeaseLost) => Stop::With(Outcome::Lost),
            e => Stop::Error(e),
        }
    }
}

impl From<StoreError> for Stop {
    fn from(e: StoreError) -> Self {
        PipelineError::from(e).into()
    }
}

impl Handler for RunJobs {
    fn kind(&self) -> &'static str {
        RUN_JOB
    }

    fn run<'a>(&'a self, job: &'a JobRow, ctx: &'a JobContext) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let Some(run_id) = job.payload.get("run_id").and_then(|v| v.as_str()) else {
                return Outcome::Fail("the job names no run (payload without run_id)".into());
            };
            match self.attempt(run_id, ctx).await {
                Ok(outcome) | Err(Stop::With(outcome)) => outcome,
                // The tenant or the run was deleted meanwhile: nothing is left to do.
                Err(Stop::Error(PipelineError::Store(StoreError::NotFound))) => Outcome::Done,
                Err(Stop::Error(e)) => Outcome::Retry(e.to_string()),
            }
        })
    }
}

impl RunJobs {
    async fn attempt(&self, run_id: &str, ctx: &JobContext) -> Result<Outcome, Stop> {
        let store = &self.store;
        let lease = &ctx.lease;
        let run = store.run(ctx.tenant(), run_id).await?;
        if run.status.is_final() || !store.start_run(lease, run_id, ctx.interrupted).await? {
            return Ok(Outcome::Done);
        }
        // A query's items, a chunk per transaction.
        while store.write_run_items(lease, run_id).await? {
            if let Some(outcome) = self.pause(ctx).await {
                return Ok(outcome);
            }
        }
        let limits = store.tenant(ctx.tenant()).await?.limits;
        let stages = match self.prepare(ctx.tenant(), &run, &limits).await {
            Ok(stages) => stages,
            // Stopped by this node's shutdown (compiles are killed): another node, or the next
            // start, prepares again.
            Err(_) if ctx.stopping() => return Ok(Outcome::Release),
            Err(PrepareError::Transient(e)) => return Err(e.into()),
            Err(PrepareError::Permanent(why)) => {
                store
                    .finish_run(lease, run_id, RunStatus::Failed, Some(&why))
                    .await?;
                return Ok(Outcome::Done);
            }
        };
        let mut progressed = false;
        loop {
            if ctx.stopping() {
                return Ok(Outcome::Release);
            }
            if store.run_status(ctx.tenant(), run_id).await? != RunStatus::Running {
                return Ok(Outcome::Done); // cancelled
            }
            // One more than a batch: whether this batch is the last one.
            let mut items = store
                .pending_items(ctx.tenant(), run_id, self.batch as u32 + 1)
                .await?;
            if items.is_empty() {
                store
                    .finish_run(lease, run_id, RunStatus::Completed, None)
                    .await?;
                return Ok(Outcome::Done);
            }
            let last_batch = items.len() <= self.batch;
            items.truncate(self.batch);
            // Between batches, give way to another tenant's waiting job — unless this is the last
            // batch: finishing costs no more than the batch another job would run first, and a
            // small run is then never made to wait behind a big one batch by batch.
            if progressed
                && !last_batch
                && let Some(outcome) = self.pause(ctx).await
            {
                return Ok(outcome);
            }
            let batch = futures_util::stream::iter(items)
                .map(|item| self.process(lease, &stages, &limits, item))
                .buffer_unordered(self.batch)
                .collect::<Vec<_>>();
            // A cancel stops the batch in flight: dropping it drops its plugin calls, which frees
            // their permits at once. Nothing of it was committed: its items stay pending.
            let mut stopping = ctx.shutdown.clone();
            let results = tokio::select! {
                // Shutdown first: calls cut short by it report host failures, which must not be
                // committed as the plugins' results.
                biased;
                // Shutdown does not wait on plugins: the batch in flight is dropped uncommitted
                // (results and effects commit together, so nothing is half-applied) and runs again
                // when the job resumes.
                () = async { let _ = stopping.wait_for(|stop| *stop).await; } => {
                    return Ok(Outcome::Release);
                }
                results = batch => results,
                cancelled = self.cancelled(ctx.tenant(), run_id) => {
                    cancelled?;
                    return Ok(Outcome::Done);
                }
            };
            if ctx.stopping() {
                return Ok(Outcome::Release);
            }
            let mut done = Vec::with_capacity(results.len());
            for (item, result) in results {
                match result {
                    Ok(processed) => done.push(processed),
                    Err(e) => self.item_failed(lease, run_id, &item, e).await?,
                }
            }
            self.commit(lease, run_id, done).await?;
            progressed = true;
        }
    }

    /// Between two steps: stop for a shutdown, or give way to another tenant's waiting job.
    async fn pause(&self, ctx: &JobContext) -> Option<Outcome> {
        if ctx.stopping() {
            Some(Outcome::Release)
        } else if ctx.should_yield().await {
            Some(Outcome::Yield)
        } else {
            None
        }
    }

    /// Prepares every stage, or says which cannot run.
    async fn prepare(
        &self,
        tenant: &TenantId,
        run: &RunRow,
        limits: &PluginLimits,
    ) -> Result<Vec<ReadyStage>, PrepareError> {
        let mut stages = Vec::with_capacity(run.stages.len());
        for (index, stage) in run.stages.iter().enumerate() {
            let prepared = match self
                .store
                .plugin_version(tenant, &stage.plugin, stage.version)
                .await
            {
                Ok(version) => {
                    self.stages
                        .prepared(tenant, &version, &stage.config, limits, Keep::Cached)
                        .await
                }
                Err(e) => Err(e.into()),
            };
            match prepared {
                Ok(prepared) => stages.push(ReadyStage {
                    row: stage.clone(),
                    prepared,
                }),
                Err(e) if !fails_every_attempt(&e) => return Err(PrepareError::Transient(e)),
                Err(e) => {
                    return Err(PrepareError::Permanent(format!(
                        "stage {index} ({} version {}) cannot run: {e}",
                        stage.plugin, stage.version
                    )));
                }
            }
        }
        Ok(stages)
    }

    /// Records an item's failure: transient ones are tried again (up to [`ITEM_ATTEMPTS`]),
    /// permanent ones mark the item failed. A lost lease stops the attempt.
    async fn item_failed(
        &self,
        lease: &Lease,
        run: &str,
        item: &WorkItem,
        error: PipelineError,
    ) -> Result<(), Stop> {
        let permanent = match &error {
            PipelineError::Store(StoreError::LeaseLost) => return Err(Stop::With(Outcome::Lost)),
            PipelineError::Store(StoreError::Corrupt(_)) => true,
            _ => false,
        };
        let status = self
            .store
            .fail_item(
                lease,
                run,
                item,
                &error.to_string(),
                permanent,
                ITEM_ATTEMPTS,
            )
            .await?;
        if status == ItemStatus::Failed {
            tracing::warn!(run, message = %item.message_id, "item failed: {error}");
        }
        Ok(())
    }

    /// Resolves once the run is no longer running (cancelled, or ended elsewhere).
    async fn cancelled(&self, tenant: &TenantId, run: &str) -> Result<(), PipelineError> {
        loop {
            tokio::time::sleep(CANCEL_POLL).await;
            match self.store.run_status(tenant, run).await {
                Ok(RunStatus::Running) => {}
                Ok(_) => return Ok(()),
                // Not a reason to drop the batch's work: the next poll looks again.
                Err(e) => tracing::warn!(run, "cannot look whether the run was cancelled: {e}"),
            }
        }
    }

    /// Commits a batch's processed items in one transaction; when that fails (not for a lost
    /// lease), item by item, so one item the store cannot take does not hold back the others.
    async fn commit(&self, lease: &Lease, run: &str, done: Vec<DoneItem>) -> Result<(), Stop> {
        if done.is_empty() {
            return Ok(());
        }
        match self.store.complete_items(lease, run, &done, apply_to).await {
            Ok(_) => return Ok(()),
            Err(StoreError::LeaseLost) => return Err(Stop::With(Outcome::Lost)),
            Err(e) => tracing::warn!(
                run,
                "committing a batch failed, committing its items one by one: {e}"
            ),
        }
        for one in done {
            match self
                .store
                .complete_items(lease, run, std::slice::from_ref(&one), apply_to)
                .await
            {
                Ok(_) => {}
                // This item's data: it fails (or is tried again), the others go on.
                Err(e) if concerns_the_item(&e) => {
                    self.item_failed(lease, run, &one.item, e.into()).await?
                }
                // The database itself (busy, unreachable, full): the job retries later, and no
                // item is charged an attempt for it.
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    async fn process(
        &self,
        lease: &Lease,
        stages: &[ReadyStage],
        limits: &PluginLimits,
        item: WorkItem,
    ) -> (WorkItem, Result<DoneItem, PipelineError>) {
        let result = self.process_one(lease, stages, limits, &item).await;
        (item, result)
    }

    /// Runs the stages over one item's message; nothing is written (the batch commits together).
    async fn process_one(
        &self,
        lease: &Lease,
        stages: &[ReadyStage],
        limits: &PluginLimits,
        item: &WorkItem,
    ) -> Result<DoneItem, PipelineError> {
        let (summary, raw) = match self
            .store
            .message_with_raw(&lease.tenant, &item.message_id)
            .await
        {
            Ok(found) => found,
            Err(StoreError::NotFound) => {
                return Ok(DoneItem {
                    item: item.clone(),
                    status: ItemStatus::Missing,
                    result: ItemResult::failed("the message no longer exists"),
                });
            }
            Err(e) => return Err(e.into()),
        };
        let envelope = summary.stored_envelope();
        let message = ingest::parse(raw, envelope.for_plugins()).await?;
        let runtime = self.stages.runtime();
        let result = execute(runtime, stages, message, envelope, limits).await;
        // A host failure is not the plugin's result (the host could not run it): the item is
        // tried again rather than recorded, and quarantined, as if the plugin had failed.
        if let Some(failure) = result
            .stages
            .iter()
            .filter_map(|s| s.error.as_ref())
            .find(|f| f.kind == FailureKind::Host)
        {
            return Err(PipelineError::Internal(format!(
                "the host could not run a stage: {}",
                failure.message
            )));
        }
        Ok(DoneItem {
            item: item.clone(),
            status: result.status(),
            result,
        })
    }
}
