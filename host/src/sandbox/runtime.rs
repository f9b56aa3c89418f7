// A `Failure` carries its diagnostics (logs, backtrace, panic) by value: it is the rare path, and
// callers inspect and serialise it rather than propagate it with `?`.
#![allow(clippy::result_large_err)]

use super::bindings::{Filter, FilterPre};
use super::cache::{ArtifactCache, Keep};
use super::check::{ComponentInfo, check, sha256_hex};
use super::compile::{CompileBudget, Compiler, InFlight};
use super::engine::{EngineSettings, build, start_epoch_ticker};
use super::executor::Executor;
use super::host::{HostRefused, MessageResource};
use super::ledger::CacheStats;
use super::patterns::{PatternBudget, PatternCache};
use super::permits::Permits;
use super::state::{HostBudget, HostExhausted, MemoryLimitExceeded, SandboxState};
use super::{Failure, FailureKind, LoadError, Outcome, PluginLimits};
use crate::message::ParsedMessage;
use std::future::Future as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Engine, Store, Trap, UpdateDeadline, WasmBacktrace};

/// How many log lines a failure carries.
const FAILURE_LOG_LINES: usize = 20;

/// Settings of a [`Runtime`] that hold for every plugin it runs.
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    /// Where compiled artifacts are cached; `None` compiles every load.
    pub cache_dir: Option<PathBuf>,
    /// Bytes the artifact cache may hold on disk, all tenants together (see the cache's module docs
    /// for the per-tenant share).
    pub cache_bytes: u64,
    /// Native stack a plugin's WebAssembly may use (engine-wide in wasmtime), bytes.
    pub max_wasm_stack: usize,
    /// Ceiling for any tenant's memory limit, bytes.
    pub max_memory_bytes: u64,
    /// Instance slots of the pooling allocator (plugins running at once, at most).
    pub instances: u32,
    /// Calls of [`Runtime::run`] (and preparations) executing at once; more wait their turn.
    /// Plugins are CPU-bound, so more than the core count only adds latency.
    pub max_concurrent_calls: usize,
    /// How many of those permits one tenant may hold at once, so one tenant's slow calls cannot
    /// queue every other tenant's behind them.
    pub max_concurrent_calls_per_tenant: usize,
    /// Threads plugin calls run on (a runtime of their own, beside the server's).
    pub threads: usize,
    /// Byte budgets of the compiled `matches` patterns kept between calls.
    pub patterns: PatternBudget,
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
            cache_bytes: 1 << 30,
            max_wasm_stack: 512 << 10,
            max_memory_bytes: 1 << 30,
            instances: 1000,
            max_concurrent_calls: cores * 2,
            max_concurrent_calls_per_tenant: cores.max(1),
            threads: cores,
            patterns: PatternBudget::default(),
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
    linker: Linker<SandboxState>,
    cache: ArtifactCache,
    calls: Permits,
    patterns: PatternCache,
    executor: Executor,
    /// Turns true when the host stops: calls in flight end at once, new ones fail.
    stopping: tokio::sync::watch::Sender<bool>,
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
    /// The tenant it was loaded for: its calls draw on that tenant's caches.
    owner: Arc<str>,
    pre: FilterPre<SandboxState>,
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
    memory_bytes: u64,
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

    /// What keeping it loaded costs, bytes: the compiled image (code, and the snapshot's memory
    /// initialisation data, which the image carries), plus that data again for the copy-on-write
    /// memory image wasmtime builds from it (a memfd when the image is not mapped from a file), which
    /// is at most the image less its code; and the configuration.
    pub fn memory_bytes(&self) -> u64 {
        self.memory_bytes
    }
}

impl Runtime {
    /// Builds the engine, the linker with the host imports, and the artifact cache.
    pub fn new(options: RuntimeOptions) -> Result<Self, LoadError> {
        let engine = build(&EngineSettings {
            max_memory_bytes: options.max_memory_bytes,
            max_wasm_stack: options.max_wasm_stack,
            instances: options.instances,
            // The calls running at once (preparations hold the same permits), twice over: slots
            // of the plugins called recently stay warm, the rest give their memory back.
            warm_slots: u32::try_from(options.max_concurrent_calls.saturating_mul(2))
                .unwrap_or(u32::MAX)
                .max(2),
        })?;
        start_epoch_ticker(&engine);
        let mut linker = Linker::new(&engine);
        // The async WASI: a guest that sleeps or polls waits on a future, which the call's timeout
        // ends; the sync flavour blocked the thread for as long as the guest asked.
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| LoadError::Engine(e.to_string()))?;
        Filter::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)
            .map_err(|e| LoadError::Engine(e.to_string()))?;
        let cache = ArtifactCache::new(&engine, options.cache_dir, options.cache_bytes)
            .map_err(|e| LoadError::Engine(format!("artifact cache: {e}")))?;
        let executor = Executor::new(options.threads)
            .map_err(|e| LoadError::Engine(format!("plugin threads: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                engine,
                linker,
                cache,
                calls: Permits::new(
                    options.max_concurrent_calls,
                    options.max_concurrent_calls_per_tenant,
                ),
                patterns: PatternCache::new(options.patterns),
                executor,
                stopping: tokio::sync::watch::Sender::new(false),
                compiler: Compiler::new(
                    options.compiler_exe,
                    options.max_concurrent_compiles,
                    options.max_concurrent_compiles_per_tenant,
                ),
                compiling: InFlight::default(),
            }),
        })
    }

    /// Ends every call and preparation in flight and refuses new ones: shutdown must not wait on a
    /// plugin, whatever its deadline.
    pub fn shutdown(&self) {
        self.inner.stopping.send_replace(true);
    }

    /// Resolves once [`Self::shutdown`] was called.
    async fn stopped(&self) {
        let mut stopping = self.inner.stopping.subscribe();
        let _ = stopping.wait_for(|stopping| *stopping).await;
    }

    /// Bytes of compiled `matches` patterns held for `tenant`, and for everyone.
    pub fn pattern_cache_bytes(&self, tenant: &str) -> (usize, usize) {
        self.inner.patterns.bytes(tenant)
    }

    /// Plugin calls (and preparations) that could start now without waiting for a permit.
    pub fn free_call_permits(&self) -> usize {
        self.inner.calls.available()
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
            .compiled(tenant, &info.sha256, limits, Keep::Cached, || async {
                Ok(bytes.to_vec())
            })
            .await?;
        self.link(tenant, info, component)
    }

    /// [`Self::load`] for callers outside an async runtime (the command line, benchmarks).
    pub fn load_blocking(
        &self,
        tenant: &str,
        bytes: &[u8],
        limits: &PluginLimits,
    ) -> Result<Plugin, LoadError> {
        self.inner
            .executor
            .block_on(self.load(tenant, bytes, limits))
    }

    /// Stops every compile in progress and refuses new ones: the server is shutting down.
    pub fn stop_compiles(&self) {
        self.inner.compiler.stop();
    }

    /// Loads a component prepared for one stage configuration: its `prepare` export runs once, the
    /// instance is snapshotted, and every call starts from the snapshot, so configuration parsing is
    /// not repeated per message. The compiled snapshot is cached like any artifact, keyed by the
    /// tenant, the component and the configuration, unless `keep` is [`Keep::Ephemeral`] (an
    /// existing artifact is still used). A plugin that rejects the configuration fails here.
    ///
    /// `prepare` runs under the tenant's limits like a call (deadline, fuel, memory) and takes one of
    /// the same permits, so preparations cannot crowd out calls past the concurrency bound.
    pub async fn prepare(
        &self,
        tenant: &str,
        bytes: &[u8],
        config: &str,
        limits: &PluginLimits,
        keep: Keep,
    ) -> Result<PreparedPlugin, LoadError> {
        let info = check(bytes, limits.upload_bytes)?;
        let config: Arc<str> = config.into();
        let key = format!(
            "prepared-{}",
            sha256_hex(format!("{}\0{config}", info.sha256).as_bytes())
        );
        // The snapshot is made only when the cache has none: `compiled` looks it up once, and
        // concurrent preparations of the same configuration share one snapshot.
        let component = self
            .compiled(tenant, &key, limits, keep, || async {
                let snapshot = self.snapshot(tenant, bytes, config.clone(), limits).await?;
                // The snapshot must still be a filter importing only what plugins may import.
                check(&snapshot, usize::MAX)?;
                Ok(snapshot)
            })
            .await?;
        let memory_bytes = loaded_bytes(&component) + u64::try_from(config.len()).unwrap_or(0);
        Ok(PreparedPlugin {
            plugin: self.link(tenant, info, component)?,
            config,
            memory_bytes,
        })
    }

    /// [`Self::prepare`] for callers outside an async runtime (the command line).
    pub fn prepare_blocking(
        &self,
        tenant: &str,
        bytes: &[u8],
        config: &str,
        limits: &PluginLimits,
        keep: Keep,
    ) -> Result<PreparedPlugin, LoadError> {
        self.inner
            .executor
            .block_on(self.prepare(tenant, bytes, config, limits, keep))
    }

    /// Runs the plugin's `prepare` under `limits` and a call permit, and snapshots the instance.
    async fn snapshot(
        &self,
        tenant: &str,
        bytes: &[u8],
        config: Arc<str>,
        limits: &PluginLimits,
    ) -> Result<Vec<u8>, LoadError> {
        let (cx, instrumented) = super::prepare::instrument(bytes)?;
        // The instrumented component is the same for every configuration: compiled once (in the
        // compile pool, within the tenant's budget) and cached like any artifact.
        let key = format!("instrumented-{}", sha256_hex(bytes));
        let component = self
            .compiled(tenant, &key, limits, Keep::Cached, || async {
                Ok(instrumented)
            })
            .await?;
        let tenant: Arc<str> = tenant.into();
        let _permit = self
            .inner
            .calls
            .acquire(&tenant)
            .await
            .ok_or(LoadError::ShuttingDown)?;
        let started = Instant::now();
        let fuel = limits.fuel_base;
        let mut store = self.store(tenant, config, limits, started, fuel)?;
        let prepared = super::prepare::run_and_snapshot(
            &mut store,
            &self.inner.linker,
            &component,
            &cx,
            started + limits.deadline(),
        );
        tokio::select! {
            prepared = prepared => prepared,
            () = self.stopped() => Err(LoadError::ShuttingDown),
        }
    }

    /// A fresh store for one call: limits, fuel, and the deadline armed on the epoch.
    fn store(
        &self,
        tenant: Arc<str>,
        config: Arc<str>,
        limits: &PluginLimits,
        started: Instant,
        fuel: u64,
    ) -> Result<Store<SandboxState>, LoadError> {
        let deadline = started + limits.deadline();
        let state = SandboxState::new(
            config,
            limits,
            HostBudget::new(deadline, fuel),
            tenant,
            self.inner.patterns.clone(),
        );
        let mut store = Store::new(&self.inner.engine, state);
        store.limiter(|state| &mut state.limiter);
        store
            .set_fuel(fuel)
            .map_err(|e| LoadError::Engine(format!("cannot set fuel: {e}")))?;
        arm_deadline(&mut store);
        Ok(store)
    }

    fn link(
        &self,
        tenant: &str,
        info: ComponentInfo,
        component: Component,
    ) -> Result<Plugin, LoadError> {
        let pre = self
            .inner
            .linker
            .instantiate_pre(&component)
            .map_err(|e| LoadError::Link(format!("{e:#}")))?;
        let pre = FilterPre::new(pre).map_err(|e| LoadError::Link(format!("{e:#}")))?;
        Ok(Plugin {
            info: Arc::new(info),
            owner: tenant.into(),
            pre,
        })
    }

    /// The compiled component for `key`: from `tenant`'s artifact cache, or compiled from `source()`
    /// in the compile pool within `tenant`'s budget (and cached unless `keep` is ephemeral). One key
    /// is compiled once at a time: concurrent requests for it share the result.
    async fn compiled<F, Fut>(
        &self,
        tenant: &str,
        key: &str,
        limits: &PluginLimits,
        keep: Keep,
        source: F,
    ) -> Result<Component, LoadError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Vec<u8>, LoadError>>,
    {
        let engine = &self.inner.engine;
        let budget = CompileBudget::of(limits);
        // In-flight compiles are shared per tenant: the artifact cache is per tenant too.
        let flight = format!("{tenant}\0{key}");
        self.inner
            .compiling
            .run(&flight, budget, || async {
                // Looked up inside the flight: a compile of this key that finished while this one
                // waited is found here, and each lookup is counted once.
                if let Some(component) = self.inner.cache.load(engine, tenant, key) {
                    return Ok(component);
                }
                let wasm = source().await?;
                let artifact = self.inner.compiler.compile(tenant, &wasm, budget).await?;
                self.inner.cache.store(tenant, key, &artifact, keep);
                self.deserialize(&artifact)
            })
            .await
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

    /// Bytes the on-disk artifact cache holds, in total and per tenant.
    pub fn cache_stats(&self) -> CacheStats {
        self.inner.cache.stats()
    }

    /// Runs a prepared plugin over `message` with the configuration it was prepared for.
    pub async fn run_prepared(
        &self,
        prepared: &PreparedPlugin,
        message: Arc<ParsedMessage>,
        limits: &PluginLimits,
    ) -> Result<Outcome, Failure> {
        self.run(&prepared.plugin, message, prepared.config.clone(), limits)
            .await
    }

    /// Runs a prepared plugin over `message` on this (non-async) thread.
    pub fn run_prepared_blocking(
        &self,
        prepared: &PreparedPlugin,
        message: Arc<ParsedMessage>,
        limits: &PluginLimits,
    ) -> Result<Outcome, Failure> {
        self.run_blocking(&prepared.plugin, message, prepared.config.clone(), limits)
    }

    /// Runs `plugin` over `message` on the plugin threads, at most `max_concurrent_calls` at once.
    /// The call ends by its deadline whatever the guest does; dropping the returned future ends it
    /// at once and frees its permit.
    pub async fn run(
        &self,
        plugin: &Plugin,
        message: Arc<ParsedMessage>,
        config: Arc<str>,
        limits: &PluginLimits,
    ) -> Result<Outcome, Failure> {
        let (runtime, plugin, limits) = (self.clone(), plugin.clone(), limits.clone());
        let mut task = self.inner.executor.spawn(async move {
            let Some(_permit) = runtime.inner.calls.acquire(&plugin.owner).await else {
                return Err(host_failure("the runtime is shutting down".into()));
            };
            runtime.call(&plugin, message, config, &limits).await
        });
        (&mut task.0).await.unwrap_or_else(|e| {
            let what = if e.is_panic() {
                panic_text(e.into_panic())
            } else {
                "cancelled".to_string()
            };
            tracing::error!("plugin call did not complete: {what}");
            Err(host_failure(format!(
                "internal error in the host while running the plugin: {what}"
            )))
        })
    }

    /// Runs `plugin` over `message` on this (non-async) thread, in a fresh store under `limits`.
    pub fn run_blocking(
        &self,
        plugin: &Plugin,
        message: Arc<ParsedMessage>,
        config: Arc<str>,
        limits: &PluginLimits,
    ) -> Result<Outcome, Failure> {
        // A panic in a host import (a bug of ours on some odd message) must not take the caller down:
        // it becomes this call's failure, and the store it happened in is dropped with it.
        let call = std::panic::AssertUnwindSafe(|| {
            self.inner
                .executor
                .block_on(self.call(plugin, message, config, limits))
        });
        std::panic::catch_unwind(call).unwrap_or_else(|panic| {
            let what = panic_text(panic);
            tracing::error!("host panic during a plugin call: {what}");
            Err(host_failure(format!(
                "internal error in the host while running the plugin: {what}"
            )))
        })
    }

    async fn call(
        &self,
        plugin: &Plugin,
        message: Arc<ParsedMessage>,
        config: Arc<str>,
        limits: &PluginLimits,
    ) -> Result<Outcome, Failure> {
        let started = Instant::now();
        let deadline = started + limits.deadline();
        let fuel = limits.fuel_for(message.size());
        let mut store = self
            .store(plugin.owner.clone(), config, limits, started, fuel)
            .map_err(|e| host_failure(e.to_string()))?;

        let call = async {
            let filter = plugin
                .pre
                .instantiate_async(&mut store)
                .await
                .map_err(|e| (FailureKind::Instantiation, e))?;
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
                .await
                .map_err(|e| (FailureKind::Trap, e))
        };
        // In wasm, the epoch callback traps at the deadline (with a backtrace). A guest waiting in
        // WASI, or the host, is stopped by this timeout: the call's future is dropped where it waits.
        // Most calls finish within their first poll (wasm yields only at an epoch tick, 10 ms in):
        // those need no timer. A call still pending after it (waiting in WASI, or yielding at a
        // tick) gets the timeout and the shutdown signal. Registering a timer for every call cost
        // ~20% of throughput on two threads (the timer wheel's lock).
        let result = {
            let mut call = std::pin::pin!(call);
            let first = std::future::poll_fn(|cx| Poll::Ready(call.as_mut().poll(cx))).await;
            match first {
                Poll::Ready(result) => result,
                Poll::Pending => tokio::select! {
                    timed = tokio::time::timeout_at(deadline.into(), call) => match timed {
                        Ok(result) => result,
                        Err(_) => Err((FailureKind::Deadline, wasmtime::Error::new(Trap::Interrupt))),
                    },
                    () = self.stopped() => Err((
                        FailureKind::Host,
                        wasmtime::Error::msg("the host is shutting down; the call was stopped"),
                    )),
                },
            }
        };
        let state = store.data();
        let fuel_used = fuel
            .saturating_sub(store.get_fuel().unwrap_or(0))
            .saturating_add(state.budget.charged);
        let duration = started.elapsed();
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

/// Memory a loaded component holds: its image, plus at most the image less its code again for the
/// copy-on-write memory images (see [`PreparedPlugin::memory_bytes`]).
fn loaded_bytes(component: &Component) -> u64 {
    let image = component.image_range();
    let image = (image.end as usize).saturating_sub(image.start as usize);
    let data = image.saturating_sub(component.text().len());
    u64::try_from(image + data).unwrap_or(u64::MAX)
}

/// Ends the store's wasm at the wall-clock deadline, yields to the executor at every epoch tick
/// (so a timeout around the call and other calls get their turn), and moves the host's scan
/// charges into the store's fuel.
pub(crate) fn arm_deadline(store: &mut Store<SandboxState>) {
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|mut cx| {
        let budget = &mut cx.data_mut().budget;
        if Instant::now() >= budget.deadline {
            return Err(Trap::Interrupt.into());
        }
        // The store's fuel is only read here, never reset mid-call: resetting it while compiled
        // code holds fuel in registers counted some of it twice.
        let wasm_left = cx.get_fuel()?;
        let budget = &mut cx.data_mut().budget;
        if budget.charged > wasm_left {
            return Err(Trap::OutOfFuel.into());
        }
        budget.fuel_seen = wasm_left - budget.charged;
        budget.pending = 0;
        Ok(UpdateDeadline::Yield(1))
    });
}

fn panic_text(panic: Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default()
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
    if let Some(HostRefused(why)) = error.downcast_ref::<HostRefused>() {
        return match why {
            HostExhausted::Deadline => (
                FailureKind::Deadline,
                format!(
                    "deadline of {} ms exceeded (in a host call)",
                    deadline.as_millis()
                ),
            ),
            HostExhausted::Fuel => (
                FailureKind::Fuel,
                "fuel budget exhausted (host scans are paid from it)".to_string(),
            ),
        };
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
