//! Many calls from many tasks at once, hostile ones mixed in: every call gets its own right answer.

use crate::helpers::{config, message, plugin, runtime};
use wasmail::sandbox::{Action, FailureKind, PluginLimits};

#[derive(Clone, Copy, Debug)]
enum Job {
    Rules,
    Loop,
    Grow,
    Panic,
    Ok,
}

#[test]
fn mixed_calls_from_many_tasks() {
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("tokio");
    let rules = plugin("rules");
    let hostile = plugin("test_hostile");
    let rules_config = config(
        r#"{"rules": [{"name": "n", "when": {"field": "subject", "matches": "^job (\\d+)$"}, "then": [{"tag": "numbered"}]}]}"#,
    );
    // Only the loops get the short deadline that stops them: the other calls must finish with
    // their own answer (a memory failure, a trap, actions) even when 240 calls share two cores and
    // wait their turn longer than 40 ms.
    let limits = PluginLimits {
        deadline_ms: 5_000,
        memory_bytes: 8 << 20,
        ..PluginLimits::default()
    };
    let loop_limits = PluginLimits {
        deadline_ms: 40,
        ..limits.clone()
    };

    let jobs: Vec<Job> = (0..240)
        .map(|i| match i % 12 {
            0 => Job::Loop,
            4 => Job::Grow,
            8 => Job::Panic,
            n if n % 2 == 0 => Job::Ok,
            _ => Job::Rules,
        })
        .collect();

    let results = tokio.block_on(async {
        let mut handles = Vec::new();
        for (i, job) in jobs.iter().copied().enumerate() {
            let (rules, hostile, rules_config, limits, loop_limits) = (
                rules.clone(),
                hostile.clone(),
                rules_config.clone(),
                limits.clone(),
                loop_limits.clone(),
            );
            handles.push(tokio::spawn(async move {
                // Each message is different, so a mix-up between calls would show.
                let subject = if i % 3 == 0 {
                    format!("job {i}")
                } else {
                    format!("job {i} (not numbered)")
                };
                let raw = format!("From: a@example.com\r\nSubject: {subject}\r\n\r\nbody {i}\r\n");
                let msg = message(raw.as_bytes());
                let result = match job {
                    Job::Rules => runtime().run(&rules, msg, rules_config, &limits).await,
                    Job::Loop => {
                        runtime()
                            .run(&hostile, msg, config(r#"{"do": "loop"}"#), &loop_limits)
                            .await
                    }
                    Job::Grow => {
                        runtime()
                            .run(&hostile, msg, config(r#"{"do": "grow"}"#), &limits)
                            .await
                    }
                    Job::Panic => {
                        runtime()
                            .run(&hostile, msg, config(r#"{"do": "panic"}"#), &limits)
                            .await
                    }
                    Job::Ok => {
                        runtime()
                            .run(&hostile, msg, config(r#"{"do": "ok"}"#), &limits)
                            .await
                    }
                };
                (i, job, raw.len(), result)
            }));
        }
        let mut out = Vec::new();
        for handle in handles {
            out.push(handle.await.expect("task"));
        }
        out
    });

    assert_eq!(results.len(), 240);
    for (i, job, size, result) in results {
        match job {
            Job::Rules => {
                let expected = if i % 3 == 0 {
                    vec![Action::Tag("numbered".into())]
                } else {
                    vec![]
                };
                assert_eq!(result.expect("rules call").actions, expected, "job {i}");
            }
            Job::Ok => assert_eq!(
                result.expect("ok call").actions,
                vec![Action::Tag(format!("size:{size}"))],
                "job {i}"
            ),
            Job::Loop => {
                let kind = result.expect_err("loop").kind;
                // Under load the fuel budget may run out before the 40 ms deadline; both contain it.
                assert!(
                    matches!(kind, FailureKind::Deadline | FailureKind::Fuel),
                    "job {i}: {kind:?}"
                );
            }
            Job::Grow => assert_eq!(
                result.expect_err("grow").kind,
                FailureKind::Memory,
                "job {i}"
            ),
            Job::Panic => assert_eq!(
                result.expect_err("panic").kind,
                FailureKind::Trap,
                "job {i}"
            ),
        }
    }
}
