//! Preparing a plugin for one configuration: run its `prepare` export once, snapshot the instance
//! with wasmtime-wizer, and compile the snapshot. Every call then starts from memory where the
//! configuration is already parsed, instead of parsing it again in each fresh instance.

use super::LoadError;
use super::bindings::Filter;
use super::state::SandboxState;
use std::future::Future;
use std::time::Instant;
use wasmtime::Store;
use wasmtime::component::{Component, ComponentType, Instance, Lift, Linker, WasmList};
use wasmtime_wizer::{ComponentContext, ComponentInstanceState, Wizer};

/// An instrumented copy of the component, ready to be compiled and prepared.
pub(crate) struct Instrumented<'a> {
    wizer: Wizer,
    cx: ComponentContext<'a>,
}

/// Instruments `bytes` so its state can be read after `prepare`; returns the instrumented
/// component's bytes (to compile) with what is needed to snapshot it.
pub(crate) fn instrument(bytes: &[u8]) -> Result<(Instrumented<'_>, Vec<u8>), LoadError> {
    let mut wizer = Wizer::new();
    wizer.keep_init_func(true);
    let (cx, instrumented) = wizer
        .instrument_component(bytes)
        .map_err(|e| failed("instrumenting", e))?;
    Ok((Instrumented { wizer, cx }, instrumented))
}

fn failed(what: &str, e: wasmtime::Error) -> LoadError {
    LoadError::Prepare(format!("{what}: {}", e.root_cause()))
}

/// Runs `prepare` in the instrumented `component` (compiled from [`instrument`]'s bytes) within
/// `store`'s limits, and returns the snapshot's bytes. The store's deadline is armed; a guest
/// waiting in WASI is stopped at `deadline` by a timeout around the whole call.
pub(crate) async fn run_and_snapshot(
    store: &mut Store<SandboxState>,
    linker: &Linker<SandboxState>,
    component: &Component,
    instrumented: &Instrumented<'_>,
    deadline: Instant,
) -> Result<Vec<u8>, LoadError> {
    let run = async {
        let instance = linker
            .instantiate_async(&mut *store, component)
            .await
            .map_err(|e| failed("instantiating", e))?;
        let filter = Filter::new(&mut *store, &instance).map_err(|e| failed("binding", e))?;
        match filter
            .wasmail_plugin_filter_stage()
            .call_prepare(&mut *store)
            .await
        {
            Ok(Ok(())) => Ok(instance),
            Ok(Err(rejected)) => Err(LoadError::Rejected(rejected.message)),
            Err(e) => Err(LoadError::Prepare(format!(
                "prepare failed: {}{}",
                e.root_cause(),
                last_logs(store)
            ))),
        }
    };
    let instance = match tokio::time::timeout_at(deadline.into(), run).await {
        Ok(result) => result?,
        Err(_) => {
            return Err(LoadError::Prepare(format!(
                "prepare failed: the deadline passed while it waited{}",
                last_logs(store)
            )));
        }
    };

    // Reading the instance's state runs a few accessor exports; they are ours, not the plugin's, so
    // they get their own budget.
    store
        .set_fuel(u64::MAX / 2)
        .map_err(|e| failed("setting fuel", e))?;
    store.data_mut().budget.deadline = Instant::now() + std::time::Duration::from_secs(3600);
    let mut access = Access {
        store,
        instance,
        failure: None,
    };
    let snapshot = instrumented
        .wizer
        .snapshot_component(&instrumented.cx, &mut access)
        .await;
    if let Some(e) = access.failure {
        return Err(failed("snapshotting", e));
    }
    snapshot.map_err(|e| failed("snapshotting", e))
}

fn last_logs(store: &Store<SandboxState>) -> String {
    let logs = store.data().logs.tail(5);
    if logs.is_empty() {
        return String::new();
    }
    let last = logs
        .iter()
        .map(|l| l.message.as_str())
        .collect::<Vec<_>>()
        .join(" | ");
    format!(" {last}")
}

/// Wizer's view of the prepared instance: calls the accessor functions its instrumentation exports.
struct Access<'a> {
    store: &'a mut Store<SandboxState>,
    instance: Instance,
    failure: Option<wasmtime::Error>,
}

impl Access<'_> {
    /// Calls the accessor `instance#func`, which takes nothing and returns one `R`.
    async fn try_call<R: ComponentType + Lift + Send + Sync + 'static>(
        &mut self,
        instance: &str,
        func: &str,
    ) -> wasmtime::Result<R> {
        let missing = || wasmtime::Error::msg(format!("no export {instance}#{func}"));
        let (_, outer) = self
            .instance
            .get_export(&mut *self.store, None, instance)
            .ok_or_else(missing)?;
        let (_, inner) = self
            .instance
            .get_export(&mut *self.store, Some(&outer), func)
            .ok_or_else(missing)?;
        let typed = self
            .instance
            .get_typed_func::<(), (R,)>(&mut *self.store, inner)?;
        Ok(typed.call_async(&mut *self.store, ()).await?.0)
    }

    /// As `try_call`; wizer's interface has no errors, so the first failure is kept for the caller
    /// and a default stands in.
    async fn call<R: ComponentType + Lift + Default + Send + Sync + 'static>(
        &mut self,
        instance: &str,
        func: &str,
    ) -> R {
        match self.try_call(instance, func).await {
            Ok(value) => value,
            Err(e) => {
                self.failure.get_or_insert(e);
                R::default()
            }
        }
    }
}

// The trait's methods return `impl Future + Send`; writing them as `async fn` would not promise `Send`.
#[allow(clippy::manual_async_fn)]
impl ComponentInstanceState for Access<'_> {
    fn call_func_ret_list_u8(
        &mut self,
        instance: &str,
        func: &str,
        contents: impl FnOnce(&[u8]) + Send,
    ) -> impl Future<Output = ()> + Send {
        async move {
            match self.try_call::<WasmList<u8>>(instance, func).await {
                Ok(list) => contents(list.as_le_slice(&*self.store)),
                Err(e) => {
                    self.failure.get_or_insert(e);
                    contents(&[]);
                }
            }
        }
    }

    fn call_func_ret_s32(
        &mut self,
        instance: &str,
        func: &str,
    ) -> impl Future<Output = i32> + Send {
        self.call::<i32>(instance, func)
    }

    fn call_func_ret_s64(
        &mut self,
        instance: &str,
        func: &str,
    ) -> impl Future<Output = i64> + Send {
        self.call::<i64>(instance, func)
    }

    fn call_func_ret_f32(
        &mut self,
        instance: &str,
        func: &str,
    ) -> impl Future<Output = u32> + Send {
        async move { self.call::<f32>(instance, func).await.to_bits() }
    }

    fn call_func_ret_f64(
        &mut self,
        instance: &str,
        func: &str,
    ) -> impl Future<Output = u64> + Send {
        async move { self.call::<f64>(instance, func).await.to_bits() }
    }
}
