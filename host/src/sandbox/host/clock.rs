use crate::sandbox::bindings::wasmail::plugin::clock::Host;
use crate::sandbox::state::SandboxState;

impl Host for SandboxState {
    fn now(&mut self) -> wasmtime::Result<i64> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Ok(i64::try_from(now.as_millis()).unwrap_or(i64::MAX))
    }
}
