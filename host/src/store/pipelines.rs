//! Pipelines: a tenant's ordered stages, each a plugin version with its configuration.

use super::{Result, Store, StoreError, new_id, now_ms};
use crate::domain::{OnError, Stage, TenantId};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

/// A stored pipeline.
#[derive(Debug, Clone)]
pub struct PipelineRow {
    /// Its id.
    pub id: String,
    /// Unique name within the tenant.
    pub name: String,
    /// Its kind (`filter`).
    pub kind: String,
    /// Whether it runs on every newly imported message.
    pub on_import: bool,
    /// Stages in order.
    pub stages: Vec<Stage>,
    /// Creation time, Unix ms.
    pub created_at: i64,
    /// Last change, Unix ms.
    pub updated_at: i64,
}

const COLUMNS: &str = "id, name, kind, on_import, created_at, updated_at";

fn pipeline(row: &AnyRow, stages: Vec<Stage>) -> Result<PipelineRow> {
    Ok(PipelineRow {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        kind: row.try_get("kind")?,
        on_import: row.try_get::<i64, _>("on_import")? != 0,
        stages,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// The stages of a pipeline, in order.
pub(crate) async fn stages(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    id: &str,
) -> Result<Vec<Stage>> {
    sqlx::query(
        "SELECT plugin, plugin_version, config, on_error FROM pipeline_stages \
         WHERE tenant_id = $1 AND pipeline_id = $2 ORDER BY position",
    )
    .bind(tenant.as_str())
    .bind(id)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| {
        Ok(Stage {
            plugin: r.try_get("plugin")?,
            version: r.try_get("plugin_version")?,
            config: r.try_get("config")?,
            on_error: {
                let name: String = r.try_get("on_error")?;
                OnError::parse(&name)
                    .ok_or_else(|| StoreError::Corrupt(format!("unknown on_error {name:?}")))?
            },
        })
    })
    .collect()
}

async fn write_stages(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    id: &str,
    stages: &[Stage],
) -> Result<()> {
    sqlx::query("DELETE FROM pipeline_stages WHERE tenant_id = $1 AND pipeline_id = $2")
        .bind(tenant.as_str())
        .bind(id)
        .execute(&mut *conn)
        .await?;
    for (position, stage) in stages.iter().enumerate() {
        // A stage may only name a version that exists; checked here, inside the transaction, so a
        // concurrent delete of the version cannot slip between the check and the insert.
        let exists = sqlx::query(
            "SELECT 1 FROM plugin_versions WHERE tenant_id = $1 AND name = $2 AND version = $3",
        )
        .bind(tenant.as_str())
        .bind(&stage.plugin)
        .bind(stage.version)
        .fetch_optional(&mut *conn)
        .await?;
        if exists.is_none() {
            return Err(StoreError::Conflict(format!(
                "stages[{position}]: plugin {} has no version {}",
                stage.plugin, stage.version
            )));
        }
        sqlx::query(
            "INSERT INTO pipeline_stages (tenant_id, pipeline_id, position, plugin, plugin_version, config, on_error) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(tenant.as_str())
        .bind(id)
        .bind(position as i64)
        .bind(&stage.plugin)
        .bind(stage.version)
        .bind(&stage.config)
        .bind(stage.on_error.as_str())
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

fn name_taken(e: sqlx::Error, name: &str) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict(format!("a pipeline named {name:?} exists"))
        }
        _ => StoreError::Database(e),
    }
}

impl Store {
    /// Creates a pipeline.
    pub async fn create_pipeline(
        &self,
        tenant: &TenantId,
        name: &str,
        kind: &str,
        on_import: bool,
        stages: &[Stage],
    ) -> Result<PipelineRow> {
        let id = new_id();
        let now = now_ms();
        let mut tx = self.write_tx().await?;
        sqlx::query(&format!(
            "INSERT INTO pipelines (tenant_id, {COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        ))
        .bind(tenant.as_str())
        .bind(&id)
        .bind(name)
        .bind(kind)
        .bind(i64::from(on_import))
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(|e| name_taken(e, name))?;
        write_stages(&mut tx, tenant, &id, stages).await?;
        tx.commit().await?;
        self.pipeline(tenant, &id).await
    }

    /// Replaces a pipeline's definition. Runs already made keep the stages they were made with.
    pub async fn update_pipeline(
        &self,
        tenant: &TenantId,
        id: &str,
        name: &str,
        on_import: bool,
        stages: &[Stage],
    ) -> Result<PipelineRow> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(
            "UPDATE pipelines SET name = $1, on_import = $2, updated_at = $3 WHERE tenant_id = $4 AND id = $5",
        )
        .bind(name)
        .bind(i64::from(on_import))
        .bind(now_ms())
        .bind(tenant.as_str())
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(|e| name_taken(e, name))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        write_stages(&mut tx, tenant, id, stages).await?;
        tx.commit().await?;
        self.pipeline(tenant, id).await
    }

    /// One pipeline with its stages.
    pub async fn pipeline(&self, tenant: &TenantId, id: &str) -> Result<PipelineRow> {
        let mut conn = self.pool().acquire().await?;
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM pipelines WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(tenant.as_str())
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(StoreError::NotFound)?;
        let stages = stages(&mut conn, tenant, id).await?;
        pipeline(&row, stages)
    }

    /// The tenant's pipelines, by name.
    pub async fn pipelines(&self, tenant: &TenantId) -> Result<Vec<PipelineRow>> {
        let mut conn = self.pool().acquire().await?;
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM pipelines WHERE tenant_id = $1 ORDER BY name"
        ))
        .bind(tenant.as_str())
        .fetch_all(&mut *conn)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let id: String = row.try_get("id")?;
            let stages = stages(&mut conn, tenant, &id).await?;
            out.push(pipeline(row, stages)?);
        }
        Ok(out)
    }

    /// Deletes a pipeline unless one of its runs is queued or running. Finished runs stay readable.
    pub async fn delete_pipeline(&self, tenant: &TenantId, id: &str) -> Result<()> {
        let mut tx = self.write_tx().await?;
        let active = sqlx::query(
            "SELECT 1 FROM runs WHERE tenant_id = $1 AND pipeline_id = $2 AND status IN ('queued', 'running')",
        )
        .bind(tenant.as_str())
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        if active.is_some() {
            // Existence is checked first so another tenant's id still answers not found.
            let exists = sqlx::query("SELECT 1 FROM pipelines WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.as_str())
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
            if exists.is_some() {
                return Err(StoreError::Conflict(
                    "the pipeline has queued or running runs; cancel them first".into(),
                ));
            }
        }
        let done = sqlx::query("DELETE FROM pipelines WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.as_str())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        sqlx::query("DELETE FROM pipeline_stages WHERE tenant_id = $1 AND pipeline_id = $2")
            .bind(tenant.as_str())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}
