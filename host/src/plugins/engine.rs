//! The wasmtime engine every plugin runs on, configured for many short, isolated calls.

use super::LoadError;
use std::time::Duration;
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How often the epoch advances: the resolution of plugin deadlines.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Engine-wide settings (per-call limits are [`super::PluginLimits`]).
pub(crate) struct EngineSettings {
    pub max_memory_bytes: u64,
    pub max_wasm_stack: usize,
    pub instances: u32,
}

pub(crate) fn build(settings: &EngineSettings) -> Result<Engine, LoadError> {
    let mut pool = PoolingAllocationConfig::new();
    // Measured (DESIGN.md §3): keeping the first 2 MiB of each freed memory resident, and resetting
    // pages found dirty through pagemap_scan, gave 77k fresh instances/s on one thread and 111k on two;
    // with the defaults two threads were slower than one.
    pool.linear_memory_keep_resident(2 << 20)
        .table_keep_resident(64 << 10)
        .pagemap_scan(Enabled::Auto)
        .total_component_instances(settings.instances)
        // A Rust wasm32-wasip2 component holds a few core instances (the module and adapter shims).
        .total_core_instances(settings.instances * 4)
        .total_memories(settings.instances * 2)
        .total_tables(settings.instances * 4)
        .total_stacks(settings.instances)
        .max_memory_size(usize::try_from(settings.max_memory_bytes).unwrap_or(usize::MAX));

    let mut config = Config::new();
    config
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
        .epoch_interruption(true)
        .consume_fuel(true)
        .max_wasm_stack(settings.max_wasm_stack)
        .wasm_backtrace_max_frames(std::num::NonZeroUsize::new(64))
        .wasm_component_model(true)
        .parallel_compilation(true);
    // `perf record` can name plugin functions when wasmtime writes /tmp/perf-<pid>.map.
    if std::env::var_os("WASMAIL_PERF_MAP").is_some() {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    Engine::new(&config).map_err(|e| LoadError::Engine(e.to_string()))
}

/// Advances the engine's epoch every [`EPOCH_TICK`] until the engine is dropped.
pub(crate) fn start_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("wasmail-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .map(drop)
        .unwrap_or_else(|e| tracing::error!("cannot start the epoch ticker: {e}"));
}
