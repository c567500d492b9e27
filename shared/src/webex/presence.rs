use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The fields of a `user-presence` item, in the order the presence webhook contract
/// (docs/presence-poller.md) shows them: the named fields of [`Person`], serialised in this order.
pub const PRESENCE_ITEM_FIELDS: [&str; 13] = [
    "id",
    "emails",
    "sipAddresses",
    "displayName",
    "nickName",
    "firstName",
    "lastName",
    "orgId",
    "status",
    "lastModified",
    "lastActivity",
    "type",
    "department",
];

/// A person as `GET /v1/people` returns it, with presence (`status`, `lastActivity`) — the item
/// type of the outbound `user-presence` body (the presence webhook contract,
/// docs/presence-poller.md). The contract's fields are named (in its order); every other field
/// Webex returns is kept in `extra`, after them, until the poller drops what it does not send.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Person {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emails: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sip_addresses: Option<Vec<SipAddress>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nick_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_activity: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "type")]
    pub person_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Person {
    /// Webex listed a presence: `status` is there and not empty. Webex omits it for people who
    /// disabled status sharing, outside the token's orgs, or when presence is unavailable.
    pub fn has_status(&self) -> bool {
        self.status.as_deref().is_some_and(|s| !s.is_empty())
    }

    /// Drops every field outside the contract's 13 except those `keep` accepts (by JSON name).
    pub fn retain_extra(&mut self, mut keep: impl FnMut(&str) -> bool) {
        self.extra.retain(|name, _| keep(name));
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SipAddress {
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "type")]
    pub address_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary: Option<bool>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// docs/reliability.md, finding 3: without serde_json's float_roundtrip an 82-digit number
    /// came back with its last digit changed.
    #[test]
    fn a_long_number_in_an_unmodelled_field_round_trips_exactly() {
        let digits = format!("7{}948", "3".repeat(78));
        let text = format!(r#"{{"id":"p","x":{digits}}}"#);
        let p: Person = serde_json::from_str(&text).unwrap();
        let again: Person = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
        assert_eq!(again, p);
    }

    #[test]
    fn the_named_fields_serialise_in_the_contracts_order() {
        let all: Map<String, Value> = PRESENCE_ITEM_FIELDS
            .iter()
            .rev()
            .map(|f| {
                (
                    f.to_string(),
                    json!(if *f == "emails" {
                        json!(["e"])
                    } else if *f == "sipAddresses" {
                        json!([])
                    } else {
                        json!("v")
                    }),
                )
            })
            .collect();
        let mut p: Person = serde_json::from_value(Value::Object(all)).unwrap();
        assert!(
            p.extra.is_empty(),
            "every contract field is a named one: {:?}",
            p.extra
        );
        p.extra.insert("title".into(), json!("t"));
        let out: Map<String, Value> =
            serde_json::from_value(serde_json::to_value(&p).unwrap()).unwrap();
        let keys: Vec<&str> = out.keys().map(String::as_str).collect();
        assert_eq!(keys[..13], PRESENCE_ITEM_FIELDS);
        assert_eq!(keys[13], "title");
        p.retain_extra(|_| false);
        assert_eq!(
            serde_json::to_value(&p).unwrap().as_object().unwrap().len(),
            13
        );
    }

    #[test]
    fn status_must_be_present_and_non_empty() {
        let p = |v: Value| serde_json::from_value::<Person>(v).unwrap().has_status();
        assert!(p(json!({"id": "a", "status": "active"})));
        assert!(!p(json!({"id": "a"})));
        assert!(!p(json!({"id": "a", "status": ""})));
        assert!(!p(json!({"id": "a", "status": null})));
    }
}
