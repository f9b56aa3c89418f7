//! Shared by the engine tests: guests built from source once per test run, a runtime, the corpus.

#[path = "../common/fixtures.rs"]
mod fixtures;
pub use fixtures::*;

use std::sync::{Arc, OnceLock};
use wasmail::message::{Envelope, ParsedMessage};
use wasmail::sandbox::{Plugin, PluginLimits, Runtime, RuntimeOptions};

/// One runtime shared by the tests of a process, as a server would share it.
pub fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        let cache = target_dir().join("test-artifact-cache");
        Runtime::new(RuntimeOptions {
            cache_dir: Some(cache),
            compiler_exe: env!("CARGO_BIN_EXE_wasmail").into(),
            ..RuntimeOptions::default()
        })
        .expect("runtime")
    })
}

/// A loaded guest on the shared runtime.
pub fn plugin(name: &str) -> Plugin {
    block_on(runtime().load(TENANT, &guest(name), &PluginLimits::default()))
        .unwrap_or_else(|e| panic!("load {name}: {e}"))
}

/// The tenant the engine tests load plugins for.
pub const TENANT: &str = "engine-tests";

/// Runs an async engine call to its end from a plain test (or from inside another runtime): on
/// a thread of its own with its own runtime.
pub fn block_on<F: Future + Send>(work: F) -> F::Output
where
    F::Output: Send,
{
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime")
                    .block_on(work)
            })
            .join()
            .expect("engine call")
    })
}

pub fn message(raw: &[u8]) -> Arc<ParsedMessage> {
    Arc::new(ParsedMessage::parse(raw.to_vec(), Envelope::default()))
}

pub fn config(json: &str) -> Arc<str> {
    Arc::from(json)
}
