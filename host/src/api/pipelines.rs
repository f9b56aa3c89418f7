//! Pipelines: define ordered stages of plugins; start runs over messages.

use super::Tags;
use super::messages::MessageQuery;
use super::models::time;
use super::problem::{ApiError, missing};
use super::runs::Run;
use super::stages::Stage;
use super::state::{Shared, TenantToken};
use crate::domain::{MessageFilter, Selection, Trigger};
use crate::service::pipelines::{self as use_case, PipelineDefinition};
use crate::store::PipelineRow;
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

impl PipelineInput {
    fn definition(&self) -> PipelineDefinition {
        PipelineDefinition {
            name: self.name.clone(),
            on_import: self.on_import,
            stages: self.stages.iter().map(Stage::domain).collect(),
        }
    }
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
        let row = use_case::define(&state.services, &tenant, &body.definition()).await?;
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
        let row = use_case::redefine(&state.services, &tenant, &id, &body.definition()).await?;
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
        use_case::delete(&state.services, &tenant, &id).await?;
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
        let body = body.0;
        let selection = match (body.message_ids, body.query, body.all) {
            (Some(ids), None, None | Some(false)) => Selection::Messages(ids),
            (None, Some(query), None | Some(false)) => {
                let filter: MessageFilter = query.checked("query.")?.try_into()?;
                Selection::Query(filter)
            }
            (None, None, Some(true)) => Selection::Query(MessageFilter::default()),
            _ => {
                return Err(ApiError::invalid(
                    "give exactly one of `message_ids`, `query` and `all: true`",
                ));
            }
        };
        let run =
            use_case::start_run(&state.services, &tenant, &id, Trigger::Api, selection).await?;
        Ok(RunAccepted::Accepted(Json(Run::from_row(run, None))))
    }
}
