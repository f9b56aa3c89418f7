//! The rules configuration. It is parsed on every call (a plugin runs in a fresh instance per
//! message), so it is deserialised straight into these types — no intermediate JSON tree — and
//! errors carry the path where they were found (`rules[1].when.any[0]: ...`).

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use std::fmt;
use wasmail_plugin::{Action, Field};

/// A parsed, validated rule set.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    /// The rules, in evaluation order.
    pub rules: Vec<Rule>,
}

/// One rule.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Its name, for logs and errors (`rules[N]` when not given).
    #[serde(default)]
    pub name: String,
    /// When it matches.
    pub when: Condition,
    /// What it returns when it matches.
    pub then: Vec<Action>,
    /// Whether later rules are skipped after it matched.
    #[serde(default)]
    pub stop: bool,
}

/// A condition tree.
#[derive(Debug, Clone)]
pub enum Condition {
    /// Every condition holds.
    All(Vec<Condition>),
    /// At least one holds.
    Any(Vec<Condition>),
    /// The condition does not hold.
    Not(Box<Condition>),
    /// A test of one field.
    Test(Test),
}

/// A test of one field against one or more values.
#[derive(Debug, Clone)]
pub struct Test {
    /// The field.
    pub field: Field,
    /// The operator.
    pub op: Op,
    /// The values (any one suffices).
    pub values: Vec<String>,
}

/// A test's operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Case-insensitive substring.
    Contains,
    /// Case-insensitive equality.
    Equals,
    /// Regular expression.
    Matches,
    /// The header is present (values unused).
    Exists,
}

const FIELDS: &str =
    "subject, from, to, cc, reply_to, body, text_body, html_body, attachment_names";
const MAX_RULES: usize = 500;

impl Rules {
    /// Parses and validates configuration text.
    pub fn parse(text: &str) -> Result<Self, String> {
        // serde would also read a struct from a JSON array; only an object is a configuration.
        if !text.trim_start().starts_with('{') {
            return match serde_json::from_str::<de::IgnoredAny>(text) {
                Err(e) => Err(format!("configuration is not JSON: {e}")),
                Ok(_) => Err("configuration must be an object with a \"rules\" array".into()),
            };
        }
        // The fast path parses plainly; only a failing configuration is parsed again, tracking the
        // path to report where the error is.
        let mut rules: Rules = match serde_json::from_str(text) {
            Ok(rules) => rules,
            Err(_) => return Err(located_error(text)),
        };
        if rules.rules.is_empty() {
            return Err("rules: the list is empty".into());
        }
        if rules.rules.len() > MAX_RULES {
            return Err(format!(
                "rules: {} rules; at most {MAX_RULES} are allowed",
                rules.rules.len()
            ));
        }
        for (i, rule) in rules.rules.iter_mut().enumerate() {
            if rule.name.is_empty() {
                rule.name = format!("rules[{i}]");
            }
            if rule.then.is_empty() && !rule.stop {
                return Err(format!(
                    "rules[{i}].then: no actions (use [\"keep\"] with \"stop\": true to end evaluation)"
                ));
            }
        }
        Ok(rules)
    }
}

fn located_error(text: &str) -> String {
    let mut json = serde_json::Deserializer::from_str(text);
    match serde_path_to_error::deserialize::<_, Rules>(&mut json) {
        Ok(_) => "configuration rejected".to_string(),
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if inner.is_syntax() || inner.is_eof() {
                format!("configuration is not JSON: {inner}")
            } else if path == "." {
                format!("configuration: {inner} (expected an object with a \"rules\" array)")
            } else {
                format!("{path}: {inner}")
            }
        }
    }
}

/// The keys of a condition object.
#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum Key {
    All,
    Any,
    Not,
    Field,
    Header,
    Contains,
    Equals,
    Matches,
    Exists,
}

/// A named field (`"subject"`, `"from"`, ...), read without allocating.
struct FieldName(Field);

impl<'de> Deserialize<'de> for FieldName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = FieldName;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "one of {FIELDS}")
            }
            fn visit_str<E: de::Error>(self, name: &str) -> Result<FieldName, E> {
                let field = match name {
                    "subject" => Field::Subject,
                    "from" => Field::From,
                    "to" => Field::To,
                    "cc" => Field::Cc,
                    "reply_to" => Field::ReplyTo,
                    "body" => Field::Body,
                    "text_body" => Field::TextBody,
                    "html_body" => Field::HtmlBody,
                    "attachment_names" => Field::AttachmentNames,
                    _ => {
                        return Err(E::custom(format!(
                            "unknown field \"{name}\" (expected one of {FIELDS}, or use \"header\")"
                        )));
                    }
                };
                Ok(FieldName(field))
            }
        }
        d.deserialize_str(V)
    }
}

/// A string or a non-empty list of strings.
struct Values(Vec<String>);

impl<'de> Deserialize<'de> for Values {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Values;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a non-empty list of strings")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Values, E> {
                Ok(Values(vec![s.to_string()]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Values, A::Error> {
                let mut out = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    out.push(s);
                }
                if out.is_empty() {
                    return Err(de::Error::invalid_length(0, &self));
                }
                Ok(Values(out))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Condition {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(ConditionVisitor)
    }
}

struct ConditionVisitor;

impl<'de> Visitor<'de> for ConditionVisitor {
    type Value = Condition;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a condition: {\"all\": [...]}, {\"any\": [...]}, {\"not\": ...} or a test")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Condition, A::Error> {
        let mut combinator: Option<Condition> = None;
        let (mut field, mut header) = (None::<FieldName>, None::<String>);
        let mut ops: Vec<(Op, Vec<String>)> = Vec::new();
        let mut keys = 0;
        // Keys are read as identifiers, not allocated strings: this runs for every condition of every
        // rule on every call.
        while let Some(key) = map.next_key::<Key>()? {
            keys += 1;
            match key {
                Key::All => combinator = Some(Condition::All(map.next_value()?)),
                Key::Any => combinator = Some(Condition::Any(map.next_value()?)),
                Key::Not => combinator = Some(Condition::Not(Box::new(map.next_value()?))),
                Key::Field => field = Some(map.next_value()?),
                Key::Header => header = Some(map.next_value()?),
                Key::Contains => ops.push((Op::Contains, map.next_value::<Values>()?.0)),
                Key::Equals => ops.push((Op::Equals, map.next_value::<Values>()?.0)),
                Key::Matches => ops.push((Op::Matches, map.next_value::<Values>()?.0)),
                Key::Exists => {
                    if !map.next_value::<bool>()? {
                        return Err(de::Error::custom(
                            "\"exists\" must be true (wrap the test in \"not\" for absence)",
                        ));
                    }
                    ops.push((Op::Exists, Vec::new()));
                }
            }
        }
        if let Some(condition) = combinator {
            if keys > 1 {
                return Err(de::Error::custom(
                    "\"all\", \"any\" and \"not\" stand alone in their object",
                ));
            }
            return Ok(condition);
        }
        let field = match (field, header) {
            (Some(_), Some(_)) => {
                return Err(de::Error::custom(
                    "give either \"field\" or \"header\", not both",
                ));
            }
            (Some(name), None) => name.0,
            (None, Some(name)) if !name.trim().is_empty() => Field::Header(name),
            (None, Some(_)) => {
                return Err(de::Error::custom(
                    "\"header\" must be a non-empty header name",
                ));
            }
            (None, None) => {
                return Err(de::Error::custom(
                    "expected \"all\", \"any\", \"not\", or a test with \"field\" or \"header\"",
                ));
            }
        };
        let Some((op, values)) = ops.pop().filter(|_| ops.is_empty()) else {
            return Err(de::Error::custom(
                "give exactly one of \"contains\", \"equals\", \"matches\", \"exists\"",
            ));
        };
        if op == Op::Exists && !matches!(field, Field::Header(_)) {
            return Err(de::Error::custom("\"exists\" only applies to a \"header\""));
        }
        Ok(Condition::Test(Test { field, op, values }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(text: &str) -> String {
        Rules::parse(text).expect_err("should be rejected")
    }

    #[test]
    fn parses_the_documented_example() {
        let rules = Rules::parse(
            r#"{"rules": [
                {"name": "invoices", "when": {"any": [{"field": "subject", "contains": ["invoice", "receipt"]},
                 {"field": "from", "equals": "billing@example.com"}]},
                 "then": [{"move_to": "Invoices"}, {"tag": "billing"}], "stop": true},
                {"name": "lists", "when": {"header": "List-Id", "matches": "rust-(users|internals)"},
                 "then": [{"move_to": "Lists"}]}]}"#,
        )
        .expect("valid");
        assert_eq!(rules.rules.len(), 2);
        assert!(rules.rules[0].stop);
        assert!(matches!(&rules.rules[0].when, Condition::Any(list) if list.len() == 2));
        assert_eq!(rules.rules[1].then, vec![Action::MoveTo("Lists".into())]);
    }

    #[test]
    fn errors_name_the_place() {
        assert_eq!(
            error("[]"),
            "configuration must be an object with a \"rules\" array"
        );
        assert_eq!(
            error("{}"),
            "configuration: missing field `rules` at line 1 column 2 (expected an object with a \"rules\" array)"
        );
        assert_eq!(error(r#"{"rules": []}"#), "rules: the list is empty");
        let e = error(
            r#"{"rules": [{"when": {"field": "subjct", "contains": "x"}, "then": ["keep"]}]}"#,
        );
        assert!(
            e.starts_with("rules[0].when.field: unknown field \"subjct\""),
            "{e}"
        );
        let e = error(
            r#"{"rules": [{"name": "a", "when": {"any": [{"field": "subject"}]}, "then": ["keep"]}]}"#,
        );
        assert!(
            e.starts_with("rules[0].when.any[0]: give exactly one of"),
            "{e}"
        );
        let e = error(
            r#"{"rules": [{"name": "a", "when": {"field": "to", "contains": "x"}, "then": [{"move": "x"}]}]}"#,
        );
        assert!(
            e.starts_with("rules[0].then[0]: unknown variant `move`"),
            "{e}"
        );
        let e = error(
            r#"{"rules": [{"name": "a", "when": {"field": "to", "contains": 3}, "then": ["keep"]}]}"#,
        );
        assert!(e.contains("rules[0].when.contains: invalid type: integer `3`, expected a string or a non-empty list"), "{e}");
        let e = error(
            r#"{"rules": [{"name": "a", "when": {"field": "to", "exists": true}, "then": ["keep"]}]}"#,
        );
        assert!(e.contains("only applies to a \"header\""), "{e}");
        let e = error(
            r#"{"rules": [{"name": "a", "when": {"all": []}, "then": ["keep"], "colour": 1}]}"#,
        );
        assert!(e.contains("rules[0].colour: unknown field `colour`"), "{e}");
        let e = error(
            r#"{"rules": [{"name": "a", "when": {"all": [], "field": "to"}, "then": ["keep"]}]}"#,
        );
        assert!(e.contains("stand alone"), "{e}");
        let e = error(r#"{"rules": [{"name": "a", "when": {"all": []}, "then": []}]}"#);
        assert!(e.starts_with("rules[0].then: no actions"), "{e}");
        assert!(error("{").starts_with("configuration is not JSON"));
        assert_eq!(
            error("null"),
            "configuration must be an object with a \"rules\" array"
        );
    }
}
