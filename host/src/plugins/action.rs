use super::bindings::WitAction;

/// An action a filter returned, validated: the type the SDK uses too (`wasmail-types`), so the
/// JSON is the same on both sides (`{"move_to": "Spam"}`, `"stop"`).
pub use wasmail_types::Action;

const MAX_FOLDER: usize = 255;
const MAX_FLAG: usize = 64;
const MAX_TAG: usize = 64;
const MAX_ADDRESS: usize = 254;
const MAX_REASON: usize = 1024;

/// Converts and validates a guest's action; the error says what is wrong, for an `invalid_output`
/// failure.
pub(crate) fn from_guest(action: WitAction) -> Result<Action, String> {
    let action = match action {
        WitAction::Keep => Action::Keep,
        WitAction::Discard => Action::Discard,
        WitAction::MoveTo(f) => Action::MoveTo(folder(f)?),
        WitAction::CopyTo(f) => Action::CopyTo(folder(f)?),
        WitAction::AddFlag(f) => Action::AddFlag(flag(f)?),
        WitAction::RemoveFlag(f) => Action::RemoveFlag(flag(f)?),
        WitAction::Tag(t) => Action::Tag(tag(t)?),
        WitAction::Untag(t) => Action::Untag(tag(t)?),
        WitAction::Forward(a) => Action::Forward(address(a)?),
        WitAction::Reject(r) => Action::Reject(reason(r)?),
        WitAction::Stop => Action::Stop,
    };
    Ok(action)
}

fn shown(s: &str) -> String {
    let cut: String = s.chars().take(40).collect();
    if cut.len() < s.len() {
        format!("{cut:?}…")
    } else {
        format!("{cut:?}")
    }
}

fn bounded(kind: &str, s: String, max: usize) -> Result<String, String> {
    if s.trim().is_empty() {
        return Err(format!("{kind} is empty"));
    }
    if s.len() > max {
        return Err(format!(
            "{kind} {} is {} bytes long; at most {max} are allowed",
            shown(&s),
            s.len()
        ));
    }
    if s.chars().any(char::is_control) {
        return Err(format!("{kind} {} contains control characters", shown(&s)));
    }
    Ok(s)
}

fn folder(s: String) -> Result<String, String> {
    bounded("folder name", s, MAX_FOLDER)
}

fn flag(s: String) -> Result<String, String> {
    let s = bounded("flag", s, MAX_FLAG)?;
    // An IMAP flag is an atom, optionally preceded by a backslash for system flags.
    let atom = s.strip_prefix('\\').unwrap_or(&s);
    let bad = |c: char| c.is_whitespace() || "(){%*\"\\]".contains(c) || !c.is_ascii();
    if atom.is_empty() || atom.chars().any(bad) {
        return Err(format!("flag {} is not an IMAP flag", shown(&s)));
    }
    Ok(s)
}

fn tag(s: String) -> Result<String, String> {
    bounded("tag", s, MAX_TAG)
}

fn address(s: String) -> Result<String, String> {
    let s = bounded("forward address", s, MAX_ADDRESS)?;
    let valid = match s.rsplit_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !s.chars().any(|c| c.is_whitespace() || "<>,;".contains(c))
        }
        None => false,
    };
    if !valid {
        return Err(format!(
            "forward address {} is not an email address",
            shown(&s)
        ));
    }
    Ok(s)
}

fn reason(s: String) -> Result<String, String> {
    if s.len() > MAX_REASON {
        return Err(format!(
            "reject reason is {} bytes long; at most {MAX_REASON} are allowed",
            s.len()
        ));
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_guest_output() {
        assert_eq!(
            from_guest(WitAction::MoveTo("Spam".into())),
            Ok(Action::MoveTo("Spam".into()))
        );
        assert!(from_guest(WitAction::MoveTo(" ".into())).is_err());
        assert!(from_guest(WitAction::MoveTo("x".repeat(300))).is_err());
        assert!(from_guest(WitAction::Tag("a\nb".into())).is_err());
        assert_eq!(
            from_guest(WitAction::AddFlag("\\Seen".into())),
            Ok(Action::AddFlag("\\Seen".into()))
        );
        assert!(from_guest(WitAction::AddFlag("two words".into())).is_err());
        assert!(from_guest(WitAction::Forward("ops@example.com".into())).is_ok());
        assert!(from_guest(WitAction::Forward("not an address".into())).is_err());
        assert!(from_guest(WitAction::Reject(String::new())).is_ok());
    }

    #[test]
    fn json_shape_matches_the_sdk() {
        let json = serde_json::to_string(&[Action::MoveTo("Spam".into()), Action::Stop])
            .expect("serialize");
        assert_eq!(json, r#"[{"move_to":"Spam"},"stop"]"#);
    }
}
