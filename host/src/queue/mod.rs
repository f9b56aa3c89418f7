//! The job queue: every kind of background work (pipeline runs now; syncs, sends, remote actions,
//! webhooks and schedules later) is a row of the `jobs` table, executed by whichever node claims it.
//!
//! - [`Handler`]: what a job kind does with one claimed job; it answers with an [`Outcome`].
//! - [`Runner`] ([`runner`]): a node's worker loops — claim fairly, keep the lease alive with
//!   heartbeats, record the outcome (retry with backoff, dead after the last attempt), yield between
//!   steps of long jobs so other tenants' work is not held up, release leases on shutdown.
//! - [`node`]: the node's identity and heartbeat (`GET /v1/admin/nodes`).
//!
//! Guarantees: a job runs on at most one node at a time while its lease lives (claims are atomic,
//! and every write of a holder is fenced by its lease token); a job whose node dies is reclaimed by
//! any node once the lease expires, never before; execution is at-least-once, so handlers make
//! their effects idempotent (a run's items commit once each, under the fence).

pub mod backoff;
pub mod listen;
pub mod node;
pub mod runner;

pub use node::Node;
pub use runner::Runner;

use crate::domain::TenantId;
use crate::store::{JobRow, Lease, Store};
use futures_util::future::BoxFuture;
use std::time::Duration;
use tokio::sync::watch;

/// How a handler's attempt at a job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The job is done.
    Done,
    /// The job made progress and has more to do, and another tenant's job is waiting: put it at
    /// the back of the queue (ready at once) rather than hold the worker.
    Yield,
    /// This node is stopping: give the job back, ready at once for any node; the attempt does not
    /// count.
    Release,
    /// The attempt failed and may succeed later (a database hiccup): retried with backoff until its
    /// attempts run out, then dead.
    Retry(String),
    /// The job cannot succeed (its input is invalid): dead at once, retryable by hand.
    Fail(String),
    /// The lease was lost while running (the job was cancelled, or taken over after this node
    /// stalled): nothing more is recorded.
    Lost,
}

/// What a running handler can reach.
#[derive(Debug, Clone)]
pub struct JobContext {
    /// The job's fence: every write the handler makes on the job's behalf names it.
    pub lease: Lease,
    /// Whether a previous holder stopped without finishing (the handler resumes).
    pub interrupted: bool,
    /// Turns true when the node stops: finish the step in hand, then answer [`Outcome::Release`].
    pub shutdown: watch::Receiver<bool>,
    store: Store,
    kinds: Vec<&'static str>,
    per_tenant: i64,
}

impl JobContext {
    /// The job's tenant.
    pub fn tenant(&self) -> &TenantId {
        &self.lease.tenant
    }

    /// Whether this node is stopping.
    pub fn stopping(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// Whether another tenant's job is waiting for a worker: a long job checks between steps and
    /// answers [`Outcome::Yield`] when it is.
    pub async fn should_yield(&self) -> bool {
        match self
            .store
            .others_waiting(self.tenant(), &self.kinds, self.per_tenant)
            .await
        {
            Ok(waiting) => waiting,
            Err(e) => {
                tracing::warn!("cannot look for waiting jobs: {e}");
                false
            }
        }
    }
}

/// One job kind's work.
pub trait Handler: Send + Sync + 'static {
    /// The kind it handles (`jobs.kind`).
    fn kind(&self) -> &'static str;

    /// Runs one attempt at `job`. Dropping the future (lease lost, shutdown grace over) must leave
    /// nothing half-done: write effects in transactions that [`crate::store`] fences by the lease.
    fn run<'a>(&'a self, job: &'a JobRow, ctx: &'a JobContext) -> BoxFuture<'a, Outcome>;
}

/// How a node runs the queue.
#[derive(Debug, Clone, Copy)]
pub struct QueueOptions {
    /// Jobs this node executes at once.
    pub workers: usize,
    /// Lease length; heartbeats renew it every third of it.
    pub lease: Duration,
    /// How long an idle worker waits before looking again without being woken.
    pub idle_poll: Duration,
    /// Most jobs one tenant may have running at once, all nodes together.
    pub per_tenant: usize,
    /// Retry backoff: the first delay, and the most any delay grows to.
    pub backoff_base: Duration,
    /// The largest retry delay.
    pub backoff_max: Duration,
}

impl Default for QueueOptions {
    fn default() -> Self {
        Self {
            workers: 2,
            lease: Duration::from_secs(30),
            idle_poll: Duration::from_secs(2),
            per_tenant: 2,
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(600),
        }
    }
}

#[cfg(test)]
mod tests;
