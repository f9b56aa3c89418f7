//! Types shared by the wasmail host and the plugin SDK, so both speak the same JSON.

#![deny(missing_docs)]

use serde::{Deserialize, Serialize};

/// What to do with a message. A filter returns a list of actions, applied in order.
///
/// Actions also (de)serialize as JSON, externally tagged in snake case, so a plugin can take them from
/// its configuration: `"keep"`, `{"move_to": "Spam"}`, `{"tag": "newsletter"}`.
///
/// ```
/// use wasmail_types::Action;
///
/// let actions: Vec<Action> = serde_json::from_str(r#"[{"move_to": "Spam"}, "stop"]"#).unwrap();
/// assert_eq!(actions, vec![Action::MoveTo("Spam".into()), Action::Stop]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// Keep the message where it is (an explicit no-op).
    Keep,
    /// Move the message to the trash; its bytes are kept and can be recovered.
    Discard,
    /// Move the message to the folder (IMAP mailbox name, `/` as separator; no `*` `%` `"` `\`
    /// `{` `}` or control characters, at most 255 bytes and 16 levels).
    MoveTo(String),
    /// Copy the message to the folder (at most 8 folders per message per run).
    CopyTo(String),
    /// Set a flag: an IMAP system flag (`\Seen`, `\Answered`, `\Flagged`, `\Draft`) or a keyword
    /// (`$Junk`). `\Deleted` and `\Recent` are refused: to remove mail, `Discard` it.
    AddFlag(String),
    /// Clear a flag.
    RemoveFlag(String),
    /// Attach a tag (at most 64 bytes; a message carries at most 64 tags).
    Tag(String),
    /// Remove a tag.
    Untag(String),
    /// Forward a copy to the address: a plain `local@domain` (no display name, route or `%`).
    Forward(String),
    /// Refuse the message with a reason: one line of printable text, at most 400 bytes.
    Reject(String),
    /// Run no further stage of the pipeline for this message.
    Stop,
}
