//! Fixtures shared by the test binaries: guest components built from source, and the corpus.

#![allow(dead_code)] // each test binary uses its own subset

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Guest crates the tests use: the first-party plugins and the hostile test guests.
const GUEST_PACKAGES: &[&str] = &[
    "wasmail-rules",
    "wasmail-spam-score",
    "wasmail-attachment-guard",
    "wasmail-test-hostile",
    "wasmail-test-forbidden-import",
    "wasmail-test-socket",
    "wasmail-plugin-template",
];

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ has a parent")
        .to_path_buf()
}

pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// Builds every guest component from source (once per test process; cargo makes repeat builds cheap)
/// and returns the directory holding the `.wasm` files.
pub fn guest_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
        let mut command = Command::new(cargo);
        command.current_dir(workspace_root()).args([
            "build",
            "--target",
            "wasm32-wasip2",
            "--profile",
            "guest",
        ]);
        for package in GUEST_PACKAGES {
            command.args(["-p", package]);
        }
        // Build scripts of the outer test build must not leak their settings into the guest build.
        command
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS");
        let output = command
            .output()
            .expect("run cargo to build the guest components");
        assert!(
            output.status.success(),
            "building guest components failed (is the wasm32-wasip2 target installed?):\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        target_dir().join("wasm32-wasip2").join("guest")
    })
}

/// The bytes of a guest component, e.g. `guest("rules")`.
pub fn guest(name: &str) -> Vec<u8> {
    let path = guest_dir().join(format!("{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

pub fn corpus_dir() -> PathBuf {
    workspace_root().join("examples").join("corpus")
}

/// Every `.eml` of the real-world corpus (`examples/corpus`), sorted by name.
pub fn corpus() -> Vec<(String, Vec<u8>)> {
    let files = eml_files(&corpus_dir());
    assert!(
        files.len() >= 275,
        "the corpus has {} messages; expected 275",
        files.len()
    );
    read_all(files)
}

/// The corpus plus the hand-made samples of `examples/messages` (phishing, malware attachments, ...).
pub fn corpus_and_samples() -> Vec<(String, Vec<u8>)> {
    let mut all = corpus();
    all.extend(read_all(eml_files(
        &workspace_root().join("examples").join("messages"),
    )));
    all
}

fn eml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    files.sort();
    files
}

fn read_all(files: Vec<PathBuf>) -> Vec<(String, Vec<u8>)> {
    files
        .into_iter()
        .map(|p| {
            let name = p.file_name().expect("name").to_string_lossy().into_owned();
            (name, std::fs::read(&p).expect("read corpus message"))
        })
        .collect()
}
