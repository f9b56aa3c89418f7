//! Runs: follow a pipeline run, read its per-message, per-stage results, cancel it.

use super::Tags;
use super::models::{ActionModel, PluginFailure, PluginLog, time};
use super::problem::{ApiError, missing};
use super::stages::Stage;
use super::state::{Shared, TenantToken};
use crate::domain::outcome::Refusal;
use crate::domain::{ItemResult, ItemStatus, RunStatus, StageResult, StageStatus};
use crate::store::{RunItemRow, RunRow};
use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Enum, Object, OpenApi};

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum RunState {
    /// Waiting for a worker.
    Queued,
    /// Executing.
    Running,
    /// Every message was processed.
    Completed,
    /// Could not execute; `error` says why.
    Failed,
    /// Cancelled; unprocessed messages stay `pending`.
    Cancelled,
}

impl From<RunStatus> for RunState {
    fn from(s: RunStatus) -> Self {
        match s {
            RunStatus::Queued => Self::Queued,
            RunStatus::Running => Self::Running,
            RunStatus::Completed => Self::Completed,
            RunStatus::Failed => Self::Failed,
            RunStatus::Cancelled => Self::Cancelled,
        }
    }
}

/// What happened to one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum ItemState {
    /// Not processed yet.
    Pending,
    /// Every stage that ran succeeded.
    Ok,
    /// A stage failed (`on_error` continue or stop).
    StageFailed,
    /// A stage failed and the message went to quarantine.
    Quarantined,
    /// The message no longer exists.
    Missing,
    /// It could not be processed (its stored data is damaged, or the store kept failing on it);
    /// `error` says why. The run went on with the other messages.
    Failed,
}

impl From<ItemStatus> for ItemState {
    fn from(s: ItemStatus) -> Self {
        match s {
            ItemStatus::Pending => Self::Pending,
            ItemStatus::Ok => Self::Ok,
            ItemStatus::StageFailed => Self::StageFailed,
            ItemStatus::Quarantined => Self::Quarantined,
            ItemStatus::Missing => Self::Missing,
            ItemStatus::Failed => Self::Failed,
        }
    }
}

/// How a stage went for a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum StageState {
    /// It ran and returned actions.
    Ok,
    /// It failed.
    Failed,
    /// It did not run (an earlier stage stopped the pipeline).
    Skipped,
}

/// One stage's result for one message.
#[derive(Debug, Clone, Object)]
pub struct StageOutcome {
    /// Position in the pipeline.
    pub stage: u32,
    /// Plugin name.
    pub plugin: String,
    /// Plugin version.
    pub version: i64,
    /// How it went.
    pub status: StageState,
    /// The actions it returned.
    #[oai(default)]
    pub actions: Vec<ActionModel>,
    /// What it logged.
    #[oai(default)]
    pub logs: Vec<PluginLog>,
    /// Fuel used.
    pub fuel_used: u64,
    /// Wall-clock time, microseconds.
    pub duration_us: u64,
    /// The failure.
    #[oai(skip_serializing_if_is_none)]
    pub error: Option<PluginFailure>,
}

/// What the stages decided for a message and what was applied.
#[derive(Debug, Clone, Default, Object)]
pub struct ItemOutcome {
    /// Every stage, in order.
    #[oai(default)]
    pub stages: Vec<StageOutcome>,
    /// Actions applied to the message, in order.
    #[oai(default)]
    pub applied: Vec<ActionModel>,
    /// Folders it was copied to.
    #[oai(default)]
    pub copied_to: Vec<String>,
    /// Actions recorded but not carried out (forward and reject need the send pipeline).
    #[oai(default)]
    pub deferred: Vec<ActionModel>,
    /// Actions that did not apply because they would take the message past a bound: more than
    /// 64 tags on a message, more than 8 folders copied to in one run.
    #[oai(default)]
    pub refused: Vec<RefusedAction>,
    /// Whether it went to quarantine.
    #[oai(default)]
    pub quarantined: bool,
    /// Why it could not be processed.
    #[oai(skip_serializing_if_is_none)]
    pub error: Option<String>,
}

/// An action left out, and the bound it would have broken.
#[derive(Debug, Clone, Object)]
pub struct RefusedAction {
    /// The action.
    pub action: ActionModel,
    /// Why it did not apply.
    pub reason: String,
}

impl From<StageStatus> for StageState {
    fn from(s: StageStatus) -> Self {
        match s {
            StageStatus::Ok => Self::Ok,
            StageStatus::Failed => Self::Failed,
            StageStatus::Skipped => Self::Skipped,
        }
    }
}

impl From<&StageResult> for StageOutcome {
    fn from(s: &StageResult) -> Self {
        // Destructured, so a field the domain gains must be placed here.
        let StageResult {
            stage,
            plugin,
            version,
            status,
            actions,
            logs,
            fuel_used,
            duration_us,
            error,
        } = s;
        Self {
            stage: u32::try_from(*stage).unwrap_or(u32::MAX),
            plugin: plugin.clone(),
            version: *version,
            status: (*status).into(),
            actions: actions.iter().map(ActionModel::from).collect(),
            logs: logs.iter().map(PluginLog::from).collect(),
            fuel_used: *fuel_used,
            duration_us: *duration_us,
            error: error.as_ref().map(PluginFailure::from),
        }
    }
}

impl From<&Refusal> for RefusedAction {
    fn from(r: &Refusal) -> Self {
        Self {
            action: ActionModel::from(&r.action),
            reason: r.reason.clone(),
        }
    }
}

impl From<&ItemResult> for ItemOutcome {
    fn from(r: &ItemResult) -> Self {
        let ItemResult {
            stages,
            applied,
            copied_to,
            deferred,
            refused,
            quarantined,
            error,
        } = r;
        Self {
            stages: stages.iter().map(StageOutcome::from).collect(),
            applied: applied.iter().map(ActionModel::from).collect(),
            copied_to: copied_to.clone(),
            deferred: deferred.iter().map(ActionModel::from).collect(),
            refused: refused.iter().map(RefusedAction::from).collect(),
            quarantined: *quarantined,
            error: error.clone(),
        }
    }
}

/// One message of a run.
#[derive(Debug, Clone, Object)]
pub struct RunItem {
    /// Position in the run (pass as `results_after` to page).
    pub seq: i64,
    /// The message.
    pub message_id: String,
    /// What happened.
    pub status: ItemState,
    /// Details, once processed.
    #[oai(flatten)]
    pub outcome: ItemOutcome,
}

impl From<RunItemRow> for RunItem {
    fn from(i: RunItemRow) -> Self {
        Self {
            seq: i.seq,
            message_id: i.message_id,
            status: i.status.into(),
            outcome: i.result.as_ref().map(ItemOutcome::from).unwrap_or_default(),
        }
    }
}

/// Messages of a run by state.
#[derive(Debug, Clone, Object)]
pub struct RunCounts {
    /// Messages covered.
    pub total: i64,
    /// Not processed yet.
    pub pending: i64,
    /// Succeeded.
    pub ok: i64,
    /// A stage failed.
    pub stage_failed: i64,
    /// Quarantined.
    pub quarantined: i64,
    /// Gone before they were processed.
    pub missing: i64,
    /// Could not be processed.
    pub failed: i64,
}

/// A run of a pipeline.
#[derive(Debug, Clone, Object)]
pub struct Run {
    /// Its id.
    pub id: String,
    /// The pipeline.
    pub pipeline_id: String,
    /// What started it: `api` or `import`.
    pub trigger: String,
    /// Where it is.
    pub status: RunState,
    /// The stages it runs (the pipeline's when the run was made).
    pub stages: Vec<Stage>,
    /// Messages by state.
    pub counts: RunCounts,
    /// Times it was resumed after the node executing it stopped (a restart, a crash, a lost lease).
    pub resumed: i64,
    /// The job executing it (see `/v1/jobs/{id}`).
    #[oai(skip_serializing_if_is_none)]
    pub job_id: Option<String>,
    /// Why it failed.
    #[oai(skip_serializing_if_is_none)]
    pub error: Option<String>,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it first started.
    #[oai(skip_serializing_if_is_none)]
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended.
    #[oai(skip_serializing_if_is_none)]
    pub finished_at: Option<DateTime<Utc>>,
    /// Per-message results, a page at a time (only on `getRun`).
    #[oai(skip_serializing_if_is_none)]
    pub results: Option<Vec<RunItem>>,
    /// Pass as `results_after` for the next page of results.
    #[oai(skip_serializing_if_is_none)]
    pub next_results_after: Option<i64>,
}

impl Run {
    /// The API view of a run, with a page of results if given.
    pub fn from_row(r: RunRow, results: Option<(Vec<RunItemRow>, u32)>) -> Self {
        let (results, next) = match results {
            Some((items, limit)) => {
                let next = (items.len() == limit as usize)
                    .then(|| items.last().map(|i| i.seq))
                    .flatten();
                (Some(items.into_iter().map(RunItem::from).collect()), next)
            }
            None => (None, None),
        };
        Self {
            id: r.id,
            pipeline_id: r.pipeline_id,
            trigger: r.trigger.as_str().to_string(),
            status: r.status.into(),
            stages: r.stages.iter().map(Stage::from).collect(),
            counts: RunCounts {
                total: r.total,
                pending: r.counts.pending,
                ok: r.counts.ok,
                stage_failed: r.counts.stage_failed,
                quarantined: r.counts.quarantined,
                missing: r.counts.missing,
                failed: r.counts.failed,
            },
            resumed: r.resumed,
            job_id: r.job_id,
            error: r.error,
            created_at: time(r.created_at),
            started_at: r.started_at.map(time),
            finished_at: r.finished_at.map(time),
            results,
            next_results_after: next,
        }
    }
}

/// A page of runs.
#[derive(Debug, Clone, Object)]
pub struct RunPage {
    /// Newest first.
    pub items: Vec<Run>,
    /// Pass as `cursor` for the next page.
    #[oai(skip_serializing_if_is_none)]
    pub next_cursor: Option<String>,
}

/// Run endpoints.
#[derive(Debug)]
pub struct RunsApi;

#[OpenApi(tag = "Tags::Runs")]
impl RunsApi {
    /// List runs, newest first.
    #[oai(path = "/v1/runs", method = "get", operation_id = "listRuns")]
    async fn list(
        &self,
        state: Data<&Shared>,
        auth: TenantToken,
        /// Only runs of this pipeline.
        pipeline_id: Query<Option<String>>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
        /// Page size.
        #[oai(
            default = "default_limit",
            validator(minimum(value = "1"), maximum(value = "200"))
        )]
        limit: Query<u32>,
    ) -> Result<Json<RunPage>, ApiError> {
        let tenant = state.tenant(&auth).await?;
        let page = state
            .store
            .runs(
                &tenant.id,
                pipeline_id.0.as_deref(),
                cursor.0.as_deref(),
                limit.0,
            )
            .await?;
        Ok(Json(RunPage {
            items: page
                .items
                .into_iter()
                .map(|r| Run::from_row(r, None))
                .collect(),
            next_cursor: page.next_cursor,
        }))
    }

    /// Get a run: status, counts, and a page of per-message, per-stage results.
    #[oai(path = "/v1/runs/:id", method = "get", operation_id = "getRun")]
    async fn get(
        &self,
        state: Data<&Shared>,
        auth: TenantToken,
        id: Path<String>,
        /// Results after this position (`next_results_after` of the previous page).
        #[oai(default = "default_after", validator(minimum(value = "-1")))]
        results_after: Query<i64>,
        /// Results per page.
        #[oai(
            default = "default_limit",
            validator(minimum(value = "0"), maximum(value = "1000"))
        )]
        results_limit: Query<u32>,
    ) -> Result<Json<Run>, ApiError> {
        let tenant = state.tenant(&auth).await?;
        let run = state
            .store
            .run(&tenant.id, &id)
            .await
            .map_err(missing("run"))?;
        let items = state
            .store
            .run_items(&tenant.id, &id, results_after.0, results_limit.0)
            .await?;
        Ok(Json(Run::from_row(run, Some((items, results_limit.0)))))
    }

    /// Cancel a queued or running run (409 when it has ended). Messages already processed keep
    /// their results.
    #[oai(
        path = "/v1/runs/:id/cancel",
        method = "post",
        operation_id = "cancelRun"
    )]
    async fn cancel(
        &self,
        state: Data<&Shared>,
        auth: TenantToken,
        id: Path<String>,
    ) -> Result<Json<Run>, ApiError> {
        let tenant = state.tenant(&auth).await?;
        let run = crate::service::pipelines::cancel_run(&state.services, &tenant, &id).await?;
        Ok(Json(Run::from_row(run, None)))
    }
}

fn default_limit() -> u32 {
    100
}

fn default_after() -> i64 {
    -1
}
