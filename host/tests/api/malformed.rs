//! Malformed mail through the API: a leading blank line before the headers, duplicated headers, and
//! hostile attachment file names in the download's `Content-Disposition`.

use crate::helpers::*;
use serde_json::Value;

/// A multipart message whose attachments carry these `Content-Disposition` parameters, in order.
fn with_attachments(dispositions: &[&str]) -> Vec<u8> {
    let mut raw = String::from(
        "From: Alice <alice@example.test>\r\nTo: bob@example.test\r\nSubject: names\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
         --b\r\nContent-Type: text/plain\r\n\r\nSee the files.\r\n",
    );
    for (i, params) in dispositions.iter().enumerate() {
        raw.push_str(&format!(
            "--b\r\nContent-Type: application/octet-stream\r\n\
             Content-Disposition: attachment{params}\r\n\r\npayload {i}\r\n"
        ));
    }
    raw.push_str("--b--\r\n");
    raw.into_bytes()
}

/// The download's `Content-Disposition`, checked to be one line of ASCII in the RFC 6266 form:
/// (ASCII fallback, decoded `filename*`).
async fn download_name(app: &TestApp, t: &Tenant, id: &str, index: usize) -> (String, String) {
    let resp = app
        .get(&t.token, &format!("/v1/messages/{id}/attachments/{index}"))
        .await;
    assert_eq!(resp.status(), 200, "attachment {index}");
    let headers = resp.headers().clone();
    // Nothing the name holds may become a header of its own.
    assert!(headers.get("set-cookie").is_none(), "{headers:?}");
    assert!(headers.get("x-injected").is_none(), "{headers:?}");
    assert_eq!(headers.get_all("content-disposition").iter().count(), 1);
    let value = headers["content-disposition"]
        .to_str()
        .expect("visible ASCII")
        .to_string();
    assert!(
        value.bytes().all(|b| (b' '..=b'~').contains(&b)),
        "{value:?}"
    );
    let rest = value
        .strip_prefix("attachment; filename=\"")
        .unwrap_or_else(|| panic!("{value}"));
    let (fallback, encoded) = rest
        .split_once("\"; filename*=UTF-8''")
        .unwrap_or_else(|| panic!("{value}"));
    assert!(!fallback.contains(['"', '\\', '/']), "{value}");
    assert!(!encoded.contains([' ', ';', '"', '\'']), "{value}");
    let body = resp.bytes().await.expect("bytes");
    assert_eq!(body.as_ref(), format!("payload {index}").as_bytes());
    let name = decode_percent(encoded);
    assert!(!name.contains(['/', '\\', '\r', '\n']), "{name:?}");
    (fallback.to_string(), name)
}

/// Percent-decoding, written out here so the test does not share the server's encoder.
fn decode_percent(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).expect("hex");
            out.push(u8::from_str_radix(hex, 16).expect("hex digits"));
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).expect("UTF-8")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attachment_downloads_carry_a_safe_rfc6266_file_name() {
    let app = spawn_app().await;
    let t = app.tenant("acme").await;
    let raw = with_attachments(&[
        // UTF-8, as RFC 2231 and as RFC 2047 encode it.
        "; filename*=utf-8''Gr%C3%BC%C3%9Fe%20%E2%80%93%20%D0%BE%D1%82%D1%87%D1%91%D1%82.pdf",
        "; filename=\"=?utf-8?b?0L7RgtGH0ZHRgi5kb2N4?=\"",
        // CR LF and a would-be header inside the name.
        "; filename*=utf-8''evil%0D%0ASet-Cookie%3A%20a%3Db%0D%0AX-Injected%3A%201.txt",
        // Quotes and a backslash.
        "; filename=\"=?utf-8?q?say_=22hi=22=5C.txt?=\"",
        // Climbing out of the download folder.
        "; filename=\"../../etc/passwd\"",
        // No name at all.
        "",
    ]);
    let imported = app.import(&t, &raw).await;
    let id = imported["message"]["id"].as_str().expect("id").to_string();
    let m = expect_json(app.get(&t.token, &format!("/v1/messages/{id}")).await, 200).await;
    assert_eq!(
        m["attachments"].as_array().expect("attachments").len(),
        6,
        "{m}"
    );

    let (fallback, name) = download_name(&app, &t, &id, 0).await;
    assert_eq!(name, "Grüße – отчёт.pdf");
    assert_eq!(fallback, "Gr_e _ _.pdf");
    let (fallback, name) = download_name(&app, &t, &id, 1).await;
    assert_eq!(name, "отчёт.docx");
    assert_eq!(fallback, "_.docx");
    let (fallback, name) = download_name(&app, &t, &id, 2).await;
    assert_eq!(name, "evilSet-Cookie: a=bX-Injected: 1.txt");
    assert_eq!(fallback, name);
    let (fallback, name) = download_name(&app, &t, &id, 3).await;
    assert_eq!(name, "say \"hi\"_.txt");
    assert_eq!(fallback, "say _hi__.txt");
    let (fallback, name) = download_name(&app, &t, &id, 4).await;
    assert_eq!(name, "_.._etc_passwd");
    assert_eq!(fallback, name);
    let (fallback, name) = download_name(&app, &t, &id, 5).await;
    assert_eq!(
        (fallback.as_str(), name.as_str()),
        ("attachment-5", "attachment-5")
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leading_blank_line_message_keeps_its_headers_and_its_bytes() {
    let app = spawn_app().await;
    let t = app.tenant("acme").await;
    let mut raw = b"   \t\r\n".to_vec();
    raw.extend_from_slice(&mail("leading blank line", "the body"));
    let imported = app.import(&t, &raw).await;
    let id = imported["message"]["id"].as_str().expect("id").to_string();
    assert_eq!(
        imported["message"]["subject"], "leading blank line",
        "{imported}"
    );
    assert_eq!(imported["message"]["size"], raw.len());

    let served = app
        .get(&t.token, &format!("/v1/messages/{id}/raw"))
        .await
        .bytes()
        .await
        .expect("bytes");
    assert!(served.as_ref() == raw.as_slice(), "raw bytes differ");

    let m = expect_json(app.get(&t.token, &format!("/v1/messages/{id}")).await, 200).await;
    let names: Vec<&str> = m["headers"]
        .as_array()
        .expect("headers")
        .iter()
        .filter_map(|h| h["name"].as_str())
        .collect();
    assert_eq!(
        names,
        ["From", "To", "Subject", "Date", "Message-ID"],
        "{m}"
    );
    assert_eq!(m["from"]["address"], "alice@example.test");
    assert_eq!(
        m["text"].as_str().map(str::trim_end),
        Some("the body"),
        "{m}"
    );
    // The list and its subject filter see it too.
    let page = expect_json(
        app.get(&t.token, "/v1/messages?subject=leading+blank")
            .await,
        200,
    )
    .await;
    assert_eq!(page["items"][0]["id"], id.as_str(), "{page}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_of_duplicated_headers_is_the_one_shown_and_indexed() {
    let app = spawn_app().await;
    let t = app.tenant("acme").await;
    let raw = b"From: Shown <shown@example.test>\r\nFrom: Hidden <hidden@example.test>\r\n\
Subject: what the reader sees\r\nSubject: what a filter was meant to see\r\n\r\nbody\r\n";
    let imported = app.import(&t, raw).await;
    let id = imported["message"]["id"].as_str().expect("id").to_string();
    let m = expect_json(app.get(&t.token, &format!("/v1/messages/{id}")).await, 200).await;
    assert_eq!(m["subject"], "what the reader sees", "{m}");
    assert_eq!(m["from"]["address"], "shown@example.test", "{m}");
    // The parsed view still lists every header as written.
    let subjects: Vec<&Value> = m["headers"]
        .as_array()
        .expect("headers")
        .iter()
        .filter(|h| h["name"] == "Subject")
        .collect();
    assert_eq!(subjects.len(), 2, "{m}");
    let ids = |page: Value| -> Vec<String> {
        page["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter_map(|i| i["id"].as_str().map(str::to_string))
            .collect()
    };
    let list = |query: &'static str| {
        let app = &app;
        let t = &t;
        async move {
            expect_json(
                app.get(&t.token, &format!("/v1/messages?{query}")).await,
                200,
            )
            .await
        }
    };
    assert_eq!(ids(list("subject=reader+sees").await), [id.as_str()]);
    assert!(ids(list("subject=meant+to+see").await).is_empty());
    assert_eq!(ids(list("from=shown").await), [id.as_str()]);
    assert!(ids(list("from=hidden").await).is_empty());
    app.stop().await;
}
