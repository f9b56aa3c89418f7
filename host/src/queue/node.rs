//! This process as a node of the cluster: an id (the owner of its leases), registered with its host,
//! pid, roles and version, and a heartbeat so operators see which nodes are alive.

use crate::domain::NodeId;
use crate::store::{NodeRow, Store, StoreError, new_id};
use std::time::Duration;
use tokio::sync::watch;

/// How often a node records its heartbeat.
pub const HEARTBEAT: Duration = Duration::from_secs(5);

/// This process's node.
#[derive(Debug, Clone)]
pub struct Node {
    id: NodeId,
    store: Store,
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
        })
    }

    /// Its id.
    pub fn id(&self) -> &NodeId {
        &self.id
    }

    /// Records heartbeats until `shutdown` turns true, then marks the node stopped.
    pub async fn heartbeat(&self, mut shutdown: watch::Receiver<bool>) {
        while !*shutdown.borrow() {
            tokio::select! {
                _ = tokio::time::sleep(HEARTBEAT) => {}
                _ = shutdown.changed() => break,
            }
            if let Err(e) = self.store.node_heartbeat(&self.id).await {
                tracing::warn!(node = %self.id, "cannot record the node's heartbeat: {e}");
            }
        }
    }

    /// Marks the node stopped (after its workers gave their leases back).
    pub async fn stopped(&self) {
        if let Err(e) = self.store.node_stopped(&self.id).await {
            tracing::warn!(node = %self.id, "cannot record that the node stopped: {e}");
        }
    }
}
