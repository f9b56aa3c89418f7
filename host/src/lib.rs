//! wasmail: a mail processing engine whose per-tenant pipeline stages are sandboxed WebAssembly
//! components.
//!
//! - [`domain`]: the names of the mail model (folders, flags, tags, reasons, addresses) and their rules.
//! - [`message`]: raw RFC 5322 → the host's parsed message (mail-parser), with native match primitives.
//! - [`sandbox`]: the sandbox that runs tenants' plugins (wasmtime): check, compile, cache and run components
//!   under limits. (The guest plugins themselves live in the top-level `plugins/` directory.)
//! - [`store`]: every SQL statement (sqlx; SQLite by default).
//! - [`pipeline`]: the parse pipeline (import) and filter pipelines (stages, execution, the run job).
//! - [`queue`]: the durable job queue (leases, retries, dead jobs) and this process as a node.
//! - [`service`]: the use cases (define a pipeline, start a run, import, upload, dry run, ...),
//!   callable from the API, the command line and the scheduler alike.
//! - [`auth`]: the admin token and tenant JWTs.
//! - [`api`]: the HTTP API (poem-openapi), and [`server`]: startup and graceful shutdown.
//! - [`config`]: the server's layered configuration.
//! - [`cli`]: the `wasmail` command line.

#[cfg(feature = "engine")]
pub mod api;
#[cfg(feature = "engine")]
pub mod auth;
#[cfg(feature = "engine")]
pub mod cli;
#[cfg(feature = "engine")]
pub mod config;
pub mod domain;
pub mod message;
#[cfg(feature = "engine")]
pub mod pipeline;
#[cfg(feature = "engine")]
pub mod queue;
#[cfg(feature = "engine")]
pub mod sandbox;
#[cfg(feature = "engine")]
pub mod server;
#[cfg(feature = "engine")]
pub mod service;
#[cfg(feature = "engine")]
pub mod store;
