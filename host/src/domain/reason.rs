//! Reject reasons: the text a `reject` carries, which becomes the text of an SMTP reply (and of a
//! bounce) when wasmail delivers.
//!
//! One line of printable text (see [`super::text`]), at most [`MAX_BYTES`]: a CR or LF in it would
//! end the SMTP reply line and let the rest be read as another reply; NUL ends C strings. An SMTP
//! reply line holds 512 bytes, code and CRLF included (RFC 5321 §4.5.3.1.5), which leaves room for
//! "550 5.7.1 " and the reason. An empty reason is allowed: delivery then uses a standard text.

use super::text::{code_point, first_unprintable};
use super::{InvalidName, NameKind, name_type};

/// Longest reason, in UTF-8 bytes.
pub const MAX_BYTES: usize = 400;

/// A reject reason that follows the rules above.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RejectReason(String);

name_type!(RejectReason);

fn refuse(reason: &str, rule: impl Into<String>) -> InvalidName {
    InvalidName::new(NameKind::RejectReason, reason, rule)
}

impl RejectReason {
    /// Checks `reason`.
    pub fn parse(reason: &str) -> Result<Self, InvalidName> {
        if reason.len() > MAX_BYTES {
            return Err(refuse(
                reason,
                format!(
                    "reject reasons are at most {MAX_BYTES} bytes; this one is {} bytes",
                    reason.len()
                ),
            ));
        }
        if reason.contains(['\r', '\n']) {
            return Err(refuse(
                reason,
                "reject reasons are one line and may not contain CR or LF",
            ));
        }
        if let Some((c, why)) = first_unprintable(reason) {
            return Err(refuse(
                reason,
                format!("reject reasons may not contain {why} ({})", code_point(c)),
            ));
        }
        Ok(Self(reason.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(reason: &str, rule_has: &str) {
        let e = RejectReason::parse(reason).expect_err(reason);
        assert!(e.rule.contains(rule_has), "{reason:?}: {}", e.rule);
    }

    #[test]
    fn one_printable_line() {
        for ok in [
            "",
            "spam",
            "Nachricht abgelehnt: Anhang *.exe {5} \"quoted\" \\ 100%",
        ] {
            assert!(RejectReason::parse(ok).is_ok(), "{ok:?}");
        }
        refused("spam\r\n250 OK", "CR or LF");
        refused("spam\n", "CR or LF");
        refused("spam\r", "CR or LF");
        refused("nul\0byte", "control characters (U+0000)");
        refused("tab\tx", "control");
        refused("bidi \u{202e}", "bidi");
        refused("sep\u{2028}", "line separators");
        refused(&"x".repeat(MAX_BYTES + 1), "at most 400 bytes");
        assert!(RejectReason::parse(&"x".repeat(MAX_BYTES)).is_ok());
    }
}
