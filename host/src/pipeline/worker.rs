//! Executes queued runs in the background.
//!
//! A run is claimed, its stages prepared, then its pending items processed a batch at a time; each
//! item's results and effects commit together. Between batches the worker notices cancels and
//! shutdown: on shutdown the items in flight are dropped uncommitted and the run goes back to the queue, so the next
//! start resumes it where it stopped.

use super::execute::{ReadyStage, execute};
use super::stages::StageCache;
use super::{PipelineError, ingest};
use crate::sandbox::Keep;
use crate::store::{ItemStatus, RunRow, RunStatus, Store, StoreError, WorkItem};
use futures_util::StreamExt;
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, watch};

/// How long an idle worker waits before looking at the queue again without being woken.
const IDLE_POLL: Duration = Duration::from_secs(2);

/// How often a batch in flight looks whether its run was cancelled (on any node: the database says).
const CANCEL_POLL: Duration = Duration::from_millis(100);

/// Runs pipelines. Cheap to clone.
#[derive(Clone)]
pub struct Worker {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    stages: StageCache,
    batch: usize,
    wake: Notify,
    /// Tenants with a run executing on this node, for fair claiming.
    busy: Mutex<Vec<String>>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker").finish_non_exhaustive()
    }
}

/// What one step of a worker did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Executed (or stopped executing) the run with this id.
    Ran(String),
    /// Nothing was queued.
    Empty,
}

impl Worker {
    /// A worker over `store`, processing `batch` messages of a run at once.
    pub fn new(store: Store, stages: StageCache, batch: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                stages,
                batch: batch.max(1),
                wake: Notify::new(),
                busy: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Tells idle workers there is work.
    pub fn wake(&self) {
        self.inner.wake.notify_waiters();
    }

    /// Runs `count` worker loops until `shutdown` turns true; returns when all have stopped.
    pub async fn run(&self, count: usize, shutdown: watch::Receiver<bool>) {
        let loops = (0..count.max(1)).map(|_| {
            let (worker, shutdown) = (self.clone(), shutdown.clone());
            tokio::spawn(async move { worker.run_loop(shutdown).await })
        });
        for handle in loops.collect::<Vec<_>>() {
            if let Err(e) = handle.await {
                tracing::error!("a run worker died: {e}");
            }
        }
    }

    async fn run_loop(&self, mut shutdown: watch::Receiver<bool>) {
        while !*shutdown.borrow() {
            // Registered before looking at the queue, so a wake between the look and the wait is not
            // missed.
            let woken = self.inner.wake.notified();
            match self.try_execute_run(&shutdown).await {
                Ok(Step::Ran(_)) => continue,
                Ok(Step::Empty) => {}
                Err(e) => tracing::error!("run worker: {e}"),
            }
            tokio::select! {
                _ = woken => {}
                _ = tokio::time::sleep(IDLE_POLL) => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    /// Claims one queued run and executes it until it finishes, is cancelled, or `shutdown` turns
    /// true.
    pub async fn try_execute_run(
        &self,
        shutdown: &watch::Receiver<bool>,
    ) -> Result<Step, PipelineError> {
        let busy = self.inner.busy.lock().clone();
        let Some((tenant, run)) = self.inner.store.claim_run(&busy).await? else {
            return Ok(Step::Empty);
        };
        self.inner.busy.lock().push(tenant.clone());
        let outcome = self.execute_run(&tenant, &run, shutdown).await;
        {
            let mut busy = self.inner.busy.lock();
            if let Some(at) = busy.iter().position(|t| t == &tenant) {
                busy.swap_remove(at);
            }
        }
        match outcome {
            Ok(()) => {}
            // The tenant was deleted while its run executed: nothing is left to record it in.
            Err(PipelineError::Store(StoreError::NotFound)) => {}
            Err(e) => {
                tracing::error!(run = %run.id, "run failed: {e}");
                self.inner
                    .store
                    .finish_run(&tenant, &run.id, RunStatus::Failed, Some(&e.to_string()))
                    .await?;
            }
        }
        Ok(Step::Ran(run.id))
    }

    async fn execute_run(
        &self,
        tenant: &str,
        run: &RunRow,
        shutdown: &watch::Receiver<bool>,
    ) -> Result<(), PipelineError> {
        let store = &self.inner.store;
        let limits = store.tenant(tenant).await?.limits;
        let mut stages = Vec::with_capacity(run.stages.len());
        for (index, row) in run.stages.iter().enumerate() {
            let prepared = match store.plugin_version(tenant, &row.plugin, row.version).await {
                Ok(version) => {
                    self.inner
                        .stages
                        .prepared(tenant, &version, &row.config, &limits, Keep::Cached)
                        .await
                }
                Err(e) => Err(e.into()),
            };
            match prepared {
                Ok(prepared) => stages.push(ReadyStage {
                    row: row.clone(),
                    prepared,
                }),
                Err(e) => {
                    let why = format!(
                        "stage {index} ({} version {}) cannot run: {e}",
                        row.plugin, row.version
                    );
                    store
                        .finish_run(tenant, &run.id, RunStatus::Failed, Some(&why))
                        .await?;
                    return Ok(());
                }
            }
        }
        loop {
            if *shutdown.borrow() {
                store.release_run(tenant, &run.id).await?;
                return Ok(());
            }
            if store.run_status(tenant, &run.id).await? != RunStatus::Running {
                return Ok(()); // cancelled
            }
            let items = store
                .pending_items(tenant, &run.id, self.inner.batch as u32)
                .await?;
            if items.is_empty() {
                store
                    .finish_run(tenant, &run.id, RunStatus::Completed, None)
                    .await?;
                return Ok(());
            }
            let batch = futures_util::stream::iter(items)
                .map(|item| self.process(tenant, &run.id, &stages, &limits, item))
                .buffer_unordered(self.inner.batch)
                .collect::<Vec<_>>();
            // A cancel stops the items in flight: dropping the batch drops their plugin calls, which
            // frees their permits at once. Items already committed stay; the rest stay pending.
            let mut stopping = shutdown.clone();
            let results = tokio::select! {
                results = batch => results,
                // Shutdown does not wait on plugins: the items in flight are dropped uncommitted
                // (each commits with its effects, so nothing is half-applied) and run again when the
                // run resumes.
                () = async { let _ = stopping.wait_for(|stop| *stop).await; } => {
                    store.release_run(tenant, &run.id).await?;
                    return Ok(());
                }
                cancelled = self.cancelled(tenant, &run.id) => {
                    cancelled?;
                    return Ok(());
                }
            };
            for result in results {
                result?;
            }
        }
    }

    /// Resolves once the run is no longer running (cancelled, or ended elsewhere).
    async fn cancelled(&self, tenant: &str, run: &str) -> Result<(), PipelineError> {
        loop {
            tokio::time::sleep(CANCEL_POLL).await;
            if self.inner.store.run_status(tenant, run).await? != RunStatus::Running {
                return Ok(());
            }
        }
    }

    async fn process(
        &self,
        tenant: &str,
        run: &str,
        stages: &[ReadyStage],
        limits: &crate::sandbox::PluginLimits,
        item: WorkItem,
    ) -> Result<(), PipelineError> {
        let store = &self.inner.store;
        let (summary, raw) = match store.message_with_raw(tenant, &item.message_id).await {
            Ok(found) => found,
            Err(StoreError::NotFound) => {
                let result = serde_json::json!({ "error": "the message no longer exists" });
                store
                    .complete_item(tenant, run, &item, ItemStatus::Missing, &result, |e| {
                        (e, Vec::new())
                    })
                    .await?;
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        let envelope = summary.stored_envelope();
        let message = ingest::parse(raw, envelope.for_plugins()).await?;
        let runtime = self.inner.stages.runtime();
        let result = execute(runtime, stages, message, envelope, limits).await;
        let json =
            serde_json::to_value(&result).map_err(|e| PipelineError::Internal(e.to_string()))?;
        store
            .complete_item(tenant, run, &item, result.status(), &json, |current| {
                result.apply_to(current)
            })
            .await?;
        Ok(())
    }
}
