use crate::__private::WitMessage;
use crate::bindings::wasmail::plugin::types as wit;

/// The largest chunk the host hands out in one call (64 KiB); larger requests are clamped to it.
const CHUNK: u32 = 64 * 1024;

/// The message being filtered.
///
/// It is a handle to the host's copy: every method asks the host for one piece, so nothing is copied
/// into the plugin that it does not ask for. Prefer [`contains`](Message::contains),
/// [`equals`](Message::equals) and [`matches`](Message::matches) for checks: they run natively on the
/// host.
///
/// ```no_run
/// # fn f(message: &wasmail_plugin::Message) {
/// let subject = message.subject().unwrap_or_default();
/// let from = message.from();
/// let is_big = message.size() > 10 * 1024 * 1024;
/// # }
/// ```
#[derive(Debug)]
pub struct Message<'a> {
    handle: &'a WitMessage,
}

/// A mailbox of an address header.
///
/// ```no_run
/// # fn f(message: &wasmail_plugin::Message) {
/// for address in message.to() {
///     if address.address.as_deref() == Some("boss@example.com") { /* ... */ }
/// }
/// # }
/// ```
pub type Address = wit::Address;

/// Metadata of one attachment; read its bytes with [`Message::attachment_bytes`].
///
/// ```no_run
/// # fn f(message: &wasmail_plugin::Message) {
/// for attachment in message.attachments() {
///     let name = attachment.filename.as_deref().unwrap_or("(unnamed)");
///     wasmail_plugin::log::info(&format!("{name}: {} bytes", attachment.size));
/// }
/// # }
/// ```
pub type Attachment = wit::Attachment;

/// The part of a message a match primitive looks at.
///
/// ```no_run
/// use wasmail_plugin::Field;
/// # fn f(message: &wasmail_plugin::Message) {
/// let listed = message.contains(&Field::Header("List-Id".into()), "rust-users");
/// let from_bank = message.equals(&Field::From, "alerts@bank.example");
/// # }
/// ```
pub type Field = wit::Field;

impl<'a> Message<'a> {
    pub(crate) fn from_handle(handle: &'a WitMessage) -> Self {
        Self { handle }
    }

    /// The first value of a header (case-insensitive name), decoded and unfolded.
    ///
    /// ```no_run
    /// # fn f(message: &wasmail_plugin::Message) {
    /// let list = message.header("List-Id");
    /// # }
    /// ```
    pub fn header(&self, name: &str) -> Option<String> {
        self.handle.header(name)
    }

    /// Every value of a header (case-insensitive name), in message order.
    ///
    /// ```no_run
    /// # fn f(message: &wasmail_plugin::Message) {
    /// let hops = message.header_all("Received").len();
    /// # }
    /// ```
    pub fn header_all(&self, name: &str) -> Vec<String> {
        self.handle.header_all(name)
    }

    /// The header names in message order, as written.
    ///
    /// ```no_run
    /// # fn f(message: &wasmail_plugin::Message) {
    /// let has_list = message.header_names().iter().any(|n| n.eq_ignore_ascii_case("List-Id"));
    /// # }
    /// ```
    pub fn header_names(&self) -> Vec<String> {
        self.handle.header_names()
    }

    /// The mailboxes of `From`.
    ///
    /// ```no_run
    /// # fn f(message: &wasmail_plugin::Message) {
    /// let sender = message.from().first().and_then(|a| a.address.clone());
    /// # }
    /// ```
    pub fn from(&self) -> Vec<Address> {
        self.handle.from()
    }

    /// The mailboxes of `To`.
    ///
    /// ```no_run
    /// # fn f(message: &wasmail_plugin::Message) {
    /// let recipients = message.to().len();
    /// # }
    /// ```
    pub fn to(&self) -> Vec<Address> {
        self.handle.to()
    }

    /// The mailboxes of `Cc`.
    ///
    /// ```no_run
    /// # fn f(message: &wasmail_plugin::Message) {
    /// let copied = message.cc().len();
    /// # }
    /// ```
    pub fn cc(&self) -> Vec<Address> {
        self.handle.cc()
    }

    /// The mailboxes of `Reply-To`.
    ///
    /// ```no_run
    /// # fn f(message: &wasmail_plugin::Message) {
    /// let reply_elsewhere = !message.reply_to().is_empty();
    /// # }
    /// ```
    pub fn reply_to(&self) -> Vec<Address> {
        self.handle.reply_to()
    }

    /// The decoded `Subject`.
    ///
    /// ```no_run
    /// # fn f(message: &wasmail_plugin::Message) {
    /// let shouting = message.subject().is_some_and(|s| s.chars().all(|c| !c.is_lowercase()));
    /// # }
    /// ```
    pub fn subject(&self) -> Option<String> {
        self.handle.subject()
    }

    /// The `Date` in seconds since the Unix epoch, when it parses.
    ///
    /// ```no_run
    /// # fn f(message: &wasmail_plugin::Message) {
    /// let from_future = message.date().is_some_and(|d| d * 1000 > wasmail_plugin::clock::now_millis());
    /// # }
    /// ```
    pub fn date(&self) -> Option<i64> {
        self.handle.date()
    }

    /// The `Message-ID` without angle brackets.
    ///
    /// ```no_run
    /// # fn f(message: &wasmail_plugin::Message) {
    /// let missing = message.message_id().is_none();
    /// # }
    /// ```
    pub fn message_id(&self) -> Option<String> {
        self.handle.message_id()
    }

    /// Size of the raw message in bytes.
    ///
    /// ```no_run
    /// # fn f(message: &wasmail_plugin::Message) {
    /// let kib = message.size() / 1024;
    /// # }
    /// ```
    pub fn size(&self) -> u64 {
        self.handle.size()
    }

    /// The whole text body. For large mail prefer [`text_chunks`](Message::text_chunks), which keeps
    /// the plugin's memory flat.
    ///
    /// ```no_run
    /// # fn f(message: &wasmail_plugin::Message) {
    /// let words = message.text_body().split_whitespace().count();
    /// # }
    /// ```
    pub fn text_body(&self) -> String {
        self.text_chunks().collect()
    }

    /// The text body in chunks of at most 64 KiB, cut at UTF-8 boundaries.
    ///
    /// ```no_run
    /// # fn f(message: &wasmail_plugin::Message) {
    /// let links: usize = message.text_chunks().map(|chunk| chunk.matches("http").count()).sum();
    /// # }
    /// ```
    pub fn text_chunks(&self) -> TextChunks<'_> {
        TextChunks {
            handle: self.handle,
            offset: 0,
            html: false,
        }
    }

    /// Length in bytes of the text body.
    ///
    /// ```no_run
    /// # fn f(message: &wasmail_plugin::Message) {
    /// let empty = message.text_body_len() == 0;
    /// # }
    /// ```
    pub fn text_body_len(&self) -> u64 {
        self.handle.text_body_len()
    }

    /// The whole HTML body (empty when there is none).
    ///
    /// ```no_run
    /// # fn f(message: &wasmail_plugin::Message) {
    /// let has_form = message.html_body().contains("<form");
    /// # }
    /// ```
    pub fn html_body(&self) -> String {
        self.html_chunks().collect()
    }

    /// The HTML body in chunks of at most 64 KiB.
    ///
    /// ```no_run
    /// # fn f(message: &wasmail_plugin::Message) {
    /// let scripts = message.html_chunks().any(|chunk| chunk.contains("<script"));
    /// # }
    /// ```
    pub fn html_chunks(&self) -> TextChunks<'_> {
        TextChunks {
            handle: self.handle,
            offset: 0,
            html: true,
        }
    }

    /// Length in bytes of the HTML body.
    ///
    /// ```no_run
    /// # fn f(message: &wasmail_plugin::Message) {
    /// let html_only = message.text_body_len() == 0 && message.html_body_len() > 0;
    /// # }
    /// ```
    pub fn html_body_len(&self) -> u64 {
        self.handle.html_body_len()
    }

    /// Metadata of every attachment.
    ///
    /// ```no_run
    /// # fn f(message: &wasmail_plugin::Message) {
    /// let pdfs = message.attachments().iter().filter(|a| a.content_type == "application/pdf").count();
    /// # }
    /// ```
    pub fn attachments(&self) -> Vec<Attachment> {
        self.handle.attachments()
    }

    /// Up to `len` decoded bytes of attachment `index` from `offset` (at most 64 KiB per host call;
    /// this reads as many chunks as it needs).
    ///
    /// ```no_run
    /// # fn f(message: &wasmail_plugin::Message) {
    /// let magic = message.attachment_bytes(0, 0, 4);
    /// let is_zip = magic.starts_with(b"PK\x03\x04");
    /// # }
    /// ```
    pub fn attachment_bytes(&self, index: u32, offset: u64, len: u64) -> Vec<u8> {
        read_ranges(offset, len, |at, max| {
            self.handle.attachment_bytes(index, at, max)
        })
    }

    /// Up to `len` bytes of the raw message (byte-exact RFC 5322) from `offset`.
    ///
    /// ```no_run
    /// # fn f(message: &wasmail_plugin::Message) {
    /// let first_line = message.raw(0, 200);
    /// # }
    /// ```
    pub fn raw(&self, offset: u64, len: u64) -> Vec<u8> {
        read_ranges(offset, len, |at, max| self.handle.raw(at, max))
    }

    /// The folder the message is in now.
    ///
    /// ```no_run
    /// # fn f(message: &wasmail_plugin::Message) {
    /// let in_inbox = message.folder().eq_ignore_ascii_case("INBOX");
    /// # }
    /// ```
    pub fn folder(&self) -> String {
        self.handle.folder()
    }

    /// The message's flags, IMAP style (`\Seen`, `$Junk`).
    ///
    /// ```no_run
    /// # fn f(message: &wasmail_plugin::Message) {
    /// let seen = message.flags().iter().any(|f| f == "\\Seen");
    /// # }
    /// ```
    pub fn flags(&self) -> Vec<String> {
        self.handle.flags()
    }

    /// The message's tags.
    ///
    /// ```no_run
    /// # fn f(message: &wasmail_plugin::Message) {
    /// let already = message.tags().iter().any(|t| t == "spam");
    /// # }
    /// ```
    pub fn tags(&self) -> Vec<String> {
        self.handle.tags()
    }

    /// Whether `field` contains `needle`, ignoring case; runs natively on the host.
    ///
    /// ```no_run
    /// use wasmail_plugin::Field;
    /// # fn f(message: &wasmail_plugin::Message) {
    /// let unsubscribe = message.contains(&Field::Body, "unsubscribe");
    /// # }
    /// ```
    pub fn contains(&self, field: &Field, needle: &str) -> bool {
        self.handle.contains(field, needle)
    }

    /// Whether `field` equals `value`, ignoring case and surrounding white space (for address fields:
    /// any one address); runs natively on the host.
    ///
    /// ```no_run
    /// use wasmail_plugin::Field;
    /// # fn f(message: &wasmail_plugin::Message) {
    /// let from_ceo = message.equals(&Field::From, "ceo@example.com");
    /// # }
    /// ```
    pub fn equals(&self, field: &Field, value: &str) -> bool {
        self.handle.equals(field, value)
    }

    /// Whether the regular expression `pattern` matches `field`; runs natively on the host, in linear
    /// time. Patterns longer than 4 KiB or invalid are an error.
    ///
    /// ```no_run
    /// use wasmail_plugin::Field;
    /// # fn f(message: &wasmail_plugin::Message) -> Result<(), wasmail_plugin::Error> {
    /// let ticket = message.matches(&Field::Subject, r"(?i)\bticket #\d+")?;
    /// # Ok(()) }
    /// ```
    pub fn matches(&self, field: &Field, pattern: &str) -> Result<bool, crate::Error> {
        self.handle
            .matches(field, pattern)
            .map_err(crate::Error::new)
    }
}

/// Reads `len` bytes from `offset` through a host call that returns at most [`CHUNK`] bytes at a time.
fn read_ranges(offset: u64, len: u64, mut read: impl FnMut(u64, u32) -> Vec<u8>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut at = offset;
    let end = offset.saturating_add(len);
    while at < end {
        let want = u32::try_from((end - at).min(u64::from(CHUNK))).unwrap_or(CHUNK);
        let chunk = read(at, want);
        if chunk.is_empty() {
            break;
        }
        at += chunk.len() as u64;
        out.extend_from_slice(&chunk);
    }
    out
}

/// Iterator over a body in chunks; see [`Message::text_chunks`].
///
/// ```no_run
/// # fn f(message: &wasmail_plugin::Message) {
/// for chunk in message.text_chunks() {
///     // each chunk is a String of at most 64 KiB
/// }
/// # }
/// ```
#[derive(Debug)]
pub struct TextChunks<'a> {
    handle: &'a WitMessage,
    offset: u64,
    html: bool,
}

impl Iterator for TextChunks<'_> {
    type Item = String;

    fn next(&mut self) -> Option<String> {
        let chunk = if self.html {
            self.handle.html_body(self.offset, CHUNK)
        } else {
            self.handle.text_body(self.offset, CHUNK)
        };
        if chunk.is_empty() {
            return None;
        }
        self.offset += chunk.len() as u64;
        Some(chunk)
    }
}
