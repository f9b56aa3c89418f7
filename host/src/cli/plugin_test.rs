use super::{EngineArgs, inline_or_file};
use crate::message::{Envelope, ParsedMessage};
use crate::sandbox::{Keep, Plugin, PluginLimits};
use serde_json::json;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// The component (.wasm).
    plugin: PathBuf,
    /// Messages (RFC 5322 files) to run it over.
    #[arg(required = true)]
    messages: Vec<PathBuf>,
    /// The stage configuration: JSON text, or @file.
    #[arg(long, default_value = "null")]
    config: String,
    /// Per-call limits as JSON (keys of PluginLimits, e.g. {"deadline_ms": 100}), or @file.
    #[arg(long)]
    limits: Option<String>,
    /// Run the plugin without preparing it for the configuration first (every call then redoes
    /// the plugin's preparation, e.g. parsing its configuration).
    #[arg(long)]
    no_prepare: bool,
    /// Folder the messages are taken to be in.
    #[arg(long, default_value = "INBOX")]
    folder: String,
    #[command(flatten)]
    engine: EngineArgs,
}

/// Runs the plugin over each message through the production runtime and prints one JSON line per
/// message. Exits 1 when the plugin failed on any message, 2 when it could not run at all.
pub(super) fn run(args: Args) -> ExitCode {
    match execute(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn execute(args: &Args) -> Result<bool, String> {
    let config = inline_or_file(&args.config)?;
    serde_json::from_str::<serde_json::Value>(&config)
        .map_err(|e| format!("--config is not JSON: {e}"))?;
    let limits: PluginLimits = match &args.limits {
        Some(text) => {
            serde_json::from_str(&inline_or_file(text)?).map_err(|e| format!("--limits: {e}"))?
        }
        None => PluginLimits::default(),
    };
    let bytes = std::fs::read(&args.plugin)
        .map_err(|e| format!("cannot read {}: {e}", args.plugin.display()))?;
    let runtime = args.engine.runtime().map_err(|e| e.to_string())?;
    let named = |e: crate::sandbox::LoadError| format!("{}: {e}", args.plugin.display());
    // As a pipeline stage runs it: prepared once for its configuration, then a fresh instance per
    // message started from the prepared snapshot.
    let (plugin, config): (Plugin, Arc<str>) = if args.no_prepare {
        let loaded = super::block_on(runtime.load(super::LOCAL_TENANT, &bytes, &limits))?;
        (loaded.map_err(named)?, config.into())
    } else {
        let prepared = runtime
            .prepare_blocking("cli", &bytes, &config, &limits, Keep::Cached)
            .map_err(named)?;
        (prepared.plugin().clone(), prepared.config().into())
    };

    let mut all_ok = true;
    let stdout = std::io::stdout();
    for path in &args.messages {
        let line = match std::fs::read(path) {
            Err(e) => {
                all_ok = false;
                json!({ "message": path, "ok": false, "error": { "kind": "io", "message": e.to_string() } })
            }
            Ok(raw) => {
                let envelope = Envelope {
                    folder: args.folder.clone(),
                    ..Envelope::default()
                };
                let message = Arc::new(ParsedMessage::parse(raw, envelope));
                let called = runtime.run_blocking(&plugin, message, config.clone(), &limits);
                match crate::sandbox::checked(called) {
                    Ok(outcome) => json!({ "message": path, "ok": true, "outcome": outcome }),
                    Err(failure) => {
                        all_ok = false;
                        json!({ "message": path, "ok": false, "error": failure })
                    }
                }
            }
        };
        let mut out = stdout.lock();
        writeln!(out, "{line}").map_err(|e| format!("cannot write output: {e}"))?;
    }
    Ok(all_ok)
}
