//! The OpenAPI document is committed (`sdk/openapi.json`, what clients are generated from); this
//! fails when the served one differs. `WASMAIL_BLESS=1` rewrites the committed file.

use crate::helpers::*;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_served_spec_is_the_committed_one() {
    let path = workspace_root().join("sdk/openapi.json");
    let generated = wasmail::api::spec();
    if std::env::var_os("WASMAIL_BLESS").is_some() {
        std::fs::write(&path, format!("{generated}\n")).expect("write sdk/openapi.json");
    }
    let committed = std::fs::read_to_string(&path).expect("sdk/openapi.json is committed");
    let committed: Value = serde_json::from_str(&committed).expect("committed spec is JSON");
    let generated: Value = serde_json::from_str(&generated).expect("spec is JSON");
    assert!(
        committed == generated,
        "the API changed: review it, then run WASMAIL_BLESS=1 cargo test --release --test api spec to update sdk/openapi.json"
    );

    let app = spawn_app().await;
    let served: Value = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("json");
    assert_eq!(served, committed);
    app.stop().await;

    // Every operation is named and tagged, and declares its error shape.
    let mut operations = 0;
    for (path, item) in served["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            operations += 1;
            assert!(
                op["operationId"].as_str().is_some_and(|s| !s.is_empty()),
                "{method} {path}: operationId"
            );
            assert!(
                op["tags"].as_array().is_some_and(|t| !t.is_empty()),
                "{method} {path}: tags"
            );
            if path != "/health" {
                // (liveness cannot fail: if it answers at all, it answers 200)
                let problem = &op["responses"]["default"]["content"]["application/problem+json"];
                assert!(problem.is_object(), "{method} {path}: problem+json errors");
            }
        }
    }
    assert!(operations >= 25, "{operations} operations");
}
