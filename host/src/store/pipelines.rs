//! Pipelines: a tenant's ordered stages, each a plugin version with its configuration.

use super::{Result, Store, StoreError, new_id, now_ms};
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

/// What a pipeline does when a stage fails on a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// Ignore the stage's result and go on with the next stage.
    Continue,
    /// Run no further stage for this message (what earlier stages decided still applies).
    Stop,
    /// Move the message to the quarantine folder and run no further stage.
    Quarantine,
}

impl OnError {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Continue => "continue",
            Self::Stop => "stop",
            Self::Quarantine => "quarantine",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        match s {
            "continue" => Ok(Self::Continue),
            "stop" => Ok(Self::Stop),
            "quarantine" => Ok(Self::Quarantine),
            other => Err(StoreError::Corrupt(format!("unknown on_error {other:?}"))),
        }
    }
}

/// One stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageRow {
    /// Plugin name.
    pub plugin: String,
    /// Plugin version.
    pub version: i64,
    /// Configuration, JSON text given to the plugin.
    pub config: String,
    /// What a failure does.
    pub on_error: OnError,
}

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
    pub stages: Vec<StageRow>,
    /// Creation time, Unix ms.
    pub created_at: i64,
    /// Last change, Unix ms.
    pub updated_at: i64,
}

const COLUMNS: &str = "id, name, kind, on_import, created_at, updated_at";

fn pipeline(row: &AnyRow, stages: Vec<StageRow>) -> Result<PipelineRow> {
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
    tenant: &str,
    id: &str,
) -> Result<Vec<StageRow>> {
    sqlx::query(
        "SELECT plugin, plugin_version, config, on_error FROM pipeline_stages \
         WHERE tenant_id = $1 AND pipeline_id = $2 ORDER BY position",
    )
    .bind(tenant)
    .bind(id)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| {
        Ok(StageRow {
            plugin: r.try_get("plugin")?,
            version: r.try_get("plugin_version")?,
            config: r.try_get("config")?,
            on_error: OnError::parse(&r.try_get::<String, _>("on_error")?)?,
        })
    })
    .collect()
}

async fn write_stages(
    conn: &mut AnyConnection,
    tenant: &str,
    id: &str,
    stages: &[StageRow],
) -> Result<()> {
    sqlx::query("DELETE FROM pipeline_stages WHERE tenant_id = $1 AND pipeline_id = $2")
        .bind(tenant)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    for (position, stage) in stages.iter().enumerate() {
        // A stage may only name a version that exists; checked here, inside the transaction, so a
        // concurrent delete of the version cannot slip between the check and the insert.
        let exists = sqlx::query(
            "SELECT 1 FROM plugin_versions WHERE tenant_id = $1 AND name = $2 AND version = $3",
        )
        .bind(tenant)
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
        .bind(tenant)
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
        tenant: &str,
        name: &str,
        kind: &str,
        on_import: bool,
        stages: &[StageRow],
    ) -> Result<PipelineRow> {
        let id = new_id();
        let now = now_ms();
        let mut tx = self.write_tx().await?;
        sqlx::query(&format!(
            "INSERT INTO pipelines (tenant_id, {COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        ))
        .bind(tenant)
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
        tenant: &str,
        id: &str,
        name: &str,
        on_import: bool,
        stages: &[StageRow],
    ) -> Result<PipelineRow> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(
            "UPDATE pipelines SET name = $1, on_import = $2, updated_at = $3 WHERE tenant_id = $4 AND id = $5",
        )
        .bind(name)
        .bind(i64::from(on_import))
        .bind(now_ms())
        .bind(tenant)
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
    pub async fn pipeline(&self, tenant: &str, id: &str) -> Result<PipelineRow> {
        let mut conn = self.pool().acquire().await?;
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM pipelines WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(tenant)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(StoreError::NotFound)?;
        let stages = stages(&mut conn, tenant, id).await?;
        pipeline(&row, stages)
    }

    /// The tenant's pipelines, by name.
    pub async fn pipelines(&self, tenant: &str) -> Result<Vec<PipelineRow>> {
        let mut conn = self.pool().acquire().await?;
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM pipelines WHERE tenant_id = $1 ORDER BY name"
        ))
        .bind(tenant)
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
    pub async fn delete_pipeline(&self, tenant: &str, id: &str) -> Result<()> {
        let mut tx = self.write_tx().await?;
        let active = sqlx::query(
            "SELECT 1 FROM runs WHERE tenant_id = $1 AND pipeline_id = $2 AND status IN ('queued', 'running')",
        )
        .bind(tenant)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        if active.is_some() {
            // Existence is checked first so another tenant's id still answers not found.
            let exists = sqlx::query("SELECT 1 FROM pipelines WHERE tenant_id = $1 AND id = $2")
                .bind(tenant)
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
            .bind(tenant)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        sqlx::query("DELETE FROM pipeline_stages WHERE tenant_id = $1 AND pipeline_id = $2")
            .bind(tenant)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}
