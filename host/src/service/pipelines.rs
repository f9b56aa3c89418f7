//! Pipelines: define one, change one, start a run over a selection.

use super::{Result, ServiceError, Services, missing};
use crate::domain::{Selection, Stage, Trigger};
use crate::pipeline::PipelineError;
use crate::sandbox::{Keep, LoadError};
use crate::store::{PipelineRow, RunRow, StoreError, TenantRow};

/// A pipeline as a tenant defines it.
#[derive(Debug, Clone)]
pub struct PipelineDefinition {
    /// Unique name within the tenant.
    pub name: String,
    /// Whether it runs on every newly imported message.
    pub on_import: bool,
    /// Stages, in order.
    pub stages: Vec<Stage>,
}

/// Checks every stage: the version exists and the plugin accepts the configuration (it is prepared
/// now, so a bad configuration is refused here rather than failing every message later).
async fn check_stages(svc: &Services, tenant: &TenantRow, stages: &[Stage]) -> Result<()> {
    for (index, stage) in stages.iter().enumerate() {
        let version = svc
            .store
            .plugin_version(&tenant.id, &stage.plugin, stage.version)
            .await
            .map_err(|e| match e {
                StoreError::NotFound => ServiceError::Invalid(format!(
                    "stages[{index}]: you have no plugin {} with version {}",
                    stage.plugin, stage.version
                )),
                e => e.into(),
            })?;
        match svc
            .stages
            .prepared(
                &tenant.id,
                &version,
                &stage.config,
                &tenant.limits,
                Keep::Cached,
            )
            .await
        {
            Ok(_) => {}
            Err(PipelineError::Load(e @ (LoadError::Rejected(_) | LoadError::Prepare(_)))) => {
                return Err(ServiceError::ConfigRejected(format!(
                    "stages[{index}]: {e}"
                )));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Defines a pipeline (every stage prepared first).
pub async fn define(
    svc: &Services,
    tenant: &TenantRow,
    definition: &PipelineDefinition,
) -> Result<PipelineRow> {
    check_stages(svc, tenant, &definition.stages).await?;
    Ok(svc
        .store
        .create_pipeline(
            &tenant.id,
            &definition.name,
            "filter",
            definition.on_import,
            &definition.stages,
        )
        .await?)
}

/// Replaces a pipeline's definition. Runs already made keep the stages they were made with.
pub async fn redefine(
    svc: &Services,
    tenant: &TenantRow,
    id: &str,
    definition: &PipelineDefinition,
) -> Result<PipelineRow> {
    svc.store
        .pipeline(&tenant.id, id)
        .await
        .map_err(missing("pipeline"))?;
    check_stages(svc, tenant, &definition.stages).await?;
    svc.store
        .update_pipeline(
            &tenant.id,
            id,
            &definition.name,
            definition.on_import,
            &definition.stages,
        )
        .await
        .map_err(missing("pipeline"))
}

/// Starts a run of a pipeline over `selection`: queued as a job, executed in the background on any
/// node. Chosen messages must all be the tenant's (each is processed once, however often named).
pub async fn start_run(
    svc: &Services,
    tenant: &TenantRow,
    pipeline: &str,
    trigger: Trigger,
    selection: Selection,
) -> Result<RunRow> {
    svc.store
        .pipeline(&tenant.id, pipeline)
        .await
        .map_err(missing("pipeline"))?;
    let selection = match selection {
        Selection::Messages(mut ids) => {
            let mut seen = std::collections::HashSet::new();
            ids.retain(|id| seen.insert(id.clone()));
            let found = svc.store.existing_message_ids(&tenant.id, &ids).await?;
            if found.len() != ids.len() {
                return Err(ServiceError::Invalid(format!(
                    "{} of the message_ids are not messages of yours",
                    ids.len() - found.len()
                )));
            }
            Selection::Messages(found)
        }
        query => query,
    };
    let run = svc
        .store
        .create_run(&tenant.id, pipeline, trigger, &selection)
        .await
        .map_err(missing("pipeline"))?;
    svc.runner.wake();
    Ok(run)
}

/// Deletes a pipeline (its runs and their results stay).
pub async fn delete(svc: &Services, tenant: &TenantRow, id: &str) -> Result<()> {
    svc.store
        .delete_pipeline(&tenant.id, id)
        .await
        .map_err(missing("pipeline"))
}

/// Cancels a queued or running run, and its job (409 once it has ended). Items not processed
/// stay pending; the batch in flight is dropped uncommitted.
pub async fn cancel_run(svc: &Services, tenant: &TenantRow, id: &str) -> Result<RunRow> {
    svc.store
        .cancel_run(&tenant.id, id)
        .await
        .map_err(missing("run"))
}
