//! Tenant B cannot read, change, run or even detect tenant A's plugins, pipelines, messages and
//! runs: every attempt answers exactly as for something that does not exist.

use crate::helpers::*;
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_cannot_see_or_touch_each_other() {
    let app = spawn_app().await;
    let a = app.tenant("alpha").await;
    let b = app.tenant("beta").await;

    // Tenant A's world: a plugin, a message with an attachment, a pipeline, a finished run.
    app.upload(&a, "rules", "rules").await;
    let raw =
        std::fs::read(workspace_root().join("examples/messages/invoice.eml")).expect("sample");
    let message = app.import(&a, &raw).await;
    let mid = message["message"]["id"].as_str().expect("id").to_string();
    let pipeline = app
        .pipeline(&a, json!({"name": "triage", "stages": [rules_stage(1, json!([{"when": {"all": []}, "then": [{"tag": "a-only"}]}]))]}))
        .await;
    let pid = pipeline["id"].as_str().expect("id").to_string();
    let run = app.run_to_end(&a, &pid, json!({"all": true})).await;
    let rid = run["id"].as_str().expect("id").to_string();

    // Every way B could name A's resources, each next to the same request for an id that exists
    // nowhere: the answers must be identical (same status, same problem), so nothing leaks.
    let stage = rules_stage(1, json!([]));
    let cases: Vec<(Method, String, String, Option<Value>)> = vec![
        (
            Method::GET,
            "/v1/plugins/rules/versions".into(),
            "/v1/plugins/zzz/versions".into(),
            None,
        ),
        (
            Method::GET,
            "/v1/plugins/rules/versions/1".into(),
            "/v1/plugins/zzz/versions/1".into(),
            None,
        ),
        (
            Method::DELETE,
            "/v1/plugins/rules/versions/1".into(),
            "/v1/plugins/zzz/versions/1".into(),
            None,
        ),
        (
            Method::POST,
            "/v1/plugins/rules/versions/1/test".into(),
            "/v1/plugins/zzz/versions/1/test".into(),
            Some(json!({"message": "Subject: x\r\n\r\nx"})),
        ),
        (
            Method::GET,
            format!("/v1/messages/{mid}"),
            "/v1/messages/00000000-0000-7000-8000-000000000000".into(),
            None,
        ),
        (
            Method::GET,
            format!("/v1/messages/{mid}/raw"),
            "/v1/messages/00000000-0000-7000-8000-000000000000/raw".into(),
            None,
        ),
        (
            Method::GET,
            format!("/v1/messages/{mid}/attachments/0"),
            "/v1/messages/00000000-0000-7000-8000-000000000000/attachments/0".into(),
            None,
        ),
        (
            Method::POST,
            format!("/v1/messages/{mid}/restore"),
            "/v1/messages/00000000-0000-7000-8000-000000000000/restore".into(),
            Some(json!({})),
        ),
        (
            Method::GET,
            format!("/v1/pipelines/{pid}"),
            "/v1/pipelines/nope".into(),
            None,
        ),
        (
            Method::PUT,
            format!("/v1/pipelines/{pid}"),
            "/v1/pipelines/nope".into(),
            Some(json!({"name": "stolen", "stages": [stage]})),
        ),
        (
            Method::DELETE,
            format!("/v1/pipelines/{pid}"),
            "/v1/pipelines/nope".into(),
            None,
        ),
        (
            Method::POST,
            format!("/v1/pipelines/{pid}/runs"),
            "/v1/pipelines/nope/runs".into(),
            Some(json!({"all": true})),
        ),
        (
            Method::GET,
            format!("/v1/runs/{rid}"),
            "/v1/runs/nope".into(),
            None,
        ),
        (
            Method::POST,
            format!("/v1/runs/{rid}/cancel"),
            "/v1/runs/nope/cancel".into(),
            Some(json!({})),
        ),
    ];
    for (method, theirs, nobodys, body) in cases {
        let send = |path: String| {
            let mut req = app.request(method.clone(), &b.token, &path);
            if let Some(body) = &body {
                req = req.json(body);
            }
            req.send()
        };
        let on_theirs = send(theirs.clone()).await.expect("send");
        let on_nobodys = send(nobodys).await.expect("send");
        let status = on_theirs.status();
        let (theirs_body, nobodys_body) = (
            on_theirs.text().await.expect("body"),
            on_nobodys.text().await.expect("body"),
        );
        assert_eq!(status, 404, "{method} {theirs}: {theirs_body}");
        assert_eq!(
            theirs_body, nobodys_body,
            "{method} {theirs} must answer like a missing resource"
        );
    }

    // B's pipeline cannot be pointed at A's messages (same answer as for unknown ids), nor use A's
    // plugin.
    app.upload(&b, "rules", "rules").await;
    let bp = app
        .pipeline(
            &b,
            json!({"name": "mine", "stages": [rules_stage(1, json!([]))]}),
        )
        .await;
    let bpid = bp["id"].as_str().expect("id");
    let theirs = expect_problem(
        app.post_json(
            &b.token,
            &format!("/v1/pipelines/{bpid}/runs"),
            &json!({"message_ids": [mid]}),
        )
        .await,
        422,
        "validation-failed",
    )
    .await;
    let nobodys = expect_problem(
        app.post_json(
            &b.token,
            &format!("/v1/pipelines/{bpid}/runs"),
            &json!({"message_ids": ["00000000-0000-7000-8000-000000000000"]}),
        )
        .await,
        422,
        "validation-failed",
    )
    .await;
    assert_eq!(theirs, nobodys);
    expect_problem(
        app.post_json(
            &b.token,
            "/v1/plugins/rules/versions/1/test",
            &json!({"message_id": mid}),
        )
        .await,
        404,
        "not-found",
    )
    .await;

    // Lists and searches show B only B's own things.
    let all = app.run_to_end(&b, bpid, json!({"all": true})).await;
    assert_eq!(
        all["counts"]["total"], 0,
        "a run over all of B's mail covers none of A's"
    );
    let messages = expect_json(app.get(&b.token, "/v1/messages?q=invoice").await, 200).await;
    assert_eq!(messages["items"], json!([]));
    let messages = expect_json(app.get(&b.token, "/v1/messages").await, 200).await;
    assert_eq!(messages["items"], json!([]));
    let plugins = expect_json(app.get(&b.token, "/v1/plugins").await, 200).await;
    assert_eq!(
        plugins[0]["versions"],
        json!([1]),
        "B's own rules plugin, numbered on its own"
    );
    let pipelines = expect_json(app.get(&b.token, "/v1/pipelines").await, 200).await;
    assert_eq!(pipelines.as_array().expect("array").len(), 1);
    let runs = expect_json(app.get(&b.token, "/v1/runs").await, 200).await;
    assert_eq!(runs["items"].as_array().expect("items").len(), 1);
    assert_ne!(runs["items"][0]["id"], rid.as_str());

    // And A's things are untouched.
    let m = expect_json(app.get(&a.token, &format!("/v1/messages/{mid}")).await, 200).await;
    assert_eq!(m["tags"], json!(["a-only"]));
    expect_json(
        app.get(&a.token, &format!("/v1/pipelines/{pid}")).await,
        200,
    )
    .await;
    expect_json(app.get(&a.token, "/v1/plugins/rules/versions/1").await, 200).await;

    // Deleting B removes only B's data.
    expect_json(
        app.delete(ADMIN, &format!("/v1/admin/tenants/{}", b.id))
            .await,
        204,
    )
    .await;
    let raw_after = app.get(&a.token, &format!("/v1/messages/{mid}/raw")).await;
    assert_eq!(raw_after.status(), 200);
    assert!(raw_after.bytes().await.expect("bytes").as_ref() == raw.as_slice());
    app.stop().await;
}
