//! Compiling components under a hard budget, in a small bounded pool.
//!
//! Cranelift's time and memory grow badly on pathological functions: a valid 3.7 MB component took
//! more than ten minutes and ~2 GiB (DESIGN.md §3). A thread cannot be stopped or memory-limited,
//! so each compile runs in a child process, the wasmail binary itself as `wasmail compile-worker`
//! ([`super::compile_worker`]), which limits its own CPU time and data segment before reading the
//! component from stdin and writes the artifact to stdout. The parent kills it at the wall-clock
//! deadline, and whenever the compile's future is dropped (`kill_on_drop`): the client left, or the
//! server is shutting down ([`Compiler::stop`]).
//!
//! At most `total` compiles run at once, and at most `per_tenant` of one tenant; waiting for a slot
//! is cancellable like the rest. [`InFlight`] makes sure one component (by key) is never compiled
//! twice at once: later requests wait for the first one's result.

use super::{LoadError, PluginLimits};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

/// The hidden subcommand that runs [`super::compile_worker::compile_worker`].
pub const WORKER_COMMAND: &str = "compile-worker";

/// Exit codes of the worker, so the parent can tell why it failed.
pub(crate) mod exit {
    /// The component does not compile (it does not validate, or Cranelift refused it).
    pub const INVALID: u8 = 65;
    /// Memory ran out (the worker noticed; an allocation failure aborts instead).
    pub const MEMORY: u8 = 66;
    /// Anything else: the worker's own failure, not the component's.
    pub const FAILED: u8 = 70;
}

/// Stderr kept from a worker, bytes: enough for wasmtime's error chain.
const STDERR_BYTES: u64 = 16 << 10;

/// What one compile may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CompileBudget {
    /// Wall-clock time; the CPU limit is the same, rounded up to whole seconds.
    pub timeout: Duration,
    /// The worker's data segment (RLIMIT_DATA), bytes.
    pub memory_bytes: u64,
}

impl CompileBudget {
    pub fn of(limits: &PluginLimits) -> Self {
        Self {
            timeout: limits.compile_timeout(),
            memory_bytes: limits.compile_memory_bytes,
        }
    }

    /// Whether a compile that ran out of `other` would have run out of this budget too.
    fn within(&self, other: &Self) -> bool {
        self.timeout <= other.timeout && self.memory_bytes <= other.memory_bytes
    }

    fn cpu_secs(&self) -> u64 {
        self.timeout.as_millis().div_ceil(1000).max(1) as u64
    }
}

/// The pool of compile workers.
pub(crate) struct Compiler {
    exe: PathBuf,
    total: Arc<Semaphore>,
    per_tenant: usize,
    tenants: Arc<Mutex<HashMap<String, Arc<Semaphore>>>>,
    stop: watch::Sender<bool>,
}

impl Compiler {
    /// Workers run `exe compile-worker`; at most `total` at once, `per_tenant` for one tenant.
    pub fn new(exe: PathBuf, total: usize, per_tenant: usize) -> Self {
        Self {
            exe,
            total: Arc::new(Semaphore::new(total.max(1))),
            per_tenant: per_tenant.max(1),
            tenants: Arc::default(),
            stop: watch::Sender::new(false),
        }
    }

    /// Ends every running compile and refuses new ones (the server is shutting down).
    pub fn stop(&self) {
        self.stop.send_replace(true);
    }

    /// Compiles `wasm` for `tenant` within `budget`; returns the artifact.
    pub async fn compile(
        &self,
        tenant: &str,
        wasm: &[u8],
        budget: CompileBudget,
    ) -> Result<Vec<u8>, LoadError> {
        let mut stop = self.stop.subscribe();
        let work = async {
            let _tenant = self.tenant_slot(tenant).await?;
            let _slot = self
                .total
                .acquire()
                .await
                .map_err(|e| LoadError::Engine(format!("compile pool: {e}")))?;
            self.run_worker(tenant, wasm, budget).await
        };
        tokio::select! {
            result = work => result,
            // Dropping `work` kills the worker, if there is one yet.
            _ = stop.wait_for(|stopped| *stopped) => Err(LoadError::ShuttingDown),
        }
    }

    async fn tenant_slot(&self, tenant: &str) -> Result<TenantSlot, LoadError> {
        let semaphore = self
            .tenants
            .lock()
            .entry(tenant.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_tenant)))
            .clone();
        let permit = semaphore
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| LoadError::Engine(format!("compile pool: {e}")))?;
        Ok(TenantSlot {
            tenant: tenant.to_string(),
            semaphore,
            permit: Some(permit),
            tenants: self.tenants.clone(),
        })
    }

    async fn run_worker(
        &self,
        tenant: &str,
        wasm: &[u8],
        budget: CompileBudget,
    ) -> Result<Vec<u8>, LoadError> {
        let mut child = tokio::process::Command::new(&self.exe)
            .arg(WORKER_COMMAND)
            .arg("--cpu-secs")
            .arg(budget.cpu_secs().to_string())
            .arg("--memory-bytes")
            .arg(budget.memory_bytes.to_string())
            // A label for `ps` (whose compile is this); the worker does not use it.
            .arg("--tenant")
            .arg(tenant)
            // Nothing from the server's environment reaches the worker (allocator or runtime
            // tuning variables would change what it may use).
            .env_clear()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                LoadError::Engine(format!(
                    "cannot start the compile worker {}: {e}",
                    self.exe.display()
                ))
            })?;
        let (stdin, stdout, stderr) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take());
        let io = async {
            let feed = async {
                if let Some(mut stdin) = stdin {
                    // A worker that dies early closes the pipe; its exit status says why.
                    let _ = stdin.write_all(wasm).await;
                }
            };
            let mut artifact = Vec::new();
            let read_out = async {
                if let Some(mut stdout) = stdout {
                    let _ = stdout.read_to_end(&mut artifact).await;
                }
            };
            let mut errors = Vec::new();
            let read_err = async {
                if let Some(stderr) = stderr {
                    let _ = stderr.take(STDERR_BYTES).read_to_end(&mut errors).await;
                }
            };
            tokio::join!(feed, read_out, read_err);
            (artifact, errors)
        };
        let finished = tokio::time::timeout(budget.timeout, async {
            let (artifact, errors) = io.await;
            (child.wait().await, artifact, errors)
        })
        .await;
        let Ok((status, artifact, errors)) = finished else {
            // Kill and reap now rather than leaving it to `kill_on_drop`'s background reaping.
            let _ = child.kill().await;
            return Err(over_time(budget));
        };
        let status = status
            .map_err(|e| LoadError::Engine(format!("waiting for the compile worker: {e}")))?;
        classify(status, artifact, &String::from_utf8_lossy(&errors), budget)
    }
}

/// Holds one of a tenant's compile slots; forgets the tenant's semaphore when nobody uses it.
struct TenantSlot {
    tenant: String,
    semaphore: Arc<Semaphore>,
    permit: Option<OwnedSemaphorePermit>,
    tenants: Arc<Mutex<HashMap<String, Arc<Semaphore>>>>,
}

impl Drop for TenantSlot {
    fn drop(&mut self) {
        drop(self.permit.take());
        let mut tenants = self.tenants.lock();
        // Clones are taken under this lock: two references are the map's and ours, so nobody
        // else holds or waits for a slot.
        if Arc::strong_count(&self.semaphore) == 2 {
            tenants.remove(&self.tenant);
        }
    }
}

fn over_time(budget: CompileBudget) -> LoadError {
    LoadError::CompileBudgetExceeded {
        budget: "time",
        limit: format!("{} ms", budget.timeout.as_millis()),
    }
}

fn over_memory(budget: CompileBudget) -> LoadError {
    LoadError::CompileBudgetExceeded {
        budget: "memory",
        limit: format!("{} bytes", budget.memory_bytes),
    }
}

/// Whether a worker's stderr says memory ran out: Rust's allocation-failure message (it then
/// aborts), or an OS error from mmap or a thread start.
pub(crate) fn says_out_of_memory(stderr: &str) -> bool {
    stderr.contains("memory allocation of")
        || stderr.contains("Cannot allocate memory")
        || stderr.contains("out of memory")
}

fn classify(
    status: ExitStatus,
    artifact: Vec<u8>,
    stderr: &str,
    budget: CompileBudget,
) -> Result<Vec<u8>, LoadError> {
    let stderr = stderr.trim();
    if status.success() {
        return Ok(artifact);
    }
    if let Some(signal) = status.signal() {
        // RLIMIT_CPU: SIGXCPU at the soft limit, SIGKILL at the hard one.
        if signal == nix::sys::signal::Signal::SIGXCPU as i32
            || signal == nix::sys::signal::Signal::SIGKILL as i32
        {
            return Err(over_time(budget));
        }
        if says_out_of_memory(stderr) {
            return Err(over_memory(budget));
        }
        return Err(LoadError::Compile(format!(
            "the compile worker died of signal {signal}: {stderr}"
        )));
    }
    match status.code().and_then(|c| u8::try_from(c).ok()) {
        Some(exit::INVALID) => Err(LoadError::Invalid(stderr.to_string())),
        Some(exit::MEMORY) => Err(over_memory(budget)),
        _ if says_out_of_memory(stderr) => Err(over_memory(budget)),
        _ => Err(LoadError::Compile(format!(
            "the compile worker failed ({status}): {stderr}"
        ))),
    }
}

type Shared<T> = Option<(Result<T, LoadError>, CompileBudget)>;

/// Compiles in progress, by key: the first request for a key does the work, later ones wait for
/// its result. If the first is cancelled (its client left), a waiter does the work instead; if it
/// ran out of a budget smaller than a waiter's, that waiter tries again with its own.
pub(crate) struct InFlight<T> {
    map: Arc<Mutex<HashMap<String, watch::Receiver<Shared<T>>>>>,
}

impl<T> Default for InFlight<T> {
    fn default() -> Self {
        Self {
            map: Arc::default(),
        }
    }
}

enum Role<T> {
    Leader(watch::Sender<Shared<T>>, LeaderGuard<T>),
    Waiter(watch::Receiver<Shared<T>>),
}

impl<T: Clone> InFlight<T> {
    /// `work()`'s result for `key`, running it only if no other request for `key` is.
    pub async fn run<F, Fut>(
        &self,
        key: &str,
        budget: CompileBudget,
        work: F,
    ) -> Result<T, LoadError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, LoadError>>,
    {
        let mut work = Some(work);
        loop {
            match self.role(key) {
                Role::Leader(tx, guard) => {
                    let work = work.take().ok_or_else(|| {
                        LoadError::Engine("compile leader without work".to_string())
                    })?;
                    let result = work().await;
                    tx.send_replace(Some((result.clone(), budget)));
                    drop(guard);
                    return result;
                }
                Role::Waiter(mut rx) => {
                    let Ok(done) = rx.wait_for(Option::is_some).await else {
                        continue; // the leader was cancelled: try to lead
                    };
                    let Some((result, theirs)) = done.clone() else {
                        continue;
                    };
                    match result {
                        Err(LoadError::CompileBudgetExceeded { .. }) if !budget.within(&theirs) => {
                            continue;
                        }
                        other => return other,
                    }
                }
            }
        }
    }

    fn role(&self, key: &str) -> Role<T> {
        let mut map = self.map.lock();
        if let Some(rx) = map.get(key) {
            // A receiver whose sender is gone belongs to a cancelled leader.
            if rx.has_changed().is_ok() {
                return Role::Waiter(rx.clone());
            }
        }
        let (tx, rx) = watch::channel(None);
        map.insert(key.to_string(), rx.clone());
        Role::Leader(
            tx,
            LeaderGuard {
                key: key.to_string(),
                rx,
                map: self.map.clone(),
            },
        )
    }
}

/// Removes the leader's entry when it finishes or is dropped.
struct LeaderGuard<T> {
    key: String,
    rx: watch::Receiver<Shared<T>>,
    map: Arc<Mutex<HashMap<String, watch::Receiver<Shared<T>>>>>,
}

impl<T> Drop for LeaderGuard<T> {
    fn drop(&mut self) {
        let mut map = self.map.lock();
        if map
            .get(&self.key)
            .is_some_and(|rx| rx.same_channel(&self.rx))
        {
            map.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn budget(ms: u64) -> CompileBudget {
        CompileBudget {
            timeout: Duration::from_millis(ms),
            memory_bytes: 1 << 30,
        }
    }

    #[tokio::test]
    async fn one_key_runs_once_at_a_time_and_waiters_share_the_result() {
        let flights = Arc::new(InFlight::<u32>::default());
        let runs = Arc::new(AtomicUsize::new(0));
        let (release, released) = watch::channel(false);
        let start = |flights: Arc<InFlight<u32>>, runs: Arc<AtomicUsize>| {
            let mut released = released.clone();
            tokio::spawn(async move {
                flights
                    .run("k", budget(1000), || async move {
                        runs.fetch_add(1, Ordering::SeqCst);
                        let _ = released.wait_for(|r| *r).await;
                        Ok(7)
                    })
                    .await
            })
        };
        let a = start(flights.clone(), runs.clone());
        let b = start(flights.clone(), runs.clone());
        tokio::task::yield_now().await;
        release.send_replace(true);
        assert_eq!(a.await.expect("a").expect("ok"), 7);
        assert_eq!(b.await.expect("b").expect("ok"), 7);
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert!(
            flights.map.lock().is_empty(),
            "finished flights are forgotten"
        );
    }

    #[tokio::test]
    async fn a_waiter_takes_over_from_a_cancelled_leader() {
        let flights = Arc::new(InFlight::<u32>::default());
        let (started, mut started_rx) = watch::channel(false);
        let leader = {
            let flights = flights.clone();
            tokio::spawn(async move {
                flights
                    .run("k", budget(1000), || async move {
                        started.send_replace(true);
                        std::future::pending::<Result<u32, LoadError>>().await
                    })
                    .await
            })
        };
        let _ = started_rx.wait_for(|s| *s).await;
        let waiter = {
            let flights = flights.clone();
            tokio::spawn(async move { flights.run("k", budget(1000), || async { Ok(9) }).await })
        };
        tokio::task::yield_now().await;
        leader.abort();
        assert_eq!(waiter.await.expect("waiter").expect("ok"), 9);
    }

    #[tokio::test]
    async fn a_larger_budget_retries_after_a_smaller_one_ran_out() {
        let flights = InFlight::<u32>::default();
        let small = flights
            .run("k", budget(10), || async { Err(over_time(budget(10))) })
            .await;
        assert!(matches!(
            small,
            Err(LoadError::CompileBudgetExceeded { .. })
        ));
        assert!(budget(10).within(&budget(10)));
        assert!(!budget(20).within(&budget(10)));
    }

    #[test]
    fn exits_are_classified() {
        let b = budget(1500);
        assert_eq!(b.cpu_secs(), 2);
        let ok = ExitStatus::from_raw(0);
        assert_eq!(classify(ok, vec![1], "", b).expect("ok"), vec![1]);
        let xcpu = ExitStatus::from_raw(nix::sys::signal::Signal::SIGXCPU as i32);
        assert!(matches!(
            classify(xcpu, vec![], "", b),
            Err(LoadError::CompileBudgetExceeded { budget: "time", .. })
        ));
        let abort = ExitStatus::from_raw(nix::sys::signal::Signal::SIGABRT as i32);
        assert!(matches!(
            classify(abort, vec![], "memory allocation of 4096 bytes failed", b),
            Err(LoadError::CompileBudgetExceeded {
                budget: "memory",
                ..
            })
        ));
        let invalid = ExitStatus::from_raw(i32::from(exit::INVALID) << 8);
        assert!(matches!(
            classify(invalid, vec![], "bad", b),
            Err(LoadError::Invalid(_))
        ));
    }
}
