//! A 40 MiB message filtered under a 32 MiB plugin memory limit: the message stays on the host, the
//! plugin reads it through the resource.

use crate::helpers::{config, message, plugin, runtime};
use std::sync::Arc;
use wasmail::message::ParsedMessage;
use wasmail::sandbox::{Action, FailureKind, PluginLimits};

fn forty_mib_message() -> Arc<ParsedMessage> {
    let mut raw = b"From: sender@example.com\r\nTo: you@example.com\r\nSubject: the big one\r\n\
Message-ID: <big@example.com>\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
        .to_vec();
    let line = b"All work and no play makes a very long message indeed, line after line.\r\n";
    while raw.len() < 40 << 20 {
        raw.extend_from_slice(line);
    }
    raw.extend_from_slice(b"The needle: quarterly-report-7731\r\n");
    message(&raw)
}

#[test]
fn forty_mib_message_under_a_32_mib_limit() {
    let msg = forty_mib_message();
    assert!(msg.size() > 40 << 20);
    // Generous deadline: this test is about memory, and CI machines are shared.
    let limits = PluginLimits {
        memory_bytes: 32 << 20,
        deadline_ms: 10_000,
        ..PluginLimits::default()
    };

    // The rules plugin checks the body with a host primitive: nothing is copied into the sandbox.
    let rules = r#"{"rules": [{"name": "needle", "when": {"field": "body", "contains": "QUARTERLY-report-7731"},
                    "then": [{"tag": "found"}]}]}"#;
    let outcome = runtime()
        .run_blocking(&plugin("rules"), msg.clone(), config(rules), &limits)
        .expect("rules");
    assert_eq!(outcome.actions, vec![Action::Tag("found".into())]);

    // A plugin that streams the body in chunks sees all of it and stays within its memory.
    let streamed = runtime()
        .run_blocking(
            &plugin("test_hostile"),
            msg.clone(),
            config(r#"{"do": "count-text"}"#),
            &limits,
        )
        .expect("streaming the body");
    let expected = msg.text_body().len();
    assert!(expected > 39 << 20, "text body of {expected} bytes"); // line ends decoded to LF
    assert_eq!(
        streamed.actions,
        vec![Action::Tag(format!("text-bytes:{expected}"))]
    );

    // Copying the whole message into the sandbox is what the limit is for.
    let copied = runtime()
        .run_blocking(
            &plugin("test_hostile"),
            msg,
            config(r#"{"do": "copy-raw"}"#),
            &limits,
        )
        .expect_err("a 40 MiB copy cannot fit in 32 MiB");
    assert_eq!(copied.kind, FailureKind::Memory, "{copied:?}");
}
