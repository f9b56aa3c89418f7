//! Nodes: the processes that serve the API and execute jobs, each with a heartbeat.

use super::{Arg, DbRow, Result, Store, from_json, now_ms, on_pool, to_json};
use crate::domain::NodeId;

/// A registered node.
#[derive(Debug, Clone)]
pub struct NodeRow {
    /// Its id (the owner of the leases it holds).
    pub id: NodeId,
    /// The host it runs on.
    pub hostname: String,
    /// Its process id there.
    pub pid: i64,
    /// `api` and/or `worker`.
    pub roles: Vec<String>,
    /// The wasmail version it runs.
    pub version: String,
    /// Unix ms.
    pub started_at: i64,
    /// Its last heartbeat, Unix ms.
    pub heartbeat_at: i64,
    /// When it stopped gracefully, Unix ms.
    pub stopped_at: Option<i64>,
    /// Jobs it holds a live lease on.
    pub running_jobs: i64,
}

impl Store {
    /// Registers this process as a node.
    pub async fn register_node(&self, node: &NodeRow) -> Result<()> {
        // Nodes silent for longer than the retention are pruned by the running nodes
        // (`queue::Node::prune`).
        self.write(
            "INSERT INTO nodes (id, hostname, pid, roles, version, started_at, heartbeat_at, \
             stopped_at) VALUES ($1, $2, $3, $4, $5, $6, $6, NULL)",
            vec![
                Arg::Text(node.id.as_str().to_string()),
                Arg::Text(node.hostname.clone()),
                Arg::Int(node.pid),
                Arg::Text(to_json(&node.roles)),
                Arg::Text(node.version.clone()),
                Arg::Int(now_ms()),
            ],
        )
        .await
        .map(drop)
    }

    /// Records a heartbeat of a node.
    pub async fn node_heartbeat(&self, id: &NodeId) -> Result<()> {
        self.write(
            "UPDATE nodes SET heartbeat_at = $1 WHERE id = $2",
            vec![Arg::Int(now_ms()), Arg::Text(id.as_str().to_string())],
        )
        .await
        .map(drop)
    }

    /// Deletes the nodes last heard from before `before` (Unix ms). Returns how many.
    pub async fn prune_nodes(&self, before: i64) -> Result<u64> {
        self.write(
            "DELETE FROM nodes WHERE heartbeat_at < $1",
            vec![Arg::Int(before)],
        )
        .await
    }

    /// Marks a node stopped (a graceful stop).
    pub async fn node_stopped(&self, id: &NodeId) -> Result<()> {
        self.write(
            "UPDATE nodes SET stopped_at = $1, heartbeat_at = $1 WHERE id = $2",
            vec![Arg::Int(now_ms()), Arg::Text(id.as_str().to_string())],
        )
        .await
        .map(drop)
    }

    /// Every node known, newest first, with the jobs each holds.
    pub async fn nodes(&self) -> Result<Vec<NodeRow>> {
        on_pool!(self, |c| {
            sqlx::query(
                "SELECT n.id, n.hostname, n.pid, n.roles, n.version, n.started_at, n.heartbeat_at, \
                 n.stopped_at, (SELECT COUNT(*) FROM jobs j WHERE j.state = 'running' \
                                AND j.lease_owner = n.id AND j.lease_expires_at >= $1) AS running_jobs \
                 FROM nodes n ORDER BY n.started_at DESC, n.id",
            )
            .bind(now_ms())
            .fetch_all(c)
            .await?
            .iter()
            .map(|r| {
                Ok(NodeRow {
                    id: NodeId::new(r.col::<String>("id")?),
                    hostname: r.col("hostname")?,
                    pid: r.col("pid")?,
                    roles: from_json(&r.col::<String>("roles")?, "node roles")?,
                    version: r.col("version")?,
                    started_at: r.col("started_at")?,
                    heartbeat_at: r.col("heartbeat_at")?,
                    stopped_at: r.col("stopped_at")?,
                    running_jobs: r.col("running_jobs")?,
                })
            })
            .collect()
        })
    }
}
