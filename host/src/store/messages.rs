//! Messages: the summary row that lists and filters read, the raw bytes, tags and the search index.

use super::Arg;
use super::envelope::{read_envelope, write_envelope, write_tags};
use super::search;
use super::{
    Backend, DbRow, Page, Result, Store, StoreError, WriteTx, from_json, new_id, now_ms, on_pool,
    on_tx, to_json,
};
use crate::domain::{MessageFilter, StoredEnvelope, TenantId};

/// What parsing tells about a message: the columns lists and filters read.
#[derive(Debug, Clone, Default)]
pub struct MessageFacts {
    /// Decoded subject.
    pub subject: Option<String>,
    /// First From mailbox: display name.
    pub from_name: Option<String>,
    /// First From mailbox: address.
    pub from_address: Option<String>,
    /// Date header, Unix ms.
    pub date: Option<i64>,
    /// Message-ID header.
    pub message_id: Option<String>,
    /// Raw size in bytes.
    pub size: i64,
    /// Hex SHA-256 of the raw bytes.
    pub sha256: String,
    /// Attachment count.
    pub attachments: i64,
    /// Whether mail-parser could read it.
    pub parsed: bool,
}

/// A message to store, parsed by the caller.
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// Raw bytes, stored as given.
    pub raw: Vec<u8>,
    /// Folder it starts in.
    pub folder: String,
    /// IMAP flags it starts with.
    pub flags: Vec<String>,
    /// Tags it starts with.
    pub tags: Vec<String>,
    /// What parsing found.
    pub facts: MessageFacts,
    /// Text for the full-text index (the text body).
    pub body_text: String,
}

/// A stored message's summary.
#[derive(Debug, Clone)]
pub struct MessageRow {
    /// Its id.
    pub id: String,
    /// Folder.
    pub folder: String,
    /// IMAP flags.
    pub flags: Vec<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// Where a discarded message was before it went to the trash.
    pub trashed_from: Option<String>,
    /// What parsing found.
    pub facts: MessageFacts,
    /// Import time, Unix ms.
    pub received_at: i64,
}

impl MessageRow {
    /// Where the message is and how it is marked, as a pipeline changes it.
    pub fn stored_envelope(&self) -> StoredEnvelope {
        StoredEnvelope {
            folder: self.folder.clone(),
            flags: self.flags.clone(),
            tags: self.tags.clone(),
            trashed_from: self.trashed_from.clone(),
        }
    }
}

const COLUMNS: &str = "id, folder, flags, tags, trashed_from, subject, from_name, from_address, date, \
                       message_id, size, sha256, attachments, parsed, received_at";

/// `COLUMNS` as `m.<column>`, for statements that join another table; built once.
fn qualified_columns() -> &'static str {
    static QUALIFIED: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    QUALIFIED.get_or_init(|| {
        COLUMNS
            .split(',')
            .map(|col| format!("m.{}", col.trim()))
            .collect::<Vec<_>>()
            .join(", ")
    })
}

fn message(row: &impl DbRow) -> Result<MessageRow> {
    Ok(MessageRow {
        id: row.col("id")?,
        folder: row.col("folder")?,
        flags: from_json(&row.col::<String>("flags")?, "message flags")?,
        tags: from_json(&row.col::<String>("tags")?, "message tags")?,
        trashed_from: row.col("trashed_from")?,
        facts: MessageFacts {
            subject: row.col("subject")?,
            from_name: row.col("from_name")?,
            from_address: row.col("from_address")?,
            date: row.col("date")?,
            message_id: row.col("message_id")?,
            size: row.col("size")?,
            sha256: row.col("sha256")?,
            attachments: row.col("attachments")?,
            parsed: row.col::<i64>("parsed")? != 0,
        },
        received_at: row.col("received_at")?,
    })
}

impl Store {
    /// Stores a message, indexes it, and queues the tenant's on-import pipelines over it, in one
    /// transaction: a message is never stored without the runs it should trigger. Concurrent
    /// imports share their transaction (see `store::imports`).
    pub async fn insert_message(
        &self,
        tenant: &TenantId,
        new: NewMessage,
    ) -> Result<(MessageRow, Vec<String>)> {
        match &self.imports {
            Some(imports) => imports.insert(tenant, new, self.run_attempts).await,
            None => {
                let mut tx = self.write_tx().await?;
                let stored = store_message(&mut tx, tenant, &new, self.run_attempts).await?;
                tx.commit().await?;
                Ok(stored)
            }
        }
    }

    /// One message's summary.
    pub async fn message(&self, tenant: &TenantId, id: &str) -> Result<MessageRow> {
        let sql = format!("SELECT {COLUMNS} FROM messages WHERE tenant_id = $1 AND id = $2");
        on_pool!(self, |c| {
            let row = sqlx::query(&sql)
                .bind(tenant.as_str())
                .bind(id)
                .fetch_optional(c)
                .await?
                .ok_or(StoreError::NotFound)?;
            message(&row)
        })
    }

    /// A message's summary and raw bytes, in one query.
    pub async fn message_with_raw(
        &self,
        tenant: &TenantId,
        id: &str,
    ) -> Result<(MessageRow, Vec<u8>)> {
        // Qualified: `messages` has a `message_id` column (the header) and both have `raw_id`.
        let sql = format!(
            "SELECT {}, r.raw FROM messages m JOIN message_raw r \
             ON r.tenant_id = m.tenant_id AND r.raw_id = m.raw_id WHERE m.tenant_id = $1 AND m.id = $2",
            qualified_columns()
        );
        on_pool!(self, |c| {
            let row = sqlx::query(&sql)
                .bind(tenant.as_str())
                .bind(id)
                .fetch_optional(c)
                .await?
                .ok_or(StoreError::NotFound)?;
            Ok((message(&row)?, row.col("raw")?))
        })
    }

    /// Changes a message's envelope (folder, flags, tags) in one transaction; `change` may refuse.
    pub async fn change_envelope(
        &self,
        tenant: &TenantId,
        id: &str,
        change: impl FnOnce(&mut StoredEnvelope) -> Result<()>,
    ) -> Result<MessageRow> {
        let mut tx = self.write_tx().await?;
        let mut envelope = read_envelope(&mut tx, tenant, id)
            .await?
            .ok_or(StoreError::NotFound)?;
        change(&mut envelope)?;
        write_envelope(&mut tx, tenant, id, &envelope).await?;
        tx.commit().await?;
        self.message(tenant, id).await
    }

    /// A message's raw bytes.
    pub async fn message_raw(&self, tenant: &TenantId, id: &str) -> Result<Vec<u8>> {
        // Copies share their original's bytes: found through the message's raw id.
        on_pool!(self, |c| {
            let row = sqlx::query(
                "SELECT r.raw FROM messages m JOIN message_raw r \
                 ON r.tenant_id = m.tenant_id AND r.raw_id = m.raw_id \
                 WHERE m.tenant_id = $1 AND m.id = $2",
            )
            .bind(tenant.as_str())
            .bind(id)
            .fetch_optional(c)
            .await?
            .ok_or(StoreError::NotFound)?;
            row.at(0)
        })
    }

    /// A page of the tenant's messages matching `filter`, newest first, after `cursor`.
    pub async fn messages(
        &self,
        tenant: &TenantId,
        filter: &MessageFilter,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<MessageRow>> {
        let mut cond = filter.conditions(tenant, self.backend());
        if let Some(cursor) = cursor {
            cond.push("m.id < {}", Arg::Text(cursor.to_string()));
        }
        let sql = format!(
            "SELECT {COLUMNS} FROM messages m WHERE {} ORDER BY m.id DESC LIMIT {}",
            cond.where_clause(),
            u64::from(limit) + 1
        );
        let mut items = on_pool!(self, |c| {
            let rows = cond.bind(sqlx::query(&sql)).fetch_all(c).await?;
            rows.iter().map(message).collect::<Result<Vec<_>>>()?
        });
        let next_cursor = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(|m| m.id.clone())
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    /// Ids of every message matching `filter`, oldest first (what a run over a query covers).
    pub async fn message_ids(
        &self,
        tenant: &TenantId,
        filter: &MessageFilter,
    ) -> Result<Vec<String>> {
        let cond = filter.conditions(tenant, self.backend());
        let sql = format!(
            "SELECT m.id FROM messages m WHERE {} ORDER BY m.id",
            cond.where_clause()
        );
        on_pool!(self, |c| {
            let rows = cond.bind(sqlx::query(&sql)).fetch_all(c).await?;
            rows.iter().map(|r| r.at(0)).collect()
        })
    }

    /// Which of `ids` are the tenant's messages (the rest are unknown to it), in the order given.
    pub async fn existing_message_ids(
        &self,
        tenant: &TenantId,
        ids: &[String],
    ) -> Result<Vec<String>> {
        let mut found = std::collections::HashSet::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let placeholders: Vec<String> =
                (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
            let sql = format!(
                "SELECT id FROM messages WHERE tenant_id = $1 AND id IN ({})",
                placeholders.join(", ")
            );
            on_pool!(self, |c| {
                let mut query = sqlx::query(&sql).bind(tenant.as_str());
                for id in chunk {
                    query = query.bind(id);
                }
                for row in query.fetch_all(c).await? {
                    found.insert(row.at::<String>(0)?);
                }
            });
        }
        Ok(ids
            .iter()
            .filter(|id| found.contains(*id))
            .cloned()
            .collect())
    }
}

/// Stores one message, its bytes, tags and index entry, and queues its on-import runs, inside `tx`.
pub(super) async fn store_message(
    tx: &mut WriteTx,
    tenant: &TenantId,
    new: &NewMessage,
    run_attempts: i64,
) -> Result<(MessageRow, Vec<String>)> {
    let row = MessageRow {
        id: new_id(),
        folder: new.folder.clone(),
        flags: new.flags.clone(),
        tags: new.tags.clone(),
        trashed_from: None,
        facts: new.facts.clone(),
        received_at: now_ms(),
    };
    let search_rowid = index_text(tx, tenant, &row.id, &row.facts, &new.body_text).await?;
    let sql = format!(
        "INSERT INTO messages (tenant_id, {COLUMNS}, search_rowid, raw_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)"
    );
    on_tx!(tx, |c| {
        sqlx::query(&sql)
            .bind(tenant.as_str())
            .bind(&row.id)
            .bind(&row.folder)
            .bind(to_json(&row.flags))
            .bind(to_json(&row.tags))
            .bind(&row.trashed_from)
            .bind(&row.facts.subject)
            .bind(&row.facts.from_name)
            .bind(&row.facts.from_address)
            .bind(row.facts.date)
            .bind(&row.facts.message_id)
            .bind(row.facts.size)
            .bind(&row.facts.sha256)
            .bind(row.facts.attachments)
            .bind(i64::from(row.facts.parsed))
            .bind(row.received_at)
            .bind(search_rowid)
            // A new message's bytes are its own: their raw id is its id.
            .bind(&row.id)
            .execute(&mut *c)
            .await?;
        sqlx::query("INSERT INTO message_raw (tenant_id, raw_id, raw) VALUES ($1, $2, $3)")
            .bind(tenant.as_str())
            .bind(&row.id)
            .bind(&new.raw)
            .execute(&mut *c)
            .await?;
    });
    write_tags(tx, tenant, &row.id, &row.tags).await?;
    let runs = super::runs::queue_import_runs(tx, tenant, &row.id, run_attempts).await?;
    Ok((row, runs))
}

/// Indexes a message's subject and text for search; returns the index row's id (which copies of
/// the message share).
async fn index_text(
    tx: &mut WriteTx,
    tenant: &TenantId,
    id: &str,
    facts: &MessageFacts,
    body: &str,
) -> Result<i64> {
    let subject = facts.subject.as_deref().unwrap_or_default();
    match tx.backend() {
        Backend::Sqlite => on_tx!(tx, |c| {
            // The caller holds the write transaction, so no one else takes this rowid meanwhile.
            let rowid: i64 = sqlx::query(
                "SELECT COALESCE((SELECT rowid FROM message_search ORDER BY rowid DESC LIMIT 1), 0) + 1",
            )
            .fetch_one(&mut *c)
            .await?
            .at(0)?;
            sqlx::query(
                "INSERT INTO message_search (rowid, tenant_id, message_id, subject, body) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(rowid)
            .bind(tenant.as_str())
            .bind(id)
            .bind(subject)
            .bind(body)
            .execute(&mut *c)
            .await?;
            Ok(rowid)
        }),
        Backend::Postgres => on_tx!(tx, |c| {
            sqlx::query(
                "INSERT INTO message_search (tenant_id, message_id, document) \
                 VALUES ($1, $2, CAST($3 AS tsvector)) RETURNING rowid",
            )
            .bind(tenant.as_str())
            .bind(id)
            .bind(search::pg_document(subject, body))
            .fetch_one(&mut *c)
            .await?
            .at(0)
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database from before `shared_raw` (a message and an old-style full copy of it) keeps every
    /// message and its bytes through the migration, and new copies then share them.
    #[tokio::test]
    async fn the_shared_raw_migration_keeps_every_message_and_its_bytes() {
        let dir = tempfile::tempdir().expect("temp dir");
        let initial = dir.path().join("initial");
        std::fs::create_dir(&initial).expect("mkdir");
        let name = "20261123000001_initial.sql";
        std::fs::copy(
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../migrations/sqlite/20261123000001_initial.sql"
            ),
            initial.join(name),
        )
        .expect("copy the first migration");
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("wasmail.db").display()
        );
        let old = sqlx::SqlitePool::connect(&url).await.expect("open");
        sqlx::migrate::Migrator::new(initial.as_path())
            .await
            .expect("read the first migration")
            .run(&old)
            .await
            .expect("the schema before shared_raw");
        for (id, folder, raw) in [
            ("m1", "INBOX", &b"Subject: a\r\n\r\nA\r\n"[..]),
            ("m2", "Copies", b"Subject: a\r\n\r\nA\r\n"),
        ] {
            sqlx::query(
                "INSERT INTO messages (tenant_id, id, folder, flags, tags, size, sha256, attachments, \
                 parsed, received_at) VALUES ('t', $1, $2, '[]', '[]', 17, 'x', 0, 1, 0)",
            )
            .bind(id)
            .bind(folder)
            .execute(&old)
            .await
            .expect("an old message row");
            sqlx::query(
                "INSERT INTO message_raw (tenant_id, message_id, raw) VALUES ('t', $1, $2)",
            )
            .bind(id)
            .bind(raw)
            .execute(&old)
            .await
            .expect("its bytes");
        }
        old.close().await;

        let store = Store::connect(Some(&url), dir.path())
            .await
            .expect("connect");
        store.migrate().await.expect("migrate");
        for id in ["m1", "m2"] {
            let (row, raw) = store
                .message_with_raw(&TenantId::new("t"), id)
                .await
                .expect("still there");
            assert_eq!(row.id, id);
            assert_eq!(raw, b"Subject: a\r\n\r\nA\r\n");
            assert_eq!(
                store
                    .message_raw(&TenantId::new("t"), id)
                    .await
                    .expect("raw"),
                raw
            );
        }
        let mut tx = store.write_tx().await.expect("tx");
        let copy =
            super::super::envelope::copy_message(&mut tx, &TenantId::new("t"), "m1", "Later")
                .await
                .expect("copy");
        tx.commit().await.expect("commit");
        assert_eq!(
            store
                .message_raw(&TenantId::new("t"), &copy)
                .await
                .expect("raw"),
            b"Subject: a\r\n\r\nA\r\n"
        );
        assert_eq!(
            store
                .message(&TenantId::new("t"), &copy)
                .await
                .expect("copy")
                .folder,
            "Later"
        );
        let rows: i64 = on_pool!(store, |c| {
            sqlx::query("SELECT COUNT(*) FROM message_raw WHERE tenant_id = 't'")
                .fetch_one(c)
                .await
                .expect("count")
                .at(0)
                .expect("count")
        });
        assert_eq!(rows, 2, "the new copy shares m1's bytes");
        assert!(
            matches!(
                store.message_raw(&TenantId::new("u"), "m1").await,
                Err(StoreError::NotFound)
            ),
            "per tenant"
        );
    }
}
