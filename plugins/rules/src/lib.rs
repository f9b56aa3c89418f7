//! `rules`: filter mail with a JSON list of rules instead of code.
//!
//! The stage configuration is an object with a `rules` array. Each rule has a `name`, a `when`
//! condition and the `then` actions to return when it matches; `"stop": true` skips the rules after a
//! matching one. Rules are evaluated in order and the actions of every matching rule are returned
//! together.
//!
//! ```json
//! {
//!   "rules": [
//!     {
//!       "name": "invoices",
//!       "when": { "any": [
//!         { "field": "subject", "contains": ["invoice", "receipt"] },
//!         { "field": "from", "equals": "billing@example.com" }
//!       ] },
//!       "then": [ { "move_to": "Invoices" }, { "tag": "billing" } ],
//!       "stop": true
//!     },
//!     {
//!       "name": "mailing lists",
//!       "when": { "header": "List-Id", "matches": "rust-(users|internals)" },
//!       "then": [ { "move_to": "Lists" } ]
//!     }
//!   ]
//! }
//! ```
//!
//! A condition is one of:
//! - `{"all": [condition, ...]}`: every one matches (an empty list matches);
//! - `{"any": [condition, ...]}`: at least one matches (an empty list does not);
//! - `{"not": condition}`;
//! - a test: a field and one operator. The field is `{"field": NAME}` with NAME one of `subject`,
//!   `from`, `to`, `cc`, `reply_to`, `body`, `text_body`, `html_body`, `attachment_names`, or
//!   `{"header": "Header-Name"}`. The operator is `contains` or `equals` (case-insensitive; for
//!   address fields `equals` compares the bare address) or `matches` (a regular expression, Rust
//!   `regex` syntax); its value is a string or a list of strings (any of them). A test may also be
//!   `{"header": "Name", "exists": true}`.
//!
//! Actions are those of the plugin contract, in JSON: `"keep"`, `"discard"`, `"stop"`,
//! `{"move_to": F}`, `{"copy_to": F}`, `{"add_flag": F}`, `{"remove_flag": F}`, `{"tag": T}`,
//! `{"untag": T}`, `{"forward": ADDRESS}`, `{"reject": REASON}`.
//!
//! Configuration errors name the place they were found (`rules[1].when.any[0]: ...`) and end the call
//! with a `plugin` error, before any rule runs.

mod config;
mod eval;

pub use config::{Condition, Op, Rule, Rules, Test};
pub use eval::Probe;

#[cfg(target_arch = "wasm32")]
mod component {
    use super::{Probe, Rules};
    use wasmail_plugin::{Action, Error, Field, Message, Prepared};

    struct Host<'a>(&'a Message<'a>);

    impl Probe for Host<'_> {
        fn contains(&self, field: &Field, needle: &str) -> bool {
            self.0.contains(field, needle)
        }
        fn equals(&self, field: &Field, value: &str) -> bool {
            self.0.equals(field, value)
        }
        fn matches(&self, field: &Field, pattern: &str) -> Result<bool, String> {
            self.0.matches(field, pattern).map_err(|e| e.to_string())
        }
        fn has_header(&self, name: &str) -> bool {
            self.0.header(name).is_some()
        }
    }

    /// The rules, parsed once per configuration: in `prepare` when the host snapshots the prepared
    /// instance, else on the first message of the instance.
    static RULES: Prepared<Rules> = Prepared::new();

    fn rules() -> Result<&'static Rules, Error> {
        RULES.get_or_init(|| Rules::parse(&wasmail_plugin::config::raw()).map_err(Error::new))
    }

    fn prepare() -> Result<(), Error> {
        rules().map(|_| ())
    }

    #[wasmail_plugin::filter(prepare = prepare)]
    fn filter(message: &Message) -> Result<Vec<Action>, Error> {
        rules()?.evaluate(&Host(message)).map_err(Error::new)
    }
}
