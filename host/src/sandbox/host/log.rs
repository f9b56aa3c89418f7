use crate::sandbox::LogLevel;
use crate::sandbox::bindings::wasmail::plugin::log::{Host, Level};
use crate::sandbox::state::SandboxState;

impl Host for SandboxState {
    fn log(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        let level = match level {
            Level::Trace => LogLevel::Trace,
            Level::Debug => LogLevel::Debug,
            Level::Info => LogLevel::Info,
            Level::Warn => LogLevel::Warn,
            Level::Error => LogLevel::Error,
        };
        self.logs.push(level, &message);
        Ok(())
    }
}
