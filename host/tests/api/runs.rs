use crate::helpers::*;
use serde_json::json;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_are_listed_paged_and_cancelled() {
    let app = spawn_app_with(|c| c.run_batch = 2).await;
    let t = app.tenant("acme").await;
    app.upload(&t, "rules", "rules").await;
    for i in 0..5 {
        app.import(&t, &mail(&format!("m{i}"), "x")).await;
    }
    let p = app
        .pipeline(
            &t,
            json!({"name": "p", "stages": [rules_stage(1, json!([]))]}),
        )
        .await;
    let pid = p["id"].as_str().expect("id");
    let first = app.run_to_end(&t, pid, json!({"all": true})).await;
    let second = app.run_to_end(&t, pid, json!({"all": true})).await;
    let rid = first["id"].as_str().expect("id");

    let page = expect_json(
        app.get(&t.token, &format!("/v1/runs?pipeline_id={pid}&limit=1"))
            .await,
        200,
    )
    .await;
    assert_eq!(page["items"][0]["id"], second["id"], "newest first");
    assert!(
        page["items"][0].get("results").is_none(),
        "lists carry no results"
    );
    let cursor = page["next_cursor"].as_str().expect("cursor");
    let rest = expect_json(
        app.get(&t.token, &format!("/v1/runs?limit=1&cursor={cursor}"))
            .await,
        200,
    )
    .await;
    assert_eq!(rest["items"][0]["id"], first["id"]);
    assert!(rest.get("next_cursor").is_none());
    let none = expect_json(app.get(&t.token, "/v1/runs?pipeline_id=other").await, 200).await;
    assert_eq!(none["items"], json!([]));

    // Results page by position.
    let p1 = expect_json(
        app.get(&t.token, &format!("/v1/runs/{rid}?results_limit=2"))
            .await,
        200,
    )
    .await;
    let seqs: Vec<_> = p1["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["seq"].as_i64().expect("seq"))
        .collect();
    assert_eq!(seqs, [0, 1]);
    let after = p1["next_results_after"].as_i64().expect("next");
    let p2 = expect_json(
        app.get(
            &t.token,
            &format!("/v1/runs/{rid}?results_limit=10&results_after={after}"),
        )
        .await,
        200,
    )
    .await;
    let seqs: Vec<_> = p2["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["seq"].as_i64().expect("seq"))
        .collect();
    assert_eq!(seqs, [2, 3, 4]);
    assert!(p2.get("next_results_after").is_none());

    // A finished run cannot be cancelled; an unknown one is not found.
    expect_problem(
        app.post_json(&t.token, &format!("/v1/runs/{rid}/cancel"), &json!({}))
            .await,
        409,
        "conflict",
    )
    .await;
    expect_problem(
        app.post_json(&t.token, "/v1/runs/nope/cancel", &json!({}))
            .await,
        404,
        "not-found",
    )
    .await;
    expect_problem(app.get(&t.token, "/v1/runs/nope").await, 404, "not-found").await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_run_can_be_cancelled_and_blocks_pipeline_deletion_until_then() {
    let app = spawn_app_with(|c| c.run_batch = 1).await;
    let t = app.tenant("acme").await;
    set_limits(
        &app,
        &t,
        json!({"deadline_ms": 200, "fuel_base": 100_000_000_000u64}),
    )
    .await;
    app.upload(&t, "hostile", "test_hostile").await;
    for i in 0..30 {
        app.import(&t, &mail(&format!("m{i}"), "x")).await;
    }
    let p = app
        .pipeline(&t, json!({"name": "slow", "stages": [{"plugin": "hostile", "version": 1, "config": {"do": "loop"}}]}))
        .await;
    let pid = p["id"].as_str().expect("id");
    let run = expect_json(
        app.post_json(
            &t.token,
            &format!("/v1/pipelines/{pid}/runs"),
            &json!({"all": true}),
        )
        .await,
        202,
    )
    .await;
    let rid = run["id"].as_str().expect("id");
    assert_eq!(run["status"], "queued");
    expect_problem(
        app.delete(&t.token, &format!("/v1/pipelines/{pid}")).await,
        409,
        "conflict",
    )
    .await;
    // The pipeline moves on to another plugin; the run keeps the stages it was made with, so the
    // version it runs cannot be deleted under it.
    app.upload(&t, "rules", "rules").await;
    expect_json(
        app.put_json(
            &t.token,
            &format!("/v1/pipelines/{pid}"),
            &json!({"name": "slow", "stages": [rules_stage(1, json!([]))]}),
        )
        .await,
        200,
    )
    .await;
    let in_use = expect_problem(
        app.delete(&t.token, "/v1/plugins/hostile/versions/1").await,
        409,
        "conflict",
    )
    .await;
    assert!(
        in_use["detail"].as_str().expect("detail").contains("run"),
        "{in_use}"
    );
    let cancelled = expect_json(
        app.post_json(&t.token, &format!("/v1/runs/{rid}/cancel"), &json!({}))
            .await,
        200,
    )
    .await;
    assert_eq!(cancelled["status"], "cancelled");
    let ended = app.wait_run(&t, rid).await;
    assert_eq!(ended["status"], "cancelled");
    assert!(
        ended["counts"]["pending"].as_i64().expect("pending") > 0,
        "the rest was not processed: {ended}"
    );
    // The worker has let go of it: its count does not move any more.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let later = expect_json(app.get(&t.token, &format!("/v1/runs/{rid}")).await, 200).await;
    assert!(
        later["counts"]["pending"].as_i64()
            >= Some(ended["counts"]["pending"].as_i64().expect("p") - 1)
    );
    expect_json(
        app.delete(&t.token, &format!("/v1/pipelines/{pid}")).await,
        204,
    )
    .await;
    expect_json(
        app.delete(&t.token, "/v1/plugins/hostile/versions/1").await,
        204,
    )
    .await;
    expect_json(app.get(&t.token, &format!("/v1/runs/{rid}")).await, 200).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_plugin_in_a_pipeline_does_not_stall_the_server() {
    let app = spawn_app().await;
    let t = app.tenant("acme").await;
    let other = app.tenant("bystander").await;
    // Each stage must meet its own limit first however loaded the machine is: the loop can only be
    // stopped by the deadline (fuel is ample), and the growth hits a 3 MiB memory limit after a
    // couple of allocations, long before any deadline.
    set_limits(
        &app,
        &t,
        json!({"fuel_base": 100_000_000_000u64, "memory_bytes": 3 << 20}),
    )
    .await;
    app.upload(&t, "hostile", "test_hostile").await;
    for i in 0..24 {
        app.import(&t, &mail(&format!("m{i}"), "x")).await;
    }
    let stages = json!([
        {"plugin": "hostile", "version": 1, "config": {"do": "loop"}},
        {"plugin": "hostile", "version": 1, "config": {"do": "grow"}},
        {"plugin": "hostile", "version": 1, "config": {"do": "recurse"}},
        {"plugin": "hostile", "version": 1, "config": {"do": "log-flood"}},
    ]);
    let p = app
        .pipeline(&t, json!({"name": "evil", "stages": stages}))
        .await;
    let run = expect_json(
        app.post_json(
            &t.token,
            &format!("/v1/pipelines/{}/runs", p["id"].as_str().expect("id")),
            &json!({"all": true}),
        )
        .await,
        202,
    )
    .await;
    let rid = run["id"].as_str().expect("id").to_string();
    // While it runs, the server keeps answering, and another tenant keeps working.
    let mut probes = 0;
    loop {
        let started = Instant::now();
        let health = app
            .client
            .get(app.url("/health"))
            .send()
            .await
            .expect("health");
        assert_eq!(health.status(), 200);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "/health took {:?}",
            started.elapsed()
        );
        app.import(&other, &mail(&format!("bystander {probes}"), "x"))
            .await;
        probes += 1;
        let state = expect_json(app.get(&t.token, &format!("/v1/runs/{rid}")).await, 200).await;
        if state["status"] == "completed" {
            assert_eq!(state["counts"]["stage_failed"], 24, "{state}");
            break;
        }
        assert!(probes < 600, "the run did not finish");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(probes > 1, "the probes ran while the run did");
    let done = app.wait_run(&t, &rid).await;
    let kinds: Vec<_> = done["results"][0]["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .map(|s| s["error"]["kind"].as_str().unwrap_or("ok").to_string())
        .collect();
    assert_eq!(kinds[..3], ["deadline", "memory", "trap"], "{kinds:?}");
    app.stop().await;
}
