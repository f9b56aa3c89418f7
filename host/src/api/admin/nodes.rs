//! The nodes of the cluster, for operators.

use super::super::models::time;
use crate::queue::node::HEARTBEAT;
use crate::store::{NodeRow, now_ms};
use chrono::{DateTime, Utc};
use poem_openapi::Object;

/// A `wasmail serve` or `wasmail worker` process.
#[derive(Debug, Clone, Object)]
pub struct Node {
    /// Its id (the owner of the job leases it holds).
    pub id: String,
    /// The host it runs on.
    pub hostname: String,
    /// Its process id there.
    pub pid: i64,
    /// `api` (serves HTTP) and/or `worker` (executes jobs).
    pub roles: Vec<String>,
    /// The wasmail version it runs.
    pub version: String,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// Its last heartbeat.
    pub heartbeat_at: DateTime<Utc>,
    /// When it stopped gracefully.
    #[oai(skip_serializing_if_is_none)]
    pub stopped_at: Option<DateTime<Utc>>,
    /// Whether it is alive: not stopped, and a heartbeat within the last three intervals.
    pub alive: bool,
    /// Jobs it holds a live lease on.
    pub running_jobs: i64,
}

impl From<NodeRow> for Node {
    fn from(n: NodeRow) -> Self {
        let silent = now_ms() - n.heartbeat_at;
        Self {
            id: n.id.to_string(),
            hostname: n.hostname,
            pid: n.pid,
            roles: n.roles,
            version: n.version,
            started_at: time(n.started_at),
            heartbeat_at: time(n.heartbeat_at),
            stopped_at: n.stopped_at.map(time),
            alive: n.stopped_at.is_none() && silent <= 3 * HEARTBEAT.as_millis() as i64,
            running_jobs: n.running_jobs,
        }
    }
}
