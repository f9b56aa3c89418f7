//! The threads plugin calls run on.
//!
//! Calls are async wasmtime calls: WebAssembly yields to the executor at every epoch tick, and a
//! guest blocked in WASI (a sleep, a poll) is a pending future, so a timeout around the call ends it
//! whatever it is doing. They run on a runtime of their own, not on the server's, so CPU-bound
//! plugins share the cores with the API through the OS scheduler instead of queueing in front of
//! its requests.

use std::future::Future;
use tokio::runtime::{Builder, Handle, Runtime};
use tokio::task::JoinHandle;

pub(crate) struct Executor {
    runtime: Option<Runtime>,
    handle: Handle,
}

impl Executor {
    pub fn new(threads: usize) -> std::io::Result<Self> {
        let runtime = Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name("wasmail-plugin")
            // Timers for deadlines; IO for the compile workers' pipes (prepare and the blocking
            // entry points compile from here).
            .enable_time()
            .enable_io()
            .build()?;
        let handle = runtime.handle().clone();
        Ok(Self {
            runtime: Some(runtime),
            handle,
        })
    }

    /// Runs `future` on the plugin threads; dropping the returned guard aborts it (a caller that
    /// stops waiting — a cancelled run, a client gone — frees the call's permit at once).
    pub fn spawn<F>(&self, future: F) -> AbortOnDrop<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        AbortOnDrop(self.handle.spawn(future))
    }

    /// Drives `future` to completion on the calling (non-async) thread, with this runtime's timers.
    /// A plugin call usually completes in its first poll: that poll runs directly in the runtime's
    /// context, and only a future still pending after it pays for `block_on`'s parking machinery.
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        let mut future = std::pin::pin!(future);
        let first = {
            let _context = self.handle.enter();
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            future.as_mut().poll(&mut cx)
        };
        match first {
            std::task::Poll::Ready(output) => output,
            // Polled again at once by `block_on`, with a waker that parks this thread.
            std::task::Poll::Pending => self.handle.block_on(future),
        }
    }
}

impl Drop for Executor {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which panics inside an async context; nothing must wait here.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// A spawned task that is aborted when this handle is dropped.
pub(crate) struct AbortOnDrop<T>(pub JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
