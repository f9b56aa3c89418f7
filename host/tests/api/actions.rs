//! Actions are safe by construction: hostile names from plugins are invalid output, names in API
//! inputs are 422s, copies share the raw bytes and are bounded per run, tags per message.

use crate::helpers::*;
use serde_json::{Value, json};
use sqlx::Row;
use std::path::Path;

/// A hostile stage returning exactly `actions`.
fn returning(actions: Value) -> Value {
    json!({
        "plugin": "hostile",
        "version": 1,
        "config": {"do": "actions", "actions": actions},
        "on_error": "continue",
    })
}

fn copies(range: std::ops::Range<usize>) -> Value {
    range
        .map(|i| json!({"copy_to": format!("Copies/{i}")}))
        .collect()
}

/// Runs a new pipeline of `stages` over one message; returns that message's result.
async fn run_once(app: &TestApp, t: &Tenant, name: &str, stages: Value, message: &str) -> Value {
    let p = app
        .pipeline(t, json!({"name": name, "stages": stages}))
        .await;
    let run = app
        .run_to_end(
            t,
            p["id"].as_str().expect("pipeline id"),
            json!({"message_ids": [message]}),
        )
        .await;
    assert_eq!(run["status"], "completed", "{run}");
    run["results"][0].clone()
}

async fn message_of(app: &TestApp, t: &Tenant, id: &str) -> Value {
    expect_json(app.get(&t.token, &format!("/v1/messages/{id}")).await, 200).await
}

/// Rows and bytes of the raw-message table, read from the server's database.
async fn raw_usage(data_dir: &Path) -> (i64, i64) {
    let pool = open_database(data_dir).await;
    let row = sqlx::query("SELECT COUNT(*), COALESCE(SUM(LENGTH(raw)), 0) FROM message_raw")
        .fetch_one(&pool)
        .await
        .expect("count raw rows");
    let usage = (row.get(0), row.get(1));
    pool.close().await;
    usage
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_names_from_a_plugin_are_invalid_output_naming_the_rule() {
    let app = spawn_app().await;
    let t = app.tenant("acme").await;
    app.upload(&t, "hostile", "test_hostile").await;
    let hostile = [
        (
            json!({"move_to": "a\"b"}),
            "folder names may not contain '\"'",
        ),
        (
            json!({"move_to": "a*b"}),
            "folder names may not contain '*'",
        ),
        (
            json!({"copy_to": "100%"}),
            "folder names may not contain '%'",
        ),
        (
            json!({"move_to": "lit{5}"}),
            "folder names may not contain '{'",
        ),
        (
            json!({"move_to": "back\\slash"}),
            "folder names may not contain '\\'",
        ),
        (
            json!({"move_to": "a\r\nA1 LOGOUT"}),
            "control characters (U+000D)",
        ),
        (json!({"move_to": "evil\u{202e}txt.exe"}), "bidi"),
        (json!({"copy_to": "line\u{2028}sep"}), "line separators"),
        (json!({"move_to": "a//b"}), "empty levels"),
        (json!({"move_to": "a/../b"}), "'..'"),
        (json!({"add_flag": "\\Deleted"}), "\\Deleted may not be set"),
        (
            json!({"add_flag": "\\Recent"}),
            "\\Recent is managed by the IMAP server",
        ),
        (json!({"reject": "no\r\n250 OK"}), "one line"),
        (json!({"reject": "nul\u{0}"}), "control characters (U+0000)"),
        (
            json!({"forward": "victim%example.com@relay.example"}),
            "percent hack",
        ),
        (
            json!({"forward": "@relay.example:victim@example.com"}),
            "source routes",
        ),
        (
            json!({"forward": "\"a@b\"@example.com"}),
            "quoted local parts",
        ),
    ];
    // Each hostile action after a harmless one (an invalid output applies nothing at all), in the
    // body of a message of its own: one stage, one preparation, one run.
    let mut ids = Vec::new();
    for (i, (action, _)) in hostile.iter().enumerate() {
        // JSON with every non-ASCII character escaped: the body of a mail without a charset.
        let body: String = json!([{"tag": "applied"}, action])
            .to_string()
            .chars()
            .map(|c| match c {
                c if c.is_ascii() => c.to_string(),
                c => format!("\\u{:04x}", u32::from(c)),
            })
            .collect();
        let imported = app.import(&t, &mail(&format!("victim {i}"), &body)).await;
        ids.push(imported["message"]["id"].as_str().expect("id").to_string());
    }
    let p = app
        .pipeline(
            &t,
            json!({"name": "hostile-names", "stages": [
                {"plugin": "hostile", "version": 1, "config": {"do": "actions-in-body"}},
            ]}),
        )
        .await;
    let run = app
        .run_to_end(
            &t,
            p["id"].as_str().expect("id"),
            json!({"message_ids": ids}),
        )
        .await;
    assert_eq!(run["status"], "completed", "{run}");
    let results = run["results"].as_array().expect("results");
    assert_eq!(results.len(), hostile.len());
    for ((result, (action, rule)), id) in results.iter().zip(&hostile).zip(&ids) {
        assert_eq!(&result["message_id"], id);
        assert_eq!(result["status"], "stage_failed", "{action}: {result}");
        let stage = &result["stages"][0];
        assert_eq!(
            stage["error"]["kind"], "invalid_output",
            "{action}: {stage}"
        );
        let message = stage["error"]["message"].as_str().expect("message");
        assert!(
            message.contains(rule),
            "{action}: {message:?} should say {rule:?}"
        );
        assert_eq!(result["applied"], json!([]), "{result}");
        let after = message_of(&app, &t, id).await;
        assert_eq!(
            (&after["folder"], &after["flags"], &after["tags"]),
            (&json!("INBOX"), &json!([]), &json!([])),
            "{after}"
        );
    }

    // A dry run judges the output the same way, 64 copy-to folders included.
    let dry = expect_json(
        app.post_json(
            &t.token,
            "/v1/plugins/hostile/versions/1/test",
            &json!({
                "message": "Subject: x\r\n\r\nx\r\n",
                "config": {"do": "actions", "actions": copies(0..64)},
            }),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(dry["ok"], false, "{dry}");
    assert_eq!(dry["error"]["kind"], "invalid_output", "{dry}");
    assert!(
        dry["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("at most 8")),
        "{dry}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_share_the_raw_bytes_and_stop_at_eight_per_run() {
    let dir = test_dir();
    let app = spawn_in(dir.path(), |_| {}).await;
    let t = app.tenant("acme").await;
    app.upload(&t, "hostile", "test_hostile").await;
    let line = format!("{}\r\n", "0123456789abcdef".repeat(4));
    let raw = mail(
        "big",
        &format!("needle\r\n{}", line.repeat((1 << 20) / line.len())),
    );
    let id = app.import(&t, &raw).await["message"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let (rows, bytes) = raw_usage(dir.path()).await;
    assert_eq!(rows, 1);
    assert_eq!(bytes, raw.len() as i64);

    // 64 copy-to in one output: invalid, nothing copied.
    let result = run_once(&app, &t, "copy-64", json!([returning(copies(0..64))]), &id).await;
    assert_eq!(
        result["stages"][0]["error"]["kind"], "invalid_output",
        "{result}"
    );
    assert_eq!(result["copied_to"], json!([]), "{result}");

    // Two stages of 5 folders each (one shared): 8 copies, the 9th refused and recorded.
    let stages = json!([returning(copies(0..5)), returning(copies(4..9))]);
    let result = run_once(&app, &t, "copy-9", stages, &id).await;
    assert_eq!(result["status"], "ok", "{result}");
    assert_eq!(
        result["copied_to"].as_array().map(Vec::len),
        Some(8),
        "{result}"
    );
    assert_eq!(
        result["refused"],
        json!([{"action": {"copy_to": "Copies/8"}, "reason": "copy-to: the message is already \
            copied to 8 folders in this run, the most a run may copy it to"}]),
        "{result}"
    );
    let all = expect_json(app.get(&t.token, "/v1/messages?limit=100").await, 200).await;
    let items = all["items"].as_array().expect("items");
    assert_eq!(items.len(), 9, "the original and 8 copies");
    assert!(items.iter().all(|m| m["sha256"] == items[0]["sha256"]));
    assert!(!items.iter().any(|m| m["folder"] == "Copies/8"));

    // The copies share the original's bytes: still one raw row, 1 MiB, not 9.
    let (rows, bytes) = raw_usage(dir.path()).await;
    assert_eq!((rows, bytes), (1, raw.len() as i64));
    let copy = items
        .iter()
        .find(|m| m["folder"] == "Copies/7")
        .expect("a copy");
    let copy_id = copy["id"].as_str().expect("copy id");
    let resp = app
        .get(&t.token, &format!("/v1/messages/{copy_id}/raw"))
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.bytes().await.expect("raw").as_ref(),
        &raw[..],
        "byte-exact"
    );
    // Each copy is a message of its own: it is searchable and can be changed on its own.
    let found = expect_json(
        app.get(&t.token, "/v1/messages?q=needle&limit=100").await,
        200,
    )
    .await;
    assert_eq!(found["items"].as_array().map(Vec::len), Some(9), "{found}");
    run_once(
        &app,
        &t,
        "flag-copy",
        json!([returning(json!([{"add_flag": "\\Seen"}]))]),
        copy_id,
    )
    .await;
    assert_eq!(
        message_of(&app, &t, copy_id).await["flags"],
        json!(["\\Seen"])
    );
    assert_eq!(message_of(&app, &t, &id).await["flags"], json!([]));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_stay_bounded_across_runs() {
    let app = spawn_app().await;
    let t = app.tenant("acme").await;
    app.upload(&t, "hostile", "test_hostile").await;
    let id = app.import(&t, &mail("tagged", "x")).await["message"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let tags = |range: std::ops::Range<usize>| -> Value {
        range.map(|i| json!({"tag": format!("t{i}")})).collect()
    };
    let first = run_once(&app, &t, "tags-1", json!([returning(tags(0..40))]), &id).await;
    assert!(
        first.get("refused").is_none_or(|r| r == &json!([])),
        "{first}"
    );
    let second = run_once(&app, &t, "tags-2", json!([returning(tags(40..80))]), &id).await;
    assert_eq!(second["status"], "ok", "{second}");
    let refused = second["refused"].as_array().expect("refused");
    assert_eq!(refused.len(), 16, "{second}");
    assert_eq!(refused[0]["action"], json!({"tag": "t64"}));
    assert!(
        refused[0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("64 tags")),
        "{second}"
    );
    let tagged = message_of(&app, &t, &id).await;
    assert_eq!(
        tagged["tags"].as_array().map(Vec::len),
        Some(64),
        "{tagged}"
    );
    // A third run: its new tag is refused; a tag the message has is no new one.
    let third = run_once(
        &app,
        &t,
        "tags-3",
        json!([returning(json!([{"tag": "t0"}, {"tag": "one-more"}]))]),
        &id,
    )
    .await;
    assert_eq!(
        third["refused"][0]["action"],
        json!({"tag": "one-more"}),
        "{third}"
    );
    assert_eq!(third["applied"], json!([{"tag": "t0"}]), "{third}");
    let tagged = message_of(&app, &t, &id).await;
    assert_eq!(
        tagged["tags"].as_array().map(Vec::len),
        Some(64),
        "{tagged}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_in_api_inputs_follow_the_same_rules() {
    let app = spawn_app().await;
    let t = app.tenant("acme").await;
    let import_to = |folder: &'static str| {
        let app = &app;
        let token = t.token.clone();
        async move {
            app.request(reqwest::Method::POST, &token, "/v1/messages")
                .query(&[("folder", folder)])
                .header("Content-Type", "message/rfc822")
                .body(mail("named", "x"))
                .send()
                .await
                .expect("POST")
        }
    };
    for (folder, rule) in [
        ("Spam\r\nX-Injected: 1", "control characters (U+000D)"),
        ("a*b", "'*'"),
        ("a%b", "'%'"),
        ("{5}", "'{'"),
        ("bidi\u{202e}", "bidi"),
        ("", "empty"),
        ("/Spam", "'/'"),
    ] {
        let problem = expect_problem(import_to(folder).await, 422, "invalid-name").await;
        let detail = problem["detail"].as_str().expect("detail");
        assert!(
            detail.starts_with("`folder`: folder ") && detail.contains(rule),
            "{folder:?}: {detail}"
        );
        assert!(
            !detail.contains('\r'),
            "the detail escapes what it shows: {detail:?}"
        );
    }
    let long = "x".repeat(256);
    let resp = app
        .request(reqwest::Method::POST, &t.token, "/v1/messages")
        .query(&[("folder", long.as_str())])
        .header("Content-Type", "message/rfc822")
        .body(mail("long", "x"))
        .send()
        .await
        .expect("POST");
    expect_problem(resp, 422, "invalid-name").await;
    let listed = expect_json(app.get(&t.token, "/v1/messages").await, 200).await;
    assert_eq!(listed["items"], json!([]), "nothing was stored");

    // Good names are stored normalised: INBOX is one mailbox in any case.
    let stored = expect_json(import_to("inbox/Work").await, 201).await;
    assert_eq!(stored["message"]["folder"], "INBOX/Work");

    // List filters and run queries.
    let problem = expect_problem(
        app.get(&t.token, "/v1/messages?folder=a%2Ab").await,
        422,
        "invalid-name",
    )
    .await;
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("`folder`:"))
    );
    let problem = expect_problem(
        app.get(&t.token, "/v1/messages?tag=x%E2%80%A8y").await,
        422,
        "invalid-name",
    )
    .await;
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("`tag`: tag "))
    );
    let found = expect_json(
        app.get(&t.token, "/v1/messages?folder=Inbox/Work").await,
        200,
    )
    .await;
    assert_eq!(found["items"].as_array().map(Vec::len), Some(1), "{found}");

    app.upload(&t, "rules", "rules").await;
    let problem = expect_problem(
        app.post_json(
            &t.token,
            "/v1/plugins/rules/versions/1/test",
            &json!({"message": "Subject: x\r\n\r\nx\r\n", "folder": "Spam\u{2029}"}),
        )
        .await,
        422,
        "invalid-name",
    )
    .await;
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("`folder`:") && d.contains("paragraph separators")),
        "{problem}"
    );
    let p = app
        .pipeline(
            &t,
            json!({"name": "p", "stages": [rules_stage(1, json!([]))]}),
        )
        .await;
    let problem = expect_problem(
        app.post_json(
            &t.token,
            &format!("/v1/pipelines/{}/runs", p["id"].as_str().expect("id")),
            &json!({"query": {"folder": "x*y"}}),
        )
        .await,
        422,
        "invalid-name",
    )
    .await;
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("`query.folder`:")),
        "{problem}"
    );
    app.stop().await;
}
