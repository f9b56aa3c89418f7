//! A job's life in the queue (the `jobs` table; see `crate::queue`).

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobState {
    /// Waiting for its `run_at` and a worker.
    Queued,
    /// Leased by a node.
    Running,
    /// Done.
    Completed,
    /// Failed its last attempt (or failed permanently); retryable by hand.
    Dead,
    /// Cancelled.
    Cancelled,
}

impl JobState {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Dead => "dead",
            Self::Cancelled => "cancelled",
        }
    }

    /// Parses a stable name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "queued" => Self::Queued,
            "running" => Self::Running,
            "completed" => Self::Completed,
            "dead" => Self::Dead,
            "cancelled" => Self::Cancelled,
            _ => return None,
        })
    }
}
