//! The `wasmail` command line. Each subcommand lives in its own file.

mod compile_worker;
mod plugin_check;
mod plugin_test;
mod serve;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// wasmail: a mail processing engine whose pipeline stages are sandboxed WebAssembly components.
#[derive(Debug, Parser)]
#[command(name = "wasmail", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP API server (SQLite under the data dir unless DATABASE_URL says otherwise).
    Serve(serve::ServeArgs),
    /// Run a worker node: execute jobs (pipeline runs, ...) from the database, without serving HTTP.
    /// Several nodes (serve or worker) on one database share the work.
    Worker(serve::WorkerArgs),
    /// Apply pending database migrations and exit (serve also applies them at start).
    Migrate(serve::MigrateArgs),
    /// Print the OpenAPI document of the HTTP API.
    Openapi,
    /// Work with plugins (WebAssembly components).
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Compile one component from stdin to stdout under limits (run by the server).
    #[command(name = "compile-worker", hide = true)]
    CompileWorker(compile_worker::Args),
}

#[derive(Debug, Subcommand)]
enum PluginCommand {
    /// Validate a component and print its world, imports and exports.
    Check(plugin_check::Args),
    /// Run a plugin over messages through the production runtime; one JSON line per message.
    Test(plugin_test::Args),
}

/// Options shared by commands that run the engine.
#[derive(Debug, clap::Args)]
struct EngineArgs {
    /// Where compiled plugins are cached [default: $XDG_CACHE_HOME/wasmail or ~/.cache/wasmail].
    #[arg(long, env = "WASMAIL_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// Compile every time instead of using the cache.
    #[arg(long)]
    no_cache: bool,
}

impl EngineArgs {
    fn runtime(&self) -> Result<crate::sandbox::Runtime, crate::sandbox::LoadError> {
        let cache_dir = if self.no_cache {
            None
        } else {
            self.cache_dir.clone().or_else(default_cache_dir)
        };
        crate::sandbox::Runtime::new(crate::sandbox::RuntimeOptions {
            cache_dir,
            ..Default::default()
        })
    }
}

/// The command line's tenant: compile slots and budgets are per tenant, and here there is one.
const LOCAL_TENANT: &str = "local";

/// Runs an async engine call (loading compiles in a worker process) from a command.
fn block_on<T>(work: impl Future<Output = T>) -> Result<T, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map(|rt| rt.block_on(work))
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

fn default_cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("wasmail").join("artifacts"))
}

/// Reads an inline value or, for `@path`, the file's contents.
fn inline_or_file(value: &str) -> Result<String, String> {
    match value.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}")),
        None => Ok(value.to_string()),
    }
}

/// Runs the command line; the exit code says how it went.
pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Serve(args) => serve::serve(args),
        Command::Worker(args) => serve::worker(args),
        Command::Migrate(args) => serve::migrate(args),
        Command::Openapi => {
            println!("{}", crate::api::spec());
            ExitCode::SUCCESS
        }
        Command::Plugin(PluginCommand::Check(args)) => plugin_check::run(args),
        Command::Plugin(PluginCommand::Test(args)) => plugin_test::run(args),
        Command::CompileWorker(args) => compile_worker::run(args),
    }
}
