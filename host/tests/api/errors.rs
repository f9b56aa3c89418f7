//! Errors raised before any handler runs are problem+json too.

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_outside_handlers_are_problems() {
    let app = spawn_app().await;
    let tenant = app.tenant("acme").await;
    expect_problem(
        app.get(&tenant.token, "/v1/no-such-thing").await,
        404,
        "not-found",
    )
    .await;
    let resp = app.delete(&tenant.token, "/v1/messages").await;
    let allow = resp
        .headers()
        .get("allow")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    expect_problem(resp, 405, "method-not-allowed").await;
    assert!(
        allow.contains("GET") && allow.contains("POST") && !allow.contains("DELETE"),
        "Allow: {allow}"
    );
    let resp = app
        .post_bytes(
            &tenant.token,
            "/v1/pipelines",
            "text/plain",
            b"name=x".to_vec(),
        )
        .await;
    expect_problem(resp, 415, "unsupported-media-type").await;
    let resp = app
        .post_bytes(
            &tenant.token,
            "/v1/pipelines",
            "application/json",
            b"{not json".to_vec(),
        )
        .await;
    expect_problem(resp, 400, "invalid-request").await;
    let resp = app
        .post_bytes(
            &tenant.token,
            "/v1/pipelines",
            "application/json",
            br#"{"name": "x", "stages": "no"}"#.to_vec(),
        )
        .await;
    expect_problem(resp, 400, "invalid-request").await;
    expect_problem(
        app.get(&tenant.token, "/v1/messages?limit=100000").await,
        400,
        "invalid-request",
    )
    .await;
    expect_problem(
        app.get(&tenant.token, "/v1/messages?since=yesterday").await,
        400,
        "invalid-request",
    )
    .await;
    let resp = app
        .client
        .post(app.url("/v1/messages"))
        .body("x")
        .send()
        .await
        .expect("POST");
    expect_problem(resp, 401, "unauthorized").await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_readiness() {
    let app = spawn_app().await;
    let health = expect_json(
        app.client
            .get(app.url("/health"))
            .send()
            .await
            .expect("GET"),
        200,
    )
    .await;
    assert_eq!(health["status"], "ok");
    let ready = expect_json(
        app.client.get(app.url("/ready")).send().await.expect("GET"),
        200,
    )
    .await;
    assert_eq!(ready["status"], "ready");
    let docs = app.client.get(app.url("/docs")).send().await.expect("GET");
    assert_eq!(docs.status(), 200);
    assert!(
        docs.text().await.expect("html").contains("swagger"),
        "Swagger UI at /docs"
    );
    app.stop().await;
}
