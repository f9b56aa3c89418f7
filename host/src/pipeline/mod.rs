//! Pipelines: what happens to mail. Nothing here knows about HTTP.
//!
//! - [`ingest`]: the parse pipeline — raw RFC 5322 → parsed, stored byte-exact, indexed.
//! - [`apply`]: what a filter's actions do to a stored message (pure).
//! - [`stages`]: a tenant's plugin versions prepared for their stage configurations, cached.
//! - [`execute`]: one message through a filter pipeline's stages.
//! - [`run_job`]: the queue's handler that executes runs, resumably, on any node.

pub mod apply;
pub mod execute;
pub mod ingest;
pub mod run_job;
pub mod stages;

use crate::sandbox::LoadError;
use crate::store::StoreError;

/// What went wrong in a pipeline.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A plugin could not be loaded or prepared.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// A background task died.
    #[error("internal error: {0}")]
    Internal(String),
}

pub use crate::domain::QUARANTINE;
