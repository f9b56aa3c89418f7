//! Admin endpoints: tenants, their plugin limits, and their tokens; what the plugin caches hold.

mod caches;
mod nodes;

use super::Tags;
use super::models::time;
use super::problem::{ApiError, missing};
use super::state::{AdminToken, Shared};
use crate::domain::TenantId;
use crate::sandbox::PluginLimits;
use crate::store::{TenantRow, TokenRow, now_ms};
use caches::Caches;
use chrono::{DateTime, Utc};
use nodes::Node;
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

/// What one call of a tenant's plugin may use.
#[derive(Debug, Clone, Object)]
pub struct Limits {
    /// Largest linear memory of a plugin, bytes.
    #[oai(validator(minimum(value = "1048576"), maximum(value = "1073741824")))]
    pub memory_bytes: u64,
    /// Wall-clock deadline of one call, milliseconds.
    #[oai(validator(minimum(value = "1"), maximum(value = "60000")))]
    pub deadline_ms: u64,
    /// Fuel (about one per WebAssembly instruction) every call gets.
    #[oai(validator(minimum(value = "1000"), maximum(value = "100000000000")))]
    pub fuel_base: u64,
    /// Extra fuel per byte of the message.
    #[oai(validator(minimum(value = "0"), maximum(value = "100000")))]
    pub fuel_per_byte: u64,
    /// Log text kept per call, bytes.
    #[oai(validator(minimum(value = "0"), maximum(value = "1048576")))]
    pub log_bytes: u64,
    /// Largest component accepted at upload, bytes.
    #[oai(validator(minimum(value = "1024"), maximum(value = "134217728")))]
    pub upload_bytes: u64,
    /// Most actions one call may return.
    #[oai(validator(minimum(value = "1"), maximum(value = "10000")))]
    pub max_actions: u32,
    /// Wall-clock (and CPU) time compiling one uploaded component may take, milliseconds.
    #[oai(validator(minimum(value = "100"), maximum(value = "600000")))]
    pub compile_timeout_ms: u64,
    /// Memory compiling one uploaded component may take, bytes.
    #[oai(validator(minimum(value = "16777216"), maximum(value = "8589934592")))]
    pub compile_memory_bytes: u64,
}

/// Changes to limits; absent fields keep their value.
#[derive(Debug, Clone, Default, Object)]
pub struct LimitsPatch {
    /// Largest linear memory of a plugin, bytes.
    #[oai(validator(minimum(value = "1048576"), maximum(value = "1073741824")))]
    pub memory_bytes: Option<u64>,
    /// Wall-clock deadline of one call, milliseconds.
    #[oai(validator(minimum(value = "1"), maximum(value = "60000")))]
    pub deadline_ms: Option<u64>,
    /// Fuel every call gets.
    #[oai(validator(minimum(value = "1000"), maximum(value = "100000000000")))]
    pub fuel_base: Option<u64>,
    /// Extra fuel per byte of the message.
    #[oai(validator(minimum(value = "0"), maximum(value = "100000")))]
    pub fuel_per_byte: Option<u64>,
    /// Log text kept per call, bytes.
    #[oai(validator(minimum(value = "0"), maximum(value = "1048576")))]
    pub log_bytes: Option<u64>,
    /// Largest component accepted at upload, bytes.
    #[oai(validator(minimum(value = "1024"), maximum(value = "134217728")))]
    pub upload_bytes: Option<u64>,
    /// Most actions one call may return.
    #[oai(validator(minimum(value = "1"), maximum(value = "10000")))]
    pub max_actions: Option<u32>,
    /// Wall-clock (and CPU) time compiling one uploaded component may take, milliseconds.
    #[oai(validator(minimum(value = "100"), maximum(value = "600000")))]
    pub compile_timeout_ms: Option<u64>,
    /// Memory compiling one uploaded component may take, bytes.
    #[oai(validator(minimum(value = "16777216"), maximum(value = "8589934592")))]
    pub compile_memory_bytes: Option<u64>,
}

impl LimitsPatch {
    fn apply(&self, mut limits: PluginLimits) -> PluginLimits {
        if let Some(v) = self.memory_bytes {
            limits.memory_bytes = v;
        }
        if let Some(v) = self.deadline_ms {
            limits.deadline_ms = v;
        }
        if let Some(v) = self.fuel_base {
            limits.fuel_base = v;
        }
        if let Some(v) = self.fuel_per_byte {
            limits.fuel_per_byte = v;
        }
        if let Some(v) = self.log_bytes {
            limits.log_bytes = v as usize;
        }
        if let Some(v) = self.upload_bytes {
            limits.upload_bytes = v as usize;
        }
        if let Some(v) = self.max_actions {
            limits.max_actions = v as usize;
        }
        if let Some(v) = self.compile_timeout_ms {
            limits.compile_timeout_ms = v;
        }
        if let Some(v) = self.compile_memory_bytes {
            limits.compile_memory_bytes = v;
        }
        limits
    }
}

impl From<&PluginLimits> for Limits {
    fn from(l: &PluginLimits) -> Self {
        Self {
            memory_bytes: l.memory_bytes,
            deadline_ms: l.deadline_ms,
            fuel_base: l.fuel_base,
            fuel_per_byte: l.fuel_per_byte,
            log_bytes: l.log_bytes as u64,
            upload_bytes: l.upload_bytes as u64,
            max_actions: l.max_actions.try_into().unwrap_or(u32::MAX),
            compile_timeout_ms: l.compile_timeout_ms,
            compile_memory_bytes: l.compile_memory_bytes,
        }
    }
}

/// A tenant.
#[derive(Debug, Clone, Object)]
pub struct Tenant {
    /// Its id.
    pub id: String,
    /// Its unique name.
    pub name: String,
    /// What its plugins may use.
    pub limits: Limits,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

impl From<TenantRow> for Tenant {
    fn from(t: TenantRow) -> Self {
        Self {
            limits: Limits::from(&t.limits),
            id: t.id.to_string(),
            name: t.name,
            created_at: time(t.created_at),
        }
    }
}

/// A tenant to create.
#[derive(Debug, Clone, Object)]
pub struct NewTenant {
    /// Unique name: lower-case letters, digits, `.`, `_` and `-`, up to 63 characters.
    #[oai(validator(pattern = r"^[a-z0-9][a-z0-9._-]{0,62}$"))]
    pub name: String,
    /// Limits differing from the defaults.
    pub limits: Option<LimitsPatch>,
}

/// Changes to a tenant.
#[derive(Debug, Clone, Object)]
pub struct TenantPatch {
    /// Limits to change.
    pub limits: LimitsPatch,
}

/// A token to mint.
#[derive(Debug, Clone, Default, Object)]
pub struct NewToken {
    /// Lifetime in seconds (default: the server's `token_ttl_secs`, 30 days).
    #[oai(validator(minimum(value = "60"), maximum(value = "31536000")))]
    pub ttl_secs: Option<u64>,
}

/// A tenant token. Shown once; wasmail keeps no copy (only its id and times, to list and revoke it).
#[derive(Debug, Clone, Object)]
pub struct Token {
    /// The token, for `Authorization: Bearer <token>`.
    pub token: String,
    /// The tenant it acts as.
    pub tenant_id: String,
    /// Its id (the `jti` claim): what `revokeTenantTokens` takes to revoke this one token.
    pub jti: String,
    /// When it was minted.
    pub issued_at: DateTime<Utc>,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
}

/// A tenant token, as listed (the token itself is shown only when minted).
#[derive(Debug, Clone, Object)]
pub struct TokenInfo {
    /// Its id (the `jti` claim).
    pub jti: String,
    /// When it was minted.
    pub issued_at: DateTime<Utc>,
    /// When it expires.
    pub expires_at: DateTime<Utc>,
    /// Whether it is refused: revoked by id, or issued before the tenant's `revoked_before`.
    pub revoked: bool,
    /// When it was revoked by id.
    #[oai(skip_serializing_if_is_none)]
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A tenant's tokens.
#[derive(Debug, Clone, Object)]
pub struct TokenList {
    /// The tokens minted for it that have not expired, oldest first.
    pub items: Vec<TokenInfo>,
    /// Every token of the tenant issued before this time is revoked, listed or not.
    #[oai(skip_serializing_if_is_none)]
    pub revoked_before: Option<DateTime<Utc>>,
}

impl TokenList {
    fn new(rows: Vec<TokenRow>, cutoff: Option<i64>) -> Self {
        Self {
            items: rows
                .into_iter()
                .map(|t| TokenInfo {
                    revoked: t.revoked_at.is_some() || cutoff.is_some_and(|c| t.issued_at < c),
                    jti: t.jti,
                    issued_at: time(t.issued_at),
                    expires_at: time(t.expires_at),
                    revoked_at: t.revoked_at.map(time),
                })
                .collect(),
            revoked_before: cutoff.map(time),
        }
    }
}

/// What to revoke: exactly one of `jti` and `before`. Revocation is permanent.
#[derive(Debug, Clone, Object)]
pub struct RevokeTokens {
    /// This one token (its `jti`, as minted or listed).
    #[oai(validator(min_length = 1, max_length = 128))]
    pub jti: Option<String>,
    /// Every token of the tenant issued before this time, including tokens not listed (signed
    /// elsewhere with the configured secret: their `iat` counts). At most now; a later cut-off
    /// already in force stays.
    pub before: Option<DateTime<Utc>>,
}

/// How far in the future a revocation's `before` may be (clock skew between the admin's machine
/// and the server); it takes effect as "now".
const BEFORE_SKEW_MS: i64 = 60_000;

#[derive(ApiResponse)]
enum TenantCreated {
    /// The tenant.
    #[oai(status = 201)]
    Created(Json<Tenant>),
}

#[derive(ApiResponse)]
enum TokenCreated {
    /// The token.
    #[oai(status = 201)]
    Created(Json<Token>),
}

#[derive(ApiResponse)]
enum Deleted {
    /// Deleted.
    #[oai(status = 204)]
    NoContent,
}

/// Admin endpoints.
#[derive(Debug)]
pub struct AdminApi;

#[OpenApi(tag = "Tags::Admin")]
impl AdminApi {
    /// What the plugin caches hold: bytes against each budget, in total and per tenant, with hits,
    /// misses and evictions since the server started.
    #[oai(path = "/v1/admin/caches", method = "get", operation_id = "getCaches")]
    async fn caches(
        &self,
        state: Data<&Shared>,
        auth: AdminToken,
    ) -> Result<Json<Caches>, ApiError> {
        state.admin(&auth)?;
        let memory = state.stages.stats();
        Ok(Json(Caches {
            artifacts: state.stages.runtime().cache_stats().into(),
            stages: memory.stages.into(),
            trials: memory.trials.into(),
        }))
    }

    /// The nodes (`wasmail serve` and `wasmail worker` processes) that registered, newest first:
    /// roles, heartbeat, whether alive, and the jobs each holds. Nodes silent for a day are
    /// forgotten.
    #[oai(path = "/v1/admin/nodes", method = "get", operation_id = "listNodes")]
    async fn nodes(
        &self,
        state: Data<&Shared>,
        auth: AdminToken,
    ) -> Result<Json<Vec<Node>>, ApiError> {
        state.admin(&auth)?;
        let nodes = state.store.nodes().await?;
        Ok(Json(nodes.into_iter().map(Node::from).collect()))
    }

    /// Create a tenant.
    #[oai(
        path = "/v1/admin/tenants",
        method = "post",
        operation_id = "createTenant"
    )]
    async fn create_tenant(
        &self,
        state: Data<&Shared>,
        auth: AdminToken,
        body: Json<NewTenant>,
    ) -> Result<TenantCreated, ApiError> {
        state.admin(&auth)?;
        let limits = body
            .limits
            .clone()
            .unwrap_or_default()
            .apply(PluginLimits::default());
        let tenant = state.store.create_tenant(&body.name, &limits).await?;
        Ok(TenantCreated::Created(Json(tenant.into())))
    }

    /// List tenants.
    #[oai(
        path = "/v1/admin/tenants",
        method = "get",
        operation_id = "listTenants"
    )]
    async fn list_tenants(
        &self,
        state: Data<&Shared>,
        auth: AdminToken,
    ) -> Result<Json<Vec<Tenant>>, ApiError> {
        state.admin(&auth)?;
        let tenants = state.store.tenants().await?;
        Ok(Json(tenants.into_iter().map(Tenant::from).collect()))
    }

    /// Get a tenant.
    #[oai(
        path = "/v1/admin/tenants/:tenant_id",
        method = "get",
        operation_id = "getTenant"
    )]
    async fn get_tenant(
        &self,
        state: Data<&Shared>,
        auth: AdminToken,
        tenant_id: Path<String>,
    ) -> Result<Json<Tenant>, ApiError> {
        state.admin(&auth)?;
        let tenant = state
            .store
            .tenant(&TenantId::new(tenant_id.0.clone()))
            .await
            .map_err(missing("tenant"))?;
        Ok(Json(tenant.into()))
    }

    /// Change a tenant's plugin limits.
    #[oai(
        path = "/v1/admin/tenants/:tenant_id",
        method = "patch",
        operation_id = "updateTenant"
    )]
    async fn update_tenant(
        &self,
        state: Data<&Shared>,
        auth: AdminToken,
        tenant_id: Path<String>,
        body: Json<TenantPatch>,
    ) -> Result<Json<Tenant>, ApiError> {
        state.admin(&auth)?;
        let tenant = state
            .store
            .tenant(&TenantId::new(tenant_id.0.clone()))
            .await
            .map_err(missing("tenant"))?;
        let limits = body.limits.apply(tenant.limits);
        let tenant = state
            .store
            .set_tenant_limits(&TenantId::new(tenant_id.0.clone()), &limits)
            .await?;
        Ok(Json(tenant.into()))
    }

    /// Delete a tenant and everything it owns (plugins, messages, pipelines, runs). Its tokens stop
    /// working.
    #[oai(
        path = "/v1/admin/tenants/:tenant_id",
        method = "delete",
        operation_id = "deleteTenant"
    )]
    async fn delete_tenant(
        &self,
        state: Data<&Shared>,
        auth: AdminToken,
        tenant_id: Path<String>,
    ) -> Result<Deleted, ApiError> {
        state.admin(&auth)?;
        state
            .store
            .delete_tenant(&TenantId::new(tenant_id.0.clone()))
            .await
            .map_err(missing("tenant"))?;
        Ok(Deleted::NoContent)
    }

    /// Mint a token for a tenant.
    #[oai(
        path = "/v1/admin/tenants/:tenant_id/tokens",
        method = "post",
        operation_id = "createTenantToken"
    )]
    async fn create_token(
        &self,
        state: Data<&Shared>,
        auth: AdminToken,
        tenant_id: Path<String>,
        body: Json<NewToken>,
    ) -> Result<TokenCreated, ApiError> {
        state.admin(&auth)?;
        let tenant = state
            .store
            .tenant(&TenantId::new(tenant_id.0.clone()))
            .await
            .map_err(missing("tenant"))?;
        let ttl = body.ttl_secs.unwrap_or(state.token_ttl_secs);
        let minted = state.auth.mint(tenant.id.as_str(), ttl)?;
        // Recorded before it is handed out: a token that exists can always be listed and revoked.
        state
            .store
            .record_token(&tenant.id, &minted.row, now_ms())
            .await?;
        Ok(TokenCreated::Created(Json(Token {
            token: minted.token,
            tenant_id: tenant.id.to_string(),
            jti: minted.row.jti,
            issued_at: time(minted.row.issued_at),
            expires_at: time(minted.row.expires_at),
        })))
    }

    /// List a tenant's tokens that have not expired, and its revocation cut-off.
    #[oai(
        path = "/v1/admin/tenants/:tenant_id/tokens",
        method = "get",
        operation_id = "listTenantTokens"
    )]
    async fn list_tokens(
        &self,
        state: Data<&Shared>,
        auth: AdminToken,
        tenant_id: Path<String>,
    ) -> Result<Json<TokenList>, ApiError> {
        state.admin(&auth)?;
        state
            .store
            .tenant(&TenantId::new(tenant_id.0.clone()))
            .await
            .map_err(missing("tenant"))?;
        let (rows, cutoff) = state
            .store
            .tokens(&TenantId::new(tenant_id.0.clone()), now_ms())
            .await?;
        Ok(Json(TokenList::new(rows, cutoff)))
    }

    /// Revoke a tenant's tokens: one by its `jti`, or every one issued before a time. A revoked
    /// token is refused from the next request on (401 `token-revoked`); the tenant's other tokens
    /// and other tenants are unaffected. Answers the tenant's tokens as listed afterwards.
    #[oai(
        path = "/v1/admin/tenants/:tenant_id/tokens/revoke",
        method = "post",
        operation_id = "revokeTenantTokens"
    )]
    async fn revoke_tokens(
        &self,
        state: Data<&Shared>,
        auth: AdminToken,
        tenant_id: Path<String>,
        body: Json<RevokeTokens>,
    ) -> Result<Json<TokenList>, ApiError> {
        state.admin(&auth)?;
        state
            .store
            .tenant(&TenantId::new(tenant_id.0.clone()))
            .await
            .map_err(missing("tenant"))?;
        let now = now_ms();
        match (&body.jti, body.before) {
            (Some(jti), None) => {
                state
                    .store
                    .revoke_token(&TenantId::new(tenant_id.0.clone()), jti, now)
                    .await
                    .map_err(missing("token"))?;
            }
            (None, Some(before)) => {
                let before = before.timestamp_millis();
                if before > now + BEFORE_SKEW_MS {
                    return Err(ApiError::invalid(
                        "`before` is in the future: tokens minted from now on would be revoked too",
                    ));
                }
                state
                    .store
                    .revoke_tokens_before(&TenantId::new(tenant_id.0.clone()), before.min(now), now)
                    .await?;
            }
            _ => {
                return Err(ApiError::invalid("give exactly one of `jti` and `before`"));
            }
        }
        let (rows, cutoff) = state
            .store
            .tokens(&TenantId::new(tenant_id.0.clone()), now)
            .await?;
        Ok(Json(TokenList::new(rows, cutoff)))
    }
}
