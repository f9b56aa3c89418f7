use crate::__private::WitAction;

/// What to do with a message; see [`wasmail_types::Action`].
pub use wasmail_types::Action;

impl From<Action> for WitAction {
    fn from(action: Action) -> Self {
        match action {
            Action::Keep => WitAction::Keep,
            Action::Discard => WitAction::Discard,
            Action::MoveTo(f) => WitAction::MoveTo(f),
            Action::CopyTo(f) => WitAction::CopyTo(f),
            Action::AddFlag(f) => WitAction::AddFlag(f),
            Action::RemoveFlag(f) => WitAction::RemoveFlag(f),
            Action::Tag(t) => WitAction::Tag(t),
            Action::Untag(t) => WitAction::Untag(t),
            Action::Forward(a) => WitAction::Forward(a),
            Action::Reject(r) => WitAction::Reject(r),
            Action::Stop => WitAction::Stop,
        }
    }
}
