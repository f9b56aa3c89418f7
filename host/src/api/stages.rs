//! A pipeline's stage as the API shows it (pipelines define them; runs show the ones they ran).

use crate::domain::{OnError, Stage as DomainStage};
use poem_openapi::{Enum, Object};

/// What to do when a stage fails on a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum StageFailure {
    /// Ignore the failed stage and go on with the next one.
    Continue,
    /// Run no further stage for this message (earlier stages' actions still apply).
    Stop,
    /// Move the message to the `Quarantine` folder and run no further stage.
    Quarantine,
}

impl From<StageFailure> for OnError {
    fn from(f: StageFailure) -> Self {
        match f {
            StageFailure::Continue => OnError::Continue,
            StageFailure::Stop => OnError::Stop,
            StageFailure::Quarantine => OnError::Quarantine,
        }
    }
}

impl From<OnError> for StageFailure {
    fn from(f: OnError) -> Self {
        match f {
            OnError::Continue => StageFailure::Continue,
            OnError::Stop => StageFailure::Stop,
            OnError::Quarantine => StageFailure::Quarantine,
        }
    }
}

/// A stage: a version of one of your plugins with its configuration.
#[derive(Debug, Clone, Object)]
pub struct Stage {
    /// Plugin name.
    #[oai(validator(pattern = r"^[a-z0-9][a-z0-9._-]{0,63}$"))]
    pub plugin: String,
    /// Plugin version.
    #[oai(validator(minimum(value = "1")))]
    pub version: i64,
    /// The configuration the plugin gets (any JSON; default `null`).
    #[oai(default)]
    pub config: serde_json::Value,
    /// What a failure of this stage does (default `continue`).
    #[oai(default = "default_on_error")]
    pub on_error: StageFailure,
}

fn default_on_error() -> StageFailure {
    StageFailure::Continue
}

impl Stage {
    /// The domain's stage.
    pub fn domain(&self) -> DomainStage {
        DomainStage {
            plugin: self.plugin.clone(),
            version: self.version,
            config: self.config.to_string(),
            on_error: self.on_error.into(),
        }
    }
}

impl From<&DomainStage> for Stage {
    fn from(s: &DomainStage) -> Self {
        Self {
            plugin: s.plugin.clone(),
            version: s.version,
            config: s.config_json(),
            on_error: s.on_error.into(),
        }
    }
}
