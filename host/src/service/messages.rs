//! Messages: import one (parse, store, index, queue on-import pipelines); restore one from the trash.

use super::{Result, ServiceError, Services, missing};
use crate::domain::{FolderName, TenantId};
use crate::message::Envelope;
use crate::pipeline::apply::move_to;
use crate::pipeline::ingest;
use crate::store::{MessageRow, StoreError, TRASH};

/// Imports raw RFC 5322 bytes into `folder` (default `INBOX`). A message that cannot be parsed is
/// stored all the same. Returns the stored message and the runs queued for it.
pub async fn import(
    svc: &Services,
    tenant: &TenantId,
    raw: Vec<u8>,
    folder: Option<&str>,
) -> Result<(MessageRow, Vec<String>)> {
    let folder = match folder {
        Some(name) => FolderName::parse(name)
            .map_err(|e| ServiceError::InvalidName("folder".into(), e))?
            .into(),
        None => Envelope::default().folder,
    };
    let (row, runs) = ingest::import(&svc.store, tenant, raw, &folder).await?;
    if !runs.is_empty() {
        svc.runner.wake();
    }
    Ok((row, runs))
}

/// Moves a message from the trash back to the folder it was discarded from.
pub async fn restore(svc: &Services, tenant: &TenantId, id: &str) -> Result<MessageRow> {
    svc.store
        .change_envelope(tenant, id, |envelope| {
            if envelope.folder != TRASH {
                return Err(StoreError::Conflict(
                    "the message is not in the trash".into(),
                ));
            }
            // A folder stored before names were checked may break the rules: such a message goes
            // back to INBOX rather than staying stuck in the trash.
            let back = envelope
                .trashed_from
                .as_deref()
                .and_then(|f| FolderName::parse(f).ok())
                .map_or_else(|| Envelope::default().folder, String::from);
            move_to(envelope, &back);
            Ok(())
        })
        .await
        .map_err(missing("message"))
}
