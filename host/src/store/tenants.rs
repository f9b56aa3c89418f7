//! Tenants: who owns everything else.

use super::{
    Arg, DbRow, Result, Store, StoreError, from_json, new_id, now_ms, on_pool, on_tx, to_json,
};
use crate::domain::TenantId;
use crate::sandbox::PluginLimits;

/// A stored tenant.
#[derive(Debug, Clone)]
pub struct TenantRow {
    /// Its id.
    pub id: TenantId,
    /// Its unique name.
    pub name: String,
    /// What its plugins may use.
    pub limits: PluginLimits,
    /// Creation time, Unix ms.
    pub created_at: i64,
}

pub(super) fn tenant(row: &impl DbRow) -> Result<TenantRow> {
    Ok(TenantRow {
        id: TenantId::new(row.col::<String>("id")?),
        name: row.col("name")?,
        limits: from_json(&row.col::<String>("limits")?, "tenant limits")?,
        created_at: row.col("created_at")?,
    })
}

/// Tables holding tenant-owned rows, all cleared when the tenant is deleted.
const TENANT_TABLES: &[&str] = &[
    "run_items",
    "runs",
    "jobs",
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
            id: TenantId::new(new_id()),
            name: name.to_string(),
            limits: limits.clone(),
            created_at: now_ms(),
        };
        let done = self
            .write(
                "INSERT INTO tenants (id, name, limits, created_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (name) DO NOTHING",
                vec![
                    Arg::Text(row.id.as_str().to_string()),
                    Arg::Text(row.name.clone()),
                    Arg::Text(to_json(&row.limits)),
                    Arg::Int(row.created_at),
                ],
            )
            .await?;
        if done == 0 {
            return Err(StoreError::Conflict(format!(
                "a tenant named {name:?} exists"
            )));
        }
        Ok(row)
    }

    /// Every tenant, oldest first.
    pub async fn tenants(&self) -> Result<Vec<TenantRow>> {
        on_pool!(self, |c| {
            sqlx::query("SELECT id, name, limits, created_at FROM tenants ORDER BY id")
                .fetch_all(c)
                .await?
                .iter()
                .map(tenant)
                .collect()
        })
    }

    /// One tenant.
    pub async fn tenant(&self, id: &TenantId) -> Result<TenantRow> {
        on_pool!(self, |c| {
            let row = sqlx::query("SELECT id, name, limits, created_at FROM tenants WHERE id = $1")
                .bind(id.as_str())
                .fetch_optional(c)
                .await?
                .ok_or(StoreError::NotFound)?;
            tenant(&row)
        })
    }

    /// Replaces a tenant's plugin limits.
    pub async fn set_tenant_limits(
        &self,
        id: &TenantId,
        limits: &PluginLimits,
    ) -> Result<TenantRow> {
        let mut tx = self.write_tx().await?;
        let done = on_tx!(tx, |c| {
            sqlx::query("UPDATE tenants SET limits = $1 WHERE id = $2")
                .bind(to_json(limits))
                .bind(id.as_str())
                .execute(&mut *c)
                .await?
                .rows_affected()
        });
        super::cache::changed(&mut tx, id).await?;
        tx.commit().await?;
        self.tenant_changed(id.as_str());
        if done == 0 {
            return Err(StoreError::NotFound);
        }
        self.tenant(id).await
    }

    /// Deletes a tenant and everything it owns, in one transaction.
    pub async fn delete_tenant(&self, id: &TenantId) -> Result<()> {
        let mut tx = self.write_tx().await?;
        let done = on_tx!(tx, |c| {
            sqlx::query("DELETE FROM tenants WHERE id = $1")
                .bind(id.as_str())
                .execute(&mut *c)
                .await?
                .rows_affected()
        });
        if done == 0 {
            return Err(StoreError::NotFound);
        }
        for table in TENANT_TABLES {
            let sql = format!("DELETE FROM {table} WHERE tenant_id = $1");
            on_tx!(tx, |c| {
                sqlx::query(&sql).bind(id.as_str()).execute(&mut *c).await?;
            });
        }
        super::cache::changed(&mut tx, id).await?;
        tx.commit().await?;
        self.tenant_changed(id.as_str());
        Ok(())
    }
}
