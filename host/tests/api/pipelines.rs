use crate::helpers::*;
use serde_json::{Value, json};

fn quarantining(mut stage: Value) -> Value {
    stage["on_error"] = json!("quarantine");
    stage
}

fn always(then: Value) -> Value {
    json!({"name": "always", "when": {"all": []}, "then": then})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelines_are_created_listed_replaced_and_deleted() {
    let app = spawn_app().await;
    let t = app.tenant("acme").await;
    app.upload(&t, "rules", "rules").await;
    let p = app
        .pipeline(
            &t,
            json!({"name": "triage", "stages": [rules_stage(1, json!([always(json!(["keep"]))]))]}),
        )
        .await;
    let id = p["id"].as_str().expect("id");
    assert_eq!(p["kind"], "filter");
    assert_eq!(p["on_import"], false);
    assert_eq!(p["stages"][0]["on_error"], "continue");
    assert_eq!(
        p["stages"][0]["config"]["rules"][0]["then"],
        json!(["keep"])
    );

    expect_problem(
        app.post_json(
            &t.token,
            "/v1/pipelines",
            &json!({"name": "triage", "stages": [rules_stage(1, json!([]))]}),
        )
        .await,
        409,
        "conflict",
    )
    .await;
    let missing = expect_problem(
        app.post_json(
            &t.token,
            "/v1/pipelines",
            &json!({"name": "x", "stages": [rules_stage(4, json!([]))]}),
        )
        .await,
        422,
        "validation-failed",
    )
    .await;
    assert!(
        missing["detail"]
            .as_str()
            .expect("detail")
            .contains("stages[0]"),
        "{missing}"
    );
    let rejected = expect_problem(
        app.post_json(
            &t.token,
            "/v1/pipelines",
            &json!({"name": "x", "stages": [rules_stage(1, json!([])), {"plugin": "rules", "version": 1, "config": {"rulez": []}}]}),
        )
        .await,
        422,
        "plugin-config-rejected",
    )
    .await;
    assert!(
        rejected["detail"]
            .as_str()
            .expect("detail")
            .contains("stages[1]"),
        "{rejected}"
    );
    expect_problem(
        app.post_json(
            &t.token,
            "/v1/pipelines",
            &json!({"name": "x", "stages": []}),
        )
        .await,
        400,
        "invalid-request",
    )
    .await;

    let list = expect_json(app.get(&t.token, "/v1/pipelines").await, 200).await;
    assert_eq!(list.as_array().expect("array").len(), 1);
    assert_eq!(
        expect_json(app.get(&t.token, &format!("/v1/pipelines/{id}")).await, 200).await,
        p
    );

    let replaced = expect_json(
        app.put_json(
            &t.token,
            &format!("/v1/pipelines/{id}"),
            &json!({"name": "triage2", "on_import": true, "stages": [
                rules_stage(1, json!([always(json!([{"tag": "a"}]))])),
                quarantining(rules_stage(1, json!([])))
            ]}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(replaced["name"], "triage2");
    assert_eq!(replaced["on_import"], true);
    assert_eq!(replaced["stages"][1]["on_error"], "quarantine");
    assert_eq!(replaced["created_at"], p["created_at"]);
    expect_problem(
        app.put_json(
            &t.token,
            "/v1/pipelines/nope",
            &json!({"name": "n", "stages": [rules_stage(1, json!([]))]}),
        )
        .await,
        404,
        "not-found",
    )
    .await;
    expect_json(
        app.delete(&t.token, &format!("/v1/pipelines/{id}")).await,
        204,
    )
    .await;
    expect_problem(
        app.get(&t.token, &format!("/v1/pipelines/{id}")).await,
        404,
        "not-found",
    )
    .await;
    expect_problem(
        app.delete(&t.token, &format!("/v1/pipelines/{id}")).await,
        404,
        "not-found",
    )
    .await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_are_applied_to_the_stored_message() {
    let app = spawn_app().await;
    let t = app.tenant("acme").await;
    app.upload(&t, "rules", "rules").await;
    let invoice = app.import(&t, &mail("Invoice 7", "pay")).await;
    let spam = app.import(&t, &mail("WIN A PRIZE", "click")).await;
    let other = app.import(&t, &mail("Hello", "hi")).await;
    let rules = json!([
        {"name": "billing", "when": {"field": "subject", "contains": ["invoice"]},
         "then": [{"tag": "billing"}, {"add_flag": "\\Flagged"}, {"move_to": "Billing"}, {"copy_to": "Archive"}, {"forward": "books@example.test"}]},
        {"name": "spam", "when": {"field": "subject", "contains": ["prize"]}, "then": ["discard"], "stop": true},
    ]);
    let p = app
        .pipeline(
            &t,
            json!({"name": "triage", "stages": [rules_stage(1, rules)]}),
        )
        .await;
    let run = app
        .run_to_end(&t, p["id"].as_str().expect("id"), json!({"all": true}))
        .await;
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(run["counts"]["total"], 3);
    assert_eq!(run["counts"]["ok"], 3);
    assert_eq!(run["counts"]["pending"], 0);

    let get = |v: &Value| {
        let id = v["message"]["id"].as_str().expect("id").to_string();
        let app = &app;
        let token = t.token.clone();
        async move { expect_json(app.get(&token, &format!("/v1/messages/{id}")).await, 200).await }
    };
    let m = get(&invoice).await;
    assert_eq!(m["folder"], "Billing");
    assert_eq!(m["tags"], json!(["billing"]));
    assert_eq!(m["flags"], json!(["\\Flagged"]));
    let s = get(&spam).await;
    assert_eq!(s["folder"], "Trash", "discard moves to the trash");
    assert_eq!(s["trashed_from"], "INBOX");
    let raw = app
        .get(
            &t.token,
            &format!("/v1/messages/{}/raw", s["id"].as_str().expect("id")),
        )
        .await;
    assert_eq!(raw.status(), 200, "a discarded message's bytes are kept");
    let sid = s["id"].as_str().expect("id");
    let restored = expect_json(
        app.post_json(&t.token, &format!("/v1/messages/{sid}/restore"), &json!({}))
            .await,
        200,
    )
    .await;
    assert_eq!(
        restored["folder"], "INBOX",
        "restored where it was discarded from"
    );
    assert!(restored.get("trashed_from").is_none());
    expect_problem(
        app.post_json(&t.token, &format!("/v1/messages/{sid}/restore"), &json!({}))
            .await,
        409,
        "conflict",
    )
    .await;
    expect_problem(
        app.post_json(&t.token, "/v1/messages/nope/restore", &json!({}))
            .await,
        404,
        "not-found",
    )
    .await;
    assert_eq!(get(&other).await["folder"], "INBOX");

    let archive = expect_json(app.get(&t.token, "/v1/messages?folder=Archive").await, 200).await;
    let copies = archive["items"].as_array().expect("items");
    assert_eq!(copies.len(), 1, "copy_to made a copy");
    assert_eq!(copies[0]["sha256"], m["sha256"]);
    let listed = expect_json(app.get(&t.token, "/v1/messages").await, 200).await;
    assert!(
        listed["items"]
            .as_array()
            .expect("items")
            .iter()
            .all(|x| x["folder"] != "Trash"),
        "the trash is left out of the default list"
    );
    let tagged = expect_json(app.get(&t.token, "/v1/messages?tag=billing").await, 200).await;
    assert_eq!(
        tagged["items"].as_array().expect("items").len(),
        2,
        "the message and its copy"
    );

    // Per-message, per-stage results.
    let results = run["results"].as_array().expect("results");
    let for_invoice = results
        .iter()
        .find(|r| r["message_id"] == invoice["message"]["id"])
        .expect("result");
    assert_eq!(for_invoice["status"], "ok");
    assert_eq!(for_invoice["stages"][0]["status"], "ok");
    assert_eq!(for_invoice["stages"][0]["plugin"], "rules");
    assert!(
        for_invoice["stages"][0]["fuel_used"]
            .as_u64()
            .expect("fuel")
            > 0
    );
    assert_eq!(for_invoice["copied_to"], json!(["Archive"]));
    assert_eq!(
        for_invoice["deferred"],
        json!([{"forward": "books@example.test"}])
    );
    assert_eq!(for_invoice["applied"][0], json!({"tag": "billing"}));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stage_failures_follow_on_error() {
    let app = spawn_app_with(|c| c.run_batch = 4).await;
    let t = app.tenant("acme").await;
    app.upload(&t, "rules", "rules").await;
    app.upload(&t, "hostile", "test_hostile").await;
    let msg = app.import(&t, &mail("x", "y")).await;
    let id = msg["message"]["id"].as_str().expect("id").to_string();
    let tag = |name: &str| rules_stage(1, json!([always(json!([{"tag": name}]))]));
    let panic = |on_error: &str| json!({"plugin": "hostile", "version": 1, "config": {"do": "panic"}, "on_error": on_error});
    let cases = [
        (
            "continue",
            "stage_failed",
            "INBOX",
            json!(["before", "after"]),
        ),
        ("stop", "stage_failed", "INBOX", json!(["before"])),
        ("quarantine", "quarantined", "Quarantine", json!(["before"])),
    ];
    for (on_error, status, folder, tags) in cases {
        // Reset the message between cases.
        let reset = app
            .pipeline(&t, json!({"name": format!("reset-{on_error}"), "stages": [rules_stage(1, json!([always(json!([{"move_to": "INBOX"}, {"untag": "before"}, {"untag": "after"}]))]))]}))
            .await;
        app.run_to_end(
            &t,
            reset["id"].as_str().expect("id"),
            json!({"message_ids": [id]}),
        )
        .await;
        let p = app
            .pipeline(
                &t,
                json!({"name": on_error, "stages": [tag("before"), panic(on_error), tag("after")]}),
            )
            .await;
        let run = app
            .run_to_end(
                &t,
                p["id"].as_str().expect("id"),
                json!({"message_ids": [id]}),
            )
            .await;
        let item = &run["results"][0];
        assert_eq!(item["status"], status, "{on_error}: {item}");
        assert_eq!(item["stages"][1]["status"], "failed");
        assert_eq!(item["stages"][1]["error"]["kind"], "trap");
        let third = if on_error == "continue" {
            "ok"
        } else {
            "skipped"
        };
        assert_eq!(item["stages"][2]["status"], third, "{on_error}");
        let m = expect_json(app.get(&t.token, &format!("/v1/messages/{id}")).await, 200).await;
        assert_eq!(m["folder"], folder, "{on_error}");
        assert_eq!(m["tags"], tags, "{on_error}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_import_pipelines_run_on_new_mail() {
    let app = spawn_app().await;
    let t = app.tenant("acme").await;
    app.upload(&t, "rules", "rules").await;
    app.pipeline(
        &t,
        json!({"name": "auto", "on_import": true, "stages": [rules_stage(1, json!([
            {"when": {"field": "subject", "contains": ["newsletter"]}, "then": [{"move_to": "Lists"}]}
        ]))]}),
    )
    .await;
    let imported = app.import(&t, &mail("Weekly newsletter", "news")).await;
    let runs = imported["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 1);
    let run = app.wait_run(&t, runs[0].as_str().expect("run id")).await;
    assert_eq!(run["trigger"], "import");
    assert_eq!(run["status"], "completed");
    let id = imported["message"]["id"].as_str().expect("id");
    let m = expect_json(app.get(&t.token, &format!("/v1/messages/{id}")).await, 200).await;
    assert_eq!(m["folder"], "Lists");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_select_by_ids_query_or_all() {
    let app = spawn_app().await;
    let t = app.tenant("acme").await;
    app.upload(&t, "rules", "rules").await;
    let a = app.import(&t, &mail("alpha report", "x")).await;
    app.import(&t, &mail("beta report", "x")).await;
    app.import(&t, &mail("gamma", "x")).await;
    let p = app.pipeline(&t, json!({"name": "p", "stages": [rules_stage(1, json!([always(json!([{"tag": "seen"}]))]))]})).await;
    let pid = p["id"].as_str().expect("id");
    let by_ids = app
        .run_to_end(
            &t,
            pid,
            json!({"message_ids": [a["message"]["id"], a["message"]["id"]]}),
        )
        .await;
    assert_eq!(
        by_ids["counts"]["total"], 1,
        "a message named twice is processed once"
    );
    let by_query = app
        .run_to_end(&t, pid, json!({"query": {"q": "report"}}))
        .await;
    assert_eq!(by_query["counts"]["total"], 2);
    let all = app.run_to_end(&t, pid, json!({"all": true})).await;
    assert_eq!(all["counts"]["total"], 3);
    for bad in [
        json!({}),
        json!({"all": true, "message_ids": []}),
        json!({"all": false}),
    ] {
        expect_problem(
            app.post_json(&t.token, &format!("/v1/pipelines/{pid}/runs"), &bad)
                .await,
            422,
            "validation-failed",
        )
        .await;
    }
    expect_problem(
        app.post_json(
            &t.token,
            &format!("/v1/pipelines/{pid}/runs"),
            &json!({"message_ids": ["nope"]}),
        )
        .await,
        422,
        "validation-failed",
    )
    .await;
    expect_problem(
        app.post_json(&t.token, "/v1/pipelines/nope/runs", &json!({"all": true}))
            .await,
        404,
        "not-found",
    )
    .await;
    app.stop().await;
}
