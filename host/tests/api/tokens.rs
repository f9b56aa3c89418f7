//! Tenant tokens: revocation (by `jti`, and every token issued before a time) and the claim checks
//! the docs promise (signature with HS256 only, `exp`, `nbf`, `iss`, `iat`, `jti`, the tenant).

use crate::helpers::*;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const SECRET: &str = "test-jwt-secret-0123456789abcdef-0123456789";

async fn mint(app: &TestApp, tenant: &str) -> Value {
    expect_json(
        app.post_json(
            ADMIN,
            &format!("/v1/admin/tenants/{tenant}/tokens"),
            &json!({}),
        )
        .await,
        201,
    )
    .await
}

async fn revoke(app: &TestApp, tenant: &str, body: Value) -> reqwest::Response {
    app.post_json(
        ADMIN,
        &format!("/v1/admin/tenants/{tenant}/tokens/revoke"),
        &body,
    )
    .await
}

async fn works(app: &TestApp, token: &str) -> bool {
    app.get(token, "/v1/messages").await.status() == 200
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_revoked_by_id_and_by_issue_time() {
    let app = spawn_app().await;
    let acme = app.tenant("acme").await;
    let other = app.tenant("other").await;
    let first = mint(&app, &acme.id).await;
    let second = mint(&app, &acme.id).await;
    let (first_token, first_jti) = (first["token"].as_str().expect("token"), &first["jti"]);
    let second_token = second["token"].as_str().expect("token");
    assert!(works(&app, first_token).await && works(&app, second_token).await);

    // Listed: the helper's token and these two, none revoked, the token itself never shown.
    let list = expect_json(
        app.get(ADMIN, &format!("/v1/admin/tenants/{}/tokens", acme.id))
            .await,
        200,
    )
    .await;
    let items = list["items"].as_array().expect("items");
    assert_eq!(items.len(), 3, "{list}");
    assert!(items.iter().all(|t| t["revoked"] == false), "{list}");
    assert!(
        !list.to_string().contains(first_token),
        "tokens are not kept"
    );

    // By id: that token only.
    let after = expect_json(
        revoke(&app, &acme.id, json!({ "jti": first_jti })).await,
        200,
    )
    .await;
    let revoked: Vec<_> = after["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|t| t["revoked"] == true)
        .map(|t| t["jti"].clone())
        .collect();
    assert_eq!(revoked, std::slice::from_ref(first_jti), "{after}");
    let refused = expect_problem(
        app.get(first_token, "/v1/messages").await,
        401,
        "token-revoked",
    )
    .await;
    assert!(
        refused["detail"]
            .as_str()
            .expect("detail")
            .contains("revoked"),
        "{refused}"
    );
    assert!(
        works(&app, second_token).await,
        "the tenant's other tokens work"
    );
    assert!(works(&app, &acme.token).await);
    assert!(
        works(&app, &other.token).await,
        "other tenants are unaffected"
    );
    // Again: the same answer. Unknown ids, another tenant's ids, bad requests: refused.
    expect_json(
        revoke(&app, &acme.id, json!({ "jti": first_jti })).await,
        200,
    )
    .await;
    expect_problem(
        revoke(&app, &acme.id, json!({"jti": "0190-nope"})).await,
        404,
        "not-found",
    )
    .await;
    let other_jti = mint(&app, &other.id).await["jti"].clone();
    expect_problem(
        revoke(&app, &acme.id, json!({ "jti": other_jti })).await,
        404,
        "not-found",
    )
    .await;
    expect_problem(
        revoke(&app, &acme.id, json!({})).await,
        422,
        "validation-failed",
    )
    .await;
    expect_problem(
        revoke(
            &app,
            &acme.id,
            json!({"jti": first_jti, "before": "2026-01-01T00:00:00Z"}),
        )
        .await,
        422,
        "validation-failed",
    )
    .await;
    let tomorrow = chrono::Utc::now() + chrono::Duration::days(1);
    expect_problem(
        revoke(&app, &acme.id, json!({ "before": tomorrow })).await,
        422,
        "validation-failed",
    )
    .await;
    expect_problem(
        revoke(&app, "nope", json!({"before": "2026-01-01T00:00:00Z"})).await,
        404,
        "not-found",
    )
    .await;
    expect_problem(
        app.post_json(
            &acme.token,
            &format!("/v1/admin/tenants/{}/tokens/revoke", acme.id),
            &json!({"before": chrono::Utc::now()}),
        )
        .await,
        403,
        "forbidden",
    )
    .await;

    // By time: every token issued before now, including the helper's; tokens minted afterwards
    // work, and the other tenant's tokens too.
    let now = chrono::Utc::now();
    let after = expect_json(revoke(&app, &acme.id, json!({ "before": now })).await, 200).await;
    assert!(after["revoked_before"].is_string(), "{after}");
    assert!(
        after["items"]
            .as_array()
            .expect("items")
            .iter()
            .all(|t| t["revoked"] == true),
        "{after}"
    );
    for token in [second_token, acme.token.as_str()] {
        expect_problem(app.get(token, "/v1/messages").await, 401, "token-revoked").await;
    }
    let fresh = mint(&app, &acme.id).await;
    assert!(works(&app, fresh["token"].as_str().expect("token")).await);
    assert!(works(&app, &other.token).await);
    // An earlier cut-off does not move it back.
    expect_json(
        revoke(&app, &acme.id, json!({"before": "2026-01-01T00:00:00Z"})).await,
        200,
    )
    .await;
    expect_problem(
        app.get(second_token, "/v1/messages").await,
        401,
        "token-revoked",
    )
    .await;
    assert!(works(&app, fresh["token"].as_str().expect("token")).await);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocations_survive_a_restart_and_leave_with_their_tenant() {
    let dir = test_dir();
    let app = spawn_in(dir.path(), |_| {}).await;
    let acme = app.tenant("acme").await;
    let jti = mint(&app, &acme.id).await;
    expect_json(
        revoke(&app, &acme.id, json!({"jti": jti["jti"]})).await,
        200,
    )
    .await;
    let revoked = jti["token"].as_str().expect("token").to_string();
    app.stop().await;
    let app = spawn_in(dir.path(), |_| {}).await;
    expect_problem(
        app.get(&revoked, "/v1/messages").await,
        401,
        "token-revoked",
    )
    .await;
    assert!(works(&app, &acme.token).await);
    expect_json(
        app.delete(ADMIN, &format!("/v1/admin/tenants/{}", acme.id))
            .await,
        204,
    )
    .await;
    expect_problem(
        app.get(&acme.token, "/v1/messages").await,
        401,
        "unauthorized",
    )
    .await;
    expect_problem(
        app.get(ADMIN, &format!("/v1/admin/tenants/{}/tokens", acme.id))
            .await,
        404,
        "not-found",
    )
    .await;
    app.stop().await;
}

fn now() -> u64 {
    chrono::Utc::now().timestamp() as u64
}

fn sign(claims: &Value, alg: Algorithm, secret: &str) -> String {
    jsonwebtoken::encode(
        &Header::new(alg),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("sign")
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut block = [0u8; 64];
    block[..key.len()].copy_from_slice(key);
    let pad = |byte: u8| block.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .to_vec()
}

/// A token with this header, HMAC-SHA256-signed with `SECRET` whatever the header says.
fn forge(header: &Value, claims: &Value) -> String {
    let part = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let signed = format!("{}.{}", part(header), part(claims));
    let signature = URL_SAFE_NO_PAD.encode(hmac_sha256(SECRET.as_bytes(), signed.as_bytes()));
    format!("{signed}.{signature}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_promised_claim_is_checked() {
    let app = spawn_app_with(|c| c.jwt_secret = Some(SECRET.to_string().into())).await;
    let acme = app.tenant("acme").await;
    let gone = app.tenant("gone").await;
    expect_json(
        app.delete(ADMIN, &format!("/v1/admin/tenants/{}", gone.id))
            .await,
        204,
    )
    .await;
    let good = json!({
        "sub": acme.id, "iss": "wasmail", "iat": now() - 10, "exp": now() + 3600,
        "jti": "0190aaaa-0000-7000-8000-000000000001",
    });
    // The control: a token signed with the configured secret elsewhere (so not recorded) works,
    // with jsonwebtoken and with the test's own HMAC.
    assert!(works(&app, &sign(&good, Algorithm::HS256, SECRET)).await);
    assert!(works(&app, &forge(&json!({"alg": "HS256", "typ": "JWT"}), &good)).await);

    let with = |patch: Value| {
        let mut claims = good.clone();
        for (k, v) in patch.as_object().expect("object") {
            if v.is_null() {
                claims.as_object_mut().expect("claims").remove(k);
            } else {
                claims[k] = v.clone();
            }
        }
        claims
    };
    let hs256 = |claims: Value| sign(&claims, Algorithm::HS256, SECRET);
    let cases: Vec<(&str, String)> = vec![
        ("expired", hs256(with(json!({"exp": now() - 120})))),
        ("no exp", hs256(with(json!({"exp": null})))),
        ("wrong iss", hs256(with(json!({"iss": "someone-else"})))),
        ("no iss", hs256(with(json!({"iss": null})))),
        ("no jti", hs256(with(json!({"jti": null})))),
        ("empty jti", hs256(with(json!({"jti": ""})))),
        ("no iat", hs256(with(json!({"iat": null})))),
        ("future iat", hs256(with(json!({"iat": now() + 3600})))),
        ("future nbf", hs256(with(json!({"nbf": now() + 3600})))),
        (
            "an audience",
            hs256(with(json!({"aud": "another-service"}))),
        ),
        ("no sub", hs256(with(json!({"sub": null})))),
        ("deleted tenant", hs256(with(json!({"sub": gone.id})))),
        ("unknown tenant", hs256(with(json!({"sub": "0190-nobody"})))),
        (
            "other key",
            sign(
                &good,
                Algorithm::HS256,
                "another-secret-of-at-least-32-bytes!",
            ),
        ),
        ("HS512", sign(&good, Algorithm::HS512, SECRET)),
        ("HS384", sign(&good, Algorithm::HS384, SECRET)),
        (
            "alg none",
            format!(
                "{}.{}.",
                URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "JWT"}).to_string()),
                URL_SAFE_NO_PAD.encode(good.to_string())
            ),
        ),
        (
            "alg RS256 with an HMAC",
            forge(&json!({"alg": "RS256", "typ": "JWT"}), &good),
        ),
        (
            "alg ES256 with an HMAC",
            forge(&json!({"alg": "ES256", "typ": "JWT"}), &good),
        ),
    ];
    for (case, token) in cases {
        let resp = app.get(&token, "/v1/messages").await;
        let problem = expect_problem(resp, 401, "unauthorized").await;
        assert!(!problem.to_string().contains(SECRET), "{case}");
    }
    // Details name what a correctly signed token got wrong.
    for (patch, says) in [
        (json!({"exp": now() - 120}), "expired"),
        (json!({"iss": "x"}), "iss"),
        (json!({"jti": null}), "jti"),
        (json!({"iat": now() + 3600}), "iat"),
        (json!({"nbf": now() + 3600}), "nbf"),
    ] {
        let problem = expect_problem(
            app.get(&hs256(with(patch)), "/v1/messages").await,
            401,
            "unauthorized",
        )
        .await;
        assert!(
            problem["detail"].as_str().expect("detail").contains(says),
            "{problem}"
        );
    }
    // A token not recorded here is revoked by a cut-off by its `iat`.
    let outside = hs256(good.clone());
    expect_json(
        revoke(&app, &acme.id, json!({"before": chrono::Utc::now()})).await,
        200,
    )
    .await;
    expect_problem(
        app.get(&outside, "/v1/messages").await,
        401,
        "token-revoked",
    )
    .await;
    app.stop().await;
}
