//! Levelled logging into the stage's result.
//!
//! The host keeps a bounded amount of log text per call (16 KiB by default) and reports how much it
//! dropped. Lines show up in `wasmail plugin test`'s output and in pipeline run results.
//!
//! ```no_run
//! wasmail_plugin::log::info("scoring message");
//! wasmail_plugin::log::warn(&format!("unknown header value {:?}", "x"));
//! ```

use crate::bindings::wasmail::plugin::log::{Level, log};

/// Logs at `trace` level.
///
/// ```no_run
/// wasmail_plugin::log::trace("entering rule 3");
/// ```
pub fn trace(message: &str) {
    log(Level::Trace, message);
}

/// Logs at `debug` level.
///
/// ```no_run
/// wasmail_plugin::log::debug("rule 3 did not match");
/// ```
pub fn debug(message: &str) {
    log(Level::Debug, message);
}

/// Logs at `info` level.
///
/// ```no_run
/// wasmail_plugin::log::info("moved to Spam");
/// ```
pub fn info(message: &str) {
    log(Level::Info, message);
}

/// Logs at `warn` level.
///
/// ```no_run
/// wasmail_plugin::log::warn("Date header missing");
/// ```
pub fn warn(message: &str) {
    log(Level::Warn, message);
}

/// Logs at `error` level.
///
/// ```no_run
/// wasmail_plugin::log::error("cannot decode attachment 2");
/// ```
pub fn error(message: &str) {
    log(Level::Error, message);
}
