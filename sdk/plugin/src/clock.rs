//! Time, read from the host.

/// Wall-clock time in milliseconds since the Unix epoch (UTC).
///
/// ```no_run
/// let now = wasmail_plugin::clock::now_millis();
/// assert!(now > 1_600_000_000_000);
/// ```
pub fn now_millis() -> i64 {
    crate::bindings::wasmail::plugin::clock::now()
}
