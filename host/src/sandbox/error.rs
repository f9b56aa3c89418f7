/// A failed plugin call is recorded with a run's results, so its type lives in the domain.
pub use crate::domain::outcome::{Failure, FailureKind};

/// Why a component could not be loaded. Each variant says what to fix.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LoadError {
    /// Larger than the tenant's upload limit.
    #[error("component is {size} bytes; the limit is {limit} bytes")]
    TooLarge {
        /// Size of the upload.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Not a WebAssembly component (a core module, or not WebAssembly at all).
    #[error("not a WebAssembly component: {0}")]
    NotComponent(String),
    /// A component that does not parse or validate.
    #[error("invalid component: {0}")]
    Invalid(String),
    /// A component that does not export the `wasmail:plugin` filter interface.
    #[error(
        "component does not target a wasmail:plugin world: it exports {exports:?}, expected {expected}"
    )]
    WrongWorld {
        /// What it exports.
        exports: Vec<String>,
        /// What a filter must export.
        expected: &'static str,
    },
    /// Imports something the host does not offer plugins.
    #[error(
        "component imports `{0}`, which plugins may not use (allowed: wasmail:plugin/*, and WASI io, clocks, random, cli and filesystem types)"
    )]
    ForbiddenImport(String),
    /// Imports allowed names with types the host does not provide (an incompatible contract version).
    #[error("component's imports do not match the host's contract: {0}")]
    Link(String),
    /// The plugin rejected the configuration it was prepared with (its `prepare` returned an error).
    #[error("the plugin rejected its configuration: {0}")]
    Rejected(String),
    /// Preparing the plugin for a configuration failed (it trapped, ran out of budget, or could not
    /// be snapshotted).
    #[error("preparing the plugin failed: {0}")]
    Prepare(String),
    /// Defines more than the engine allows one component (memories, tables, instances, table
    /// elements, segments); the message names the limit.
    #[error("component exceeds the engine's limits: {0}")]
    ExceedsLimits(String),
    /// Compiling it took more than the tenant's compile budget (`budget` is `time` or `memory`).
    #[error(
        "compiling the component exceeded its {budget} budget of {limit}; a smaller or simpler component (fewer, smaller functions) compiles within it"
    )]
    CompileBudgetExceeded {
        /// Which budget: `time` or `memory`.
        budget: &'static str,
        /// The limit, with its unit.
        limit: String,
    },
    /// The server is shutting down; compiles in progress were stopped.
    #[error("the server is shutting down; try again")]
    ShuttingDown,
    /// Compilation failed.
    #[error("compilation failed: {0}")]
    Compile(String),
    /// The engine could not be set up.
    #[error("engine setup failed: {0}")]
    Engine(String),
}
