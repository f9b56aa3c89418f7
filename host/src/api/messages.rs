//! Messages: import (the parse pipeline), list and search, read parsed or raw, download attachments.

use super::Tags;
use super::body::read_limited;
use super::models::time;
use super::problem::{ApiError, invalid_name, missing};
use super::state::{Shared, TenantToken};
use crate::domain::MessageFilter;
use crate::domain::{FolderName, Tag};
use crate::message::{Address, Envelope, ParsedMessage, attachment_disposition};
use crate::store::MessageRow;
use chrono::{DateTime, Utc};
use poem::Body;
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::{Binary, Json};
use poem_openapi::{ApiResponse, Object, OpenApi};

/// A mailbox of an address header.
#[derive(Debug, Clone, Object)]
pub struct Mailbox {
    /// Display name, decoded.
    #[oai(skip_serializing_if_is_none)]
    pub name: Option<String>,
    /// `local@domain`.
    #[oai(skip_serializing_if_is_none)]
    pub address: Option<String>,
}

impl From<Address> for Mailbox {
    fn from(a: Address) -> Self {
        Self {
            name: a.name,
            address: a.address,
        }
    }
}

/// A stored message, as lists show it.
#[derive(Debug, Clone, Object)]
pub struct MessageSummary {
    /// Its id.
    pub id: String,
    /// Folder (IMAP mailbox name).
    pub folder: String,
    /// IMAP flags and keywords.
    pub flags: Vec<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// For a message in the trash: the folder it was discarded from.
    #[oai(skip_serializing_if_is_none)]
    pub trashed_from: Option<String>,
    /// Decoded subject.
    #[oai(skip_serializing_if_is_none)]
    pub subject: Option<String>,
    /// The first From mailbox.
    #[oai(skip_serializing_if_is_none)]
    pub from: Option<Mailbox>,
    /// The Date header.
    #[oai(skip_serializing_if_is_none)]
    pub date: Option<DateTime<Utc>>,
    /// The Message-ID header, without angle brackets.
    #[oai(skip_serializing_if_is_none)]
    pub message_id: Option<String>,
    /// Size of the raw message, bytes.
    pub size: i64,
    /// Hex SHA-256 of the raw message.
    pub sha256: String,
    /// Number of attachments.
    pub attachment_count: i64,
    /// False when the message could not be parsed (its raw bytes are kept all the same).
    pub parsed: bool,
    /// When it was imported.
    pub received_at: DateTime<Utc>,
}

impl From<MessageRow> for MessageSummary {
    fn from(m: MessageRow) -> Self {
        let f = m.facts;
        let from = (f.from_name.is_some() || f.from_address.is_some()).then_some(Mailbox {
            name: f.from_name,
            address: f.from_address,
        });
        Self {
            id: m.id,
            folder: m.folder,
            flags: m.flags,
            tags: m.tags,
            trashed_from: m.trashed_from,
            subject: f.subject,
            from,
            date: f.date.map(time),
            message_id: f.message_id,
            size: f.size,
            sha256: f.sha256,
            attachment_count: f.attachments,
            parsed: f.parsed,
            received_at: time(m.received_at),
        }
    }
}

/// A header field.
#[derive(Debug, Clone, Object)]
pub struct HeaderField {
    /// Name as written.
    pub name: String,
    /// Value, decoded (RFC 2047) and unfolded.
    pub value: String,
}

/// An attachment's metadata; its bytes are at `/v1/messages/{id}/attachments/{index}`.
#[derive(Debug, Clone, Object)]
pub struct AttachmentInfo {
    /// Position among the message's attachments.
    pub index: u32,
    /// Decoded file name.
    #[oai(skip_serializing_if_is_none)]
    pub filename: Option<String>,
    /// MIME type as declared, lower case.
    pub content_type: String,
    /// Decoded size, bytes.
    pub size: u64,
}

/// A stored message, parsed.
#[derive(Debug, Clone, Object)]
pub struct Message {
    /// Where it is and how it is marked.
    #[oai(flatten)]
    pub summary: MessageSummary,
    /// Every header field in order.
    pub headers: Vec<HeaderField>,
    /// From mailboxes.
    pub from_all: Vec<Mailbox>,
    /// To mailboxes.
    pub to: Vec<Mailbox>,
    /// Cc mailboxes.
    pub cc: Vec<Mailbox>,
    /// Reply-To mailboxes.
    pub reply_to: Vec<Mailbox>,
    /// The text body (from HTML when there is no text part).
    pub text: String,
    /// The HTML body (from text when there is no HTML part).
    pub html: String,
    /// The attachments.
    pub attachments: Vec<AttachmentInfo>,
}

/// A page of messages.
#[derive(Debug, Clone, Object)]
pub struct MessagePage {
    /// Newest first.
    pub items: Vec<MessageSummary>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[oai(skip_serializing_if_is_none)]
    pub next_cursor: Option<String>,
}

/// An imported message, and the on-import runs it queued.
#[derive(Debug, Clone, Object)]
pub struct Imported {
    /// The stored message.
    pub message: MessageSummary,
    /// Runs queued by pipelines that run on import.
    pub runs: Vec<String>,
}

#[derive(ApiResponse)]
enum ImportResponse {
    /// Stored.
    #[oai(status = 201)]
    Created(Json<Imported>),
}

#[derive(ApiResponse)]
enum RawResponse {
    /// The message exactly as imported.
    #[oai(status = 200, content_type = "message/rfc822")]
    Ok(Binary<Vec<u8>>),
}

#[derive(ApiResponse)]
enum AttachmentResponse {
    /// The attachment's decoded bytes (always served as a download).
    #[oai(status = 200)]
    Ok(
        Binary<Vec<u8>>,
        /// `attachment` with the file name as `filename` (an ASCII fallback) and `filename*` (UTF-8,
        /// RFC 6266).
        #[oai(header = "Content-Disposition")]
        String,
        #[oai(header = "X-Content-Type-Options")] String,
    ),
}

/// The list filters, shared with runs over a query.
#[derive(Debug, Clone, Default, Object)]
pub struct MessageQuery {
    /// Exactly this folder (without it, the trash is left out).
    pub folder: Option<String>,
    /// Carries this tag.
    pub tag: Option<String>,
    /// Substring of the From name or address, case-insensitive.
    pub from: Option<String>,
    /// Substring of the subject, case-insensitive.
    pub subject: Option<String>,
    /// Date header at or after.
    pub since: Option<DateTime<Utc>>,
    /// Date header before.
    pub until: Option<DateTime<Utc>>,
    /// Full text over subject and text body: every word must occur, and the words of a
    /// `"quoted phrase"` next to each other. Case and diacritics are ignored; punctuation
    /// separates words.
    pub q: Option<String>,
}

impl MessageQuery {
    /// Checks (and normalises) the names it filters by, as plugins' actions are checked: a
    /// `folder` or `tag` that no message can have is a 422 `invalid-name`, not an empty page.
    /// `prefix` places the fields in the request (`query.` in a run request).
    pub fn checked(mut self, prefix: &str) -> Result<Self, ApiError> {
        // Control characters first: a NUL is a bad parameter (400) whatever field it is in.
        super::params::plain_text([
            ("folder", self.folder.as_deref()),
            ("tag", self.tag.as_deref()),
            ("from", self.from.as_deref()),
            ("subject", self.subject.as_deref()),
            ("q", self.q.as_deref()),
        ])?;
        if let Some(folder) = self.folder.take() {
            let field = format!("{prefix}folder");
            self.folder = Some(
                FolderName::parse(&folder)
                    .map_err(invalid_name(&field))?
                    .into(),
            );
        }
        if let Some(tag) = self.tag.take() {
            let field = format!("{prefix}tag");
            self.tag = Some(Tag::parse(&tag).map_err(invalid_name(&field))?.into());
        }
        Ok(self)
    }
}

/// The one place filters are built from request input: every text filter is checked here.
impl TryFrom<MessageQuery> for MessageFilter {
    type Error = ApiError;

    fn try_from(q: MessageQuery) -> Result<Self, ApiError> {
        super::params::plain_text([
            ("folder", q.folder.as_deref()),
            ("tag", q.tag.as_deref()),
            ("from", q.from.as_deref()),
            ("subject", q.subject.as_deref()),
            ("q", q.q.as_deref()),
        ])?;
        Ok(Self {
            folder: q.folder,
            tag: q.tag,
            from: q.from,
            subject: q.subject,
            since: q.since.map(|d| d.timestamp_millis()),
            until: q.until.map(|d| d.timestamp_millis()),
            q: q.q,
        })
    }
}

/// Message endpoints.
#[derive(Debug)]
pub struct MessagesApi;

#[OpenApi(tag = "Tags::Messages")]
impl MessagesApi {
    /// Import a message: the raw RFC 5322 bytes as the body (`Content-Type: message/rfc822`). It is
    /// stored byte-exact, parsed and indexed; a message that cannot be parsed is stored all the same
    /// (`parsed: false`). Pipelines that run on import are queued.
    #[oai(path = "/v1/messages", method = "post", operation_id = "importMessage")]
    async fn import(
        &self,
        state: Data<&Shared>,
        auth: TenantToken,
        /// Folder to put it in (default `INBOX`); a name that breaks the folder rules (no control
        /// characters, `*`, `%`, `"`, `\`, `{`, `}`; at most 255 bytes and 16 `/` levels) is a 422
        /// `invalid-name`.
        folder: Query<Option<String>>,
        body: Binary<Body>,
    ) -> Result<ImportResponse, ApiError> {
        let tenant = state.tenant(&auth).await?;
        let raw = read_limited(body.0, state.max_message_bytes, "message").await?;
        let (row, runs) =
            crate::service::messages::import(&state.services, &tenant.id, raw, folder.0.as_deref())
                .await?;
        Ok(ImportResponse::Created(Json(Imported {
            message: row.into(),
            runs,
        })))
    }

    /// List and search messages, newest first.
    #[oai(path = "/v1/messages", method = "get", operation_id = "listMessages")]
    #[allow(clippy::too_many_arguments)]
    async fn list(
        &self,
        state: Data<&Shared>,
        auth: TenantToken,
        /// Exactly this folder (without it, the trash is left out).
        folder: Query<Option<String>>,
        /// Carries this tag.
        tag: Query<Option<String>>,
        /// Substring of the From name or address, case-insensitive.
        from: Query<Option<String>>,
        /// Substring of the subject, case-insensitive.
        subject: Query<Option<String>>,
        /// Date header at or after (RFC 3339).
        since: Query<Option<DateTime<Utc>>>,
        /// Date header before (RFC 3339).
        until: Query<Option<DateTime<Utc>>>,
        /// Full text over subject and text body: every word must occur, and the words of a
        /// `"quoted phrase"` next to each other. Case and diacritics are ignored; punctuation
        /// separates words.
        q: Query<Option<String>>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
        /// Page size.
        #[oai(
            default = "default_limit",
            validator(minimum(value = "1"), maximum(value = "500"))
        )]
        limit: Query<u32>,
    ) -> Result<Json<MessagePage>, ApiError> {
        let tenant = state.tenant(&auth).await?;
        let filter = MessageFilter::try_from(
            MessageQuery {
                folder: folder.0,
                tag: tag.0,
                from: from.0,
                subject: subject.0,
                since: since.0,
                until: until.0,
                q: q.0,
            }
            .checked("")?,
        )?;
        let page = state
            .store
            .messages(&tenant.id, &filter, cursor.0.as_deref(), limit.0)
            .await?;
        Ok(Json(MessagePage {
            items: page.items.into_iter().map(MessageSummary::from).collect(),
            next_cursor: page.next_cursor,
        }))
    }

    /// Get a message, parsed: headers, addresses, bodies, attachments.
    #[oai(path = "/v1/messages/:id", method = "get", operation_id = "getMessage")]
    async fn get(
        &self,
        state: Data<&Shared>,
        auth: TenantToken,
        id: Path<String>,
    ) -> Result<Json<Message>, ApiError> {
        let tenant = state.tenant(&auth).await?;
        let (summary, raw) = state
            .store
            .message_with_raw(&tenant.id, &id)
            .await
            .map_err(missing("message"))?;
        let message = tokio::task::spawn_blocking(move || {
            let parsed = ParsedMessage::parse(raw, Envelope::default());
            let mailboxes = |list: Vec<Address>| list.into_iter().map(Mailbox::from).collect();
            Message {
                headers: parsed
                    .headers()
                    .into_iter()
                    .map(|(name, value)| HeaderField { name, value })
                    .collect(),
                from_all: mailboxes(parsed.from()),
                to: mailboxes(parsed.to()),
                cc: mailboxes(parsed.cc()),
                reply_to: mailboxes(parsed.reply_to()),
                text: parsed.text_body().to_string(),
                html: parsed.html_body().to_string(),
                attachments: parsed
                    .attachments()
                    .into_iter()
                    .map(|a| AttachmentInfo {
                        index: a.index,
                        filename: a.filename,
                        content_type: a.content_type,
                        size: a.size,
                    })
                    .collect(),
                summary: summary.into(),
            }
        })
        .await
        .map_err(ApiError::internal)?;
        Ok(Json(message))
    }

    /// Restore a message from the trash to the folder it was discarded from.
    #[oai(
        path = "/v1/messages/:id/restore",
        method = "post",
        operation_id = "restoreMessage"
    )]
    async fn restore(
        &self,
        state: Data<&Shared>,
        auth: TenantToken,
        id: Path<String>,
    ) -> Result<Json<MessageSummary>, ApiError> {
        let tenant = state.tenant(&auth).await?;
        let row = crate::service::messages::restore(&state.services, &tenant.id, &id).await?;
        Ok(Json(row.into()))
    }

    /// Get a message's raw bytes, exactly as imported.
    #[oai(
        path = "/v1/messages/:id/raw",
        method = "get",
        operation_id = "getMessageRaw"
    )]
    async fn raw(
        &self,
        state: Data<&Shared>,
        auth: TenantToken,
        id: Path<String>,
    ) -> Result<RawResponse, ApiError> {
        let tenant = state.tenant(&auth).await?;
        let raw = state
            .store
            .message_raw(&tenant.id, &id)
            .await
            .map_err(missing("message"))?;
        Ok(RawResponse::Ok(Binary(raw)))
    }

    /// Download an attachment's decoded bytes.
    #[oai(
        path = "/v1/messages/:id/attachments/:index",
        method = "get",
        operation_id = "getMessageAttachment"
    )]
    async fn attachment(
        &self,
        state: Data<&Shared>,
        auth: TenantToken,
        id: Path<String>,
        #[oai(validator(minimum(value = "0"), maximum(value = "100000")))] index: Path<u32>,
    ) -> Result<AttachmentResponse, ApiError> {
        let tenant = state.tenant(&auth).await?;
        let raw = state
            .store
            .message_raw(&tenant.id, &id)
            .await
            .map_err(missing("message"))?;
        let index = *index;
        let found = tokio::task::spawn_blocking(move || {
            let parsed = ParsedMessage::parse(raw, Envelope::default());
            let info = parsed.attachments().into_iter().nth(index as usize)?;
            let bytes = parsed.attachment_content(index)?.to_vec();
            Some((info.filename, bytes))
        })
        .await
        .map_err(ApiError::internal)?;
        let (filename, bytes) = found.ok_or_else(|| ApiError::not_found("attachment"))?;
        // Built here rather than by poem's `Attachment`, which writes the name raw (no `filename*`) and
        // drops the whole header when the name holds CR LF.
        let disposition =
            attachment_disposition(filename.as_deref(), &format!("attachment-{index}"));
        Ok(AttachmentResponse::Ok(
            Binary(bytes),
            disposition,
            "nosniff".into(),
        ))
    }
}

fn default_limit() -> u32 {
    50
}
