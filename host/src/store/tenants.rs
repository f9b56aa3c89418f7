//! Tenants: who owns everything else.

use super::{Result, Store, StoreError, from_json, new_id, now_ms, to_json};
use crate::sandbox::PluginLimits;
use sqlx::Row;
use sqlx::any::AnyRow;

/// A stored tenant.
#[derive(Debug, Clone)]
pub struct TenantRow {
    /// Its id.
    pub id: String,
    /// Its unique name.
    pub name: String,
    /// What its plugins may use.
    pub limits: PluginLimits,
    /// Creation time, Unix ms.
    pub created_at: i64,
}

pub(super) fn tenant(row: &AnyRow) -> Result<TenantRow> {
    Ok(TenantRow {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        limits: from_json(&row.try_get::<String, _>("limits")?, "tenant limits")?,
        created_at: row.try_get("created_at")?,
    })
}

/// Tables holding tenant-owned rows, all cleared when the tenant is deleted.
const TENANT_TABLES: &[&str] = &[
    "run_items",
    "runs",
    "pipeline_stages",
    "pipelines",
    "message_search",
    "message_raw",
    "message_tags",
    "messages",
    "plugin_versions",
    "plugins",
    "components",
    "tenant_tokens",
    "token_cutoffs",
];

impl Store {
    /// Creates a tenant; its name must be unused.
    pub async fn create_tenant(&self, name: &str, limits: &PluginLimits) -> Result<TenantRow> {
        let row = TenantRow {
            id: new_id(),
            name: name.to_string(),
            limits: limits.clone(),
            created_at: now_ms(),
        };
        let done = self
            .write_one(
                sqlx::query(
                    "INSERT INTO tenants (id, name, limits, created_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (name) DO NOTHING",
                )
                .bind(&row.id)
                .bind(&row.name)
                .bind(to_json(&row.limits))
                .bind(row.created_at),
            )
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!(
                "a tenant named {name:?} exists"
            )));
        }
        Ok(row)
    }

    /// Every tenant, oldest first.
    pub async fn tenants(&self) -> Result<Vec<TenantRow>> {
        sqlx::query("SELECT id, name, limits, created_at FROM tenants ORDER BY id")
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(tenant)
            .collect()
    }

    /// One tenant.
    pub async fn tenant(&self, id: &str) -> Result<TenantRow> {
        let row = sqlx::query("SELECT id, name, limits, created_at FROM tenants WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .ok_or(StoreError::NotFound)?;
        tenant(&row)
    }

    /// Replaces a tenant's plugin limits.
    pub async fn set_tenant_limits(&self, id: &str, limits: &PluginLimits) -> Result<TenantRow> {
        let done = self
            .write_one(
                sqlx::query("UPDATE tenants SET limits = $1 WHERE id = $2")
                    .bind(to_json(limits))
                    .bind(id),
            )
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        self.tenant(id).await
    }

    /// Deletes a tenant and everything it owns, in one transaction.
    pub async fn delete_tenant(&self, id: &str) -> Result<()> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query("DELETE FROM tenants WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        for table in TENANT_TABLES {
            sqlx::query(&format!("DELETE FROM {table} WHERE tenant_id = $1"))
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
