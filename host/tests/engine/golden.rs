//! The first-party plugins over the whole corpus, against golden expectations
//! (`host/tests/golden/<plugin>.expected.json`: message → actions, or the failure kind).
//!
//! After an intended change of behaviour, regenerate with `WASMAIL_BLESS=1 cargo test --release
//! --test engine golden`, then review the diff: the named checks below must keep holding.

use crate::helpers::{config, corpus_and_samples, guest, message, plugin, runtime, workspace_root};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use wasmail::sandbox::{Keep, PluginLimits};

/// Runs `component` with its golden config over the corpus; compares with (or blesses) the golden file.
fn golden(plugin_name: &str, component: &str) -> BTreeMap<String, Value> {
    let dir = workspace_root().join("host/tests/golden");
    let config_text =
        std::fs::read_to_string(dir.join(format!("{plugin_name}.config.json"))).expect("config");
    let limits = PluginLimits {
        deadline_ms: 5_000,
        ..PluginLimits::default()
    };
    // As a pipeline runs a stage: prepared once for its configuration.
    let prepared = runtime()
        .prepare_blocking(
            "test",
            &guest(component),
            &config_text,
            &limits,
            Keep::Cached,
        )
        .expect("prepare");
    let mut actual = BTreeMap::new();
    for (name, raw) in corpus_and_samples() {
        let result = runtime().run_prepared_blocking(&prepared, message(&raw), &limits);
        let value = match result {
            Ok(outcome) => json!(outcome.actions),
            Err(failure) => json!({ "error": failure.kind, "message": failure.message }),
        };
        actual.insert(name, value);
    }
    let path = dir.join(format!("{plugin_name}.expected.json"));
    if std::env::var_os("WASMAIL_BLESS").is_some() {
        let text = serde_json::to_string_pretty(&actual).expect("json");
        std::fs::write(&path, text + "\n").expect("write golden file");
        return actual;
    }
    let expected: Map<String, Value> =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("golden file"))
            .expect("golden JSON");
    let differences: Vec<String> = actual
        .iter()
        .filter(|(name, value)| expected.get(*name) != Some(*value))
        .map(|(name, value)| format!("{name}: expected {:?}, got {value}", expected.get(name)))
        .collect();
    assert!(
        expected.len() == actual.len(),
        "golden file lists {} messages, corpus has {}",
        expected.len(),
        actual.len()
    );
    assert!(
        differences.is_empty(),
        "{} differences:\n{}",
        differences.len(),
        differences.join("\n")
    );
    actual
}

fn actions_of<'a>(results: &'a BTreeMap<String, Value>, name: &str) -> &'a Vec<Value> {
    results
        .get(name)
        .and_then(Value::as_array)
        .unwrap_or_else(|| panic!("{name}: no actions: {:?}", results.get(name)))
}

fn has(results: &BTreeMap<String, Value>, name: &str, action: Value) -> bool {
    actions_of(results, name).contains(&action)
}

#[test]
fn rules_over_the_corpus() {
    let results = golden("rules", "rules");
    let failures: Vec<_> = results
        .iter()
        .filter(|(_, v)| v.get("error").is_some())
        .collect();
    assert!(failures.is_empty(), "rules failed on {failures:?}");
    for (name, action) in crate::expectations::RULES_MUST {
        assert!(
            has(
                &results,
                name,
                serde_json::from_str(action).expect("action")
            ),
            "{name} should get {action}: {:?}",
            results[*name]
        );
    }
    for name in crate::expectations::RULES_UNTOUCHED {
        assert!(
            actions_of(&results, name).is_empty(),
            "{name} should match no rule: {:?}",
            results[*name]
        );
    }
}

#[test]
fn spam_score_over_the_corpus() {
    let results = golden("spam-score", "spam_score");
    let moved = |name: &str| has(&results, name, json!({"move_to": "Junk"}));
    for name in crate::expectations::SPAM {
        assert!(moved(name), "{name} should be junk: {:?}", results[*name]);
    }
    for name in crate::expectations::HAM {
        assert!(!moved(name), "{name} should stay: {:?}", results[*name]);
    }
    // Every message gets its score tag.
    for (name, value) in &results {
        let tagged = value.as_array().is_some_and(|a| {
            a.iter().any(|v| {
                v["tag"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("spam-score:"))
            })
        });
        assert!(tagged, "{name}: {value}");
    }
}

#[test]
fn attachment_guard_over_the_corpus() {
    let results = golden("attachment-guard", "attachment_guard");
    let quarantined = |name: &str| has(&results, name, json!({"move_to": "Quarantine"}));
    for name in crate::expectations::DANGEROUS {
        assert!(
            quarantined(name),
            "{name} should be quarantined: {:?}",
            results[*name]
        );
    }
    for name in crate::expectations::HARMLESS {
        assert!(
            !quarantined(name),
            "{name} should pass: {:?}",
            results[*name]
        );
    }
}

#[test]
fn spam_score_explains_its_score_in_the_logs() {
    let raw =
        std::fs::read(workspace_root().join("examples/messages/phishing.eml")).expect("sample");
    let outcome = runtime()
        .run_blocking(
            &plugin("spam_score"),
            message(&raw),
            config("null"),
            &PluginLimits::default(),
        )
        .expect("spam-score");
    let line = &outcome.logs.first().expect("a log line").message;
    assert!(line.starts_with("score 21.0: "), "{line}");
    for reason in [
        "+3.0 spf=fail",
        "+4.0 dmarc=fail",
        "+2.5 link to a bare IP address",
        "+1.0 Reply-To in another domain",
    ] {
        assert!(line.contains(reason), "{reason} missing from {line}");
    }
}

#[test]
fn prepared_and_unprepared_rules_agree() {
    let config_text =
        std::fs::read_to_string(workspace_root().join("host/tests/golden/rules.config.json"))
            .expect("config");
    let limits = PluginLimits::default();
    let prepared = runtime()
        .prepare_blocking("test", &guest("rules"), &config_text, &limits, Keep::Cached)
        .expect("prepare");
    let unprepared = plugin("rules");
    for (name, raw) in corpus_and_samples() {
        let a = runtime()
            .run_prepared_blocking(&prepared, message(&raw), &limits)
            .expect("prepared");
        let b = runtime()
            .run_blocking(&unprepared, message(&raw), config(&config_text), &limits)
            .expect("unprepared");
        assert_eq!(a.actions, b.actions, "{name}");
        // The snapshot already holds the parsed rules: the prepared call does less work.
        assert!(
            a.fuel_used < b.fuel_used,
            "{name}: {} vs {}",
            a.fuel_used,
            b.fuel_used
        );
    }
}

#[test]
fn preparing_rejects_bad_rules_before_any_message() {
    let error = runtime()
        .prepare_blocking(
            "test",
            &guest("rules"),
            r#"{"rules": [{"when": {"field": "nope", "contains": "x"}, "then": ["keep"]}]}"#,
            &PluginLimits::default(),
            Keep::Cached,
        )
        .expect_err("bad rules");
    let text = error.to_string();
    assert!(
        text.starts_with(
            "the plugin rejected its configuration: rules[0].when.field: unknown field \"nope\""
        ),
        "{text}"
    );
}
