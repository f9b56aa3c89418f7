//! The domain: the types every layer shares (tenant and node ids, a tenant's plugin limits, stages,
//! envelopes, run, item and job statuses, selections, what a run produced per message) — they
//! belong to no single layer — and the names wasmail's mail model is made of, with the rules that
//! make each one safe wherever it goes
//! next: folders become IMAP mailbox names, flags become IMAP flags, reject reasons become SMTP reply
//! text, forward addresses become SMTP envelope recipients. Plugin output ([`crate::sandbox`]) and
//! API input ([`crate::api`]) pass through the same constructors, so a value of these types that
//! is stored or applied has already been checked; each refusal names the rule it broke.
//!
//! | name | rules | module |
//! |---|---|---|
//! | folder | printable Unicode (NFC), ≤ 255 bytes, ≤ 16 `/`-separated levels, none empty, `.` or `..`; no `*` `%` `"` `\` `{` `}`; no leading `#` or `~` | [`folder`] |
//! | flag | `\Seen` `\Answered` `\Flagged` `\Draft` (any case), or an IMAP atom keyword ≤ 64 bytes; never `\Recent`, `\Deleted` only cleared | [`flag`] |
//! | tag | printable Unicode (NFC), 1–64 bytes, no leading or trailing space; ≤ 64 per message | [`tag`] |
//! | reject reason | one line of printable text, ≤ 400 bytes (may be empty) | [`reason`] |
//! | forward address | `local@domain`: dot-atom local part without `%` or `!`, ≤ 64 bytes; DNS or IDN domain (stored as A-labels); ≤ 254 bytes | [`address`] |
//!
//! "Printable" is defined once, in [`text`]: no control (Cc), format (Cf: bidi controls, zero-width
//! characters), line or paragraph separator (Zl, Zp), private-use (Co) or unassigned (Cn) code point,
//! and no space other than U+0020 (the others look like it and are not it).

pub mod address;
pub mod envelope;
pub mod flag;
pub mod folder;
pub mod ids;
pub mod job;
pub mod limits;
pub mod outcome;
pub mod pipeline;
pub mod reason;
pub mod run;
pub mod selection;
pub mod tag;
pub mod text;

pub use address::ForwardAddress;
pub use envelope::StoredEnvelope;
pub use flag::Flag;
pub use folder::FolderName;
pub use ids::{NodeId, TenantId};
pub use job::JobState;
pub use limits::PluginLimits;
pub use outcome::{ItemResult, StageResult, StageStatus};
pub use pipeline::{OnError, QUARANTINE, Stage};
pub use reason::RejectReason;
pub use run::{ItemStatus, RunCounts, RunStatus, Trigger};
pub use selection::{MessageFilter, Selection};
pub use tag::Tag;

/// Most folders one message is copied to in one run (over all its stages). Copies share the raw
/// bytes, but each is a message row that lists, searches and later runs cover.
pub const MAX_COPIES_PER_RUN: usize = 8;

/// What kind of name a refusal is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    /// A folder (IMAP mailbox) name.
    Folder,
    /// An IMAP flag or keyword.
    Flag,
    /// A tag.
    Tag,
    /// A reject reason.
    RejectReason,
    /// A forward address.
    ForwardAddress,
}

impl NameKind {
    /// How messages name it.
    pub fn noun(self) -> &'static str {
        match self {
            Self::Folder => "folder",
            Self::Flag => "flag",
            Self::Tag => "tag",
            Self::RejectReason => "reason",
            Self::ForwardAddress => "address",
        }
    }
}

/// A name refused by its rules: `folder "a*b": folder names may not contain '*' (...)`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} {shown}: {rule}", kind.noun())]
pub struct InvalidName {
    /// What was being named.
    pub kind: NameKind,
    /// The value as given, escaped and cut to a readable length (never raw control characters).
    pub shown: String,
    /// The rule it broke, in words.
    pub rule: String,
}

impl InvalidName {
    pub(crate) fn new(kind: NameKind, value: &str, rule: impl Into<String>) -> Self {
        Self {
            kind,
            shown: shown(value),
            rule: rule.into(),
        }
    }
}

/// `value` quoted and escaped (`{:?}` escapes controls, bidi and separator characters), cut to
/// 40 characters: a refusal must not carry the hostile bytes it refuses, nor all 8 MiB of them.
fn shown(value: &str) -> String {
    const SHOWN_CHARS: usize = 40;
    let mut chars = value.chars();
    let cut: String = chars.by_ref().take(SHOWN_CHARS).collect();
    if chars.next().is_some() {
        format!("{cut:?}…")
    } else {
        format!("{cut:?}")
    }
}

/// Implements the accessors every name type shares.
macro_rules! name_type {
    ($name:ident) => {
        impl $name {
            /// The checked (and normalised) name.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The checked (and normalised) name, owned.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<$name> for String {
            fn from(name: $name) -> String {
                name.0
            }
        }
    };
}
pub(crate) use name_type;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_show_an_escaped_cut_value() {
        let e = InvalidName::new(NameKind::Folder, "a\r\n\u{202e}b", "nope");
        assert_eq!(e.to_string(), r#"folder "a\r\n\u{202e}b": nope"#);
        let long = InvalidName::new(NameKind::Tag, &"x".repeat(1000), "too long");
        assert!(long.shown.len() < 50, "{}", long.shown);
        assert!(long.shown.ends_with('…'));
    }
}
