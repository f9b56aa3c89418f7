//! Server-wide settings (not tenant data): the admin token's hash.

use super::{DbRow, Result, Store, on_pool, on_tx};

impl Store {
    /// A setting's value.
    pub async fn setting(&self, key: &str) -> Result<Option<String>> {
        on_pool!(self, |c| {
            sqlx::query("SELECT value FROM settings WHERE key = $1")
                .bind(key)
                .fetch_optional(c)
                .await?
                .map(|r| r.at(0))
                .transpose()
        })
    }

    /// Sets `key` to `value` unless it is set already; returns whether it was set now.
    pub async fn init_setting(&self, key: &str, value: &str) -> Result<bool> {
        let mut tx = self.write_tx().await?;
        let done = on_tx!(tx, |c| {
            sqlx::query(
                "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
            )
            .bind(key)
            .bind(value)
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        tx.commit().await?;
        Ok(done == 1)
    }
}
