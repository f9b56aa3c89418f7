//! The compiled-artifact cache: filled on first load, used after, and a damaged artifact is replaced
//! rather than trusted.

use crate::helpers::{TENANT, block_on, config, guest, message};
use wasmail::plugins::{Action, PluginLimits, Runtime, RuntimeOptions};

fn artifacts(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .expect("cache dir")
        .map(|e| e.expect("entry").path())
        .collect()
}

/// A runtime of its own with an empty cache directory (kept alive by the returned `TempDir`).
fn runtime_with_cache() -> (tempfile::TempDir, std::path::PathBuf, Runtime) {
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = dir.path().join("artifacts");
    let options = RuntimeOptions {
        cache_dir: Some(cache.clone()),
        compiler_exe: env!("CARGO_BIN_EXE_wasmail").into(),
        ..RuntimeOptions::default()
    };
    (dir, cache, Runtime::new(options).expect("runtime"))
}

#[test]
fn artifacts_are_cached_and_damaged_ones_replaced() {
    let (_dir, cache, runtime) = runtime_with_cache();
    let bytes = guest("test_hostile");
    let first = block_on(runtime.load(TENANT, &bytes, &PluginLimits::default())).expect("compile");
    let files = artifacts(&cache);
    assert_eq!(files.len(), 1, "{files:?}");
    let name = files[0]
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    assert!(
        name.starts_with(&first.info().sha256) && name.ends_with(".cwasm"),
        "{name}"
    );

    // Damage the artifact: the next load must notice, recompile and still run correctly.
    std::fs::write(&files[0], b"not an artifact").expect("damage");
    let second =
        block_on(runtime.load(TENANT, &bytes, &PluginLimits::default())).expect("recompile");
    assert!(std::fs::metadata(&files[0]).expect("rewritten").len() > 1000);
    let raw = b"Subject: x\r\n\r\nbody\r\n";
    let outcome = runtime
        .run_blocking(
            &second,
            message(raw),
            config(r#"{"do": "ok"}"#),
            &PluginLimits::default(),
        )
        .expect("run");
    assert_eq!(
        outcome.actions,
        vec![Action::Tag(format!("size:{}", raw.len()))]
    );
}

#[test]
fn prepared_snapshots_are_cached_per_configuration() {
    let (_dir, cache, runtime) = runtime_with_cache();
    let bytes = guest("rules");
    let config_a =
        r#"{"rules": [{"when": {"field": "subject", "contains": "a"}, "then": [{"tag": "a"}]}]}"#;
    let config_b =
        r#"{"rules": [{"when": {"field": "subject", "contains": "b"}, "then": [{"tag": "b"}]}]}"#;
    let limits = PluginLimits::default();
    let a = runtime
        .prepare(&bytes, config_a, &limits)
        .expect("prepare a");
    let prepared = |dir: &std::path::Path| {
        artifacts(dir)
            .into_iter()
            .filter(|p| p.to_string_lossy().contains("prepared-"))
            .count()
    };
    assert_eq!(prepared(&cache), 1);
    runtime
        .prepare(&bytes, config_a, &limits)
        .expect("prepare a again, from the cache");
    assert_eq!(prepared(&cache), 1);
    let b = runtime
        .prepare(&bytes, config_b, &limits)
        .expect("prepare b");
    assert_eq!(prepared(&cache), 2);
    // Each snapshot carries its own configuration.
    let raw = b"Subject: b\r\n\r\nx\r\n";
    assert_eq!(
        runtime
            .run_prepared_blocking(&a, message(raw), &limits)
            .expect("a")
            .actions,
        vec![]
    );
    assert_eq!(
        runtime
            .run_prepared_blocking(&b, message(raw), &limits)
            .expect("b")
            .actions,
        vec![Action::Tag("b".into())]
    );
}
