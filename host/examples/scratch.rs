use std::time::Instant;
use wasmail::message::{Envelope, Field, ParsedMessage};
fn main() {
    let mut raw = b"From: Someone <someone@example.org>\r\nTo: you@example.com\r\nSubject: Re: project status\r\n\r\n".to_vec();
    while raw.len() < 1 << 20 {
        raw.extend_from_slice(
            b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.\r\n",
        );
    }
    for _ in 0..3 {
        let m = ParsedMessage::parse(raw.clone(), Envelope::default());
        let t = Instant::now();
        let tb = m.text_body().len();
        let t1 = t.elapsed();
        let t = Instant::now();
        let r = m.field_contains(&Field::Body, "unsubscribe-zq81");
        let t2 = t.elapsed();
        let t = Instant::now();
        let r2 = m.field_contains(&Field::Body, "unsubscribe-zq81");
        let t3 = t.elapsed();
        let t = Instant::now();
        let r3 = m.field_contains(&Field::From, "x");
        let t4 = t.elapsed();
        let t = Instant::now();
        let r4 = m.field_matches(&Field::Subject, "(?i)\\bticket #\\d+");
        let t5 = t.elapsed();
        println!(
            "text {tb} {t1:?}; body contains {r} {t2:?}; again {r2} {t3:?}; from {r3} {t4:?}; regex {r4:?} {t5:?}"
        );
    }
}
