//! Liveness and readiness, for load balancers and orchestrators.

use super::Tags;
use super::problem::{ApiError, Kind};
use super::state::Shared;
use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};

/// A health answer.
#[derive(Debug, Clone, Object)]
pub struct Health {
    /// `ok` or `ready`.
    pub status: String,
}

/// Health endpoints; no authentication.
#[derive(Debug)]
pub struct HealthApi;

#[OpenApi(tag = "Tags::Ops")]
impl HealthApi {
    /// The process is alive and serving HTTP. Answers without touching the database or plugins.
    #[oai(path = "/health", method = "get", operation_id = "health")]
    async fn health(&self) -> Json<Health> {
        Json(Health {
            status: "ok".into(),
        })
    }

    /// The database is reachable and the plugin engine is up: ready for traffic (503 otherwise).
    #[oai(path = "/ready", method = "get", operation_id = "ready")]
    async fn ready(&self, state: Data<&Shared>) -> Result<Json<Health>, ApiError> {
        let db = tokio::time::timeout(std::time::Duration::from_secs(2), state.store.ping()).await;
        match db {
            Ok(Ok(())) => Ok(Json(Health {
                status: "ready".into(),
            })),
            Ok(Err(e)) => Err(ApiError::new(
                Kind::Unavailable,
                format!("database unreachable: {e}"),
            )),
            Err(_) => Err(ApiError::new(
                Kind::Unavailable,
                "database did not answer within 2 s",
            )),
        }
    }
}
