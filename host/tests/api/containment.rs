//! A hostile tenant cannot hold the server past its limits: plugins that wait in WASI are stopped at
//! their deadline, other tenants' calls keep their normal speed during the attack, a cancelled run
//! frees what it held, and SIGTERM stops the server promptly in the middle of it all.

use crate::helpers::*;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Slack past a deadline on a loaded 2-core machine.
const MARGIN: Duration = Duration::from_millis(1500);

async fn dry_run(app: &TestApp, t: &Tenant, config: Value) -> (Value, Duration) {
    let started = Instant::now();
    let resp = app
        .post_json(
            &t.token,
            "/v1/plugins/hostile/versions/1/test",
            &json!({"message": "Subject: hi\r\n\r\nhello\r\n", "config": config}),
        )
        .await;
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.expect("json");
    assert!(status == 200 || status == 422, "{status} {body}");
    (body, started.elapsed())
}

/// Gives `t` a 60 s deadline and starts a run whose every item sleeps for a minute; returns its id.
async fn start_sleepy_run(app: &TestApp, t: &Tenant) -> String {
    set_limits(app, t, json!({"deadline_ms": 60_000})).await;
    app.upload(t, "hostile", "test_hostile").await;
    for i in 0..4 {
        app.import(t, &mail(&format!("m{i}"), "x")).await;
    }
    let p = app
        .pipeline(
            t,
            json!({"name": "sleepy", "stages": [{"plugin": "hostile", "version": 1, "config": {"do": "sleep"}}]}),
        )
        .await;
    app.start_run(t, p["id"].as_str().expect("id"), json!({"all": true}))
        .await
}

#[tokio::test]
async fn sleeping_dry_runs_from_one_tenant_leave_another_at_normal_speed() {
    let app = spawn_app().await;
    let attacker = app.tenant("attacker").await;
    let victim = app.tenant("victim").await;
    app.upload(&attacker, "hostile", "test_hostile").await;
    app.upload(&victim, "hostile", "test_hostile").await;
    // Warm the victim's prepared stage, so its calls below measure calls, not a first preparation.
    dry_run(&app, &victim, json!({"do": "ok"})).await;

    // More attackers than the runtime has permits, in WASI and in `prepare`.
    let attacks: Vec<_> = (0..12)
        .map(|i| {
            let (app, attacker) = (TestApp::remote(app.url("")), attacker.clone());
            tokio::spawn(async move {
                let config = match i % 3 {
                    0 => json!({"do": "sleep"}),
                    1 => json!({"do": "poll"}),
                    _ => json!({"do": "ok", "prepare": "sleep", "n": i}),
                };
                dry_run(&app, &attacker, config).await
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for _ in 0..15 {
        let (body, took) = dry_run(&app, &victim, json!({"do": "ok"})).await;
        assert_eq!(body["ok"], true, "{body}");
        latencies.push(took);
    }
    latencies.sort();
    let median = latencies[latencies.len() / 2];
    // Queued behind the attack, the victim's calls would wait out 250 ms deadlines, several deep.
    assert!(
        median < Duration::from_millis(150),
        "victim median {median:?}: {latencies:?}"
    );

    for attack in attacks {
        // Wall-clock time includes waiting behind the attacker's own calls (its share of permits);
        // each call itself ends at its deadline.
        let (body, took) = attack.await.expect("task");
        if body["ok"] == false {
            assert_eq!(body["error"]["kind"], "deadline", "{body}");
            let call = Duration::from_micros(body["error"]["duration_us"].as_u64().expect("us"));
            assert!(
                call < Duration::from_millis(250) + MARGIN,
                "{call:?}: {body}"
            );
        } else {
            // A sleeping `prepare` is refused as a configuration the plugin could not prepare.
            assert_eq!(
                body["type"], "urn:wasmail:problem:plugin-config-rejected",
                "{body}"
            );
        }
        assert!(took < Duration::from_secs(20), "{took:?}: {body}");
    }
    app.stop().await;
}

#[tokio::test]
async fn cancelling_a_run_stops_its_in_flight_items() {
    let app = spawn_app().await;
    let t = app.tenant("acme").await;
    let rid = start_sleepy_run(&app, &t).await;
    let waiting = Instant::now();
    loop {
        let state = expect_json(app.get(&t.token, &format!("/v1/runs/{rid}")).await, 200).await;
        if state["status"] == "running" {
            break;
        }
        assert!(waiting.elapsed() < Duration::from_secs(30), "{state}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    expect_json(
        app.post_json(&t.token, &format!("/v1/runs/{rid}/cancel"), &json!({}))
            .await,
        200,
    )
    .await;
    // The sleeping calls held this tenant's share of the permits; once cancelled they are dropped,
    // so the tenant's next call runs at once instead of after a 60 s sleep.
    let (body, took) = dry_run(&app, &t, json!({"do": "ok"})).await;
    assert_eq!(body["ok"], true, "{body}");
    assert!(
        took < Duration::from_secs(5),
        "the next call waited {took:?}"
    );
    let state = expect_json(app.get(&t.token, &format!("/v1/runs/{rid}")).await, 200).await;
    assert_eq!(state["status"], "cancelled", "{state}");
    app.stop().await;
}

#[tokio::test]
async fn sigterm_stops_the_server_promptly_during_an_attack() {
    let dir = test_dir();
    let mut server = start(dir.path()).await;
    let app = TestApp::remote(server.app.url(""));
    let t = app.tenant("attacker").await;
    start_sleepy_run(&app, &t).await;
    // Dry runs in flight too, each asking to sleep for a minute.
    let inflight: Vec<_> = (0..4)
        .map(|_| {
            let (app, t) = (TestApp::remote(app.url("")), t.clone());
            tokio::spawn(async move {
                // The server may answer (the call stopped) or close the connection: both are fine.
                let _ = app
                    .request(
                        reqwest::Method::POST,
                        &t.token,
                        "/v1/plugins/hostile/versions/1/test",
                    )
                    .json(&json!({"message": "Subject: x\r\n\r\ny", "config": {"do": "poll"}}))
                    .send()
                    .await;
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    signal(&server.child, "TERM");
    let stopped = Instant::now();
    let status = loop {
        if let Some(status) = server.child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            stopped.elapsed() < Duration::from_secs(25),
            "the server did not stop within 25 s of SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let took = stopped.elapsed();
    assert!(status.success(), "{status:?}");
    // The plugins asked for 60 s; the server's shutdown grace (20 s in these tests) is not needed.
    assert!(took < Duration::from_secs(10), "stopping took {took:?}");
    for task in inflight {
        let _ = task.await;
    }
}
