//! `wasmail serve` and `wasmail migrate`.

use crate::config::{Config, Overrides};
use crate::server::{Application, open_store, shutdown_signal};
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

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

fn fail(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("wasmail: {e}");
    ExitCode::from(2)
}

/// Runs the server until SIGINT or SIGTERM.
pub fn serve(args: ServeArgs) -> ExitCode {
    let config = match load(&args.config, args.listen) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => return fail(e),
    };
    rt.block_on(async {
        let app = match Application::build(&config).await {
            Ok(app) => app,
            Err(e) => return fail(e),
        };
        if let Some(token) = app.generated_admin_token() {
            println!("wasmail: generated the admin token for this data dir; it is shown only now (only its hash is kept):");
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

/// `wasmail migrate`.
#[derive(Debug, clap::Args)]
pub struct MigrateArgs {
    #[command(flatten)]
    config: ConfigArgs,
}

/// Applies pending migrations and exits.
pub fn migrate(args: MigrateArgs) -> ExitCode {
    let config = match load(&args.config, None) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => return fail(e),
    };
    rt.block_on(async {
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
