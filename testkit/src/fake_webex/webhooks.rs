//! Webex's token refresh (`POST /v1/access_token`), webhooks (`/v1/webhooks`, webex-messaging.json)
//! with their deliveries, and webhook interest registrations (`/v1/telephony/webhookInterestRegistrations`,
//! the Calling spec).

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::{
    error, people::param, FakeWebex, Inner, Refresh, Token, Webhook, REFRESH_TOKEN_EXPIRES_IN,
};

/// The resources the spec lets `ownedBy: org` cover (`#/components/schemas/Webhook/properties/ownedBy`);
/// `telephony_calls` is not one of them.
pub const ORG_OWNED_RESOURCES: &[&str] = &[
    "meetings",
    "recordings",
    "convergedRecordings",
    "meetingParticipants",
    "meetingTranscripts",
    "videoMeshAlerts",
    "controlHubAlerts",
    "rooms",
    "messaging",
    "adminBatchJobs",
];

fn oauth_error(status: u16, code: &str, description: &str) -> Response {
    (
        StatusCode::from_u16(status).unwrap(),
        axum::Json(json!({"error": code, "error_description": description})),
    )
        .into_response()
}

/// `grant_type=refresh_token`: a new access token and a NEW refresh token; the one presented is spent.
pub(crate) fn refresh(s: &mut Inner, form: &str, at: Instant) -> Response {
    let form: Vec<(String, String)> = url::form_urlencoded::parse(form.as_bytes())
        .into_owned()
        .collect();
    let field = |k: &str| param(&form, k).unwrap_or_default().to_owned();
    let (client_id, used) = (field("client_id"), field("refresh_token"));
    let mut record = Refresh {
        client_id: client_id.clone(),
        used: used.clone(),
        issued_access: None,
        issued_refresh: None,
        status: 400,
        at,
    };
    let resp = if field("grant_type") != "refresh_token" {
        oauth_error(
            400,
            "unsupported_grant_type",
            "grant_type must be refresh_token",
        )
    } else if s
        .clients
        .get(&client_id)
        .is_none_or(|c| c.secret != field("client_secret"))
    {
        record.status = 401;
        oauth_error(
            401,
            "invalid_client",
            "unknown client or wrong client_secret",
        )
    } else if s.refresh_tokens.get(&used) != Some(&client_id) {
        oauth_error(
            400,
            "invalid_grant",
            "the refresh token is invalid or was already used",
        )
    } else if s.fail_refreshes > 0 {
        s.fail_refreshes -= 1;
        oauth_error(400, "invalid_grant", "scripted refresh failure")
    } else {
        let lifetime = s.clients[&client_id].access_lifetime;
        let (access, refresh) = (s.mint("access"), s.mint("refresh"));
        s.refresh_tokens.remove(&used);
        s.refresh_tokens.insert(refresh.clone(), client_id.clone());
        let mut who = s.identity();
        who.client = client_id;
        who.expires_at = Some(s.now() + lifetime);
        s.tokens.insert(access.clone(), who);
        record.status = 200;
        record.issued_access = Some(access.clone());
        record.issued_refresh = Some(refresh.clone());
        axum::Json(json!({
            "access_token": access,
            "expires_in": lifetime.as_secs().max(1),
            "refresh_token": refresh,
            "refresh_token_expires_in": REFRESH_TOKEN_EXPIRES_IN,
            "token_type": "Bearer",
        }))
        .into_response()
    };
    s.refreshes.push(record);
    resp
}

fn visible(hook: &Value, who: &Token) -> bool {
    hook["createdBy"] == json!(who.person)
        || (hook["ownedBy"] == "org" && hook["orgId"] == json!(who.org) && who.admin)
}

pub(crate) fn list(s: &mut Inner, query: &[(String, String)], who: &Token) -> Response {
    let org_only = match param(query, "ownedBy") {
        None => false,
        Some("org") => true,
        Some(_) => return error(400, "ownedBy only allows org."),
    };
    let max: usize = param(query, "max")
        .and_then(|m| m.parse().ok())
        .unwrap_or(100);
    if max == 0 {
        return error(400, "max must be a positive number.");
    }
    let max = s.webhooks_per_page.map_or(max, |cap| max.min(cap));
    let offset: usize = param(query, "cursor")
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let hooks: Vec<Value> = s
        .webhooks
        .iter()
        .map(|h| &h.json)
        .filter(|h| visible(h, who) && (!org_only || h["ownedBy"] == "org"))
        .cloned()
        .collect();
    super::page(&s.base, "/webhooks", query, &hooks, offset, max)
}

fn json_body(body: &str) -> Result<Value, Response> {
    serde_json::from_str::<Value>(body)
        .ok()
        .filter(Value::is_object)
        .ok_or_else(|| error(400, "The request body must be a JSON object."))
}

fn required(body: &Value, keys: &[&str]) -> Result<(), Response> {
    match keys.iter().find(|k| !body[**k].is_string()) {
        Some(k) => Err(error(400, &format!("{k} is required."))),
        None => Ok(()),
    }
}

pub(crate) fn create(s: &mut Inner, body: &str, who: &Token) -> Response {
    let body = match json_body(body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    if let Err(r) = required(&body, &["name", "targetUrl", "resource", "event"]) {
        return r;
    }
    let owned_by = body["ownedBy"].as_str().unwrap_or("creator");
    let resource = body["resource"].as_str().unwrap_or_default();
    match owned_by {
        "creator" => {}
        "org" if !ORG_OWNED_RESOURCES.contains(&resource) => {
            return error(
                400,
                &format!("ownedBy org is not supported for {resource}."),
            );
        }
        "org" if !who.admin => return error(403, "ownedBy org requires an admin token."),
        "org" => {}
        _ => return error(400, "ownedBy must be creator or org."),
    }
    let id = s.mint("Y2lzY29zcGFyazovL3VzL1dFQkhPT0svZmFrZQ");
    let mut hook = json!({
        "id": id,
        "name": body["name"],
        "targetUrl": body["targetUrl"],
        "resource": resource,
        "event": body["event"],
        "orgId": who.org,
        "createdBy": who.person,
        "appId": who.client,
        "ownedBy": owned_by,
        "status": "active",
        "created": s.wall().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    });
    for k in ["filter", "secret"] {
        if body[k].is_string() {
            hook[k] = body[k].clone();
        }
    }
    s.webhooks.push(Webhook {
        json: hook.clone(),
        failures: 0,
    });
    axum::Json(hook).into_response()
}

/// `GET`, `PUT` and `DELETE /v1/webhooks/{id}`.
pub(crate) fn one(s: &mut Inner, method: &str, id: &str, body: &str, who: &Token) -> Response {
    let Some(i) = s
        .webhooks
        .iter()
        .position(|h| h.json["id"] == id && visible(&h.json, who))
    else {
        return error(404, "The requested resource could not be found.");
    };
    match method {
        "GET" => axum::Json(s.webhooks[i].json.clone()).into_response(),
        "DELETE" => {
            s.webhooks.remove(i);
            StatusCode::NO_CONTENT.into_response()
        }
        "PUT" => {
            let body = match json_body(body) {
                Ok(b) => b,
                Err(r) => return r,
            };
            if let Err(r) = required(&body, &["name", "targetUrl"]) {
                return r;
            }
            // "You cannot use this call to deactivate a webhook, only to activate a webhook that
            // was auto deactivated." (the PUT's `status` enum is only `active`)
            match body["status"].as_str() {
                None | Some("active") => {}
                Some(other) => {
                    return error(400, &format!("status {other} is not allowed; only active."))
                }
            }
            let hook = &mut s.webhooks[i];
            // "The fields that can be updated are name, targetURL, secret and status. All other
            // fields, if supplied, are ignored."
            for k in ["name", "targetUrl", "secret"] {
                if body[k].is_string() {
                    hook.json[k] = body[k].clone();
                }
            }
            if body["status"] == "active" {
                hook.json["status"] = json!("active");
                hook.failures = 0;
            }
            axum::Json(hook.json.clone()).into_response()
        }
        _ => error(405, "Method not allowed."),
    }
}

/// One registration per user and client, upserted by POST; admin tokens only.
pub(crate) fn interests(s: &mut Inner, method: &str, body: &str, who: &Token) -> Response {
    if !who.admin {
        return error(
            403,
            "This API is reserved for administrators (spark-admin:calls_read).",
        );
    }
    let key = (who.person.clone(), who.client.clone());
    match method {
        "POST" => {
            let body = match json_body(body) {
                Ok(b) => b,
                Err(r) => return r,
            };
            if body["interests"].as_array().is_none_or(Vec::is_empty) {
                return error(400, "At least one item in interests is required.");
            }
            // "When omitted, the registration defaults to expire after 60 days."
            let days = body["duration"].as_i64().unwrap_or(60);
            let expires_at = s.wall() + chrono::Duration::days(days);
            s.interests.insert(
                key,
                super::Interest {
                    interests: body["interests"].clone(),
                    expires_at,
                },
            );
            StatusCode::NO_CONTENT.into_response()
        }
        "GET" => match s.interests.get(&key) {
            Some(i) if i.expires_at > s.wall() => axum::Json(json!({
                "interests": i.interests,
                "expiresAt": i.expires_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            }))
            .into_response(),
            _ => error(404, "No webhook interest registration."),
        },
        "DELETE" => {
            s.interests.remove(&key);
            StatusCode::NO_CONTENT.into_response()
        }
        _ => error(405, "Method not allowed."),
    }
}

impl FakeWebex {
    /// Every webhook registered, as Webex returns them.
    pub fn webhooks(&self) -> Vec<Value> {
        self.lock()
            .webhooks
            .iter()
            .map(|h| h.json.clone())
            .collect()
    }

    /// Registers a webhook directly, as the current person of the current org would create it
    /// with `body`; `id`, `status`, `created`, `orgId` and `createdBy` in `body` are kept as
    /// given, to seed a state. Returns it.
    pub fn add_webhook(&self, body: Value) -> Value {
        let mut s = self.lock();
        let who = s.identity();
        let resp = create(&mut s, &body.to_string(), &who);
        assert!(resp.status().is_success(), "add_webhook({body})");
        let hook = &mut s.webhooks.last_mut().unwrap().json;
        for k in ["id", "status", "created", "orgId", "createdBy"] {
            if body[k].is_string() {
                hook[k] = body[k].clone();
            }
        }
        hook.clone()
    }

    /// At most `n` webhooks a page, whatever `max` asks (Webex states no maximum; a small page
    /// makes a test page).
    pub fn webhooks_per_page(&self, n: usize) {
        self.lock().webhooks_per_page = Some(n.max(1));
    }

    /// Deactivates webhook `id` as Webex does after failed deliveries.
    pub fn deactivate(&self, id: &str) {
        let mut s = self.lock();
        let hook = s
            .webhooks
            .iter_mut()
            .find(|h| h.json["id"] == id)
            .unwrap_or_else(|| panic!("no webhook {id}"));
        hook.json["status"] = json!("inactive");
    }

    /// How many consecutive failed deliveries deactivate a webhook (default 3; the real number is
    /// not published).
    pub fn deactivate_after(&self, failures: u32) {
        self.lock().deactivate_after = failures.max(1);
    }

    /// The interest registrations: (person, client) → (interests, expiresAt).
    pub fn interests(&self) -> Vec<((String, String), Value, chrono::DateTime<chrono::Utc>)> {
        self.lock()
            .interests
            .iter()
            .map(|(k, i)| (k.clone(), i.interests.clone(), i.expires_at))
            .collect()
    }

    /// POSTs one event with `data` to the webhook's `targetUrl` as Webex delivers it (envelope,
    /// `X-Spark-Signature` = HMAC-SHA1 of the body under its secret, a `trackingid`); counts a
    /// failure (non-2xx or no answer) toward deactivation. `None`: not sent (inactive) or no answer.
    pub async fn deliver(&self, id: &str, data: Value) -> Option<u16> {
        let (url, secret, body) = {
            let s = self.lock();
            let hook = &s
                .webhooks
                .iter()
                .find(|h| h.json["id"] == id)
                .unwrap_or_else(|| panic!("no webhook {id}"))
                .json;
            if hook["status"] != "active" {
                return None;
            }
            let envelope = json!({
                "id": format!("Y2lzY29zcGFyazovL3VzL0VWRU5UL{}", ulid::Ulid::new()),
                "name": hook["name"],
                "targetUrl": hook["targetUrl"],
                "resource": hook["resource"],
                "event": hook["event"],
                "orgId": hook["orgId"],
                "createdBy": hook["createdBy"],
                "appId": hook["appId"],
                "ownedBy": hook["ownedBy"],
                "status": hook["status"],
                "created": s.wall().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                "actorId": hook["createdBy"],
                "data": data,
            });
            (
                hook["targetUrl"].as_str().unwrap_or_default().to_owned(),
                hook["secret"].as_str().map(str::to_owned),
                envelope.to_string(),
            )
        };
        let mut req = reqwest::Client::new()
            .post(&url)
            .timeout(Duration::from_secs(10))
            .header("content-type", "application/json")
            .header("trackingid", format!("WEBHOOK_{}", ulid::Ulid::new()));
        if let Some(secret) = secret {
            req = req.header(
                "x-spark-signature",
                relay_shared::webex::webex_signature(secret.as_bytes(), body.as_bytes()),
            );
        }
        let status = req
            .body(body)
            .send()
            .await
            .ok()
            .map(|r| r.status().as_u16());
        let mut s = self.lock();
        let limit = s.deactivate_after;
        if let Some(hook) = s.webhooks.iter_mut().find(|h| h.json["id"] == id) {
            if status.is_some_and(|c| (200..300).contains(&c)) {
                hook.failures = 0;
            } else {
                hook.failures += 1;
                if hook.failures >= limit {
                    hook.json["status"] = json!("inactive");
                }
            }
        }
        status
    }
}
