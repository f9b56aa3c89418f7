//! Tags: wasmail's own labels (`tag`, `untag`, the `tag=` filter). They are not IMAP keywords (a
//! later adapter may map some), so any printable text will do, within bounds.
//!
//! ```text
//! tag = 1*char            ; at most 64 bytes after NFC, no leading or trailing space
//! char = printable (see domain::text)
//! ```
//! A message carries at most [`MAX_PER_MESSAGE`] tags; the apply step refuses (and records) a tag
//! that would go past it, however many runs the tags came from.

use super::text::{code_point, first_unprintable, nfc};
use super::{InvalidName, NameKind, name_type};

/// Longest tag, in UTF-8 bytes.
pub const MAX_BYTES: usize = 64;
/// Most tags one message carries.
pub const MAX_PER_MESSAGE: usize = 64;

/// A tag that follows the grammar above.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Tag(String);

name_type!(Tag);

fn refuse(tag: &str, rule: impl Into<String>) -> InvalidName {
    InvalidName::new(NameKind::Tag, tag, rule)
}

impl Tag {
    /// Checks `tag` and returns it in NFC.
    pub fn parse(tag: &str) -> Result<Self, InvalidName> {
        if tag.is_empty() {
            return Err(refuse(tag, "tags may not be empty"));
        }
        // See FolderName::parse: NFC at most triples a string.
        if tag.len() > 4 * MAX_BYTES {
            return Err(too_long(tag, tag.len()));
        }
        let normal = nfc(tag);
        if normal.len() > MAX_BYTES {
            return Err(too_long(tag, normal.len()));
        }
        if let Some((c, why)) = first_unprintable(&normal) {
            return Err(refuse(
                tag,
                format!("tags may not contain {why} ({})", code_point(c)),
            ));
        }
        if normal.starts_with(' ') || normal.ends_with(' ') {
            return Err(refuse(tag, "tags may not begin or end with a space"));
        }
        Ok(Self(normal))
    }
}

fn too_long(tag: &str, bytes: usize) -> InvalidName {
    refuse(
        tag,
        format!("tags are at most {MAX_BYTES} bytes; this one is {bytes} bytes"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(tag: &str, rule_has: &str) {
        let e = Tag::parse(tag).expect_err(tag);
        assert!(e.rule.contains(rule_has), "{tag:?}: {}", e.rule);
    }

    #[test]
    fn tags_are_short_printable_text() {
        for tag in [
            "newsletter",
            "size:1234",
            "a*b%c\"d\\e{5}",
            "Rechnung 2026",
            "😀",
        ] {
            assert_eq!(Tag::parse(tag).map(Tag::into_string).as_deref(), Ok(tag));
        }
        assert_eq!(
            Tag::parse("cafe\u{301}").map(Tag::into_string).as_deref(),
            Ok("café")
        );
        refused("", "empty");
        refused(" ", "space");
        refused("x ", "space");
        refused("a\nb", "control");
        refused("a\r\nb", "control");
        refused("\0", "control");
        refused("\u{202e}live", "bidi");
        refused("a\u{2028}b", "line separators");
        refused(&"x".repeat(MAX_BYTES + 1), "at most 64 bytes");
        refused(&"x".repeat(8 << 20), "at most 64 bytes");
        assert!(Tag::parse(&"x".repeat(MAX_BYTES)).is_ok());
    }
}
