//! What every handler can reach.

use super::problem::ApiError;
use crate::auth::Auth;
use crate::pipeline::stages::StageCache;
use crate::service::Services;
use crate::store::{Store, TenantRow};
use poem::{IntoResponse, Request};
use poem_openapi::SecurityScheme;
use poem_openapi::auth::Bearer;
use std::sync::Arc;

/// The application's shared state.
#[derive(Debug)]
pub struct AppState {
    /// The database.
    pub store: Store,
    /// Tokens.
    pub auth: Auth,
    /// Prepared plugins (and the runtime).
    pub stages: StageCache,
    /// The use cases.
    pub services: Services,
    /// Largest message accepted, bytes.
    pub max_message_bytes: usize,
    /// Largest JSON request body accepted, bytes.
    pub max_json_bytes: usize,
    /// Default tenant token lifetime, seconds.
    pub token_ttl_secs: u64,
}

/// Handlers take the state as `Data<&Shared>`.
pub type Shared = Arc<AppState>;

/// The admin token, as `Authorization: Bearer <token>`.
#[derive(SecurityScheme)]
#[oai(ty = "bearer")]
pub struct AdminToken(Bearer);

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(..)") // never the token itself
    }
}

/// A tenant token (a JWT minted by the admin), as `Authorization: Bearer <token>`. Extracting it
/// yields the tenant the request's gate already authenticated ([`super::gate`]).
#[derive(SecurityScheme)]
#[oai(ty = "bearer", bearer_format = "JWT", checker = "tenant_of")]
pub struct TenantToken(TenantRow);

/// The tenant the gate authenticated for this request (a request extension).
#[derive(Debug, Clone)]
pub struct Authenticated(pub TenantRow);

async fn tenant_of(req: &Request, bearer: Bearer) -> poem::Result<TenantRow> {
    if let Some(Authenticated(tenant)) = req.extensions().get::<Authenticated>() {
        return Ok(tenant.clone());
    }
    // Only reached if a route escaped the gate's classification: check the token here then.
    let state = req.data::<Shared>().ok_or_else(|| {
        poem::Error::from_response(ApiError::internal("no state").into_response())
    })?;
    state
        .check_tenant(&bearer.token)
        .await
        .map_err(|e| poem::Error::from_response(e.into_response()))
}

impl std::fmt::Debug for TenantToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TenantToken(..)")
    }
}

// The schemes only extract the header; tokens are checked by the handlers, which have the state.
impl AppState {
    /// Checks an admin request.
    pub fn admin(&self, token: &AdminToken) -> Result<(), ApiError> {
        Ok(self.auth.admin(&token.0.token)?)
    }

    /// The tenant of a tenant request (its token was checked when it was extracted).
    pub async fn tenant(&self, token: &TenantToken) -> Result<TenantRow, ApiError> {
        Ok(token.0.clone())
    }

    /// Checks a tenant token: it verifies, is not revoked, and its tenant still exists.
    pub async fn check_tenant(&self, token: &str) -> Result<TenantRow, ApiError> {
        Ok(self.auth.tenant(&self.store, token).await?)
    }
}
