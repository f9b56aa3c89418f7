//! wasmail: a mail processing engine whose per-tenant pipeline stages are sandboxed WebAssembly
//! components.
//!
//! - [`message`]: raw RFC 5322 → the host's parsed message (mail-parser), with native match primitives.
//! - [`plugins`]: the plugin runtime (wasmtime): check, compile, cache and run components under limits.
//! - [`cli`]: the `wasmail` command line.

#[cfg(feature = "engine")]
pub mod cli;
pub mod message;
#[cfg(feature = "engine")]
pub mod plugins;
