//! The message as the host holds it: raw RFC 5322 bytes kept byte-exact, parsed once by mail-parser,
//! and read lazily by whoever needs a piece of it (plugins through the `message` resource, the store,
//! the search index).

mod disposition;
mod fields;
mod fold;
mod header_block;
#[cfg(test)]
mod malformed_tests;
mod parsed;
mod pattern;

pub use disposition::attachment_disposition;
pub use fields::{Charge, Field, MatchError};
pub use fold::contains_folded;
pub use parsed::{Address, AttachmentInfo, Envelope, ParsedMessage};
pub use pattern::{MAX_PATTERN_LEN, Pattern};

/// Parses raw RFC 5322 bytes. Never fails and never panics: malformed input yields what could be
/// read (possibly no headers and an empty body), and the raw bytes are always kept as given.
pub fn parse(raw: impl Into<Vec<u8>>) -> ParsedMessage {
    ParsedMessage::parse(raw.into(), Envelope::default())
}
