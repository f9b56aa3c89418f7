//! What running a message through a pipeline produced: per stage, the plugin's actions, logs and
//! cost or its failure; then what was applied, copied, deferred or refused.
//!
//! The sandbox produces these, the run job records them (as JSON in `run_items.result`), and the API
//! converts them into its models with typed conversions. The stored JSON is read back into these same
//! types: a row that no longer parses is a loud `corrupt` error, never a silently empty result.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::time::Duration;
use wasmail_types::Action;

/// Severity of a plugin's log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// Severity.
    pub level: LogLevel,
    /// Text, cut to the call's log budget.
    pub message: String,
}

/// Kind of a plugin failure; stable names for the API and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The wall-clock deadline passed.
    Deadline,
    /// The fuel budget ran out.
    Fuel,
    /// The plugin tried to grow memory past its limit.
    Memory,
    /// The plugin trapped: a panic, a stack overflow, an out-of-bounds access.
    Trap,
    /// The plugin returned something the host does not accept.
    InvalidOutput,
    /// The plugin could not be instantiated.
    Instantiation,
    /// The plugin returned an error of its own.
    Plugin,
    /// The host failed while running the plugin (not the plugin's fault); logged on the host.
    Host,
}

/// A plugin call that failed, with what is known of why.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Failure {
    /// What kind of failure.
    pub kind: FailureKind,
    /// Explanation.
    pub message: String,
    /// The guest's panic message, when it panicked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub panic: Option<String>,
    /// WebAssembly frames, innermost first, with function names where the module has them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backtrace: Vec<String>,
    /// The last log lines before the failure.
    #[serde(default)]
    pub logs: Vec<LogLine>,
    /// What the plugin wrote to stdout and stderr (capped).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stderr: String,
    /// Fuel consumed before the failure (a lower bound when the deadline interrupted a loop: fuel
    /// still held in registers is not counted).
    pub fuel_used: u64,
    /// Wall-clock time of the call.
    #[serde(with = "micros", rename = "duration_us")]
    pub duration: Duration,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.message)?;
        if let Some(panic) = &self.panic {
            write!(f, " ({panic})")?;
        }
        Ok(())
    }
}

impl std::error::Error for Failure {}

/// A duration as whole microseconds (`duration_us`), the unit every result reports.
pub mod micros {
    use super::*;

    /// Microseconds, saturating.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(as_micros(*d))
    }

    /// From microseconds.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_micros)
    }
}

/// Whole microseconds of `d`, saturating at `u64::MAX`.
pub fn as_micros(d: Duration) -> u64 {
    d.as_micros().try_into().unwrap_or(u64::MAX)
}

/// An action that did not apply, and the bound it would have broken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    /// The action.
    pub action: Action,
    /// The bound it would have broken.
    pub reason: String,
}

/// How a stage went for one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StageStatus {
    /// It ran and returned actions.
    Ok,
    /// It failed; `error` says how.
    Failed,
    /// It did not run (an earlier stage stopped the pipeline).
    Skipped,
}

/// One stage's result for one message.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StageResult {
    /// Position in the pipeline.
    pub stage: usize,
    /// Plugin name.
    pub plugin: String,
    /// Plugin version.
    pub version: i64,
    /// How it went.
    pub status: StageStatus,
    /// The actions it returned.
    #[serde(default)]
    pub actions: Vec<Action>,
    /// What it logged.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub logs: Vec<LogLine>,
    /// Fuel it used.
    pub fuel_used: u64,
    /// Wall-clock time of the call, microseconds.
    pub duration_us: u64,
    /// The failure, when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Failure>,
}

/// One message's result: per stage, then what is applied — or, for a message that could not be
/// processed at all (gone, damaged, the store kept failing on it), only `error`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ItemResult {
    /// Every stage, in order.
    pub stages: Vec<StageResult>,
    /// The actions applied to the message, in order.
    pub applied: Vec<Action>,
    /// Folders it is copied to.
    pub copied_to: Vec<String>,
    /// Actions recorded but not carried out (forward and reject need the send pipeline).
    pub deferred: Vec<Action>,
    /// Actions left out because they would take the message past a bound (tags per message,
    /// copies per run).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub refused: Vec<Refusal>,
    /// Whether a failing stage moved it to quarantine.
    pub quarantined: bool,
    /// Why the message could not be processed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl ItemResult {
    /// The result of a message that could not be processed.
    pub fn failed(error: impl Into<String>) -> Self {
        Self {
            error: Some(error.into()),
            ..Self::default()
        }
    }

    /// The item's status, for a message the stages ran over.
    pub fn status(&self) -> super::ItemStatus {
        use super::ItemStatus;
        if self.quarantined {
            ItemStatus::Quarantined
        } else if self.stages.iter().any(|s| s.status == StageStatus::Failed) {
            ItemStatus::StageFailed
        } else {
            ItemStatus::Ok
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stage_failure() -> StageResult {
        StageResult {
            stage: 1,
            plugin: "p".into(),
            version: 2,
            status: StageStatus::Failed,
            actions: vec![],
            logs: vec![LogLine {
                level: LogLevel::Warn,
                message: "w".into(),
            }],
            fuel_used: 7,
            duration_us: 9,
            error: Some(Failure {
                kind: FailureKind::Deadline,
                message: "slow".into(),
                panic: Some("boom".into()),
                backtrace: vec!["f".into()],
                logs: vec![],
                stderr: "e".into(),
                fuel_used: 7,
                duration: Duration::from_micros(1234),
            }),
        }
    }

    #[test]
    fn a_result_reads_back_as_written() {
        let result = ItemResult {
            stages: vec![stage_failure()],
            applied: vec![Action::Tag("t".into())],
            copied_to: vec!["A".into()],
            deferred: vec![Action::Forward("a@b.example".into())],
            refused: vec![Refusal {
                action: Action::CopyTo("B".into()),
                reason: "too many".into(),
            }],
            quarantined: true,
            error: None,
        };
        let text = serde_json::to_string(&result).expect("serialise");
        let back: ItemResult = serde_json::from_str(&text).expect("parse");
        assert_eq!(serde_json::to_string(&back).expect("serialise"), text);
        let failure = back.stages[0].error.as_ref().expect("failure");
        assert_eq!(failure.duration, Duration::from_micros(1234));
        assert_eq!(failure.kind, FailureKind::Deadline);
        assert_eq!(back.refused[0].reason, "too many");
    }

    #[test]
    fn an_error_only_result_reads_with_everything_else_empty() {
        let back: ItemResult =
            serde_json::from_str(r#"{"error": "the message no longer exists"}"#).expect("parse");
        assert_eq!(back.error.as_deref(), Some("the message no longer exists"));
        assert!(back.stages.is_empty() && !back.quarantined);
    }

    #[test]
    fn a_result_that_drifted_is_an_error_not_an_empty_result() {
        // A stage status this build does not know, and a stage without its fields.
        assert!(
            serde_json::from_str::<ItemResult>(
                r#"{"stages": [{"stage": 0, "plugin": "p", "version": 1, "status": "exploded",
                                "fuel_used": 0, "duration_us": 0}]}"#
            )
            .is_err()
        );
        assert!(serde_json::from_str::<ItemResult>(r#"{"stages": [{"stage": 0}]}"#).is_err());
    }
}
