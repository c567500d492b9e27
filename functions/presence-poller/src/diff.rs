//! The pure presence diff: which people of a complete listing changed since the last-known state.
//!
//! A person is compared through a *fingerprint* of the configured fields (`PRESENCE_DIFF_FIELDS`,
//! default just `status`). With a single field whose value is a string the fingerprint is that
//! string (so the stored state stays readable, e.g. `active`); otherwise it is a compact JSON array
//! of the fields' values (`null` for a missing field).
//!
//! A person listed without `status` is never a change: Webex omits it when the person disabled
//! status sharing or presence is unavailable, which says nothing about their presence, so their
//! last known state is kept and they are not emitted (the presence webhook contract's items always
//! carry a `status`). The diff only sees what is sent: the listing it gets is already cut down to
//! the contract's fields plus `PRESENCE_EXTRA_FIELDS` ([`ExtraFields`]), and a diff field outside
//! those is refused by the configuration ([`DiffFields::unsent`]).

use std::collections::HashMap;
use std::fmt::Write as _;

use relay_shared::webex::{Person, PRESENCE_ITEM_FIELDS};
use serde_json::Value;

/// One field of a Webex person that the diff compares, named by its Webex JSON name (the
/// camelCase variant name).
#[derive(Debug, Clone, PartialEq, Eq, strum::EnumString, strum::AsRefStr)]
#[strum(serialize_all = "camelCase")]
pub enum Field {
    Status,
    LastActivity,
    LastModified,
    DisplayName,
    NickName,
    FirstName,
    LastName,
    Emails,
    SipAddresses,
    OrgId,
    Type,
    Department,
    /// Any other top-level field Webex returns (kept in `Person::extra`), by its JSON name.
    #[strum(default)]
    Other(String),
}

impl Field {
    /// A field by its Webex JSON name (`status`, `lastActivity`, `displayName`, …).
    pub fn from_name(name: &str) -> Field {
        name.parse()
            .expect("an unknown name is `Other`: parsing cannot fail")
    }

    pub fn name(&self) -> &str {
        match self {
            Field::Other(name) => name,
            known => known.as_ref(),
        }
    }

    /// The field's value as a string, when it is one (the fast path of the default diff).
    fn as_str<'p>(&self, p: &'p Person) -> Option<Option<&'p str>> {
        let s = match self {
            Field::Status => p.status.as_deref(),
            Field::LastActivity => p.last_activity.as_deref(),
            Field::LastModified => p.last_modified.as_deref(),
            Field::DisplayName => p.display_name.as_deref(),
            Field::NickName => p.nick_name.as_deref(),
            Field::FirstName => p.first_name.as_deref(),
            Field::LastName => p.last_name.as_deref(),
            Field::OrgId => p.org_id.as_deref(),
            Field::Type => p.person_type.as_deref(),
            Field::Department => p.department.as_deref(),
            Field::Other(name) => match p.extra.get(name) {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s.as_str()),
                Some(_) => return None,
            },
            Field::Emails | Field::SipAddresses => return None,
        };
        Some(s)
    }

    /// Appends the field's value as compact JSON (`null` when missing).
    fn write_json(&self, p: &Person, out: &mut String) {
        let json = match self {
            Field::Emails => serde_json::to_string(&p.emails),
            Field::SipAddresses => serde_json::to_string(&p.sip_addresses),
            Field::Other(name) => serde_json::to_string(p.extra.get(name).unwrap_or(&Value::Null)),
            _ => serde_json::to_string(&self.as_str(p).flatten()),
        };
        out.push_str(&json.expect("serialising JSON values cannot fail"));
    }
}

/// The fields compared, in order (`PRESENCE_DIFF_FIELDS`, comma-separated Webex field names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiffFields(Vec<Field>);

impl Default for DiffFields {
    fn default() -> Self {
        DiffFields(vec![Field::Status])
    }
}

impl DiffFields {
    /// `status`, `status,lastActivity`, `status, displayName, department`, …
    pub fn parse(spec: &str) -> Result<DiffFields, String> {
        let mut fields = Vec::new();
        for name in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if name == "id" {
                return Err("`id` identifies a person and cannot be a diff field".into());
            }
            let f = Field::from_name(name);
            if !fields.contains(&f) {
                fields.push(f);
            }
        }
        if fields.is_empty() {
            return Err("expected a comma-separated list of Webex person fields, e.g. `status` or `status,lastActivity`".into());
        }
        Ok(DiffFields(fields))
    }

    pub fn fields(&self) -> &[Field] {
        &self.0
    }

    /// The comma-separated names (for logs and the summary).
    pub fn names(&self) -> String {
        self.0.iter().map(Field::name).collect::<Vec<_>>().join(",")
    }

    /// Writes `person`'s fingerprint into `out` (cleared first), reusing its allocation.
    pub fn fingerprint_into(&self, person: &Person, out: &mut String) {
        out.clear();
        if let [single] = self.0.as_slice() {
            match single.as_str(person) {
                Some(Some(s)) => out.push_str(s),
                Some(None) => {}
                None => single.write_json(person, out),
            }
            return;
        }
        out.push('[');
        for (i, f) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            f.write_json(person, out);
        }
        out.push(']');
    }

    /// The fields compared that are not sent (neither a contract field nor in `extra`): a change
    /// only there would emit an unchanged item, so the configuration refuses them.
    pub fn unsent<'a>(&'a self, extra: &ExtraFields) -> Vec<&'a str> {
        self.0
            .iter()
            .filter_map(|f| match f {
                Field::Other(name) if !extra.contains(name) => Some(name.as_str()),
                _ => None,
            })
            .collect()
    }

    pub fn fingerprint(&self, person: &Person) -> String {
        let mut s = String::new();
        self.fingerprint_into(person, &mut s);
        s
    }
}

/// The Webex person fields sent besides the presence contract's 13 (`PRESENCE_EXTRA_FIELDS`,
/// comma-separated JSON names, e.g. `phoneNumbers,extension`). Naming a contract field changes
/// nothing (it is always sent). Default: none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExtraFields(Vec<String>);

impl ExtraFields {
    pub fn parse(spec: &str) -> Result<ExtraFields, String> {
        let mut names: Vec<String> = Vec::new();
        for name in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!(
                    "`{name}` is not a Webex person field name (comma-separated names, e.g. `phoneNumbers,extension`)"
                ));
            }
            if !PRESENCE_ITEM_FIELDS.contains(&name) && !names.iter().any(|n| n == name) {
                names.push(name.to_owned());
            }
        }
        Ok(ExtraFields(names))
    }

    pub fn contains(&self, name: &str) -> bool {
        self.0.iter().any(|n| n == name)
    }

    /// The comma-separated names (for logs).
    pub fn names(&self) -> String {
        self.0.join(",")
    }

    /// Cuts `person` down to what is sent: the contract's fields and these.
    pub fn apply(&self, person: &mut Person) {
        person.retain_extra(|name| self.contains(name));
    }
}

/// One changed person: its index in the listing and its new fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub index: usize,
    pub fingerprint: String,
    /// `false` for a person not seen before (added to the org since the state was recorded).
    pub known_before: bool,
}

/// The people of `listing` whose fingerprint differs from `known` (person id → fingerprint), in
/// listing order. People absent from the listing are not changes (the caller only diffs complete
/// listings, and a person leaving the org is not a presence change), nor are people listed
/// without `status` (their known state stays). A person not in `known` is a change
/// (`known_before == false`).
pub fn diff(
    known: &HashMap<String, String>,
    listing: &[Person],
    fields: &DiffFields,
) -> Vec<Change> {
    let mut buf = String::with_capacity(64);
    let mut changes = Vec::new();
    for (index, person) in listing.iter().enumerate() {
        if !person.has_status() {
            continue;
        }
        fields.fingerprint_into(person, &mut buf);
        match known.get(person.id.as_str()) {
            Some(previous) if *previous == buf => {}
            previous => changes.push(Change {
                index,
                fingerprint: buf.clone(),
                known_before: previous.is_some(),
            }),
        }
    }
    changes
}

/// Every person of the listing with a `status`, with its fingerprint (the baseline of a first
/// run). People without one are left out: they are recorded (and emitted) once a status appears.
pub fn baseline(listing: &[Person], fields: &DiffFields) -> Vec<Change> {
    listing
        .iter()
        .enumerate()
        .filter(|(_, p)| p.has_status())
        .map(|(index, p)| Change {
            index,
            fingerprint: fields.fingerprint(p),
            known_before: false,
        })
        .collect()
}

/// A short, stable description of a set of changes for logs (`3 changed: a→active, …`).
pub fn describe(listing: &[Person], changes: &[Change], limit: usize) -> String {
    let mut s = format!("{} changed", changes.len());
    for (i, c) in changes.iter().take(limit).enumerate() {
        let _ = write!(
            s,
            "{}{}→{}",
            if i == 0 { ": " } else { ", " },
            listing[c.index].id,
            c.fingerprint
        );
    }
    if changes.len() > limit {
        s.push_str(", …");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn person(v: Value) -> Person {
        serde_json::from_value(v).unwrap()
    }

    fn known(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn status_change_is_a_change_last_activity_alone_is_not() {
        let listing = vec![
            person(json!({"id":"a","status":"active","lastActivity":"2025-06-30T10:10:00Z"})),
            person(json!({"id":"b","status":"DoNotDisturb","lastActivity":"2025-06-30T10:11:00Z"})),
            person(json!({"id":"c","status":"inactive"})),
        ];
        let fields = DiffFields::default();
        let k = known(&[("a", "active"), ("b", "active"), ("c", "inactive")]);
        let changes = diff(&k, &listing, &fields);
        assert_eq!(
            changes,
            vec![Change {
                index: 1,
                fingerprint: "DoNotDisturb".into(),
                known_before: true
            }]
        );
    }

    #[test]
    fn new_people_are_changes_and_absent_people_are_not() {
        let listing = vec![
            person(json!({"id":"a","status":"active"})),
            person(json!({"id":"n","status":"active"})),
        ];
        let k = known(&[("a", "active"), ("gone", "active")]);
        let changes = diff(&k, &listing, &DiffFields::default());
        assert_eq!(
            changes,
            vec![Change {
                index: 1,
                fingerprint: "active".into(),
                known_before: false
            }]
        );
    }

    #[test]
    fn a_person_without_status_is_never_a_change() {
        let listing = vec![
            person(json!({"id":"a"})),
            person(json!({"id":"b","status":""})),
            person(json!({"id":"new","displayName":"N"})),
            person(json!({"id":"c","status":"call"})),
        ];
        let fields = DiffFields::default();
        let k = known(&[("a", "active"), ("b", "inactive"), ("c", "active")]);
        let changes = diff(&k, &listing, &fields);
        assert_eq!(
            changes.iter().map(|c| c.index).collect::<Vec<_>>(),
            vec![3],
            "only c: a and b keep their known state, the new person waits for a status"
        );
        // Whatever the diff fields: no status, no change.
        let fields = DiffFields::parse("displayName").unwrap();
        assert!(diff(&known(&[]), &listing[..3], &fields).is_empty());
        // Nor part of a baseline.
        let b = baseline(&listing, &DiffFields::default());
        assert_eq!(b.iter().map(|c| c.index).collect::<Vec<_>>(), vec![3]);
        // An empty fingerprint stored by an older version is a state like any other.
        assert_eq!(
            diff(&known(&[("c", "")]), &listing, &DiffFields::default()).len(),
            1
        );
    }

    #[test]
    fn extra_fields_are_what_is_sent_besides_the_contract() {
        let extra = ExtraFields::parse(" phoneNumbers, status ,title,phoneNumbers").unwrap();
        assert_eq!(
            extra.names(),
            "phoneNumbers,title",
            "contract fields are always sent"
        );
        assert_eq!(ExtraFields::parse(" , ").unwrap(), ExtraFields::default());
        assert!(ExtraFields::parse("phone numbers").is_err());
        let mut p =
            person(json!({"id":"a","status":"active","title":"t","phoneNumbers":[],"manager":"m"}));
        extra.apply(&mut p);
        assert_eq!(
            serde_json::to_string(&p).unwrap(),
            r#"{"id":"a","status":"active","title":"t","phoneNumbers":[]}"#
        );
        ExtraFields::default().apply(&mut p);
        assert_eq!(
            serde_json::to_string(&p).unwrap(),
            r#"{"id":"a","status":"active"}"#
        );

        // A diff field must be sent: a change only in an unsent field would emit nothing new.
        let fields = DiffFields::parse("status,title,manager,displayName").unwrap();
        assert_eq!(fields.unsent(&extra), vec!["manager"]);
        assert!(DiffFields::default()
            .unsent(&ExtraFields::default())
            .is_empty());
    }

    #[test]
    fn several_fields_fingerprint_as_a_json_array() {
        let fields = DiffFields::parse(" status , lastActivity,customThing,emails ").unwrap();
        assert_eq!(fields.names(), "status,lastActivity,customThing,emails");
        let p = person(json!({"id":"a","status":"active","customThing":{"x":1},"emails":["a@x"]}));
        assert_eq!(fields.fingerprint(&p), r#"["active",null,{"x":1},["a@x"]]"#);
        let p2 = person(
            json!({"id":"a","status":"active","lastActivity":"t2","customThing":{"x":1},"emails":["a@x"]}),
        );
        let k: HashMap<String, String> = [("a".to_string(), fields.fingerprint(&p))].into();
        assert_eq!(
            diff(&k, &[p2], &fields).len(),
            1,
            "lastActivity counts once configured"
        );
    }

    #[test]
    fn single_non_string_field_uses_json() {
        let fields = DiffFields::parse("emails").unwrap();
        let p = person(json!({"id":"a","emails":["a@x","b@x"]}));
        assert_eq!(fields.fingerprint(&p), r#"["a@x","b@x"]"#);
        let fields = DiffFields::parse("score").unwrap();
        assert_eq!(
            fields.fingerprint(&person(json!({"id":"a","score":3}))),
            "3"
        );
        assert_eq!(
            fields.fingerprint(&person(json!({"id":"a","score":"3"}))),
            "3"
        );
    }

    #[test]
    fn field_names_are_the_webex_json_names() {
        let spec = "status,lastActivity,lastModified,displayName,nickName,firstName,lastName,emails,sipAddresses,orgId,type,department,customThing";
        let fields = DiffFields::parse(spec).unwrap();
        assert_eq!(fields.names(), spec);
        assert_eq!(fields.fields()[10], Field::Type);
        assert_eq!(fields.fields()[12], Field::Other("customThing".into()));
        assert_eq!(Field::from_name("Status"), Field::Other("Status".into()));
    }

    #[test]
    fn parse_rejects_empty_and_id() {
        assert!(DiffFields::parse("").is_err());
        assert!(DiffFields::parse(" , ").is_err());
        assert!(DiffFields::parse("status,id").is_err());
        assert_eq!(
            DiffFields::parse("status,status").unwrap(),
            DiffFields::default()
        );
    }

    #[test]
    fn baseline_and_describe() {
        let listing = vec![
            person(json!({"id":"a","status":"active"})),
            person(json!({"id":"b","status":"inactive"})),
        ];
        let b = baseline(&listing, &DiffFields::default());
        assert_eq!(b.len(), 2);
        assert_eq!(describe(&listing, &b, 1), "2 changed: a→active, …");
    }
}
