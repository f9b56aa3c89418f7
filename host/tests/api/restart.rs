//! Runs survive the server stopping: killed outright, or shut down with SIGTERM. These start the
//! real `wasmail serve` binary.

use crate::helpers::*;
use serde_json::{Value, json};
use std::time::Duration;

pub async fn run_state(app: &TestApp, t: &Tenant, rid: &str) -> Value {
    expect_json(
        app.get(&t.token, &format!("/v1/runs/{rid}?results_limit=0"))
            .await,
        200,
    )
    .await
}

/// Sets up a slow run (every message hits a 100 ms deadline, then gets copied) and waits until it
/// is partly done.
pub async fn slow_run_in_progress(server: &ServerProcess) -> (Tenant, String) {
    let app = &server.app;
    let t = app.tenant("acme").await;
    set_limits(
        app,
        &t,
        json!({"deadline_ms": 100, "fuel_base": 100_000_000_000u64}),
    )
    .await;
    app.upload(&t, "hostile", "test_hostile").await;
    app.upload(&t, "rules", "rules").await;
    for i in 0..40 {
        app.import(&t, &mail(&format!("m{i}"), "x")).await;
    }
    let p = app
        .pipeline(
            &t,
            json!({"name": "slow", "stages": [
                {"plugin": "hostile", "version": 1, "config": {"do": "loop"}},
                rules_stage(1, json!([{"when": {"all": []}, "then": [{"copy_to": "Copies"}, {"tag": "done"}]}])),
            ]}),
        )
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
    for _ in 0..600 {
        let state = run_state(app, &t, &rid).await;
        let pending = state["counts"]["pending"].as_i64().expect("pending");
        if pending < 38 {
            assert!(
                pending > 0,
                "the run finished before the interruption; make it slower: {state}"
            );
            return (t, rid);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the run made no progress");
}

/// After the restart the run completes, and every message was processed exactly once.
pub async fn completes_exactly_once(server: &ServerProcess, t: &Tenant, rid: &str) {
    let run = server.app.wait_run(t, rid).await;
    let summary = format!("{} {}", run["status"], run["counts"]);
    assert_eq!(run["status"], "completed", "{summary}");
    assert!(run["resumed"].as_i64().expect("resumed") >= 1, "{summary}");
    let deadlines = run["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter(|r| r["stages"][0]["error"]["kind"] == "deadline")
        .count();
    assert_eq!(deadlines, 40, "{summary}");
    assert_eq!(run["counts"]["total"], 40);
    assert_eq!(
        run["counts"]["stage_failed"], 40,
        "every message hit the deadline stage"
    );
    assert_eq!(run["counts"]["pending"], 0);
    let copies = expect_json(
        server
            .app
            .get(&t.token, "/v1/messages?folder=Copies&limit=500")
            .await,
        200,
    )
    .await;
    assert_eq!(
        copies["items"].as_array().expect("items").len(),
        40,
        "one copy per message: none lost, none repeated"
    );
    let inbox = expect_json(
        server
            .app
            .get(&t.token, "/v1/messages?folder=INBOX&tag=done&limit=500")
            .await,
        200,
    )
    .await;
    assert_eq!(inbox["items"].as_array().expect("items").len(), 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_interrupted_by_a_killed_server_resumes_after_restart() {
    let dir = test_dir();
    let mut server = start(dir.path()).await;
    let (t, rid) = slow_run_in_progress(&server).await;
    server.child.kill().expect("SIGKILL");
    server.child.wait().expect("reaped");
    let mut server = start(dir.path()).await;
    completes_exactly_once(&server, &t, &rid).await;
    signal(&server.child, "TERM");
    server.child.wait().expect("exit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_in_flight_work_and_the_next_start_resumes() {
    let dir = test_dir();
    let mut server = start(dir.path()).await;
    let (t, rid) = slow_run_in_progress(&server).await;
    signal(&server.child, "TERM");
    let status = server.child.wait().expect("exit");
    assert!(
        status.success(),
        "graceful shutdown exits cleanly: {status}"
    );
    let mut server = start(dir.path()).await;
    completes_exactly_once(&server, &t, &rid).await;
    signal(&server.child, "TERM");
    server.child.wait().expect("exit");
}
