//! The queue against a real database — SQLite, or PostgreSQL when `WASMAIL_TEST_DATABASE` is set:
//! two stores on one database stand for two processes.

use super::{Handler, JobContext, Outcome, QueueOptions, Runner};
use crate::domain::{NodeId, TenantId};
use crate::store::{ClaimPolicy, Claimed, JobRow, JobState, NewJob, Store, now_ms};
use futures_util::future::BoxFuture;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::watch;

const KIND: &str = "test";

/// A data dir and, on PostgreSQL, the test's own database.
struct TestDir {
    dir: tempfile::TempDir,
    db: Option<crate::store::testing::TestDatabase>,
}

impl TestDir {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("dir"),
            db: crate::store::testing::TestDatabase::create(),
        }
    }

    /// A store on the test's database (another call: another process's view of the same one).
    async fn store(&self) -> Store {
        let store = crate::store::testing::open_store(self.dir.path(), self.db.as_ref()).await;
        // The tenants the tests queue jobs for (their rows must exist: foreign keys on PostgreSQL).
        for tenant in ["t", "u", "busy", "quiet"] {
            crate::store::on_pool!(store, |c| {
                sqlx::query(
                    "INSERT INTO tenants (id, name, limits, created_at) VALUES ($1, $1, '{}', 0) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(tenant)
                .execute(c)
                .await
                .expect("tenant");
            });
        }
        store
    }
}

/// One claim of a job of the test kind by `node`.
async fn claim(store: &Store, node: &str, policy: ClaimPolicy) -> Option<Claimed> {
    store
        .claim_job(&NodeId::new(node), &[KIND], policy)
        .await
        .expect("claim")
}

fn job(tenant: &str, max_attempts: i64) -> NewJob {
    NewJob {
        tenant: TenantId::new(tenant),
        kind: KIND.into(),
        payload: serde_json::json!({}),
        run_at: now_ms(),
        max_attempts,
        idempotency_key: None,
    }
}

fn options(workers: usize) -> QueueOptions {
    QueueOptions {
        workers,
        lease: Duration::from_secs(30),
        idle_poll: Duration::from_millis(20),
        per_tenant: 64,
        backoff_base: Duration::from_millis(1),
        backoff_max: Duration::from_millis(5),
    }
}

/// Records every attempt: how many holders each job has at once, and how often it ran.
#[derive(Default)]
struct Recorder {
    running: Mutex<HashMap<String, usize>>,
    runs: Mutex<HashMap<String, usize>>,
    overlaps: Mutex<usize>,
    fail: AtomicBool,
}

struct Recording(Arc<Recorder>);

impl Handler for Recording {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn run<'a>(&'a self, job: &'a JobRow, _ctx: &'a JobContext) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let r = &self.0;
            {
                let mut running = r.running.lock();
                let n = running.entry(job.id.clone()).or_default();
                *n += 1;
                if *n > 1 {
                    *r.overlaps.lock() += 1;
                }
            }
            // Long enough for the other node to try the same job meanwhile.
            tokio::time::sleep(Duration::from_millis(2)).await;
            *r.running.lock().get_mut(&job.id).expect("entry") -= 1;
            *r.runs.lock().entry(job.id.clone()).or_default() += 1;
            if r.fail.load(Ordering::SeqCst) {
                Outcome::Retry(format!("attempt {} failed", job.attempts))
            } else {
                Outcome::Done
            }
        })
    }
}

async fn run_until_idle(runners: &[Runner], store: &Store, ids: &[String], tenant: &TenantId) {
    let (stop_tx, stop_rx) = watch::channel(false);
    let tasks: Vec<_> = runners
        .iter()
        .map(|r| {
            let (r, stop) = (r.clone(), stop_rx.clone());
            tokio::spawn(async move { r.run(stop).await })
        })
        .collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let mut open = 0;
        for id in ids {
            let state = store.job(tenant, id).await.expect("job").state;
            if matches!(state, JobState::Queued | JobState::Running) {
                open += 1;
            }
        }
        if open == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{open} jobs never ended"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = stop_tx.send(true);
    for t in tasks {
        t.await.expect("runner stopped");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_racing_for_the_same_jobs_never_run_one_twice() {
    let dir = TestDir::new();
    // Two pools on one file: as two processes would be.
    let (a, b) = (dir.store().await, dir.store().await);
    let tenant = TenantId::new("t");
    let mut ids = Vec::new();
    for _ in 0..200 {
        ids.push(a.enqueue(&job("t", 3)).await.expect("enqueue").id);
    }
    let recorder = Arc::new(Recorder::default());
    let runners = [
        Runner::new(
            a.clone(),
            NodeId::new("a"),
            options(4),
            vec![Arc::new(Recording(recorder.clone()))],
        ),
        Runner::new(
            b.clone(),
            NodeId::new("b"),
            options(4),
            vec![Arc::new(Recording(recorder.clone()))],
        ),
    ];
    run_until_idle(&runners, &a, &ids, &tenant).await;
    assert_eq!(
        *recorder.overlaps.lock(),
        0,
        "a job had two holders at once"
    );
    // Copied out so no lock is held across the awaits below.
    let runs = recorder.runs.lock().clone();
    for id in &ids {
        assert_eq!(
            runs.get(id),
            Some(&1),
            "job {id} ran {:?} times",
            runs.get(id)
        );
        assert_eq!(
            a.job(&tenant, id).await.expect("job").state,
            JobState::Completed
        );
    }
}

#[tokio::test]
async fn a_job_that_keeps_failing_is_dead_after_its_attempts_and_retry_revives_it() {
    let dir = TestDir::new();
    let store = dir.store().await;
    let tenant = TenantId::new("t");
    let id = store.enqueue(&job("t", 3)).await.expect("enqueue").id;
    let recorder = Arc::new(Recorder::default());
    recorder.fail.store(true, Ordering::SeqCst);
    let runner = Runner::new(
        store.clone(),
        NodeId::new("a"),
        options(1),
        vec![Arc::new(Recording(recorder.clone()))],
    );
    run_until_idle(
        std::slice::from_ref(&runner),
        &store,
        std::slice::from_ref(&id),
        &tenant,
    )
    .await;
    let dead = store.job(&tenant, &id).await.expect("job");
    assert_eq!(dead.state, JobState::Dead);
    assert_eq!(recorder.runs.lock()[&id], 3, "exactly its three attempts");
    let error = dead.last_error.expect("its last error");
    assert!(
        error.contains("attempt 3 failed") && error.contains("after 3 attempts"),
        "{error}"
    );

    // Only a dead job can be retried; this one comes back and, once it works, completes.
    let retried = store.retry_job(&tenant, &id).await.expect("retry");
    assert_eq!((retried.state, retried.attempts), (JobState::Queued, 0));
    recorder.fail.store(false, Ordering::SeqCst);
    run_until_idle(
        std::slice::from_ref(&runner),
        &store,
        std::slice::from_ref(&id),
        &tenant,
    )
    .await;
    assert_eq!(
        store.job(&tenant, &id).await.expect("job").state,
        JobState::Completed
    );
    assert_eq!(recorder.runs.lock()[&id], 4);
    assert!(
        store.retry_job(&tenant, &id).await.is_err(),
        "a completed job is not retried"
    );
}

#[tokio::test]
async fn a_live_lease_is_never_taken_and_an_expired_one_is_fenced_off() {
    let dir = TestDir::new();
    let store = dir.store().await;
    let tenant = TenantId::new("t");
    store.enqueue(&job("t", 5)).await.expect("enqueue");
    let short = ClaimPolicy {
        lease_ms: 300,
        per_tenant: 8,
    };
    let first = claim(&store, "a", short).await.expect("a job");
    assert!(!first.interrupted);
    // A node starting now finds nothing to take: the lease is live.
    assert!(claim(&store, "b", short).await.is_none());
    tokio::time::sleep(Duration::from_millis(400)).await;
    let second = claim(&store, "b", short)
        .await
        .expect("the expired lease is reclaimed");
    assert!(second.interrupted, "the new holder knows it resumes");
    assert!(second.lease.token > first.lease.token);
    // The first holder woke up late: nothing it does counts.
    assert!(!store.renew_lease(&first.lease, 300).await.expect("renew"));
    assert!(!store.complete_job(&first.lease).await.expect("complete"));
    assert!(store.complete_job(&second.lease).await.expect("complete"));
    let done = store.job(&tenant, &first.job.id).await.expect("job");
    assert_eq!((done.state, done.resumed), (JobState::Completed, 1));
}

#[tokio::test]
async fn a_job_whose_node_vanished_on_its_last_attempt_is_dead_even_when_nothing_else_waits() {
    let dir = TestDir::new();
    let store = dir.store().await;
    let tenant = TenantId::new("t");
    let id = store.enqueue(&job("t", 1)).await.expect("enqueue").id;
    let short = ClaimPolicy {
        lease_ms: 100,
        per_tenant: 8,
    };
    let first = claim(&store, "a", short).await.expect("a job");
    // Node a vanishes; its lease runs out (a lower bound on time passing, not a wait for work).
    tokio::time::sleep(Duration::from_millis(250)).await;
    // The only job is buried, not claimed: the claim finds nothing, and the burial sticks.
    assert!(claim(&store, "b", short).await.is_none());
    let dead = store.job(&tenant, &id).await.expect("job");
    assert_eq!(dead.state, JobState::Dead);
    assert!(
        dead.last_error
            .as_deref()
            .unwrap_or_default()
            .contains("lease expired"),
        "{:?}",
        dead.last_error
    );
    assert!(!store.complete_job(&first.lease).await.expect("complete"));
}

#[tokio::test]
async fn claims_serve_the_tenant_with_the_least_running_first_and_cap_each_tenant() {
    let dir = TestDir::new();
    let store = dir.store().await;
    for _ in 0..5 {
        store.enqueue(&job("busy", 5)).await.expect("enqueue");
    }
    store.enqueue(&job("quiet", 5)).await.expect("enqueue");
    let kinds = [KIND];
    let policy = ClaimPolicy {
        lease_ms: 30_000,
        per_tenant: 2,
    };
    let mut tenants = Vec::new();
    while let Some(claimed) = claim(&store, "a", policy).await {
        tenants.push(claimed.job.tenant.to_string());
    }
    // busy's first job is oldest; then quiet (nothing running) goes before busy's second; then
    // busy reaches its cap of 2 and nothing more is handed out.
    assert_eq!(tenants, ["busy", "quiet", "busy"]);
    assert!(
        store
            .others_waiting(&TenantId::new("quiet"), &kinds, 8)
            .await
            .expect("look")
    );
    assert!(
        !store
            .others_waiting(&TenantId::new("busy"), &kinds, 8)
            .await
            .expect("look")
    );
}

#[tokio::test]
async fn an_idempotency_key_queues_a_job_once_per_tenant_and_kind() {
    let dir = TestDir::new();
    let store = dir.store().await;
    let keyed = |tenant: &str| NewJob {
        idempotency_key: Some("once".into()),
        ..job(tenant, 3)
    };
    let first = store.enqueue(&keyed("t")).await.expect("enqueue");
    let again = store.enqueue(&keyed("t")).await.expect("enqueue");
    let other = store.enqueue(&keyed("u")).await.expect("enqueue");
    assert_eq!(first.id, again.id);
    assert_ne!(first.id, other.id, "keys are per tenant");
}

#[tokio::test]
async fn pruning_drops_finished_jobs_past_retention_and_keeps_dead_and_pending_ones() {
    let dir = TestDir::new();
    let store = dir.store().await;
    let tenant = TenantId::new("t");
    let policy = ClaimPolicy {
        lease_ms: 30_000,
        per_tenant: 8,
    };
    let mut ids = HashMap::new();
    for name in ["completed", "cancelled", "dead", "running", "queued"] {
        ids.insert(name, store.enqueue(&job("t", 1)).await.expect("enqueue").id);
    }
    // Claims take the oldest first: completed, then dead, then running.
    let claimed = claim(&store, "a", policy).await.expect("job");
    assert!(store.complete_job(&claimed.lease).await.expect("complete"));
    store
        .cancel_job(&tenant, &ids["cancelled"])
        .await
        .expect("cancel");
    let claimed = claim(&store, "a", policy).await.expect("job");
    assert!(
        store
            .bury_job(&claimed.lease, "broken")
            .await
            .expect("bury")
    );
    claim(&store, "a", policy).await.expect("job");
    // Nothing is old enough yet.
    assert_eq!(
        store
            .prune_jobs(now_ms() - 60_000, 100)
            .await
            .expect("prune"),
        0
    );
    // Everything finished before now is past a retention of zero.
    assert_eq!(store.prune_jobs(now_ms() + 1, 100).await.expect("prune"), 2);
    for (name, id) in &ids {
        let found = store.job(&tenant, id).await;
        match *name {
            "completed" | "cancelled" => assert!(found.is_err(), "{name} was kept"),
            _ => assert_eq!(found.expect("kept").state.as_str(), *name),
        }
    }
}
