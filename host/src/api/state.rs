//! What every handler can reach.

use super::problem::{ApiError, Kind};
use crate::auth::Auth;
use crate::pipeline::stages::StageCache;
use crate::pipeline::worker::Worker;
use crate::store::{Store, StoreError, TenantRow};
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
    /// The run executor, woken when runs are queued.
    pub worker: Worker,
    /// Largest message accepted, bytes.
    pub max_message_bytes: usize,
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

/// A tenant token (a JWT minted by the admin), as `Authorization: Bearer <token>`.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", bearer_format = "JWT")]
pub struct TenantToken(Bearer);

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

    /// Checks a tenant request; the tenant must still exist.
    pub async fn tenant(&self, token: &TenantToken) -> Result<TenantRow, ApiError> {
        let claims = self.auth.verify(&token.0.token)?;
        match self.store.tenant(&claims.sub).await {
            Ok(tenant) => Ok(tenant),
            Err(StoreError::NotFound) => Err(ApiError::new(
                Kind::Unauthorized,
                "the token's tenant no longer exists",
            )),
            Err(e) => Err(e.into()),
        }
    }
}
