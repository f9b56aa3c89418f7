use crate::plugins::bindings::wasmail::plugin::config::Host;
use crate::plugins::state::StoreState;

impl Host for StoreState {
    fn get(&mut self) -> wasmtime::Result<String> {
        Ok(self.config.to_string())
    }
}
