use crate::helpers::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_list_get_and_delete_versions() {
    let app = spawn_app().await;
    let t = app.tenant("acme").await;
    let v1 = app.upload(&t, "rules", "rules").await;
    assert_eq!(v1["version"], 1);
    assert_eq!(v1["world"], "wasmail:plugin/filter@0.1.0");
    assert_eq!(v1["size"], guest("rules").len());
    use sha2::Digest;
    assert_eq!(
        v1["sha256"],
        hex::encode(sha2::Sha256::digest(guest("rules")))
    );

    // The same bytes again: the existing version, 200.
    let resp = app
        .post_bytes(
            &t.token,
            "/v1/plugins/rules/versions",
            "application/wasm",
            guest("rules"),
        )
        .await;
    assert_eq!(expect_json(resp, 200).await["version"], 1);
    // Other bytes: the next version.
    let v2 = app.upload(&t, "rules", "wasmail_plugin_template").await;
    assert_eq!(v2["version"], 2);
    app.upload(&t, "guard", "attachment_guard").await;

    let list = expect_json(app.get(&t.token, "/v1/plugins").await, 200).await;
    assert_eq!(list[0]["name"], "guard");
    assert_eq!(list[1]["name"], "rules");
    assert_eq!(list[1]["versions"], json!([1, 2]));
    assert_eq!(list[1]["latest_version"], 2);
    let versions = expect_json(app.get(&t.token, "/v1/plugins/rules/versions").await, 200).await;
    assert_eq!(versions.as_array().expect("array").len(), 2);
    let got = expect_json(app.get(&t.token, "/v1/plugins/rules/versions/1").await, 200).await;
    assert_eq!(got, v1);
    expect_problem(
        app.get(&t.token, "/v1/plugins/rules/versions/9").await,
        404,
        "not-found",
    )
    .await;
    expect_problem(
        app.get(&t.token, "/v1/plugins/nope/versions").await,
        404,
        "not-found",
    )
    .await;

    // In use by a pipeline: 409 naming it. Unused: deleted, and the number is not reused.
    app.pipeline(
        &t,
        json!({"name": "p", "stages": [rules_stage(1, json!([]))]}),
    )
    .await;
    let conflict = expect_problem(
        app.delete(&t.token, "/v1/plugins/rules/versions/1").await,
        409,
        "conflict",
    )
    .await;
    assert!(
        conflict["detail"].as_str().expect("detail").contains("p"),
        "{conflict}"
    );
    expect_json(
        app.delete(&t.token, "/v1/plugins/rules/versions/2").await,
        204,
    )
    .await;
    expect_problem(
        app.delete(&t.token, "/v1/plugins/rules/versions/2").await,
        404,
        "not-found",
    )
    .await;
    let v3 = app.upload(&t, "rules", "wasmail_plugin_template").await;
    assert_eq!(v3["version"], 3, "version numbers are never reused");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_that_are_not_plugins_are_refused_precisely() {
    let app = spawn_app().await;
    let t = app.tenant("acme").await;
    let upload = |bytes: Vec<u8>| {
        app.post_bytes(
            &t.token,
            "/v1/plugins/x/versions",
            "application/wasm",
            bytes,
        )
    };
    let p = expect_problem(
        upload(b"MZ\x90\x00 not wasm".to_vec()).await,
        422,
        "invalid-component",
    )
    .await;
    assert!(
        p["detail"].as_str().expect("detail").contains("component"),
        "{p}"
    );
    let core = wat::parse_str("(module)").expect("core module");
    expect_problem(upload(core).await, 422, "invalid-component").await;
    let empty_component = wat::parse_str("(component)").expect("component");
    let p = expect_problem(upload(empty_component).await, 422, "wrong-world").await;
    assert!(
        p["detail"]
            .as_str()
            .expect("detail")
            .contains("wasmail:plugin"),
        "{p}"
    );
    let p = expect_problem(upload(guest("test_socket")).await, 422, "forbidden-import").await;
    assert!(
        p["detail"]
            .as_str()
            .expect("detail")
            .contains("wasi:sockets"),
        "{p}"
    );
    let p = expect_problem(
        upload(guest("test_forbidden_import")).await,
        422,
        "forbidden-import",
    )
    .await;
    assert!(
        p["detail"].as_str().expect("detail").contains("evil:net"),
        "{p}"
    );
    expect_problem(upload(Vec::new()).await, 422, "validation-failed").await;
    // Too large for the tenant's upload limit.
    expect_json(
        app.patch_json(
            ADMIN,
            &format!("/v1/admin/tenants/{}", t.id),
            &json!({"limits": {"upload_bytes": 4096}}),
        )
        .await,
        200,
    )
    .await;
    expect_problem(upload(guest("rules")).await, 413, "payload-too-large").await;
    // Nothing was stored by any of these.
    assert_eq!(
        expect_json(app.get(&t.token, "/v1/plugins").await, 200).await,
        json!([])
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_shows_actions_logs_and_failures_without_changing_anything() {
    let app = spawn_app().await;
    let t = app.tenant("acme").await;
    app.upload(&t, "rules", "rules").await;
    app.upload(&t, "hostile", "test_hostile").await;
    let config = json!({"rules": [{"name": "invoices", "when": {"field": "subject", "contains": ["invoice"]}, "then": [{"tag": "billing"}, {"move_to": "Billing"}]}]});
    let raw = String::from_utf8(mail("Your invoice 42", "Please pay.")).expect("utf8");
    let result = expect_json(
        app.post_json(
            &t.token,
            "/v1/plugins/rules/versions/1/test",
            &json!({"message": raw, "config": config}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(result["ok"], true, "{result}");
    assert_eq!(
        result["outcome"]["actions"],
        json!([{"tag": "billing"}, {"move_to": "Billing"}])
    );
    assert!(result["outcome"]["fuel_used"].as_u64().expect("fuel") > 0);
    assert!(result["outcome"]["duration_us"].as_u64().is_some());

    // A stored message, by id; it is not changed.
    let imported = app.import(&t, raw.as_bytes()).await;
    let id = imported["message"]["id"].as_str().expect("id");
    let by_id = expect_json(
        app.post_json(
            &t.token,
            "/v1/plugins/rules/versions/1/test",
            &json!({"message_id": id, "config": config}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(by_id["outcome"]["actions"], result["outcome"]["actions"]);
    let stored = expect_json(app.get(&t.token, &format!("/v1/messages/{id}")).await, 200).await;
    assert_eq!(stored["folder"], "INBOX");
    assert_eq!(stored["tags"], json!([]));

    // Base64 for bytes that are not UTF-8.
    let b64 = base64_encode(&[b"Subject: invoice \xff\xfe\r\n\r\nbody".as_slice()].concat());
    let binary = expect_json(
        app.post_json(
            &t.token,
            "/v1/plugins/rules/versions/1/test",
            &json!({"message_base64": b64, "config": config}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(binary["ok"], true, "{binary}");

    // The plugin's failure, structured. (Fuel is raised so the loop meets the deadline first.)
    set_limits(
        &app,
        &t,
        json!({"deadline_ms": 100, "fuel_base": 100_000_000_000u64}),
    )
    .await;
    let panicked = expect_json(
        app.post_json(
            &t.token,
            "/v1/plugins/hostile/versions/1/test",
            &json!({"message": raw, "config": {"do": "panic"}}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(panicked["ok"], false);
    assert_eq!(panicked["error"]["kind"], "trap");
    assert!(
        panicked["error"]["panic"]
            .as_str()
            .expect("panic")
            .contains("panicked on purpose"),
        "{panicked}"
    );
    let looped = expect_json(
        app.post_json(
            &t.token,
            "/v1/plugins/hostile/versions/1/test",
            &json!({"message": raw, "config": {"do": "loop"}}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(looped["error"]["kind"], "deadline", "{looped}");

    // A configuration the plugin rejects; bad requests.
    let rejected = expect_problem(
        app.post_json(
            &t.token,
            "/v1/plugins/rules/versions/1/test",
            &json!({"message": raw, "config": {"rules": [{"when": {"field": "subjct"}}]}}),
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
            .contains("subjct"),
        "{rejected}"
    );
    expect_problem(
        app.post_json(
            &t.token,
            "/v1/plugins/rules/versions/1/test",
            &json!({"config": config}),
        )
        .await,
        422,
        "validation-failed",
    )
    .await;
    expect_problem(
        app.post_json(
            &t.token,
            "/v1/plugins/rules/versions/1/test",
            &json!({"message_id": "nope"}),
        )
        .await,
        404,
        "not-found",
    )
    .await;
    expect_problem(
        app.post_json(
            &t.token,
            "/v1/plugins/rules/versions/7/test",
            &json!({"message": raw}),
        )
        .await,
        404,
        "not-found",
    )
    .await;
    app.stop().await;
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
