//! One component, many misbehaviours, chosen by the stage configuration `{"do": "..."}`: the tests run
//! each under the production runtime and check it is contained.

use std::hint::black_box;
use wasmail_plugin::{Action, Error, Field, Message, config, log};

#[derive(serde::Deserialize)]
struct Config {
    #[serde(rename = "do", default)]
    what: String,
    /// What `prepare` does: nothing by default.
    #[serde(default)]
    prepare: String,
}

fn prepare() -> Result<(), Error> {
    let config: Config = config::parse()?;
    match config.prepare.as_str() {
        "loop" => {
            let mut n: u64 = 0;
            loop {
                n = black_box(n.wrapping_add(1));
            }
        }
        "panic" => panic!("hostile guest panicked while preparing"),
        "reject" => Err(Error::new("this configuration is refused")),
        "sleep" => {
            std::thread::sleep(std::time::Duration::from_secs(60));
            Ok(())
        }
        _ => Ok(()),
    }
}

#[wasmail_plugin::filter(prepare = prepare)]
fn filter(message: &Message) -> Result<Vec<Action>, Error> {
    let config: Config = config::parse()?;
    match config.what.as_str() {
        // Well-behaved: proves the message was read.
        "ok" => Ok(vec![Action::Tag(format!("size:{}", message.size()))]),
        "loop" => {
            let mut n: u64 = 0;
            loop {
                n = black_box(n.wrapping_add(1));
            }
        }
        "grow" => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(black_box(vec![0xA5; 1 << 20]));
            }
        }
        "recurse" => Ok(vec![Action::Tag(format!(
            "depth:{}",
            recurse(black_box(u64::MAX))
        ))]),
        "panic" => panic!("hostile guest panicked on purpose"),
        "many-actions" => Ok(vec![Action::Tag("x".into()); 100_000]),
        "huge-tag" => Ok(vec![Action::Tag("x".repeat(8 << 20))]),
        "log-flood" => {
            for i in 0..2_000 {
                log::info(&format!("line {i} {}", "y".repeat(100)));
            }
            Ok(vec![Action::Keep])
        }
        "exit" => std::process::exit(3),
        "stderr" => {
            eprintln!("written to stderr");
            Ok(vec![Action::Keep])
        }
        "open-file" => match std::fs::read_to_string("/etc/passwd") {
            Ok(text) => Ok(vec![Action::Tag(format!("leaked:{}", text.len()))]),
            Err(e) => Err(Error::new(format!("open failed: {e}"))),
        },
        // Streams the whole text body chunk by chunk without keeping it: memory stays flat.
        "count-text" => {
            let bytes: usize = message.text_chunks().map(|c| c.len()).sum();
            Ok(vec![Action::Tag(format!("text-bytes:{bytes}"))])
        }
        // Copies the whole raw message into the sandbox: grows with the mail.
        "copy-raw" => {
            let raw = message.raw(0, message.size());
            Ok(vec![Action::Tag(format!("raw-bytes:{}", raw.len()))])
        }
        // Blocks in WASI rather than in wasm code: std's sleep is `subscribe-duration` + `block`.
        "sleep" => {
            std::thread::sleep(std::time::Duration::from_secs(60));
            Ok(vec![Action::Keep])
        }
        // The same through `wasi:io/poll.poll` over several clock pollables, in a loop.
        "poll" => {
            use wasi::clocks::monotonic_clock::subscribe_duration;
            loop {
                let a = subscribe_duration(30_000_000_000);
                let b = subscribe_duration(60_000_000_000);
                black_box(wasi::io::poll::poll(&[&a, &b]));
            }
        }
        // A pattern the regex crate runs with its slow engine over a large body, again and again.
        "regex-bomb" => {
            let pattern = (0..8)
                .map(|i| format!(r"\b\w{{3}}{i}\w+\b"))
                .collect::<Vec<_>>()
                .join("|");
            let mut hits = 0u32;
            for _ in 0..1_000 {
                if let Ok(true) = message.matches(&Field::Body, &pattern) {
                    hits += 1;
                }
            }
            Ok(vec![Action::Tag(format!("hits:{hits}"))])
        }
        // Scans the body natively again and again: each scan is cheap for wasm, costly for the host.
        "scan-loop" => {
            let mut hits = 0u64;
            loop {
                if message.contains(&Field::Body, "needle-that-is-not-there") {
                    hits += 1;
                }
                black_box(hits);
            }
        }
        // Distinct patterns, each compiled by the host (and cached, if the cache lets it).
        "regex-flood" => {
            for i in 0..2_000u32 {
                let pattern = format!("(?i)flood-{i}-[a-z]{{2,40}}(x|y|z){{1,8}}");
                black_box(message.matches(&Field::Subject, &pattern).ok());
            }
            Ok(vec![Action::Keep])
        }
        other => Err(Error::new(format!("unknown behaviour {other}"))),
    }
}

#[inline(never)]
fn recurse(n: u64) -> u64 {
    let frame = black_box([n as u8; 256]);
    if n == 0 {
        0
    } else {
        recurse(black_box(n - 1)) + u64::from(frame[7])
    }
}
