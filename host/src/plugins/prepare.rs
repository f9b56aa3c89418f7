//! Preparing a plugin for one configuration: run its `prepare` export once, snapshot the instance
//! with wasmtime-wizer, and compile the snapshot. Every call then starts from memory where the
//! configuration is already parsed, instead of parsing it again in each fresh instance.

use super::bindings::Filter;
use super::engine::ticks_for;
use super::state::StoreState;
use super::{LoadError, PluginLimits};
use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use wasmtime::component::{Component, ComponentType, Instance, Lift, Linker, WasmList};
use wasmtime::{Engine, Store};
use wasmtime_wizer::{ComponentInstanceState, Wizer};

/// Runs `prepare` in an instrumented copy of the component and returns the snapshot's bytes.
pub(crate) fn snapshot(
    engine: &Engine,
    linker: &Linker<StoreState>,
    bytes: &[u8],
    config: Arc<str>,
    limits: &PluginLimits,
) -> Result<Vec<u8>, LoadError> {
    let failed =
        |what: &str, e: wasmtime::Error| LoadError::Prepare(format!("{what}: {}", e.root_cause()));
    let mut wizer = Wizer::new();
    wizer.keep_init_func(true);
    let (cx, instrumented) = wizer
        .instrument_component(bytes)
        .map_err(|e| failed("instrumenting", e))?;
    let component = Component::new(engine, &instrumented).map_err(|e| failed("compiling", e))?;

    let mut store = Store::new(engine, StoreState::new(config, limits));
    store.limiter(|state| &mut state.limiter);
    store.set_epoch_deadline(ticks_for(limits.deadline()));
    store.epoch_deadline_trap();
    store
        .set_fuel(limits.fuel_base)
        .map_err(|e| failed("setting fuel", e))?;
    let instance = linker
        .instantiate(&mut store, &component)
        .map_err(|e| failed("instantiating", e))?;
    let filter = Filter::new(&mut store, &instance).map_err(|e| failed("binding", e))?;
    match filter
        .wasmail_plugin_filter_stage()
        .call_prepare(&mut store)
    {
        Ok(Ok(())) => {}
        Ok(Err(rejected)) => return Err(LoadError::Rejected(rejected.message)),
        Err(e) => {
            let logs = store.data().logs.tail(5);
            let last = logs
                .iter()
                .map(|l| l.message.as_str())
                .collect::<Vec<_>>()
                .join(" | ");
            return Err(LoadError::Prepare(format!(
                "prepare failed: {} {last}",
                e.root_cause()
            )));
        }
    }

    // Reading the instance's state runs a few accessor exports; they are ours, not the plugin's, so
    // they get their own budget.
    store
        .set_fuel(u64::MAX / 2)
        .map_err(|e| failed("setting fuel", e))?;
    store.set_epoch_deadline(u64::MAX / 2);
    let mut access = Access {
        store: &mut store,
        instance,
        failure: None,
    };
    let snapshot = block_on(wizer.snapshot_component(&cx, &mut access));
    if let Some(e) = access.failure {
        return Err(failed("snapshotting", e));
    }
    snapshot.map_err(|e| failed("snapshotting", e))
}

/// Wizer's view of the prepared instance: calls the accessor functions its instrumentation exports.
struct Access<'a> {
    store: &'a mut Store<StoreState>,
    instance: Instance,
    failure: Option<wasmtime::Error>,
}

impl Access<'_> {
    /// Calls the accessor `instance#func`, which takes nothing and returns one `R`.
    fn try_call<R: ComponentType + Lift + 'static>(
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
        Ok(typed.call(&mut *self.store, ())?.0)
    }

    /// As `try_call`; wizer's interface has no errors, so the first failure is kept for the caller
    /// and a default stands in.
    fn call<R: ComponentType + Lift + Default + 'static>(
        &mut self,
        instance: &str,
        func: &str,
    ) -> R {
        self.try_call(instance, func).unwrap_or_else(|e| {
            self.failure.get_or_insert(e);
            R::default()
        })
    }
}

impl ComponentInstanceState for Access<'_> {
    fn call_func_ret_list_u8(
        &mut self,
        instance: &str,
        func: &str,
        contents: impl FnOnce(&[u8]) + Send,
    ) -> impl Future<Output = ()> + Send {
        let list = self.try_call::<WasmList<u8>>(instance, func);
        match list {
            Ok(list) => contents(list.as_le_slice(&*self.store)),
            Err(e) => {
                self.failure.get_or_insert(e);
                contents(&[]);
            }
        }
        std::future::ready(())
    }

    fn call_func_ret_s32(
        &mut self,
        instance: &str,
        func: &str,
    ) -> impl Future<Output = i32> + Send {
        std::future::ready(self.call::<i32>(instance, func))
    }

    fn call_func_ret_s64(
        &mut self,
        instance: &str,
        func: &str,
    ) -> impl Future<Output = i64> + Send {
        std::future::ready(self.call::<i64>(instance, func))
    }

    fn call_func_ret_f32(
        &mut self,
        instance: &str,
        func: &str,
    ) -> impl Future<Output = u32> + Send {
        std::future::ready(self.call::<f32>(instance, func).to_bits())
    }

    fn call_func_ret_f64(
        &mut self,
        instance: &str,
        func: &str,
    ) -> impl Future<Output = u64> + Send {
        std::future::ready(self.call::<f64>(instance, func).to_bits())
    }
}

/// Drives a future whose every step is ready (the accessors above never wait).
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(value) = future.as_mut().poll(&mut cx) {
            return value;
        }
    }
}
