//! Plugins: named, numbered versions of a tenant's uploaded components.

use super::{DbRow, Result, Store, StoreError, from_json, now_ms, on_pool, on_tx, to_json};
use crate::domain::Stage;
use crate::domain::TenantId;
use crate::sandbox::ComponentInfo;

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

fn version(row: &impl DbRow) -> Result<PluginVersionRow> {
    Ok(PluginVersionRow {
        name: row.col("name")?,
        version: row.col("version")?,
        sha256: row.col("sha256")?,
        size: row.col("size")?,
        world: row.col("world")?,
        imports: from_json(&row.col::<String>("imports")?, "plugin imports")?,
        created_at: row.col("created_at")?,
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
        let existing_sql = format!(
            "SELECT {VERSION_COLUMNS} FROM plugin_versions \
             WHERE tenant_id = $1 AND name = $2 AND sha256 = $3 ORDER BY version LIMIT 1"
        );
        let existing = on_tx!(tx, |c| {
            sqlx::query(&existing_sql)
                .bind(tenant.as_str())
                .bind(name)
                .bind(&info.sha256)
                .fetch_optional(&mut *c)
                .await?
                .map(|row| version(&row))
                .transpose()?
        });
        if let Some(row) = existing {
            return Ok((row, false));
        }
        let now = now_ms();
        let key_share = tx.backend().for_key_share();
        let row = on_tx!(tx, |c| {
            sqlx::query(
                "INSERT INTO plugins (tenant_id, name, next_version, created_at) \
                 VALUES ($1, $2, 1, $3) ON CONFLICT (tenant_id, name) DO NOTHING",
            )
            .bind(tenant.as_str())
            .bind(name)
            .bind(now)
            .execute(&mut *c)
            .await?;
            // Taking the number and bumping the counter in one statement keeps concurrent uploads
            // apart (on PostgreSQL the row lock of the UPDATE orders them).
            let number: i64 = sqlx::query(
                "UPDATE plugins SET next_version = next_version + 1 \
                 WHERE tenant_id = $1 AND name = $2 RETURNING next_version - 1",
            )
            .bind(tenant.as_str())
            .bind(name)
            .fetch_one(&mut *c)
            .await?
            .at(0)?;
            // The bytes, stored once per tenant. On PostgreSQL the row is then locked for key
            // share, so a delete of another version with the same bytes cannot remove it before
            // this version (which names it) commits; if such a delete won the race, the row is
            // gone by the time the lock is granted, and the bytes are stored again.
            let lock =
                format!("SELECT 1 FROM components WHERE tenant_id = $1 AND sha256 = $2{key_share}");
            for _ in 0..3 {
                sqlx::query(
                    "INSERT INTO components (tenant_id, sha256, bytes) VALUES ($1, $2, $3) \
                     ON CONFLICT (tenant_id, sha256) DO NOTHING",
                )
                .bind(tenant.as_str())
                .bind(&info.sha256)
                .bind(bytes)
                .execute(&mut *c)
                .await?;
                let held = sqlx::query(&lock)
                    .bind(tenant.as_str())
                    .bind(&info.sha256)
                    .fetch_optional(&mut *c)
                    .await?;
                if held.is_some() {
                    break;
                }
            }
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
                "INSERT INTO plugin_versions (tenant_id, name, version, sha256, size, world, \
                 imports, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(tenant.as_str())
            .bind(name)
            .bind(row.version)
            .bind(&row.sha256)
            .bind(row.size)
            .bind(&row.world)
            .bind(to_json(&row.imports))
            .bind(row.created_at)
            .execute(&mut *c)
            .await?;
            row
        });
        tx.commit().await?;
        Ok((row, true))
    }

    /// The tenant's plugins with their versions, by name.
    pub async fn plugins(&self, tenant: &TenantId) -> Result<Vec<PluginRow>> {
        on_pool!(self, |c| {
            let names = sqlx::query(
                "SELECT name, created_at FROM plugins WHERE tenant_id = $1 ORDER BY name",
            )
            .bind(tenant.as_str())
            .fetch_all(c)
            .await?;
            let versions = sqlx::query(
                "SELECT name, version FROM plugin_versions WHERE tenant_id = $1 \
                 ORDER BY name, version",
            )
            .bind(tenant.as_str())
            .fetch_all(c)
            .await?;
            let mut by_name: std::collections::HashMap<String, Vec<i64>> =
                std::collections::HashMap::new();
            for v in &versions {
                by_name
                    .entry(v.col("name")?)
                    .or_default()
                    .push(v.col("version")?);
            }
            let mut out = Vec::with_capacity(names.len());
            for row in &names {
                let name: String = row.col("name")?;
                out.push(PluginRow {
                    versions: by_name.remove(&name).unwrap_or_default(),
                    name,
                    created_at: row.col("created_at")?,
                });
            }
            Ok(out)
        })
    }

    /// The versions of one plugin; not found when the tenant has no plugin of that name.
    pub async fn plugin_versions(
        &self,
        tenant: &TenantId,
        name: &str,
    ) -> Result<Vec<PluginVersionRow>> {
        let sql = format!(
            "SELECT {VERSION_COLUMNS} FROM plugin_versions WHERE tenant_id = $1 AND name = $2 \
             ORDER BY version"
        );
        on_pool!(self, |c| {
            let exists = sqlx::query("SELECT 1 FROM plugins WHERE tenant_id = $1 AND name = $2")
                .bind(tenant.as_str())
                .bind(name)
                .fetch_optional(c)
                .await?;
            if exists.is_none() {
                return Err(StoreError::NotFound);
            }
            sqlx::query(&sql)
                .bind(tenant.as_str())
                .bind(name)
                .fetch_all(c)
                .await?
                .iter()
                .map(version)
                .collect()
        })
    }

    /// One version.
    pub async fn plugin_version(
        &self,
        tenant: &TenantId,
        name: &str,
        number: i64,
    ) -> Result<PluginVersionRow> {
        let sql = format!(
            "SELECT {VERSION_COLUMNS} FROM plugin_versions WHERE tenant_id = $1 AND name = $2 \
             AND version = $3"
        );
        on_pool!(self, |c| {
            let row = sqlx::query(&sql)
                .bind(tenant.as_str())
                .bind(name)
                .bind(number)
                .fetch_optional(c)
                .await?
                .ok_or(StoreError::NotFound)?;
            version(&row)
        })
    }

    /// The component bytes of a tenant's upload.
    pub async fn component(&self, tenant: &TenantId, sha256: &str) -> Result<Vec<u8>> {
        on_pool!(self, |c| {
            sqlx::query("SELECT bytes FROM components WHERE tenant_id = $1 AND sha256 = $2")
                .bind(tenant.as_str())
                .bind(sha256)
                .fetch_optional(c)
                .await?
                .ok_or(StoreError::NotFound)?
                .at(0)
        })
    }

    /// Deletes a version unless a pipeline uses it; its component goes when no version uses it.
    pub async fn delete_plugin_version(
        &self,
        tenant: &TenantId,
        name: &str,
        number: i64,
    ) -> Result<()> {
        let mut tx = self.write_tx().await?;
        // The version's row is locked first (PostgreSQL): a pipeline being given a stage of it
        // meanwhile (which locks it for share) either committed before, and is found below, or
        // waits and then finds the version gone.
        let lock = format!(
            "SELECT sha256 FROM plugin_versions WHERE tenant_id = $1 AND name = $2 \
             AND version = $3{}",
            tx.backend().for_update()
        );
        let (sha, users, active): (String, Vec<String>, Vec<String>) = on_tx!(tx, |c| {
            let sha: String = sqlx::query(&lock)
                .bind(tenant.as_str())
                .bind(name)
                .bind(number)
                .fetch_optional(&mut *c)
                .await?
                .ok_or(StoreError::NotFound)?
                .at(0)?;
            let users = sqlx::query(
                "SELECT p.name FROM pipeline_stages s JOIN pipelines p \
                 ON p.tenant_id = s.tenant_id AND p.id = s.pipeline_id \
                 WHERE s.tenant_id = $1 AND s.plugin = $2 AND s.plugin_version = $3 ORDER BY p.name",
            )
            .bind(tenant.as_str())
            .bind(name)
            .bind(number)
            .fetch_all(&mut *c)
            .await?
            .iter()
            .map(|r| r.at(0))
            .collect::<Result<Vec<String>>>()?;
            // Runs carry their own copy of the stages: one still to execute needs the version too.
            let active = sqlx::query(
                "SELECT stages FROM runs WHERE tenant_id = $1 AND status IN ('queued', 'running')",
            )
            .bind(tenant.as_str())
            .fetch_all(&mut *c)
            .await?
            .iter()
            .map(|r| r.at(0))
            .collect::<Result<Vec<String>>>()?;
            (sha, users, active)
        });
        if !users.is_empty() {
            return Err(StoreError::Conflict(format!(
                "{name} version {number} is used by pipeline(s) {}",
                users.join(", ")
            )));
        }
        for text in &active {
            let stages: Vec<Stage> = from_json(text, "run stages")?;
            if stages
                .iter()
                .any(|s| s.plugin == name && s.version == number)
            {
                return Err(StoreError::Conflict(format!(
                    "{name} version {number} is used by a queued or running run; let it finish or cancel it"
                )));
            }
        }
        let lock_component = format!(
            "SELECT 1 FROM components WHERE tenant_id = $1 AND sha256 = $2{}",
            tx.backend().for_update()
        );
        on_tx!(tx, |c| {
            sqlx::query(
                "DELETE FROM plugin_versions WHERE tenant_id = $1 AND name = $2 AND version = $3",
            )
            .bind(tenant.as_str())
            .bind(name)
            .bind(number)
            .execute(&mut *c)
            .await
            .map_err(version_in_use)?;
            // The bytes go when no version names them any more. Locked first (PostgreSQL), so an
            // upload of the same bytes either holds its key-share lock already (this waits, and
            // the check below, a statement of its own, sees its version) or waits for this.
            sqlx::query(&lock_component)
                .bind(tenant.as_str())
                .bind(&sha)
                .fetch_optional(&mut *c)
                .await?;
            sqlx::query(
                "DELETE FROM components WHERE tenant_id = $1 AND sha256 = $2 AND NOT EXISTS \
                 (SELECT 1 FROM plugin_versions WHERE tenant_id = $1 AND sha256 = $2)",
            )
            .bind(tenant.as_str())
            .bind(&sha)
            .execute(&mut *c)
            .await?;
        });
        tx.commit().await?;
        Ok(())
    }
}

/// A foreign key refused the delete: a stage still names the version (the row locks above make
/// this the rare path).
fn version_in_use(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
            StoreError::Conflict("the version is used by a pipeline".into())
        }
        _ => StoreError::Database(e),
    }
}
