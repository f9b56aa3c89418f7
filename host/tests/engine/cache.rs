//! The compiled-artifact cache: filled on first load, used after, a damaged artifact is replaced
//! rather than trusted, and the cache stays within its byte budget without one tenant evicting
//! another's artifacts.

use crate::helpers::{block_on, config, guest, message};
use wasmail::sandbox::{Action, Keep, PluginLimits, PreparedPlugin, Runtime, RuntimeOptions};

/// Every artifact file under the cache directory (one directory per tenant).
fn artifacts(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("cache dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            files.extend(artifacts(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// Bytes the cache directory holds.
fn disk_bytes(dir: &std::path::Path) -> u64 {
    artifacts(dir)
        .iter()
        .map(|p| std::fs::metadata(p).expect("artifact").len())
        .sum()
}

/// A runtime of its own with an empty cache directory (kept alive by the returned `TempDir`).
fn runtime_with_cache() -> (tempfile::TempDir, std::path::PathBuf, Runtime) {
    runtime_with_budget(1 << 30)
}

fn runtime_with_budget(cache_bytes: u64) -> (tempfile::TempDir, std::path::PathBuf, Runtime) {
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = dir.path().join("artifacts");
    let options = RuntimeOptions {
        cache_dir: Some(cache.clone()),
        cache_bytes,
        compiler_exe: env!("CARGO_BIN_EXE_wasmail").into(),
        ..RuntimeOptions::default()
    };
    (dir, cache, Runtime::new(options).expect("runtime"))
}

/// A `rules` configuration tagging `t<n>` what has `w<n>` in its subject.
fn numbered(n: usize) -> String {
    format!(
        r#"{{"rules": [{{"when": {{"field": "subject", "contains": "w{n}"}}, "then": [{{"tag": "t{n}"}}]}}]}}"#
    )
}

/// `prepared` tags a message about `w<n>` with `t<n>`: it carries its own configuration.
fn assert_tags(runtime: &Runtime, prepared: &PreparedPlugin, n: usize) {
    let raw = format!("Subject: about w{n}\r\n\r\nx\r\n");
    let outcome = runtime
        .run_prepared_blocking(prepared, message(raw.as_bytes()), &PluginLimits::default())
        .expect("run");
    assert_eq!(outcome.actions, vec![Action::Tag(format!("t{n}"))]);
}

#[test]
fn artifacts_are_cached_and_damaged_ones_replaced() {
    let (_dir, cache, runtime) = runtime_with_cache();
    let bytes = guest("test_hostile");
    let first = block_on(runtime.load("test", &bytes, &PluginLimits::default())).expect("compile");
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
        block_on(runtime.load("test", &bytes, &PluginLimits::default())).expect("recompile");
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
        .prepare_blocking("test", &bytes, config_a, &limits, Keep::Cached)
        .expect("prepare a");
    let prepared = |dir: &std::path::Path| {
        artifacts(dir)
            .into_iter()
            .filter(|p| p.to_string_lossy().contains("prepared-"))
            .count()
    };
    assert_eq!(prepared(&cache), 1);
    runtime
        .prepare_blocking("test", &bytes, config_a, &limits, Keep::Cached)
        .expect("prepare a again, from the cache");
    assert_eq!(prepared(&cache), 1);
    let b = runtime
        .prepare_blocking("test", &bytes, config_b, &limits, Keep::Cached)
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

#[test]
fn dry_run_preparations_write_no_artifact() {
    let (_dir, cache, runtime) = runtime_with_cache();
    let bytes = guest("rules");
    let limits = PluginLimits::default();
    runtime
        .prepare_blocking("t1", &bytes, &numbered(0), &limits, Keep::Cached)
        .expect("a pipeline's stage");
    let before = disk_bytes(&cache);
    assert!(before > 0);
    for n in 1..=16 {
        let trial = runtime
            .prepare_blocking("t1", &bytes, &numbered(n), &limits, Keep::Ephemeral)
            .expect("a trial");
        assert_tags(&runtime, &trial, n);
    }
    assert_eq!(disk_bytes(&cache), before, "trials left artifacts behind");
    assert_eq!(runtime.cache_stats().bytes, before);
    // A trial of a configuration a pipeline uses is served by its artifact (a hit, nothing new).
    let hits = runtime.cache_stats().tenant("t1").hits;
    let trial = runtime
        .prepare_blocking("t1", &bytes, &numbered(0), &limits, Keep::Ephemeral)
        .expect("a trial of a cached configuration");
    assert_tags(&runtime, &trial, 0);
    assert_eq!(runtime.cache_stats().tenant("t1").hits, hits + 1);
}

/// The size of one prepared `rules` artifact on disk.
fn prepared_artifact_bytes() -> u64 {
    let (_dir, cache, runtime) = runtime_with_cache();
    runtime
        .prepare_blocking(
            "t",
            &guest("rules"),
            &numbered(0),
            &PluginLimits::default(),
            Keep::Cached,
        )
        .expect("prepare");
    disk_bytes(&cache)
}

#[test]
fn the_disk_cache_stays_within_its_budget_and_evicted_artifacts_are_recompiled() {
    let one = prepared_artifact_bytes();
    // Room for three and a half (configurations differ by a digit, so their artifacts by a few bytes).
    let budget = one * 7 / 2;
    let (_dir, cache, runtime) = runtime_with_budget(budget);
    let bytes = guest("rules");
    let limits = PluginLimits::default();
    for n in 0..8 {
        let prepared = runtime
            .prepare_blocking("t1", &bytes, &numbered(n), &limits, Keep::Cached)
            .expect("prepare");
        assert_tags(&runtime, &prepared, n);
        let on_disk = disk_bytes(&cache);
        assert!(
            on_disk <= budget,
            "{on_disk} bytes on disk, budget {budget}"
        );
        assert_eq!(runtime.cache_stats().bytes, on_disk);
    }
    // `one` is what a first preparation writes: the instrumented component (kept: every
    // preparation starts from it, so it stays recently used) and one snapshot of about half that.
    // The budget holds the instrumented component and four snapshots of the nine artifacts written.
    let stats = runtime.cache_stats();
    assert_eq!(stats.entries, 5, "{stats:?}");
    assert_eq!(stats.evictions, 4, "{stats:?}");
    // The first configuration was evicted (least recently used): it is prepared again, correctly,
    // and cached again.
    let misses = stats.tenant("t1").misses;
    let again = runtime
        .prepare_blocking("t1", &bytes, &numbered(0), &limits, Keep::Cached)
        .expect("recompile");
    assert_tags(&runtime, &again, 0);
    let stats = runtime.cache_stats();
    assert!(stats.tenant("t1").misses > misses, "{stats:?}");
    assert!(disk_bytes(&cache) <= budget);
    // And the most recent one is still a hit.
    let hits = stats.tenant("t1").hits;
    runtime
        .prepare_blocking("t1", &bytes, &numbered(7), &limits, Keep::Cached)
        .expect("cached");
    assert_eq!(runtime.cache_stats().tenant("t1").hits, hits + 1);
}

#[test]
fn one_tenants_flood_does_not_evict_anothers_artifacts() {
    let one = prepared_artifact_bytes();
    let budget = one * 9 / 2;
    let (_dir, cache, runtime) = runtime_with_budget(budget);
    let bytes = guest("rules");
    let limits = PluginLimits::default();
    runtime
        .prepare_blocking("victim", &bytes, &numbered(0), &limits, Keep::Cached)
        .expect("the victim's stage");
    let held = runtime.cache_stats().tenant("victim").bytes;
    assert!(held > 0);
    // The attacker's configurations are newer, but the victim is within its share (half the budget).
    for n in 1..=10 {
        runtime
            .prepare_blocking("attacker", &bytes, &numbered(n), &limits, Keep::Cached)
            .expect("flood");
        assert!(disk_bytes(&cache) <= budget);
    }
    let stats = runtime.cache_stats();
    assert_eq!(stats.tenant("victim").bytes, held, "{stats:?}");
    assert_eq!(stats.tenant("victim").evictions, 0, "{stats:?}");
    assert!(stats.tenant("attacker").evictions >= 6, "{stats:?}");
    let hits = stats.tenant("victim").hits;
    let prepared = runtime
        .prepare_blocking("victim", &bytes, &numbered(0), &limits, Keep::Cached)
        .expect("the victim's stage again");
    assert_tags(&runtime, &prepared, 0);
    assert_eq!(runtime.cache_stats().tenant("victim").hits, hits + 1);
}

#[test]
fn identical_components_of_two_tenants_get_artifacts_of_their_own() {
    let (_dir, cache, runtime) = runtime_with_cache();
    let bytes = guest("rules");
    let limits = PluginLimits::default();
    runtime
        .load_blocking("a", &bytes, &limits)
        .expect("a's upload");
    runtime
        .load_blocking("b", &bytes, &limits)
        .expect("b's upload");
    // b's load compiled (a miss in b's own cache): nothing of a's was used.
    let stats = runtime.cache_stats();
    assert_eq!((stats.tenant("b").hits, stats.tenant("b").misses), (0, 1));
    assert!(cache.join("a").is_dir() && cache.join("b").is_dir());
    assert_eq!(artifacts(&cache).len(), 2);
}
