//! What must hold on either database, with several nodes writing at once: invariants under
//! concurrency, the queue shared by two `wasmail serve` processes, and full-text search that finds the
//! same messages on SQLite and PostgreSQL. Run on PostgreSQL with `WASMAIL_TEST_DATABASE` (see the
//! README); on SQLite the nodes share one database file.

use crate::helpers::*;
use crate::restart::{completes_exactly_once, slow_run_in_progress};
use futures_util::future::join_all;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Two serve nodes over one database; neither executes jobs unless `workers`.
async fn two_nodes(dir: &TestDir, workers: bool) -> [ServerProcess; 2] {
    let worker = if workers { "true" } else { "false" };
    [
        start_node(dir.path(), Some(ADMIN), &[("WASMAIL_WORKER", worker)]).await,
        start_node(dir.path(), Some(ADMIN), &[("WASMAIL_WORKER", worker)]).await,
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_serve_nodes_share_the_queue_and_a_killed_one_leaves_every_effect_once() {
    let dir = test_dir();
    let mut nodes = two_nodes(&dir, true).await;
    let (t, rid) = slow_run_in_progress(&nodes[0]).await;
    let run = expect_json(
        nodes[0]
            .app
            .get(&t.token, &format!("/v1/runs/{rid}?results_limit=0"))
            .await,
        200,
    )
    .await;
    let job_id = run["job_id"].as_str().expect("job id");
    let job = expect_json(
        nodes[0]
            .app
            .get(&t.token, &format!("/v1/jobs/{job_id}"))
            .await,
        200,
    )
    .await;
    let holder = job["lease"]["node"].as_str().expect("a holder").to_string();
    let registered = expect_json(nodes[0].app.get(ADMIN, "/v1/admin/nodes").await, 200).await;
    let pid = registered
        .as_array()
        .expect("nodes")
        .iter()
        .find(|n| n["id"] == holder.as_str())
        .and_then(|n| n["pid"].as_u64())
        .expect("the holder is registered");
    let killed = nodes
        .iter()
        .position(|n| u64::from(n.child.id()) == pid)
        .expect("one of the two nodes holds the run's job");
    nodes[killed].child.kill().expect("SIGKILL");
    nodes[killed].child.wait().expect("reaped");
    // The other node takes the job over when the lease runs out and finishes the run: every
    // message's stages ran and its copy was made exactly once.
    completes_exactly_once(&nodes[1 - killed], &t, &rid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_version_while_another_node_puts_it_in_a_pipeline_lets_exactly_one_win() {
    let dir = test_dir();
    let nodes = two_nodes(&dir, false).await;
    let (a, b) = (&nodes[0].app, &nodes[1].app);
    let t = a.tenant("acme").await;
    let mut outcomes = BTreeMap::new();
    for round in 0..12u64 {
        let plugin = format!("rules-{round}");
        a.upload(&t, &plugin, "rules").await;
        let definition = json!({"name": format!("p{round}"), "stages": [
            {"plugin": plugin, "version": 1, "config": {"rules": []}}
        ]});
        // Alternate which node deletes, so both directions of the race are tried.
        let (deleter, creator) = if round % 2 == 0 { (a, b) } else { (b, a) };
        let version_path = format!("/v1/plugins/{plugin}/versions/1");
        // The delete starts 0 to 9 ms after the create, so the two interleave differently
        // from round to round (a delete alone is quicker than a create).
        let head_start = std::time::Duration::from_millis(round * 3 % 10);
        let (deleted, created) = tokio::join!(
            async {
                tokio::time::sleep(head_start).await;
                deleter.delete(&t.token, &version_path).await
            },
            creator.post_json(&t.token, "/v1/pipelines", &definition),
        );
        let (deleted, created) = (deleted.status().as_u16(), created.status().as_u16());
        assert!(
            (deleted == 204) != (created == 201),
            "round {round}: exactly one may win; delete {deleted}, create {created}"
        );
        assert!(
            deleted < 500 && created < 500,
            "round {round}: {deleted} {created}"
        );
        // What is stored agrees with who won.
        let version = a.get(&t.token, &version_path).await.status().as_u16();
        let pipelines = expect_json(b.get(&t.token, "/v1/pipelines").await, 200).await;
        let has_pipeline = pipelines
            .as_array()
            .expect("pipelines")
            .iter()
            .any(|p| p["name"] == format!("p{round}"));
        if created == 201 {
            assert!(
                has_pipeline && version == 200,
                "round {round}: pipeline won"
            );
        } else {
            assert!(!has_pipeline && version == 404, "round {round}: delete won");
        }
        *outcomes
            .entry(if created == 201 { "create" } else { "delete" })
            .or_insert(0) += 1;
    }
    eprintln!("winners over 12 rounds: {outcomes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imports_on_two_nodes_at_once_join_the_same_queued_run() {
    let dir = test_dir();
    let nodes = two_nodes(&dir, false).await;
    let (a, b) = (&nodes[0].app, &nodes[1].app);
    let t = a.tenant("acme").await;
    a.upload(&t, "rules", "rules").await;
    let p = a
        .pipeline(
            &t,
            json!({"name": "auto", "on_import": true, "stages": [rules_stage(1, json!([
                {"when": {"all": []}, "then": [{"tag": "seen"}]}
            ]))]}),
        )
        .await;
    let pid = p["id"].as_str().expect("id");
    // The first import makes the queued run (no node executes jobs, so it stays queued) ...
    let first = a.import(&t, &mail("first", "x")).await;
    let run = first["runs"][0].as_str().expect("a run").to_string();
    // ... and 40 imports at once, half through each node, all join it.
    let imports = (0..40).map(|i| {
        let node = if i % 2 == 0 { a } else { b };
        let t = t.clone();
        async move { node.import(&t, &mail(&format!("m{i}"), "x")).await }
    });
    for imported in join_all(imports).await {
        assert_eq!(imported["runs"], json!([run]), "{imported}");
    }
    let runs = expect_json(
        a.get(&t.token, &format!("/v1/runs?pipeline_id={pid}"))
            .await,
        200,
    )
    .await;
    let items = runs["items"].as_array().expect("runs");
    assert_eq!(items.len(), 1, "{runs}");
    assert_eq!(items[0]["status"], "queued");
    assert_eq!(items[0]["counts"]["total"], 41);

    // A worker executes it: every message once, each tagged once.
    let _worker = start_worker(dir.path(), &[]);
    let done = a.wait_run(&t, &run).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["counts"]["ok"], 41, "{done}");
    let mut seqs: Vec<i64> = done["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["seq"].as_i64().expect("seq"))
        .collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (0..41).collect::<Vec<_>>(), "one item per message");
    let tagged = expect_json(
        a.get(&t.token, "/v1/messages?tag=seen&limit=100").await,
        200,
    )
    .await;
    let tagged = tagged["items"].as_array().expect("items");
    assert_eq!(tagged.len(), 41);
    assert!(
        tagged.iter().all(|m| m["tags"] == json!(["seen"])),
        "{tagged:?}"
    );
}

/// Every message matching `q`, as (sha256, folder) pairs in a stable order: ids differ between
/// servers, the messages do not.
async fn search(app: &TestApp, t: &Tenant, q: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = reqwest::Url::parse(&app.url("/v1/messages")).expect("url");
        url.query_pairs_mut()
            .append_pair("q", q)
            .append_pair("limit", "200");
        if let Some(c) = &cursor {
            url.query_pairs_mut().append_pair("cursor", c);
        }
        let page = expect_json(
            app.client
                .get(url)
                .bearer_auth(&t.token)
                .send()
                .await
                .expect("search"),
            200,
        )
        .await;
        for m in page["items"].as_array().expect("items") {
            found.push((
                m["sha256"].as_str().expect("sha").to_string(),
                m["folder"].as_str().expect("folder").to_string(),
            ));
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    found.sort();
    found
}

/// The queries: frequent subject words, words with non-ASCII letters, two-word phrases taken from
/// subjects, and input meant to break a query language.
fn queries(subjects: &[String]) -> (Vec<String>, Vec<(String, [String; 2])>) {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut non_ascii = Vec::new();
    let mut phrases = Vec::new();
    for subject in subjects {
        let tokens: Vec<String> = subject
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect();
        let long = |w: &String| w.chars().count() >= 3;
        for w in tokens.iter().filter(|w| long(w)) {
            *counts.entry(w.clone()).or_default() += 1;
            if !w.is_ascii() && non_ascii.len() < 12 && !non_ascii.contains(w) {
                non_ascii.push(w.clone());
            }
        }
        // Two words next to each other in the subject.
        if phrases.len() < 15
            && let Some(pair) = tokens.windows(2).find(|p| long(&p[0]) && long(&p[1]))
        {
            let pair = [pair[0].clone(), pair[1].clone()];
            phrases.push((format!("\"{} {}\"", pair[0], pair[1]), pair));
        }
    }
    let mut frequent: Vec<_> = counts.into_iter().collect();
    frequent.sort_by(|x, y| y.1.cmp(&x.1).then(x.0.cmp(&y.0)));
    let mut simple: Vec<String> = frequent.into_iter().take(15).map(|(w, _)| w).collect();
    simple.extend(non_ascii);
    // Upper case and accents fold away; operators of FTS5 and tsquery syntax are plain text.
    simple.extend(
        [
            "INVOICE",
            "résumé",
            "\"unclosed phrase",
            "a OR b",
            "subject:test",
            "x*",
            "'; DROP TABLE messages; --",
            "!(a & b) <-> c",
            "\\",
            "\"\"",
        ]
        .map(String::from),
    );
    (simple, phrases)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_finds_the_same_messages_on_sqlite_and_postgresql() {
    // One server on SQLite always; one on PostgreSQL when the suite runs there.
    let sqlite_dir = test_dir();
    let sqlite = spawn_in(sqlite_dir.path(), |c| c.database_url = None).await;
    let postgres_dir = test_dir();
    let postgres = match database_url(postgres_dir.path()) {
        Some(_) => Some(spawn_in(postgres_dir.path(), |_| {}).await),
        None => None,
    };
    let mut servers: Vec<(&TestApp, Tenant)> = Vec::new();
    for app in std::iter::once(&sqlite).chain(postgres.as_ref()) {
        servers.push((app, app.tenant("acme").await));
    }
    let mut subjects = Vec::new();
    for (name, raw) in corpus() {
        for (app, t) in &servers {
            let resp = app
                .post_bytes(&t.token, "/v1/messages", "message/rfc822", raw.clone())
                .await;
            assert_eq!(resp.status().as_u16(), 201, "{name}");
            let imported: Value = resp.json().await.expect("json");
            if std::ptr::eq(*app, &sqlite)
                && let Some(s) = imported["message"]["subject"].as_str()
            {
                subjects.push(s.to_string());
            }
        }
    }
    let (simple, phrases) = queries(&subjects);
    assert!(
        simple.len() >= 20 && phrases.len() >= 10,
        "{simple:?} {phrases:?}"
    );
    let (app, t) = &servers[0];
    let mut nonempty = 0;
    for q in simple.iter().chain(phrases.iter().map(|(q, _)| q)) {
        let on_sqlite = search(app, t, q).await;
        nonempty += usize::from(!on_sqlite.is_empty());
        if let Some((pg, pt)) = servers.get(1) {
            assert_eq!(on_sqlite, search(pg, pt, q).await, "q = {q:?}");
        }
    }
    assert!(nonempty >= 25, "most queries find something: {nonempty}");
    // A phrase finds its subject's message, and only messages that have both words.
    for (q, [w1, w2]) in &phrases {
        let phrase = search(app, t, q).await;
        let both = search(app, t, &format!("{w1} {w2}")).await;
        assert!(!phrase.is_empty(), "{q} comes from a subject");
        assert!(
            phrase.iter().all(|m| both.contains(m)),
            "{q}: {phrase:?} ⊄ {both:?}"
        );
    }
}

/// Polls `works` on `app` until it answers `want`, for at most `secs`; returns how long it took.
async fn until_token(app: &TestApp, token: &str, want: u16, secs: u64) -> std::time::Duration {
    let start = std::time::Instant::now();
    loop {
        let status = app.get(token, "/v1/messages").await.status().as_u16();
        if status == want {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(secs),
            "still {status} after {secs} s, want {want}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_or_deletion_on_one_node_reaches_the_cached_lookup_of_another() {
    let dir = test_dir();
    let nodes = two_nodes(&dir, false).await;
    let (a, b) = (&nodes[0].app, &nodes[1].app);
    let acme = a.tenant("acme").await;
    let other = a.tenant("other").await;
    // Node B has looked both tenants up (and cached them).
    for t in [&acme, &other] {
        for _ in 0..3 {
            assert_eq!(b.get(&t.token, "/v1/messages").await.status(), 200);
        }
    }
    // Revoked on node A: node B refuses it soon after, without waiting for its cache to age out
    // (60 s on PostgreSQL, where the change comes as a notification; 1 s on SQLite).
    expect_json(
        a.post_json(
            ADMIN,
            &format!("/v1/admin/tenants/{}/tokens/revoke", acme.id),
            &json!({"before": chrono::Utc::now() + chrono::Duration::seconds(1)}),
        )
        .await,
        200,
    )
    .await;
    let took = until_token(b, &acme.token, 401, 30).await;
    assert!(
        took < std::time::Duration::from_secs(10),
        "node B refused the token only after {took:?}"
    );
    assert_eq!(b.get(&other.token, "/v1/messages").await.status(), 200);
    // Deleted on node A: gone on node B too.
    assert_eq!(
        a.delete(ADMIN, &format!("/v1/admin/tenants/{}", other.id))
            .await
            .status(),
        204
    );
    until_token(b, &other.token, 401, 30).await;
}
