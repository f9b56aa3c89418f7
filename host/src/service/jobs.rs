//! Jobs: retry a dead one, cancel one.

use super::{Result, Services, missing};
use crate::domain::TenantId;
use crate::store::{JobRow, RUN_JOB, StoreError};

/// Revives a dead job: queued now with its attempts reset (409 unless it is dead).
pub async fn retry(svc: &Services, tenant: &TenantId, id: &str) -> Result<JobRow> {
    let job = svc
        .store
        .retry_job(tenant, id)
        .await
        .map_err(missing("job"))?;
    svc.runner.wake();
    Ok(job)
}

/// Cancels a queued, running or dead job (409 once it has ended). Cancelling a run's job cancels
/// the run, as cancelling the run does.
pub async fn cancel(svc: &Services, tenant: &TenantId, id: &str) -> Result<JobRow> {
    let job = svc.store.job(tenant, id).await.map_err(missing("job"))?;
    if job.kind == RUN_JOB
        && let Some(run) = job.payload.get("run_id").and_then(|v| v.as_str())
    {
        // Cancelling the run decides by the run's own status (a run whose job died shows
        // `failed` but is not over). A run that ended or is gone leaves only its job to cancel;
        // any other failure is the answer.
        match svc.store.cancel_run(tenant, run).await {
            Ok(_) => return Ok(svc.store.job(tenant, id).await?),
            Err(StoreError::Conflict(_) | StoreError::NotFound) => {}
            Err(e) => return Err(e.into()),
        }
    }
    svc.store
        .cancel_job(tenant, id)
        .await
        .map_err(missing("job"))
}
