//! The host's match primitives: `contains`, `equals` and `matches` over a field of a message. They
//! run natively on the host's copy of the message, for plugins (through the `message` resource) and
//! for native callers alike.

use super::fold::{contains_folded, find_in_folded};
use super::{Address, ParsedMessage};
use parking_lot::Mutex;
use regex::Regex;
use std::num::NonZeroUsize;
use std::sync::{Arc, LazyLock};

/// Longest regular expression accepted by [`ParsedMessage::field_matches`], in bytes.
pub const MAX_PATTERN_LEN: usize = 4096;

/// Compiled programs may not grow past this (regex's own guard against exponential expansion).
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// The part of a message a match primitive looks at (mirrors the WIT `field` variant).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    /// Every value of the named header.
    Header(String),
    /// The decoded subject.
    Subject,
    /// `From` mailboxes.
    From,
    /// `To` mailboxes.
    To,
    /// `Cc` mailboxes.
    Cc,
    /// `Reply-To` mailboxes.
    ReplyTo,
    /// The text body.
    TextBody,
    /// The HTML body.
    HtmlBody,
    /// The text body, then the HTML body.
    Body,
    /// Each attachment's file name.
    AttachmentNames,
}

/// Why a `matches` call could not run.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MatchError {
    /// The pattern is longer than [`MAX_PATTERN_LEN`].
    #[error("pattern is {0} bytes long; at most {MAX_PATTERN_LEN} are allowed")]
    TooLong(usize),
    /// The pattern does not compile.
    #[error("invalid pattern: {0}")]
    Invalid(String),
}

impl ParsedMessage {
    /// Calls `each` with every text value of `field` until it returns true. Address fields present each
    /// mailbox twice-formatted: `name <address>` (`display`) and the bare address.
    fn any_value(&self, field: &Field, each: &mut dyn FnMut(&str, Option<&str>) -> bool) -> bool {
        let addresses = |list: Vec<Address>, each: &mut dyn FnMut(&str, Option<&str>) -> bool| {
            list.iter().any(|a| {
                let bare = a.address.as_deref().unwrap_or("");
                let display = match (&a.name, &a.address) {
                    (Some(n), Some(addr)) => format!("{n} <{addr}>"),
                    (Some(n), None) => n.clone(),
                    (None, _) => bare.to_string(),
                };
                each(&display, Some(bare))
            })
        };
        match field {
            Field::Header(name) => self.header_all(name).iter().any(|v| each(v, None)),
            Field::Subject => self.subject().is_some_and(|s| each(s, None)),
            Field::From => addresses(self.from(), each),
            Field::To => addresses(self.to(), each),
            Field::Cc => addresses(self.cc(), each),
            Field::ReplyTo => addresses(self.reply_to(), each),
            Field::TextBody => each(self.text_body(), None),
            Field::HtmlBody => each(self.html_body(), None),
            Field::Body => each(self.text_body(), None) || each(self.html_body(), None),
            Field::AttachmentNames => self.attachment_names().any(|n| each(n, None)),
        }
    }

    /// Whether `field` contains `needle`, ignoring case.
    pub fn field_contains(&self, field: &Field, needle: &str) -> bool {
        let needle = needle.to_lowercase();
        // Bodies are large: search their cached folded copy instead of folding per call.
        match field {
            Field::TextBody => find_in_folded(self.text_body_folded(), &needle),
            Field::HtmlBody => find_in_folded(self.html_body_folded(), &needle),
            Field::Body => {
                find_in_folded(self.text_body_folded(), &needle)
                    || find_in_folded(self.html_body_folded(), &needle)
            }
            _ => self.any_value(field, &mut |value, _| contains_folded(value, &needle)),
        }
    }

    /// Whether `field` equals `value`, ignoring case and surrounding white space; for address fields,
    /// whether any mailbox's bare address does.
    pub fn field_equals(&self, field: &Field, value: &str) -> bool {
        let value = value.trim().to_lowercase();
        self.any_value(field, &mut |display, bare| {
            let candidate = bare.unwrap_or(display).trim();
            candidate.to_lowercase() == value
        })
    }

    /// Whether the regular expression `pattern` matches `field`.
    pub fn field_matches(&self, field: &Field, pattern: &str) -> Result<bool, MatchError> {
        let regex = compiled(pattern)?;
        Ok(self.any_value(field, &mut |value, _| regex.is_match(value)))
    }
}

/// Compiles a pattern, through a process-wide cache: a plugin runs in a fresh instance per message,
/// so without the cache every message would recompile the same rules' patterns.
fn compiled(pattern: &str) -> Result<Arc<Regex>, MatchError> {
    static CACHE: LazyLock<Mutex<lru::LruCache<String, Arc<Regex>>>> = LazyLock::new(|| {
        Mutex::new(lru::LruCache::new(
            NonZeroUsize::new(1024).expect("non-zero"),
        ))
    });
    if pattern.len() > MAX_PATTERN_LEN {
        return Err(MatchError::TooLong(pattern.len()));
    }
    if let Some(regex) = CACHE.lock().get(pattern) {
        return Ok(regex.clone());
    }
    let regex = regex::RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map(Arc::new)
        .map_err(|e| MatchError::Invalid(e.to_string()))?;
    CACHE.lock().put(pattern.to_string(), regex.clone());
    Ok(regex)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::parse;

    fn sample() -> ParsedMessage {
        parse(
            b"From: \"Alice Example\" <Alice@Example.COM>\r\nTo: bob@example.net, Carol <carol@example.org>\r\n\
Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?= INVOICE 42\r\nList-Id: <rust.lists.example>\r\n\
Content-Type: text/plain; charset=utf-8\r\n\r\nPlease find the Payment details.\r\n"
                .to_vec(),
        )
    }

    #[test]
    fn contains_ignores_case_and_decodes() {
        let m = sample();
        assert!(m.field_contains(&Field::Subject, "grüße invoice"));
        assert!(m.field_contains(&Field::From, "alice example"));
        assert!(m.field_contains(&Field::Header("list-id".into()), "RUST.LISTS"));
        assert!(m.field_contains(&Field::Body, "payment DETAILS"));
        assert!(!m.field_contains(&Field::HtmlBody, "payment"));
        assert!(!m.field_contains(&Field::Subject, "receipt"));
        assert!(!m.field_contains(&Field::Header("X-Missing".into()), ""));
    }

    #[test]
    fn equals_uses_bare_addresses() {
        let m = sample();
        assert!(m.field_equals(&Field::From, " alice@example.com "));
        assert!(m.field_equals(&Field::To, "CAROL@example.org"));
        assert!(!m.field_equals(&Field::To, "carol"));
        assert!(!m.field_equals(&Field::Subject, "invoice"));
    }

    #[test]
    fn matches_is_bounded() {
        let m = sample();
        assert_eq!(m.field_matches(&Field::Subject, r"INVOICE \d+"), Ok(true));
        assert_eq!(m.field_matches(&Field::Subject, r"^INVOICE"), Ok(false));
        assert!(matches!(
            m.field_matches(&Field::Subject, "("),
            Err(MatchError::Invalid(_))
        ));
        let long = "a".repeat(MAX_PATTERN_LEN + 1);
        assert_eq!(
            m.field_matches(&Field::Subject, &long),
            Err(MatchError::TooLong(MAX_PATTERN_LEN + 1))
        );
        // An exponential blow-up is refused by the size limit instead of eating memory.
        assert!(m.field_matches(&Field::Subject, r"(\w{100}){100}").is_err());
    }
}
