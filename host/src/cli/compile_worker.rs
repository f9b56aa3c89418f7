//! `wasmail compile-worker`: compiles one component from stdin for the server (hidden: only the
//! server runs it, see `sandbox::compile`).

use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// CPU seconds the compile may take (RLIMIT_CPU).
    #[arg(long)]
    cpu_secs: u64,
    /// Bytes of data the compile may use (RLIMIT_DATA).
    #[arg(long)]
    memory_bytes: u64,
    /// Whose compile this is; only shown (in `ps`), not used.
    #[arg(long, default_value = "")]
    tenant: String,
    /// Set by the worker itself once it runs inside its limits.
    #[arg(long)]
    limited: bool,
}

pub(super) fn run(args: Args) -> ExitCode {
    let _ = args.tenant;
    crate::sandbox::compile_worker(args.cpu_secs, args.memory_bytes, args.limited)
}
