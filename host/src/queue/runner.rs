//! A node's worker loops over the queue.

use super::{Handler, JobContext, Outcome, QueueOptions, backoff};
use crate::domain::NodeId;
use crate::store::{ClaimPolicy, Claimed, Store, StoreError, now_ms};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, watch};

/// Executes jobs of the kinds it has handlers for. Cheap to clone.
#[derive(Clone)]
pub struct Runner {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    node: NodeId,
    handlers: HashMap<&'static str, Arc<dyn Handler>>,
    kinds: Vec<&'static str>,
    options: QueueOptions,
    wake: Notify,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("node", &self.inner.node)
            .field("kinds", &self.inner.kinds)
            .finish_non_exhaustive()
    }
}

/// What one step of a worker did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Ran an attempt at the job with this id, which ended so.
    Ran(String, Outcome),
    /// Nothing was ready.
    Empty,
}

impl Runner {
    /// A runner for `node` with these handlers.
    pub fn new(
        store: Store,
        node: NodeId,
        options: QueueOptions,
        handlers: Vec<Arc<dyn Handler>>,
    ) -> Self {
        let kinds = handlers.iter().map(|h| h.kind()).collect();
        Self {
            inner: Arc::new(Inner {
                store,
                node,
                handlers: handlers.into_iter().map(|h| (h.kind(), h)).collect(),
                kinds,
                options,
                wake: Notify::new(),
            }),
        }
    }

    /// Tells this node's idle workers there is work (jobs queued by this process). Other nodes
    /// find it at their next poll.
    pub fn wake(&self) {
        self.inner.wake.notify_waiters();
    }

    /// Runs the worker loops until `shutdown` turns true and every loop has given its job back.
    pub async fn run(&self, shutdown: watch::Receiver<bool>) {
        let loops = (0..self.inner.options.workers.max(1)).map(|_| {
            let (runner, shutdown) = (self.clone(), shutdown.clone());
            tokio::spawn(async move { runner.run_loop(shutdown).await })
        });
        for handle in loops.collect::<Vec<_>>() {
            if let Err(e) = handle.await {
                tracing::error!("a job worker died: {e}");
            }
        }
    }

    async fn run_loop(&self, mut shutdown: watch::Receiver<bool>) {
        while !*shutdown.borrow() {
            // Registered before looking at the queue, so a wake between the look and the wait is
            // not missed.
            let woken = self.inner.wake.notified();
            match self.step(&shutdown).await {
                Ok(Step::Ran(..)) => continue,
                Ok(Step::Empty) => {}
                Err(e) => tracing::error!("job worker: {e}"),
            }
            tokio::select! {
                _ = woken => {}
                _ = tokio::time::sleep(self.inner.options.idle_poll) => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    /// Claims one ready job and runs one attempt at it.
    pub async fn step(&self, shutdown: &watch::Receiver<bool>) -> Result<Step, StoreError> {
        let inner = &self.inner;
        let policy = ClaimPolicy {
            lease_ms: inner.options.lease.as_millis() as i64,
            per_tenant: inner.options.per_tenant as i64,
        };
        let Some(claimed) = inner
            .store
            .claim_job(&inner.node, &inner.kinds, policy)
            .await?
        else {
            return Ok(Step::Empty);
        };
        let id = claimed.job.id.clone();
        let outcome = self.attempt(claimed, shutdown).await;
        Ok(Step::Ran(id, outcome))
    }

    async fn attempt(&self, claimed: Claimed, shutdown: &watch::Receiver<bool>) -> Outcome {
        let inner = &self.inner;
        let Claimed {
            job,
            lease,
            interrupted,
        } = claimed;
        let Some(handler) = inner.handlers.get(job.kind.as_str()) else {
            // Cannot happen: claims only take the kinds this runner has handlers for.
            return Outcome::Lost;
        };
        let ctx = JobContext {
            lease: lease.clone(),
            interrupted,
            shutdown: shutdown.clone(),
            store: inner.store.clone(),
            kinds: inner.kinds.clone(),
            per_tenant: inner.options.per_tenant as i64,
        };
        tracing::debug!(job = %job.id, kind = %job.kind, tenant = %job.tenant, attempt = job.attempts, "job claimed");
        let outcome = tokio::select! {
            outcome = handler.run(&job, &ctx) => outcome,
            // The handler's future is dropped when the lease is lost: its writes are fenced, so it
            // could not have changed anything more anyway.
            () = self.keep_lease(&lease) => Outcome::Lost,
        };
        let store = &inner.store;
        let recorded = match &outcome {
            Outcome::Done => store.complete_job(&lease).await,
            Outcome::Yield => {
                let yielded = store.yield_job(&lease).await;
                // Another loop here may be idle while the job waits for it.
                self.wake();
                yielded
            }
            Outcome::Release => store.release_job(&lease).await,
            Outcome::Retry(error) if job.attempts < job.max_attempts => {
                let delay = backoff::delay(
                    job.attempts,
                    inner.options.backoff_base,
                    inner.options.backoff_max,
                );
                tracing::warn!(job = %job.id, kind = %job.kind, attempt = job.attempts, "job attempt failed, retrying in {delay:?}: {error}");
                store
                    .retry_job_at(&lease, now_ms() + delay.as_millis() as i64, error)
                    .await
            }
            Outcome::Retry(error) => {
                let why = format!("{error} (after {} attempts)", job.attempts);
                tracing::error!(job = %job.id, kind = %job.kind, "job is dead: {why}");
                store.bury_job(&lease, &why).await
            }
            Outcome::Fail(error) => {
                tracing::error!(job = %job.id, kind = %job.kind, "job failed permanently: {error}");
                store.bury_job(&lease, error).await
            }
            Outcome::Lost => Ok(true),
        };
        match recorded {
            Ok(true) => {}
            Ok(false) | Err(StoreError::LeaseLost) => {
                tracing::warn!(job = %job.id, "the job's lease was lost before its outcome was recorded")
            }
            Err(e) => {
                tracing::error!(job = %job.id, "cannot record the job's outcome (its lease will expire and another attempt follow): {e}")
            }
        }
        outcome
    }

    /// Renews the lease every third of its length; resolves once it is lost (renewal refused, or
    /// not renewed in time because the database did not answer).
    async fn keep_lease(&self, lease: &crate::store::Lease) {
        let length = self.inner.options.lease;
        let every = (length / 3).max(Duration::from_millis(50));
        let mut renewed = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(every).await;
            match self
                .inner
                .store
                .renew_lease(lease, length.as_millis() as i64)
                .await
            {
                Ok(true) => renewed = tokio::time::Instant::now(),
                Ok(false) => {
                    tracing::warn!(job = %lease.job, "lease lost (cancelled, or taken over by another node)");
                    return;
                }
                Err(e) => {
                    tracing::warn!(job = %lease.job, "cannot renew the lease: {e}");
                    if renewed.elapsed() >= length {
                        return;
                    }
                }
            }
        }
    }
}
