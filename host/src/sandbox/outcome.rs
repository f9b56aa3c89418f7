use super::Action;
use serde::Serialize;
use std::time::Duration;

/// Log lines are recorded with a run's results, so their type lives in the domain.
pub use crate::domain::outcome::{LogLevel, LogLine};

/// What a successful call returned, and what it cost.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// The validated actions, in order.
    pub actions: Vec<Action>,
    /// Log lines kept.
    pub logs: Vec<LogLine>,
    /// Log lines dropped past the budget.
    pub logs_dropped: u64,
    /// What the plugin wrote to stdout and stderr (capped).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub stderr: String,
    /// Fuel consumed.
    pub fuel_used: u64,
    /// Wall-clock time of the call, instantiation included.
    #[serde(
        serialize_with = "crate::domain::outcome::micros::serialize",
        rename = "duration_us"
    )]
    pub duration: Duration,
}
