// A `Failure` carries its diagnostics (logs, backtrace, panic) by value: it is the rare path, and
// callers inspect and serialise it rather than propagate it with `?`.
#![allow(clippy::result_large_err)]

use super::bindings::{Filter, FilterPre};
use super::cache::ArtifactCache;
use super::check::{ComponentInfo, check, sha256_hex};
use super::compile::{CompileBudget, Compiler, InFlight};
use super::engine::{EngineSettings, build, start_epoch_ticker, ticks_for};
use super::host::MessageResource;
use super::state::{MemoryLimitExceeded, StoreState};
use super::{Failure, FailureKind, LoadError, Outcome, PluginLimits};
use crate::message::ParsedMessage;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Engine, Store, Trap, WasmBacktrace};

/// How many log lines a failure carries.
const FAILURE_LOG_LINES: usize = 20;

/// Settings of a [`Runtime`] that hold for every plugin it runs.
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    /// Where compiled artifacts are cached; `None` compiles every load.
    pub cache_dir: Option<PathBuf>,
    /// Native stack a plugin's WebAssembly may use (engine-wide in wasmtime), bytes.
    pub max_wasm_stack: usize,
    /// Ceiling for any tenant's memory limit, bytes.
    pub max_memory_bytes: u64,
    /// Instance slots of the pooling allocator (plugins running at once, at most).
    pub instances: u32,
    /// Calls of [`Runtime::run`] executing at once; more wait their turn. Plugins are CPU-bound, so
    /// more than the core count only adds latency.
    pub max_concurrent_calls: usize,
    /// The executable compiles run in: the wasmail binary (`wasmail compile-worker`). Tests and
    /// benchmarks, whose own executable is not wasmail, set `env!("CARGO_BIN_EXE_wasmail")`.
    pub compiler_exe: PathBuf,
    /// Compiles running at once, all tenants together; more wait their turn. Each uses one core.
    pub max_concurrent_compiles: usize,
    /// Compiles of one tenant running at once.
    pub max_concurrent_compiles_per_tenant: usize,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        Self {
            cache_dir: None,
            max_wasm_stack: 512 << 10,
            max_memory_bytes: 1 << 30,
            instances: 1000,
            max_concurrent_calls: cores * 2,
            compiler_exe: default_compiler_exe(),
            // Half the cores at most: the other half keeps serving calls while plugins compile.
            max_concurrent_compiles: (cores / 2).max(1),
            max_concurrent_compiles_per_tenant: 1,
        }
    }
}

/// This very binary. On Linux `/proc/self/exe` names it even after the file was replaced (an
/// upgrade in place), so the worker is always the same build as the server and its artifacts
/// always load.
fn default_compiler_exe() -> PathBuf {
    let proc_self = PathBuf::from("/proc/self/exe");
    if proc_self.exists() {
        return proc_self;
    }
    std::env::current_exe().unwrap_or_else(|_| PathBuf::from("wasmail"))
}

/// Runs plugins. Cheap to clone and safe to use from many threads and tasks at once.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    linker: Linker<StoreState>,
    cache: ArtifactCache,
    calls: Semaphore,
    compiler: Compiler,
    compiling: InFlight<Component>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime").finish_non_exhaustive()
    }
}

/// A checked, compiled, pre-instantiated plugin. Cheap to clone.
#[derive(Clone)]
pub struct Plugin {
    info: Arc<ComponentInfo>,
    pre: FilterPre<StoreState>,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl Plugin {
    /// What the component is.
    pub fn info(&self) -> &ComponentInfo {
        &self.info
    }
}

/// A plugin prepared for one configuration ([`Runtime::prepare`]). Cheap to clone.
#[derive(Clone, Debug)]
pub struct PreparedPlugin {
    plugin: Plugin,
    config: Arc<str>,
}

impl PreparedPlugin {
    /// The plugin (its info describes the uploaded component, not the snapshot).
    pub fn plugin(&self) -> &Plugin {
        &self.plugin
    }

    /// The configuration it was prepared with.
    pub fn config(&self) -> &str {
        &self.config
    }
}

impl Runtime {
    /// Builds the engine, the linker with the host imports, and the artifact cache.
    pub fn new(options: RuntimeOptions) -> Result<Self, LoadError> {
        let engine = build(&EngineSettings {
            max_memory_bytes: options.max_memory_bytes,
            max_wasm_stack: options.max_wasm_stack,
            instances: options.instances,
        })?;
        start_epoch_ticker(&engine);
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .map_err(|e| LoadError::Engine(e.to_string()))?;
        Filter::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)
            .map_err(|e| LoadError::Engine(e.to_string()))?;
        let cache = ArtifactCache::new(&engine, options.cache_dir)
            .map_err(|e| LoadError::Engine(format!("artifact cache: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                engine,
                linker,
                cache,
                calls: Semaphore::new(options.max_concurrent_calls.max(1)),
                compiler: Compiler::new(
                    options.compiler_exe,
                    options.max_concurrent_compiles,
                    options.max_concurrent_compiles_per_tenant,
                ),
                compiling: InFlight::default(),
            }),
        })
    }

    /// Checks a component without compiling it: size, component-ness, world, imports.
    pub fn check(&self, bytes: &[u8], limits: &PluginLimits) -> Result<ComponentInfo, LoadError> {
        check(bytes, limits.upload_bytes)
    }

    /// Checks, compiles (or loads the cached artifact) and pre-instantiates a component of
    /// `tenant`, compiling within the tenant's compile budget and slots. Dropping the future stops
    /// the compile.
    pub async fn load(
        &self,
        tenant: &str,
        bytes: &[u8],
        limits: &PluginLimits,
    ) -> Result<Plugin, LoadError> {
        let info = check(bytes, limits.upload_bytes)?;
        let component = self
            .compiled(tenant, &info.sha256, limits, || async {
                Ok(bytes.to_vec())
            })
            .await?;
        self.link(info, component)
    }

    /// Stops every compile in progress and refuses new ones: the server is shutting down.
    pub fn stop_compiles(&self) {
        self.inner.compiler.stop();
    }

    /// Compiles `wasm` (not cached) in the compile pool, within `tenant`'s budget; the prepare
    /// path compiles the instrumented component with this.
    #[allow(dead_code)] // used by the async prepare path
    pub(crate) async fn compile_component(
        &self,
        tenant: &str,
        wasm: &[u8],
        limits: &PluginLimits,
    ) -> Result<Component, LoadError> {
        let budget = CompileBudget::of(limits);
        let key = format!("uncached-{}", sha256_hex(wasm));
        self.inner
            .compiling
            .run(&key, budget, || async {
                let artifact = self.inner.compiler.compile(tenant, wasm, budget).await?;
                self.deserialize(&artifact)
            })
            .await
    }

    /// Loads a component prepared for one stage configuration: its `prepare` export runs once, the
    /// instance is snapshotted, and every call starts from the snapshot, so configuration parsing is
    /// not repeated per message. The compiled snapshot is cached like any artifact, keyed by the
    /// component and the configuration. A plugin that rejects the configuration fails here.
    pub fn prepare(
        &self,
        bytes: &[u8],
        config: &str,
        limits: &PluginLimits,
    ) -> Result<PreparedPlugin, LoadError> {
        let info = check(bytes, limits.upload_bytes)?;
        let config: Arc<str> = config.into();
        let key = format!(
            "prepared-{}",
            sha256_hex(format!("{}\0{config}", info.sha256).as_bytes())
        );
        let component = self.compiled_in_process(&key, || {
            let snapshot = super::prepare::snapshot(
                &self.inner.engine,
                &self.inner.linker,
                bytes,
                config.clone(),
                limits,
            )?;
            // The snapshot must still be a filter importing only what plugins may import.
            check(&snapshot, usize::MAX)?;
            Ok(snapshot)
        })?;
        Ok(PreparedPlugin {
            plugin: self.link(info, component)?,
            config,
        })
    }

    fn link(&self, info: ComponentInfo, component: Component) -> Result<Plugin, LoadError> {
        let pre = self
            .inner
            .linker
            .instantiate_pre(&component)
            .map_err(|e| LoadError::Link(format!("{e:#}")))?;
        let pre = FilterPre::new(pre).map_err(|e| LoadError::Link(format!("{e:#}")))?;
        Ok(Plugin {
            info: Arc::new(info),
            pre,
        })
    }

    /// The compiled component for `key`: from the artifact cache, or compiled from `source()` in
    /// the compile pool within `tenant`'s budget. One key is compiled once at a time: concurrent
    /// requests for it share the result.
    async fn compiled<F, Fut>(
        &self,
        tenant: &str,
        key: &str,
        limits: &PluginLimits,
        source: F,
    ) -> Result<Component, LoadError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Vec<u8>, LoadError>>,
    {
        let engine = &self.inner.engine;
        if let Some(component) = self.inner.cache.load(engine, key) {
            return Ok(component);
        }
        let budget = CompileBudget::of(limits);
        self.inner
            .compiling
            .run(key, budget, || async {
                // A compile of this key may have finished between the lookup above and now.
                if let Some(component) = self.inner.cache.load(engine, key) {
                    return Ok(component);
                }
                let wasm = source().await?;
                let artifact = self.inner.compiler.compile(tenant, &wasm, budget).await?;
                self.inner.cache.store(key, &artifact);
                self.deserialize(&artifact)
            })
            .await
    }

    /// The compiled component for `key`, compiled on this thread without a budget: the prepare
    /// path's snapshot (a component that already compiled within budget, plus its memory image),
    /// until prepare runs async and uses [`Self::compiled`].
    fn compiled_in_process(
        &self,
        key: &str,
        source: impl FnOnce() -> Result<Vec<u8>, LoadError>,
    ) -> Result<Component, LoadError> {
        let engine = &self.inner.engine;
        if let Some(component) = self.inner.cache.load(engine, key) {
            return Ok(component);
        }
        let artifact = engine
            .precompile_component(&source()?)
            .map_err(|e| LoadError::Compile(format!("{e:#}")))?;
        self.inner.cache.store(key, &artifact);
        self.deserialize(&artifact)
    }

    /// Loads an artifact compiled for this engine's configuration just now.
    fn deserialize(&self, artifact: &[u8]) -> Result<Component, LoadError> {
        // SAFETY: `artifact` was produced just now from a checked component, by this engine or by
        // a compile worker of this very binary with the same compilation settings (wasmtime
        // checks the settings again and refuses a mismatch).
        #[allow(unsafe_code)]
        let component = unsafe { Component::deserialize(&self.inner.engine, artifact) };
        component.map_err(|e| {
            let why = format!("{e:#}");
            // The pooling allocator's own per-component check: the static check at upload should
            // have refused this already, but its counts are a lower bound for nested components.
            if why.contains("pooling allocator") {
                LoadError::ExceedsLimits(why)
            } else {
                LoadError::Compile(why)
            }
        })
    }

    /// Runs a prepared plugin over `message` with the configuration it was prepared for, on a
    /// blocking thread.
    pub async fn run_prepared(
        &self,
        prepared: &PreparedPlugin,
        message: Arc<ParsedMessage>,
        limits: &PluginLimits,
    ) -> Result<Outcome, Failure> {
        self.run(&prepared.plugin, message, prepared.config.clone(), limits)
            .await
    }

    /// Runs a prepared plugin over `message` on this thread.
    pub fn run_prepared_blocking(
        &self,
        prepared: &PreparedPlugin,
        message: Arc<ParsedMessage>,
        limits: &PluginLimits,
    ) -> Result<Outcome, Failure> {
        self.run_blocking(&prepared.plugin, message, prepared.config.clone(), limits)
    }

    /// Runs `plugin` over `message` on a blocking thread, at most `max_concurrent_calls` at once.
    pub async fn run(
        &self,
        plugin: &Plugin,
        message: Arc<ParsedMessage>,
        config: Arc<str>,
        limits: &PluginLimits,
    ) -> Result<Outcome, Failure> {
        let permit = self.inner.calls.acquire().await;
        let (runtime, plugin, limits) = (self.clone(), plugin.clone(), limits.clone());
        let joined = tokio::task::spawn_blocking(move || {
            runtime.run_blocking(&plugin, message, config, &limits)
        })
        .await;
        drop(permit);
        joined.unwrap_or_else(|e| Err(host_failure(format!("plugin call did not complete: {e}"))))
    }

    /// Runs `plugin` over `message` on this thread, in a fresh store under `limits`.
    pub fn run_blocking(
        &self,
        plugin: &Plugin,
        message: Arc<ParsedMessage>,
        config: Arc<str>,
        limits: &PluginLimits,
    ) -> Result<Outcome, Failure> {
        // A panic in a host import (a bug of ours on some odd message) must not take the caller down:
        // it becomes this call's failure, and the store it happened in is dropped with it.
        let call = std::panic::AssertUnwindSafe(|| self.call(plugin, message, config, limits));
        std::panic::catch_unwind(call).unwrap_or_else(|panic| {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!("host panic during a plugin call: {what}");
            Err(host_failure(format!(
                "internal error in the host while running the plugin: {what}"
            )))
        })
    }

    fn call(
        &self,
        plugin: &Plugin,
        message: Arc<ParsedMessage>,
        config: Arc<str>,
        limits: &PluginLimits,
    ) -> Result<Outcome, Failure> {
        let started = Instant::now();
        let fuel = limits.fuel_for(message.size());
        let mut store = Store::new(&self.inner.engine, StoreState::new(config, limits));
        store.limiter(|state| &mut state.limiter);
        store.set_epoch_deadline(ticks_for(limits.deadline()));
        store.epoch_deadline_trap();
        if let Err(e) = store.set_fuel(fuel) {
            return Err(host_failure(format!("cannot set fuel: {e}")));
        }

        let result = plugin
            .pre
            .instantiate(&mut store)
            .map_err(|e| (FailureKind::Instantiation, e))
            .and_then(|filter| {
                let handle = store
                    .data_mut()
                    .table
                    .push(MessageResource(message))
                    .map_err(|e| {
                        (
                            FailureKind::Instantiation,
                            wasmtime::Error::msg(format!("resource table: {e}")),
                        )
                    })?;
                filter
                    .wasmail_plugin_filter_stage()
                    .call_filter(&mut store, handle)
                    .map_err(|e| (FailureKind::Trap, e))
            });
        let fuel_used = fuel.saturating_sub(store.get_fuel().unwrap_or(0));
        let duration = started.elapsed();
        let state = store.data();
        let output = state.output();
        let failure = |kind: FailureKind, message: String, backtrace: Vec<String>| Failure {
            kind,
            message,
            panic: state.logs.panic_message().or_else(|| stderr_panic(&output)),
            backtrace,
            logs: state.logs.tail(FAILURE_LOG_LINES),
            stderr: output.clone(),
            fuel_used,
            duration,
        };

        match result {
            Ok(Ok(actions)) => {
                if actions.len() > limits.max_actions {
                    let msg = format!(
                        "returned {} actions; at most {} are allowed",
                        actions.len(),
                        limits.max_actions
                    );
                    return Err(failure(FailureKind::InvalidOutput, msg, Vec::new()));
                }
                let actions = actions
                    .into_iter()
                    .map(super::action::from_guest)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|why| failure(FailureKind::InvalidOutput, why, Vec::new()))?;
                Ok(Outcome {
                    actions,
                    logs: state.logs.lines.clone(),
                    logs_dropped: state.logs.dropped,
                    stderr: output,
                    fuel_used,
                    duration,
                })
            }
            Ok(Err(plugin_error)) => {
                let message: String = plugin_error
                    .message
                    .chars()
                    .take(limits.log_bytes.max(256))
                    .collect();
                Err(failure(FailureKind::Plugin, message, Vec::new()))
            }
            Err((phase, error)) => {
                let (kind, message) = classify(phase, &error, state.limiter.hit, limits.deadline());
                Err(failure(kind, message, backtrace(&error)))
            }
        }
    }
}

/// Names the failure from the trap code, the limiter's record and the phase it happened in.
fn classify(
    phase: FailureKind,
    error: &wasmtime::Error,
    memory_hit: bool,
    deadline: Duration,
) -> (FailureKind, String) {
    if memory_hit || error.downcast_ref::<MemoryLimitExceeded>().is_some() {
        let why = error
            .downcast_ref::<MemoryLimitExceeded>()
            .map(ToString::to_string)
            .unwrap_or_else(|| "memory limit exceeded".to_string());
        return (FailureKind::Memory, why);
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => (
            FailureKind::Deadline,
            format!("deadline of {} ms exceeded", deadline.as_millis()),
        ),
        Some(Trap::OutOfFuel) => (FailureKind::Fuel, "fuel budget exhausted".to_string()),
        Some(Trap::MemoryOutOfBounds) => (
            FailureKind::Trap,
            format!(
                "{} (deep recursion overflowing the guest's shadow stack ends this way too)",
                Trap::MemoryOutOfBounds
            ),
        ),
        Some(trap) => (FailureKind::Trap, trap.to_string()),
        // The backtrace is attached as context; the root cause says what happened (e.g. the guest
        // called `exit`). The frames are reported separately.
        None => (phase, error.root_cause().to_string()),
    }
}

fn backtrace(error: &wasmtime::Error) -> Vec<String> {
    let Some(trace) = error.downcast_ref::<WasmBacktrace>() else {
        return Vec::new();
    };
    let names = trace.frames().iter().map(|frame| {
        let module = frame.module().name().unwrap_or("<module>");
        match frame.func_name() {
            Some(name) => format!("{module}!{:#}", rustc_demangle::demangle(name)),
            None => format!("{module}!<wasm function {}>", frame.func_index()),
        }
    });
    // Deep recursion fills the trace with one frame: show it once, with a count.
    let mut frames: Vec<(String, usize)> = Vec::new();
    for name in names {
        match frames.last_mut() {
            Some((last, count)) if *last == name => *count += 1,
            _ => frames.push((name, 1)),
        }
    }
    frames
        .into_iter()
        .map(|(name, n)| {
            if n == 1 {
                name
            } else {
                format!("{name} (x{n})")
            }
        })
        .collect()
}

/// A panic message written by Rust's default hook (guests not built with the SDK).
fn stderr_panic(stderr: &str) -> Option<String> {
    let at = stderr.find("panicked at ")?;
    Some(stderr[at + "panicked at ".len()..].trim().to_string())
}

fn host_failure(message: String) -> Failure {
    Failure {
        kind: FailureKind::Host,
        message,
        panic: None,
        backtrace: Vec::new(),
        logs: Vec::new(),
        stderr: String::new(),
        fuel_used: 0,
        duration: Duration::ZERO,
    }
}
