//! The plugin caches hold to their byte budgets: dry runs with new configurations leave nothing on
//! disk and little in memory, pipelines with many configurations keep the disk cache under budget
//! (an evicted stage is recompiled and still correct), and one tenant's flood of configurations
//! does not evict another tenant's prepared stage.

use crate::helpers::*;
use serde_json::{Value, json};
use std::path::Path;
use wasmail::config::Config;

/// Rules tagging `t<n>` what has `w<n>` in its subject.
fn numbered(n: usize) -> Value {
    json!({"rules": [{"when": {"field": "subject", "contains": format!("w{n}")}, "then": [{"tag": format!("t{n}")}]}]})
}

fn stage(n: usize) -> Value {
    json!({"plugin": "rules", "version": 1, "config": numbered(n)})
}

/// Bytes under `dir`, recursively.
fn disk_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .map(|e| e.expect("entry").path())
        .map(|p| {
            if p.is_dir() {
                disk_bytes(&p)
            } else {
                std::fs::metadata(&p).expect("file").len()
            }
        })
        .sum()
}

async fn caches(app: &TestApp) -> Value {
    expect_json(app.get(ADMIN, "/v1/admin/caches").await, 200).await
}

/// `tenant`'s use of one cache (`artifacts`, `stages`, `trials`): zeros when it has none.
fn usage(caches: &Value, cache: &str, tenant: &Tenant) -> Value {
    caches[cache]["tenants"]
        .as_array()
        .expect("tenants")
        .iter()
        .find(|t| t["tenant"] == tenant.id.as_str())
        .cloned()
        .unwrap_or_else(
            || json!({"bytes": 0, "entries": 0, "hits": 0, "misses": 0, "evictions": 0}),
        )
}

fn num(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

/// What one prepared `rules` stage weighs in memory, and what its upload and a prepared stage take on
/// disk, measured on a server of its own with the default budgets.
async fn weights() -> (u64, u64, u64) {
    let app = spawn_app().await;
    let t = app.tenant("measure").await;
    app.upload(&t, "rules", "rules").await;
    let upload = num(&usage(&caches(&app).await, "artifacts", &t)["bytes"]);
    app.pipeline(&t, json!({"name": "p", "stages": [stage(0)]}))
        .await;
    let now = caches(&app).await;
    let memory = num(&usage(&now, "stages", &t)["bytes"]);
    let prepared = num(&usage(&now, "artifacts", &t)["bytes"]) - upload;
    app.stop().await;
    assert!(memory > 0 && upload > 0 && prepared > 0);
    (memory, upload, prepared)
}

async fn dry_run(app: &TestApp, t: &Tenant, n: usize) -> Value {
    let raw = String::from_utf8(mail(&format!("about w{n}"), "x")).expect("utf-8");
    expect_json(
        app.post_json(
            &t.token,
            "/v1/plugins/rules/versions/1/test",
            &json!({"message": raw, "config": numbered(n)}),
        )
        .await,
        200,
    )
    .await
}

#[tokio::test]
async fn dry_runs_with_new_configurations_leave_no_artifact_and_little_memory() {
    let (memory, _, _) = weights().await;
    let trial_budget = memory * 7 / 2;
    let dir = test_dir();
    let app = spawn_in(dir.path(), |c: &mut Config| {
        c.trial_cache_bytes = trial_budget
    })
    .await;
    let t = app.tenant("trier").await;
    app.upload(&t, "rules", "rules").await;
    app.pipeline(&t, json!({"name": "p", "stages": [stage(0)]}))
        .await;
    let cache_dir = Config::cache_dir(&test_config(dir.path()));
    let before = disk_bytes(&cache_dir);
    assert!(before > 0);

    for n in 1..=16 {
        let result = dry_run(&app, &t, n).await;
        assert_eq!(
            result["outcome"]["actions"],
            json!([{"tag": format!("t{n}")}]),
            "{result}"
        );
        let trials = &caches(&app).await["trials"];
        assert!(num(&trials["bytes"]) <= trial_budget, "{trials}");
    }
    assert_eq!(
        disk_bytes(&cache_dir),
        before,
        "dry runs left artifacts on disk"
    );
    let now = caches(&app).await;
    assert_eq!(num(&now["artifacts"]["bytes"]), before, "{now}");
    // Three trials fit; the pipeline's stage is untouched by them.
    assert_eq!(num(&now["trials"]["entries"]), 3, "{now}");
    assert_eq!(num(&now["trials"]["evictions"]), 13, "{now}");
    assert_eq!(num(&usage(&now, "stages", &t)["entries"]), 1, "{now}");

    // The latest trial is still in memory, and a trial of the pipeline's configuration uses the
    // pipeline's stage.
    let hits = num(&usage(&now, "trials", &t)["hits"]);
    assert_eq!(dry_run(&app, &t, 16).await["ok"], true);
    let stage_hits = num(&usage(&now, "stages", &t)["hits"]);
    assert_eq!(dry_run(&app, &t, 0).await["ok"], true);
    let after = caches(&app).await;
    assert_eq!(num(&usage(&after, "trials", &t)["hits"]), hits + 1);
    assert_eq!(num(&usage(&after, "stages", &t)["hits"]), stage_hits + 1);
    app.stop().await;
}

#[tokio::test]
async fn many_pipeline_configurations_keep_the_disk_cache_within_budget() {
    let (memory, upload, prepared) = weights().await;
    // The upload's artifact and three and a half prepared stages; one stage in memory, so a run goes
    // to the disk cache.
    let disk_budget = upload + prepared * 7 / 2;
    let dir = test_dir();
    let app = spawn_in(dir.path(), |c: &mut Config| {
        c.artifact_cache_bytes = disk_budget;
        c.stage_cache_bytes = memory * 3 / 2;
    })
    .await;
    let cache_dir = Config::cache_dir(&test_config(dir.path()));
    let t = app.tenant("busy").await;
    app.upload(&t, "rules", "rules").await;
    let mut pipelines = Vec::new();
    for n in 0..6 {
        let p = app
            .pipeline(&t, json!({"name": format!("p{n}"), "stages": [stage(n)]}))
            .await;
        pipelines.push(p["id"].as_str().expect("id").to_string());
        let on_disk = disk_bytes(&cache_dir);
        assert!(
            on_disk <= disk_budget,
            "{on_disk} bytes on disk, budget {disk_budget}"
        );
    }
    let now = caches(&app).await;
    // Eight artifacts were written (the upload's, the instrumented component every preparation
    // starts from, six stages) where about six fit.
    assert!(num(&now["artifacts"]["evictions"]) >= 2, "{now}");
    assert!(num(&now["stages"]["bytes"]) <= memory * 3 / 2, "{now}");
    assert_eq!(num(&now["artifacts"]["bytes"]), disk_bytes(&cache_dir));

    // The first pipeline's stage was evicted from memory and disk: its run prepares it again, and
    // it still does what its configuration says.
    let misses = num(&usage(&now, "artifacts", &t)["misses"]);
    let m = app.import(&t, &mail("about w0", "x")).await;
    let run = app
        .run_to_end(
            &t,
            &pipelines[0],
            json!({"message_ids": [m["message"]["id"]]}),
        )
        .await;
    assert_eq!(run["status"], "completed", "{run}");
    let id = m["message"]["id"].as_str().expect("id");
    let stored = expect_json(app.get(&t.token, &format!("/v1/messages/{id}")).await, 200).await;
    assert_eq!(stored["tags"], json!(["t0"]), "{stored}");
    let after = caches(&app).await;
    // (A miss, not a hit: the artifact was gone and was compiled again.)
    assert!(
        num(&usage(&after, "artifacts", &t)["misses"]) > misses,
        "{after}"
    );
    assert!(disk_bytes(&cache_dir) <= disk_budget);
    app.stop().await;
}

#[tokio::test]
async fn one_tenants_flood_does_not_evict_anothers_prepared_stage() {
    let (memory, _, _) = weights().await;
    let budget = memory * 9 / 2;
    let app = spawn_app_with(|c: &mut Config| c.stage_cache_bytes = budget).await;
    let victim = app.tenant("victim").await;
    let attacker = app.tenant("attacker").await;
    app.upload(&victim, "rules", "rules").await;
    app.upload(&attacker, "rules", "rules").await;
    let p = app
        .pipeline(&victim, json!({"name": "mine", "stages": [stage(0)]}))
        .await;
    let held = usage(&caches(&app).await, "stages", &victim);
    assert_eq!(num(&held["entries"]), 1);

    for n in 1..=8 {
        app.pipeline(
            &attacker,
            json!({"name": format!("flood{n}"), "stages": [stage(n)]}),
        )
        .await;
        assert!(num(&caches(&app).await["stages"]["bytes"]) <= budget);
    }
    let now = caches(&app).await;
    let kept = usage(&now, "stages", &victim);
    assert_eq!(kept["bytes"], held["bytes"], "{now}");
    assert_eq!(num(&kept["evictions"]), 0, "{now}");
    assert!(
        num(&usage(&now, "stages", &attacker)["evictions"]) >= 4,
        "{now}"
    );

    // The victim's next run finds its stage in memory.
    let m = app.import(&victim, &mail("about w0", "x")).await;
    let run = app
        .run_to_end(
            &victim,
            p["id"].as_str().expect("id"),
            json!({"message_ids": [m["message"]["id"]]}),
        )
        .await;
    assert_eq!(run["status"], "completed", "{run}");
    let after = usage(&caches(&app).await, "stages", &victim);
    assert_eq!(num(&after["hits"]), num(&kept["hits"]) + 1, "{after}");
    assert_eq!(after["misses"], kept["misses"], "{after}");
    app.stop().await;
}

#[tokio::test]
async fn cache_statistics_are_for_the_admin_only() {
    let app = spawn_app().await;
    let t = app.tenant("curious").await;
    expect_problem(
        app.get(&t.token, "/v1/admin/caches").await,
        403,
        "forbidden",
    )
    .await;
    expect_problem(
        app.get("not-a-token", "/v1/admin/caches").await,
        401,
        "unauthorized",
    )
    .await;
    let now = caches(&app).await;
    assert_eq!(num(&now["artifacts"]["budget_bytes"]), 1 << 30);
    app.stop().await;
}
