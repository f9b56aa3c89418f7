//! The wasmtime engine every plugin runs on, configured for many short, isolated calls.

use super::LoadError;
use std::time::Duration;
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How often the epoch advances: the resolution of plugin deadlines.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(10);

/// What one component may define. The one source of these numbers: the pooling allocator is built
/// with them, and [`super::check`] refuses a component over them at upload (a 422 naming the limit)
/// instead of letting the engine fail it later (a 500).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ComponentLimits {
    /// Linear memories defined by one core module. Each is limited to the tenant's memory limit on
    /// its own, so this also bounds what one instance can hold: memories x limit.
    pub memories_per_module: u32,
    /// Tables defined by one core module.
    pub tables_per_module: u32,
    /// Linear memories defined by all the core modules of a component together.
    pub memories_per_component: u32,
    /// Tables defined by all the core modules of a component together.
    pub tables_per_component: u32,
    /// Core module instances of a component (every nested component counted).
    pub core_instances_per_component: u32,
    /// Component instances nested in a component.
    pub component_instances_per_component: u32,
    /// Initial elements of one table (the pooling allocator reserves this many per table slot).
    pub table_elements: u64,
    /// Data segments of one core module (each is copied into memory at every instantiation).
    pub data_segments_per_module: u32,
    /// Element segments of one core module.
    pub element_segments_per_module: u32,
}

/// The limits in force. A Rust `wasm32-wasip2` component has one module with one memory and one
/// table, plus a few adapter and shim instances; componentize-py links each shared library as a
/// module instance sharing one memory and one table, so instances get more room than memories.
pub(crate) const COMPONENT_LIMITS: ComponentLimits = ComponentLimits {
    memories_per_module: 1,
    tables_per_module: 1,
    memories_per_component: 4,
    tables_per_component: 16,
    core_instances_per_component: 64,
    component_instances_per_component: 64,
    // wasmtime's default, which the C# runtime (a large plugin language) was seen to need.
    table_elements: 20_000,
    data_segments_per_module: 10_000,
    element_segments_per_module: 10_000,
};

/// Engine-wide settings (per-call limits are [`super::PluginLimits`]).
pub(crate) struct EngineSettings {
    pub max_memory_bytes: u64,
    pub max_wasm_stack: usize,
    pub instances: u32,
    /// Freed instance slots kept warm (their first 2 MiB of memory resident, for the next call of
    /// the same plugin). Sized to the calls that run at once, not to the slots.
    pub warm_slots: u32,
}

/// The settings that change the compiled code. The serving engine and the compile worker both
/// start from this, so an artifact the worker writes deserializes in the server's engine (wasmtime
/// checks the target, the compiler flags, the tunables and the features, and refuses a mismatch).
fn compilation_config() -> Config {
    let mut config = Config::new();
    config
        .epoch_interruption(true)
        .consume_fuel(true)
        .wasm_component_model(true);
    config
}

pub(crate) fn build(settings: &EngineSettings) -> Result<Engine, LoadError> {
    let limits = COMPONENT_LIMITS;
    let mut pool = PoolingAllocationConfig::new();
    // Measured (DESIGN.md §3): keeping the first 2 MiB of each freed memory resident, and resetting
    // pages found dirty through pagemap_scan, gave 77k fresh instances/s on one thread and 111k on two;
    // with the defaults two threads were slower than one.
    // Each slot ever used keeps that memory, so the slots in use over a node's life are bounded by
    // the warm ones: with wasmtime's default (100 warm slots, ~2 memories each) a node held ~120 MB
    // more after one pipeline import than before it, and kept it.
    pool.linear_memory_keep_resident(2 << 20)
        .max_unused_warm_slots(settings.warm_slots)
        .table_keep_resident(64 << 10)
        .pagemap_scan(Enabled::Auto)
        .total_component_instances(settings.instances)
        // A Rust wasm32-wasip2 component holds a few core instances (the module and adapter shims).
        .total_core_instances(settings.instances * 4)
        .total_memories(settings.instances * 2)
        .total_tables(settings.instances * 4)
        .total_stacks(settings.instances)
        .max_memories_per_module(limits.memories_per_module)
        .max_tables_per_module(limits.tables_per_module)
        .max_memories_per_component(limits.memories_per_component)
        .max_tables_per_component(limits.tables_per_component)
        .max_core_instances_per_component(limits.core_instances_per_component)
        .table_elements(usize::try_from(limits.table_elements).unwrap_or(usize::MAX))
        .max_memory_size(usize::try_from(settings.max_memory_bytes).unwrap_or(usize::MAX));

    let mut config = compilation_config();
    config
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
        .max_wasm_stack(settings.max_wasm_stack)
        .wasm_backtrace_max_frames(std::num::NonZeroUsize::new(64))
        .parallel_compilation(true);
    // `perf record` can name plugin functions when wasmtime writes /tmp/perf-<pid>.map.
    if std::env::var_os("WASMAIL_PERF_MAP").is_some() {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    Engine::new(&config).map_err(|e| LoadError::Engine(e.to_string()))
}

/// The engine of the compile worker: the same compilation settings, but no pooling allocator (it
/// reserves address space for every slot, which a memory-limited process cannot and need not
/// have: compiling instantiates nothing) and one compiling thread, so a compile uses one core and
/// the total compile pool bounds the cores compilation takes from the calls.
pub(crate) fn build_for_compiling() -> Result<Engine, LoadError> {
    let mut config = compilation_config();
    config
        .allocation_strategy(InstanceAllocationStrategy::OnDemand)
        .parallel_compilation(false);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_compile_engine_writes_artifacts_the_serving_engine_loads() {
        let serving = build(&EngineSettings {
            max_memory_bytes: 1 << 30,
            max_wasm_stack: 512 << 10,
            instances: 4,
            warm_slots: 4,
        })
        .expect("serving engine");
        let compiling = build_for_compiling().expect("compile engine");
        let wasm = wat::parse_str(
            r#"(component (core module $m (memory 1) (func (export "f") (result i32) i32.const 7))
                 (core instance (instantiate $m)))"#,
        )
        .expect("wat");
        let artifact = compiling.precompile_component(&wasm).expect("compile");
        // SAFETY: the artifact was just produced by a compatible engine of this process.
        #[allow(unsafe_code)]
        let loaded = unsafe { wasmtime::component::Component::deserialize(&serving, &artifact) };
        loaded.expect("the serving engine accepts the worker's artifact");
    }
}
