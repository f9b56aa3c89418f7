//! Pipelines: a tenant's ordered stages, each a plugin version with its configuration.

use super::{DbRow, Result, Store, StoreError, WriteTx, new_id, now_ms, on_pool, on_tx};
use crate::domain::{OnError, Stage, TenantId};

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

fn pipeline(row: &impl DbRow, stages: Vec<Stage>) -> Result<PipelineRow> {
    Ok(PipelineRow {
        id: row.col("id")?,
        name: row.col("name")?,
        kind: row.col("kind")?,
        on_import: row.col::<i64>("on_import")? != 0,
        stages,
        created_at: row.col("created_at")?,
        updated_at: row.col("updated_at")?,
    })
}

/// The stages of a pipeline, in order.
pub(crate) async fn stages(tx: &mut WriteTx, tenant: &TenantId, id: &str) -> Result<Vec<Stage>> {
    on_tx!(tx, |c| {
        sqlx::query(STAGES)
            .bind(tenant.as_str())
            .bind(id)
            .fetch_all(&mut *c)
            .await?
            .iter()
            .map(stage)
            .collect()
    })
}

const STAGES: &str = "SELECT plugin, plugin_version, config, on_error FROM pipeline_stages \
                      WHERE tenant_id = $1 AND pipeline_id = $2 ORDER BY position";

fn stage(r: &impl DbRow) -> Result<Stage> {
    Ok(Stage {
        plugin: r.col("plugin")?,
        version: r.col("plugin_version")?,
        config: r.col("config")?,
        on_error: {
            let name: String = r.col("on_error")?;
            OnError::parse(&name)
                .ok_or_else(|| StoreError::Corrupt(format!("unknown on_error {name:?}")))?
        },
    })
}

async fn write_stages(
    tx: &mut WriteTx,
    tenant: &TenantId,
    id: &str,
    stages: &[Stage],
) -> Result<()> {
    on_tx!(tx, |c| {
        sqlx::query("DELETE FROM pipeline_stages WHERE tenant_id = $1 AND pipeline_id = $2")
            .bind(tenant.as_str())
            .bind(id)
            .execute(&mut *c)
            .await?;
    });
    // A stage may only name a version that exists; checked here, inside the transaction, with the
    // version's row locked (PostgreSQL) until the commit, so a concurrent delete of the version
    // waits and then finds it in use, or went first and this finds it gone. (The foreign key
    // from stages to versions holds the same on PostgreSQL.)
    let exists_sql = format!(
        "SELECT 1 FROM plugin_versions WHERE tenant_id = $1 AND name = $2 AND version = $3{}",
        tx.backend().for_share()
    );
    for (position, stage) in stages.iter().enumerate() {
        let exists = on_tx!(tx, |c| {
            sqlx::query(&exists_sql)
                .bind(tenant.as_str())
                .bind(&stage.plugin)
                .bind(stage.version)
                .fetch_optional(&mut *c)
                .await?
                .is_some()
        });
        if !exists {
            return Err(StoreError::Conflict(format!(
                "stages[{position}]: plugin {} has no version {}",
                stage.plugin, stage.version
            )));
        }
        on_tx!(tx, |c| {
            sqlx::query(
                "INSERT INTO pipeline_stages (tenant_id, pipeline_id, position, plugin, \
                 plugin_version, config, on_error) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(tenant.as_str())
            .bind(id)
            .bind(position as i64)
            .bind(&stage.plugin)
            .bind(stage.version)
            .bind(&stage.config)
            .bind(stage.on_error.as_str())
            .execute(&mut *c)
            .await?;
        });
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
        let sql = format!(
            "INSERT INTO pipelines (tenant_id, {COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        );
        on_tx!(tx, |c| {
            sqlx::query(&sql)
                .bind(tenant.as_str())
                .bind(&id)
                .bind(name)
                .bind(kind)
                .bind(i64::from(on_import))
                .bind(now)
                .bind(now)
                .execute(&mut *c)
                .await
                .map_err(|e| name_taken(e, name))?;
        });
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
        let done = on_tx!(tx, |c| {
            sqlx::query(
                "UPDATE pipelines SET name = $1, on_import = $2, updated_at = $3 \
                 WHERE tenant_id = $4 AND id = $5",
            )
            .bind(name)
            .bind(i64::from(on_import))
            .bind(now_ms())
            .bind(tenant.as_str())
            .bind(id)
            .execute(&mut *c)
            .await
            .map_err(|e| name_taken(e, name))?
            .rows_affected()
        });
        if done == 0 {
            return Err(StoreError::NotFound);
        }
        write_stages(&mut tx, tenant, id, stages).await?;
        tx.commit().await?;
        self.pipeline(tenant, id).await
    }

    /// One pipeline with its stages.
    pub async fn pipeline(&self, tenant: &TenantId, id: &str) -> Result<PipelineRow> {
        let sql = format!("SELECT {COLUMNS} FROM pipelines WHERE tenant_id = $1 AND id = $2");
        on_pool!(self, |c| {
            let row = sqlx::query(&sql)
                .bind(tenant.as_str())
                .bind(id)
                .fetch_optional(c)
                .await?
                .ok_or(StoreError::NotFound)?;
            let stages = sqlx::query(STAGES)
                .bind(tenant.as_str())
                .bind(id)
                .fetch_all(c)
                .await?
                .iter()
                .map(stage)
                .collect::<Result<Vec<_>>>()?;
            pipeline(&row, stages)
        })
    }

    /// The tenant's pipelines, by name.
    pub async fn pipelines(&self, tenant: &TenantId) -> Result<Vec<PipelineRow>> {
        let sql = format!("SELECT {COLUMNS} FROM pipelines WHERE tenant_id = $1 ORDER BY name");
        on_pool!(self, |c| {
            let rows = sqlx::query(&sql).bind(tenant.as_str()).fetch_all(c).await?;
            // Every stage of the tenant's pipelines in one query, not one query per pipeline.
            let all_stages = sqlx::query(
                "SELECT pipeline_id, plugin, plugin_version, config, on_error FROM pipeline_stages \
                 WHERE tenant_id = $1 ORDER BY pipeline_id, position",
            )
            .bind(tenant.as_str())
            .fetch_all(c)
            .await?;
            let mut by_pipeline: std::collections::HashMap<String, Vec<Stage>> =
                std::collections::HashMap::new();
            for r in &all_stages {
                by_pipeline
                    .entry(r.col("pipeline_id")?)
                    .or_default()
                    .push(stage(r)?);
            }
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                let id: String = row.col("id")?;
                let stages = by_pipeline.remove(&id).unwrap_or_default();
                out.push(pipeline(row, stages)?);
            }
            Ok(out)
        })
    }

    /// Deletes a pipeline unless one of its runs is queued or running. Finished runs stay readable.
    pub async fn delete_pipeline(&self, tenant: &TenantId, id: &str) -> Result<()> {
        let mut tx = self.write_tx().await?;
        // The pipeline's row is locked first (PostgreSQL), so a run being made of it meanwhile
        // either committed before (and is found below) or waits and then finds no pipeline.
        let lock = format!(
            "SELECT 1 FROM pipelines WHERE tenant_id = $1 AND id = $2{}",
            tx.backend().for_update()
        );
        let (exists, active) = on_tx!(tx, |c| {
            let exists = sqlx::query(&lock)
                .bind(tenant.as_str())
                .bind(id)
                .fetch_optional(&mut *c)
                .await?
                .is_some();
            let active = sqlx::query(
                "SELECT 1 FROM runs WHERE tenant_id = $1 AND pipeline_id = $2 \
                 AND status IN ('queued', 'running')",
            )
            .bind(tenant.as_str())
            .bind(id)
            .fetch_optional(&mut *c)
            .await?
            .is_some();
            (exists, active)
        });
        // Existence is checked first so another tenant's id still answers not found.
        if !exists {
            return Err(StoreError::NotFound);
        }
        if active {
            return Err(StoreError::Conflict(
                "the pipeline has queued or running runs; cancel them first".into(),
            ));
        }
        on_tx!(tx, |c| {
            sqlx::query("DELETE FROM pipeline_stages WHERE tenant_id = $1 AND pipeline_id = $2")
                .bind(tenant.as_str())
                .bind(id)
                .execute(&mut *c)
                .await?;
            sqlx::query("DELETE FROM pipelines WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.as_str())
                .bind(id)
                .execute(&mut *c)
                .await?;
        });
        tx.commit().await?;
        Ok(())
    }
}
