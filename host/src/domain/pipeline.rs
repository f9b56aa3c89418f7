//! Pipelines: ordered stages, each a plugin version with its configuration.

use serde::{Deserialize, Serialize};

/// What a pipeline does when a stage fails on a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// Ignore the stage's result and go on with the next stage.
    Continue,
    /// Run no further stage for this message (what earlier stages decided still applies).
    Stop,
    /// Move the message to the quarantine folder and run no further stage.
    Quarantine,
}

impl OnError {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Continue => "continue",
            Self::Stop => "stop",
            Self::Quarantine => "quarantine",
        }
    }

    /// Parses a stable name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "continue" => Some(Self::Continue),
            "stop" => Some(Self::Stop),
            "quarantine" => Some(Self::Quarantine),
            _ => None,
        }
    }
}

/// One stage of a pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stage {
    /// Plugin name.
    pub plugin: String,
    /// Plugin version.
    pub version: i64,
    /// Configuration: JSON text, given to the plugin as is.
    pub config: String,
    /// What a failure does.
    pub on_error: OnError,
}

impl Stage {
    /// The configuration as JSON (`null` if the stored text is not JSON, which the API never stores).
    pub fn config_json(&self) -> serde_json::Value {
        serde_json::from_str(&self.config).unwrap_or(serde_json::Value::Null)
    }
}

/// The folder a stage failure with `on_error = quarantine` moves a message to.
pub const QUARANTINE: &str = "Quarantine";
