//! Malformed mail keeps its meaning: leading blank lines before the header block, and duplicated
//! single-value headers (the first wins, as mail clients show it).

use super::{Field, parse};

const HEADERS_CRLF: &[u8] = b"From: Alice <alice@example.com>\r\nTo: bob@example.net\r\n\
Subject: Quarterly report\r\nDate: Tue, 1 Dec 2026 10:00:00 +0000\r\nMessage-ID: <q4@example.com>\r\n\
Content-Type: text/plain; charset=utf-8\r\n\r\nThe numbers are in.\r\n";

fn with_prefix(prefix: &[u8], message: &[u8]) -> Vec<u8> {
    [prefix, message].concat()
}

fn lf(message: &[u8]) -> Vec<u8> {
    String::from_utf8_lossy(message)
        .replace("\r\n", "\n")
        .into_bytes()
}

/// The message reads as if the prefix were not there, and its raw bytes are still the given ones.
fn assert_reads_as_headers(raw: Vec<u8>) {
    let m = parse(raw.clone());
    assert_eq!(m.raw(), raw.as_slice(), "raw bytes changed");
    assert_eq!(m.size(), raw.len() as u64);
    assert_eq!(m.subject(), Some("Quarterly report"), "{m:?}");
    assert_eq!(
        m.header_names(),
        [
            "From",
            "To",
            "Subject",
            "Date",
            "Message-ID",
            "Content-Type"
        ]
    );
    assert_eq!(m.from()[0].address.as_deref(), Some("alice@example.com"));
    assert_eq!(m.to()[0].address.as_deref(), Some("bob@example.net"));
    assert_eq!(m.message_id(), Some("q4@example.com"));
    assert_eq!(m.date(), Some(1_796_119_200));
    // Structured headers are read from the raw bytes at mail-parser's offsets: they must line up.
    assert_eq!(
        m.header("content-type").as_deref(),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(m.text_body().trim_end(), "The numbers are in.");
    assert!(!m.text_body().contains("Subject"), "{:?}", m.text_body());
    assert!(m.field_contains(&Field::Subject, "quarterly"));
}

#[test]
fn a_leading_blank_line_is_tolerated_crlf_and_lf() {
    assert_reads_as_headers(with_prefix(b"\r\n", HEADERS_CRLF));
    assert_reads_as_headers(with_prefix(b"\n", &lf(HEADERS_CRLF)));
    assert_reads_as_headers(with_prefix(b"\r\n\r\n\r\n", HEADERS_CRLF));
}

#[test]
fn leading_white_space_only_lines_are_tolerated() {
    // As the corpus has them: a line of spaces before the headers.
    assert_reads_as_headers(with_prefix(
        &[b' '; 100],
        &with_prefix(b"\r\n", HEADERS_CRLF),
    ));
    assert_reads_as_headers(with_prefix(b" \t \n\t\n", &lf(HEADERS_CRLF)));
    // Mixed line ends.
    assert_reads_as_headers(with_prefix(b"  \n\r\n", HEADERS_CRLF));
}

#[test]
fn a_message_of_only_blank_lines_has_no_headers_and_keeps_its_bytes() {
    for raw in [&b"\r\n\r\n\r\n"[..], b"\n\n", b"   \r\n\t\r\n", b"\r\n  "] {
        let m = parse(raw.to_vec());
        assert_eq!(m.raw(), raw);
        assert!(
            m.header_names().is_empty(),
            "{raw:?}: {:?}",
            m.header_names()
        );
        assert_eq!(m.subject(), None);
        assert!(m.text_body().trim().is_empty(), "{raw:?}");
    }
}

#[test]
fn a_body_only_message_after_a_blank_line_stays_body() {
    // No header follows the blank line: it is a message without headers (the corpus has one).
    let raw = b"\nWhile this email is undeliverable, this test case\nmakes sure: nothing breaks.\n";
    let m = parse(raw.to_vec());
    assert!(m.header_names().is_empty(), "{:?}", m.header_names());
    assert!(m.text_body().contains("undeliverable"));
}

#[test]
fn no_leading_line_means_no_change() {
    let m = parse(HEADERS_CRLF.to_vec());
    assert_eq!(m.header_names().len(), 6);
    // A first line that is a bare continuation with text on it is not white space only: parsed from
    // the start as before (mail-parser already reads the headers after it).
    let m = parse(with_prefix(b" stray\r\n", HEADERS_CRLF));
    assert_eq!(m.header_names().len(), 6);
    assert_eq!(m.subject(), Some("Quarterly report"));
}

const DUPLICATED: &[u8] =
    b"From: First <first@example.com>\r\nFrom: Second <second@example.com>\r\n\
To: to1@example.com\r\nTo: to2@example.com\r\nCc: cc1@example.com\r\nCc: cc2@example.com\r\n\
Reply-To: r1@example.com\r\nReply-To: r2@example.com\r\n\
Subject: the first subject\r\nSubject: the second subject\r\n\
Date: Tue, 1 Dec 2026 10:00:00 +0000\r\nDate: Wed, 2 Dec 2026 10:00:00 +0000\r\n\
Message-ID: <one@example.com>\r\nMessage-ID: <two@example.com>\r\n\
Sender: s1@example.com\r\nSender: s2@example.com\r\n\
In-Reply-To: <p1@example.com>\r\nIn-Reply-To: <p2@example.com>\r\n\r\nbody\r\n";

#[test]
fn the_first_of_duplicated_headers_wins() {
    let m = parse(DUPLICATED.to_vec());
    assert_eq!(m.subject(), Some("the first subject"));
    let first = |list: Vec<super::Address>| {
        assert_eq!(list.len(), 1, "{list:?}");
        list[0].address.clone()
    };
    assert_eq!(first(m.from()).as_deref(), Some("first@example.com"));
    assert_eq!(first(m.to()).as_deref(), Some("to1@example.com"));
    assert_eq!(first(m.cc()).as_deref(), Some("cc1@example.com"));
    assert_eq!(first(m.reply_to()).as_deref(), Some("r1@example.com"));
    assert_eq!(m.date(), Some(1_796_119_200));
    assert_eq!(m.message_id(), Some("one@example.com"));
    for (name, value) in [
        ("subject", "the first subject"),
        ("SUBJECT", "the first subject"),
        ("from", "First <first@example.com>"),
        ("sender", "s1@example.com"),
        ("in-reply-to", "p1@example.com"),
        ("message-id", "one@example.com"),
    ] {
        assert_eq!(m.header(name).as_deref(), Some(value), "{name}");
    }
    // Every value stays readable.
    assert_eq!(
        m.header_all("subject"),
        ["the first subject", "the second subject"]
    );
    assert_eq!(m.header_all("from").len(), 2);
    assert_eq!(m.headers().len(), 18);
    // The match primitives judge the subject the reader sees; `header` fields still see every value.
    assert!(m.field_contains(&Field::Subject, "first"));
    assert!(!m.field_contains(&Field::Subject, "second"));
    assert!(m.field_equals(&Field::From, "first@example.com"));
    assert!(!m.field_equals(&Field::From, "second@example.com"));
    assert!(m.field_contains(&Field::Header("Subject".into()), "second"));
}

#[test]
fn a_first_header_that_does_not_parse_is_still_the_first() {
    // Hiding behind an unreadable first value must not let a second one take over.
    let m = parse(b"Date: not a date\r\nDate: Tue, 1 Dec 2026 10:00:00 +0000\r\n\r\n".to_vec());
    assert_eq!(m.date(), None);
}
