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
