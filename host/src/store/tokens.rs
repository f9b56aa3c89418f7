//! Tenant tokens: the ones minted (ids and times, never the token) and their revocations.

use super::tenants::tenant;
use super::{DbRow, Result, Store, StoreError, TenantRow, on_pool, on_tx};
use crate::domain::TenantId;

/// A minted tenant token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    /// Its `jti` claim.
    pub jti: String,
    /// When it was minted, Unix ms.
    pub issued_at: i64,
    /// When it expires, Unix ms.
    pub expires_at: i64,
    /// When it was revoked by id, Unix ms.
    pub revoked_at: Option<i64>,
}

/// What a request's check needs, read in one statement: the tenant, what is known of the token,
/// and the tenant's cut-off.
#[derive(Debug, Clone)]
pub struct TokenCheck {
    /// The token's tenant.
    pub tenant: TenantRow,
    /// The token's row; `None` for a token not minted by this server's `mint` (one signed with the
    /// configured secret elsewhere, or minted before tokens were recorded).
    pub token: Option<TokenRow>,
    /// Tokens issued before this (Unix ms) are revoked.
    pub issued_before: Option<i64>,
}

fn token(row: &impl DbRow) -> Result<TokenRow> {
    Ok(TokenRow {
        jti: row.col("jti")?,
        issued_at: row.col("issued_at")?,
        expires_at: row.col("expires_at")?,
        revoked_at: row.col("revoked_at")?,
    })
}

impl Store {
    /// Records a minted token, and forgets the tenant's tokens that have expired by `now` (they
    /// fail their `exp` check anyway).
    pub async fn record_token(&self, tenant: &TenantId, row: &TokenRow, now: i64) -> Result<()> {
        let mut tx = self.write_tx().await?;
        on_tx!(tx, |c| {
            sqlx::query("DELETE FROM tenant_tokens WHERE tenant_id = $1 AND expires_at < $2")
                .bind(tenant.as_str())
                .bind(now)
                .execute(&mut *c)
                .await?;
            sqlx::query(
                "INSERT INTO tenant_tokens (tenant_id, jti, issued_at, expires_at, revoked_at) \
                 VALUES ($1, $2, $3, $4, NULL)",
            )
            .bind(tenant.as_str())
            .bind(&row.jti)
            .bind(row.issued_at)
            .bind(row.expires_at)
            .execute(&mut *c)
            .await?;
        });
        super::cache::changed(&mut tx, tenant).await?;
        tx.commit().await?;
        self.tenant_changed(tenant.as_str());
        Ok(())
    }

    /// The tenant's recorded tokens that have not expired by `now`, oldest first, and its cut-off.
    pub async fn tokens(
        &self,
        tenant: &TenantId,
        now: i64,
    ) -> Result<(Vec<TokenRow>, Option<i64>)> {
        let tokens = on_pool!(self, |c| {
            sqlx::query(
                "SELECT jti, issued_at, expires_at, revoked_at FROM tenant_tokens \
                 WHERE tenant_id = $1 AND expires_at >= $2 ORDER BY issued_at, jti",
            )
            .bind(tenant.as_str())
            .bind(now)
            .fetch_all(c)
            .await?
            .iter()
            .map(token)
            .collect::<Result<Vec<_>>>()?
        });
        Ok((tokens, self.token_cutoff(tenant).await?))
    }

    async fn token_cutoff(&self, tenant: &TenantId) -> Result<Option<i64>> {
        on_pool!(self, |c| {
            sqlx::query("SELECT issued_before FROM token_cutoffs WHERE tenant_id = $1")
                .bind(tenant.as_str())
                .fetch_optional(c)
                .await?
                .map(|r| r.at(0))
                .transpose()
        })
    }

    /// Revokes one recorded token (again: no change); not found when the tenant never minted it.
    pub async fn revoke_token(&self, tenant: &TenantId, jti: &str, now: i64) -> Result<TokenRow> {
        let mut tx = self.write_tx().await?;
        let row = on_tx!(tx, |c| {
            sqlx::query(
                "UPDATE tenant_tokens SET revoked_at = $3 \
                 WHERE tenant_id = $1 AND jti = $2 AND revoked_at IS NULL",
            )
            .bind(tenant.as_str())
            .bind(jti)
            .bind(now)
            .execute(&mut *c)
            .await?;
            let row = sqlx::query(
                "SELECT jti, issued_at, expires_at, revoked_at FROM tenant_tokens \
                 WHERE tenant_id = $1 AND jti = $2",
            )
            .bind(tenant.as_str())
            .bind(jti)
            .fetch_optional(&mut *c)
            .await?
            .ok_or(StoreError::NotFound)?;
            token(&row)?
        });
        super::cache::changed(&mut tx, tenant).await?;
        tx.commit().await?;
        self.tenant_changed(tenant.as_str());
        Ok(row)
    }

    /// Revokes every token of the tenant issued before `before` (Unix ms): the cut-off moves to
    /// `before` unless it is later already. Returns the cut-off now in force.
    pub async fn revoke_tokens_before(
        &self,
        tenant: &TenantId,
        before: i64,
        now: i64,
    ) -> Result<i64> {
        let mut tx = self.write_tx().await?;
        let cutoff: i64 = on_tx!(tx, |c| {
            sqlx::query(
                "INSERT INTO token_cutoffs (tenant_id, issued_before, set_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (tenant_id) DO UPDATE SET \
                 issued_before = CASE WHEN excluded.issued_before > token_cutoffs.issued_before \
                     THEN excluded.issued_before ELSE token_cutoffs.issued_before END, \
                 set_at = excluded.set_at",
            )
            .bind(tenant.as_str())
            .bind(before)
            .bind(now)
            .execute(&mut *c)
            .await?;
            sqlx::query("SELECT issued_before FROM token_cutoffs WHERE tenant_id = $1")
                .bind(tenant.as_str())
                .fetch_one(&mut *c)
                .await?
                .at(0)?
        });
        super::cache::changed(&mut tx, tenant).await?;
        tx.commit().await?;
        self.tenant_changed(tenant.as_str());
        Ok(cutoff)
    }

    /// The tenant a token names, with what is known of the token (by `jti`) and the tenant's
    /// cut-off: one statement, by primary keys, on every request. Not found when the tenant is gone.
    pub async fn token_check(&self, tenant_id: &TenantId, jti: &str) -> Result<TokenCheck> {
        let generation = match self.cache.get(tenant_id, jti) {
            Ok(check) => return Ok(check),
            Err(generation) => generation,
        };
        let check = self.read_token_check(tenant_id, jti).await?;
        self.cache.put(tenant_id, jti, &check, generation);
        Ok(check)
    }

    async fn read_token_check(&self, tenant_id: &TenantId, jti: &str) -> Result<TokenCheck> {
        on_pool!(self, |c| {
            let row = sqlx::query(
                "SELECT t.id AS id, t.name AS name, t.limits AS limits, t.created_at AS created_at, \
                 k.jti AS jti, k.issued_at AS issued_at, k.expires_at AS expires_at, \
                 k.revoked_at AS revoked_at, c.issued_before AS issued_before FROM tenants t \
                 LEFT JOIN tenant_tokens k ON k.tenant_id = t.id AND k.jti = $2 \
                 LEFT JOIN token_cutoffs c ON c.tenant_id = t.id \
                 WHERE t.id = $1",
            )
            .bind(tenant_id.as_str())
            .bind(jti)
            .fetch_optional(c)
            .await?
            .ok_or(StoreError::NotFound)?;
            let known: Option<String> = row.col("jti")?;
            Ok(TokenCheck {
                tenant: tenant(&row)?,
                token: known.map(|_| token(&row)).transpose()?,
                issued_before: row.col("issued_before")?,
            })
        })
    }
}
