//! Payload filters per webhook (docs/call-events.md#payload-filters): an object mapping dotted
//! paths into the event to a condition, every one of which must hold for the event to be
//! delivered. Parsed and validated once (the API at create and update, [`Filter::parse`]),
//! evaluated at fan-out ([`Filter::matches`]) so a filtered-out event costs no queue message.
//!
//! A condition is a scalar (equals), an array of scalars (in), or an object with exactly one of
//! `eq`, `ne`, `in`, `nin`, `prefix`, `exists`. Paths resolve in the event's filter document
//! ([`document`]): the Webex envelope for `telephony:*` (the body's `items`), the body itself for
//! every other type — so `data.personality` means the same for `telephony:*` and `call:*`.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::events::EventType;

/// At most this many conditions per filter.
pub const MAX_CONDITIONS: usize = 20;
/// At most this many characters per path.
pub const MAX_PATH_CHARS: usize = 200;
/// At most this many dotted segments per path.
pub const MAX_PATH_SEGMENTS: usize = 10;
/// At most this many values in an `in`/`nin` list.
pub const MAX_LIST_VALUES: usize = 100;
/// At most this many characters per string value.
pub const MAX_VALUE_CHARS: usize = 256;

/// The operators of an object condition, as spelled on the wire.
pub const OPERATORS: [&str; 6] = ["eq", "ne", "in", "nin", "prefix", "exists"];

/// A filter that cannot be accepted: `field` names the path (`filter.data.personality`) or the
/// operator (`filter.data.personality.gt`) at fault, as the API's 422 `field`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct FilterError {
    pub field: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Condition {
    Eq(Value),
    Ne(Value),
    In(Vec<Value>),
    Nin(Vec<Value>),
    Prefix(String),
    Exists(bool),
}

#[derive(Debug, Clone, PartialEq)]
struct Clause {
    path: Vec<String>,
    condition: Condition,
}

/// A validated filter. Serialises back to the object it was parsed from.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    clauses: Vec<Clause>,
    source: Map<String, Value>,
}

fn invalid(field: String, message: impl Into<String>) -> FilterError {
    FilterError {
        field,
        message: message.into(),
    }
}

fn shown(s: &str) -> String {
    s.chars().take(64).collect()
}

/// A scalar a condition may compare with: string (bounded), number, boolean or null.
fn scalar(v: &Value, field: &str) -> Result<Value, FilterError> {
    match v {
        Value::String(s) if s.chars().count() > MAX_VALUE_CHARS => Err(invalid(
            field.to_owned(),
            format!("`{field}`: a string value has at most {MAX_VALUE_CHARS} characters."),
        )),
        Value::String(_) | Value::Number(_) | Value::Bool(_) | Value::Null => Ok(v.clone()),
        _ => Err(invalid(
            field.to_owned(),
            format!(
                "`{field}`: values are strings, numbers, booleans or null, not objects or arrays."
            ),
        )),
    }
}

fn list(v: &Value, field: &str) -> Result<Vec<Value>, FilterError> {
    let Value::Array(items) = v else {
        return Err(invalid(
            field.to_owned(),
            format!("`{field}` must be an array of values."),
        ));
    };
    if items.is_empty() || items.len() > MAX_LIST_VALUES {
        return Err(invalid(
            field.to_owned(),
            format!("`{field}` must list 1–{MAX_LIST_VALUES} values."),
        ));
    }
    items.iter().map(|i| scalar(i, field)).collect()
}

fn path(raw: &str) -> Result<Vec<String>, FilterError> {
    let field = format!("filter.{}", shown(raw));
    let segments: Vec<String> = raw.split('.').map(str::to_owned).collect();
    if raw.is_empty()
        || raw.chars().count() > MAX_PATH_CHARS
        || segments.len() > MAX_PATH_SEGMENTS
        || segments.iter().any(|s| s.is_empty())
    {
        return Err(invalid(
            field,
            format!("`{}` is not a path: dotted names (an array element by its index, e.g. `data.redirections.0.reason`), at most {MAX_PATH_SEGMENTS} of them and {MAX_PATH_CHARS} characters, none empty.", shown(raw)),
        ));
    }
    Ok(segments)
}

fn condition(v: &Value, field: &str) -> Result<Condition, FilterError> {
    match v {
        Value::Array(_) => list(v, field).map(Condition::In),
        Value::Object(op) => {
            let mut ops = op.iter();
            let (Some((name, arg)), None) = (ops.next(), ops.next()) else {
                return Err(invalid(
                    field.to_owned(),
                    format!(
                        "`{field}`: a condition object has exactly one operator, one of {}.",
                        OPERATORS.join(", ")
                    ),
                ));
            };
            let at = format!("{field}.{}", shown(name));
            match name.as_str() {
                "eq" => scalar(arg, &at).map(Condition::Eq),
                "ne" => scalar(arg, &at).map(Condition::Ne),
                "in" => list(arg, &at).map(Condition::In),
                "nin" => list(arg, &at).map(Condition::Nin),
                "prefix" => match arg {
                    Value::String(_) => scalar(arg, &at).map(|v| match v {
                        Value::String(s) => Condition::Prefix(s),
                        _ => unreachable!("scalar keeps a string a string"),
                    }),
                    _ => Err(invalid(at.clone(), format!("`{at}` must be a string."))),
                },
                "exists" => match arg {
                    Value::Bool(b) => Ok(Condition::Exists(*b)),
                    _ => Err(invalid(
                        at.clone(),
                        format!("`{at}` must be true or false."),
                    )),
                },
                _ => Err(invalid(
                    at,
                    format!(
                        "`{}` is not an operator; operators: {}.",
                        shown(name),
                        OPERATORS.join(", ")
                    ),
                )),
            }
        }
        _ => scalar(v, field).map(Condition::Eq),
    }
}

impl Filter {
    /// Validates a filter as sent to the API: an object of 1–[`MAX_CONDITIONS`] path →
    /// condition entries.
    pub fn parse(v: &Value) -> Result<Filter, FilterError> {
        let Value::Object(map) = v else {
            return Err(invalid(
                "filter".into(),
                "`filter` must be an object mapping dotted paths to conditions.",
            ));
        };
        if map.is_empty() || map.len() > MAX_CONDITIONS {
            return Err(invalid(
                "filter".into(),
                format!("`filter` must have 1–{MAX_CONDITIONS} conditions."),
            ));
        }
        let clauses = map
            .iter()
            .map(|(raw, cond)| {
                let path = path(raw)?;
                let condition = condition(cond, &format!("filter.{}", shown(raw)))?;
                Ok(Clause { path, condition })
            })
            .collect::<Result<Vec<_>, FilterError>>()?;
        Ok(Filter {
            clauses,
            source: map.clone(),
        })
    }

    /// Does the event whose filter document is `doc` ([`document`]) pass every condition?
    pub fn matches(&self, doc: &Value) -> bool {
        self.clauses.iter().all(|c| c.holds(doc))
    }

    /// The filter as the object it was parsed from.
    pub fn as_json(&self) -> &Map<String, Value> {
        &self.source
    }
}

/// The part of an event body that filter paths resolve in: the Webex envelope (`items`) of a
/// `telephony:*` body, the whole body otherwise.
pub fn document(event_type: EventType, body: &Value) -> &Value {
    match event_type {
        EventType::TelephonyCreated | EventType::TelephonyUpdated | EventType::TelephonyDeleted => {
            body.get("items").unwrap_or(body)
        }
        _ => body,
    }
}

/// A filter the catalogue shows (`GET /api/hooks/event-types`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FilterExample {
    pub description: &'static str,
    pub filter: Value,
}

/// The catalogue's filter examples for an event type: only inbound external calls, only one call
/// queue (telephony and call events; none for the other types).
pub fn examples(t: EventType) -> Vec<FilterExample> {
    let telephony = matches!(
        t,
        EventType::TelephonyCreated | EventType::TelephonyUpdated | EventType::TelephonyDeleted
    );
    if !telephony && !t.is_call_event() {
        return Vec::new();
    }
    let mut out = vec![FilterExample {
        description: "Only inbound calls from outside the organisation.",
        filter: serde_json::json!({"data.personality": "terminator", "data.remoteParty.callType": "external"}),
    }];
    out.push(FilterExample {
        description: if telephony {
            "Only calls that came through one call queue (Webex's `disconnected` event carries no redirections, so it does not pass; the call:* events carry the leg's)."
        } else {
            "Only calls that came through one call queue."
        },
        filter: serde_json::json!({"data.redirections.0.reason": "callQueue", "data.redirections.0.redirectingParty.name": "Sales Queue"}),
    });
    if t == EventType::CallEnded {
        out.push(FilterExample {
            description: "Only missed calls (for a missed-call follow-up).",
            filter: serde_json::json!({"data.outcome": {"in": ["missed"]}}),
        });
    }
    out
}

fn lookup<'a>(doc: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(doc, |at, seg| match at {
        Value::Object(m) => m.get(seg),
        // An index in its plain form only (`1`, not `01`), as `pruned` keeps it.
        Value::Array(a) => seg
            .parse::<usize>()
            .ok()
            .filter(|i| i.to_string() == *seg)
            .and_then(|i| a.get(i)),
        _ => None,
    })
}

/// JSON equality, numbers by value (`1` equals `1.0`).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x == y || x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

impl Clause {
    fn holds(&self, doc: &Value) -> bool {
        let found = lookup(doc, &self.path);
        match (&self.condition, found) {
            (Condition::Exists(want), v) => v.is_some() == *want,
            (Condition::Eq(x), Some(v)) => same(v, x),
            (Condition::In(xs), Some(v)) => xs.iter().any(|x| same(v, x)),
            (Condition::Prefix(p), Some(Value::String(s))) => s.starts_with(p.as_str()),
            // A missing value is not equal to, and not in, anything.
            (Condition::Ne(x), v) => !v.is_some_and(|v| same(v, x)),
            (Condition::Nin(xs), v) => !v.is_some_and(|v| xs.iter().any(|x| same(v, x))),
            (Condition::Eq(_) | Condition::In(_) | Condition::Prefix(_), _) => false,
        }
    }
}

impl Serialize for Filter {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.source.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Filter {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        Filter::parse(&v).map_err(|e| serde::de::Error::custom(format!("{}: {}", e.field, e)))
    }
}

mod pruned;
pub use pruned::document as pruned_document;

#[cfg(test)]
mod tests;
