//! Folder names: what a plugin may `move-to` or `copy-to`, and what the API takes as `folder`.
//!
//! Folders become IMAP mailbox names. The IMAP adapter will still quote or literal-encode every name
//! (and encode it as modified UTF-7 for clients without `UTF8=ACCEPT`, which is why `&` is fine), but
//! a name must be safe even where someone forgets to: the grammar only admits names that mean the
//! same thing in every mailbox-name context (LIST patterns, quoted strings, atoms, logs).
//!
//! ```text
//! folder = level *("/" level)          ; at most 16 levels, at most 255 bytes (UTF-8, after NFC)
//! level  = 1*char                       ; not "." or "..", no leading or trailing space
//! char   = printable (see domain::text) except  *  %  "  \  {  }  /
//! ```
//! The first level may not begin with `#` or `~`; a first level spelt `inbox` in any case is `INBOX`.
//!
//! Why each character is refused:
//! - `*`, `%`: IMAP LIST wildcards. A mailbox named with them cannot be listed on its own, and a
//!   client that builds a LIST pattern from the name lists others' mailboxes instead.
//! - `"`, `\`: IMAP quoted-string specials; a name with them is only correct where it is escaped,
//!   and `\` is the hierarchy delimiter of some servers (and starts system flags).
//! - `{`, `}`: `{5}` is IMAP literal syntax; in an unquoted or mis-quoted context the server waits
//!   for five bytes of "literal" and reads the rest of the line as the next command.
//! - `/`: the hierarchy delimiter, so it only separates levels (no empty levels, no leading or
//!   trailing `/`); `.` and `..` levels are path traversal to mailbox stores kept as directories.
//! - leading `#`: IMAP namespace prefix (`#shared`, `#news.`); leading `~`: a user's home directory
//!   on some servers.
//! - control, format (bidi), separator, private-use and unassigned characters: see
//!   [`super::text`]; CR LF ends an IMAP command line.

use super::text::{code_point, first_unprintable, nfc};
use super::{InvalidName, NameKind, name_type};

/// Longest folder name, in UTF-8 bytes.
pub const MAX_BYTES: usize = 255;
/// Most levels of a folder name (`a/b/c` has three).
pub const MAX_LEVELS: usize = 16;
/// The hierarchy delimiter.
pub const DELIMITER: char = '/';

/// A folder name that follows the grammar above.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FolderName(String);

name_type!(FolderName);

fn refuse(name: &str, rule: impl Into<String>) -> InvalidName {
    InvalidName::new(NameKind::Folder, name, rule)
}

/// Characters no level may contain, and why.
fn special(c: char) -> Option<&'static str> {
    Some(match c {
        '*' | '%' => "an IMAP LIST wildcard",
        '"' | '\\' => "an IMAP quoted-string special",
        '{' | '}' => "IMAP literal syntax, as in {5}",
        _ => return None,
    })
}

impl FolderName {
    /// Checks `name` and returns it normalised (NFC; `INBOX` in capitals).
    pub fn parse(name: &str) -> Result<Self, InvalidName> {
        if name.is_empty() {
            return Err(refuse(name, "folder names may not be empty"));
        }
        // Normalising first would spend time on megabytes a plugin returned; NFC at most triples
        // a string, so anything this long is too long after it as well.
        if name.len() > 4 * MAX_BYTES {
            return Err(too_long(name, name.len()));
        }
        let normal = nfc(name);
        if normal.len() > MAX_BYTES {
            return Err(too_long(name, normal.len()));
        }
        if let Some((c, why)) = first_unprintable(&normal) {
            return Err(refuse(
                name,
                format!("folder names may not contain {why} ({})", code_point(c)),
            ));
        }
        if let Some((c, why)) = normal.chars().find_map(|c| special(c).map(|w| (c, w))) {
            return Err(refuse(
                name,
                format!("folder names may not contain '{c}' ({why})"),
            ));
        }
        if normal.starts_with(DELIMITER) || normal.ends_with(DELIMITER) {
            return Err(refuse(
                name,
                "folder names may not begin or end with '/' (the hierarchy delimiter)",
            ));
        }
        let levels: Vec<&str> = normal.split(DELIMITER).collect();
        if levels.len() > MAX_LEVELS {
            return Err(refuse(
                name,
                format!(
                    "folder names have at most {MAX_LEVELS} levels; this one has {}",
                    levels.len()
                ),
            ));
        }
        for level in &levels {
            if level.is_empty() {
                return Err(refuse(
                    name,
                    "folder names may not have empty levels ('//')",
                ));
            }
            if *level == "." || *level == ".." {
                return Err(refuse(name, "folder names may not have '.' or '..' levels"));
            }
            if level.starts_with(' ') || level.ends_with(' ') {
                return Err(refuse(
                    name,
                    "folder levels may not begin or end with a space",
                ));
            }
        }
        if normal.starts_with('#') {
            return Err(refuse(
                name,
                "folder names may not begin with '#' (an IMAP namespace prefix)",
            ));
        }
        if normal.starts_with('~') {
            return Err(refuse(
                name,
                "folder names may not begin with '~' (a home directory on some IMAP servers)",
            ));
        }
        // INBOX is case-insensitive in IMAP: "inbox/Work" and "INBOX/Work" are one mailbox.
        let first = levels.first().copied().unwrap_or_default();
        let normal = if first.eq_ignore_ascii_case("INBOX") && first != "INBOX" {
            format!("INBOX{}", &normal[first.len()..])
        } else {
            normal
        };
        Ok(Self(normal))
    }
}

fn too_long(name: &str, bytes: usize) -> InvalidName {
    refuse(
        name,
        format!("folder names are at most {MAX_BYTES} bytes; this one is {bytes} bytes"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(name: &str) -> String {
        FolderName::parse(name)
            .unwrap_or_else(|e| panic!("{name:?} refused: {e}"))
            .into_string()
    }

    fn refused(name: &str, rule_has: &str) {
        match FolderName::parse(name) {
            Ok(f) => panic!("{name:?} accepted as {f:?}"),
            Err(e) => assert!(
                e.rule.contains(rule_has),
                "{name:?}: rule {:?} should mention {rule_has:?}",
                e.rule
            ),
        }
    }

    #[test]
    fn ordinary_names_pass_normalised() {
        assert_eq!(ok("Spam"), "Spam");
        assert_eq!(
            ok("Archive/2026/Invoices & receipts (old)"),
            "Archive/2026/Invoices & receipts (old)"
        );
        assert_eq!(ok("Entwürfe"), "Entwürfe");
        assert_eq!(ok("Entwu\u{308}rfe"), "Entwürfe", "NFC");
        assert_eq!(ok("受信箱/仕事"), "受信箱/仕事");
        assert_eq!(ok("inbox/Work"), "INBOX/Work");
        assert_eq!(ok("Inbox"), "INBOX");
        assert_eq!(ok("Inboxes"), "Inboxes");
        assert_eq!(ok("a.b/c..d/v1.2"), "a.b/c..d/v1.2");
        assert_eq!(ok("[Gmail]/Sent"), "[Gmail]/Sent");
        assert_eq!(ok(&"x".repeat(MAX_BYTES)), "x".repeat(MAX_BYTES));
        assert_eq!(
            ok(&vec!["a"; MAX_LEVELS].join("/")),
            vec!["a"; MAX_LEVELS].join("/")
        );
    }

    #[test]
    fn imap_specials_are_refused() {
        refused("a*b", "'*'");
        refused("Spam%", "'%'");
        refused("say \"hi\"", "'\"'");
        refused("back\\slash", "'\\'");
        refused("lit{5}", "'{'");
        refused("x}", "'}'");
        refused("#shared/x", "'#'");
        refused("~user", "'~'");
    }

    #[test]
    fn line_breaks_and_invisible_characters_are_refused() {
        refused("a\r\nb", "control characters (U+000D)");
        refused("a\nA1 LOGOUT", "control");
        refused("nul\0", "control characters (U+0000)");
        refused("tab\there", "control");
        refused("del\u{7f}", "control");
        refused("evil\u{202e}gpj.exe", "bidi");
        refused("iso\u{2066}late", "bidi");
        refused("zero\u{200b}width", "format");
        refused("line\u{2028}sep", "line separators");
        refused("para\u{2029}sep", "paragraph separators");
        refused("nb\u{a0}sp", "spaces other than U+0020");
        refused("private\u{e000}", "private-use");
        refused("non\u{fffe}char", "unassigned");
    }

    #[test]
    fn length_depth_and_levels_are_bounded() {
        refused("", "empty");
        refused(
            &"x".repeat(MAX_BYTES + 1),
            "at most 255 bytes; this one is 256 bytes",
        );
        refused(&"é".repeat(128), "at most 255 bytes");
        refused(&"x".repeat(8 << 20), "at most 255 bytes");
        refused(
            &vec!["a"; MAX_LEVELS + 1].join("/"),
            "at most 16 levels; this one has 17",
        );
        refused("/Spam", "begin or end with '/'");
        refused("Spam/", "begin or end with '/'");
        refused("/", "begin or end with '/'");
        refused("a//b", "empty levels");
        refused("a/../b", "'..'");
        refused("./a", "'.'");
        refused("..", "'..'");
        refused(" Spam", "space");
        refused("Spam /x", "space");
        refused(" ", "space");
    }
}
