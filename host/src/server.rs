//! Startup and shutdown: build the application from its configuration, serve until told to stop.
//!
//! [`Application::build`] binds the listener (port 0 picks one, [`Application::local_addr`] says
//! which), opens and migrates the database, sets up auth, the plugin runtime, registers this
//! process as a node and sets up its job runner. [`Application::run_until`] serves (and executes
//! jobs, unless `worker = false`) until the given future resolves, then stops accepting requests,
//! lets in-flight requests finish and gives the jobs it holds back to the queue. [`run_worker`] is
//! the same without HTTP (`wasmail worker`).

use crate::api::{self, AppState, Shared};
use crate::auth::{Auth, AuthError};
use crate::config::Config;
use crate::pipeline::run_job::RunJobs;
use crate::pipeline::stages::{StageBudgets, StageCache};
use crate::queue::{Node, Runner};
use crate::sandbox::{LoadError, Runtime, RuntimeOptions};
use crate::service::Services;
use crate::store::{Store, StoreError};
use poem::Server;
use poem::listener::TcpAcceptor;
use secrecy::ExposeSecret;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Why the server could not start or stopped badly.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The data dir or the listener could not be set up.
    #[error("{0}")]
    Io(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Auth could not be set up.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The plugin engine could not be set up.
    #[error(transparent)]
    Engine(#[from] LoadError),
}

/// A built, bound, not yet serving application.
pub struct Application {
    state: Shared,
    acceptor: TcpAcceptor,
    addr: SocketAddr,
    core: Core,
    executes_jobs: bool,
    grace: Duration,
    generated_admin_token: Option<String>,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// What a node has whatever its roles: the store, the sandbox and its caches, its node identity and
/// job runner.
struct Core {
    store: Store,
    stages: StageCache,
    node: Node,
    runner: Runner,
}

impl Core {
    async fn build(config: &Config, store: Store, roles: &[&str]) -> Result<Self, ServerError> {
        let defaults = RuntimeOptions::default();
        let runtime = Runtime::new(RuntimeOptions {
            cache_dir: Some(config.cache_dir()),
            cache_bytes: config.artifact_cache_bytes,
            compiler_exe: config.compiler_exe.clone().unwrap_or(defaults.compiler_exe),
            max_concurrent_compiles: config
                .max_concurrent_compiles
                .unwrap_or(defaults.max_concurrent_compiles),
            max_concurrent_compiles_per_tenant: config.max_concurrent_compiles_per_tenant,
            ..defaults
        })?;
        let budgets = StageBudgets {
            stage_bytes: config.stage_cache_bytes,
            trial_bytes: config.trial_cache_bytes,
        };
        let stages = StageCache::new(store.clone(), runtime, budgets);
        // A new identity each start: the leases a previous process held (if it died) are not this
        // one's, and are taken over only once they expire, like any other node's.
        let node = Node::register(&store, roles)
            .await?
            .with_retention(Duration::from_secs(
                config.job_retention_hours.saturating_mul(3600),
            ));
        let runs = RunJobs::new(store.clone(), stages.clone(), config.run_batch);
        let runner = Runner::new(
            store.clone(),
            node.id().clone(),
            config.queue_options(),
            vec![Arc::new(runs)],
        );
        tracing::info!(node = %node.id(), ?roles, "node registered");
        Ok(Self {
            store,
            stages,
            node,
            runner,
        })
    }

    /// Executes jobs (if `execute`) and records heartbeats until `stop` turns true; then gives the
    /// jobs back (within `grace`) and marks the node stopped.
    async fn run(&self, execute: bool, stop: watch::Receiver<bool>, grace: Duration) {
        let heartbeat = {
            let (node, stop) = (self.node.clone(), stop.clone());
            tokio::spawn(async move { node.heartbeat(stop).await })
        };
        // Every node listens (an API-only node caches tenant lookups too).
        let listener = tokio::spawn(crate::queue::listen::run(
            self.store.clone(),
            self.runner.clone(),
            stop.clone(),
        ));
        if execute {
            let runner = self.runner.clone();
            let mut stopping = stop.clone();
            let workers = tokio::spawn(async move { runner.run(stop).await });
            let _ = stopping.wait_for(|s| *s).await;
            if tokio::time::timeout(grace, workers).await.is_err() {
                tracing::warn!(
                    "job workers did not stop within the grace period; their jobs are taken over when their leases expire"
                );
            }
        }
        let _ = heartbeat.await;
        let _ = listener.await;
        self.node.stopped().await;
    }
}

/// Opens the database the configuration names (creating the data dir) and applies migrations.
pub async fn open_store(config: &Config) -> Result<Store, ServerError> {
    std::fs::create_dir_all(&config.data_dir).map_err(|e| {
        ServerError::Io(format!(
            "cannot create data dir {}: {e}",
            config.data_dir.display()
        ))
    })?;
    let url = config
        .database_url
        .as_ref()
        .map(|u| u.expose_secret().to_string());
    let store = Store::connect_sized(url.as_deref(), &config.data_dir, config.db_pool).await?;
    store.migrate().await?;
    if store.autovacuum_off().await {
        tracing::warn!(
            "PostgreSQL's autovacuum is off: planner statistics go stale as mail arrives, and lists \
             and searches slow down badly (run ANALYZE regularly, or turn autovacuum on)"
        );
    }
    Ok(store.with_run_attempts(i64::from(config.job_max_attempts)))
}

/// Runs a worker node (`wasmail worker`): executes jobs, serves no HTTP, until `shutdown`
/// resolves; then gives its jobs back to the queue.
pub async fn run_worker(
    config: &Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let store = open_store(config).await?;
    let core = Core::build(config, store, &["worker"]).await?;
    tracing::info!(node = %core.node.id(), "worker node running");
    let (stop_tx, stop_rx) = watch::channel(false);
    let stages = core.stages.clone();
    tokio::spawn(async move {
        shutdown.await;
        tracing::info!("shutting down: giving jobs back to the queue");
        let _ = stop_tx.send(true);
        stages.runtime().shutdown();
        stages.runtime().stop_compiles();
    });
    core.run(
        true,
        stop_rx,
        Duration::from_secs(config.shutdown_grace_secs),
    )
    .await;
    core.store.close().await;
    Ok(())
}

impl Application {
    /// Sets everything up and binds the listener.
    pub async fn build(config: &Config) -> Result<Self, ServerError> {
        let store = open_store(config).await?;
        let (auth, generated_admin_token) = Auth::init(
            &store,
            &config.data_dir,
            config.admin_token.as_ref(),
            config.jwt_secret.as_ref(),
        )
        .await?;
        let roles: &[&str] = if config.worker {
            &["api", "worker"]
        } else {
            &["api"]
        };
        let core = Core::build(config, store, roles).await?;
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|e| ServerError::Io(format!("cannot listen on {}: {e}", config.listen)))?;
        let addr = listener
            .local_addr()
            .map_err(|e| ServerError::Io(e.to_string()))?;
        let acceptor =
            TcpAcceptor::from_tokio(listener).map_err(|e| ServerError::Io(e.to_string()))?;
        let services = Services {
            store: core.store.clone(),
            stages: core.stages.clone(),
            runner: core.runner.clone(),
            max_message_bytes: config.max_message_bytes,
        };
        let state = Arc::new(AppState {
            store: core.store.clone(),
            auth,
            stages: core.stages.clone(),
            services,
            max_message_bytes: config.max_message_bytes,
            max_json_bytes: config.max_json_bytes,
            token_ttl_secs: config.token_ttl_secs,
        });
        Ok(Self {
            state,
            acceptor,
            addr,
            core,
            executes_jobs: config.worker,
            grace: Duration::from_secs(config.shutdown_grace_secs),
            generated_admin_token,
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The admin token generated for a fresh data dir (to show once); `None` otherwise.
    pub fn generated_admin_token(&self) -> Option<&str> {
        self.generated_admin_token.as_deref()
    }

    /// Serves until `shutdown` resolves, then shuts down gracefully.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let core = self.core;
        let (executes, grace) = (self.executes_jobs, self.grace);
        let node_task = tokio::spawn(async move {
            core.run(executes, stop_rx, grace).await;
        });
        let state = self.state.clone();
        let stopping = self.state.clone();
        let signal = async move {
            shutdown.await;
            tracing::info!("shutting down: finishing in-flight requests; plugin calls are stopped");
            let _ = stop_tx.send(true);
            // Plugin calls in flight (dry runs, run items) end now, not at their deadlines; a
            // compile can take a minute: stop them too (killing their workers) rather than hold
            // the shutdown; their uploads answer 503 and can be sent again.
            stopping.stages.runtime().shutdown();
            stopping.stages.runtime().stop_compiles();
        };
        let served = Server::new_with_acceptor(self.acceptor)
            .run_with_graceful_shutdown(api::app(self.state), signal, Some(self.grace))
            .await;
        if tokio::time::timeout(self.grace + Duration::from_secs(1), node_task)
            .await
            .is_err()
        {
            tracing::warn!(
                "the node did not stop within the grace period; its jobs are taken over when their leases expire"
            );
        }
        state.store.close().await;
        served.map_err(|e| ServerError::Io(format!("server failed: {e}")))
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
