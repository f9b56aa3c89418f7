//! A run: a pipeline applied to a set of messages, item by item.

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    /// Waiting for a worker.
    Queued,
    /// Being executed.
    Running,
    /// Every item was processed.
    Completed,
    /// The run could not execute (a stage could not be prepared, or its job died); `error` says why.
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
    /// The message could not be processed (its stored data is damaged, or the store kept failing
    /// on it); the run went on with the others.
    Failed,
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
            Self::Failed => "failed",
        }
    }

    /// Parses a stable name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => Self::Pending,
            "ok" => Self::Ok,
            "stage_failed" => Self::StageFailed,
            "quarantined" => Self::Quarantined,
            "missing" => Self::Missing,
            "failed" => Self::Failed,
            _ => return None,
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
    /// Could not be processed.
    pub failed: i64,
}

impl RunCounts {
    /// Adds `n` items in `status`.
    pub fn add(&mut self, status: ItemStatus, n: i64) {
        match status {
            ItemStatus::Pending => self.pending += n,
            ItemStatus::Ok => self.ok += n,
            ItemStatus::StageFailed => self.stage_failed += n,
            ItemStatus::Quarantined => self.quarantined += n,
            ItemStatus::Missing => self.missing += n,
            ItemStatus::Failed => self.failed += n,
        }
    }

    /// Items counted, in every state.
    pub fn counted(&self) -> i64 {
        self.pending + self.ok + self.stage_failed + self.quarantined + self.missing + self.failed
    }
}

/// What started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// An API call (or the command line).
    Api,
    /// A message was imported and the pipeline runs on import.
    Import,
}

impl Trigger {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Api => "api",
            Self::Import => "import",
        }
    }

    /// Parses a stable name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "api" => Self::Api,
            "import" => Self::Import,
            _ => return None,
        })
    }
}
