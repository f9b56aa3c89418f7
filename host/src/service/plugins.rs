//! Plugins: upload a version; dry-run a version over a message before it touches any mail.

use super::{Result, ServiceError, Services, missing};
use crate::domain::{FolderName, TenantId};
use crate::message::Envelope;
use crate::pipeline::ingest;
use crate::sandbox::{Failure, Keep, Outcome as PluginOutcome};
use crate::store::{PluginVersionRow, TenantRow};
use std::sync::Arc;

/// Checks and compiles a component (in a worker process, within the tenant's compile budget) and
/// stores it as the next version of plugin `name`. The same bytes again return the existing version
/// (`false`).
pub async fn upload(
    svc: &Services,
    tenant: &TenantRow,
    name: &str,
    bytes: &[u8],
) -> Result<(PluginVersionRow, bool)> {
    // A caller that goes away drops this future, which kills the compile worker.
    let plugin = svc
        .stages
        .runtime()
        .load(tenant.id.as_str(), bytes, &tenant.limits)
        .await?;
    let info = plugin.info().clone();
    Ok(svc
        .store
        .add_plugin_version(&tenant.id, name, &info, bytes)
        .await?)
}

/// The message a dry run reads.
#[derive(Debug, Clone)]
pub enum TrialMessage {
    /// Raw bytes given with the request.
    Raw(Vec<u8>),
    /// A stored message (with its folder, flags and tags).
    Stored(String),
}

/// A dry run's input.
#[derive(Debug, Clone)]
pub struct Trial {
    /// The message; `None` when the request did not name exactly one. That is refused after the
    /// plugin version is found, so an unknown version answers "not found" whatever the body says.
    pub message: Option<TrialMessage>,
    /// The configuration (`null` when absent).
    pub config: Option<serde_json::Value>,
    /// The folder the plugin sees.
    pub folder: Option<String>,
}

/// Runs a plugin version over a message without storing or changing anything: the plugin's outcome
/// (actions judged as a pipeline would), or its failure.
pub async fn dry_run(
    svc: &Services,
    tenant: &TenantRow,
    name: &str,
    version: i64,
    trial: Trial,
) -> Result<Result<PluginOutcome, Failure>> {
    let version = svc
        .store
        .plugin_version(&tenant.id, name, version)
        .await
        .map_err(missing("plugin version"))?;
    let Some(message) = trial.message else {
        return Err(ServiceError::Invalid(
            "give exactly one of `message`, `message_base64` and `message_id`".into(),
        ));
    };
    let (raw, mut envelope) = match message {
        TrialMessage::Raw(raw) => (raw, Envelope::default()),
        TrialMessage::Stored(id) => {
            let (summary, raw) = svc
                .store
                .message_with_raw(&tenant.id, &id)
                .await
                .map_err(missing("message"))?;
            (raw, summary.stored_envelope().for_plugins())
        }
    };
    if raw.len() > svc.max_message_bytes {
        return Err(ServiceError::TooLarge(format!(
            "the message is {} bytes; the limit is {}",
            raw.len(),
            svc.max_message_bytes
        )));
    }
    if let Some(folder) = trial.folder {
        envelope.folder = FolderName::parse(&folder)
            .map_err(|e| ServiceError::InvalidName("folder".into(), e))?
            .into();
    }
    let config = match trial.config {
        Some(value) => value.to_string(),
        None => "null".to_string(),
    };
    // A configuration no pipeline uses leaves no artifact behind (and is kept in memory only in the
    // small area for trials): trying many configurations must not fill the caches.
    let keep = if used_by_a_pipeline(svc, &tenant.id, &version, &config).await? {
        Keep::Cached
    } else {
        Keep::Ephemeral
    };
    let prepared = svc
        .stages
        .prepared(&tenant.id, &version, &config, &tenant.limits, keep)
        .await?;
    let message = ingest::parse(raw, envelope).await?;
    let called = svc
        .stages
        .runtime()
        .run_prepared(&prepared, Arc::new(message), &tenant.limits)
        .await;
    // As a pipeline would judge the output (at most 8 copy-to folders).
    Ok(crate::sandbox::checked(called))
}

/// Whether one of the tenant's pipelines has a stage of `version` with exactly `config` (both are
/// the canonical JSON text of the value).
async fn used_by_a_pipeline(
    svc: &Services,
    tenant: &TenantId,
    version: &PluginVersionRow,
    config: &str,
) -> Result<bool> {
    let pipelines = svc.store.pipelines(tenant).await?;
    Ok(pipelines.iter().flat_map(|p| &p.stages).any(|stage| {
        stage.plugin == version.name && stage.version == version.version && stage.config == config
    }))
}

/// Deletes a plugin version (409 while a pipeline or an unfinished run still uses it).
pub async fn delete_version(
    svc: &Services,
    tenant: &TenantRow,
    name: &str,
    version: i64,
) -> Result<()> {
    svc.store
        .delete_plugin_version(&tenant.id, name, version)
        .await
        .map_err(missing("plugin version"))
}
