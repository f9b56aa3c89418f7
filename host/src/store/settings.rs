//! Server-wide settings (not tenant data): the admin token's hash.

use super::{Arg, DbRow, Result, Store, on_pool};

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
        let done = self
            .write(
                "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
                vec![Arg::Text(key.into()), Arg::Text(value.into())],
            )
            .await?;
        Ok(done == 1)
    }
}
