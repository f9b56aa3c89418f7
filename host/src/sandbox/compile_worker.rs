//! The child side of [`super::compile`]: `wasmail compile-worker` limits itself, reads a component
//! from stdin, compiles it with the serving engine's compilation settings, and writes the artifact
//! to stdout. Errors go to stderr; the exit code says which kind ([`super::compile::exit`]).

use super::compile::{exit, says_out_of_memory};
use super::engine::build_for_compiling;
use nix::sys::resource::{Resource, setrlimit};
use std::io::{Read, Write};
use std::process::ExitCode;

/// Compiles stdin to stdout with at most `cpu_secs` of CPU time and `memory_bytes` of data.
///
/// RLIMIT_DATA, not RLIMIT_AS: it counts what the compiler can write (heap, thread stacks) but
/// not address space reserved and never made writable, which allocators and wasmtime reserve
/// generously; so a limit near a compile's real footprint works, where RLIMIT_AS would need
/// slack for reservations that cost nothing.
///
/// Limits apply to mappings made after they are set, and the allocator has mapped its arenas by
/// the time `main` runs (measured: a worker limited in place compiled with 55 MB resident under an
/// 8 MiB limit). So the worker sets the limits and executes itself again (`limited`), and the
/// second image starts inside them.
pub fn compile_worker(cpu_secs: u64, memory_bytes: u64, limited: bool) -> ExitCode {
    if !limited {
        let set = setrlimit(Resource::RLIMIT_CORE, 0, 0)
            .and_then(|()| setrlimit(Resource::RLIMIT_CPU, cpu_secs, cpu_secs.saturating_add(1)))
            .and_then(|()| setrlimit(Resource::RLIMIT_DATA, memory_bytes, memory_bytes));
        if let Err(e) = set {
            eprintln!("cannot limit the compile worker: {e}");
            return ExitCode::from(exit::FAILED);
        }
        use std::os::unix::process::CommandExt;
        let exe = std::path::Path::new("/proc/self/exe");
        let exe = if exe.exists() {
            exe.to_path_buf()
        } else {
            std::env::current_exe().unwrap_or_else(|_| exe.to_path_buf())
        };
        // `exec` returns only on failure.
        let e = std::process::Command::new(exe)
            .args(std::env::args_os().skip(1))
            .arg("--limited")
            .exec();
        return failed(&format!("cannot start the limited compile worker: {e}"));
    }
    let mut wasm = Vec::new();
    if let Err(e) = std::io::stdin().lock().read_to_end(&mut wasm) {
        return failed(&format!("cannot read the component: {e}"));
    }
    let engine = match build_for_compiling() {
        Ok(engine) => engine,
        Err(e) => return failed(&e.to_string()),
    };
    let artifact = match engine.precompile_component(&wasm) {
        Ok(artifact) => artifact,
        Err(e) => {
            let why = format!("{e:#}");
            eprintln!("{why}");
            return ExitCode::from(if says_out_of_memory(&why) {
                exit::MEMORY
            } else {
                exit::INVALID
            });
        }
    };
    drop(wasm);
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_all(&artifact).and_then(|()| stdout.flush()) {
        return failed(&format!("cannot write the artifact: {e}"));
    }
    ExitCode::SUCCESS
}

fn failed(why: &str) -> ExitCode {
    eprintln!("{why}");
    ExitCode::from(if says_out_of_memory(why) {
        exit::MEMORY
    } else {
        exit::FAILED
    })
}
