//! Every error the API returns: `application/problem+json` (RFC 9457) with a stable `type`.
//!
//! Handlers return [`ApiError`]; errors raised before a handler runs (unknown route, wrong method,
//! bad JSON, missing auth, wrong content type) are turned into the same shape by [`from_poem`], used
//! both as the operations' bad-request handler and as the catch-all of the whole app. Internal details
//! are logged, never returned.

use crate::auth::AuthError;
use crate::domain::InvalidName;
use crate::pipeline::PipelineError;
use crate::sandbox::LoadError;
use crate::service::ServiceError;
use crate::store::StoreError;
use poem::http::StatusCode;
use poem::{IntoResponse, Response};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object};

/// Prefix of every problem `type`.
pub const TYPE_PREFIX: &str = "urn:wasmail:problem:";

/// An RFC 9457 problem.
#[derive(Debug, Clone, Object)]
pub struct Problem {
    /// Stable identifier of the kind of problem (`urn:wasmail:problem:<kind>`): match on this.
    #[oai(rename = "type")]
    pub ty: String,
    /// Short summary of the kind of problem.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What happened this time, and what to do about it.
    pub detail: String,
}

/// Any error of the API.
#[derive(Debug, ApiResponse)]
#[oai(bad_request_handler = "from_poem")]
pub enum ApiError {
    /// An error; its `type` says which.
    #[oai(content_type = "application/problem+json")]
    Problem(StatusCode, Json<Problem>),
}

/// The kinds of problem. Their names are part of the API: never rename one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// 400: the request is malformed (bad JSON, a bad parameter).
    InvalidRequest,
    /// 401: no valid credentials.
    Unauthorized,
    /// 401: a tenant token that was revoked (by id, or as issued before the tenant's cut-off).
    TokenRevoked,
    /// 403: valid credentials for something else.
    Forbidden,
    /// 404: no such resource (for this tenant), or no such route.
    NotFound,
    /// 405: the route exists, the method does not.
    MethodNotAllowed,
    /// 409: conflicts with the current state.
    Conflict,
    /// 413: the body is too large.
    PayloadTooLarge,
    /// 415: wrong `Content-Type`.
    UnsupportedMediaType,
    /// 422: well-formed but invalid values.
    ValidationFailed,
    /// 422: a folder, flag or tag that breaks the naming rules (`crate::domain`).
    InvalidName,
    /// 422: the upload is not a WebAssembly component.
    InvalidComponent,
    /// 422: the component does not target the wasmail plugin world.
    WrongWorld,
    /// 422: the component imports something plugins may not use.
    ForbiddenImport,
    /// 422: the plugin rejected the stage configuration.
    ConfigRejected,
    /// 422: the component defines more memories, tables, instances, table elements or segments
    /// than the engine allows.
    ExceedsLimits,
    /// 422: compiling the component took more time or memory than the tenant's compile budget.
    CompileBudgetExceeded,
    /// 500: our fault; logged.
    Internal,
    /// 503: not ready (database unreachable).
    Unavailable,
}

impl Kind {
    /// Stable name.
    pub fn slug(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid-request",
            Self::Unauthorized => "unauthorized",
            Self::TokenRevoked => "token-revoked",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not-found",
            Self::MethodNotAllowed => "method-not-allowed",
            Self::Conflict => "conflict",
            Self::PayloadTooLarge => "payload-too-large",
            Self::UnsupportedMediaType => "unsupported-media-type",
            Self::ValidationFailed => "validation-failed",
            Self::InvalidName => "invalid-name",
            Self::InvalidComponent => "invalid-component",
            Self::WrongWorld => "wrong-world",
            Self::ForbiddenImport => "forbidden-import",
            Self::ConfigRejected => "plugin-config-rejected",
            Self::ExceedsLimits => "component-exceeds-limits",
            Self::CompileBudgetExceeded => "compile-budget-exceeded",
            Self::Internal => "internal",
            Self::Unavailable => "unavailable",
        }
    }

    fn status(self) -> StatusCode {
        match self {
            Self::InvalidRequest => StatusCode::BAD_REQUEST,
            Self::Unauthorized | Self::TokenRevoked => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::ValidationFailed
            | Self::InvalidName
            | Self::InvalidComponent
            | Self::WrongWorld
            | Self::ForbiddenImport
            | Self::ConfigRejected
            | Self::ExceedsLimits
            | Self::CompileBudgetExceeded => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn title(self) -> &'static str {
        match self {
            Self::InvalidRequest => "Invalid request",
            Self::Unauthorized => "Unauthorized",
            Self::TokenRevoked => "Token revoked",
            Self::Forbidden => "Forbidden",
            Self::NotFound => "Not found",
            Self::MethodNotAllowed => "Method not allowed",
            Self::Conflict => "Conflict",
            Self::PayloadTooLarge => "Payload too large",
            Self::UnsupportedMediaType => "Unsupported media type",
            Self::ValidationFailed => "Validation failed",
            Self::InvalidName => "Invalid name",
            Self::InvalidComponent => "Not a valid WebAssembly component",
            Self::WrongWorld => "Wrong plugin world",
            Self::ForbiddenImport => "Forbidden import",
            Self::ConfigRejected => "Configuration rejected by the plugin",
            Self::ExceedsLimits => "Component exceeds the engine's limits",
            Self::CompileBudgetExceeded => "Compile budget exceeded",
            Self::Internal => "Internal error",
            Self::Unavailable => "Service unavailable",
        }
    }
}

impl ApiError {
    /// A problem of `kind` with `detail`.
    pub fn new(kind: Kind, detail: impl Into<String>) -> Self {
        let status = kind.status();
        Self::Problem(
            status,
            Json(Problem {
                ty: format!("{TYPE_PREFIX}{}", kind.slug()),
                title: kind.title().to_string(),
                status: status.as_u16(),
                detail: detail.into(),
            }),
        )
    }

    /// 404 for `what`.
    pub fn not_found(what: &str) -> Self {
        Self::new(Kind::NotFound, format!("{what} not found"))
    }

    /// 422 for a value that is well-formed but invalid.
    pub fn invalid(detail: impl Into<String>) -> Self {
        Self::new(Kind::ValidationFailed, detail)
    }

    /// 500; `error` is logged, not returned.
    pub fn internal(error: impl std::fmt::Display) -> Self {
        tracing::error!("internal error: {error}");
        Self::new(
            Kind::Internal,
            "internal error; the server log has the details",
        )
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Problem(status, _) => *status,
        }
    }
}

/// Turns an error raised outside the handlers into a problem.
pub fn from_poem(err: poem::Error) -> ApiError {
    let status = err.status();
    let kind = match status {
        StatusCode::UNAUTHORIZED => Kind::Unauthorized,
        StatusCode::FORBIDDEN => Kind::Forbidden,
        StatusCode::NOT_FOUND => Kind::NotFound,
        StatusCode::METHOD_NOT_ALLOWED => Kind::MethodNotAllowed,
        StatusCode::PAYLOAD_TOO_LARGE => Kind::PayloadTooLarge,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => Kind::UnsupportedMediaType,
        StatusCode::UNPROCESSABLE_ENTITY => Kind::ValidationFailed,
        s if s.is_server_error() => return ApiError::internal(err),
        _ => Kind::InvalidRequest,
    };
    let detail = match kind {
        Kind::Unauthorized => {
            "missing or malformed `Authorization: Bearer <token>` header".to_string()
        }
        Kind::NotFound => "no such route; /docs lists them".to_string(),
        _ => err.to_string(),
    };
    ApiError::new(kind, detail)
}

/// The catch-all of the whole app: any error becomes a problem response.
pub async fn catch_all(err: poem::Error) -> Response {
    // A handler's own ApiError travels as an error that carries its finished problem response.
    if err.is_from_response() {
        return err.into_response();
    }
    if err.is::<poem::error::MethodNotAllowedError>() {
        return ApiError::new(
            Kind::MethodNotAllowed,
            "this route does not take that method",
        )
        .into_response();
    }
    from_poem(err).into_response()
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ApiError::new(Kind::NotFound, "not found"),
            StoreError::Conflict(why) => ApiError::new(Kind::Conflict, why),
            other => ApiError::internal(other),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Unauthorized(why) => ApiError::new(Kind::Unauthorized, why),
            AuthError::Forbidden(why) => ApiError::new(Kind::Forbidden, why),
            AuthError::Revoked(why) => ApiError::new(Kind::TokenRevoked, why),
            AuthError::Store(e) => e.into(),
            other => ApiError::internal(other),
        }
    }
}

impl From<LoadError> for ApiError {
    fn from(e: LoadError) -> Self {
        let kind = match &e {
            LoadError::TooLarge { .. } => Kind::PayloadTooLarge,
            LoadError::NotComponent(_) | LoadError::Invalid(_) => Kind::InvalidComponent,
            LoadError::WrongWorld { .. } | LoadError::Link(_) => Kind::WrongWorld,
            LoadError::ForbiddenImport(_) => Kind::ForbiddenImport,
            LoadError::Rejected(_) | LoadError::Prepare(_) => Kind::ConfigRejected,
            LoadError::ExceedsLimits(_) => Kind::ExceedsLimits,
            LoadError::CompileBudgetExceeded { .. } => Kind::CompileBudgetExceeded,
            LoadError::ShuttingDown => Kind::Unavailable,
            LoadError::Compile(_) | LoadError::Engine(_) => return ApiError::internal(e),
        };
        ApiError::new(kind, e.to_string())
    }
}

impl From<PipelineError> for ApiError {
    fn from(e: PipelineError) -> Self {
        match e {
            PipelineError::Store(e) => e.into(),
            PipelineError::Load(e) => e.into(),
            other => ApiError::internal(other),
        }
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::NotFound(what) => ApiError::not_found(what),
            ServiceError::Invalid(why) => ApiError::invalid(why),
            ServiceError::InvalidName(field, e) => invalid_name(&field)(e),
            ServiceError::ConfigRejected(why) => ApiError::new(Kind::ConfigRejected, why),
            ServiceError::TooLarge(why) => ApiError::new(Kind::PayloadTooLarge, why),
            ServiceError::Conflict(why) => ApiError::new(Kind::Conflict, why),
            ServiceError::Store(e) => e.into(),
            ServiceError::Load(e) => e.into(),
            ServiceError::Pipeline(e) => e.into(),
        }
    }
}

/// Maps a store's not-found to "`what` not found" (the same answer whether the resource belongs to
/// another tenant or does not exist at all); other errors as usual.
pub fn missing(what: &'static str) -> impl FnOnce(StoreError) -> ApiError {
    move |e| match e {
        StoreError::NotFound => ApiError::not_found(what),
        e => e.into(),
    }
}

/// Maps a refused name in the input `field` to a 422 `invalid-name` that names the field and the
/// rule: "`folder`: folder "a\r\nb": folder names may not contain control characters (U+000D)".
pub fn invalid_name(field: &str) -> impl FnOnce(InvalidName) -> ApiError + '_ {
    move |e| ApiError::new(Kind::InvalidName, format!("`{field}`: {e}"))
}
