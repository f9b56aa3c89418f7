//! Raw bytes → the host's message → every accessor and match primitive a plugin can reach.
//! Run: `cd host/fuzz && cargo +nightly fuzz run parse -- -max_total_time=60`
//! (or, on stable, `RUSTC_BOOTSTRAP=1 cargo fuzz run parse`), seeding from `examples/corpus`.

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
