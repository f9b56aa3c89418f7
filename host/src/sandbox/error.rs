use super::LogLine;
use serde::{Serialize, Serializer};
use std::time::Duration;

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

/// Kind of a plugin failure; stable names for the API and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    /// What kind of failure.
    pub kind: FailureKind,
    /// Explanation.
    pub message: String,
    /// The guest's panic message, when it panicked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub panic: Option<String>,
    /// WebAssembly frames, innermost first, with function names where the module has them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub backtrace: Vec<String>,
    /// The last log lines before the failure.
    pub logs: Vec<LogLine>,
    /// What the plugin wrote to stdout and stderr (capped).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub stderr: String,
    /// Fuel consumed before the failure (a lower bound when the deadline interrupted a loop: fuel
    /// still held in registers is not counted).
    pub fuel_used: u64,
    /// Wall-clock time of the call.
    #[serde(serialize_with = "micros", rename = "duration_us")]
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

pub(crate) fn micros<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_micros().try_into().unwrap_or(u64::MAX))
}
