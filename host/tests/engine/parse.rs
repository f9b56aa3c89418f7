//! Every corpus message parses without a panic, keeps its bytes exactly, and answers every accessor
//! and match primitive.

use crate::helpers::{corpus, message};
use wasmail::message::Field;

#[test]
fn every_corpus_message_parses_and_round_trips() {
    let mut parsed = 0;
    let mut with_subject = 0;
    let mut with_attachments = 0;
    for (name, raw) in corpus() {
        let msg = message(&raw);
        assert_eq!(msg.raw(), raw.as_slice(), "{name}: raw bytes changed");
        if msg.is_parsed() {
            parsed += 1;
        }
        with_subject += usize::from(msg.subject().is_some());
        with_attachments += usize::from(!msg.attachments().is_empty());
        // Every accessor, on every message: none may panic.
        let _ = (
            msg.header_names(),
            msg.header_all("received"),
            msg.header("content-type"),
        );
        let _ = (
            msg.from(),
            msg.to(),
            msg.cc(),
            msg.reply_to(),
            msg.date(),
            msg.message_id(),
        );
        let _ = (msg.text_body().len(), msg.html_body().len());
        for attachment in msg.attachments() {
            let content = msg
                .attachment_content(attachment.index)
                .expect("listed attachment has content");
            assert_eq!(
                content.len() as u64,
                attachment.size,
                "{name}: attachment {} size",
                attachment.index
            );
        }
        for field in [
            Field::Subject,
            Field::From,
            Field::Body,
            Field::AttachmentNames,
            Field::Header("X".into()),
        ] {
            let _ = msg.field_contains(&field, "é");
            let _ = msg.field_equals(&field, "x");
            msg.field_matches(&field, "(?i)free|offer")
                .expect("valid pattern");
        }
    }
    // mail-parser reads something from nearly everything; the counts guard against a parser that
    // silently returns nothing.
    assert!(parsed >= 270, "only {parsed} messages parsed");
    assert!(
        with_subject >= 200,
        "only {with_subject} messages have a subject"
    );
    assert!(
        with_attachments >= 40,
        "only {with_attachments} messages have attachments"
    );
}

#[test]
fn garbage_never_panics() {
    for raw in [
        &b""[..],
        b"\0\0\0",
        b"\r\n\r\n",
        b"Subject:",
        b"Content-Type: multipart/mixed; boundary=\"\r\n\r\n--",
        &[0xff; 64],
    ] {
        let msg = message(raw);
        assert_eq!(msg.raw(), raw);
        let _ = (
            msg.subject(),
            msg.text_body(),
            msg.attachments(),
            msg.header_names(),
        );
    }
}

/// Corpus messages that begin with a white-space-only line before their headers, with what Python's
/// `email` (3.11, `policy.default`) reads from them: header count (duplicates included), Subject,
/// From address. mail-parser alone reads no header from them: the header block lands in the body.
const LEADING_BLANK_LINE: &[(&str, usize, &str, &str)] = &[
    (
        "flanker__enclosed-bad-encoding.eml",
        20,
        "Wow",
        "bob@example.net",
    ),
    ("flanker__enclosed-global.eml", 20, "Wow", "bob@example.net"),
    (
        "flanker__russian-attachment-yahoo.eml",
        26,
        "Hello",
        "mailboxaddr1234567@yahoo.com",
    ),
    ("phpmmp__m0011.eml", 10, "Hello World !", "name@company.com"),
];

/// Starts with an empty line followed by plain text: a message without headers (Python reads none
/// either), which must stay one.
const BODY_ONLY: &str = "letters__test_english_empty.eml";

#[test]
fn corpus_messages_with_a_leading_blank_line_keep_their_headers() {
    let corpus = corpus();
    let first_line_blank = |raw: &[u8]| {
        let first = raw.split(|&b| b == b'\n').next().unwrap_or_default();
        raw.contains(&b'\n') && first.iter().all(|b| b" \t\r".contains(b))
    };
    let mut found: Vec<&str> = corpus
        .iter()
        .filter(|(_, raw)| first_line_blank(raw))
        .map(|(name, _)| name.as_str())
        .collect();
    found.sort_unstable();
    let mut named: Vec<&str> = LEADING_BLANK_LINE.iter().map(|(n, ..)| *n).collect();
    named.push(BODY_ONLY);
    named.sort_unstable();
    assert_eq!(found, named, "the corpus's leading-blank-line messages");

    for (name, python_headers, subject, from) in LEADING_BLANK_LINE {
        let raw = &corpus.iter().find(|(n, _)| n == name).expect(name).1;
        let msg = message(raw);
        assert_eq!(msg.raw(), raw.as_slice(), "{name}: raw bytes changed");
        let headers = msg.header_names();
        // At least what Python recovers (a parser may split a malformed line into one more).
        assert!(
            headers.len() >= *python_headers && headers.len() <= python_headers + 2,
            "{name}: {} headers, Python reads {python_headers}: {headers:?}",
            headers.len()
        );
        assert_eq!(msg.subject(), Some(*subject), "{name}");
        assert_eq!(
            msg.from().first().and_then(|a| a.address.as_deref()),
            Some(*from),
            "{name}"
        );
        assert!(msg.date().is_some(), "{name}: no date");
        assert!(msg.message_id().is_some(), "{name}: no Message-ID");
        // The header block is no longer read as the body.
        assert!(
            !msg.text_body().contains("Delivered-To:") && !msg.text_body().contains("Received:"),
            "{name}: headers in the body"
        );
    }

    let raw = &corpus
        .iter()
        .find(|(n, _)| n == BODY_ONLY)
        .expect(BODY_ONLY)
        .1;
    let msg = message(raw);
    assert!(msg.header_names().is_empty(), "{:?}", msg.header_names());
    assert!(
        msg.text_body()
            .contains("While this email is undeliverable")
    );
}

/// Two of each single-value header: the first is what a mail client shows.
const DUPLICATED: &[u8] = b"From: Colleague <colleague@example.test>\r\n\
From: Prize Desk <prize@lottery.example>\r\n\
Subject: Lunch on Friday\r\nSubject: FREE MONEY WAITING NOW!!!\r\n\
Date: Fri, 1 Mar 2024 10:00:00 +0000\r\nDate: garbage\r\n\
Message-ID: <lunch@example.test>\r\n\r\nSee you at noon.\r\n";

#[test]
fn plugins_see_the_first_of_duplicated_headers() {
    use crate::helpers::{config, plugin, runtime};
    use wasmail::sandbox::PluginLimits;
    let limits = PluginLimits::default();
    // spam-score reads `subject()`, `header()` and the date through the SDK.
    let outcome = runtime()
        .run_blocking(
            &plugin("spam_score"),
            message(DUPLICATED),
            config("null"),
            &limits,
        )
        .expect("spam-score");
    let line = &outcome.logs.first().expect("a log line").message;
    assert!(line.starts_with("score 0.0"), "{line}");
    for reason in ["shouting subject", "!!!", "no valid Date"] {
        assert!(!line.contains(reason), "{reason} in {line}");
    }
    // rules matches through the host's primitives.
    let rules = r#"{"rules": [
        {"name": "first", "when": {"field": "subject", "contains": "friday"}, "then": [{"tag": "first"}]},
        {"name": "second", "when": {"field": "subject", "contains": "money"}, "then": [{"tag": "second"}]},
        {"name": "sender", "when": {"field": "from", "contains": "lottery"}, "then": [{"tag": "lottery"}]},
        {"name": "every value", "when": {"header": "Subject", "contains": "money"}, "then": [{"tag": "any-subject"}]}
    ]}"#;
    let outcome = runtime()
        .run_blocking(
            &plugin("rules"),
            message(DUPLICATED),
            config(rules),
            &limits,
        )
        .expect("rules");
    assert_eq!(
        serde_json::json!(outcome.actions),
        serde_json::json!([{"tag": "first"}, {"tag": "any-subject"}])
    );
}
