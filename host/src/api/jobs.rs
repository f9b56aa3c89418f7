//! Jobs: the background work of a tenant (pipeline runs now; syncs and sends later), with the dead
//! ones visible and retryable.

use super::Tags;
use super::models::time;
use super::problem::ApiError;
use super::state::{Shared, TenantToken};
use crate::store::{JobFilter, JobRow, JobState};
use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Enum, Object, OpenApi};

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum JobStatus {
    /// Waiting for its time (`run_at`) and a worker.
    Queued,
    /// Leased by a node (`lease`).
    Running,
    /// Done.
    Completed,
    /// Failed its last attempt, or failed permanently; `last_error` says why. Retry it with
    /// `POST /v1/jobs/{id}/retry`.
    Dead,
    /// Cancelled.
    Cancelled,
}

impl From<JobState> for JobStatus {
    fn from(s: JobState) -> Self {
        match s {
            JobState::Queued => Self::Queued,
            JobState::Running => Self::Running,
            JobState::Completed => Self::Completed,
            JobState::Dead => Self::Dead,
            JobState::Cancelled => Self::Cancelled,
        }
    }
}

impl From<JobStatus> for JobState {
    fn from(s: JobStatus) -> Self {
        match s {
            JobStatus::Queued => Self::Queued,
            JobStatus::Running => Self::Running,
            JobStatus::Completed => Self::Completed,
            JobStatus::Dead => Self::Dead,
            JobStatus::Cancelled => Self::Cancelled,
        }
    }
}

/// The lease of a running job.
#[derive(Debug, Clone, Object)]
pub struct JobLease {
    /// The node holding it (see `/v1/admin/nodes`).
    pub node: String,
    /// When it runs out unless the node renews it.
    pub expires_at: DateTime<Utc>,
}

/// A unit of background work.
#[derive(Debug, Clone, Object)]
pub struct Job {
    /// Its id.
    pub id: String,
    /// What it does: `pipeline_run`.
    pub kind: String,
    /// Its input (for `pipeline_run`: `{"run_id": ...}`).
    pub payload: serde_json::Value,
    /// Where it is.
    pub status: JobStatus,
    /// Not started before this.
    pub run_at: DateTime<Utc>,
    /// Attempts begun since it was queued, last gave way to other tenants' work, or was retried.
    pub attempts: i64,
    /// After this many failed attempts in a row it is dead.
    pub max_attempts: i64,
    /// Held by a node, while running.
    #[oai(skip_serializing_if_is_none)]
    pub lease: Option<JobLease>,
    /// Times it was picked up after the node running it stopped without finishing.
    pub resumed: i64,
    /// The last failure.
    #[oai(skip_serializing_if_is_none)]
    pub last_error: Option<String>,
    /// When it was queued.
    pub created_at: DateTime<Utc>,
    /// Its last change.
    pub updated_at: DateTime<Utc>,
    /// When it ended.
    #[oai(skip_serializing_if_is_none)]
    pub finished_at: Option<DateTime<Utc>>,
}

impl From<JobRow> for Job {
    fn from(j: JobRow) -> Self {
        let lease = match (j.state, j.lease_owner, j.lease_expires_at) {
            (JobState::Running, Some(node), Some(expires)) => Some(JobLease {
                node,
                expires_at: time(expires),
            }),
            _ => None,
        };
        Self {
            id: j.id,
            kind: j.kind,
            payload: j.payload,
            status: j.state.into(),
            run_at: time(j.run_at),
            attempts: j.attempts,
            max_attempts: j.max_attempts,
            lease,
            resumed: j.resumed,
            last_error: j.last_error,
            created_at: time(j.created_at),
            updated_at: time(j.updated_at),
            finished_at: j.finished_at.map(time),
        }
    }
}

/// A page of jobs.
#[derive(Debug, Clone, Object)]
pub struct JobPage {
    /// Newest first.
    pub items: Vec<Job>,
    /// Pass as `cursor` for the next page.
    #[oai(skip_serializing_if_is_none)]
    pub next_cursor: Option<String>,
}

/// Job endpoints.
#[derive(Debug)]
pub struct JobsApi;

#[OpenApi(tag = "Tags::Jobs")]
impl JobsApi {
    /// List your jobs, newest first.
    #[oai(path = "/v1/jobs", method = "get", operation_id = "listJobs")]
    async fn list(
        &self,
        state: Data<&Shared>,
        auth: TenantToken,
        /// Only jobs in this state (e.g. `dead`).
        status: Query<Option<JobStatus>>,
        /// Only jobs of this kind (e.g. `pipeline_run`).
        #[oai(validator(max_length = 64))]
        kind: Query<Option<String>>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
        /// Page size.
        #[oai(
            default = "default_limit",
            validator(minimum(value = "1"), maximum(value = "200"))
        )]
        limit: Query<u32>,
    ) -> Result<Json<JobPage>, ApiError> {
        let tenant = state.tenant(&auth).await?;
        let filter = JobFilter {
            state: status.0.map(JobState::from),
            kind: kind.0,
        };
        let page = state
            .store
            .jobs(Some(&tenant.id), &filter, cursor.0.as_deref(), limit.0)
            .await?;
        Ok(Json(JobPage {
            items: page.items.into_iter().map(Job::from).collect(),
            next_cursor: page.next_cursor,
        }))
    }

    /// Get a job.
    #[oai(path = "/v1/jobs/:id", method = "get", operation_id = "getJob")]
    async fn get(
        &self,
        state: Data<&Shared>,
        auth: TenantToken,
        id: Path<String>,
    ) -> Result<Json<Job>, ApiError> {
        let tenant = state.tenant(&auth).await?;
        let job = state
            .store
            .job(&tenant.id, &id)
            .await
            .map_err(super::problem::missing("job"))?;
        Ok(Json(job.into()))
    }

    /// Retry a dead job: it is queued again at once with its attempts reset (409 unless it is
    /// dead). A run whose job died shows `failed`; retried, it resumes where it stopped.
    #[oai(
        path = "/v1/jobs/:id/retry",
        method = "post",
        operation_id = "retryJob"
    )]
    async fn retry(
        &self,
        state: Data<&Shared>,
        auth: TenantToken,
        id: Path<String>,
    ) -> Result<Json<Job>, ApiError> {
        let tenant = state.tenant(&auth).await?;
        let job = crate::service::jobs::retry(&state.services, &tenant.id, &id).await?;
        Ok(Json(job.into()))
    }

    /// Cancel a queued, running or dead job (409 once it has completed or was cancelled).
    /// Cancelling a run's job cancels the run.
    #[oai(
        path = "/v1/jobs/:id/cancel",
        method = "post",
        operation_id = "cancelJob"
    )]
    async fn cancel(
        &self,
        state: Data<&Shared>,
        auth: TenantToken,
        id: Path<String>,
    ) -> Result<Json<Job>, ApiError> {
        let tenant = state.tenant(&auth).await?;
        let job = crate::service::jobs::cancel(&state.services, &tenant.id, &id).await?;
        Ok(Json(job.into()))
    }
}

fn default_limit() -> u32 {
    100
}
