//! What actions do to a stored message. Pure, so the same code computes what a later stage sees and
//! what is committed — and is replayed on the message's current state inside the commit, so two runs
//! touching one message do not lose each other's changes.

use crate::plugins::Action;
use crate::store::{StoredEnvelope, TRASH};

/// The effect of a list of actions beyond the envelope itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Effects {
    /// Folders to copy the message to.
    pub copies: Vec<String>,
    /// Actions that need a delivery path wasmail does not have for stored mail yet (forward, reject):
    /// recorded in the run's results, not carried out.
    pub deferred: Vec<Action>,
    /// A `stop` was among them.
    pub stopped: bool,
}

/// Applies `actions` in order to `envelope`.
pub fn apply(envelope: &mut StoredEnvelope, actions: &[Action]) -> Effects {
    let mut effects = Effects::default();
    for action in actions {
        match action {
            Action::Keep => {}
            Action::Discard => move_to(envelope, TRASH),
            Action::MoveTo(folder) => move_to(envelope, folder),
            Action::CopyTo(folder) => effects.copies.push(folder.clone()),
            Action::AddFlag(flag) => add(&mut envelope.flags, flag),
            Action::RemoveFlag(flag) => envelope.flags.retain(|f| f != flag),
            Action::Tag(tag) => add(&mut envelope.tags, tag),
            Action::Untag(tag) => envelope.tags.retain(|t| t != tag),
            Action::Forward(_) | Action::Reject(_) => effects.deferred.push(action.clone()),
            Action::Stop => effects.stopped = true,
        }
    }
    effects
}

/// Moves the message; into the trash it remembers where it came from, out of it it forgets.
pub fn move_to(envelope: &mut StoredEnvelope, folder: &str) {
    if envelope.folder == folder {
        return;
    }
    envelope.trashed_from = if folder == TRASH {
        Some(envelope.folder.clone())
    } else {
        None
    };
    envelope.folder = folder.to_string();
}

fn add(list: &mut Vec<String>, item: &str) {
    if !list.iter().any(|x| x == item) {
        list.push(item.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inbox() -> StoredEnvelope {
        StoredEnvelope {
            folder: "INBOX".into(),
            flags: vec!["\\Seen".into()],
            tags: vec![],
            trashed_from: None,
        }
    }

    #[test]
    fn discard_keeps_where_it_came_from_and_moving_out_forgets_it() {
        let mut env = inbox();
        apply(&mut env, &[Action::Discard]);
        assert_eq!(
            (env.folder.as_str(), env.trashed_from.as_deref()),
            (TRASH, Some("INBOX"))
        );
        apply(&mut env, &[Action::Discard]);
        assert_eq!(
            env.trashed_from.as_deref(),
            Some("INBOX"),
            "a second discard keeps the origin"
        );
        apply(&mut env, &[Action::MoveTo("Archive".into())]);
        assert_eq!((env.folder.as_str(), env.trashed_from), ("Archive", None));
    }

    #[test]
    fn flags_and_tags_are_sets_and_order_matters() {
        let mut env = inbox();
        let effects = apply(
            &mut env,
            &[
                Action::AddFlag("\\Seen".into()),
                Action::AddFlag("\\Flagged".into()),
                Action::RemoveFlag("\\Seen".into()),
                Action::Tag("a".into()),
                Action::Tag("b".into()),
                Action::Tag("a".into()),
                Action::Untag("b".into()),
                Action::CopyTo("Copies".into()),
                Action::Forward("x@example.test".into()),
                Action::Stop,
            ],
        );
        assert_eq!(env.flags, vec!["\\Flagged".to_string()]);
        assert_eq!(env.tags, vec!["a".to_string()]);
        assert_eq!(effects.copies, vec!["Copies".to_string()]);
        assert_eq!(
            effects.deferred,
            vec![Action::Forward("x@example.test".into())]
        );
        assert!(effects.stopped);
    }
}
