//! Bad stage configurations end the call with a `plugin` error that says what is wrong, before any
//! message is touched.

use crate::helpers::{config, message, plugin, runtime};
use wasmail::sandbox::{FailureKind, Keep, PluginLimits};

const SAMPLE: &[u8] = b"From: a@example.com\r\nSubject: hi\r\n\r\nhello\r\n";

fn plugin_error(component: &str, config_text: &str) -> String {
    let failure = runtime()
        .run_blocking(
            &plugin(component),
            message(SAMPLE),
            config(config_text),
            &PluginLimits::default(),
        )
        .expect_err(config_text);
    assert_eq!(failure.kind, FailureKind::Plugin, "{failure:?}");
    failure.message
}

#[test]
fn rules_configuration_errors_name_the_place() {
    let e = plugin_error(
        "rules",
        r#"{"rules": [{"name": "x", "when": {"field": "subjet", "contains": "a"}, "then": ["keep"]}]}"#,
    );
    assert!(
        e.starts_with("rules[0].when.field: unknown field \"subjet\""),
        "{e}"
    );
    let e = plugin_error("rules", "null");
    assert_eq!(e, "configuration must be an object with a \"rules\" array");
    let e = plugin_error(
        "rules",
        r#"{"rules": [{"when": {"field": "subject", "matches": "(unclosed"}, "then": ["keep"]}]}"#,
    );
    assert!(e.starts_with("rule rules[0]: invalid pattern"), "{e}");
}

#[test]
fn spam_score_and_attachment_guard_reject_unknown_keys() {
    let e = plugin_error("spam_score", r#"{"treshold": 3}"#);
    assert!(e.contains("unknown field `treshold`"), "{e}");
    let e = plugin_error("spam_score", r#"{"folder": "  "}"#);
    assert_eq!(e, "folder must not be empty");
    let e = plugin_error("attachment_guard", r#"{"extra_extensions": [".exe"]}"#);
    assert!(e.contains("without the dot"), "{e}");
    let e = plugin_error("attachment_guard", r#"{"actions": []}"#);
    assert!(e.starts_with("actions must not be empty"), "{e}");
}

#[test]
fn preparing_rejects_bad_configurations_of_every_first_party_plugin() {
    use crate::helpers::guest;
    use wasmail::sandbox::LoadError;
    for (component, bad, expected) in [
        (
            "spam_score",
            r#"{"treshold": 3}"#,
            "unknown field `treshold`",
        ),
        (
            "attachment_guard",
            r#"{"actions": []}"#,
            "actions must not be empty",
        ),
        ("rules", r#"{"rules": []}"#, "rules: the list is empty"),
    ] {
        match runtime().prepare_blocking(
            "tenant",
            &guest(component),
            bad,
            &PluginLimits::default(),
            Keep::Cached,
        ) {
            Err(LoadError::Rejected(why)) => assert!(why.contains(expected), "{component}: {why}"),
            other => panic!("{component}: expected a rejection, got {other:?}"),
        }
    }
}
