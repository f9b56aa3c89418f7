//! The job queue through the API and real processes: nodes sharing one database, a node killed
//! mid-run, a job that dies and is retried, and fairness between tenants.

use crate::helpers::*;
use crate::restart::{completes_exactly_once, run_state, slow_run_in_progress};
use serde_json::{Value, json};
use std::time::Duration;

async fn job_of(app: &TestApp, t: &Tenant, rid: &str) -> Value {
    let run = run_state(app, t, rid).await;
    let job = run["job_id"].as_str().expect("a run names its job");
    expect_json(app.get(&t.token, &format!("/v1/jobs/{job}")).await, 200).await
}

/// Polls `check` every 50 ms until it returns something, for at most `secs`.
async fn until<T, F: Future<Output = Option<T>>>(
    secs: u64,
    what: &str,
    mut check: impl FnMut() -> F,
) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A server whose run's job died: one attempt allowed, the node SIGKILLed mid-run, a new node
/// started over the same data, and the job found dead once the old lease ran out.
struct DeadRun {
    server: ServerProcess,
    app: TestApp,
    t: Tenant,
    rid: String,
    dead: Value,
}

async fn dead_run(dir: &std::path::Path) -> DeadRun {
    let one_attempt = [("WASMAIL_JOB_MAX_ATTEMPTS", "1")];
    let mut server = start_node(dir, Some(ADMIN), &one_attempt).await;
    let (t, rid) = slow_run_in_progress(&server).await;
    server.child.kill().expect("SIGKILL");
    server.child.wait().expect("reaped");

    let server = start_node(dir, Some(ADMIN), &one_attempt).await;
    let app = TestApp::remote(server.app.base.clone());
    let dead = until(60, "the job to be dead", || {
        let (app, t) = (&app, &t);
        async move {
            let page = expect_json(app.get(&t.token, "/v1/jobs?status=dead").await, 200).await;
            page["items"]
                .as_array()
                .and_then(|items| items.first().cloned())
        }
    })
    .await;
    DeadRun {
        server,
        app,
        t,
        rid,
        dead,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_run_is_taken_over_by_another_and_every_effect_happens_once() {
    let dir = test_dir();
    // An API-only node and two worker nodes on one SQLite file.
    let api = start_node(dir.path(), Some(ADMIN), &[("WASMAIL_WORKER", "false")]).await;
    let mut workers = [start_worker(dir.path(), &[]), start_worker(dir.path(), &[])];
    let (t, rid) = slow_run_in_progress(&api).await;

    let job = job_of(&api.app, &t, &rid).await;
    assert_eq!(job["status"], "running", "{job}");
    let holder = job["lease"]["node"]
        .as_str()
        .expect("the holder")
        .to_string();
    let nodes = expect_json(api.app.get(ADMIN, "/v1/admin/nodes").await, 200).await;
    let nodes = nodes.as_array().expect("nodes");
    assert_eq!(nodes.len(), 3, "{nodes:?}");
    assert!(nodes.iter().all(|n| n["alive"] == true), "{nodes:?}");
    let api_node = nodes
        .iter()
        .find(|n| n["roles"] == json!(["api"]))
        .expect("the API node");
    assert_eq!(
        api_node["running_jobs"], 0,
        "an API-only node executes nothing"
    );
    let pid = nodes
        .iter()
        .find(|n| n["id"] == holder.as_str())
        .and_then(|n| n["pid"].as_u64())
        .expect("the holder is a registered node");
    let (killed, survivor) = if u64::from(workers[0].id()) == pid {
        (0, 1)
    } else {
        (1, 0)
    };
    assert_eq!(
        u64::from(workers[killed].id()),
        pid,
        "the holder is one of the workers"
    );
    workers[killed].kill().expect("SIGKILL");
    workers[killed].wait().expect("reaped");
    let killed_at = chrono::Utc::now().timestamp_millis();
    // The lease as the killed node last renewed it: nobody may take the job before it runs out.
    let pool = open_database(dir.path()).await;
    let job_id = job["id"].as_str().expect("job id");
    let (expires_at,): (i64,) = sqlx::query_as("SELECT lease_expires_at FROM jobs WHERE id = $1")
        .bind(job_id)
        .fetch_one(&pool)
        .await
        .expect("the lease");

    // The survivor takes the job over once the lease expires, and finishes the run.
    completes_exactly_once(&api, &t, &rid).await;
    let (early,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM run_items WHERE run_id = $1 AND done_at > $2 AND done_at < $3",
    )
    .bind(&rid)
    .bind(killed_at)
    .bind(expires_at)
    .fetch_one(&pool)
    .await
    .expect("count");
    pool.close().await;
    assert_eq!(
        early, 0,
        "items were processed while the dead node's lease still lived"
    );
    let job = job_of(&api.app, &t, &rid).await;
    assert_eq!(job["status"], "completed", "{job}");
    assert!(job["resumed"].as_i64().expect("resumed") >= 1, "{job}");

    signal(&workers[survivor], "TERM");
    assert!(
        workers[survivor].wait().expect("exit").success(),
        "the worker stops cleanly on SIGTERM"
    );
    let nodes = expect_json(api.app.get(ADMIN, "/v1/admin/nodes").await, 200).await;
    let stopped = nodes
        .as_array()
        .expect("nodes")
        .iter()
        .filter(|n| n["stopped_at"].is_string())
        .count();
    assert_eq!(
        stopped, 1,
        "the stopped worker says so; the killed one could not: {nodes}"
    );
    let mut api = api;
    signal(&api.child, "TERM");
    assert!(api.child.wait().expect("exit").success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_node_died_on_its_last_attempt_is_dead_until_retried() {
    let dir = test_dir();
    let DeadRun {
        mut server,
        app,
        t,
        rid,
        dead,
    } = dead_run(dir.path()).await;
    assert_eq!(dead["kind"], "pipeline_run");
    assert_eq!(dead["payload"]["run_id"], rid.as_str());
    let error = dead["last_error"].as_str().expect("why").to_string();
    assert!(error.contains("lease expired"), "{error}");
    let run = run_state(&app, &t, &rid).await;
    assert_eq!(
        run["status"], "failed",
        "a run whose job died is failed: {run}"
    );
    assert_eq!(run["error"], error.as_str());
    let running = expect_json(app.get(&t.token, "/v1/jobs?status=running").await, 200).await;
    assert_eq!(running["items"], json!([]));

    let id = dead["id"].as_str().expect("id");
    let retried = expect_json(
        app.post_json(&t.token, &format!("/v1/jobs/{id}/retry"), &json!({}))
            .await,
        200,
    )
    .await;
    assert_eq!(retried["attempts"], 0, "{retried}");
    completes_exactly_once(&server, &t, &rid).await;
    expect_problem(
        app.post_json(&t.token, &format!("/v1/jobs/{id}/retry"), &json!({}))
            .await,
        409,
        "conflict",
    )
    .await;
    // Another tenant sees none of it.
    let other = app.tenant("other").await;
    expect_problem(
        app.get(&other.token, &format!("/v1/jobs/{id}")).await,
        404,
        "not-found",
    )
    .await;
    let theirs = expect_json(app.get(&other.token, "/v1/jobs").await, 200).await;
    assert_eq!(theirs["items"], json!([]));
    signal(&server.child, "TERM");
    assert!(server.child.wait().expect("exit").success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_runs_job_cancels_the_run() {
    let dir = test_dir();
    let mut server = start(dir.path()).await;
    let (t, rid) = slow_run_in_progress(&server).await;
    let job = job_of(&server.app, &t, &rid).await;
    let id = job["id"].as_str().expect("id");
    let cancelled = expect_json(
        server
            .app
            .post_json(&t.token, &format!("/v1/jobs/{id}/cancel"), &json!({}))
            .await,
        200,
    )
    .await;
    assert_eq!(cancelled["status"], "cancelled");
    let run = server.app.wait_run(&t, &rid).await;
    assert_eq!(run["status"], "cancelled");
    let pending = run["counts"]["pending"].as_i64().expect("pending");
    assert!(
        pending > 0,
        "the run stopped before its end: {}",
        run["counts"]
    );
    expect_problem(
        server
            .app
            .post_json(&t.token, &format!("/v1/jobs/{id}/cancel"), &json!({}))
            .await,
        409,
        "conflict",
    )
    .await;
    let bad = server.app.get(&t.token, "/v1/jobs?status=sleeping").await;
    assert_eq!(bad.status(), 400);
    signal(&server.child, "TERM");
    assert!(server.child.wait().expect("exit").success());
}

/// One worker, batches of 8: a tenant's 100,000-message run delays another tenant's 10-message run
/// by at most one batch (the one in flight when it is queued).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_run_of_one_tenant_delays_a_small_run_of_another_by_at_most_a_batch() {
    const BATCH: i64 = 8;
    let dir = test_dir();
    let app = spawn_in(dir.path(), |c| {
        c.run_workers = 1;
        c.run_batch = BATCH as usize;
    })
    .await;
    let big = app.tenant("big").await;
    app.upload(&big, "rules", "rules").await;
    let seed = app.import(&big, &mail("seed", "x")).await;
    let seed_id = seed["message"]["id"].as_str().expect("id").to_string();
    // 99,999 more rows that share the seed's bytes, written straight into the database (importing
    // 100,000 messages over HTTP would take minutes; the run does not know the difference).
    let pool = open_database(dir.path()).await;
    let columns = "folder, flags, tags, trashed_from, subject, from_name, from_address, date, \
                   message_id, size, sha256, attachments, parsed, received_at, search_rowid, raw_id";
    sqlx::query(&format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 99999) \
         INSERT INTO messages (tenant_id, id, {columns}) \
         SELECT m.tenant_id, m.id || '-' || (1000000 + n.i), {columns} FROM messages m, n \
         WHERE m.tenant_id = $1 AND m.id = $2"
    ))
    .bind(&big.id)
    .bind(&seed_id)
    .execute(&pool)
    .await
    .expect("seed 99,999 messages");
    pool.close().await;
    let tag = |version| json!({"name": "tag", "stages": [rules_stage(version, json!([{"when": {"all": []}, "then": [{"tag": "seen"}]}]))]});
    let p = app.pipeline(&big, tag(1)).await;
    let huge = app
        .start_run(&big, p["id"].as_str().expect("id"), json!({"all": true}))
        .await;
    let done = |run: &Value| run["counts"]["ok"].as_i64().expect("ok");
    until(120, "the huge run to be processing", || {
        let (app, big, huge) = (&app, &big, &huge);
        async move {
            let run = run_state(app, big, huge).await;
            (done(&run) > 0).then_some(())
        }
    })
    .await;
    assert_eq!(
        run_state(&app, &big, &huge).await["counts"]["total"],
        100_000
    );

    let small = app.tenant("small").await;
    app.upload(&small, "rules", "rules").await;
    for i in 0..10 {
        app.import(&small, &mail(&format!("s{i}"), "x")).await;
    }
    let q = app.pipeline(&small, tag(1)).await;
    let small_run = app
        .start_run(&small, q["id"].as_str().expect("id"), json!({"all": true}))
        .await;
    let finished = app.wait_run(&small, &small_run).await;
    assert_eq!(finished["status"], "completed");
    assert_eq!(finished["counts"]["ok"], 10);
    // What the huge run processed between the small run's creation and its end, from the times
    // the items were committed (polling the API would also count what ran after the small run).
    let pool = open_database(dir.path()).await;
    let (interleaved,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM run_items i, runs s WHERE i.run_id = $1 AND s.id = $2 \
         AND i.done_at > s.created_at AND i.done_at < s.finished_at",
    )
    .bind(&huge)
    .bind(&small_run)
    .fetch_one(&pool)
    .await
    .expect("count");
    pool.close().await;
    assert!(
        interleaved <= BATCH,
        "the huge run processed {interleaved} messages while the small one waited (batch {BATCH})"
    );
    expect_json(
        app.post_json(&big.token, &format!("/v1/runs/{huge}/cancel"), &json!({}))
            .await,
        200,
    )
    .await;
    app.stop().await;
}

/// An item whose stored data is damaged is marked `failed` with the reason; the run goes on and
/// completes, and the other messages' effects are committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_message_fails_its_item_not_the_run() {
    let dir = test_dir();
    let app = spawn_in(dir.path(), |_| {}).await;
    let t = app.tenant("acme").await;
    app.upload(&t, "rules", "rules").await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let imported = app.import(&t, &mail(&format!("m{i}"), "x")).await;
        ids.push(imported["message"]["id"].as_str().expect("id").to_string());
    }
    let pool = open_database(dir.path()).await;
    sqlx::query("UPDATE messages SET flags = 'not json' WHERE id = $1")
        .bind(&ids[1])
        .execute(&pool)
        .await
        .expect("damage one message");
    pool.close().await;
    let p = app
        .pipeline(
            &t,
            json!({"name": "tag", "stages": [rules_stage(1, json!([{"when": {"all": []}, "then": [{"tag": "seen"}]}]))]}),
        )
        .await;
    let run = app
        .start_run(&t, p["id"].as_str().expect("id"), json!({"all": true}))
        .await;
    let run = app.wait_run(&t, &run).await;
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(run["counts"]["ok"], 2, "{run}");
    assert_eq!(run["counts"]["failed"], 1, "{run}");
    let results = run["results"].as_array().expect("results");
    let damaged = results
        .iter()
        .find(|r| r["message_id"] == ids[1].as_str())
        .expect("the damaged message's item");
    assert_eq!(damaged["status"], "failed");
    let error = damaged["error"].as_str().expect("why");
    assert!(error.contains("flags"), "{error}");
    let tagged = expect_json(app.get(&t.token, "/v1/messages?tag=seen").await, 200).await;
    let mut tagged: Vec<&str> = tagged["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|m| m["id"].as_str().expect("id"))
        .collect();
    tagged.sort_unstable();
    let mut expected = vec![ids[0].as_str(), ids[2].as_str()];
    expected.sort_unstable();
    assert_eq!(tagged, expected);
    app.stop().await;
}

/// A run whose job died shows `failed`; cancelling the job (or the run) ends both, for good: the
/// run is `cancelled`, not left queued underneath.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_dead_runs_job_cancels_the_run() {
    let dir = test_dir();
    let DeadRun {
        mut server,
        app,
        t,
        rid,
        dead,
    } = dead_run(dir.path()).await;
    assert_eq!(run_state(&app, &t, &rid).await["status"], "failed");
    let id = dead["id"].as_str().expect("id");
    let cancelled = expect_json(
        app.post_json(&t.token, &format!("/v1/jobs/{id}/cancel"), &json!({}))
            .await,
        200,
    )
    .await;
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
    let run = run_state(&app, &t, &rid).await;
    assert_eq!(run["status"], "cancelled", "{run}");
    expect_problem(
        app.post_json(&t.token, &format!("/v1/runs/{rid}/cancel"), &json!({}))
            .await,
        409,
        "conflict",
    )
    .await;
    signal(&server.child, "TERM");
    assert!(server.child.wait().expect("exit").success());
}
