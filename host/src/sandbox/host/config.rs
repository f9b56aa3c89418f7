use crate::sandbox::bindings::wasmail::plugin::config::Host;
use crate::sandbox::state::SandboxState;

impl Host for SandboxState {
    fn get(&mut self) -> wasmtime::Result<String> {
        Ok(self.config.to_string())
    }
}
