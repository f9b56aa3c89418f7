//! Limits hold in wall-clock time wherever the work happens: in wasm, in a blocking WASI call, in a
//! host primitive, in `prepare`; a tenant's flood of slow calls leaves other tenants' calls running
//! at normal speed; a call whose caller leaves frees its permit at once.

use crate::helpers::{config, guest, message, target_dir};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmail::sandbox::{
    Action, FailureKind, Keep, LoadError, PatternBudget, Plugin, PluginLimits, Runtime,
    RuntimeOptions,
};

/// Slack allowed past a deadline on a loaded 2-core machine: the point is "stopped near its
/// deadline", not "ran for as long as the guest asked" (60 s in the guests below).
const MARGIN: Duration = Duration::from_millis(600);

const SAMPLE: &[u8] = b"From: a@example.com\r\nTo: b@example.com\r\nSubject: hi\r\n\r\nhello\r\n";

/// A runtime of this test's own, so permit counts are not shared with other tests.
fn fresh_runtime(total: usize, per_tenant: usize) -> Runtime {
    Runtime::new(RuntimeOptions {
        cache_dir: Some(target_dir().join("test-artifact-cache")),
        compiler_exe: env!("CARGO_BIN_EXE_wasmail").into(),
        instances: 64,
        max_concurrent_calls: total,
        max_concurrent_calls_per_tenant: per_tenant,
        patterns: PatternBudget {
            total: 4 << 20,
            per_tenant: 1 << 20,
        },
        ..RuntimeOptions::default()
    })
    .expect("runtime")
}

fn hostile(rt: &Runtime, tenant: &str) -> Plugin {
    rt.load_blocking(tenant, &guest("test_hostile"), &PluginLimits::default())
        .expect("load hostile")
}

fn tokio() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio")
}

fn large_utf8_message(bytes: usize) -> Arc<wasmail::message::ParsedMessage> {
    let mut raw = b"From: a@example.com\r\nSubject: big\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n".to_vec();
    raw.extend("é".repeat(bytes / 2).as_bytes());
    message(&raw)
}

/// Waits, yielding, until `done()` holds; fails with `what` after `within`.
async fn until(done: impl Fn() -> bool, within: Duration, what: &str) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < within, "{what}");
        tokio::task::yield_now().await;
    }
}

fn limits(deadline_ms: u64) -> PluginLimits {
    PluginLimits {
        deadline_ms,
        ..PluginLimits::default()
    }
}

#[test]
fn a_plugin_blocked_in_wasi_ends_at_its_deadline() {
    let rt = fresh_runtime(4, 2);
    let plugin = hostile(&rt, "attacker");
    for what in ["sleep", "poll"] {
        let started = Instant::now();
        let failure = rt
            .run_blocking(
                &plugin,
                message(SAMPLE),
                config(&format!(r#"{{"do": "{what}"}}"#)),
                &limits(100),
            )
            .expect_err(what);
        let took = started.elapsed();
        assert_eq!(failure.kind, FailureKind::Deadline, "{what}: {failure:?}");
        assert!(took >= Duration::from_millis(100), "{what}: {took:?}");
        assert!(
            took < Duration::from_millis(100) + MARGIN,
            "{what} held the call for {took:?}"
        );
    }
    // The same runtime serves a normal call at once.
    let ok = rt
        .run_blocking(
            &plugin,
            message(SAMPLE),
            config(r#"{"do": "ok"}"#),
            &limits(250),
        )
        .expect("normal call");
    assert_eq!(
        ok.actions,
        vec![Action::Tag(format!("size:{}", SAMPLE.len()))]
    );
}

#[test]
fn a_sleeping_prepare_ends_at_its_deadline() {
    let rt = fresh_runtime(4, 2);
    let started = Instant::now();
    let err = rt
        .prepare_blocking(
            "attacker",
            &guest("test_hostile"),
            r#"{"prepare": "sleep"}"#,
            &limits(100),
            Keep::Cached,
        )
        .expect_err("a sleeping prepare");
    let took = started.elapsed();
    assert!(matches!(err, LoadError::Prepare(_)), "{err:?}");
    // Instrumenting and compiling come first and are not the plugin's time; the sleep is 60 s.
    assert!(took < Duration::from_secs(10), "prepare held for {took:?}");
    assert_eq!(rt.free_call_permits(), 4);
}

#[test]
fn host_scans_are_paid_for_and_stopped_by_the_deadline() {
    let rt = fresh_runtime(4, 2);
    let plugin = hostile(&rt, "attacker");
    let big = large_utf8_message(8 << 20);
    // Fuel for the wasm side is plenty; what runs out is the deadline, checked before each scan.
    let generous = PluginLimits {
        deadline_ms: 100,
        fuel_base: u64::MAX / 4,
        ..PluginLimits::default()
    };
    let started = Instant::now();
    let failure = rt
        .run_blocking(
            &plugin,
            big.clone(),
            config(r#"{"do": "scan-loop"}"#),
            &generous,
        )
        .expect_err("scan loop");
    assert_eq!(failure.kind, FailureKind::Deadline, "{failure:?}");
    assert!(started.elapsed() < Duration::from_millis(100) + MARGIN);

    // With time to spare, the scans' cost is what ends it: bytes scanned are paid from fuel.
    let metered = PluginLimits {
        deadline_ms: 60_000,
        fuel_base: 50_000_000,
        fuel_per_byte: 0,
        ..PluginLimits::default()
    };
    let failure = rt
        .run_blocking(&plugin, big, config(r#"{"do": "scan-loop"}"#), &metered)
        .expect_err("scan loop");
    assert_eq!(failure.kind, FailureKind::Fuel, "{failure:?}");
    // 50M fuel pays for ~6 scans of 8 MiB, not thousands.
    assert!(failure.duration < Duration::from_secs(5), "{failure:?}");
}

#[test]
fn a_pattern_that_would_crawl_is_refused_quickly() {
    let rt = fresh_runtime(4, 2);
    let plugin = hostile(&rt, "attacker");
    let started = Instant::now();
    // One search: refused as too expensive (the regex crate's slow engine took tens of seconds).
    let failure = rt
        .run_blocking(
            &plugin,
            large_utf8_message(4 << 20),
            config(r#"{"do": "regex-bomb"}"#),
            &limits(250),
        )
        .expect_err("a thousand searches of 4 MiB cost more fuel than the call has");
    // Each search is paid before it starts (bytes x fuel per byte), so the thousand of them end
    // deterministically in fuel, long before the deadline.
    assert_eq!(failure.kind, FailureKind::Fuel, "{failure:?}");
    assert!(started.elapsed() < Duration::from_millis(250) + MARGIN);
    let p = wasmail::message::Pattern::new(
        &(0..8)
            .map(|i| format!(r"\b\w{{3}}{i}\w+\b"))
            .collect::<Vec<_>>()
            .join("|"),
    )
    .expect("compiles");
    let body = "é".repeat(2 << 20);
    assert!(matches!(
        p.is_match(&body, &mut |_| true),
        Err(wasmail::message::MatchError::TooExpensive { .. })
    ));
}

#[test]
fn distinct_patterns_are_bounded_per_tenant_and_spare_other_tenants() {
    let rt = fresh_runtime(4, 2);
    let victim = rt
        .load_blocking("victim", &guest("rules"), &PluginLimits::default())
        .expect("rules");
    let rules = config(
        r#"{"rules": [{"name": "n", "when": {"field": "subject", "matches": "^hi$"}, "then": [{"tag": "greeting"}]}]}"#,
    );
    let greeted = rt
        .run_blocking(&victim, message(SAMPLE), rules.clone(), &limits(250))
        .expect("rules");
    assert_eq!(greeted.actions, vec![Action::Tag("greeting".into())]);
    let (victim_bytes, _) = rt.pattern_cache_bytes("victim");
    assert!(victim_bytes > 0);

    let attacker = hostile(&rt, "attacker");
    for _ in 0..3 {
        rt.run_blocking(
            &attacker,
            message(SAMPLE),
            config(r#"{"do": "regex-flood"}"#),
            &limits(5_000),
        )
        .expect("flood");
    }
    let (attacker_bytes, total) = rt.pattern_cache_bytes("attacker");
    assert!(attacker_bytes <= 1 << 20, "{attacker_bytes}");
    assert!(total <= 4 << 20, "{total}");
    assert_eq!(rt.pattern_cache_bytes("victim").0, victim_bytes);
}

#[test]
fn a_flood_of_slow_calls_leaves_other_tenants_at_normal_speed() {
    let rt = fresh_runtime(4, 2);
    let attacker = hostile(&rt, "attacker");
    let victim = hostile(&rt, "victim");
    tokio().block_on(async {
        // More attackers than permits: half wait in WASI, half spin in wasm.
        let attacks: Vec<_> = (0..12)
            .map(|i| {
                let (rt, attacker) = (rt.clone(), attacker.clone());
                let what = if i % 2 == 0 { "sleep" } else { "loop" };
                tokio::spawn(async move {
                    let started = Instant::now();
                    let result = rt
                        .run(
                            &attacker,
                            message(SAMPLE),
                            config(&format!(r#"{{"do": "{what}"}}"#)),
                            &PluginLimits {
                                fuel_base: u64::MAX / 4,
                                ..limits(250)
                            },
                        )
                        .await;
                    (result, started.elapsed())
                })
            })
            .collect();
        // Wait until the attack holds its share of the permits.
        until(
            || rt.free_call_permits() <= 2,
            Duration::from_secs(10),
            "attack never started",
        )
        .await;
        let mut latencies = Vec::new();
        for _ in 0..20 {
            let started = Instant::now();
            rt.run(
                &victim,
                message(SAMPLE),
                config(r#"{"do": "ok"}"#),
                &limits(250),
            )
            .await
            .expect("the victim's call");
            latencies.push(started.elapsed());
        }
        latencies.sort();
        let median = latencies[latencies.len() / 2];
        // Queued behind the attack, each call would wait out a 250 ms deadline.
        assert!(
            median < Duration::from_millis(60),
            "victim median {median:?}: {latencies:?}"
        );
        assert!(
            latencies[latencies.len() - 1] < Duration::from_millis(250),
            "victim worst {latencies:?}"
        );
        for attack in attacks {
            let (result, _) = attack.await.expect("task");
            let failure = result.expect_err("attack");
            assert_eq!(failure.kind, FailureKind::Deadline, "{failure:?}");
            assert!(
                failure.duration < Duration::from_millis(250) + MARGIN,
                "{failure:?}"
            );
        }
    });
    assert_eq!(rt.free_call_permits(), 4);
}

#[test]
fn a_caller_that_leaves_frees_the_permit_at_once() {
    let rt = fresh_runtime(2, 2);
    let plugin = hostile(&rt, "attacker");
    tokio().block_on(async {
        let call = {
            let (rt, plugin) = (rt.clone(), plugin.clone());
            tokio::spawn(async move {
                rt.run(
                    &plugin,
                    message(SAMPLE),
                    config(r#"{"do": "sleep"}"#),
                    &limits(60_000),
                )
                .await
            })
        };
        until(
            || rt.free_call_permits() != 2,
            Duration::from_secs(10),
            "call never started",
        )
        .await;
        call.abort();
        until(
            || rt.free_call_permits() >= 2,
            Duration::from_secs(2),
            "the permit was not freed after the caller left",
        )
        .await;
    });
}

#[test]
fn shutdown_ends_calls_in_flight_whatever_their_deadline() {
    let rt = fresh_runtime(4, 2);
    let plugin = hostile(&rt, "attacker");
    tokio().block_on(async {
        let calls: Vec<_> = ["sleep", "poll", "loop"]
            .into_iter()
            .map(|what| {
                let (rt, plugin) = (rt.clone(), plugin.clone());
                tokio::spawn(async move {
                    rt.run(
                        &plugin,
                        message(SAMPLE),
                        config(&format!(r#"{{"do": "{what}"}}"#)),
                        &PluginLimits {
                            fuel_base: u64::MAX / 4,
                            ..limits(60_000)
                        },
                    )
                    .await
                })
            })
            .collect();
        until(
            || rt.free_call_permits() <= 2,
            Duration::from_secs(10),
            "calls never started",
        )
        .await;
        let stopping = Instant::now();
        rt.shutdown();
        for call in calls {
            let failure = call.await.expect("task").expect_err("stopped");
            assert_eq!(failure.kind, FailureKind::Host, "{failure:?}");
        }
        assert!(stopping.elapsed() < MARGIN, "{:?}", stopping.elapsed());
    });
}
