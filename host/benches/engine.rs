//! Engine benchmarks, each against a named baseline measured in the same run, reported as ratios.
//!
//!     cargo bench --workspace --bench engine            # everything
//!     cargo bench --workspace --bench engine -- parse   # sections whose name contains "parse"
//!
//! Sections:
//! - parse: `wasmail::message::parse` vs bare mail-parser on the same bytes, over `examples/corpus`
//!   and the synthetic corpus of `gen_corpus.py` (2,000 messages, generated into target/ once);
//! - filter: the `rules` plugin with production isolation (fresh instance per message, epoch
//!   deadline, fuel, memory limit) vs the same rules in native Rust, at 2 KB, 50 KB, 1 MB, 10 MB;
//! - empty: the fixed cost of one isolated call (instantiate, run a trivial guest, tear down);
//! - throughput: fresh-instance calls of `rules` over 2 KB messages on every core;
//! - load: loading a plugin from the compiled-artifact cache vs compiling it.
//!
//! The guest components are built from source first (`wasm32-wasip2`, profile `guest`).

use rules::{Probe, Rules};
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmail::message::{Envelope, Field, ParsedMessage};
use wasmail::sandbox::{Keep, PluginLimits, Runtime, RuntimeOptions};

const RULES: &str = r#"{"rules": [
  {"name": "lists", "when": {"header": "List-Id", "exists": true}, "then": [{"move_to": "Lists"}]},
  {"name": "boss", "when": {"field": "from", "equals": ["ceo@example.com", "cfo@example.com"]}, "then": [{"add_flag": "\\Flagged"}]},
  {"name": "billing", "when": {"field": "subject", "contains": ["invoice", "receipt"]}, "then": [{"tag": "billing"}]},
  {"name": "ticket", "when": {"field": "subject", "matches": "(?i)\\bticket #\\d+"}, "then": [{"tag": "support"}]},
  {"name": "unsubscribe", "when": {"field": "body", "contains": "unsubscribe-zq81"}, "then": [{"move_to": "Bulk"}]}
]}"#;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace")
        .to_path_buf()
}

fn target() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

/// Median of `rounds` timings of `f`, each over the whole input.
fn median(rounds: usize, mut f: impl FnMut() -> Duration) -> Duration {
    mid((0..rounds).map(|_| f()).collect())
}

fn mid(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn read_dir(dir: &Path) -> Vec<Vec<u8>> {
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| std::fs::read(p).expect("read"))
        .collect()
}

fn synthetic_corpus() -> Vec<Vec<u8>> {
    let dir = target().join("bench-corpus");
    if !dir.join("manifest.tsv").exists() {
        let status = std::process::Command::new("python3")
            .arg(root().join("host/benches/gen_corpus.py"))
            .arg(&dir)
            .args(["--seed", "42"])
            .status()
            .expect("python3 runs gen_corpus.py");
        assert!(status.success(), "gen_corpus.py failed");
    }
    read_dir(&dir)
}

fn bench_parse() {
    println!(
        "\n## parse: wasmail::message::parse vs bare mail-parser (the limit), same bytes, one thread"
    );
    println!(
        "| corpus | messages | MB | mail-parser msg/s | MB/s | wasmail msg/s | MB/s | ratio |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (name, messages) in [
        ("examples/corpus", read_dir(&root().join("examples/corpus"))),
        ("gen_corpus.py --seed 42", synthetic_corpus()),
    ] {
        let bytes: usize = messages.iter().map(Vec::len).sum();
        // Results are dropped outside the timing on both sides (dropping a large raw buffer is
        // an munmap, which belongs to whoever owns the message), and rounds alternate so that neither
        // side runs on a warmer machine.
        let (mut bares, mut ours) = (Vec::new(), Vec::new());
        for _ in 0..7 {
            let start = Instant::now();
            let parsed: Vec<_> = messages
                .iter()
                .map(|m| mail_parser::MessageParser::default().parse(m.as_slice()))
                .collect();
            bares.push(start.elapsed());
            drop(black_box(parsed));
            // The host receives raw mail as an owned buffer; the copy is made outside the timing.
            let owned: Vec<Vec<u8>> = messages.clone();
            let start = Instant::now();
            let parsed: Vec<_> = owned
                .into_iter()
                .map(|m| ParsedMessage::parse(m, Envelope::default()))
                .collect();
            ours.push(start.elapsed());
            drop(black_box(parsed));
        }
        let (bare, ours) = (mid(bares), mid(ours));
        let rate = |d: Duration| {
            (
                messages.len() as f64 / d.as_secs_f64(),
                bytes as f64 / 1e6 / d.as_secs_f64(),
            )
        };
        let (bm, bb) = rate(bare);
        let (om, ob) = rate(ours);
        println!(
            "| {name} | {} | {:.1} | {bm:.0} | {bb:.0} | {om:.0} | {ob:.0} | {:.2}x |",
            messages.len(),
            bytes as f64 / 1e6,
            om / bm
        );
    }
}

/// The same rules, natively: the rule engine of the `rules` plugin over the host's message.
struct Native<'a>(&'a ParsedMessage);

fn field(f: &wasmail_plugin::Field) -> Field {
    use wasmail_plugin::Field as W;
    match f {
        W::Header(h) => Field::Header(h.clone()),
        W::Subject => Field::Subject,
        W::From => Field::From,
        W::To => Field::To,
        W::Cc => Field::Cc,
        W::ReplyTo => Field::ReplyTo,
        W::TextBody => Field::TextBody,
        W::HtmlBody => Field::HtmlBody,
        W::Body => Field::Body,
        W::AttachmentNames => Field::AttachmentNames,
    }
}

impl Probe for Native<'_> {
    fn contains(&self, f: &wasmail_plugin::Field, needle: &str) -> bool {
        self.0.field_contains(&field(f), needle)
    }
    fn equals(&self, f: &wasmail_plugin::Field, value: &str) -> bool {
        self.0.field_equals(&field(f), value)
    }
    fn matches(&self, f: &wasmail_plugin::Field, pattern: &str) -> Result<bool, String> {
        self.0
            .field_matches(&field(f), pattern)
            .map_err(|e| e.to_string())
    }
    fn has_header(&self, name: &str) -> bool {
        self.0.header(name).is_some()
    }
}

/// A plain-text message of about `size` bytes whose body never contains the rules' needles.
fn message_of(size: usize) -> Vec<u8> {
    let mut raw = b"From: Someone <someone@example.org>\r\nTo: you@example.com\r\nSubject: Re: project status\r\n\
Message-ID: <bench@example.org>\r\nDate: Fri, 20 Nov 2026 09:30:00 +0000\r\n\
Content-Type: text/plain; charset=utf-8\r\n\r\n"
        .to_vec();
    let line =
        b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.\r\n";
    while raw.len() < size {
        raw.extend_from_slice(line);
    }
    raw
}

/// Builds the guest components the benchmarks run (cargo makes this a no-op when they are fresh).
fn build_guests() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let status = std::process::Command::new(cargo)
        .current_dir(root())
        .args([
            "build",
            "--target",
            "wasm32-wasip2",
            "--profile",
            "guest",
            "-p",
            "wasmail-rules",
        ])
        .args([
            "-p",
            "wasmail-test-hostile",
            "-p",
            "wasmail-test-noop",
            "-p",
            "wasmail-attachment-guard",
        ])
        .env_remove("RUSTFLAGS")
        .status()
        .expect("run cargo");
    assert!(status.success(), "building the guest components failed");
}

fn plugin_bytes(name: &str) -> Vec<u8> {
    let path = target()
        .join("wasm32-wasip2/guest")
        .join(format!("{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (build the plugins first: cargo plugins)",
            path.display()
        )
    })
}

fn runtime(cache: Option<PathBuf>) -> Runtime {
    Runtime::new(RuntimeOptions {
        cache_dir: cache,
        compiler_exe: env!("CARGO_BIN_EXE_wasmail").into(),
        ..RuntimeOptions::default()
    })
    .expect("runtime")
}

fn bench_filter() {
    println!(
        "\n## filter: rules plugin, production isolation (prepared, fresh instance per message, epochs, fuel, memory limit) vs the same rules natively"
    );
    println!("| message | native µs | wasm µs | ratio | overhead µs | wasm unprepared µs |");
    println!("|---|---|---|---|---|---|");
    let rt = runtime(None);
    let limits = PluginLimits {
        deadline_ms: 10_000,
        ..PluginLimits::default()
    };
    let bytes = plugin_bytes("rules");
    // Production runs a stage prepared for its configuration; the native baseline likewise parses
    // the rules once. The unprepared column re-parses the configuration in every call.
    let prepared = rt
        .prepare_blocking("tenant", &bytes, RULES, &limits, Keep::Cached)
        .expect("prepare rules");
    let unprepared = load(&rt, &bytes, &limits).expect("load rules");
    let rules = Rules::parse(RULES).expect("rules");
    let config: Arc<str> = RULES.into();
    for (label, size, n) in [
        ("2 KB", 2 << 10, 20_000),
        ("50 KB", 50 << 10, 4_000),
        ("1 MB", 1 << 20, 200),
        ("10 MB", 10 << 20, 20),
    ] {
        let raw = message_of(size);
        // Each call gets a freshly parsed message, so neither side profits from the other's
        // per-message caches (the folded body); parsing is outside the timing.
        let fresh = |count: usize| -> Vec<Arc<ParsedMessage>> {
            (0..count)
                .map(|_| Arc::new(ParsedMessage::parse(raw.clone(), Envelope::default())))
                .collect()
        };
        let batch = n.min(2_000);
        let per_call = |d: Duration| d.as_secs_f64() * 1e6 / batch as f64;
        // Each message is dropped after its call, as run_blocking drops its own.
        let native_round = || {
            let msgs = fresh(batch);
            let start = Instant::now();
            for m in msgs {
                black_box(rules.evaluate(&Native(&m)).expect("native rules"));
            }
            start.elapsed()
        };
        let prepared_round = || {
            let msgs = fresh(batch);
            let start = Instant::now();
            for m in msgs {
                black_box(
                    rt.run_prepared_blocking(&prepared, m, &limits)
                        .expect("rules plugin"),
                );
            }
            start.elapsed()
        };
        let unprepared_round = || {
            let msgs = fresh(batch);
            let start = Instant::now();
            for m in msgs {
                black_box(
                    rt.run_blocking(&unprepared, m, config.clone(), &limits)
                        .expect("rules plugin"),
                );
            }
            start.elapsed()
        };
        // Warm all up, then interleave rounds so no side runs on a cold allocator or caches another
        // side warmed.
        native_round();
        prepared_round();
        unprepared_round();
        let (mut natives, mut wasms, mut unprepareds) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..5 {
            natives.push(native_round());
            wasms.push(prepared_round());
            unprepareds.push(unprepared_round());
        }
        let (native, wasm, unprepared) = (
            per_call(mid(natives)),
            per_call(mid(wasms)),
            per_call(mid(unprepareds)),
        );
        println!(
            "| {label} | {native:.2} | {wasm:.2} | {:.2}x | {:.2} | {unprepared:.2} |",
            wasm / native,
            wasm - native
        );
    }
}

fn bench_empty_call() {
    println!("\n## fixed cost of one isolated call (instantiate, run, tear down), by guest");
    println!("| guest | imported interfaces | µs per call |\n|---|---|---|");
    let rt = runtime(None);
    let limits = PluginLimits::default();
    let raw = message_of(2 << 10);
    // The no-op guest is the floor; attachment-guard on a message without attachments does one host
    // call and parses an empty config; the hostile test guest links WASI filesystem and clocks too.
    for (name, config) in [
        ("test_noop", "null"),
        ("attachment_guard", "null"),
        ("test_hostile", r#"{"do": "ok"}"#),
    ] {
        let plugin = load(&rt, &plugin_bytes(name), &limits).expect("load guest");
        let config: Arc<str> = config.into();
        let batch = 20_000;
        let time = median(5, || {
            let msgs: Vec<_> = (0..batch)
                .map(|_| Arc::new(ParsedMessage::parse(raw.clone(), Envelope::default())))
                .collect();
            let start = Instant::now();
            for m in msgs {
                black_box(
                    rt.run_blocking(&plugin, m, config.clone(), &limits)
                        .expect("call"),
                );
            }
            start.elapsed()
        });
        println!(
            "| {name} | {} | {:.2} |",
            plugin.info().imports.len(),
            time.as_secs_f64() * 1e6 / batch as f64
        );
    }
}

fn bench_throughput() {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    println!("\n## throughput: rules plugin, fresh instance per 2 KB message, {threads} threads");
    let rt = runtime(None);
    let limits = PluginLimits::default();
    let prepared = rt
        .prepare_blocking(
            "tenant",
            &plugin_bytes("rules"),
            RULES,
            &limits,
            Keep::Cached,
        )
        .expect("prepare rules");
    let raw = message_of(2 << 10);
    let per_thread = 40_000;
    let rate = median(3, || {
        let start = Instant::now();
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| {
                    let msgs: Vec<_> = (0..per_thread)
                        .map(|_| Arc::new(ParsedMessage::parse(raw.clone(), Envelope::default())))
                        .collect();
                    for m in msgs {
                        black_box(
                            rt.run_prepared_blocking(&prepared, m, &limits)
                                .expect("rules plugin"),
                        );
                    }
                });
            }
        });
        start.elapsed()
    });
    // The parse of each message is inside the timing here: this is what a filter stage sustains.
    let total = (per_thread * threads) as f64;
    println!("| threads | messages | msgs/s (parse + filter) |\n|---|---|---|");
    println!(
        "| {threads} | {total:.0} | {:.0} |",
        total / rate.as_secs_f64()
    );
}

fn bench_load() {
    println!("\n## load: plugin from the compiled-artifact cache vs compiling it");
    let bytes = plugin_bytes("rules");
    let limits = PluginLimits::default();
    let dir = target().join("bench-artifact-cache");
    let _ = std::fs::remove_dir_all(&dir);
    let cold = median(5, || {
        let rt = runtime(None);
        let start = Instant::now();
        black_box(load(&rt, &bytes, &limits).expect("compile"));
        start.elapsed()
    });
    let rt = runtime(Some(dir));
    load(&rt, &bytes, &limits).expect("fill the cache");
    let warm = median(21, || {
        let start = Instant::now();
        black_box(load(&rt, &bytes, &limits).expect("cached load"));
        start.elapsed()
    });
    println!(
        "| component | compile (check + compile + link) | cached (check + load + link) | ratio |\n|---|---|---|---|"
    );
    println!(
        "| rules.wasm ({} KB) | {:.2} ms | {:.3} ms | {:.0}x faster |",
        bytes.len() / 1024,
        cold.as_secs_f64() * 1e3,
        warm.as_secs_f64() * 1e3,
        cold.as_secs_f64() / warm.as_secs_f64()
    );
    // Preparing for a configuration: instrument, run `prepare`, snapshot, compile — or the cache.
    let cold = median(3, || {
        let rt = runtime(None);
        let start = Instant::now();
        black_box(
            rt.prepare_blocking("tenant", &bytes, RULES, &limits, Keep::Cached)
                .expect("prepare"),
        );
        start.elapsed()
    });
    rt.prepare_blocking("tenant", &bytes, RULES, &limits, Keep::Cached)
        .expect("fill the cache");
    let warm = median(21, || {
        let start = Instant::now();
        black_box(
            rt.prepare_blocking("tenant", &bytes, RULES, &limits, Keep::Cached)
                .expect("cached prepare"),
        );
        start.elapsed()
    });
    println!(
        "| rules.wasm prepared for a config | {:.2} ms (prepare + snapshot + compile) | {:.3} ms | {:.0}x faster |",
        cold.as_secs_f64() * 1e3,
        warm.as_secs_f64() * 1e3,
        cold.as_secs_f64() / warm.as_secs_f64()
    );
}

fn main() {
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let wanted = |name: &str| filter.as_deref().is_none_or(|f| name.contains(f));
    build_guests();
    println!("# wasmail engine benchmarks (medians)");
    if wanted("parse") {
        bench_parse();
    }
    if wanted("filter") {
        bench_filter();
    }
    if wanted("empty") {
        bench_empty_call();
    }
    if wanted("throughput") {
        bench_throughput();
    }
    if wanted("load") {
        bench_load();
    }
}

/// Loads (compiling in a worker process, or from the cache) from the synchronous bench code.
fn load(
    rt: &Runtime,
    bytes: &[u8],
    limits: &PluginLimits,
) -> Result<wasmail::sandbox::Plugin, wasmail::sandbox::LoadError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio")
        .block_on(rt.load("bench", bytes, limits))
}
