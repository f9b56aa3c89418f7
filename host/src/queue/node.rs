//! This process as a node of the cluster: an id (the owner of its leases), registered with its host,
//! pid, roles and version, and a heartbeat so operators see which nodes are alive.

use crate::domain::NodeId;
use crate::store::{NodeRow, Store, StoreError, new_id, now_ms};
use std::time::Duration;
use tokio::sync::watch;

/// How often a node records its heartbeat.
pub const HEARTBEAT: Duration = Duration::from_secs(5);

/// How many heartbeats apart a node prunes what the retention lets go (about once a minute).
const PRUNE_EVERY: u32 = 12;

/// Rows pruned per statement, so a backlog never holds the database in one long write.
const PRUNE_CHUNK: i64 = 1_000;

/// This process's node.
#[derive(Debug, Clone)]
pub struct Node {
    id: NodeId,
    store: Store,
    retention: Duration,
}

impl Node {
    /// Registers a new node with `roles` (`api`, `worker`).
    pub async fn register(store: &Store, roles: &[&str]) -> Result<Self, StoreError> {
        let id = NodeId::new(new_id());
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .or_else(|_| std::env::var("HOSTNAME"))
            .unwrap_or_else(|_| "unknown".into());
        store
            .register_node(&NodeRow {
                id: id.clone(),
                hostname,
                pid: i64::from(std::process::id()),
                roles: roles.iter().map(|r| r.to_string()).collect(),
                version: env!("CARGO_PKG_VERSION").into(),
                started_at: 0,
                heartbeat_at: 0,
                stopped_at: None,
                running_jobs: 0,
            })
            .await?;
        Ok(Self {
            id,
            store: store.clone(),
            retention: Duration::from_secs(7 * 24 * 3600),
        })
    }

    /// Keeps completed and cancelled jobs, and nodes no longer heard from, for `retention`.
    pub fn with_retention(mut self, retention: Duration) -> Self {
        self.retention = retention;
        self
    }

    /// Its id.
    pub fn id(&self) -> &NodeId {
        &self.id
    }

    /// Records heartbeats until `shutdown` turns true, and now and then prunes what the retention
    /// lets go (every node does; deleting is idempotent).
    pub async fn heartbeat(&self, mut shutdown: watch::Receiver<bool>) {
        let mut beats = 0u32;
        while !*shutdown.borrow() {
            tokio::select! {
                _ = tokio::time::sleep(HEARTBEAT) => {}
                _ = shutdown.changed() => break,
            }
            if let Err(e) = self.store.node_heartbeat(&self.id).await {
                tracing::warn!(node = %self.id, "cannot record the node's heartbeat: {e}");
            }
            beats = beats.wrapping_add(1);
            if beats.is_multiple_of(PRUNE_EVERY) {
                self.prune().await;
            }
        }
    }

    /// Deletes completed and cancelled jobs that finished, and nodes last heard from, before the
    /// retention; dead jobs stay until someone retries or cancels them.
    pub async fn prune(&self) {
        let before = now_ms() - i64::try_from(self.retention.as_millis()).unwrap_or(i64::MAX);
        loop {
            match self.store.prune_jobs(before, PRUNE_CHUNK).await {
                Ok(n) if n == PRUNE_CHUNK as u64 => continue,
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!("cannot prune finished jobs: {e}");
                    break;
                }
            }
        }
        if let Err(e) = self.store.prune_nodes(before).await {
            tracing::warn!("cannot prune silent nodes: {e}");
        }
    }

    /// Marks the node stopped (after its workers gave their leases back).
    pub async fn stopped(&self) {
        if let Err(e) = self.store.node_stopped(&self.id).await {
            tracing::warn!(node = %self.id, "cannot record that the node stopped: {e}");
        }
    }
}
