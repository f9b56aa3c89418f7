//! The rules configuration, parsed by hand from JSON so every error names where it is.

use serde_json::{Map, Value};
use wasmail_plugin::{Action, Field};

/// A parsed, validated rule set.
#[derive(Debug, Clone)]
pub struct Rules {
    /// The rules, in evaluation order.
    pub rules: Vec<Rule>,
}

/// One rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Its name, for logs and errors.
    pub name: String,
    /// When it matches.
    pub when: Condition,
    /// What it returns when it matches.
    pub then: Vec<Action>,
    /// Whether later rules are skipped after it matched.
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
        let value: Value =
            serde_json::from_str(text).map_err(|e| format!("configuration is not JSON: {e}"))?;
        let Value::Object(top) = value else {
            return Err("configuration must be an object with a \"rules\" array".into());
        };
        only_keys(&top, &["rules"], "configuration")?;
        let Some(Value::Array(items)) = top.get("rules") else {
            return Err("configuration: \"rules\" must be an array".into());
        };
        if items.is_empty() {
            return Err("configuration: \"rules\" is empty".into());
        }
        if items.len() > MAX_RULES {
            return Err(format!(
                "configuration: {} rules; at most {MAX_RULES} are allowed",
                items.len()
            ));
        }
        let rules = items
            .iter()
            .enumerate()
            .map(|(i, v)| rule(v, &format!("rules[{i}]")))
            .collect::<Result<_, _>>()?;
        Ok(Self { rules })
    }
}

fn only_keys(object: &Map<String, Value>, allowed: &[&str], at: &str) -> Result<(), String> {
    match object.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(key) => Err(format!(
            "{at}: unknown key \"{key}\" (expected {})",
            allowed.join(", ")
        )),
        None => Ok(()),
    }
}

fn rule(value: &Value, at: &str) -> Result<Rule, String> {
    let Value::Object(obj) = value else {
        return Err(format!("{at}: a rule must be an object"));
    };
    only_keys(obj, &["name", "when", "then", "stop"], at)?;
    let name = match obj.get("name") {
        Some(Value::String(s)) => s.clone(),
        None => at.to_string(),
        Some(_) => return Err(format!("{at}.name: must be a string")),
    };
    let at = format!("{at} ({name})");
    let when = condition(
        obj.get("when")
            .ok_or_else(|| format!("{at}: \"when\" is missing"))?,
        &format!("{at}.when"),
    )?;
    let then = match obj.get("then") {
        Some(v) => serde_json::from_value::<Vec<Action>>(v.clone())
            .map_err(|e| format!("{at}.then: {e}"))?,
        None => return Err(format!("{at}: \"then\" is missing")),
    };
    if then.is_empty() && !matches!(obj.get("stop"), Some(Value::Bool(true))) {
        return Err(format!(
            "{at}.then: no actions (use [\"keep\"] with \"stop\": true to end evaluation)"
        ));
    }
    let stop = match obj.get("stop") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(format!("{at}.stop: must be true or false")),
    };
    Ok(Rule {
        name,
        when,
        then,
        stop,
    })
}

fn condition(value: &Value, at: &str) -> Result<Condition, String> {
    let Value::Object(obj) = value else {
        return Err(format!("{at}: a condition must be an object"));
    };
    for (key, make) in [
        ("all", Condition::All as fn(Vec<Condition>) -> Condition),
        ("any", Condition::Any),
    ] {
        if let Some(list) = obj.get(key) {
            only_keys(obj, &[key], at)?;
            let Value::Array(items) = list else {
                return Err(format!("{at}.{key}: must be an array"));
            };
            let inner = items
                .iter()
                .enumerate()
                .map(|(i, v)| condition(v, &format!("{at}.{key}[{i}]")))
                .collect::<Result<_, _>>()?;
            return Ok(make(inner));
        }
    }
    if let Some(inner) = obj.get("not") {
        only_keys(obj, &["not"], at)?;
        return Ok(Condition::Not(Box::new(condition(
            inner,
            &format!("{at}.not"),
        )?)));
    }
    test(obj, at).map(Condition::Test)
}

fn test(obj: &Map<String, Value>, at: &str) -> Result<Test, String> {
    only_keys(
        obj,
        &["field", "header", "contains", "equals", "matches", "exists"],
        at,
    )?;
    let field = match (obj.get("field"), obj.get("header")) {
        (Some(_), Some(_)) => {
            return Err(format!(
                "{at}: give either \"field\" or \"header\", not both"
            ));
        }
        (Some(Value::String(name)), None) => named_field(name).ok_or_else(|| {
            format!(
                "{at}.field: unknown field \"{name}\" (expected one of {FIELDS}, or use \"header\")"
            )
        })?,
        (None, Some(Value::String(name))) if !name.trim().is_empty() => Field::Header(name.clone()),
        (Some(_), None) => return Err(format!("{at}.field: must be a string")),
        (None, Some(_)) => return Err(format!("{at}.header: must be a non-empty header name")),
        (None, None) => {
            return Err(format!(
                "{at}: expected \"all\", \"any\", \"not\", or a test with \"field\" or \"header\""
            ));
        }
    };
    let ops: Vec<(&str, Op)> = [
        ("contains", Op::Contains),
        ("equals", Op::Equals),
        ("matches", Op::Matches),
        ("exists", Op::Exists),
    ]
    .into_iter()
    .filter(|(k, _)| obj.contains_key(*k))
    .collect();
    let [(key, op)] = ops.as_slice() else {
        return Err(format!(
            "{at}: give exactly one of \"contains\", \"equals\", \"matches\", \"exists\""
        ));
    };
    if *op == Op::Exists {
        if !matches!(field, Field::Header(_)) {
            return Err(format!("{at}.exists: only applies to a \"header\""));
        }
        return match obj.get("exists") {
            Some(Value::Bool(true)) => Ok(Test {
                field,
                op: Op::Exists,
                values: Vec::new(),
            }),
            _ => Err(format!(
                "{at}.exists: must be true (wrap the test in \"not\" for absence)"
            )),
        };
    }
    let values = match &obj[*key] {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| format!("{at}.{key}: every value must be a string"))
            })
            .collect::<Result<_, _>>()?,
        _ => {
            return Err(format!(
                "{at}.{key}: must be a string or a non-empty list of strings"
            ));
        }
    };
    Ok(Test {
        field,
        op: *op,
        values,
    })
}

fn named_field(name: &str) -> Option<Field> {
    Some(match name {
        "subject" => Field::Subject,
        "from" => Field::From,
        "to" => Field::To,
        "cc" => Field::Cc,
        "reply_to" => Field::ReplyTo,
        "body" => Field::Body,
        "text_body" => Field::TextBody,
        "html_body" => Field::HtmlBody,
        "attachment_names" => Field::AttachmentNames,
        _ => return None,
    })
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
        assert_eq!(rules.rules[1].then, vec![Action::MoveTo("Lists".into())]);
    }

    #[test]
    fn errors_name_the_place() {
        assert_eq!(
            error("[]"),
            "configuration must be an object with a \"rules\" array"
        );
        assert_eq!(
            error(r#"{"rules": []}"#),
            "configuration: \"rules\" is empty"
        );
        assert!(
            error(
                r#"{"rules": [{"when": {"field": "subjct", "contains": "x"}, "then": ["keep"]}]}"#
            )
            .starts_with("rules[0] (rules[0]).when.field: unknown field \"subjct\"")
        );
        assert!(error(r#"{"rules": [{"name": "a", "when": {"any": [{"field": "subject"}]}, "then": ["keep"]}]}"#)
            .starts_with("rules[0] (a).when.any[0]: give exactly one of"));
        assert!(error(r#"{"rules": [{"name": "a", "when": {"field": "to", "contains": "x"}, "then": [{"move": "x"}]}]}"#)
            .starts_with("rules[0] (a).then: unknown variant `move`"));
        assert!(error(r#"{"rules": [{"name": "a", "when": {"field": "to", "contains": 3}, "then": ["keep"]}]}"#)
            .contains("must be a string or a non-empty list"));
        assert!(error(r#"{"rules": [{"name": "a", "when": {"field": "to", "exists": true}, "then": ["keep"]}]}"#)
            .contains("only applies to a \"header\""));
        assert!(
            error(
                r#"{"rules": [{"name": "a", "when": {"all": []}, "then": ["keep"], "colour": 1}]}"#
            )
            .contains("unknown key \"colour\"")
        );
        assert!(error("{").starts_with("configuration is not JSON"));
    }
}
