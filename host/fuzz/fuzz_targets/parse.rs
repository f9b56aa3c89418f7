//! Raw bytes → the host's message → every accessor and match primitive a plugin can reach.
//!
//!     cd host/fuzz && mkdir -p corpus/parse && cp ../../examples/corpus/*.eml corpus/parse/
//!     cargo +nightly fuzz run -O parse corpus/parse -- -max_total_time=120
//!
//! `-O` builds like production, without debug assertions: mail-parser 0.11.9 has a
//! `debug_assert!(false)` that real mail reaches (examples/corpus/mimekit__mbox-content-length.mbox__m01.eml),
//! and libFuzzer aborts on any panic, even one the host catches.

#![no_main]

use libfuzzer_sys::fuzz_target;
use wasmail::message::{Field, parse};

fuzz_target!(|data: &[u8]| {
    let msg = parse(data.to_vec());
    assert_eq!(msg.raw(), data);
    let _ = (msg.header_names(), msg.header_all("received"), msg.header("content-type"));
    let _ = (msg.from(), msg.to(), msg.cc(), msg.reply_to(), msg.subject(), msg.date(), msg.message_id());
    let _ = (msg.text_body().len(), msg.html_body().len());
    for attachment in msg.attachments() {
        let _ = msg.attachment_content(attachment.index);
    }
    for field in [Field::Subject, Field::From, Field::To, Field::Body, Field::AttachmentNames, Field::Header("x".into())] {
        let _ = msg.field_contains(&field, "a");
        let _ = msg.field_equals(&field, "a@b");
        let _ = msg.field_matches(&field, "(?i)a+b");
    }
});
