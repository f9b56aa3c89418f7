//! Requests are bounded before they are trusted: bodies over their limit are refused on the headers
//! (or cut off as they stream, when chunked), the caller is authenticated before the body is read,
//! and control characters in filters are a 400, never a 500 or a truncated filter.

use crate::helpers::*;
use serde_json::json;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long a refusal that needs no body may take on a loaded machine. A server that waited for
/// the body would never answer: the body is never finished.
const ANSWER_WITHIN: Duration = Duration::from_secs(30);

/// An answer read off a raw connection.
struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    fn problem_type(&self) -> String {
        serde_json::from_str::<serde_json::Value>(&self.body)
            .map(|v| v["type"].as_str().unwrap_or_default().to_string())
            .unwrap_or_default()
    }
}

fn parse(bytes: &[u8]) -> Option<Answer> {
    let text = String::from_utf8_lossy(bytes);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    (body.len() >= length).then(|| Answer {
        status,
        head: head.to_string(),
        body: body[..length].to_string(),
    })
}

/// Reads one answer from `reader` (up to a deadline).
async fn read_answer(reader: &mut (impl AsyncReadExt + Unpin)) -> Answer {
    let mut bytes = Vec::new();
    let read = async {
        let mut buf = [0u8; 8192];
        loop {
            if let Some(answer) = parse(&bytes) {
                return answer;
            }
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => {
                    return parse(&bytes).unwrap_or_else(|| {
                        panic!("no answer: {}", String::from_utf8_lossy(&bytes))
                    });
                }
                Ok(n) => bytes.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(ANSWER_WITHIN, read)
        .await
        .expect("the server answered without the body")
}

/// Sends `head` and the first bytes of a body that is never finished; returns the answer.
async fn send_unfinished(app: &TestApp, head: String, first_bytes: &[u8]) -> Answer {
    let addr = app.base.trim_start_matches("http://");
    let mut conn = TcpStream::connect(addr).await.expect("connect");
    conn.write_all(head.as_bytes()).await.expect("write head");
    conn.write_all(first_bytes).await.expect("write body start");
    read_answer(&mut conn).await
}

fn head(method: &str, path: &str, token: Option<&str>, headers: &[(&str, String)]) -> String {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\n");
    if let Some(token) = token {
        head.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    head
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_their_limit_are_refused_on_the_headers() {
    let app = spawn_app_with(|c| c.max_message_bytes = 256 << 10).await;
    let t = app.tenant("acme").await;
    let json_type = ("Content-Type", "application/json".to_string());
    let cases = [
        // (path, content type, declared length): each over its route's limit.
        ("/v1/pipelines", "application/json", (1 << 20) + 1),
        ("/v1/admin/tenants", "application/json", 64 << 20),
        ("/v1/messages", "message/rfc822", (256 << 10) + 1),
        ("/v1/plugins/p/versions", "application/wasm", (16 << 20) + 1),
        // A dry run carries a message: 4/3 of the message limit plus the JSON limit.
        ("/v1/plugins/p/versions/1/test", "application/json", 3 << 20),
    ];
    for (path, content_type, length) in cases {
        let token = if path.starts_with("/v1/admin") {
            ADMIN
        } else {
            &t.token
        };
        let answer = send_unfinished(
            &app,
            head(
                "POST",
                path,
                Some(token),
                &[
                    ("Content-Type", content_type.to_string()),
                    ("Content-Length", length.to_string()),
                ],
            ),
            b"{\"name\": \"x",
        )
        .await;
        assert_eq!(answer.status, 413, "{path}: {}", answer.body);
        assert_eq!(
            answer.problem_type(),
            "urn:wasmail:problem:payload-too-large",
            "{path}"
        );
        assert!(
            answer
                .head
                .to_ascii_lowercase()
                .contains("connection: close"),
            "{path}: {}",
            answer.head
        );
    }
    // Under the limit, the same routes still take a body (a dry run's limit is above the
    // message limit: a base64 message of the largest size fits).
    let answer = send_unfinished(
        &app,
        head(
            "POST",
            "/v1/plugins/p/versions/1/test",
            Some(&t.token),
            &[json_type.clone(), ("Content-Length", "2".into())],
        ),
        b"{}",
    )
    .await;
    assert_eq!(answer.status, 404, "no such plugin: {}", answer.body);
    // Nothing was created by the refused requests.
    let tenants = expect_json(app.get(ADMIN, "/v1/admin/tenants").await, 200).await;
    assert_eq!(tenants.as_array().expect("tenants").len(), 1);
    app.stop().await;
}

/// Streams a chunked body of up to `total` bytes while reading the answer; returns the answer and
/// how many bytes were sent before the server stopped taking them.
async fn send_chunked(app: &TestApp, head: String, total: usize) -> (Answer, usize) {
    let addr = app.base.trim_start_matches("http://");
    let conn = TcpStream::connect(addr).await.expect("connect");
    let (mut reader, mut writer) = conn.into_split();
    let sender = tokio::spawn(async move {
        writer.write_all(head.as_bytes()).await.expect("head");
        let chunk = vec![b'a'; 64 << 10];
        let mut sent = 0;
        while sent < total {
            let framed = [format!("{:x}\r\n", chunk.len()).as_bytes(), &chunk, b"\r\n"].concat();
            if writer.write_all(&framed).await.is_err() {
                return sent;
            }
            sent += chunk.len();
        }
        let _ = writer.write_all(b"0\r\n\r\n").await;
        sent
    });
    let answer = read_answer(&mut reader).await;
    drop(reader);
    let sent = tokio::time::timeout(ANSWER_WITHIN, sender)
        .await
        .expect("the sender stopped")
        .expect("sender");
    (answer, sent)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_bodies_are_cut_off_at_their_limit() {
    let app = spawn_app_with(|c| c.max_message_bytes = 256 << 10).await;
    let t = app.tenant("acme").await;
    let total = 48 << 20;
    for (path, content_type) in [
        ("/v1/pipelines", "application/json"),
        ("/v1/messages", "message/rfc822"),
    ] {
        let (answer, sent) = send_chunked(
            &app,
            head(
                "POST",
                path,
                Some(&t.token),
                &[
                    ("Content-Type", content_type.to_string()),
                    ("Transfer-Encoding", "chunked".to_string()),
                ],
            ),
            total,
        )
        .await;
        assert_eq!(answer.status, 413, "{path}: {}", answer.body);
        assert_eq!(
            answer.problem_type(),
            "urn:wasmail:problem:payload-too-large",
            "{path}"
        );
        // The server stopped reading at the limit (1 MiB / 256 KiB); what else went out sat in
        // socket buffers (a few MiB on loopback) when the connection closed.
        assert!(
            sent < total / 2,
            "{path}: the server took {sent} bytes of a body over its limit"
        );
    }
    let page = expect_json(app.get(&t.token, "/v1/messages").await, 200).await;
    assert_eq!(page["items"].as_array().expect("items").len(), 0);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_are_authenticated_before_their_body_is_read() {
    let app = spawn_app().await;
    let t = app.tenant("acme").await;
    let length = ("Content-Length", (100u64 << 20).to_string());
    let json_type = ("Content-Type", "application/json".to_string());
    let wasm_type = ("Content-Type", "application/wasm".to_string());
    for (path, token, headers, status, kind) in [
        (
            "/v1/pipelines",
            None,
            vec![json_type.clone()],
            401,
            "unauthorized",
        ),
        (
            "/v1/pipelines",
            Some("wrong"),
            vec![json_type.clone()],
            401,
            "unauthorized",
        ),
        (
            "/v1/plugins/p/versions",
            None,
            vec![wasm_type.clone()],
            401,
            "unauthorized",
        ),
        (
            "/v1/admin/tenants",
            None,
            vec![json_type.clone()],
            401,
            "unauthorized",
        ),
        (
            "/v1/admin/tenants",
            Some(t.token.as_str()),
            vec![json_type.clone()],
            403,
            "forbidden",
        ),
        (
            "/v1/pipelines",
            Some(ADMIN),
            vec![json_type.clone()],
            403,
            "forbidden",
        ),
    ] {
        let mut headers = headers;
        headers.push(length.clone());
        let answer = send_unfinished(&app, head("POST", path, token, &headers), b"{\"na").await;
        assert_eq!(answer.status, status, "{path} {token:?}: {}", answer.body);
        assert_eq!(
            answer.problem_type(),
            format!("urn:wasmail:problem:{kind}"),
            "{path}"
        );
    }
    // Chunked, without a token: refused before the first chunk is read.
    let answer = send_unfinished(
        &app,
        head(
            "POST",
            "/v1/messages",
            None,
            &[("Transfer-Encoding", "chunked".to_string())],
        ),
        b"10000\r\naaaa",
    )
    .await;
    assert_eq!(answer.status, 401, "{}", answer.body);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_characters_in_filters_are_refused() {
    let app = spawn_app().await;
    let t = app.tenant("acme").await;
    app.import(&t, &mail("quarterly report", "numbers")).await;
    app.import(&t, &mail("lunch", "sandwiches")).await;
    for query in [
        "q=%00",
        "q=report%00",
        "subject=%00",
        "subject=lunch%00x",
        "from=a%0Db",
        "from=%0A",
        "folder=INBOX%0D%0A",
        "tag=%00",
        "q=%7F",
        "subject=%C2%85",
    ] {
        let problem = expect_problem(
            app.get(&t.token, &format!("/v1/messages?{query}")).await,
            400,
            "invalid-request",
        )
        .await;
        assert!(
            problem["detail"]
                .as_str()
                .is_some_and(|d| d.contains("control character")),
            "{query}: {problem}"
        );
    }
    let long = "x".repeat(2000);
    expect_problem(
        app.get(&t.token, &format!("/v1/messages?subject={long}"))
            .await,
        400,
        "invalid-request",
    )
    .await;
    // Plain filters still filter.
    let page = expect_json(app.get(&t.token, "/v1/messages?subject=lunch").await, 200).await;
    assert_eq!(page["items"].as_array().expect("items").len(), 1);
    let page = expect_json(app.get(&t.token, "/v1/messages?q=report").await, 200).await;
    assert_eq!(page["items"].as_array().expect("items").len(), 1);

    // The same filters in a run's query: refused, and no run is made.
    app.upload(&t, "rules", "rules").await;
    let pipeline = app
        .pipeline(
            &t,
            json!({"name": "p", "stages": [rules_stage(1, json!([]))]}),
        )
        .await;
    let pid = pipeline["id"].as_str().expect("id");
    for query in [
        json!({"subject": "\u{0}"}),
        json!({"q": "\u{0}"}),
        json!({"from": "a\rb"}),
        json!({"tag": "x\n"}),
    ] {
        expect_problem(
            app.post_json(
                &t.token,
                &format!("/v1/pipelines/{pid}/runs"),
                &json!({ "query": query }),
            )
            .await,
            400,
            "invalid-request",
        )
        .await;
    }
    let runs = expect_json(app.get(&t.token, "/v1/runs").await, 200).await;
    assert_eq!(runs["items"].as_array().expect("runs").len(), 0, "{runs}");
    let run = app
        .run_to_end(&t, pid, json!({"query": {"subject": "lunch"}}))
        .await;
    assert_eq!(
        run["counts"]["total"], 1,
        "a plain query selects what it names"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_body_within_its_limit_is_taken() {
    // The cap counts bytes: a body sent in pieces, without a length, passes when it fits.
    let app = spawn_app().await;
    let t = app.tenant("acme").await;
    let addr = app.base.trim_start_matches("http://").to_string();
    let mut conn = TcpStream::connect(addr).await.expect("connect");
    let message = mail("chunked", "in two pieces");
    let (first, second) = message.split_at(message.len() / 2);
    let head = head(
        "POST",
        "/v1/messages",
        Some(&t.token),
        &[
            ("Content-Type", "message/rfc822".to_string()),
            ("Transfer-Encoding", "chunked".to_string()),
        ],
    );
    conn.write_all(head.as_bytes()).await.expect("head");
    for piece in [first, second] {
        conn.write_all(format!("{:x}\r\n", piece.len()).as_bytes())
            .await
            .expect("size");
        conn.write_all(piece).await.expect("piece");
        conn.write_all(b"\r\n").await.expect("end");
        conn.flush().await.expect("flush");
    }
    conn.write_all(b"0\r\n\r\n").await.expect("last");
    let answer = read_answer(&mut conn).await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    app.stop().await;
}
