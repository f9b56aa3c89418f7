//! Server-wide settings (not tenant data): the admin token's hash.

use super::{Result, Store};
use sqlx::Row;

impl Store {
    /// A setting's value.
    pub async fn setting(&self, key: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT value FROM settings WHERE key = $1")
            .bind(key)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.map(|r| r.get::<String, _>(0)))
    }

    /// Sets `key` to `value` unless it is set already; returns whether it was set now.
    pub async fn init_setting(&self, key: &str, value: &str) -> Result<bool> {
        let done = self.write_one(sqlx::query(
            "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(value)
        )
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
