//! Startup and shutdown: build the application from its configuration, serve until told to stop.
//!
//! [`Application::build`] binds the listener (port 0 picks one, [`Application::local_addr`] says
//! which), opens and migrates the database, sets up auth, the plugin runtime and the run worker.
//! [`Application::run_until`] serves until the given future resolves, then stops accepting requests,
//! lets in-flight requests and run batches finish, and puts unfinished runs back in the queue.

use crate::api::{self, AppState, Shared};
use crate::auth::{Auth, AuthError};
use crate::config::Config;
use crate::pipeline::stages::{StageBudgets, StageCache};
use crate::pipeline::worker::Worker;
use crate::sandbox::{LoadError, Runtime, RuntimeOptions};
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
    workers: usize,
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
    let store = Store::connect(url.as_deref(), &config.data_dir).await?;
    store.migrate().await?;
    Ok(store)
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
        // Runs a previous process left running are resumed by this one (single node: nothing else
        // can be executing them).
        let resumed = store.requeue_interrupted_runs().await?;
        if resumed > 0 {
            tracing::info!("resuming {resumed} interrupted run(s)");
        }
        let budgets = StageBudgets {
            stage_bytes: config.stage_cache_bytes,
            trial_bytes: config.trial_cache_bytes,
        };
        let stages = StageCache::new(store.clone(), runtime, budgets);
        let worker = Worker::new(store.clone(), stages.clone(), config.run_batch);
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|e| ServerError::Io(format!("cannot listen on {}: {e}", config.listen)))?;
        let addr = listener
            .local_addr()
            .map_err(|e| ServerError::Io(e.to_string()))?;
        let acceptor =
            TcpAcceptor::from_tokio(listener).map_err(|e| ServerError::Io(e.to_string()))?;
        let state = Arc::new(AppState {
            store,
            auth,
            stages,
            worker,
            max_message_bytes: config.max_message_bytes,
            max_json_bytes: config.max_json_bytes,
            token_ttl_secs: config.token_ttl_secs,
        });
        Ok(Self {
            state,
            acceptor,
            addr,
            workers: config.run_workers,
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
        let worker = self.state.worker.clone();
        let workers = self.workers;
        let worker_task = tokio::spawn(async move { worker.run(workers, stop_rx).await });
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
        if tokio::time::timeout(self.grace, worker_task).await.is_err() {
            tracing::warn!(
                "run workers did not stop within the grace period; their runs resume at next start"
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
