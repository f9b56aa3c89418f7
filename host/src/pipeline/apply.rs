//! What actions do to a stored message. Pure, so the same code computes what a later stage sees and
//! what is committed — and is replayed on the message's current state inside the commit, so two runs
//! touching one message do not lose each other's changes.

use crate::domain::StoredEnvelope;
use crate::domain::outcome::Refusal;
use crate::domain::{MAX_COPIES_PER_RUN, tag};
use crate::sandbox::Action;
use crate::store::TRASH;

/// What a list of actions did, over all the stages of one run on one message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Effects {
    /// The actions that applied, in order (the refused ones left out): what the commit replays.
    pub applied: Vec<Action>,
    /// Folders to copy the message to, each once.
    pub copies: Vec<String>,
    /// Actions that need a delivery path wasmail does not have for stored mail yet (forward, reject):
    /// recorded in the run's results, not carried out.
    pub deferred: Vec<Action>,
    /// Actions refused because they would take the message past a bound.
    pub refused: Vec<Refusal>,
    /// A `stop` was among them.
    pub stopped: bool,
}

/// Applies `actions` in order to `envelope`.
pub fn apply(envelope: &mut StoredEnvelope, actions: &[Action]) -> Effects {
    let mut effects = Effects::default();
    effects.apply(envelope, actions);
    effects
}

impl Effects {
    /// Applies `actions` in order to `envelope`, after what is already here (earlier stages of the
    /// same run). Bounds that depend on the message's state are kept here rather than refused as
    /// invalid output, since no single plugin broke them: a tag past the
    /// [`tag::MAX_PER_MESSAGE`] a message carries (however many runs added the others), a copy
    /// past the [`MAX_COPIES_PER_RUN`] of this run. Such an action is left out and recorded.
    pub fn apply(&mut self, envelope: &mut StoredEnvelope, actions: &[Action]) {
        for action in actions {
            if let Some(reason) = self.refusal(envelope, action) {
                self.refused.push(Refusal {
                    action: action.clone(),
                    reason,
                });
                continue;
            }
            match action {
                Action::Keep => {}
                Action::Discard => move_to(envelope, TRASH),
                Action::MoveTo(folder) => move_to(envelope, folder),
                Action::CopyTo(folder) => add(&mut self.copies, folder),
                Action::AddFlag(flag) => add(&mut envelope.flags, flag),
                Action::RemoveFlag(flag) => envelope.flags.retain(|f| f != flag),
                Action::Tag(tag) => add(&mut envelope.tags, tag),
                Action::Untag(tag) => envelope.tags.retain(|t| t != tag),
                Action::Forward(_) | Action::Reject(_) => self.deferred.push(action.clone()),
                Action::Stop => self.stopped = true,
            }
            self.applied.push(action.clone());
        }
    }

    fn refusal(&self, envelope: &StoredEnvelope, action: &Action) -> Option<String> {
        match action {
            Action::Tag(t)
                if envelope.tags.len() >= tag::MAX_PER_MESSAGE && !envelope.tags.contains(t) =>
            {
                Some(format!(
                    "tag: the message already carries {} tags, the most a message may carry",
                    tag::MAX_PER_MESSAGE
                ))
            }
            Action::CopyTo(folder)
                if self.copies.len() >= MAX_COPIES_PER_RUN && !self.copies.contains(folder) =>
            {
                Some(format!(
                    "copy-to: the message is already copied to {MAX_COPIES_PER_RUN} folders in \
                     this run, the most a run may copy it to"
                ))
            }
            _ => None,
        }
    }
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
        assert_eq!(effects.applied.len(), 10, "nothing was refused");
        assert_eq!(
            effects.deferred,
            vec![Action::Forward("x@example.test".into())]
        );
        assert!(effects.stopped);
    }

    #[test]
    fn tags_stop_at_the_bound_however_many_runs_add_them() {
        let mut env = inbox();
        let tags = |from: usize| -> Vec<Action> {
            (from..from + 40)
                .map(|i| Action::Tag(format!("t{i}")))
                .collect()
        };
        // Two runs of 40 tags each: the second gets 24 in and 16 refused.
        assert!(apply(&mut env, &tags(0)).refused.is_empty());
        let second = apply(&mut env, &tags(40));
        assert_eq!(env.tags.len(), tag::MAX_PER_MESSAGE);
        assert_eq!(second.applied.len(), 24);
        assert_eq!(second.refused.len(), 16);
        assert_eq!(second.refused[0].action, Action::Tag("t64".into()));
        assert!(
            second.refused[0].reason.contains("64 tags"),
            "{:?}",
            second.refused[0]
        );
        // A tag it has already is no new tag; after an untag there is room again.
        let again = apply(
            &mut env,
            &[
                Action::Tag("t0".into()),
                Action::Untag("t1".into()),
                Action::Tag("new".into()),
                Action::Tag("newer".into()),
            ],
        );
        assert_eq!(again.refused.len(), 1);
        assert_eq!(again.refused[0].action, Action::Tag("newer".into()));
        assert!(env.tags.contains(&"new".to_string()));
        assert_eq!(env.tags.len(), tag::MAX_PER_MESSAGE);
    }

    #[test]
    fn copies_per_run_are_bounded_over_all_stages() {
        let mut env = inbox();
        let mut effects = Effects::default();
        let copies = |r: std::ops::Range<usize>| -> Vec<Action> {
            r.map(|i| Action::CopyTo(format!("C{i}"))).collect()
        };
        effects.apply(&mut env, &copies(0..5));
        effects.apply(&mut env, &copies(3..10));
        assert_eq!(
            effects.copies.len(),
            MAX_COPIES_PER_RUN,
            "{:?}",
            effects.copies
        );
        let refused: Vec<_> = effects.refused.iter().map(|r| r.action.clone()).collect();
        assert_eq!(refused, copies(8..10));
        assert!(effects.refused[0].reason.contains("copied to 8 folders"));
        assert!(!effects.applied.iter().any(|a| refused.contains(a)));
    }
}
