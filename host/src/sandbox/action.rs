//! A plugin's output, checked: every name it carries follows the rules of [`crate::domain`], and
//! the output as a whole stays within the bounds that concern several actions together.

use super::bindings::WitAction;
use super::{Failure, FailureKind, Outcome};
use crate::domain::flag::FlagUse;
use crate::domain::{
    Flag, FolderName, ForwardAddress, InvalidName, MAX_COPIES_PER_RUN, RejectReason, Tag,
};

/// An action a filter returned, validated: the type the SDK uses too (`wasmail-types`), so the
/// JSON is the same on both sides (`{"move_to": "Spam"}`, `"stop"`).
pub use wasmail_types::Action;

/// Converts and validates a guest's action; the error names the action and the rule it broke
/// (`move-to folder "a*b": folder names may not contain '*' (…)`), for an `invalid_output` failure.
pub(crate) fn from_guest(action: WitAction) -> Result<Action, String> {
    fn named<T: Into<String>>(
        action: &str,
        checked: Result<T, InvalidName>,
    ) -> Result<String, String> {
        checked.map(Into::into).map_err(|e| {
            // `tag "x": …`, not `tag tag "x": …`.
            if e.kind.noun() == action {
                e.to_string()
            } else {
                format!("{action} {e}")
            }
        })
    }
    let action = match action {
        WitAction::Keep => Action::Keep,
        WitAction::Discard => Action::Discard,
        WitAction::MoveTo(f) => Action::MoveTo(named("move-to", FolderName::parse(&f))?),
        WitAction::CopyTo(f) => Action::CopyTo(named("copy-to", FolderName::parse(&f))?),
        WitAction::AddFlag(f) => Action::AddFlag(named("add-flag", Flag::parse(&f, FlagUse::Set))?),
        WitAction::RemoveFlag(f) => {
            Action::RemoveFlag(named("remove-flag", Flag::parse(&f, FlagUse::Clear))?)
        }
        WitAction::Tag(t) => Action::Tag(named("tag", Tag::parse(&t))?),
        WitAction::Untag(t) => Action::Untag(named("untag", Tag::parse(&t))?),
        WitAction::Forward(a) => Action::Forward(named("forward", ForwardAddress::parse(&a))?),
        WitAction::Reject(r) => Action::Reject(named("reject", RejectReason::parse(&r))?),
        WitAction::Stop => Action::Stop,
    };
    Ok(action)
}

/// The bounds over one call's whole output: at most [`MAX_COPIES_PER_RUN`] distinct `copy-to`
/// folders. An output past them is refused as a whole (nothing of it applies), like any other
/// invalid output: a silent cap would copy to some folders and not others, chosen by position.
pub fn check_output(actions: &[Action]) -> Result<(), String> {
    let mut folders: Vec<&str> = actions
        .iter()
        .filter_map(|a| match a {
            Action::CopyTo(folder) => Some(folder.as_str()),
            _ => None,
        })
        .collect();
    folders.sort_unstable();
    folders.dedup();
    if folders.len() > MAX_COPIES_PER_RUN {
        return Err(format!(
            "copy-to: {} folders; a message is copied to at most {MAX_COPIES_PER_RUN} per run",
            folders.len()
        ));
    }
    Ok(())
}

/// `outcome`, or an `invalid_output` failure when its actions break [`check_output`]. Callers that
/// use a call's actions (pipelines, dry runs) pass its result through this.
// The runtime's own result type (a `Failure` carries logs and output, and is returned once per call).
#[allow(clippy::result_large_err)]
pub fn checked(result: Result<Outcome, Failure>) -> Result<Outcome, Failure> {
    let outcome = result?;
    match check_output(&outcome.actions) {
        Ok(()) => Ok(outcome),
        Err(message) => Err(Failure {
            kind: FailureKind::InvalidOutput,
            message,
            panic: None,
            backtrace: Vec::new(),
            logs: outcome.logs,
            stderr: outcome.stderr,
            fuel_used: outcome.fuel_used,
            duration: outcome.duration,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(action: WitAction) -> String {
        from_guest(action).expect_err("refused")
    }

    #[test]
    fn validates_guest_output() {
        assert_eq!(
            from_guest(WitAction::MoveTo("Spam".into())),
            Ok(Action::MoveTo("Spam".into()))
        );
        assert_eq!(
            from_guest(WitAction::MoveTo("inbox/x".into())),
            Ok(Action::MoveTo("INBOX/x".into())),
            "names come back normalised"
        );
        assert_eq!(
            from_guest(WitAction::AddFlag("\\seen".into())),
            Ok(Action::AddFlag("\\Seen".into()))
        );
        assert_eq!(
            from_guest(WitAction::Forward("ops@Bücher.example".into())),
            Ok(Action::Forward("ops@xn--bcher-kva.example".into()))
        );
        assert_eq!(
            from_guest(WitAction::Reject(String::new())),
            Ok(Action::Reject(String::new()))
        );
        assert_eq!(from_guest(WitAction::Stop), Ok(Action::Stop));
    }

    #[test]
    fn refusals_name_the_action_and_the_rule() {
        assert_eq!(
            refusal(WitAction::MoveTo("a*b".into())),
            "move-to folder \"a*b\": folder names may not contain '*' (an IMAP LIST wildcard)"
        );
        let cases = [
            (
                WitAction::CopyTo("a\r\nb".into()),
                "copy-to folder \"a\\r\\nb\": folder names may not contain control",
            ),
            (
                WitAction::MoveTo("x\u{202e}".into()),
                "move-to folder \"x\\u{202e}\": folder names may not contain format",
            ),
            (
                WitAction::MoveTo("lit{5}".into()),
                "move-to folder \"lit{5}\": folder names may not contain '{'",
            ),
            (
                WitAction::AddFlag("\\Deleted".into()),
                "add-flag flag \"\\\\Deleted\": \\Deleted may not be set",
            ),
            (
                WitAction::AddFlag("\\Recent".into()),
                "add-flag flag \"\\\\Recent\": \\Recent is managed",
            ),
            (
                WitAction::RemoveFlag("a b".into()),
                "remove-flag flag \"a b\": keywords are IMAP atoms",
            ),
            (WitAction::Tag("x".repeat(8 << 20)), "tag \"xxxx"),
            (
                WitAction::Untag(String::new()),
                "untag tag \"\": tags may not be empty",
            ),
            (
                WitAction::Reject("no\r\n250 OK".into()),
                "reject reason \"no\\r\\n250 OK\": reject reasons are one line",
            ),
            (
                WitAction::Reject("nul\0".into()),
                "reject reason \"nul\\0\": reject reasons may not contain control",
            ),
            (
                WitAction::Forward("a%b@relay.example".into()),
                "forward address \"a%b@relay.example\": '%' routes",
            ),
            (
                WitAction::Forward("@r:a@b.example".into()),
                "forward address \"@r:a@b.example\": source routes",
            ),
        ];
        for (action, starts) in cases {
            let why = refusal(action);
            assert!(
                why.starts_with(starts),
                "{why:?} should start with {starts:?}"
            );
            assert!(
                why.len() < 300,
                "the refusal stays short: {} bytes",
                why.len()
            );
        }
    }

    #[test]
    fn at_most_eight_distinct_copy_folders() {
        let copies =
            |n: usize| -> Vec<Action> { (0..n).map(|i| Action::CopyTo(format!("C{i}"))).collect() };
        assert_eq!(check_output(&copies(MAX_COPIES_PER_RUN)), Ok(()));
        let mut repeated = copies(MAX_COPIES_PER_RUN);
        repeated.extend(copies(MAX_COPIES_PER_RUN));
        assert_eq!(check_output(&repeated), Ok(()), "one copy per folder");
        let why = check_output(&copies(MAX_COPIES_PER_RUN + 1)).expect_err("9 copies");
        assert!(why.contains("at most 8"), "{why}");
    }

    #[test]
    fn json_shape_matches_the_sdk() {
        let json = serde_json::to_string(&[Action::MoveTo("Spam".into()), Action::Stop])
            .expect("serialize");
        assert_eq!(json, r#"[{"move_to":"Spam"},"stop"]"#);
    }
}
