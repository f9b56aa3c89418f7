use crate::helpers::*;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_corpus_message_imports_and_comes_back_byte_exact() {
    let app = spawn_app().await;
    let t = app.tenant("acme").await;
    let all = corpus_and_samples();
    let mut ids = Vec::with_capacity(all.len());
    for (name, raw) in &all {
        let resp = app
            .post_bytes(&t.token, "/v1/messages", "message/rfc822", raw.clone())
            .await;
        let status = resp.status();
        let body: Value = resp.json().await.expect("json");
        assert_eq!(status, 201, "{name}: {body}");
        assert_eq!(body["message"]["size"], raw.len(), "{name}");
        ids.push(body["message"]["id"].as_str().expect("id").to_string());
    }
    for ((name, raw), id) in all.iter().zip(&ids) {
        let resp = app.get(&t.token, &format!("/v1/messages/{id}/raw")).await;
        assert_eq!(resp.status(), 200, "{name}");
        assert_eq!(resp.headers()["content-type"], "message/rfc822");
        let bytes = resp.bytes().await.expect("bytes");
        assert!(bytes.as_ref() == raw.as_slice(), "{name}: raw bytes differ");
        // The parsed view answers for every message, malformed or not.
        let parsed = expect_json(app.get(&t.token, &format!("/v1/messages/{id}")).await, 200).await;
        assert_eq!(parsed["id"], id.as_str());
        assert!(parsed["headers"].is_array(), "{name}");
    }
    // Paging walks all of them exactly once, newest first.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/messages?limit=100&cursor={c}"),
            None => "/v1/messages?limit=100".to_string(),
        };
        let page = expect_json(app.get(&t.token, &path).await, 200).await;
        seen.extend(
            page["items"]
                .as_array()
                .expect("items")
                .iter()
                .map(|m| m["id"].as_str().expect("id").to_string()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    let mut expected = ids.clone();
    expected.reverse();
    assert_eq!(seen, expected);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_is_parsed_and_its_attachments_download() {
    let app = spawn_app().await;
    let t = app.tenant("acme").await;
    let raw =
        std::fs::read(workspace_root().join("examples/messages/invoice.eml")).expect("sample");
    let imported = app.import(&t, &raw).await;
    let id = imported["message"]["id"].as_str().expect("id");
    assert_eq!(imported["runs"], json!([]));
    let m = expect_json(app.get(&t.token, &format!("/v1/messages/{id}")).await, 200).await;
    assert_eq!(m["folder"], "INBOX");
    assert_eq!(m["parsed"], true);
    assert!(
        m["subject"]
            .as_str()
            .expect("subject")
            .to_lowercase()
            .contains("invoice"),
        "{m}"
    );
    assert!(m["from"]["address"].as_str().is_some(), "{m}");
    assert!(!m["to"].as_array().expect("to").is_empty());
    assert!(m["headers"].as_array().expect("headers").iter().any(|h| {
        h["name"]
            .as_str()
            .is_some_and(|n| n.eq_ignore_ascii_case("subject"))
    }));
    assert!(!m["text"].as_str().expect("text").is_empty());
    let attachments = m["attachments"].as_array().expect("attachments");
    assert_eq!(
        attachments.len() as u64,
        m["attachment_count"].as_u64().expect("count")
    );
    assert!(
        !attachments.is_empty(),
        "the invoice sample has an attachment"
    );
    let first = &attachments[0];
    let resp = app
        .get(&t.token, &format!("/v1/messages/{id}/attachments/0"))
        .await;
    assert_eq!(resp.status(), 200);
    let disposition = resp.headers()["content-disposition"]
        .to_str()
        .expect("ascii")
        .to_string();
    assert!(disposition.starts_with("attachment"), "{disposition}");
    assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
    let bytes = resp.bytes().await.expect("bytes");
    assert_eq!(bytes.len() as u64, first["size"].as_u64().expect("size"));
    expect_problem(
        app.get(&t.token, &format!("/v1/messages/{id}/attachments/99"))
            .await,
        404,
        "not-found",
    )
    .await;
    expect_problem(
        app.get(&t.token, "/v1/messages/nope").await,
        404,
        "not-found",
    )
    .await;
    expect_problem(
        app.get(&t.token, "/v1/messages/nope/raw").await,
        404,
        "not-found",
    )
    .await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_is_kept_unparsed_and_limits_hold() {
    let app = spawn_app_with(|c| c.max_message_bytes = 64 << 10).await;
    let t = app.tenant("acme").await;
    let garbage: Vec<u8> = (0..5000u32).map(|i| (i * 7919 % 251) as u8).collect();
    let imported = app.import(&t, &garbage).await;
    let id = imported["message"]["id"].as_str().expect("id");
    let raw = app
        .get(&t.token, &format!("/v1/messages/{id}/raw"))
        .await
        .bytes()
        .await
        .expect("bytes");
    assert!(raw.as_ref() == garbage.as_slice(), "kept byte-exact");
    expect_json(app.get(&t.token, &format!("/v1/messages/{id}")).await, 200).await;
    let too_big = vec![b'a'; (64 << 10) + 1];
    expect_problem(
        app.post_bytes(&t.token, "/v1/messages", "message/rfc822", too_big)
            .await,
        413,
        "payload-too-large",
    )
    .await;
    expect_problem(
        app.post_bytes(&t.token, "/v1/messages", "message/rfc822", Vec::new())
            .await,
        422,
        "validation-failed",
    )
    .await;
    let page = expect_json(app.get(&t.token, "/v1/messages").await, 200).await;
    assert_eq!(
        page["items"].as_array().expect("items").len(),
        1,
        "refused imports stored nothing"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_filters_and_full_text_search() {
    let app = spawn_app().await;
    let t = app.tenant("acme").await;
    let a = app
        .import(
            &t,
            &mail("Quarterly invoice", "The amount due is attached."),
        )
        .await;
    let b = app
        .import(
            &t,
            &mail("Lunch on Friday?", "Shall we try the new ramen place"),
        )
        .await;
    let raw_c = b"From: Bob <bob@other.test>\r\nSubject: Ramen recipe\r\nDate: Mon, 02 Jan 2023 10:00:00 +0000\r\n\r\nNoodles, broth, time.\r\n";
    let c_resp = app
        .post_bytes(
            &t.token,
            "/v1/messages?folder=Recipes",
            "message/rfc822",
            raw_c.to_vec(),
        )
        .await;
    let c = expect_json(c_resp, 201).await;
    let id = |v: &Value| v["message"]["id"].as_str().expect("id").to_string();
    let ids = |page: Value| -> Vec<String> {
        page["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|m| m["id"].as_str().expect("id").to_string())
            .collect()
    };
    let list = |query: &'static str| {
        let app = &app;
        let token = t.token.clone();
        async move { expect_json(app.get(&token, &format!("/v1/messages?{query}")).await, 200).await }
    };
    assert_eq!(
        ids(list("q=ramen").await),
        vec![id(&c), id(&b)],
        "subject and body match"
    );
    assert_eq!(
        ids(list("q=RAMEN+friday").await),
        vec![id(&b)],
        "every word must occur"
    );
    assert_eq!(
        ids(list("q=%22unbalanced+OR+(").await),
        Vec::<String>::new(),
        "FTS syntax is not interpreted"
    );
    assert_eq!(ids(list("folder=Recipes").await), vec![id(&c)]);
    assert_eq!(ids(list("from=BOB").await), vec![id(&c)]);
    assert_eq!(
        ids(list("from=alice%40example").await),
        vec![id(&b), id(&a)]
    );
    assert_eq!(ids(list("subject=invoice").await), vec![id(&a)]);
    assert_eq!(
        ids(list("subject=100%25").await),
        Vec::<String>::new(),
        "LIKE wildcards are literal"
    );
    assert_eq!(ids(list("until=2024-01-01T00:00:00Z").await), vec![id(&c)]);
    assert_eq!(
        ids(list("since=2024-01-01T00:00:00Z&q=ramen").await),
        vec![id(&b)]
    );
    assert_eq!(ids(list("tag=none").await), Vec::<String>::new());
    let page = list("limit=2").await;
    assert_eq!(ids(page.clone()), vec![id(&c), id(&b)]);
    let cursor = page["next_cursor"].as_str().expect("cursor").to_string();
    let next = expect_json(
        app.get(&t.token, &format!("/v1/messages?limit=2&cursor={cursor}"))
            .await,
        200,
    )
    .await;
    assert_eq!(ids(next.clone()), vec![id(&a)]);
    assert!(next.get("next_cursor").is_none());
    app.stop().await;
}
