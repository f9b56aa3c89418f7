//! The gate every request passes before routing: the caller is authenticated before a byte of the
//! body is read, and the body is bounded before it is buffered.
//!
//! - `/v1/admin/*` needs the admin token; every other `/v1/*` route a tenant token (checked in full:
//!   signature, claims, revocation, the tenant exists; the tenant is handed to the handler, so the
//!   check costs one statement per request, as before).
//! - Each route has a body limit: a message import the server's `max_message_bytes`, a plugin upload
//!   the tenant's `upload_bytes`, a dry run (a message inside JSON, perhaps base64) 4/3 of
//!   `max_message_bytes` plus `max_json_bytes`, everything else `max_json_bytes`. A declared
//!   `Content-Length` over the limit is refused on the headers; a body without one (chunked) is cut
//!   off as it streams past the limit. Either way the answer is a 413 `payload-too-large`.
//!
//! A refused request's body is never read, so its connection is closed rather than reused.

use super::problem::{ApiError, Kind};
use super::state::{Authenticated, Shared};
use futures_util::StreamExt;
use poem::http::{HeaderValue, Method, Version, header};
use poem::{Body, Endpoint, IntoResponse, Request, Response};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Anyone (`/health`, `/ready`, `/docs`, `/openapi.json`).
    Public,
    /// The admin token.
    Admin,
    /// A tenant token.
    Tenant,
}

/// What a route's body is, for its size limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyKind {
    Json,
    Message,
    DryRun,
    Component,
}

impl BodyKind {
    fn what(self) -> &'static str {
        match self {
            Self::Json => "request body",
            Self::Message => "message",
            Self::DryRun => "dry run (its message included)",
            Self::Component => "component (your upload limit)",
        }
    }
}

fn classify(method: &Method, path: &str) -> (Access, BodyKind) {
    let access = if path == "/v1/admin" || path.starts_with("/v1/admin/") {
        Access::Admin
    } else if path.starts_with("/v1/") {
        Access::Tenant
    } else {
        Access::Public
    };
    let segments: Vec<&str> = path.split('/').collect();
    let body = match (method == Method::POST, segments.as_slice()) {
        (true, ["", "v1", "messages"]) => BodyKind::Message,
        (true, ["", "v1", "plugins", name, "versions"]) if !name.is_empty() => BodyKind::Component,
        (true, ["", "v1", "plugins", name, "versions", version, "test"])
            if !name.is_empty() && !version.is_empty() =>
        {
            BodyKind::DryRun
        }
        _ => BodyKind::Json,
    };
    (access, body)
}

/// The endpoint wrapper; see the module docs.
#[derive(Debug)]
pub struct Gate<E> {
    inner: E,
    state: Shared,
}

impl<E> Gate<E> {
    /// Wraps `inner`.
    pub fn new(inner: E, state: Shared) -> Self {
        Self { inner, state }
    }

    fn limit(&self, kind: BodyKind, upload_bytes: Option<usize>) -> usize {
        let json = self.state.max_json_bytes;
        match kind {
            BodyKind::Json => json,
            BodyKind::Message => self.state.max_message_bytes,
            // Base64 carries 3 bytes in 4; the JSON around it is an ordinary JSON body.
            BodyKind::DryRun => (self.state.max_message_bytes / 3)
                .saturating_mul(4)
                .saturating_add(json),
            BodyKind::Component => upload_bytes.unwrap_or(json),
        }
    }
}

/// The bearer token of `req`, if its `Authorization` header has one.
fn bearer(req: &Request) -> Result<&str, ApiError> {
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|token| !token.is_empty())
        .ok_or_else(|| {
            ApiError::new(
                Kind::Unauthorized,
                "missing or malformed `Authorization: Bearer <token>` header",
            )
        })
}

fn declared_length(req: &Request) -> Option<u64> {
    req.headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// Whether the body may be longer than any `Content-Length` says: HTTP/1 without one has a body
/// only when it is chunked; HTTP/2 may stream one without a length.
fn unbounded_body(req: &Request) -> bool {
    declared_length(req).is_none()
        && (req.headers().contains_key(header::TRANSFER_ENCODING)
            || req.version() >= Version::HTTP_2)
}

fn too_large(kind: BodyKind, limit: usize) -> ApiError {
    ApiError::new(
        Kind::PayloadTooLarge,
        format!(
            "the {} is larger than the limit of {limit} bytes",
            kind.what()
        ),
    )
}

/// A refusal sent before the body was read: the connection cannot carry another request.
fn refuse(error: ApiError, body_pending: bool) -> Response {
    let mut resp = error.into_response();
    if body_pending {
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}

impl<E: Endpoint> Endpoint for Gate<E> {
    type Output = Response;

    async fn call(&self, mut req: Request) -> poem::Result<Response> {
        let (access, kind) = classify(req.method(), req.uri().path());
        let body_pending = declared_length(&req).is_some_and(|n| n > 0) || unbounded_body(&req);
        let tenant = match access {
            Access::Public => None,
            Access::Admin => {
                if let Err(e) = bearer(&req).and_then(|t| Ok(self.state.auth.admin(t)?)) {
                    return Ok(refuse(e, body_pending));
                }
                None
            }
            Access::Tenant => {
                let checked = match bearer(&req) {
                    Ok(token) => self.state.check_tenant(token).await,
                    Err(e) => Err(e),
                };
                match checked {
                    Ok(tenant) => Some(tenant),
                    Err(e) => return Ok(refuse(e, body_pending)),
                }
            }
        };
        let limit = self.limit(kind, tenant.as_ref().map(|t| t.limits.upload_bytes));
        if declared_length(&req).is_some_and(|n| n > limit as u64) {
            return Ok(refuse(too_large(kind, limit), true));
        }
        let tripped = Arc::new(AtomicBool::new(false));
        if unbounded_body(&req) {
            // hyper holds a declared length to its word; a body without one is counted here.
            let flag = tripped.clone();
            let mut seen = 0u64;
            let capped = req.take_body().into_bytes_stream().map(move |chunk| {
                let chunk = chunk?;
                seen += chunk.len() as u64;
                if seen > limit as u64 {
                    flag.store(true, Ordering::Relaxed);
                    return Err(std::io::Error::other("the body is larger than its limit"));
                }
                Ok(chunk)
            });
            req.set_body(Body::from_bytes_stream(capped));
        }
        if let Some(tenant) = tenant {
            req.extensions_mut().insert(Authenticated(tenant));
        }
        let result = self.inner.call(req).await;
        // However the reader reported the cut-off (a JSON error, an I/O error), it is a 413.
        if tripped.load(Ordering::Relaxed) {
            return Ok(refuse(too_large(kind, limit), true));
        }
        result.map(IntoResponse::into_response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_classified() {
        let post = Method::POST;
        assert_eq!(
            classify(&post, "/v1/messages"),
            (Access::Tenant, BodyKind::Message)
        );
        assert_eq!(
            classify(&Method::GET, "/v1/messages"),
            (Access::Tenant, BodyKind::Json)
        );
        assert_eq!(
            classify(&post, "/v1/plugins/rules/versions"),
            (Access::Tenant, BodyKind::Component)
        );
        assert_eq!(
            classify(&post, "/v1/plugins/rules/versions/3/test"),
            (Access::Tenant, BodyKind::DryRun)
        );
        assert_eq!(
            classify(&post, "/v1/plugins//versions"),
            (Access::Tenant, BodyKind::Json)
        );
        assert_eq!(
            classify(&post, "/v1/admin/tenants"),
            (Access::Admin, BodyKind::Json)
        );
        assert_eq!(classify(&post, "/v1/admin").0, Access::Admin);
        assert_eq!(classify(&post, "/v1/administrators").0, Access::Tenant);
        assert_eq!(classify(&Method::GET, "/health").0, Access::Public);
        assert_eq!(classify(&Method::GET, "/docs/index.html").0, Access::Public);
        assert_eq!(classify(&Method::GET, "/v1").0, Access::Public);
    }
}
