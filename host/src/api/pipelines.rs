//! Pipelines: define ordered stages of plugins; start runs over messages.

use super::Tags;
use super::messages::MessageQuery;
use super::models::time;
use super::problem::{ApiError, Kind, missing};
use super::runs::Run;
use super::state::{Shared, TenantToken};
use crate::pipeline::PipelineError;
use crate::sandbox::{Keep, LoadError};
use crate::store::{OnError, PipelineRow, StageRow, TenantRow};
use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};

/// What a pipeline does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum PipelineKind {
    /// Plugins decide actions (move, flag, tag, …) that are applied to the stored message.
    Filter,
}

/// What to do when a stage fails on a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum StageFailure {
    /// Ignore the failed stage and go on with the next one.
    Continue,
    /// Run no further stage for this message (earlier stages' actions still apply).
    Stop,
    /// Move the message to the `Quarantine` folder and run no further stage.
    Quarantine,
}

impl From<StageFailure> for OnError {
    fn from(f: StageFailure) -> Self {
        match f {
            StageFailure::Continue => OnError::Continue,
            StageFailure::Stop => OnError::Stop,
            StageFailure::Quarantine => OnError::Quarantine,
        }
    }
}

impl From<OnError> for StageFailure {
    fn from(f: OnError) -> Self {
        match f {
            OnError::Continue => StageFailure::Continue,
            OnError::Stop => StageFailure::Stop,
            OnError::Quarantine => StageFailure::Quarantine,
        }
    }
}

/// A stage: a version of one of your plugins with its configuration.
#[derive(Debug, Clone, Object)]
pub struct Stage {
    /// Plugin name.
    #[oai(validator(pattern = r"^[a-z0-9][a-z0-9._-]{0,63}$"))]
    pub plugin: String,
    /// Plugin version.
    #[oai(validator(minimum(value = "1")))]
    pub version: i64,
    /// The configuration the plugin gets (any JSON; default `null`).
    #[oai(default)]
    pub config: serde_json::Value,
    /// What a failure of this stage does (default `continue`).
    #[oai(default = "default_on_error")]
    pub on_error: StageFailure,
}

fn default_on_error() -> StageFailure {
    StageFailure::Continue
}

impl Stage {
    fn row(&self) -> StageRow {
        StageRow {
            plugin: self.plugin.clone(),
            version: self.version,
            config: self.config.to_string(),
            on_error: self.on_error.into(),
        }
    }
}

impl From<&StageRow> for Stage {
    fn from(s: &StageRow) -> Self {
        Self {
            plugin: s.plugin.clone(),
            version: s.version,
            config: serde_json::from_str(&s.config).unwrap_or(serde_json::Value::Null),
            on_error: s.on_error.into(),
        }
    }
}

/// A pipeline to create, or the new definition of one.
#[derive(Debug, Clone, Object)]
pub struct PipelineInput {
    /// Unique name: lower-case letters, digits, `.`, `_` and `-`.
    #[oai(validator(pattern = r"^[a-z0-9][a-z0-9._-]{0,63}$"))]
    pub name: String,
    /// Kind (default `filter`).
    #[oai(default = "default_kind")]
    pub kind: PipelineKind,
    /// Stages, run in order.
    #[oai(validator(min_items = 1, max_items = 32))]
    pub stages: Vec<Stage>,
    /// Run on every newly imported message (default false).
    #[oai(default)]
    pub on_import: bool,
}

fn default_kind() -> PipelineKind {
    PipelineKind::Filter
}

/// A pipeline.
#[derive(Debug, Clone, Object)]
pub struct Pipeline {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its kind.
    pub kind: PipelineKind,
    /// Stages in order.
    pub stages: Vec<Stage>,
    /// Whether it runs on every newly imported message.
    pub on_import: bool,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was last changed.
    pub updated_at: DateTime<Utc>,
}

impl From<PipelineRow> for Pipeline {
    fn from(p: PipelineRow) -> Self {
        Self {
            id: p.id,
            name: p.name,
            kind: PipelineKind::Filter,
            stages: p.stages.iter().map(Stage::from).collect(),
            on_import: p.on_import,
            created_at: time(p.created_at),
            updated_at: time(p.updated_at),
        }
    }
}

/// Which messages a run covers: exactly one of `message_ids`, `query` and `all`.
#[derive(Debug, Clone, Object)]
pub struct RunRequest {
    /// These messages.
    #[oai(validator(max_items = 10000))]
    pub message_ids: Option<Vec<String>>,
    /// The messages a list with these filters would show.
    pub query: Option<MessageQuery>,
    /// Every message outside the trash.
    pub all: Option<bool>,
}

#[derive(ApiResponse)]
enum PipelineCreated {
    /// The pipeline.
    #[oai(status = 201)]
    Created(Json<Pipeline>),
}

#[derive(ApiResponse)]
enum RunAccepted {
    /// The run, queued; follow it at `/v1/runs/{id}`.
    #[oai(status = 202)]
    Accepted(Json<Run>),
}

#[derive(ApiResponse)]
enum Deleted {
    /// Deleted.
    #[oai(status = 204)]
    NoContent,
}

/// Checks every stage: the version exists and the plugin accepts the configuration (it is prepared
/// now, so a bad configuration is refused here rather than failing every message later).
async fn check_stages(
    state: &Shared,
    tenant: &TenantRow,
    stages: &[Stage],
) -> Result<Vec<StageRow>, ApiError> {
    let mut rows = Vec::with_capacity(stages.len());
    for (index, stage) in stages.iter().enumerate() {
        let row = stage.row();
        let version = state
            .store
            .plugin_version(&tenant.id, &row.plugin, row.version)
            .await
            .map_err(|e| match e {
                crate::store::StoreError::NotFound => ApiError::invalid(format!(
                    "stages[{index}]: you have no plugin {} with version {}",
                    row.plugin, row.version
                )),
                e => e.into(),
            })?;
        match state
            .stages
            .prepared(
                &tenant.id,
                &version,
                &row.config,
                &tenant.limits,
                Keep::Cached,
            )
            .await
        {
            Ok(_) => {}
            Err(PipelineError::Load(e @ (LoadError::Rejected(_) | LoadError::Prepare(_)))) => {
                return Err(ApiError::new(
                    Kind::ConfigRejected,
                    format!("stages[{index}]: {e}"),
                ));
            }
            Err(e) => return Err(e.into()),
        }
        rows.push(row);
    }
    Ok(rows)
}

/// Pipeline endpoints.
#[derive(Debug)]
pub struct PipelinesApi;

#[OpenApi(tag = "Tags::Pipelines")]
impl PipelinesApi {
    /// Create a pipeline. Every stage is prepared with its configuration first; one the plugin
    /// rejects is a 422 `plugin-config-rejected` naming the stage.
    #[oai(
        path = "/v1/pipelines",
        method = "post",
        operation_id = "createPipeline"
    )]
    async fn create(
        &self,
        state: Data<&Shared>,
        auth: TenantToken,
        body: Json<PipelineInput>,
    ) -> Result<PipelineCreated, ApiError> {
        let tenant = state.tenant(&auth).await?;
        let stages = check_stages(&state, &tenant, &body.stages).await?;
        let row = state
            .store
            .create_pipeline(&tenant.id, &body.name, "filter", body.on_import, &stages)
            .await?;
        Ok(PipelineCreated::Created(Json(row.into())))
    }

    /// List pipelines.
    #[oai(path = "/v1/pipelines", method = "get", operation_id = "listPipelines")]
    async fn list(
        &self,
        state: Data<&Shared>,
        auth: TenantToken,
    ) -> Result<Json<Vec<Pipeline>>, ApiError> {
        let tenant = state.tenant(&auth).await?;
        let rows = state.store.pipelines(&tenant.id).await?;
        Ok(Json(rows.into_iter().map(Pipeline::from).collect()))
    }

    /// Get a pipeline.
    #[oai(
        path = "/v1/pipelines/:id",
        method = "get",
        operation_id = "getPipeline"
    )]
    async fn get(
        &self,
        state: Data<&Shared>,
        auth: TenantToken,
        id: Path<String>,
    ) -> Result<Json<Pipeline>, ApiError> {
        let tenant = state.tenant(&auth).await?;
        let row = state
            .store
            .pipeline(&tenant.id, &id)
            .await
            .map_err(missing("pipeline"))?;
        Ok(Json(row.into()))
    }

    /// Replace a pipeline's definition. Runs already made keep the stages they were made with.
    #[oai(
        path = "/v1/pipelines/:id",
        method = "put",
        operation_id = "updatePipeline"
    )]
    async fn update(
        &self,
        state: Data<&Shared>,
        auth: TenantToken,
        id: Path<String>,
        body: Json<PipelineInput>,
    ) -> Result<Json<Pipeline>, ApiError> {
        let tenant = state.tenant(&auth).await?;
        state
            .store
            .pipeline(&tenant.id, &id)
            .await
            .map_err(missing("pipeline"))?;
        let stages = check_stages(&state, &tenant, &body.stages).await?;
        let row = state
            .store
            .update_pipeline(&tenant.id, &id, &body.name, body.on_import, &stages)
            .await
            .map_err(missing("pipeline"))?;
        Ok(Json(row.into()))
    }

    /// Delete a pipeline (409 while it has queued or running runs). Its finished runs stay readable.
    #[oai(
        path = "/v1/pipelines/:id",
        method = "delete",
        operation_id = "deletePipeline"
    )]
    async fn delete(
        &self,
        state: Data<&Shared>,
        auth: TenantToken,
        id: Path<String>,
    ) -> Result<Deleted, ApiError> {
        let tenant = state.tenant(&auth).await?;
        state
            .store
            .delete_pipeline(&tenant.id, &id)
            .await
            .map_err(missing("pipeline"))?;
        Ok(Deleted::NoContent)
    }

    /// Run a pipeline over chosen messages, the messages matching a query, or all of them. The run
    /// executes in the background (202); it survives a restart of the server.
    #[oai(
        path = "/v1/pipelines/:id/runs",
        method = "post",
        operation_id = "createRun"
    )]
    async fn run(
        &self,
        state: Data<&Shared>,
        auth: TenantToken,
        id: Path<String>,
        body: Json<RunRequest>,
    ) -> Result<RunAccepted, ApiError> {
        let tenant = state.tenant(&auth).await?;
        state
            .store
            .pipeline(&tenant.id, &id)
            .await
            .map_err(missing("pipeline"))?;
        let body = body.0;
        let messages = match (body.message_ids, body.query, body.all) {
            (Some(mut ids), None, None | Some(false)) => {
                // A message named twice is processed once.
                let mut seen = std::collections::HashSet::new();
                ids.retain(|id| seen.insert(id.clone()));
                let found = state.store.existing_message_ids(&tenant.id, &ids).await?;
                if found.len() != ids.len() {
                    return Err(ApiError::invalid(format!(
                        "{} of the message_ids are not messages of yours",
                        ids.len() - found.len()
                    )));
                }
                found
            }
            (None, Some(query), None | Some(false)) => {
                let filter = query.checked("query.")?.try_into()?;
                state.store.message_ids(&tenant.id, &filter).await?
            }
            (None, None, Some(true)) => {
                state
                    .store
                    .message_ids(&tenant.id, &Default::default())
                    .await?
            }
            _ => {
                return Err(ApiError::invalid(
                    "give exactly one of `message_ids`, `query` and `all: true`",
                ));
            }
        };
        let run = state
            .store
            .create_run(&tenant.id, &id, "api", &messages)
            .await
            .map_err(missing("pipeline"))?;
        state.worker.wake();
        Ok(RunAccepted::Accepted(Json(Run::from_row(run, None))))
    }
}
