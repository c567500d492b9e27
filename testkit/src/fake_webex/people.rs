//! `GET /v1/people` and `/v1/people/me` as webex-messaging.json describes them (`/paths/~1people/get`,
//! `#/components/schemas/Person`).

use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::{error, Fault, Inner, Token};

/// Webex's default page size.
const DEFAULT_MAX: usize = 100;
/// "If `callingData`=true, then `max` will not be more than 100."
const CALLING_DATA_MAX: usize = 100;
/// "If `locationId` is specified then `max` will not be more than 50."
const LOCATION_MAX: usize = 50;

pub(crate) fn param<'q>(query: &'q [(String, String)], key: &str) -> Option<&'q str> {
    query
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// The page size Webex applies: `max` (default 100), capped as the spec says.
pub(crate) fn page_size(query: &[(String, String)]) -> usize {
    let mut max = param(query, "max")
        .and_then(|m| m.parse().ok())
        .unwrap_or(DEFAULT_MAX);
    if param(query, "callingData") == Some("true") {
        max = max.min(CALLING_DATA_MAX);
    }
    if param(query, "locationId").is_some() {
        max = max.min(LOCATION_MAX);
    }
    max
}

/// Presence properties, which Webex leaves out for `id` lookups and `excludeStatus=true`.
fn without_presence(mut p: Value) -> Value {
    if let Some(o) = p.as_object_mut() {
        o.remove("status");
        o.remove("lastActivity");
    }
    p
}

pub(crate) fn list(s: &mut Inner, query: &[(String, String)], who: &Token) -> Response {
    let ids = param(query, "id").map(|ids| ids.split(',').map(str::to_owned).collect::<Vec<_>>());
    let named = param(query, "email").is_some() || param(query, "displayName").is_some();
    if !who.admin && !named && ids.is_none() {
        // "For most users, either the `email` or `displayName` parameter is required. Admin users
        // can omit these fields" (a bot is never an admin).
        return error(400, "Email, displayName, or id list should be specified.");
    }
    if let Some(org) = param(query, "orgId") {
        // "Only admin users of another organization (such as partners) may use this parameter."
        if org != who.org && !who.partner_of.iter().any(|o| o == org) {
            return error(403, "Not authorized to list people of that organization.");
        }
    }
    let max = page_size(query);
    if max == 0 {
        return error(400, "max must be a positive number.");
    }
    let offset: usize = param(query, "cursor")
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let page = offset / max;
    if let Some(i) = s
        .faults
        .iter()
        .position(|(p, _)| p.is_none_or(|p| p == page))
    {
        let (_, fault) = s.faults.remove(i).unwrap();
        return match fault {
            Fault::Status(code) => error(code, "scripted failure"),
            Fault::RateLimited {
                status,
                retry_after,
            } => {
                let mut r = error(status, "Too Many Requests");
                r.headers_mut()
                    .insert("retry-after", HeaderValue::from(retry_after));
                r
            }
        };
    }
    if offset == 0 {
        if let Some(next) = s.snapshots.pop_front() {
            s.people = next;
        }
    }
    let location = param(query, "locationId");
    let exclude_status = param(query, "excludeStatus") == Some("true");
    let listed: Vec<Value> = s
        .people
        .iter()
        .filter(|p| {
            ids.as_ref().is_none_or(|ids| {
                p["id"]
                    .as_str()
                    .is_some_and(|id| ids.iter().any(|i| i == id))
            })
        })
        // People placed elsewhere are not in the location's listing.
        .filter(|p| location.is_none_or(|l| p["locationId"].as_str().is_none_or(|pl| pl == l)))
        .map(|p| {
            if ids.is_some() || exclude_status {
                without_presence(p.clone())
            } else {
                p.clone()
            }
        })
        .collect();
    super::page(&s.base, "/people", query, &listed, offset, max)
}

pub(crate) fn me(who: &Token) -> Response {
    axum::Json(json!({
        "id": who.person,
        "emails": ["me@example.com"],
        "displayName": "Fake Me",
        "orgId": who.org,
        "type": who.kind,
        "roles": if who.admin { json!(["full_admin"]) } else { json!([]) },
    }))
    .into_response()
}

/// A Webex Person with every property of `#/components/schemas/Person`, in the spec's order;
/// `status: None` leaves `status` out, as Webex does when status sharing is off.
pub fn person(i: usize, status: Option<&str>) -> Value {
    let mut p = json!({
        "id": format!("Y2lzY29zcGFyazovL3VzL1BFT1BMRS{i:06}"),
        "emails": [format!("user{i}@example.com")],
        "phoneNumbers": [{"type": "work", "value": format!("+1 555 {i:04}"), "primary": true}],
        "extension": format!("{}", 1000 + i),
        "locationId": "Y2lzY29zcGFyazovL3VzL0xPQ0FUSU9OL2xvYy0x",
        "displayName": format!("User {i}"),
        "nickName": format!("U{i}"),
        "firstName": "User",
        "lastName": format!("{i}"),
        "avatar": format!("https://avatar.example.com/{i}"),
        "orgId": super::ORG,
        "roles": [],
        "licenses": ["Y2lzY29zcGFyazovL3VzL0xJQ0VOU0UvY2FsbGluZw"],
        "department": "Engineering",
        "manager": "Boss",
        "managerId": "Y2lzY29zcGFyazovL3VzL1BFT1BMRS9ib3Nz",
        "title": "Engineer",
        "addresses": [{"type": "work", "country": "US", "locality": "Springfield", "streetAddress": format!("{i} Main St")}],
        "created": "2024-01-01T00:00:00.000Z",
        "lastModified": "2025-06-30T10:05:00.000Z",
        "timezone": "America/New_York",
        "lastActivity": "2025-06-30T10:10:00.000Z",
        "siteUrls": ["example.webex.com#attendee"],
        "sipAddresses": [{"type": "cloud-calling", "value": format!("user{i}@example.calls.webex.com"), "primary": true}],
        "xmppFederationJid": format!("user{i}@example.com"),
        "status": status,
        "invitePending": false,
        "loginEnabled": true,
        "type": "person",
    });
    if status.is_none() {
        p.as_object_mut().unwrap().remove("status");
    }
    p
}

/// `n` people with `status` (see [`person`]).
pub fn people(n: usize, status: Option<&str>) -> Vec<Value> {
    (0..n).map(|i| person(i, status)).collect()
}
