//! `Allow` on 405 answers (RFC 9110 requires it): the methods each route takes, read once from the
//! API's own OpenAPI document so the list cannot drift from the routes.

use poem::http::{HeaderValue, StatusCode, header};
use poem::{Endpoint, IntoResponse, Request, Response};
use std::sync::OnceLock;

/// Route templates (`/v1/runs/{id}`) split into segments, with their methods.
fn routes() -> &'static [(Vec<String>, String)] {
    static ROUTES: OnceLock<Vec<(Vec<String>, String)>> = OnceLock::new();
    ROUTES.get_or_init(|| {
        let spec: serde_json::Value = serde_json::from_str(&super::spec()).unwrap_or_default();
        let mut routes = Vec::new();
        if let Some(paths) = spec["paths"].as_object() {
            for (path, item) in paths {
                let mut methods: Vec<String> = item
                    .as_object()
                    .map(|ops| ops.keys().map(|m| m.to_uppercase()).collect())
                    .unwrap_or_default();
                if methods.iter().any(|m| m == "GET") {
                    methods.push("HEAD".into());
                }
                let segments = path.split('/').map(str::to_string).collect();
                routes.push((segments, methods.join(", ")));
            }
        }
        routes
    })
}

/// The methods `path` takes, if it is a route of the API.
pub fn allowed(path: &str) -> Option<&'static str> {
    let segments: Vec<&str> = path.split('/').collect();
    routes().iter().find_map(|(template, methods)| {
        let matches = template.len() == segments.len()
            && template
                .iter()
                .zip(&segments)
                .all(|(t, s)| t == s || (t.starts_with('{') && !s.is_empty()));
        matches.then_some(methods.as_str())
    })
}

/// Middleware: adds `Allow` to 405 answers.
pub async fn add_allow<E: Endpoint>(next: E, req: Request) -> poem::Result<Response> {
    let path = req.uri().path().to_string();
    let mut resp = next.call(req).await?.into_response();
    if resp.status() == StatusCode::METHOD_NOT_ALLOWED
        && let Some(methods) = allowed(&path)
        && let Ok(value) = HeaderValue::from_str(methods)
    {
        resp.headers_mut().insert(header::ALLOW, value);
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_and_their_methods() {
        let messages = allowed("/v1/messages").expect("a route");
        assert!(
            messages.contains("GET") && messages.contains("POST"),
            "{messages}"
        );
        let run = allowed("/v1/runs/0190-abc").expect("a templated route");
        assert!(run.contains("GET") && !run.contains("POST"), "{run}");
        assert!(
            allowed("/v1/runs/x/cancel")
                .expect("route")
                .contains("POST")
        );
        assert_eq!(allowed("/v1/nothing"), None);
        assert_eq!(allowed("/v1/runs/"), None, "an empty segment is not an id");
    }
}
