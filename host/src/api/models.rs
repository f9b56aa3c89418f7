//! Models shared by several resources: actions, plugin logs and failures, stage results.
//!
//! Their JSON is the JSON the engine and the SDK already use (`{"move_to": "Spam"}`, `"stop"`), so a
//! plugin's configuration can quote them. They are made from the domain's types by typed
//! conversions: a field added there without its place here fails to compile, not to show.

use crate::domain::outcome::as_micros;
use crate::sandbox::{Action, Failure, LogLine, Outcome};
use chrono::{DateTime, Utc};
use poem_openapi::{Enum, Object, Union};

/// Unix milliseconds as a time.
pub fn time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// An action without an argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum SimpleAction {
    /// Keep the message where it is.
    Keep,
    /// Move it to the trash (recoverable; bytes are never deleted).
    Discard,
    /// Run no further stage for this message.
    Stop,
}

macro_rules! argument_actions {
    ($($name:ident { $field:ident } = $doc:literal;)*) => {
        $(
            #[doc = $doc]
            #[derive(Debug, Clone, PartialEq, Eq, Object)]
            pub struct $name {
                #[doc = $doc]
                pub $field: String,
            }
        )*
    };
}

argument_actions! {
    MoveTo { move_to } = "Move the message to this folder.";
    CopyTo { copy_to } = "Copy the message to this folder.";
    AddFlag { add_flag } = "Set this IMAP flag or keyword.";
    RemoveFlag { remove_flag } = "Clear this IMAP flag or keyword.";
    Tag { tag } = "Attach this tag.";
    Untag { untag } = "Remove this tag.";
    Forward { forward } = "Forward a copy to this address (recorded; carried out by the send pipeline).";
    Reject { reject } = "Refuse the message with this reason (recorded; applies at delivery).";
}

/// What a filter decided: `"keep"`, `"discard"`, `"stop"`, or an object with one key, e.g.
/// `{"move_to": "Spam"}`, `{"tag": "newsletter"}`.
#[derive(Debug, Clone, PartialEq, Eq, Union)]
#[oai(one_of)]
pub enum ActionModel {
    /// An action without an argument.
    Simple(SimpleAction),
    /// Move.
    MoveTo(MoveTo),
    /// Copy.
    CopyTo(CopyTo),
    /// Set a flag.
    AddFlag(AddFlag),
    /// Clear a flag.
    RemoveFlag(RemoveFlag),
    /// Tag.
    Tag(Tag),
    /// Untag.
    Untag(Untag),
    /// Forward.
    Forward(Forward),
    /// Reject.
    Reject(Reject),
}

impl From<&Action> for ActionModel {
    fn from(a: &Action) -> Self {
        match a.clone() {
            Action::Keep => Self::Simple(SimpleAction::Keep),
            Action::Discard => Self::Simple(SimpleAction::Discard),
            Action::Stop => Self::Simple(SimpleAction::Stop),
            Action::MoveTo(move_to) => Self::MoveTo(MoveTo { move_to }),
            Action::CopyTo(copy_to) => Self::CopyTo(CopyTo { copy_to }),
            Action::AddFlag(add_flag) => Self::AddFlag(AddFlag { add_flag }),
            Action::RemoveFlag(remove_flag) => Self::RemoveFlag(RemoveFlag { remove_flag }),
            Action::Tag(tag) => Self::Tag(Tag { tag }),
            Action::Untag(untag) => Self::Untag(Untag { untag }),
            Action::Forward(forward) => Self::Forward(Forward { forward }),
            Action::Reject(reject) => Self::Reject(Reject { reject }),
        }
    }
}

/// Severity of a plugin's log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum LogLevel {
    /// Trace.
    Trace,
    /// Debug.
    Debug,
    /// Info.
    Info,
    /// Warn.
    Warn,
    /// Error (and panics).
    Error,
}

/// A line a plugin logged.
#[derive(Debug, Clone, Object)]
pub struct PluginLog {
    /// Severity.
    pub level: LogLevel,
    /// Text.
    pub message: String,
}

/// Kind of a plugin failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum FailureKind {
    /// The wall-clock deadline passed.
    Deadline,
    /// The fuel budget ran out.
    Fuel,
    /// The plugin tried to grow memory past its limit.
    Memory,
    /// The plugin trapped (a panic, a stack overflow, an out-of-bounds access).
    Trap,
    /// The plugin returned something the host does not accept.
    InvalidOutput,
    /// The plugin could not be instantiated.
    Instantiation,
    /// The plugin returned an error of its own.
    Plugin,
    /// The host failed while running the plugin (not the plugin's fault).
    Host,
}

/// Why a plugin call failed.
#[derive(Debug, Clone, Object)]
pub struct PluginFailure {
    /// What kind of failure.
    pub kind: FailureKind,
    /// Explanation.
    pub message: String,
    /// The plugin's panic message.
    #[oai(skip_serializing_if_is_none)]
    pub panic: Option<String>,
    /// WebAssembly frames, innermost first.
    #[oai(default)]
    pub backtrace: Vec<String>,
    /// The last log lines before the failure.
    #[oai(default)]
    pub logs: Vec<PluginLog>,
    /// What the plugin wrote to stdout and stderr.
    #[oai(default)]
    pub stderr: String,
    /// Fuel consumed.
    pub fuel_used: u64,
    /// Wall-clock time, microseconds.
    pub duration_us: u64,
}

impl From<crate::sandbox::LogLevel> for LogLevel {
    fn from(l: crate::sandbox::LogLevel) -> Self {
        use crate::sandbox::LogLevel as L;
        match l {
            L::Trace => Self::Trace,
            L::Debug => Self::Debug,
            L::Info => Self::Info,
            L::Warn => Self::Warn,
            L::Error => Self::Error,
        }
    }
}

impl From<&LogLine> for PluginLog {
    fn from(l: &LogLine) -> Self {
        Self {
            level: l.level.into(),
            message: l.message.clone(),
        }
    }
}

impl From<crate::sandbox::FailureKind> for FailureKind {
    fn from(k: crate::sandbox::FailureKind) -> Self {
        use crate::sandbox::FailureKind as K;
        match k {
            K::Deadline => Self::Deadline,
            K::Fuel => Self::Fuel,
            K::Memory => Self::Memory,
            K::Trap => Self::Trap,
            K::InvalidOutput => Self::InvalidOutput,
            K::Instantiation => Self::Instantiation,
            K::Plugin => Self::Plugin,
            K::Host => Self::Host,
        }
    }
}

impl From<&Failure> for PluginFailure {
    fn from(f: &Failure) -> Self {
        // Destructured, so a field the domain gains must be placed here.
        let Failure {
            kind,
            message,
            panic,
            backtrace,
            logs,
            stderr,
            fuel_used,
            duration,
        } = f;
        Self {
            kind: (*kind).into(),
            message: message.clone(),
            panic: panic.clone(),
            backtrace: backtrace.clone(),
            logs: logs.iter().map(PluginLog::from).collect(),
            stderr: stderr.clone(),
            fuel_used: *fuel_used,
            duration_us: as_micros(*duration),
        }
    }
}

/// A successful plugin call.
#[derive(Debug, Clone, Object)]
pub struct PluginOutcome {
    /// The actions it returned, in order.
    pub actions: Vec<ActionModel>,
    /// What it logged.
    pub logs: Vec<PluginLog>,
    /// Log lines dropped past the budget.
    pub logs_dropped: u64,
    /// What it wrote to stdout and stderr.
    pub stderr: String,
    /// Fuel consumed.
    pub fuel_used: u64,
    /// Wall-clock time, microseconds (instantiation included).
    pub duration_us: u64,
}

impl From<&Outcome> for PluginOutcome {
    fn from(o: &Outcome) -> Self {
        Self {
            actions: o.actions.iter().map(ActionModel::from).collect(),
            logs: o.logs.iter().map(PluginLog::from).collect(),
            logs_dropped: o.logs_dropped,
            stderr: o.stderr.clone(),
            fuel_used: o.fuel_used,
            duration_us: as_micros(o.duration),
        }
    }
}
