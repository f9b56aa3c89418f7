//! One message through a filter pipeline's stages.
//!
//! Each stage sees the message as earlier stages left it (folder, flags, tags); a stage that fails is
//! handled by its `on_error`. Nothing is written here: the result says what to apply, and the worker
//! commits it with the item.

use super::QUARANTINE;
use super::apply::{Effects, apply, move_to};
use crate::domain::outcome::{ItemResult, StageResult, StageStatus, as_micros};
use crate::domain::{OnError, Stage, StoredEnvelope};
use crate::message::ParsedMessage;
use crate::sandbox::{PluginLimits, PreparedPlugin, Runtime, checked};
use std::sync::Arc;

/// A stage ready to run.
#[derive(Debug, Clone)]
pub struct ReadyStage {
    /// Its definition.
    pub row: Stage,
    /// Its plugin, prepared for its configuration.
    pub prepared: PreparedPlugin,
}

/// Applies a result to a message's current envelope: what the commit does. The bounds hold here
/// too: when another run changed the message meanwhile (added tags), a tag that fitted when the
/// stages ran may not fit now, and is left out (the recorded result, computed when the stages ran,
/// does not list it as refused).
pub fn apply_to(
    result: &ItemResult,
    mut envelope: StoredEnvelope,
) -> (StoredEnvelope, Vec<String>) {
    let effects = apply(&mut envelope, &result.applied);
    if result.quarantined {
        move_to(&mut envelope, QUARANTINE);
    }
    (envelope, effects.copies)
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
        error: None,
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
                stage_result.duration_us = as_micros(outcome.duration);
            }
            Err(failure) => {
                stage_result.status = StageStatus::Failed;
                stage_result.fuel_used = failure.fuel_used;
                stage_result.duration_us = as_micros(failure.duration);
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
