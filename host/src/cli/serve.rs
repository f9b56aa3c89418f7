//! `wasmail serve`, `wasmail worker` and `wasmail migrate`.

use crate::config::{Config, Overrides};
use crate::server::{Application, open_store, run_worker, shutdown_signal};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

/// Where the configuration comes from.
#[derive(Debug, clap::Args)]
pub struct ConfigArgs {
    /// A TOML configuration file (see examples/wasmail.toml).
    #[arg(long, env = "WASMAIL_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory: SQLite database, signing key, compiled-plugin cache [default: ./data].
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

/// `wasmail serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long)]
    listen: Option<SocketAddr>,
}

fn load(config: &ConfigArgs, listen: Option<SocketAddr>) -> Result<Config, String> {
    let overrides = Overrides {
        listen,
        data_dir: config.data_dir.clone(),
    };
    Config::load(config.config.as_deref(), &overrides).map_err(|e| e.to_string())
}

fn fail(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("wasmail: {e}");
    ExitCode::from(2)
}

/// Loads the configuration and runs `work` with it on a multi-threaded async runtime.
fn with_config<F: Future<Output = ExitCode>>(
    args: &ConfigArgs,
    listen: Option<SocketAddr>,
    work: impl FnOnce(Config) -> F,
) -> ExitCode {
    let config = match load(args, listen) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(work(config)),
        Err(e) => fail(format!("cannot start the async runtime: {e}")),
    }
}

/// Runs the server until SIGINT or SIGTERM.
pub fn serve(args: ServeArgs) -> ExitCode {
    with_config(&args.config, args.listen, |config| async move {
        let app = match Application::build(&config).await {
            Ok(app) => app,
            Err(e) => return fail(e),
        };
        if let Some(token) = app.generated_admin_token() {
            println!(
                "wasmail: generated the admin token for this data dir; it is shown only now (only its hash is kept):"
            );
            println!("WASMAIL_ADMIN_TOKEN={token}");
        }
        let addr = app.local_addr();
        println!("wasmail: listening on http://{addr} (API docs at http://{addr}/docs)");
        match app.run_until(shutdown_signal()).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(e),
        }
    })
}

/// `wasmail worker`.
#[derive(Debug, clap::Args)]
pub struct WorkerArgs {
    #[command(flatten)]
    config: ConfigArgs,
}

/// Runs a worker node until SIGINT or SIGTERM: executes jobs from the shared database, serves no
/// HTTP. On the signal it stops claiming and gives the jobs it holds back to the queue.
pub fn worker(args: WorkerArgs) -> ExitCode {
    with_config(&args.config, None, |config| async move {
        println!("wasmail: worker node starting (no HTTP); jobs come from the database");
        match run_worker(&config, shutdown_signal()).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(e),
        }
    })
}

/// `wasmail migrate`.
#[derive(Debug, clap::Args)]
pub struct MigrateArgs {
    #[command(flatten)]
    config: ConfigArgs,
}

/// Applies pending migrations and exits.
pub fn migrate(args: MigrateArgs) -> ExitCode {
    with_config(&args.config, None, |config| async move {
        match open_store(&config).await {
            Ok(store) => {
                store.close().await;
                println!("wasmail: database is up to date");
                ExitCode::SUCCESS
            }
            Err(e) => fail(e),
        }
    })
}
