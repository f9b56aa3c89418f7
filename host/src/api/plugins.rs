//! Plugins: upload versions, list, inspect, delete, and try one on a message (dry run).

use super::Tags;
use super::body::read_limited;
use super::models::{PluginFailure, PluginOutcome, time};
use super::problem::{ApiError, missing};
use super::state::{Shared, TenantToken};
use crate::service::plugins::{Trial, TrialMessage};
use crate::store::PluginVersionRow;
use chrono::{DateTime, Utc};
use poem::Body;
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::{Binary, Json};
use poem_openapi::types::Base64;
use poem_openapi::{ApiResponse, Object, OpenApi};

/// A plugin: a name and its numbered versions.
#[derive(Debug, Clone, Object)]
pub struct Plugin {
    /// Its name.
    pub name: String,
    /// Versions that exist, ascending.
    pub versions: Vec<i64>,
    /// The newest version.
    #[oai(skip_serializing_if_is_none)]
    pub latest_version: Option<i64>,
    /// When the first version was uploaded.
    pub created_at: DateTime<Utc>,
}

/// One uploaded version of a plugin.
#[derive(Debug, Clone, Object)]
pub struct PluginVersion {
    /// Plugin name.
    pub name: String,
    /// Version number, from 1; numbers are never reused.
    pub version: i64,
    /// Hex SHA-256 of the component.
    pub sha256: String,
    /// The WIT world it targets.
    pub world: String,
    /// Size in bytes.
    pub size: i64,
    /// What it imports.
    pub imports: Vec<String>,
    /// When it was uploaded.
    pub created_at: DateTime<Utc>,
}

impl From<PluginVersionRow> for PluginVersion {
    fn from(v: PluginVersionRow) -> Self {
        Self {
            name: v.name,
            version: v.version,
            sha256: v.sha256,
            world: v.world,
            size: v.size,
            imports: v.imports,
            created_at: time(v.created_at),
        }
    }
}

/// A message to try a plugin on, and the stage configuration. Give exactly one of `message`,
/// `message_base64` and `message_id`.
#[derive(Debug, Clone, Object)]
pub struct DryRunRequest {
    /// The raw RFC 5322 message, as text.
    pub message: Option<String>,
    /// The raw RFC 5322 message, base64 (for messages that are not valid UTF-8).
    pub message_base64: Option<Base64<Vec<u8>>>,
    /// A stored message of yours.
    pub message_id: Option<String>,
    /// The stage configuration (any JSON; default `null`).
    pub config: Option<serde_json::Value>,
    /// The folder the plugin sees the message in (default: the stored message's, else `INBOX`).
    pub folder: Option<String>,
}

/// What the plugin decided, or how it failed. Nothing is applied.
#[derive(Debug, Clone, Object)]
pub struct DryRunResult {
    /// Whether the call succeeded.
    pub ok: bool,
    /// The call's result, when it succeeded.
    #[oai(skip_serializing_if_is_none)]
    pub outcome: Option<PluginOutcome>,
    /// The failure, when it failed.
    #[oai(skip_serializing_if_is_none)]
    pub error: Option<PluginFailure>,
}

#[derive(ApiResponse)]
enum Uploaded {
    /// A new version.
    #[oai(status = 201)]
    Created(Json<PluginVersion>),
    /// These exact bytes are already a version of this plugin: that version.
    #[oai(status = 200)]
    Existing(Json<PluginVersion>),
}

#[derive(ApiResponse)]
enum Deleted {
    /// Deleted.
    #[oai(status = 204)]
    NoContent,
}

/// Plugin endpoints.
#[derive(Debug)]
pub struct PluginsApi;

#[OpenApi(tag = "Tags::Plugins")]
impl PluginsApi {
    /// Upload a version of a plugin: the raw WebAssembly component as the body
    /// (`Content-Type: application/wasm`). It is checked (a component, targeting
    /// `wasmail:plugin/filter`, importing nothing forbidden, within the engine's limits on
    /// memories, tables, instances and segments: else a 422 `component-exceeds-limits`) and
    /// compiled before it is stored. Compiling has a per-tenant time and memory budget
    /// (`compile_timeout_ms`, `compile_memory_bytes`): over it, a 422 `compile-budget-exceeded`.
    #[oai(
        path = "/v1/plugins/:name/versions",
        method = "post",
        operation_id = "uploadPluginVersion"
    )]
    async fn upload(
        &self,
        state: Data<&Shared>,
        auth: TenantToken,
        #[oai(validator(pattern = r"^[a-z0-9][a-z0-9._-]{0,63}$"))] name: Path<String>,
        body: Binary<Body>,
    ) -> Result<Uploaded, ApiError> {
        let tenant = state.tenant(&auth).await?;
        let bytes = read_limited(body.0, tenant.limits.upload_bytes, "component").await?;
        // Compiled in a worker process within the tenant's compile budget; a client that leaves
        // drops this future, which kills the worker.
        let (version, created) =
            crate::service::plugins::upload(&state.services, &tenant, &name, &bytes).await?;
        Ok(if created {
            Uploaded::Created(Json(version.into()))
        } else {
            Uploaded::Existing(Json(version.into()))
        })
    }

    /// List plugins.
    #[oai(path = "/v1/plugins", method = "get", operation_id = "listPlugins")]
    async fn list(
        &self,
        state: Data<&Shared>,
        auth: TenantToken,
    ) -> Result<Json<Vec<Plugin>>, ApiError> {
        let tenant = state.tenant(&auth).await?;
        let plugins = state.store.plugins(&tenant.id).await?;
        Ok(Json(
            plugins
                .into_iter()
                .map(|p| Plugin {
                    latest_version: p.versions.last().copied(),
                    name: p.name,
                    versions: p.versions,
                    created_at: time(p.created_at),
                })
                .collect(),
        ))
    }

    /// List a plugin's versions.
    #[oai(
        path = "/v1/plugins/:name/versions",
        method = "get",
        operation_id = "listPluginVersions"
    )]
    async fn versions(
        &self,
        state: Data<&Shared>,
        auth: TenantToken,
        name: Path<String>,
    ) -> Result<Json<Vec<PluginVersion>>, ApiError> {
        let tenant = state.tenant(&auth).await?;
        let versions = state
            .store
            .plugin_versions(&tenant.id, &name)
            .await
            .map_err(missing("plugin"))?;
        Ok(Json(
            versions.into_iter().map(PluginVersion::from).collect(),
        ))
    }

    /// Get one version.
    #[oai(
        path = "/v1/plugins/:name/versions/:version",
        method = "get",
        operation_id = "getPluginVersion"
    )]
    async fn get(
        &self,
        state: Data<&Shared>,
        auth: TenantToken,
        name: Path<String>,
        version: Path<i64>,
    ) -> Result<Json<PluginVersion>, ApiError> {
        let tenant = state.tenant(&auth).await?;
        let version = state
            .store
            .plugin_version(&tenant.id, &name, *version)
            .await
            .map_err(missing("plugin version"))?;
        Ok(Json(version.into()))
    }

    /// Delete a version. Refused (409) while a pipeline uses it.
    #[oai(
        path = "/v1/plugins/:name/versions/:version",
        method = "delete",
        operation_id = "deletePluginVersion"
    )]
    async fn delete(
        &self,
        state: Data<&Shared>,
        auth: TenantToken,
        name: Path<String>,
        version: Path<i64>,
    ) -> Result<Deleted, ApiError> {
        let tenant = state.tenant(&auth).await?;
        crate::service::plugins::delete_version(&state.services, &tenant, &name, *version).await?;
        Ok(Deleted::NoContent)
    }

    /// Try a version on a message, with a stage configuration, under your limits. Nothing is
    /// stored or changed: the answer is the actions, logs, fuel and time, or the plugin's failure.
    /// A configuration the plugin rejects is a 422 `plugin-config-rejected`.
    #[oai(
        path = "/v1/plugins/:name/versions/:version/test",
        method = "post",
        operation_id = "testPluginVersion"
    )]
    async fn test(
        &self,
        state: Data<&Shared>,
        auth: TenantToken,
        name: Path<String>,
        version: Path<i64>,
        body: Json<DryRunRequest>,
    ) -> Result<Json<DryRunResult>, ApiError> {
        let tenant = state.tenant(&auth).await?;
        let body = body.0;
        let message = match (body.message, body.message_base64, body.message_id) {
            (Some(text), None, None) => Some(TrialMessage::Raw(text.into_bytes())),
            (None, Some(bytes), None) => Some(TrialMessage::Raw(bytes.0)),
            (None, None, Some(id)) => Some(TrialMessage::Stored(id)),
            _ => None,
        };
        let trial = Trial {
            message,
            config: body.config,
            folder: body.folder,
        };
        let result =
            crate::service::plugins::dry_run(&state.services, &tenant, &name, *version, trial)
                .await?;
        Ok(Json(match result {
            Ok(outcome) => DryRunResult {
                ok: true,
                outcome: Some((&outcome).into()),
                error: None,
            },
            Err(failure) => DryRunResult {
                ok: false,
                outcome: None,
                error: Some((&failure).into()),
            },
        }))
    }
}
