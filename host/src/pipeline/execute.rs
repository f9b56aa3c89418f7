//! One message through a filter pipeline's stages.
//!
//! Each stage sees the message as earlier stages left it (folder, flags, tags); a stage that fails is
//! handled by its `on_error`. Nothing is written here: the result says what to apply, and the worker
//! commits it with the item.

use super::QUARANTINE;
use super::apply::{Effects, Refusal, apply, move_to};
use crate::domain::{ItemStatus, OnError, Stage, StoredEnvelope};
use crate::message::ParsedMessage;
use crate::sandbox::{Action, Failure, LogLine, PluginLimits, PreparedPlugin, Runtime, checked};
use serde::Serialize;
use std::sync::Arc;

/// A stage ready to run.
#[derive(Debug, Clone)]
pub struct ReadyStage {
    /// Its definition.
    pub row: Stage,
    /// Its plugin, prepared for its configuration.
    pub prepared: PreparedPlugin,
}

/// How a stage went for one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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
#[derive(Debug, Clone, Serialize)]
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
    pub actions: Vec<Action>,
    /// What it logged.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub logs: Vec<LogLine>,
    /// Fuel it used.
    pub fuel_used: u64,
    /// Wall-clock time of the call, microseconds.
    pub duration_us: u64,
    /// The failure, when it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Failure>,
}

/// One message's result: per stage, then what is applied.
#[derive(Debug, Clone, Serialize)]
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
}

impl ItemResult {
    /// The item's status.
    pub fn status(&self) -> ItemStatus {
        if self.quarantined {
            ItemStatus::Quarantined
        } else if self.stages.iter().any(|s| s.status == StageStatus::Failed) {
            ItemStatus::StageFailed
        } else {
            ItemStatus::Ok
        }
    }

    /// Applies this result to a message's current envelope: what the commit does. The bounds hold
    /// here too: when another run changed the message meanwhile (added tags), a tag that fitted
    /// when the stages ran may not fit now, and is left out (the recorded result, computed when
    /// the stages ran, does not list it as refused).
    pub fn apply_to(&self, mut envelope: StoredEnvelope) -> (StoredEnvelope, Vec<String>) {
        let effects = apply(&mut envelope, &self.applied);
        if self.quarantined {
            move_to(&mut envelope, QUARANTINE);
        }
        (envelope, effects.copies)
    }
}

fn duration_us(d: std::time::Duration) -> u64 {
    d.as_micros().try_into().unwrap_or(u64::MAX)
}

/// Runs `stages` over `message`, which starts in `envelope`.
pub async fn execute(
    runtime: &Runtime,
    stages: &[ReadyStage],
    message: ParsedMessage,
    envelope: StoredEnvelope,
    limits: &PluginLimits,
) -> ItemResult {
    let mut working = envelope;
    let mut message = Arc::new(message);
    let mut result = ItemResult {
        stages: Vec::with_capacity(stages.len()),
        applied: Vec::new(),
        copied_to: Vec::new(),
        deferred: Vec::new(),
        refused: Vec::new(),
        quarantined: false,
    };
    // Over all stages, so the bounds per run (copies) hold across them.
    let mut effects = Effects::default();
    let mut stopped = false;
    for (index, stage) in stages.iter().enumerate() {
        let mut stage_result = StageResult {
            stage: index,
            plugin: stage.row.plugin.clone(),
            version: stage.row.version,
            status: StageStatus::Skipped,
            actions: Vec::new(),
            logs: Vec::new(),
            fuel_used: 0,
            duration_us: 0,
            error: None,
        };
        if stopped {
            result.stages.push(stage_result);
            continue;
        }
        message = with_envelope(message, &working);
        let called = runtime
            .run_prepared(&stage.prepared, message.clone(), limits)
            .await;
        match checked(called) {
            Ok(outcome) => {
                effects.apply(&mut working, &outcome.actions);
                stopped = effects.stopped;
                stage_result.status = StageStatus::Ok;
                stage_result.actions = outcome.actions;
                stage_result.logs = outcome.logs;
                stage_result.fuel_used = outcome.fuel_used;
                stage_result.duration_us = duration_us(outcome.duration);
            }
            Err(failure) => {
                stage_result.status = StageStatus::Failed;
                stage_result.fuel_used = failure.fuel_used;
                stage_result.duration_us = duration_us(failure.duration);
                stage_result.error = Some(failure);
                match stage.row.on_error {
                    OnError::Continue => {}
                    OnError::Stop => stopped = true,
                    OnError::Quarantine => {
                        result.quarantined = true;
                        stopped = true;
                    }
                }
            }
        }
        result.stages.push(stage_result);
    }
    result.applied = effects.applied;
    result.copied_to = effects.copies;
    result.deferred = effects.deferred;
    result.refused = effects.refused;
    result
}

/// The message in `envelope`: updated in place when no one else holds it (the usual case: the
/// runtime released it when the call ended), re-parsed otherwise.
fn with_envelope(mut message: Arc<ParsedMessage>, envelope: &StoredEnvelope) -> Arc<ParsedMessage> {
    let envelope = envelope.for_plugins();
    if message.envelope() == &envelope {
        return message;
    }
    match Arc::get_mut(&mut message) {
        Some(unique) => {
            unique.set_envelope(envelope);
            message
        }
        None => Arc::new(ParsedMessage::parse(message.raw().to_vec(), envelope)),
    }
}
