//! The parse pipeline: raw RFC 5322 bytes → parsed, stored byte-exact, indexed. Nothing received is
//! lost: a message mail-parser cannot read is stored unparsed, raw bytes intact.

use super::PipelineError;
use crate::domain::TenantId;
use crate::message::{Envelope, ParsedMessage};
use crate::store::{MessageFacts, MessageRow, NewMessage, Store};
use sha2::{Digest, Sha256};

/// How much of a text body goes into the full-text index.
const INDEXED_BODY_BYTES: usize = 1 << 20;

/// Parses `raw` (on a blocking thread: a large message takes milliseconds) and describes it for the
/// store.
pub async fn describe(raw: Vec<u8>, envelope: Envelope) -> Result<NewMessage, PipelineError> {
    tokio::task::spawn_blocking(move || {
        let sha256 = hex::encode(Sha256::digest(&raw));
        let parsed = ParsedMessage::parse(raw, envelope);
        let from = parsed.from().into_iter().next();
        let mut body_text = parsed.text_body().to_string();
        if body_text.len() > INDEXED_BODY_BYTES {
            let mut end = INDEXED_BODY_BYTES;
            while !body_text.is_char_boundary(end) {
                end -= 1;
            }
            body_text.truncate(end);
        }
        let new = NewMessage {
            folder: parsed.envelope().folder.clone(),
            flags: parsed.envelope().flags.clone(),
            tags: parsed.envelope().tags.clone(),
            facts: MessageFacts {
                subject: parsed.subject().map(str::to_string),
                from_name: from.as_ref().and_then(|a| a.name.clone()),
                from_address: from.and_then(|a| a.address),
                date: parsed.date().map(|secs| secs.saturating_mul(1000)),
                message_id: parsed.message_id().map(str::to_string),
                size: parsed.size() as i64,
                sha256,
                attachments: parsed.attachments().len() as i64,
                parsed: parsed.is_parsed(),
            },
            body_text,
            raw: Vec::new(),
        };
        (new, parsed)
    })
    .await
    .map(|(mut new, parsed)| {
        // The raw bytes move out of the parsed message instead of being copied.
        new.raw = parsed.into_raw();
        new
    })
    .map_err(|e| PipelineError::Internal(format!("parsing task failed: {e}")))
}

/// Parses `raw` in `envelope` on a blocking thread (a large message takes milliseconds).
pub async fn parse(raw: Vec<u8>, envelope: Envelope) -> Result<ParsedMessage, PipelineError> {
    tokio::task::spawn_blocking(move || ParsedMessage::parse(raw, envelope))
        .await
        .map_err(|e| PipelineError::Internal(format!("parsing task failed: {e}")))
}

/// Imports a message for `tenant` into `folder`: parsed, stored, indexed, and the tenant's on-import
/// pipelines queued. Returns the stored message and the runs queued.
pub async fn import(
    store: &Store,
    tenant: &TenantId,
    raw: Vec<u8>,
    folder: &str,
) -> Result<(MessageRow, Vec<String>), PipelineError> {
    let envelope = Envelope {
        folder: folder.to_string(),
        ..Envelope::default()
    };
    let new = describe(raw, envelope).await?;
    Ok(store.insert_message(tenant, new).await?)
}
