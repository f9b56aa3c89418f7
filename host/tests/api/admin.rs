use crate::helpers::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_are_created_listed_changed_and_deleted() {
    let app = spawn_app().await;
    let created = expect_json(
        app.post_json(ADMIN, "/v1/admin/tenants", &json!({"name": "acme"}))
            .await,
        201,
    )
    .await;
    let id = created["id"].as_str().expect("id");
    assert_eq!(created["name"], "acme");
    assert_eq!(
        created["limits"]["deadline_ms"], 250,
        "DESIGN.md §3 defaults"
    );
    assert_eq!(created["limits"]["memory_bytes"], 32 << 20);

    expect_problem(
        app.post_json(ADMIN, "/v1/admin/tenants", &json!({"name": "acme"}))
            .await,
        409,
        "conflict",
    )
    .await;
    expect_problem(
        app.post_json(ADMIN, "/v1/admin/tenants", &json!({"name": "Not Valid!"}))
            .await,
        400,
        "invalid-request",
    )
    .await;

    let custom = expect_json(
        app.post_json(
            ADMIN,
            "/v1/admin/tenants",
            &json!({"name": "small", "limits": {"deadline_ms": 50}}),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(custom["limits"]["deadline_ms"], 50);
    assert_eq!(
        custom["limits"]["fuel_base"], 200_000_000,
        "unset limits keep their defaults"
    );

    let list = expect_json(app.get(ADMIN, "/v1/admin/tenants").await, 200).await;
    let names: Vec<_> = list
        .as_array()
        .expect("array")
        .iter()
        .map(|t| t["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["acme", "small"]);

    let got = expect_json(
        app.get(ADMIN, &format!("/v1/admin/tenants/{id}")).await,
        200,
    )
    .await;
    assert_eq!(got, created);
    expect_problem(
        app.get(ADMIN, "/v1/admin/tenants/nope").await,
        404,
        "not-found",
    )
    .await;

    let patched = expect_json(
        app.patch_json(
            ADMIN,
            &format!("/v1/admin/tenants/{id}"),
            &json!({"limits": {"memory_bytes": 8 << 20, "max_actions": 5}}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(patched["limits"]["memory_bytes"], 8 << 20);
    assert_eq!(patched["limits"]["max_actions"], 5);
    assert_eq!(patched["limits"]["deadline_ms"], 250);
    let again = expect_json(
        app.get(ADMIN, &format!("/v1/admin/tenants/{id}")).await,
        200,
    )
    .await;
    assert_eq!(again["limits"], patched["limits"], "limits are stored");
    expect_problem(
        app.patch_json(
            ADMIN,
            &format!("/v1/admin/tenants/{id}"),
            &json!({"limits": {"deadline_ms": 0}}),
        )
        .await,
        400,
        "invalid-request",
    )
    .await;
    expect_problem(
        app.patch_json(ADMIN, "/v1/admin/tenants/nope", &json!({"limits": {}}))
            .await,
        404,
        "not-found",
    )
    .await;

    let token = expect_json(
        app.post_json(
            ADMIN,
            &format!("/v1/admin/tenants/{id}/tokens"),
            &json!({"ttl_secs": 3600}),
        )
        .await,
        201,
    )
    .await;
    let token = token["token"].as_str().expect("token").to_string();
    expect_json(app.get(&token, "/v1/messages").await, 200).await;
    expect_problem(
        app.post_json(
            ADMIN,
            &format!("/v1/admin/tenants/{id}/tokens"),
            &json!({"ttl_secs": 1}),
        )
        .await,
        400,
        "invalid-request",
    )
    .await;
    expect_problem(
        app.post_json(ADMIN, "/v1/admin/tenants/nope/tokens", &json!({}))
            .await,
        404,
        "not-found",
    )
    .await;

    expect_json(
        app.delete(ADMIN, &format!("/v1/admin/tenants/{id}")).await,
        204,
    )
    .await;
    expect_problem(
        app.delete(ADMIN, &format!("/v1/admin/tenants/{id}")).await,
        404,
        "not-found",
    )
    .await;
    let refused = expect_problem(app.get(&token, "/v1/messages").await, 401, "unauthorized").await;
    assert!(
        refused["detail"]
            .as_str()
            .expect("detail")
            .contains("no longer exists"),
        "{refused}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_checked() {
    let app = spawn_app().await;
    let tenant = app.tenant("acme").await;
    // No token, a wrong one, a tampered one.
    let resp = app
        .client
        .get(app.url("/v1/admin/tenants"))
        .send()
        .await
        .expect("GET");
    expect_problem(resp, 401, "unauthorized").await;
    expect_problem(
        app.get("wrong-token", "/v1/admin/tenants").await,
        401,
        "unauthorized",
    )
    .await;
    expect_problem(
        app.get("wrong-token", "/v1/messages").await,
        401,
        "unauthorized",
    )
    .await;
    let mut tampered = tenant.token.clone();
    tampered.pop();
    tampered.push(if tenant.token.ends_with('A') {
        'B'
    } else {
        'A'
    });
    expect_problem(
        app.get(&tampered, "/v1/messages").await,
        401,
        "unauthorized",
    )
    .await;
    // Each token only where it belongs.
    expect_problem(
        app.get(&tenant.token, "/v1/admin/tenants").await,
        403,
        "forbidden",
    )
    .await;
    expect_problem(app.get(ADMIN, "/v1/messages").await, 403, "forbidden").await;
    // A token signed with another key (another server's data dir) is refused.
    let other = spawn_app().await;
    let foreign = other.tenant("acme").await;
    expect_problem(
        app.get(&foreign.token, "/v1/messages").await,
        401,
        "unauthorized",
    )
    .await;
    other.stop().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_data_dir_without_admin_token_generates_one_and_keeps_only_its_hash() {
    let dir = test_dir();
    let mut config = test_config(dir.path());
    config.admin_token = None;
    let app = wasmail::server::Application::build(&config)
        .await
        .expect("build");
    let token = app
        .generated_admin_token()
        .expect("generated on a fresh data dir")
        .to_string();
    drop(app);
    // The database holds the hash, not the token.
    for file in ["wasmail.db", "wasmail.db-wal"] {
        let bytes = std::fs::read(dir.path().join(file)).unwrap_or_default();
        assert!(
            !bytes.windows(token.len()).any(|w| w == token.as_bytes()),
            "the token is not in {file}"
        );
    }
    // Started again: nothing new is generated, and the token still works.
    let app = spawn_in(dir.path(), |c| c.admin_token = None).await;
    expect_json(app.get(&token, "/v1/admin/tenants").await, 200).await;
    expect_problem(
        app.get(ADMIN, "/v1/admin/tenants").await,
        401,
        "unauthorized",
    )
    .await;
    app.stop().await;
    let again = wasmail::server::Application::build(&config)
        .await
        .expect("build");
    assert!(again.generated_admin_token().is_none());
}
