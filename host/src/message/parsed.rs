use super::header_block::header_block_start;
use mail_parser::{HeaderName, HeaderValue, MessageParser, MimeHeaders, PartType};
use self_cell::self_cell;
use std::sync::OnceLock;

/// Where the message sits and how it is marked: the mailbox state a filter sees and changes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Envelope {
    /// The folder (IMAP mailbox name).
    pub folder: String,
    /// IMAP flags: system flags with a backslash (`\Seen`), keywords without.
    pub flags: Vec<String>,
    /// wasmail tags.
    pub tags: Vec<String>,
}

impl Default for Envelope {
    fn default() -> Self {
        Self {
            folder: "INBOX".to_string(),
            flags: Vec::new(),
            tags: Vec::new(),
        }
    }
}

/// One mailbox of an address header.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Address {
    /// Display name, decoded.
    pub name: Option<String>,
    /// `local@domain` as written.
    pub address: Option<String>,
}

/// Metadata of one attachment.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AttachmentInfo {
    /// Position among the message's attachments.
    pub index: u32,
    /// Decoded file name.
    pub filename: Option<String>,
    /// Lower-case MIME type.
    pub content_type: String,
    /// Decoded size in bytes.
    pub size: u64,
}

type Parsed<'a> = Option<mail_parser::Message<'a>>;

self_cell!(
    // The parsed message borrows the raw bytes it was parsed from, so parsing copies nothing and the
    // raw bytes stay byte-exact.
    struct Cell {
        owner: Vec<u8>,
        #[covariant]
        dependent: Parsed,
    }
);

/// A parsed message: raw bytes, the mail-parser tree over them, and lazily derived views.
///
/// Cheap to share (`Arc<ParsedMessage>`): every accessor takes `&self` and derived views are computed
/// once, on first use.
pub struct ParsedMessage {
    cell: Cell,
    /// Where the parsed view starts in the raw bytes (after tolerated leading blank lines): header
    /// offsets that mail-parser gives are relative to it.
    parse_start: usize,
    envelope: Envelope,
    text: OnceLock<String>,
    html: OnceLock<String>,
    text_folded: OnceLock<String>,
    html_folded: OnceLock<String>,
}

impl std::fmt::Debug for ParsedMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParsedMessage")
            .field("size", &self.size())
            .field("subject", &self.subject())
            .field("envelope", &self.envelope)
            .finish_non_exhaustive()
    }
}

impl ParsedMessage {
    /// Parses `raw` (see [`crate::message::parse`]) and places it in `envelope`.
    pub fn parse(raw: Vec<u8>, envelope: Envelope) -> Self {
        let parse_start = header_block_start(&raw);
        let cell = Cell::new(raw, |raw| {
            // mail-parser has debug assertions that real mail reaches (the corpus message
            // mimekit__mbox-content-length.mbox__m01.eml does); release builds continue past them.
            // Whatever a parser bug does, the message is kept: unparsed, with its raw bytes.
            let from_headers = raw.get(parse_start..).unwrap_or_default();
            std::panic::catch_unwind(|| MessageParser::default().parse(from_headers))
                .ok()
                .flatten()
        });
        Self {
            cell,
            parse_start,
            envelope,
            text: OnceLock::new(),
            html: OnceLock::new(),
            text_folded: OnceLock::new(),
            html_folded: OnceLock::new(),
        }
    }

    fn msg(&self) -> Option<&mail_parser::Message<'_>> {
        self.cell.borrow_dependent().as_ref()
    }

    /// The raw bytes exactly as received.
    pub fn raw(&self) -> &[u8] {
        self.cell.borrow_owner()
    }

    /// Gives the raw bytes back, dropping the parsed view.
    pub fn into_raw(self) -> Vec<u8> {
        self.cell.into_owner()
    }

    /// Whether mail-parser found a message at all (false for empty or binary garbage).
    pub fn is_parsed(&self) -> bool {
        self.msg().is_some()
    }

    /// Size of the raw message in bytes.
    pub fn size(&self) -> u64 {
        self.raw().len() as u64
    }

    /// Folder, flags and tags.
    pub fn envelope(&self) -> &Envelope {
        &self.envelope
    }

    /// Places the message in another envelope (a pipeline's earlier stage moved or tagged it), without
    /// parsing it again.
    pub fn set_envelope(&mut self, envelope: Envelope) {
        self.envelope = envelope;
    }

    /// Every top-level header as (name as written, decoded value), in message order.
    pub fn headers(&self) -> Vec<(String, String)> {
        self.top_headers()
            .map(|h| (h.name().to_string(), self.header_text(h)))
            .collect()
    }

    /// Header names in message order, as written.
    pub fn header_names(&self) -> Vec<String> {
        self.top_headers().map(|h| h.name().to_string()).collect()
    }

    /// Every value of header `name` (case-insensitive), decoded, in message order.
    pub fn header_all(&self, name: &str) -> Vec<String> {
        self.top_headers()
            .filter(|h| h.name().eq_ignore_ascii_case(name))
            .map(|h| self.header_text(h))
            .collect()
    }

    /// The first value of header `name` (case-insensitive), decoded.
    pub fn header(&self, name: &str) -> Option<String> {
        self.top_headers()
            .find(|h| h.name().eq_ignore_ascii_case(name))
            .map(|h| self.header_text(h))
    }

    fn top_headers(&self) -> impl Iterator<Item = &mail_parser::Header<'_>> {
        self.msg().into_iter().flat_map(|m| m.headers().iter())
    }

    /// A header value as text: the parsed form for text and address headers (decoded), the raw value
    /// unfolded for structured ones (dates, content types, received traces).
    fn header_text(&self, header: &mail_parser::Header<'_>) -> String {
        match header.value() {
            HeaderValue::Text(text) => text.to_string(),
            HeaderValue::TextList(list) => list.join(", "),
            HeaderValue::Address(address) => address
                .iter()
                .map(|a| match (&a.name, &a.address) {
                    (Some(n), Some(addr)) => format!("{n} <{addr}>"),
                    (None, Some(addr)) => addr.to_string(),
                    (Some(n), None) => n.to_string(),
                    (None, None) => String::new(),
                })
                .collect::<Vec<_>>()
                .join(", "),
            _ => {
                let raw = self.raw().get(self.parse_start..).unwrap_or_default();
                let start = (header.offset_start() as usize).min(raw.len());
                let end = (header.offset_end() as usize).clamp(start, raw.len());
                unfold(&String::from_utf8_lossy(&raw[start..end]))
            }
        }
    }

    /// The parsed value of the first top-level header called `name`.
    ///
    /// mail-parser's own accessors (`subject()`, `from()`, ...) take the last of duplicated headers;
    /// mail clients show the first, and a filter must judge what the reader sees, so every
    /// single-value header the host reads goes through here.
    fn first_value(&self, name: HeaderName<'static>) -> Option<&HeaderValue<'_>> {
        self.top_headers()
            .find(|h| h.name == name)
            .map(|h| h.value())
    }

    /// Mailboxes of the first header `name`; group members flattened.
    fn addresses(&self, name: HeaderName<'static>) -> Vec<Address> {
        self.first_value(name)
            .and_then(HeaderValue::as_address)
            .map(|list| {
                list.iter()
                    .map(|a| Address {
                        name: a.name.as_deref().map(str::to_string),
                        address: a.address.as_deref().map(str::to_string),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Mailboxes of `From`.
    pub fn from(&self) -> Vec<Address> {
        self.addresses(HeaderName::From)
    }

    /// Mailboxes of `To`.
    pub fn to(&self) -> Vec<Address> {
        self.addresses(HeaderName::To)
    }

    /// Mailboxes of `Cc`.
    pub fn cc(&self) -> Vec<Address> {
        self.addresses(HeaderName::Cc)
    }

    /// Mailboxes of `Reply-To`.
    pub fn reply_to(&self) -> Vec<Address> {
        self.addresses(HeaderName::ReplyTo)
    }

    /// Decoded `Subject` (the first, when there are several).
    pub fn subject(&self) -> Option<&str> {
        self.first_value(HeaderName::Subject).and_then(first_text)
    }

    /// `Date` as seconds since the Unix epoch, when it parses to a valid date.
    pub fn date(&self) -> Option<i64> {
        self.first_value(HeaderName::Date)
            .and_then(HeaderValue::as_datetime)
            .filter(|d| d.is_valid())
            .map(|d| d.to_timestamp())
    }

    /// `Message-ID` without angle brackets.
    pub fn message_id(&self) -> Option<&str> {
        self.first_value(HeaderName::MessageId).and_then(first_text)
    }

    /// The text body: text parts joined by a newline, HTML-only messages converted to text.
    pub fn text_body(&self) -> &str {
        self.text.get_or_init(|| {
            let Some(m) = self.msg() else {
                return String::new();
            };
            let mut parts = (0..m.text_body.len()).filter_map(|i| m.body_text(i));
            let Some(first) = parts.next() else {
                return String::new();
            };
            // One part is the common case: take it without a second copy.
            let mut text = first.into_owned();
            for part in parts {
                text.push('\n');
                text.push_str(&part);
            }
            text
        })
    }

    /// The HTML body: the HTML parts joined (empty when the message has none).
    pub fn html_body(&self) -> &str {
        self.html.get_or_init(|| {
            let Some(m) = self.msg() else {
                return String::new();
            };
            m.html_body
                .iter()
                .filter_map(|&id| m.parts.get(id as usize))
                .filter_map(|part| match &part.body {
                    PartType::Html(html) => Some(html.as_ref()),
                    _ => None,
                })
                .collect::<Vec<&str>>()
                .join("\n")
        })
    }

    /// The text body folded to lower case, for case-insensitive search; computed once.
    pub(crate) fn text_body_folded(&self) -> &str {
        self.text_folded.get_or_init(|| fold(self.text_body()))
    }

    /// The HTML body folded to lower case, for case-insensitive search; computed once.
    pub(crate) fn html_body_folded(&self) -> &str {
        self.html_folded.get_or_init(|| fold(self.html_body()))
    }

    /// Metadata of every attachment.
    pub fn attachments(&self) -> Vec<AttachmentInfo> {
        self.attachment_parts()
            .enumerate()
            .map(|(index, part)| AttachmentInfo {
                index: index as u32,
                filename: part.attachment_name().map(str::to_string),
                content_type: content_type(part),
                size: part_content(part).len() as u64,
            })
            .collect()
    }

    /// Names of the attachments that have one.
    pub fn attachment_names(&self) -> impl Iterator<Item = &str> {
        self.attachment_parts().filter_map(|p| p.attachment_name())
    }

    /// Decoded content of attachment `index`; a nested message is given raw.
    pub fn attachment_content(&self, index: u32) -> Option<&[u8]> {
        self.attachment_parts()
            .nth(index as usize)
            .map(part_content)
    }

    fn attachment_parts(&self) -> impl Iterator<Item = &mail_parser::MessagePart<'_>> {
        self.msg().into_iter().flat_map(|m| m.attachments())
    }
}

/// A text header's value; of a list (a Message-ID header holding several ids), the first.
fn first_text<'a>(value: &'a HeaderValue<'_>) -> Option<&'a str> {
    match value {
        HeaderValue::Text(text) => Some(text),
        HeaderValue::TextList(list) => list.first().map(|t| t.as_ref()),
        _ => None,
    }
}

/// An attachment's bytes: decoded content, or a nested message's raw bytes.
fn part_content<'a>(part: &'a mail_parser::MessagePart<'_>) -> &'a [u8] {
    match &part.body {
        PartType::Message(nested) => nested.raw_message(),
        _ => part.contents(),
    }
}

fn content_type(part: &mail_parser::MessagePart<'_>) -> String {
    match part.content_type() {
        Some(ct) => match ct.subtype() {
            Some(sub) => format!("{}/{}", ct.ctype(), sub).to_ascii_lowercase(),
            None => ct.ctype().to_ascii_lowercase(),
        },
        None => "application/octet-stream".to_string(),
    }
}

/// Lower-cases text for case-insensitive search; ASCII text (most bodies) takes the fast path.
fn fold(text: &str) -> String {
    if text.is_ascii() {
        text.to_ascii_lowercase()
    } else {
        text.to_lowercase()
    }
}

/// Unfolds a raw header value: line breaks followed by white space become one space.
fn unfold(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for (i, line) in raw.split('\n').enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if i > 0 {
            out.push(' ');
            out.push_str(line.trim_start());
        } else {
            out.push_str(line);
        }
    }
    out.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::unfold;

    #[test]
    fn unfold_joins_continuation_lines() {
        assert_eq!(unfold(" a\r\n\tb\r\n  c\r\n"), "a b c");
        assert_eq!(unfold("plain"), "plain");
    }
}
