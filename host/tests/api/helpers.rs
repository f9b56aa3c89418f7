//! The whole server, started in-process on port 0 with a fresh data dir, and an HTTP client for it.

#[path = "../common/fixtures.rs"]
mod fixtures;
pub use fixtures::*;

use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use wasmail::config::Config;
use wasmail::server::Application;
use wasmail::store::testing::{TEST_DATABASE_ENV, TestDatabase};

pub const ADMIN: &str = "test-admin-token-0123456789abcdef";

/// A running server.
pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    _dir: Option<TestDir>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

/// A tenant and its token.
#[derive(Clone, Debug)]
pub struct Tenant {
    pub id: String,
    pub token: String,
}

/// A test's data dir and, when the suite runs on PostgreSQL (`WASMAIL_TEST_DATABASE`), its own
/// database, dropped with it. Every server and worker a test starts over `path()` uses both.
pub struct TestDir {
    dir: TempDir,
    _db: Option<TestDatabase>,
}

impl TestDir {
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        databases().remove(self.dir.path());
    }
}

/// A fresh data dir (and database) for a test.
pub fn test_dir() -> TestDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = TestDatabase::create();
    if let Some(db) = &db {
        databases().insert(dir.path().to_path_buf(), db.url.clone());
    }
    TestDir { dir, _db: db }
}

fn databases()
-> std::sync::MutexGuard<'static, std::collections::HashMap<std::path::PathBuf, String>> {
    static DATABASES: std::sync::OnceLock<
        std::sync::Mutex<std::collections::HashMap<std::path::PathBuf, String>>,
    > = std::sync::OnceLock::new();
    DATABASES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The `DATABASE_URL` of the servers over `data_dir`: `None` on SQLite (the file in the data dir).
pub fn database_url(data_dir: &Path) -> Option<String> {
    std::env::var_os(TEST_DATABASE_ENV)?;
    let url = databases().get(data_dir).cloned();
    assert!(
        url.is_some(),
        "{} was not made by test_dir(): no test database for it",
        data_dir.display()
    );
    url
}

/// The test configuration: port 0, the given data dir, a known admin token.
pub fn test_config(data_dir: &Path) -> Config {
    Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        data_dir: data_dir.to_path_buf(),
        database_url: database_url(data_dir).map(Into::into),
        admin_token: Some(ADMIN.to_string().into()),
        // The test binary is not wasmail: compiles run in the real one.
        compiler_exe: Some(env!("CARGO_BIN_EXE_wasmail").into()),
        ..Config::default()
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
    let dir = test_dir();
    let mut app = spawn_in(dir.path(), tweak).await;
    app._dir = Some(dir);
    app
}

/// Starts a server over an existing data dir (to restart one).
pub async fn spawn_in(data_dir: &Path, tweak: impl FnOnce(&mut Config)) -> TestApp {
    let mut config = test_config(data_dir);
    tweak(&mut config);
    let app = Application::build(&config)
        .await
        .expect("build the application");
    let base = format!("http://{}", app.local_addr());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        app.run_until(async {
            let _ = stopped.await;
        })
        .await
        .expect("server ran");
    });
    TestApp {
        base,
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("client"),
        _dir: None,
        stop: Some(stop),
        task: Some(task),
    }
}

impl TestApp {
    /// A client for a server running elsewhere (another process).
    pub fn remote(base: String) -> Self {
        Self {
            base,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("client"),
            _dir: None,
            stop: None,
            task: None,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn request(&self, method: Method, token: &str, path: &str) -> RequestBuilder {
        self.client
            .request(method, self.url(path))
            .bearer_auth(token)
    }

    pub async fn get(&self, token: &str, path: &str) -> Response {
        self.request(Method::GET, token, path)
            .send()
            .await
            .expect("GET")
    }

    pub async fn delete(&self, token: &str, path: &str) -> Response {
        self.request(Method::DELETE, token, path)
            .send()
            .await
            .expect("DELETE")
    }

    pub async fn post_json(&self, token: &str, path: &str, body: &Value) -> Response {
        self.request(Method::POST, token, path)
            .json(body)
            .send()
            .await
            .expect("POST")
    }

    pub async fn put_json(&self, token: &str, path: &str, body: &Value) -> Response {
        self.request(Method::PUT, token, path)
            .json(body)
            .send()
            .await
            .expect("PUT")
    }

    pub async fn patch_json(&self, token: &str, path: &str, body: &Value) -> Response {
        self.request(Method::PATCH, token, path)
            .json(body)
            .send()
            .await
            .expect("PATCH")
    }

    pub async fn post_bytes(
        &self,
        token: &str,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Response {
        self.request(Method::POST, token, path)
            .header("Content-Type", content_type)
            .body(body)
            .send()
            .await
            .expect("POST")
    }

    /// Creates a tenant and mints its token.
    pub async fn tenant(&self, name: &str) -> Tenant {
        let created = expect_json(
            self.post_json(ADMIN, "/v1/admin/tenants", &json!({ "name": name }))
                .await,
            201,
        )
        .await;
        let id = created["id"].as_str().expect("tenant id").to_string();
        let token = expect_json(
            self.post_json(ADMIN, &format!("/v1/admin/tenants/{id}/tokens"), &json!({}))
                .await,
            201,
        )
        .await;
        Tenant {
            id,
            token: token["token"].as_str().expect("token").to_string(),
        }
    }

    /// Uploads a guest component as a plugin version; returns the version.
    pub async fn upload(&self, tenant: &Tenant, name: &str, guest_name: &str) -> Value {
        let resp = self
            .post_bytes(
                &tenant.token,
                &format!("/v1/plugins/{name}/versions"),
                "application/wasm",
                guest(guest_name),
            )
            .await;
        let status = resp.status();
        let body: Value = resp.json().await.expect("json");
        assert!(
            status == 201 || status == 200,
            "upload {guest_name}: {status} {body}"
        );
        body
    }

    /// Imports a message; returns the response body.
    pub async fn import(&self, tenant: &Tenant, raw: &[u8]) -> Value {
        expect_json(
            self.post_bytes(
                &tenant.token,
                "/v1/messages",
                "message/rfc822",
                raw.to_vec(),
            )
            .await,
            201,
        )
        .await
    }

    /// Creates a pipeline; returns it.
    pub async fn pipeline(&self, tenant: &Tenant, definition: Value) -> Value {
        expect_json(
            self.post_json(&tenant.token, "/v1/pipelines", &definition)
                .await,
            201,
        )
        .await
    }

    /// Starts a run and waits until it ends; returns it with its first 1000 results.
    pub async fn run_to_end(&self, tenant: &Tenant, pipeline: &str, selection: Value) -> Value {
        let run = self.start_run(tenant, pipeline, selection).await;
        self.wait_run(tenant, &run).await
    }

    /// Starts a run of `pipeline` over `selection` (202) and returns its id.
    pub async fn start_run(&self, tenant: &Tenant, pipeline: &str, selection: Value) -> String {
        let run = expect_json(
            self.post_json(
                &tenant.token,
                &format!("/v1/pipelines/{pipeline}/runs"),
                &selection,
            )
            .await,
            202,
        )
        .await;
        run["id"].as_str().expect("run id").to_string()
    }

    /// Polls a run until it ends (at most two minutes).
    pub async fn wait_run(&self, tenant: &Tenant, run: &str) -> Value {
        for _ in 0..1200 {
            let body = expect_json(
                self.get(&tenant.token, &format!("/v1/runs/{run}?results_limit=1000"))
                    .await,
                200,
            )
            .await;
            if matches!(
                body["status"].as_str(),
                Some("completed" | "failed" | "cancelled")
            ) {
                return body;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("run {run} did not end");
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task");
        }
    }
}

/// Asserts the status and returns the JSON body.
pub async fn expect_json(resp: Response, status: u16) -> Value {
    let actual = resp.status();
    let text = resp.text().await.expect("body");
    assert_eq!(
        actual,
        StatusCode::from_u16(status).expect("status"),
        "body: {text}"
    );
    if text.is_empty() {
        return Value::Null;
    }
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Asserts a problem+json answer with this status and problem kind; returns the problem.
pub async fn expect_problem(resp: Response, status: u16, kind: &str) -> Value {
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let problem = expect_json(resp, status).await;
    assert!(
        content_type.starts_with("application/problem+json"),
        "content type {content_type}: {problem}"
    );
    assert_eq!(
        problem["type"],
        format!("urn:wasmail:problem:{kind}"),
        "{problem}"
    );
    assert_eq!(problem["status"], status, "{problem}");
    assert!(
        problem["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{problem}"
    );
    problem
}

/// A small message with this subject and body.
pub fn mail(subject: &str, body: &str) -> Vec<u8> {
    format!(
        "From: Alice Example <alice@example.test>\r\nTo: bob@example.test\r\nSubject: {subject}\r\n\
         Date: Fri, 20 Nov 2026 09:30:00 +0000\r\nMessage-ID: <{}@example.test>\r\n\r\n{body}\r\n",
        uuid_like(subject)
    )
    .into_bytes()
}

fn uuid_like(seed: &str) -> String {
    use sha2::Digest;
    hex::encode(&sha2::Sha256::digest(seed.as_bytes())[..8])
}

/// A rules-plugin stage with these rules (none: one rule that never matches, as the plugin refuses
/// an empty list).
pub fn rules_stage(version: i64, rules: Value) -> Value {
    let rules = if rules.as_array().is_some_and(Vec::is_empty) {
        json!([{"name": "never", "when": {"not": {"all": []}}, "then": ["keep"]}])
    } else {
        rules
    };
    json!({ "plugin": "rules", "version": version, "config": { "rules": rules } })
}

/// Gives the tenant these plugin limits.
pub async fn set_limits(app: &TestApp, tenant: &Tenant, limits: Value) {
    expect_json(
        app.patch_json(
            ADMIN,
            &format!("/v1/admin/tenants/{}", tenant.id),
            &json!({ "limits": limits }),
        )
        .await,
        200,
    )
    .await;
}

/// `wasmail serve` in its own process.
pub struct ServerProcess {
    pub child: Child,
    pub app: TestApp,
    /// The admin token it generated and printed, when it was started without one.
    pub printed_admin_token: Option<String>,
}

impl Drop for ServerProcess {
    /// A test that fails halfway must not leave its server running (it would hold the test
    /// binary's output open, and the machine's cores).
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `wasmail worker` process, killed when dropped (a failing test leaves nothing running).
pub struct WorkerProcess(pub Child);

impl std::ops::Deref for WorkerProcess {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for WorkerProcess {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The database of the servers over `data_dir`, opened directly: for what the API does not show
/// (items' commit times, leases) and for damage no API can do. `Any`: the tests' SQL is portable.
pub async fn open_database(data_dir: &Path) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    let url = database_url(data_dir)
        .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("wasmail.db").display()));
    sqlx::AnyPool::connect(&url)
        .await
        .expect("open the database")
}

/// Sets `DATABASE_URL` for a server or worker process over `data_dir`.
fn database_env(command: &mut Command, data_dir: &Path) {
    match database_url(data_dir) {
        Some(url) => command.env("DATABASE_URL", url),
        None => command.env_remove("DATABASE_URL"),
    };
}

/// Starts `wasmail serve` on port 0 over `data_dir`, with the test admin token; the address comes
/// from what it prints.
pub async fn start(data_dir: &Path) -> ServerProcess {
    start_with(data_dir, Some(ADMIN)).await
}

/// Starts `wasmail serve`; without an admin token it generates one and prints it.
pub async fn start_with(data_dir: &Path, admin_token: Option<&str>) -> ServerProcess {
    start_node(data_dir, admin_token, &[]).await
}

/// A job's lease in the process tests: a killed node's jobs are taken over after this.
pub const TEST_LEASE_MS: &str = "3000";

/// Starts `wasmail serve` with extra `WASMAIL_*` variables (short leases and polls, so a killed
/// node's jobs are taken over within seconds).
pub async fn start_node(
    data_dir: &Path,
    admin_token: Option<&str>,
    env: &[(&str, &str)],
) -> ServerProcess {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wasmail"));
    match admin_token {
        Some(token) => command.env("WASMAIL_ADMIN_TOKEN", token),
        None => command.env_remove("WASMAIL_ADMIN_TOKEN"),
    };
    command
        .env("WASMAIL_JOB_LEASE_MS", TEST_LEASE_MS)
        .env("WASMAIL_JOB_POLL_MS", "100");
    for (key, value) in env {
        command.env(key, value);
    }
    database_env(&mut command, data_dir);
    let mut child = command
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .env("WASMAIL_RUN_BATCH", "2")
        .env("WASMAIL_SHUTDOWN_GRACE_SECS", "20")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start wasmail serve");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut token = None;
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(t) = line.strip_prefix("WASMAIL_ADMIN_TOKEN=") {
                token = Some(t.to_string());
            }
            if let Some(rest) = line.split("listening on ").nth(1) {
                let base = rest
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_string();
                let _ = tx.send((base, token.take()));
            }
        }
    });
    let (base, printed_admin_token) = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the server printed its address");
    ServerProcess {
        child,
        app: TestApp::remote(base),
        printed_admin_token,
    }
}

/// Starts `wasmail worker` (no HTTP) over `data_dir`, with short leases and polls.
pub fn start_worker(data_dir: &Path, env: &[(&str, &str)]) -> WorkerProcess {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wasmail"));
    command
        .env("WASMAIL_JOB_LEASE_MS", TEST_LEASE_MS)
        .env("WASMAIL_JOB_POLL_MS", "100")
        .env("WASMAIL_RUN_BATCH", "2")
        .env_remove("WASMAIL_ADMIN_TOKEN");
    for (key, value) in env {
        command.env(key, value);
    }
    database_env(&mut command, data_dir);
    WorkerProcess(
        command
            .args(["worker", "--data-dir"])
            .arg(data_dir)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start wasmail worker"),
    )
}

pub fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}
