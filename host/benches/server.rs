//! Server benchmarks: the whole API on SQLite, driven over HTTP, each against a named baseline
//! measured in the same run.
//!
//!     cargo bench --workspace --bench server            # everything
//!     cargo bench --workspace --bench server -- pipeline
//!     cargo bench --workspace --bench server -- list    # needs wrk (apt-get install wrk)
//!
//! Sections:
//! - pipeline: import → parse → 3-stage filter pipeline (rules, spam-score, attachment-guard, with
//!   the golden configurations) through the API over `examples/corpus` + `examples/messages`,
//!   end to end, with where the time goes; baseline: the same three prepared plugins called directly
//!   on the engine over the same parsed messages (no HTTP, no database).
//! - list: `GET /v1/messages` under wrk at concurrency 64 (requests/s, p99); baseline: `GET /health`
//!   under the same load (the HTTP stack alone, no auth and no query).

#[path = "../tests/common/fixtures.rs"]
mod fixtures;

use fixtures::{corpus_and_samples, guest, workspace_root};
use serde_json::{Value, json};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmail::config::Config;
use wasmail::message::{Envelope, ParsedMessage};
use wasmail::sandbox::{Keep, PluginLimits, Runtime, RuntimeOptions};
use wasmail::server::Application;

// As the `wasmail` binary does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ADMIN: &str = "bench-admin-token-0123456789abcdef";
const PLUGINS: [(&str, &str); 3] = [
    ("rules", "rules"),
    ("spam-score", "spam_score"),
    ("attachment-guard", "attachment_guard"),
];
/// How many imports are in flight at once (an importer with a few connections).
const IMPORT_CONCURRENCY: usize = 8;

struct Server {
    base: String,
    client: reqwest::Client,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

async fn start() -> Server {
    let dir = tempfile::tempdir().expect("dir");
    let config = Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        data_dir: dir.path().to_path_buf(),
        admin_token: Some(ADMIN.to_string().into()),
        compiler_exe: Some(env!("CARGO_BIN_EXE_wasmail").into()),
        ..Config::default()
    };
    let app = Application::build(&config).await.expect("build");
    let base = format!("http://{}", app.local_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        app.run_until(async {
            let _ = stopped.await;
        })
        .await
        .expect("serve");
    });
    Server {
        base,
        client: reqwest::Client::new(),
        stop,
        task,
        _dir: dir,
    }
}

impl Server {
    async fn call(
        &self,
        method: reqwest::Method,
        token: &str,
        path: &str,
        body: Option<Value>,
    ) -> Value {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.expect("send");
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{path}: {status} {body}");
        body
    }

    async fn tenant_token(&self) -> String {
        let t = self
            .call(
                reqwest::Method::POST,
                ADMIN,
                "/v1/admin/tenants",
                Some(json!({"name": "bench"})),
            )
            .await;
        let id = t["id"].as_str().expect("id");
        let token = self
            .call(
                reqwest::Method::POST,
                ADMIN,
                &format!("/v1/admin/tenants/{id}/tokens"),
                Some(json!({})),
            )
            .await;
        token["token"].as_str().expect("token").to_string()
    }

    async fn upload_plugins(&self, token: &str) {
        for (name, file) in PLUGINS {
            let resp = self
                .client
                .post(format!("{}/v1/plugins/{name}/versions", self.base))
                .bearer_auth(token)
                .header("Content-Type", "application/wasm")
                .body(guest(file))
                .send()
                .await
                .expect("upload");
            assert_eq!(resp.status(), 201, "upload {name}");
        }
    }

    async fn import_all(&self, token: &str, messages: &[Vec<u8>]) -> Vec<Value> {
        use futures_util::StreamExt;
        futures_util::stream::iter(messages.iter().cloned())
            .map(|raw| {
                let req = self
                    .client
                    .post(format!("{}/v1/messages", self.base))
                    .bearer_auth(token)
                    .header("Content-Type", "message/rfc822")
                    .body(raw);
                async move {
                    let resp = req.send().await.expect("import");
                    assert_eq!(resp.status(), 201);
                    resp.json::<Value>().await.expect("json")
                }
            })
            .buffered(IMPORT_CONCURRENCY)
            .collect()
            .await
    }

    /// Waits for a run to complete; returns it with up to `results` results.
    async fn wait_run(&self, token: &str, id: &str, results: u32) -> Value {
        loop {
            let run = self
                .call(
                    reqwest::Method::GET,
                    token,
                    &format!("/v1/runs/{id}?results_limit={results}"),
                    None,
                )
                .await;
            if matches!(
                run["status"].as_str(),
                Some("completed" | "failed" | "cancelled")
            ) {
                assert_eq!(run["status"], "completed", "{run}");
                return run;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

fn golden_config(plugin: &str) -> Value {
    let path = workspace_root().join(format!("host/tests/golden/{plugin}.config.json"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect("golden config")).expect("json")
}

fn stages() -> Value {
    Value::Array(
        PLUGINS
            .iter()
            .map(|(name, _)| json!({"plugin": name, "version": 1, "config": golden_config(name)}))
            .collect(),
    )
}

fn rate(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

/// Import without HTTP: parse, store and index each message straight through the store, one at a
/// time (what the import endpoint does after reading the body).
async fn store_only(messages: &[Vec<u8>]) -> Duration {
    let dir = tempfile::tempdir().expect("dir");
    let store = wasmail::store::Store::connect(None, dir.path())
        .await
        .expect("store");
    store.migrate().await.expect("migrate");
    let tenant = store
        .create_tenant("bench", &PluginLimits::default())
        .await
        .expect("tenant");
    let started = Instant::now();
    for raw in messages {
        wasmail::pipeline::ingest::import(&store, &tenant.id, raw.clone(), "INBOX")
            .await
            .expect("import");
    }
    let elapsed = started.elapsed();
    store.close().await;
    elapsed
}

/// The baseline: the same three prepared plugins, called on the engine directly over parsed
/// messages on every core (what the pipeline costs without HTTP, storage and scheduling).
fn engine_only(messages: &[Vec<u8>]) -> Duration {
    let runtime = Runtime::new(RuntimeOptions {
        compiler_exe: env!("CARGO_BIN_EXE_wasmail").into(),
        ..RuntimeOptions::default()
    })
    .expect("runtime");
    let limits = PluginLimits::default();
    let prepared: Vec<_> = PLUGINS
        .iter()
        .map(|(name, file)| {
            runtime
                .prepare_blocking(
                    "tenant",
                    &guest(file),
                    &golden_config(name).to_string(),
                    &limits,
                    Keep::Cached,
                )
                .expect("prepare")
        })
        .collect();
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for t in 0..threads {
            let (runtime, prepared, limits) = (&runtime, &prepared, &limits);
            scope.spawn(move || {
                for raw in messages.iter().skip(t).step_by(threads) {
                    let message = Arc::new(ParsedMessage::parse(raw.clone(), Envelope::default()));
                    for stage in prepared {
                        let _ = runtime.run_prepared_blocking(stage, message.clone(), limits);
                    }
                }
            });
        }
    });
    started.elapsed()
}

async fn bench_pipeline() {
    let messages: Vec<Vec<u8>> = corpus_and_samples()
        .into_iter()
        .map(|(_, raw)| raw)
        .collect();
    let n = messages.len();
    let bytes: usize = messages.iter().map(Vec::len).sum();
    println!(
        "\n## pipeline: {n} messages ({:.1} MB), 3 stages (rules, spam-score, attachment-guard)",
        bytes as f64 / 1e6
    );

    // Short runs on a noisy 2-core machine: the median of five.
    // On a thread of its own: the engine's blocking calls may not run on an async worker thread.
    let mut rounds: Vec<Duration> = std::thread::scope(|scope| {
        scope
            .spawn(|| (0..5).map(|_| engine_only(&messages)).collect())
            .join()
            .expect("engine-only rounds")
    });
    rounds.sort();
    let baseline = rounds[2];
    let store_only = store_only(&messages).await;

    // 1. Import alone (parse, store byte-exact, index): no pipeline.
    let server = start().await;
    let token = server.tenant_token().await;
    server.upload_plugins(&token).await;
    let started = Instant::now();
    server.import_all(&token, &messages).await;
    let import_only = started.elapsed();

    // 2. A run of the pipeline over everything stored (load, parse, 3 stages, apply, record).
    let pipeline = server
        .call(
            reqwest::Method::POST,
            &token,
            "/v1/pipelines",
            Some(json!({"name": "triage", "stages": stages()})),
        )
        .await;
    let pid = pipeline["id"].as_str().expect("id");
    let started = Instant::now();
    let run = server
        .call(
            reqwest::Method::POST,
            &token,
            &format!("/v1/pipelines/{pid}/runs"),
            Some(json!({"all": true})),
        )
        .await;
    let run = server
        .wait_run(&token, run["id"].as_str().expect("id"), 1000)
        .await;
    let run_time = started.elapsed();
    let mut plugin_us = [0u64; 3];
    for item in run["results"].as_array().expect("results") {
        for (i, stage) in item["stages"]
            .as_array()
            .expect("stages")
            .iter()
            .enumerate()
        {
            plugin_us[i] += stage["duration_us"].as_u64().unwrap_or(0);
        }
    }
    server.stop().await;

    // 3. End to end: a fresh server whose pipeline runs on import; from the first import until
    //    every import's run has completed.
    let server = start().await;
    let token = server.tenant_token().await;
    server.upload_plugins(&token).await;
    server
        .call(
            reqwest::Method::POST,
            &token,
            "/v1/pipelines",
            Some(json!({"name": "triage", "on_import": true, "stages": stages()})),
        )
        .await;
    let started = Instant::now();
    let imported = server.import_all(&token, &messages).await;
    let mut runs: Vec<&str> = imported
        .iter()
        .flat_map(|m| {
            m["runs"]
                .as_array()
                .expect("runs")
                .iter()
                .filter_map(Value::as_str)
        })
        .collect();
    runs.dedup(); // a burst of imports joins the queued import run
    for run in &runs {
        server.wait_run(&token, run, 0).await;
    }
    let end_to_end = started.elapsed();
    server.stop().await;
    let import_runs = runs.len();

    println!("| | msg/s | time |");
    println!("|---|---|---|");
    println!(
        "| baseline: engine only (3 prepared plugins, parse included, all cores) | {:.0} | {:.2} s |",
        rate(n, baseline),
        baseline.as_secs_f64()
    );
    println!(
        "| store only (parse, store, index; no HTTP), one at a time | {:.0} | {:.2} s |",
        rate(n, store_only),
        store_only.as_secs_f64()
    );
    println!(
        "| import only (HTTP, parse, store, index), {IMPORT_CONCURRENCY} in flight | {:.0} | {:.2} s |",
        rate(n, import_only),
        import_only.as_secs_f64()
    );
    println!(
        "| run over stored mail (load, parse, 3 stages, apply, record) | {:.0} | {:.2} s |",
        rate(n, run_time),
        run_time.as_secs_f64()
    );
    println!(
        "| **end to end: import with an on-import pipeline, until every run completed** | **{:.0}** | {:.2} s |",
        rate(n, end_to_end),
        end_to_end.as_secs_f64()
    );
    println!(
        "(the on-import pipeline made {import_runs} runs: imports arriving while a run executes join the next one)"
    );
    println!(
        "ratio end to end / engine only: {:.2}x the time",
        end_to_end.as_secs_f64() / baseline.as_secs_f64()
    );
    let plugin_total: u64 = plugin_us.iter().sum();
    println!(
        "where the run's time goes: plugin calls {:.2} s of call time in all (rules {:.2}, spam-score {:.2}, attachment-guard {:.2}; calls overlap on {} cores) in a {:.2} s run",
        plugin_total as f64 / 1e6,
        plugin_us[0] as f64 / 1e6,
        plugin_us[1] as f64 / 1e6,
        plugin_us[2] as f64 / 1e6,
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2),
        run_time.as_secs_f64()
    );
}

/// Runs wrk against `url`; returns (requests/s, p99 latency text).
fn wrk(url: &str, token: Option<&str>) -> Option<(f64, String)> {
    let mut cmd = Command::new("wrk");
    cmd.args(["-t2", "-c64", "-d10s", "--latency"]);
    if let Some(token) = token {
        cmd.args(["-H", &format!("Authorization: Bearer {token}")]);
    }
    let output = cmd.arg(url).output().ok()?;
    let text = String::from_utf8_lossy(&output.stdout).to_string();
    let rps = text
        .lines()
        .find(|l| l.starts_with("Requests/sec:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    let p99 = text
        .lines()
        .find(|l| l.trim_start().starts_with("99%"))?
        .split_whitespace()
        .nth(1)?
        .to_string();
    if text.contains("Non-2xx") {
        eprintln!("wrk saw errors:\n{text}");
    }
    Some((rps, p99))
}

async fn bench_list() {
    let messages: Vec<Vec<u8>> = corpus_and_samples()
        .into_iter()
        .map(|(_, raw)| raw)
        .collect();
    println!(
        "\n## list: GET /v1/messages (page of 50 of {} messages), wrk -t2 -c64 -d10s",
        messages.len()
    );
    if Command::new("wrk").arg("--version").output().is_err() {
        println!("wrk is not installed (apt-get install wrk); skipped");
        return;
    }
    let server = start().await;
    let token = server.tenant_token().await;
    server.import_all(&token, &messages).await;
    let base = server.base.clone();
    let (health, list) = tokio::task::spawn_blocking(move || {
        let health = wrk(&format!("{base}/health"), None);
        let list = wrk(&format!("{base}/v1/messages"), Some(&token));
        (health, list)
    })
    .await
    .expect("wrk");
    server.stop().await;
    let (Some((h_rps, h_p99)), Some((l_rps, l_p99))) = (health, list) else {
        println!("wrk output could not be read; skipped");
        return;
    };
    println!("| | requests/s | p99 |");
    println!("|---|---|---|");
    println!("| baseline: GET /health (HTTP stack alone) | {h_rps:.0} | {h_p99} |");
    println!(
        "| GET /v1/messages (JWT check, tenant lookup, page query, JSON) | {l_rps:.0} | {l_p99} |"
    );
    println!("ratio: {:.2}x the health check's throughput", l_rps / h_rps);
}

fn main() {
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let wanted = |name: &str| filter.as_deref().is_none_or(|f| name.contains(f));
    fixtures::guest_dir();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!("# wasmail server benchmarks");
    rt.block_on(async {
        if wanted("pipeline") {
            bench_pipeline().await;
        }
        if wanted("list") {
            bench_list().await;
        }
    });
}
