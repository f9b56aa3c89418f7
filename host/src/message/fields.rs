//! The host's match primitives: `contains`, `equals` and `matches` over a field of a message. They
//! run natively on the host's copy of the message, for plugins (through the `message` resource) and
//! for native callers alike.

use super::fold::{contains_folded, find_in_folded};
use super::pattern::{MAX_PATTERN_LEN, Pattern};
use super::{Address, ParsedMessage};

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
    /// Searching this input with this pattern would cost more than one search may (see
    /// [`super::pattern`]): a simpler pattern, or one without Unicode word boundaries, runs.
    #[error(
        "pattern too expensive for this input: {bytes} bytes x {states} program states needs the slow engine; simplify the pattern (e.g. fewer alternatives, `(?-u:\\b)` for ASCII word boundaries)"
    )]
    TooExpensive {
        /// Bytes of the value searched.
        bytes: usize,
        /// States of the pattern's program.
        states: u64,
    },
    /// The caller's budget (the plugin's fuel) cannot pay for the search.
    #[error("fuel budget exhausted by host scans")]
    Budget,
}

/// A budget that host scans draw on: `charge(cost)` returns false once it cannot pay.
pub type Charge<'a> = &'a mut dyn FnMut(u64) -> bool;

/// Fuel per byte of a case-insensitive `contains`/`equals` scan.
const FUEL_PER_SCANNED_BYTE: u64 = 1;

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
        self.field_contains_metered(field, needle, &mut |_| true)
            .unwrap_or(false)
    }

    /// As [`Self::field_contains`], paying `charge` for every byte scanned before scanning it.
    pub fn field_contains_metered(
        &self,
        field: &Field,
        needle: &str,
        charge: Charge<'_>,
    ) -> Result<bool, MatchError> {
        let needle = needle.to_lowercase();
        let mut pay = |len: usize| {
            if charge((len as u64).saturating_mul(FUEL_PER_SCANNED_BYTE).max(1)) {
                Ok(())
            } else {
                Err(MatchError::Budget)
            }
        };
        // Bodies are large: search their cached folded copy instead of folding per call.
        match field {
            Field::TextBody => {
                pay(self.text_body().len())?;
                Ok(find_in_folded(self.text_body_folded(), &needle))
            }
            Field::HtmlBody => {
                pay(self.html_body().len())?;
                Ok(find_in_folded(self.html_body_folded(), &needle))
            }
            Field::Body => {
                pay(self.text_body().len())?;
                if find_in_folded(self.text_body_folded(), &needle) {
                    return Ok(true);
                }
                pay(self.html_body().len())?;
                Ok(find_in_folded(self.html_body_folded(), &needle))
            }
            _ => {
                let mut refused = None;
                let found = self.any_value(field, &mut |value, _| match pay(value.len()) {
                    Ok(()) => contains_folded(value, &needle),
                    Err(e) => {
                        refused = Some(e);
                        true
                    }
                });
                refused.map_or(Ok(found), Err)
            }
        }
    }

    /// Whether `field` equals `value`, ignoring case and surrounding white space; for address fields,
    /// whether any mailbox's bare address does.
    pub fn field_equals(&self, field: &Field, value: &str) -> bool {
        self.field_equals_metered(field, value, &mut |_| true)
            .unwrap_or(false)
    }

    /// As [`Self::field_equals`], paying `charge` for every value compared.
    pub fn field_equals_metered(
        &self,
        field: &Field,
        value: &str,
        charge: Charge<'_>,
    ) -> Result<bool, MatchError> {
        let value = value.trim().to_lowercase();
        let mut refused = None;
        let found = self.any_value(field, &mut |display, bare| {
            let candidate = bare.unwrap_or(display).trim();
            if !charge((candidate.len() as u64).max(1)) {
                refused = Some(MatchError::Budget);
                return true;
            }
            candidate.to_lowercase() == value
        });
        refused.map_or(Ok(found), Err)
    }

    /// Whether the regular expression `pattern` matches `field`, for native (trusted) callers, through
    /// a small process-wide cache; plugins go through their tenant's byte-bounded cache instead.
    pub fn field_matches(&self, field: &Field, pattern: &str) -> Result<bool, MatchError> {
        self.field_matches_pattern(field, &*native_pattern(pattern)?, &mut |_| true)
    }

    /// Whether `pattern` matches `field`, each search paid for through `charge` before it runs.
    pub fn field_matches_pattern(
        &self,
        field: &Field,
        pattern: &Pattern,
        charge: Charge<'_>,
    ) -> Result<bool, MatchError> {
        let mut refused = None;
        let found = self.any_value(field, &mut |value, _| match pattern
            .is_match(value, &mut *charge)
        {
            Ok(found) => found,
            Err(e) => {
                refused = Some(e);
                true
            }
        });
        refused.map_or(Ok(found), Err)
    }
}

/// Compiled patterns of native callers: few and trusted, so a small LRU by count is enough.
fn native_pattern(pattern: &str) -> Result<std::sync::Arc<Pattern>, MatchError> {
    use parking_lot::Mutex;
    use std::sync::{Arc, LazyLock};
    static CACHE: LazyLock<Mutex<lru::LruCache<String, Arc<Pattern>>>> = LazyLock::new(|| {
        Mutex::new(lru::LruCache::new(
            std::num::NonZeroUsize::new(64).unwrap_or(std::num::NonZeroUsize::MIN),
        ))
    });
    if let Some(hit) = CACHE.lock().get(pattern) {
        return Ok(hit.clone());
    }
    let compiled = Arc::new(Pattern::new(pattern)?);
    CACHE.lock().put(pattern.to_string(), compiled.clone());
    Ok(compiled)
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
