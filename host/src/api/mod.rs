//! The HTTP API (poem + poem-openapi): one resource per file, registered in [`service`].
//!
//! Every error is `application/problem+json` ([`problem`]); the spec is served at `/openapi.json`
//! and Swagger UI at `/docs`. The spec is committed at `sdk/openapi.json`, and a test fails when the
//! served one differs.

mod admin;
mod allow;
mod body;
mod gate;
mod health;
mod jobs;
mod messages;
mod models;
mod params;
mod pipelines;
mod plugins;
pub mod problem;
mod runs;
mod stages;
mod state;

pub use state::{AppState, Shared};

use poem::http::{HeaderValue, StatusCode, header};
use poem::{Endpoint, EndpointExt, Response, Route};
use poem_openapi::{OpenApiService, Tags as OaiTags};

/// Operation groups, in the order `/docs` shows them.
#[derive(Debug, OaiTags)]
pub enum Tags {
    /// Tenants and their tokens (admin token).
    Admin,
    /// Upload, inspect and try WebAssembly plugins.
    Plugins,
    /// Import, search and read messages.
    Messages,
    /// Define filter pipelines and start runs.
    Pipelines,
    /// Follow runs and read their results.
    Runs,
    /// Background work: see, retry and cancel jobs.
    Jobs,
    /// Liveness and readiness.
    Ops,
}

type Apis = (
    admin::AdminApi,
    plugins::PluginsApi,
    messages::MessagesApi,
    pipelines::PipelinesApi,
    runs::RunsApi,
    jobs::JobsApi,
    health::HealthApi,
);

/// The documented API; needs no state, so the spec can be exported without a server.
pub fn service() -> OpenApiService<Apis, ()> {
    OpenApiService::new(
        (
            admin::AdminApi,
            plugins::PluginsApi,
            messages::MessagesApi,
            pipelines::PipelinesApi,
            runs::RunsApi,
            jobs::JobsApi,
            health::HealthApi,
        ),
        "wasmail",
        env!("CARGO_PKG_VERSION"),
    )
    .description(
        "Mail processing engine whose per-tenant pipeline stages are sandboxed WebAssembly \
         components. Authenticate with `Authorization: Bearer <token>`: the admin token for \
         `/v1/admin/*`, a tenant token (minted by the admin) for everything else. Errors are \
         `application/problem+json`; match on their `type`.",
    )
}

/// The OpenAPI document, as served at `/openapi.json`.
pub fn spec() -> String {
    service().spec()
}

/// The whole HTTP app over `state`.
pub fn app(state: Shared) -> impl Endpoint {
    let service = service();
    let docs = service.swagger_ui();
    let spec = service.spec_endpoint();
    let routes = Route::new()
        .nest("/", service)
        .nest("/docs", docs)
        .at("/openapi.json", spec)
        .data(state.clone());
    gate::Gate::new(routes, state)
        .catch_all_error(problem::catch_all)
        .around(allow::add_allow)
        .map(close_after_refused_body)
}

/// A body refused as too large was not read to its end: the connection cannot carry another request,
/// so say so instead of letting the client reuse it and fail.
async fn close_after_refused_body(mut resp: Response) -> Response {
    if resp.status() == StatusCode::PAYLOAD_TOO_LARGE {
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}
