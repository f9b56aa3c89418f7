//! `wasmail plugin check` and `wasmail plugin test`, run as a user would.

use crate::helpers::{corpus_dir, guest_dir};
use std::process::Command;

fn wasmail(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_wasmail"))
        .args(args)
        .env(
            "WASMAIL_CACHE_DIR",
            std::env::temp_dir().join("wasmail-cli-test-cache"),
        )
        .output()
        .expect("run wasmail");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn path(name: &str) -> String {
    guest_dir()
        .join(format!("{name}.wasm"))
        .to_string_lossy()
        .into_owned()
}

#[test]
fn help_lists_the_subcommands() {
    let (code, out, _) = wasmail(&["--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("plugin"), "{out}");
    let (code, out, _) = wasmail(&["plugin", "--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("check") && out.contains("test"), "{out}");
}

#[test]
fn check_prints_world_and_imports() {
    let (code, out, err) = wasmail(&["plugin", "check", &path("rules")]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("world:   wasmail:plugin/filter@0.1.0"),
        "{out}"
    );
    assert!(out.contains("wasmail:plugin/message@0.1.0"), "{out}");
    assert!(out.contains("wasmail:plugin/filter-stage@0.1.0"), "{out}");

    let (code, _, err) = wasmail(&["plugin", "check", &path("test_forbidden_import")]);
    assert_eq!(code, 1);
    assert!(err.contains("evil:net/raw"), "{err}");
}

#[test]
fn test_prints_one_json_line_per_message() {
    let messages: Vec<String> = [
        "cpython__msg_02.eml",
        "spamassassin__badmime.eml",
        "stalwart__malformed_002.eml",
    ]
    .iter()
    .map(|m| corpus_dir().join(m).to_string_lossy().into_owned())
    .filter(|m| std::path::Path::new(m).exists())
    .collect();
    assert!(messages.len() >= 2);
    let config =
        r#"{"rules": [{"name": "all", "when": {"all": []}, "then": [{"tag": "seen-by-rules"}]}]}"#;
    let plugin = path("rules");
    let mut args = vec!["plugin", "test", &plugin];
    args.extend(messages.iter().map(String::as_str));
    args.extend(["--config", config]);
    let (code, out, err) = wasmail(&args);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(lines.len(), messages.len());
    for (line, message) in lines.iter().zip(&messages) {
        assert_eq!(line["message"], message.as_str());
        assert_eq!(line["ok"], true);
        assert_eq!(line["outcome"]["actions"][0]["tag"], "seen-by-rules");
        assert!(line["outcome"]["fuel_used"].as_u64().is_some_and(|f| f > 0));
        assert!(line["outcome"]["duration_us"].as_u64().is_some());
    }
}

#[test]
fn test_exits_non_zero_with_a_structured_error() {
    let message = corpus_dir()
        .join("cpython__msg_02.eml")
        .to_string_lossy()
        .into_owned();
    let (code, out, _) = wasmail(&[
        "plugin",
        "test",
        &path("test_hostile"),
        &message,
        "--config",
        r#"{"do": "loop"}"#,
        "--limits",
        r#"{"deadline_ms": 20, "fuel_base": 100000000000}"#,
    ]);
    assert_eq!(code, 1);
    let line: serde_json::Value = serde_json::from_str(out.trim()).expect("JSON line");
    assert_eq!(line["ok"], false);
    assert_eq!(line["error"]["kind"], "deadline");

    let (code, _, err) = wasmail(&[
        "plugin",
        "test",
        &path("rules"),
        &message,
        "--limits",
        r#"{"deadline": 1}"#,
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("unknown field `deadline`"), "{err}");
}

#[test]
fn the_plugin_template_builds_and_runs() {
    let sample = crate::helpers::workspace_root().join("examples/messages/invoice.eml");
    let sample = sample.to_string_lossy();
    let template = path("wasmail_plugin_template");
    let run = |config: &str| {
        let (code, out, err) = wasmail(&["plugin", "test", &template, &sample, "--config", config]);
        assert_eq!(code, 0, "{err}");
        serde_json::from_str::<serde_json::Value>(out.trim()).expect("JSON line")
    };
    let vip = run(r#"{"vips": ["hosting.example"]}"#);
    assert_eq!(
        vip["outcome"]["actions"],
        serde_json::json!([{"add_flag": "\\Flagged"}, {"tag": "vip"}])
    );
    let other = run(r#"{"vips": ["ceo@example.com"]}"#);
    assert_eq!(other["outcome"]["actions"], serde_json::json!([]));
}
