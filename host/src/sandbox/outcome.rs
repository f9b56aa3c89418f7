use super::Action;
use serde::Serialize;
use std::time::Duration;

/// Severity of a plugin's log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LogLevel {
    /// Fine-grained detail.
    Trace,
    /// Diagnostic detail.
    Debug,
    /// Normal operation.
    Info,
    /// Handled surprise.
    Warn,
    /// Failure (and panics, through the SDK's hook).
    Error,
}

/// One line the plugin logged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogLine {
    /// Severity.
    pub level: LogLevel,
    /// Text, cut to the call's log budget.
    pub message: String,
}

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
    #[serde(serialize_with = "super::error::micros", rename = "duration_us")]
    pub duration: Duration,
}
