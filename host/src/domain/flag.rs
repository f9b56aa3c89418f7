//! IMAP flags a plugin may set or clear (`add-flag`, `remove-flag`).
//!
//! ```text
//! flag    = system / keyword
//! system  = "\Seen" / "\Answered" / "\Flagged" / "\Draft"   ; any case, stored as spelt here
//! keyword = 1*64 ATOM-CHAR                                   ; RFC 3501 atom
//! ATOM-CHAR = any ASCII 0x21-0x7E except ( ) { % * " \ ]
//! ```
//! `\Deleted` may be cleared but never set: on an IMAP server the next EXPUNGE destroys a message
//! carrying it, and wasmail never destroys mail (a plugin that wants mail gone returns `discard`,
//! which moves it to the trash and keeps its bytes). `\Recent` belongs to the server's session
//! bookkeeping and can be neither set nor cleared. Other `\` names are not flags anyone defined.

use super::{InvalidName, NameKind, name_type};

/// Longest keyword, in bytes.
pub const MAX_KEYWORD_BYTES: usize = 64;

/// The RFC 3501 system flags a plugin may set.
pub const SETTABLE_SYSTEM_FLAGS: [&str; 4] = ["\\Seen", "\\Answered", "\\Flagged", "\\Draft"];

const DELETED: &str = "\\Deleted";
const RECENT: &str = "\\Recent";

/// A flag that follows the grammar above.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Flag(String);

name_type!(Flag);

/// What is done with the flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagUse {
    /// `add-flag`.
    Set,
    /// `remove-flag`.
    Clear,
}

fn refuse(flag: &str, rule: impl Into<String>) -> InvalidName {
    InvalidName::new(NameKind::Flag, flag, rule)
}

impl Flag {
    /// Checks `flag` for `usage`; system flags come back in their canonical spelling.
    pub fn parse(flag: &str, usage: FlagUse) -> Result<Self, InvalidName> {
        if flag.is_empty() {
            return Err(refuse(flag, "flags may not be empty"));
        }
        if flag.starts_with('\\') {
            return system(flag, usage).map(|f| Self(f.to_string()));
        }
        if flag.len() > MAX_KEYWORD_BYTES {
            return Err(refuse(
                flag,
                format!(
                    "keywords are at most {MAX_KEYWORD_BYTES} bytes; this one is {} bytes",
                    flag.len()
                ),
            ));
        }
        if let Some(c) = flag.chars().find(|c| !c.is_ascii_graphic()) {
            let what = if c.is_ascii() {
                "spaces or control characters"
            } else {
                "non-ASCII characters"
            };
            return Err(refuse(
                flag,
                format!("keywords are IMAP atoms and may not contain {what}"),
            ));
        }
        if let Some(c) = flag.chars().find(|c| "(){%*\"\\]".contains(*c)) {
            return Err(refuse(
                flag,
                format!("keywords are IMAP atoms and may not contain '{c}' (an atom-special)"),
            ));
        }
        Ok(Self(flag.to_string()))
    }
}

/// The canonical spelling of a system flag that may be used so.
fn system(flag: &str, usage: FlagUse) -> Result<&'static str, InvalidName> {
    let is = |name: &str| flag.eq_ignore_ascii_case(name);
    if let Some(known) = SETTABLE_SYSTEM_FLAGS.into_iter().find(|f| is(f)) {
        return Ok(known);
    }
    if is(DELETED) {
        return match usage {
            FlagUse::Clear => Ok(DELETED),
            FlagUse::Set => Err(refuse(
                flag,
                "\\Deleted may not be set: an IMAP expunge would destroy the message; \
                 return discard instead, which moves it to the trash and keeps its bytes",
            )),
        };
    }
    if is(RECENT) {
        return Err(refuse(
            flag,
            "\\Recent is managed by the IMAP server and may not be set or cleared",
        ));
    }
    Err(refuse(
        flag,
        format!(
            "not a system flag a plugin may use (allowed: {})",
            SETTABLE_SYSTEM_FLAGS.join(" ")
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(flag: &str) -> Result<String, InvalidName> {
        Flag::parse(flag, FlagUse::Set).map(Flag::into_string)
    }

    fn refused(flag: &str, usage: FlagUse, rule_has: &str) {
        let e = Flag::parse(flag, usage).expect_err(flag);
        assert!(e.rule.contains(rule_has), "{flag:?}: {}", e.rule);
    }

    #[test]
    fn system_flags_are_canonical_and_deletion_is_not_a_flag() {
        assert_eq!(set("\\Seen").as_deref(), Ok("\\Seen"));
        assert_eq!(set("\\FLAGGED").as_deref(), Ok("\\Flagged"));
        assert_eq!(set("\\answered").as_deref(), Ok("\\Answered"));
        assert_eq!(set("\\Draft").as_deref(), Ok("\\Draft"));
        refused("\\Deleted", FlagUse::Set, "discard");
        refused("\\deleted", FlagUse::Set, "discard");
        assert_eq!(
            Flag::parse("\\DELETED", FlagUse::Clear)
                .map(Flag::into_string)
                .as_deref(),
            Ok("\\Deleted"),
            "clearing \\Deleted only protects mail"
        );
        refused("\\Recent", FlagUse::Set, "managed by the IMAP server");
        refused("\\recent", FlagUse::Clear, "managed by the IMAP server");
        refused("\\Junk", FlagUse::Set, "not a system flag");
        refused("\\*", FlagUse::Set, "not a system flag");
        refused("\\", FlagUse::Set, "not a system flag");
    }

    #[test]
    fn keywords_are_atoms() {
        assert_eq!(set("$Junk").as_deref(), Ok("$Junk"));
        assert_eq!(set("NonJunk").as_deref(), Ok("NonJunk"));
        assert_eq!(set("$label.work-1_x[").as_deref(), Ok("$label.work-1_x["));
        refused("", FlagUse::Set, "empty");
        refused("two words", FlagUse::Set, "spaces");
        refused("cr\r\nA1 LOGOUT", FlagUse::Set, "control");
        refused("nul\0", FlagUse::Set, "control");
        refused("é", FlagUse::Set, "non-ASCII");
        refused("rtl\u{202e}", FlagUse::Set, "non-ASCII");
        for c in ["(", ")", "{5}", "%", "*", "\"", "x\\y", "]"] {
            refused(&format!("k{c}"), FlagUse::Set, "atom-special");
        }
        refused(
            &"k".repeat(MAX_KEYWORD_BYTES + 1),
            FlagUse::Set,
            "at most 64 bytes",
        );
        assert!(set(&"k".repeat(MAX_KEYWORD_BYTES)).is_ok());
    }
}
