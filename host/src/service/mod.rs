//! The use cases, below any interface: the HTTP API calls these, and so do the command line, the
//! scheduler and the mail adapters. Each function takes domain values and a tenant, checks what
//! the use case requires, and goes to the store, the sandbox and the queue; nothing here knows
//! about HTTP.
//!
//! - [`pipelines`]: define and change a pipeline (every stage prepared first); start a run over a
//!   selection.
//! - [`messages`]: import a message; restore one from the trash.
//! - [`plugins`]: upload a plugin version; dry-run one over a message.
//! - [`jobs`]: retry a dead job; cancel a job (a run's job cancels the run).
//!
//! Reads that need no rule (get, list) go to the store directly.

pub mod jobs;
pub mod messages;
pub mod pipelines;
pub mod plugins;

use crate::domain::InvalidName;
use crate::pipeline::PipelineError;
use crate::pipeline::stages::StageCache;
use crate::queue::Runner;
use crate::sandbox::LoadError;
use crate::store::{Store, StoreError};

/// What the use cases need. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Services {
    /// The database.
    pub store: Store,
    /// Prepared plugins (and the sandbox runtime).
    pub stages: StageCache,
    /// This node's job runner, woken when this process queues work.
    pub runner: Runner,
    /// Largest message accepted, bytes.
    pub max_message_bytes: usize,
}

/// Why a use case refused or failed. The API maps each to a problem type.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The named resource does not exist (for this tenant).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request contradicts itself or names what it may not.
    #[error("{0}")]
    Invalid(String),
    /// A name in field `.0` breaks the naming rules.
    #[error("`{0}`: {1}")]
    InvalidName(String, InvalidName),
    /// A stage's plugin rejected its configuration.
    #[error("{0}")]
    ConfigRejected(String),
    /// The input is larger than allowed.
    #[error("{0}")]
    TooLarge(String),
    /// The change conflicts with the current state.
    #[error("{0}")]
    Conflict(String),
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
    /// A plugin could not be loaded, checked or compiled.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The pipeline failed.
    #[error(transparent)]
    Pipeline(PipelineError),
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(why) => Self::Conflict(why),
            e => Self::Store(e),
        }
    }
}

impl From<PipelineError> for ServiceError {
    fn from(e: PipelineError) -> Self {
        match e {
            PipelineError::Store(e) => e.into(),
            PipelineError::Load(e) => e.into(),
            e => Self::Pipeline(e),
        }
    }
}

/// Maps a store's not-found to "`what` not found" (the same whether the resource belongs to another
/// tenant or does not exist at all).
pub fn missing(what: &'static str) -> impl FnOnce(StoreError) -> ServiceError {
    move |e| match e {
        StoreError::NotFound => ServiceError::NotFound(what),
        e => e.into(),
    }
}

/// Result of a use case.
pub type Result<T, E = ServiceError> = std::result::Result<T, E>;
