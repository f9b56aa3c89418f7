//! Plugins: named, numbered versions of a tenant's uploaded components.

use super::{Result, Store, StoreError, from_json, now_ms, to_json};
use crate::domain::Stage;
use crate::domain::TenantId;
use crate::sandbox::ComponentInfo;
use sqlx::Row;
use sqlx::any::AnyRow;

/// A plugin name and its versions.
#[derive(Debug, Clone)]
pub struct PluginRow {
    /// Its name.
    pub name: String,
    /// Version numbers that exist, ascending.
    pub versions: Vec<i64>,
    /// Creation time, Unix ms.
    pub created_at: i64,
}

/// One uploaded version.
#[derive(Debug, Clone)]
pub struct PluginVersionRow {
    /// Plugin name.
    pub name: String,
    /// Version number (from 1, never reused).
    pub version: i64,
    /// Hex SHA-256 of the component.
    pub sha256: String,
    /// Size in bytes.
    pub size: i64,
    /// The world it targets.
    pub world: String,
    /// Its imports.
    pub imports: Vec<String>,
    /// Upload time, Unix ms.
    pub created_at: i64,
}

fn version(row: &AnyRow) -> Result<PluginVersionRow> {
    Ok(PluginVersionRow {
        name: row.try_get("name")?,
        version: row.try_get("version")?,
        sha256: row.try_get("sha256")?,
        size: row.try_get("size")?,
        world: row.try_get("world")?,
        imports: from_json(&row.try_get::<String, _>("imports")?, "plugin imports")?,
        created_at: row.try_get("created_at")?,
    })
}

const VERSION_COLUMNS: &str = "name, version, sha256, size, world, imports, created_at";

impl Store {
    /// Stores a checked component as the next version of `name`. Uploading the bytes of an existing
    /// version again returns that version (`false`: nothing new was stored).
    pub async fn add_plugin_version(
        &self,
        tenant: &TenantId,
        name: &str,
        info: &ComponentInfo,
        bytes: &[u8],
    ) -> Result<(PluginVersionRow, bool)> {
        let mut tx = self.write_tx().await?;
        let existing = sqlx::query(&format!(
            "SELECT {VERSION_COLUMNS} FROM plugin_versions \
             WHERE tenant_id = $1 AND name = $2 AND sha256 = $3 ORDER BY version LIMIT 1"
        ))
        .bind(tenant.as_str())
        .bind(name)
        .bind(&info.sha256)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(row) = existing {
            return Ok((version(&row)?, false));
        }
        let now = now_ms();
        sqlx::query(
            "INSERT INTO plugins (tenant_id, name, next_version, created_at) VALUES ($1, $2, 1, $3) \
             ON CONFLICT (tenant_id, name) DO NOTHING",
        )
        .bind(tenant.as_str())
        .bind(name)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        // Taking the number and bumping the counter in one statement keeps concurrent uploads apart.
        let number: i64 = sqlx::query(
            "UPDATE plugins SET next_version = next_version + 1 \
             WHERE tenant_id = $1 AND name = $2 RETURNING next_version - 1",
        )
        .bind(tenant.as_str())
        .bind(name)
        .fetch_one(&mut *tx)
        .await?
        .try_get(0)?;
        sqlx::query(
            "INSERT INTO components (tenant_id, sha256, bytes) VALUES ($1, $2, $3) \
             ON CONFLICT (tenant_id, sha256) DO NOTHING",
        )
        .bind(tenant.as_str())
        .bind(&info.sha256)
        .bind(bytes)
        .execute(&mut *tx)
        .await?;
        let row = PluginVersionRow {
            name: name.to_string(),
            version: number,
            sha256: info.sha256.clone(),
            size: info.size as i64,
            world: info.world.clone(),
            imports: info.imports.clone(),
            created_at: now,
        };
        sqlx::query(
            "INSERT INTO plugin_versions (tenant_id, name, version, sha256, size, world, imports, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(tenant.as_str())
        .bind(name)
        .bind(row.version)
        .bind(&row.sha256)
        .bind(row.size)
        .bind(&row.world)
        .bind(to_json(&row.imports))
        .bind(row.created_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok((row, true))
    }

    /// The tenant's plugins with their versions, by name.
    pub async fn plugins(&self, tenant: &TenantId) -> Result<Vec<PluginRow>> {
        let names =
            sqlx::query("SELECT name, created_at FROM plugins WHERE tenant_id = $1 ORDER BY name")
                .bind(tenant.as_str())
                .fetch_all(self.pool())
                .await?;
        let versions = sqlx::query(
            "SELECT name, version FROM plugin_versions WHERE tenant_id = $1 ORDER BY name, version",
        )
        .bind(tenant.as_str())
        .fetch_all(self.pool())
        .await?;
        let mut out = Vec::with_capacity(names.len());
        for row in &names {
            let name: String = row.try_get("name")?;
            let numbers = versions
                .iter()
                .filter(|v| v.try_get::<String, _>("name").is_ok_and(|n| n == name))
                .map(|v| v.try_get::<i64, _>("version"))
                .collect::<Result<Vec<_>, _>>()?;
            out.push(PluginRow {
                name,
                versions: numbers,
                created_at: row.try_get("created_at")?,
            });
        }
        Ok(out)
    }

    /// The versions of one plugin; not found when the tenant has no plugin of that name.
    pub async fn plugin_versions(
        &self,
        tenant: &TenantId,
        name: &str,
    ) -> Result<Vec<PluginVersionRow>> {
        let exists = sqlx::query("SELECT 1 FROM plugins WHERE tenant_id = $1 AND name = $2")
            .bind(tenant.as_str())
            .bind(name)
            .fetch_optional(self.pool())
            .await?;
        if exists.is_none() {
            return Err(StoreError::NotFound);
        }
        sqlx::query(&format!(
            "SELECT {VERSION_COLUMNS} FROM plugin_versions WHERE tenant_id = $1 AND name = $2 ORDER BY version"
        ))
        .bind(tenant.as_str())
        .bind(name)
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(version)
        .collect()
    }

    /// One version.
    pub async fn plugin_version(
        &self,
        tenant: &TenantId,
        name: &str,
        number: i64,
    ) -> Result<PluginVersionRow> {
        let row = sqlx::query(&format!(
            "SELECT {VERSION_COLUMNS} FROM plugin_versions WHERE tenant_id = $1 AND name = $2 AND version = $3"
        ))
        .bind(tenant.as_str())
        .bind(name)
        .bind(number)
        .fetch_optional(self.pool())
        .await?
        .ok_or(StoreError::NotFound)?;
        version(&row)
    }

    /// The component bytes of a tenant's upload.
    pub async fn component(&self, tenant: &TenantId, sha256: &str) -> Result<Vec<u8>> {
        let row = sqlx::query("SELECT bytes FROM components WHERE tenant_id = $1 AND sha256 = $2")
            .bind(tenant.as_str())
            .bind(sha256)
            .fetch_optional(self.pool())
            .await?
            .ok_or(StoreError::NotFound)?;
        Ok(row.try_get(0)?)
    }

    /// Deletes a version unless a pipeline uses it; its component goes when no version uses it.
    pub async fn delete_plugin_version(
        &self,
        tenant: &TenantId,
        name: &str,
        number: i64,
    ) -> Result<()> {
        let mut tx = self.write_tx().await?;
        let used = sqlx::query(
            "SELECT p.name FROM pipeline_stages s JOIN pipelines p \
             ON p.tenant_id = s.tenant_id AND p.id = s.pipeline_id \
             WHERE s.tenant_id = $1 AND s.plugin = $2 AND s.plugin_version = $3 ORDER BY p.name",
        )
        .bind(tenant.as_str())
        .bind(name)
        .bind(number)
        .fetch_all(&mut *tx)
        .await?;
        if !used.is_empty() {
            let names = used
                .iter()
                .filter_map(|r| r.try_get::<String, _>(0).ok())
                .collect::<Vec<_>>();
            return Err(StoreError::Conflict(format!(
                "{name} version {number} is used by pipeline(s) {}",
                names.join(", ")
            )));
        }
        // Runs carry their own copy of the stages: one still to execute needs the version too.
        let active = sqlx::query(
            "SELECT stages FROM runs WHERE tenant_id = $1 AND status IN ('queued', 'running')",
        )
        .bind(tenant.as_str())
        .fetch_all(&mut *tx)
        .await?;
        for row in &active {
            let stages: Vec<Stage> = from_json(&row.try_get::<String, _>(0)?, "run stages")?;
            if stages
                .iter()
                .any(|s| s.plugin == name && s.version == number)
            {
                return Err(StoreError::Conflict(format!(
                    "{name} version {number} is used by a queued or running run; let it finish or cancel it"
                )));
            }
        }
        let sha: String = sqlx::query(
            "DELETE FROM plugin_versions WHERE tenant_id = $1 AND name = $2 AND version = $3 RETURNING sha256",
        )
        .bind(tenant.as_str())
        .bind(name)
        .bind(number)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound)?
        .try_get(0)?;
        sqlx::query(
            "DELETE FROM components WHERE tenant_id = $1 AND sha256 = $2 AND NOT EXISTS \
             (SELECT 1 FROM plugin_versions WHERE tenant_id = $1 AND sha256 = $2)",
        )
        .bind(tenant.as_str())
        .bind(&sha)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
