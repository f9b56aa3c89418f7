//! Evaluating rules against a message, through whatever can answer the match primitives.

use crate::config::{Condition, Op, Rules, Test};
use wasmail_plugin::{Action, Field};

/// What rule evaluation needs from a message. In the component the host answers (natively, over its
/// copy of the message); natively, anything that can, which is how the host benchmarks the plugin
/// against the same rules in native Rust.
pub trait Probe {
    /// Case-insensitive substring test.
    fn contains(&self, field: &Field, needle: &str) -> bool;
    /// Case-insensitive equality.
    fn equals(&self, field: &Field, value: &str) -> bool;
    /// Regular expression test; an invalid pattern is an error.
    fn matches(&self, field: &Field, pattern: &str) -> Result<bool, String>;
    /// Whether the header is present.
    fn has_header(&self, name: &str) -> bool;
}

impl Rules {
    /// The actions of every matching rule, in order, up to the first matching rule with `stop`.
    pub fn evaluate(&self, probe: &impl Probe) -> Result<Vec<Action>, String> {
        let mut actions = Vec::new();
        for rule in &self.rules {
            let matched =
                holds(&rule.when, probe).map_err(|e| format!("rule {}: {e}", rule.name))?;
            if matched {
                actions.extend(rule.then.iter().cloned());
                if rule.stop {
                    break;
                }
            }
        }
        Ok(actions)
    }
}

fn holds(condition: &Condition, probe: &impl Probe) -> Result<bool, String> {
    Ok(match condition {
        Condition::All(list) => {
            for c in list {
                if !holds(c, probe)? {
                    return Ok(false);
                }
            }
            true
        }
        Condition::Any(list) => {
            for c in list {
                if holds(c, probe)? {
                    return Ok(true);
                }
            }
            false
        }
        Condition::Not(inner) => !holds(inner, probe)?,
        Condition::Test(test) => passes(test, probe)?,
    })
}

fn passes(test: &Test, probe: &impl Probe) -> Result<bool, String> {
    if test.op == Op::Exists {
        return Ok(matches!(&test.field, Field::Header(name) if probe.has_header(name)));
    }
    for value in &test.values {
        let hit = match test.op {
            Op::Contains => probe.contains(&test.field, value),
            Op::Equals => probe.equals(&test.field, value),
            Op::Matches => probe.matches(&test.field, value)?,
            Op::Exists => false,
        };
        if hit {
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A probe over a subject line only: enough to check the logic of all/any/not/stop.
    struct Subject(&'static str);

    impl Probe for Subject {
        fn contains(&self, field: &Field, needle: &str) -> bool {
            matches!(field, Field::Subject)
                && self.0.to_lowercase().contains(&needle.to_lowercase())
        }
        fn equals(&self, field: &Field, value: &str) -> bool {
            matches!(field, Field::Subject) && self.0.eq_ignore_ascii_case(value)
        }
        fn matches(&self, _: &Field, pattern: &str) -> Result<bool, String> {
            if pattern == "(" {
                Err("invalid pattern".into())
            } else {
                Ok(false)
            }
        }
        fn has_header(&self, name: &str) -> bool {
            name == "Subject"
        }
    }

    fn run(config: &str, subject: &'static str) -> Result<Vec<Action>, String> {
        Rules::parse(config)
            .expect("valid config")
            .evaluate(&Subject(subject))
    }

    #[test]
    fn combinators_and_stop() {
        let config = r#"{"rules": [
            {"name": "a", "when": {"all": [{"field": "subject", "contains": "x"}, {"not": {"field": "subject", "contains": "y"}}]},
             "then": [{"tag": "a"}]},
            {"name": "b", "when": {"any": [{"field": "subject", "equals": ["nope", "X Z"]}]}, "then": [{"tag": "b"}], "stop": true},
            {"name": "c", "when": {"header": "Subject", "exists": true}, "then": [{"tag": "c"}]}]}"#;
        assert_eq!(
            run(config, "x z").expect("ok"),
            vec![Action::Tag("a".into()), Action::Tag("b".into())]
        );
        assert_eq!(
            run(config, "x y").expect("ok"),
            vec![Action::Tag("c".into())]
        );
        assert_eq!(run(config, "q").expect("ok"), vec![Action::Tag("c".into())]);
    }

    #[test]
    fn a_bad_pattern_is_an_error_naming_the_rule() {
        let config = r#"{"rules": [{"name": "re", "when": {"field": "subject", "matches": "("}, "then": ["keep"]}]}"#;
        assert_eq!(
            run(config, "x"),
            Err("rule re: invalid pattern".to_string())
        );
    }
}
