//! The job queue's own cost: empty jobs claimed and completed per second, by 1 and by 2 worker
//! processes' worth of runners (two stores on one SQLite file, as two nodes), 4 worker loops each.
//!
//!     cargo bench -p wasmail --bench queue
//!
//! Each configuration drains the same number of fresh jobs; the figure is jobs / wall time from the
//! first claim to the last completion, and the ratio is against one node in the same run.

use futures_util::future::BoxFuture;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use wasmail::domain::{NodeId, TenantId};
use wasmail::queue::{Handler, JobContext, Outcome, QueueOptions, Runner};
use wasmail::store::{JobRow, JobState, NewJob, Store, now_ms};

const JOBS: usize = 3_000;

struct Empty;

impl Handler for Empty {
    fn kind(&self) -> &'static str {
        "empty"
    }
    fn run<'a>(&'a self, _job: &'a JobRow, _ctx: &'a JobContext) -> BoxFuture<'a, Outcome> {
        Box::pin(async { Outcome::Done })
    }
}

async fn open(dir: &std::path::Path) -> Store {
    let store = Store::connect(None, dir).await.expect("connect");
    store.migrate().await.expect("migrate");
    store
}

async fn drain(nodes: usize) -> f64 {
    let dir = tempfile::tempdir().expect("dir");
    let mut stores = Vec::new();
    for _ in 0..nodes {
        stores.push(open(dir.path()).await);
    }
    for i in 0..JOBS {
        stores[0]
            .enqueue(&NewJob {
                tenant: TenantId::new(format!("t{}", i % 8)),
                kind: "empty".into(),
                payload: serde_json::json!({}),
                run_at: now_ms(),
                max_attempts: 3,
                idempotency_key: None,
            })
            .await
            .expect("enqueue");
    }
    let options = QueueOptions {
        workers: 4,
        idle_poll: Duration::from_millis(5),
        per_tenant: 64,
        ..QueueOptions::default()
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let started = Instant::now();
    let tasks: Vec<_> = stores
        .iter()
        .enumerate()
        .map(|(i, store)| {
            let runner = Runner::new(
                store.clone(),
                NodeId::new(format!("node{i}")),
                options,
                vec![Arc::new(Empty)],
            );
            let stop = stop_rx.clone();
            tokio::spawn(async move { runner.run(stop).await })
        })
        .collect();
    while (stores[0]
        .count_jobs(JobState::Completed)
        .await
        .expect("count") as usize)
        < JOBS
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let elapsed = started.elapsed();
    let _ = stop_tx.send(true);
    for t in tasks {
        t.await.expect("runner");
    }
    JOBS as f64 / elapsed.as_secs_f64()
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let one = drain(1).await;
        let two = drain(2).await;
        println!("queue: {JOBS} empty jobs, 4 worker loops per node, SQLite");
        println!("  1 node : {one:>8.0} jobs/s (baseline)");
        println!("  2 nodes: {two:>8.0} jobs/s ({:.2}x)", two / one);
    });
}
