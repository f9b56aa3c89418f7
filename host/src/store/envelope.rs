//! A stored message's envelope (folder, flags, tags) as pipelines read and change it, and copies.
//! Both imports (`messages`) and runs (`runs`) use these; neither depends on the other for them.

use super::{DbRow, Result, WriteTx, from_json, new_id, now_ms, on_tx, to_json};
use crate::domain::{StoredEnvelope, TenantId};

/// Replaces the tag index of a message.
pub(crate) async fn write_tags(
    tx: &mut WriteTx,
    tenant: &TenantId,
    id: &str,
    tags: &[String],
) -> Result<()> {
    on_tx!(tx, |c| {
        sqlx::query("DELETE FROM message_tags WHERE tenant_id = $1 AND message_id = $2")
            .bind(tenant.as_str())
            .bind(id)
            .execute(&mut *c)
            .await?;
        for tag in tags {
            sqlx::query(
                "INSERT INTO message_tags (tenant_id, message_id, tag) VALUES ($1, $2, $3) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(tenant.as_str())
            .bind(id)
            .bind(tag)
            .execute(&mut *c)
            .await?;
        }
    });
    Ok(())
}

/// Reads a message's envelope inside a transaction, locking the row until it ends (the caller writes
/// it back); `None` when the message is gone.
pub(crate) async fn read_envelope(
    tx: &mut WriteTx,
    tenant: &TenantId,
    id: &str,
) -> Result<Option<StoredEnvelope>> {
    let sql = format!(
        "SELECT folder, flags, tags, trashed_from FROM messages WHERE tenant_id = $1 AND id = $2{}",
        tx.backend().for_update()
    );
    on_tx!(tx, |c| {
        let row = sqlx::query(&sql)
            .bind(tenant.as_str())
            .bind(id)
            .fetch_optional(&mut *c)
            .await?;
        row.map(|r| {
            Ok(StoredEnvelope {
                folder: r.col("folder")?,
                flags: from_json(&r.col::<String>("flags")?, "message flags")?,
                tags: from_json(&r.col::<String>("tags")?, "message tags")?,
                trashed_from: r.col("trashed_from")?,
            })
        })
        .transpose()
    })
}

/// Writes a message's envelope inside a transaction.
pub(crate) async fn write_envelope(
    tx: &mut WriteTx,
    tenant: &TenantId,
    id: &str,
    envelope: &StoredEnvelope,
) -> Result<()> {
    on_tx!(tx, |c| {
        sqlx::query(
            "UPDATE messages SET folder = $1, flags = $2, tags = $3, trashed_from = $4 \
             WHERE tenant_id = $5 AND id = $6",
        )
        .bind(&envelope.folder)
        .bind(to_json(&envelope.flags))
        .bind(to_json(&envelope.tags))
        .bind(&envelope.trashed_from)
        .bind(tenant.as_str())
        .bind(id)
        .execute(&mut *c)
        .await?;
    });
    write_tags(tx, tenant, id, &envelope.tags).await
}

/// Copies a message into `folder`; returns the copy's id. The copy is a row of its own (folder,
/// flags, tags, time of copying) that shares the original's raw bytes and full-text index row: a
/// copy costs a row, not the message again.
pub(crate) async fn copy_message(
    tx: &mut WriteTx,
    tenant: &TenantId,
    id: &str,
    folder: &str,
) -> Result<String> {
    let copy = new_id();
    // Every column of `messages` but the copy's own: id, folder, received_at, search_rowid, raw_id.
    let columns = "flags, tags, trashed_from, subject, from_name, from_address, date, message_id, \
                   size, sha256, attachments, parsed";
    let sql = format!(
        "INSERT INTO messages (tenant_id, id, folder, {columns}, received_at, search_rowid, raw_id) \
         SELECT tenant_id, $1, $2, {columns}, $3, search_rowid, raw_id FROM messages \
         WHERE tenant_id = $4 AND id = $5"
    );
    on_tx!(tx, |c| {
        sqlx::query(&sql)
            .bind(&copy)
            .bind(folder)
            .bind(now_ms())
            .bind(tenant.as_str())
            .bind(id)
            .execute(&mut *c)
            .await?;
        sqlx::query(
            "INSERT INTO message_tags (tenant_id, message_id, tag) \
             SELECT tenant_id, $1, tag FROM message_tags WHERE tenant_id = $2 AND message_id = $3",
        )
        .bind(&copy)
        .bind(tenant.as_str())
        .bind(id)
        .execute(&mut *c)
        .await?;
    });
    Ok(copy)
}
