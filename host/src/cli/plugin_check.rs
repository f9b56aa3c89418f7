use super::EngineArgs;
use crate::sandbox::PluginLimits;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// The component (.wasm).
    plugin: PathBuf,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    engine: EngineArgs,
}

/// Checks and compiles the component, exactly as an upload would be.
pub(super) fn run(args: Args) -> ExitCode {
    let bytes = match std::fs::read(&args.plugin) {
        Ok(bytes) => bytes,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", args.plugin.display());
            return ExitCode::from(2);
        }
    };
    let loaded = args
        .engine
        .runtime()
        .map_err(|e| e.to_string())
        .and_then(|rt| {
            super::block_on(rt.load(super::LOCAL_TENANT, &bytes, &PluginLimits::default()))?
                .map_err(|e| e.to_string())
        });
    match loaded {
        Ok(plugin) => {
            let info = plugin.info();
            if args.json {
                println!("{}", serde_json::json!({ "ok": true, "component": info }));
            } else {
                println!("{}: ok", args.plugin.display());
                println!("world:   {}", info.world);
                println!("sha256:  {}", info.sha256);
                println!("size:    {} bytes", info.size);
                println!("imports:");
                for import in &info.imports {
                    println!("  {import}");
                }
                println!("exports:");
                for export in &info.exports {
                    println!("  {export}");
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            if args.json {
                println!("{}", serde_json::json!({ "ok": false, "error": e }));
            } else {
                eprintln!("{}: {e}", args.plugin.display());
            }
            ExitCode::FAILURE
        }
    }
}
