//! The plugin runtime: checks, compiles and runs tenants' WebAssembly components under limits.
//!
//! A [`Runtime`] owns one wasmtime engine (pooling allocator, epoch interruption, fuel), the linker
//! with the host imports, and the on-disk cache of compiled artifacts. [`Runtime::load`] turns a
//! component's bytes into a [`Plugin`] (checked, compiled once, pre-instantiated); [`Runtime::run`]
//! runs it over one message in a fresh store and returns an [`Outcome`] or a [`Failure`]. A failing
//! plugin never fails the host, and never affects the next call.

mod action;
mod bindings;
mod cache;
mod check;
mod compile;
mod compile_worker;
mod engine;
mod error;
mod executor;
mod host;
mod ledger;
mod outcome;
mod patterns;
mod permits;
mod prepare;
mod runtime;
mod state;

/// A tenant's limits are part of the tenant (the domain); the sandbox enforces them.
pub use crate::domain::PluginLimits;
pub use action::{Action, check_output, checked};
pub use cache::Keep;
pub use check::{ALLOWED_IMPORTS, ComponentInfo, FILTER_EXPORT};
pub use compile::WORKER_COMMAND;
pub use compile_worker::compile_worker;
pub use error::{Failure, FailureKind, LoadError};
pub(crate) use ledger::Ledger;
pub use ledger::{CacheStats, TenantUsage};
pub use outcome::{LogLevel, LogLine, Outcome};
pub use patterns::PatternBudget;
pub use runtime::{Plugin, PreparedPlugin, Runtime, RuntimeOptions};
