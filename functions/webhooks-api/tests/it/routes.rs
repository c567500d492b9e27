//! The route suite: every route and every error, in-process (`oneshot` on the router). Each case
//! runs on the in-memory adapters and, when `AWS_ENDPOINT_URL_DYNAMODB`/`_SQS` are set, on the AWS
//! adapters (DynamoDB Local + moto); unset, the AWS run is skipped with a printed reason, unless
//! `RELAY_REQUIRE_AWS=1`, which makes it fail.

use std::collections::HashSet;

use crate::common::{request, suite, unique, Backend, Harness};
use base64::Engine;
use chrono::Duration;
use relay_shared::auth::Role;
use relay_shared::delivery::{
    AttemptRecord, AttemptStatus, AttemptSummary, DeliveryJob, ErrorClass,
};
use relay_shared::events::{EventType, OutboundEvent};
use relay_shared::ids::{EventId, SubscriptionId};
use relay_shared::ports::{Clock, RateWindow, Term};
use relay_shared::signing::{
    delivery_headers, standard_webhooks_signature, SignatureInput, SigningSecret,
};
use serde_json::{json, Value};
use webhooks_api::ApiConfig;

const HOOKS: &str = "/api/hooks/webhooks";

fn valid_body() -> Value {
    json!({"name": "My Connection Monitor", "url": "https://my-server.example.com/webhook", "eventTypes": ["telephony:created", "presence:changed"]})
}

suite!(
    ordering_is_opt_in_per_call,
    payload_filters_on_create_update_and_get,
    payload_filters_are_refused_naming_the_path_or_operator,
    the_catalogues_filter_examples_are_accepted,
    a_replay_applies_the_filter,
    create_returns_the_secret_once,
    create_with_a_given_secret,
    validation_errors,
    url_validation,
    cloud_metadata_is_refused_even_when_private_targets_are_allowed,
    malformed_requests,
    authentication,
    unknown_route_and_method,
    tenant_isolation,
    patch_semantics,
    concurrent_patches_never_lose_updates,
    delete_frees_a_slot,
    limit_is_enforced,
    racing_creates_cannot_exceed_the_limit,
    pagination_over_120_webhooks,
    deliveries_log,
    test_event_is_queued,
    rotation_signs_with_both_secrets_during_grace,
    replay_requeues_the_window,
    replay_is_bounded,
    dlq_redrive,
    event_types_catalogue,
    idempotency_key_replays_the_first_response,
    concurrent_requests_with_one_idempotency_key_act_once,
    same_user_id_in_two_orgs_is_two_tenants,
    openapi_document_is_served,
    test_quota_per_webhook_and_per_tenant,
    replay_quota_and_one_replay_in_flight,
    replay_fills_the_backlog_up_to_its_cap,
    replay_skips_events_too_large_for_the_queue,
    secrets_are_sealed_at_rest_and_never_kept_for_a_replay,
    a_legacy_plain_secret_is_sealed_by_the_next_write,
    a_failing_key_service_is_503_and_changes_nothing,
);

async fn h(b: Backend) -> Option<Harness> {
    b.harness(ApiConfig::default()).await
}

/// Asserts that creating a webhook with `url` fails validation on the `url` field; returns the
/// error.
async fn refuses_url(h: &Harness, key: &str, url: &str) -> Value {
    let mut body = valid_body();
    body["url"] = json!(url);
    let r = h.call("POST", HOOKS, Some(key), Some(body)).await;
    let e = r.assert_error(422, "validation_failed");
    assert_eq!(e["field"], "url", "{url}");
    e
}

/// A harness whose config `edit` changed from the default.
async fn h_with(b: Backend, edit: impl FnOnce(&mut ApiConfig)) -> Option<Harness> {
    let mut config = ApiConfig::default();
    edit(&mut config);
    b.harness(config).await
}

/// `ordering` (docs/ordering.md): `none` unless asked, `per-call` stored and shown, anything else
/// (or `null`) a 422 naming the field; PATCH changes it.
async fn ordering_is_opt_in_per_call(b: Backend) {
    use relay_shared::subscription::Ordering;
    let Some(h) = h(b).await else { return };
    let key = h.user().await;
    let plain = h
        .call("POST", HOOKS, Some(&key), Some(valid_body()))
        .await
        .assert_status(201);
    assert_eq!(plain["ordering"], "none");
    let mut body = valid_body();
    body["ordering"] = json!("per-call");
    let ordered = h
        .call("POST", HOOKS, Some(&key), Some(body.clone()))
        .await
        .assert_status(201);
    assert_eq!(ordered["ordering"], "per-call");
    let id = ordered["id"].as_str().unwrap();
    let sid: SubscriptionId = id.parse().unwrap();
    assert_eq!(h.stored(&sid).await.ordering, Ordering::PerCall);
    let p = format!("{HOOKS}/{id}");
    let got = h.call("GET", &p, Some(&key), None).await.assert_status(200);
    assert_eq!(got["ordering"], "per-call");
    for bad in [json!("fifo"), json!(null), json!(true)] {
        body["ordering"] = bad.clone();
        let e = h
            .call("POST", HOOKS, Some(&key), Some(body.clone()))
            .await
            .assert_error(422, "validation_failed");
        assert_eq!(e["field"], "ordering", "{bad}: {e}");
        let e = h
            .call("PATCH", &p, Some(&key), Some(json!({ "ordering": bad })))
            .await
            .assert_error(422, "validation_failed");
        assert_eq!(e["field"], "ordering", "{bad}: {e}");
    }
    let patched = h
        .call("PATCH", &p, Some(&key), Some(json!({"ordering": "none"})))
        .await
        .assert_status(200);
    assert_eq!(patched["ordering"], "none");
    assert_eq!(h.stored(&sid).await.ordering, Ordering::None);
}

/// `filter` (docs/call-events.md#payload-filters): absent or `null` is none (not shown); an
/// object is stored and shown as given by create, GET and list; PATCH replaces it, `null` removes
/// it, absent leaves it.
async fn payload_filters_on_create_update_and_get(b: Backend) {
    let Some(h) = h(b).await else { return };
    let key = h.user().await;
    let inbound = json!({"data.personality": "terminator", "data.remoteParty.callType": {"in": ["external"]}});
    let mut body = valid_body();
    body["filter"] = inbound.clone();
    let c = h
        .call("POST", HOOKS, Some(&key), Some(body.clone()))
        .await
        .assert_status(201);
    assert_eq!(c["filter"], inbound);
    let id = c["id"].as_str().unwrap();
    let sid: SubscriptionId = id.parse().unwrap();
    let stored = h.stored(&sid).await;
    assert_eq!(
        stored
            .filter
            .as_ref()
            .map(|f| Value::Object(f.as_json().clone())),
        Some(inbound.clone())
    );
    let p = format!("{HOOKS}/{id}");
    let got = h.call("GET", &p, Some(&key), None).await.assert_status(200);
    assert_eq!(got["filter"], inbound);
    let listed = h
        .call("GET", HOOKS, Some(&key), None)
        .await
        .assert_status(200);
    assert_eq!(listed["data"][0]["filter"], inbound);
    for none in [None, Some(Value::Null)] {
        let mut body = valid_body();
        if let Some(v) = none {
            body["filter"] = v;
        }
        let plain = h
            .call("POST", HOOKS, Some(&key), Some(body))
            .await
            .assert_status(201);
        assert!(plain.get("filter").is_none(), "{plain}");
        let sid: SubscriptionId = plain["id"].as_str().unwrap().parse().unwrap();
        assert!(h.stored(&sid).await.filter.is_none());
    }
    // PATCH: an object replaces, absent leaves, null removes.
    let queue = json!({"data.redirections.0.reason": "callQueue"});
    let u = h
        .call("PATCH", &p, Some(&key), Some(json!({ "filter": queue })))
        .await
        .assert_status(200);
    assert_eq!(u["filter"], queue);
    let v = h.stored(&sid).await.version;
    let u = h
        .call("PATCH", &p, Some(&key), Some(json!({"name": "renamed"})))
        .await
        .assert_status(200);
    assert_eq!(u["filter"], queue);
    assert_eq!(h.stored(&sid).await.version, v + 1);
    let u = h
        .call("PATCH", &p, Some(&key), Some(json!({ "filter": null })))
        .await
        .assert_status(200);
    assert!(u.get("filter").is_none(), "{u}");
    assert!(h.stored(&sid).await.filter.is_none());
    let got = h.call("GET", &p, Some(&key), None).await.assert_status(200);
    assert!(got.get("filter").is_none(), "{got}");
}

/// A filter the language refuses is a 422 whose `field` names the path or the operator at fault,
/// on create (nothing stored) and on PATCH (nothing changed).
async fn payload_filters_are_refused_naming_the_path_or_operator(b: Backend) {
    let Some(h) = h(b).await else { return };
    let key = h.user().await;
    let good = json!({"data.personality": "originator"});
    let mut body = valid_body();
    body["filter"] = good.clone();
    let c = h
        .call("POST", HOOKS, Some(&key), Some(body))
        .await
        .assert_status(201);
    let sid: SubscriptionId = c["id"].as_str().unwrap().parse().unwrap();
    let p = format!("{HOOKS}/{sid}");
    let before = h.stored(&sid).await;
    let long_path = ["a"; 11].join(".");
    let cases = [
        (
            json!({"data.personality": {"gt": 1}}),
            "filter.data.personality.gt",
            "eq, ne, in, nin, prefix, exists",
        ),
        (
            json!({"data.personality": {"eq": "a", "ne": "b"}}),
            "filter.data.personality",
            "exactly one operator",
        ),
        (
            json!({"data..personality": "terminator"}),
            "filter.data..personality",
            "not a path",
        ),
        (
            json!({ long_path.clone(): 1 }),
            &format!("filter.{long_path}"),
            "not a path",
        ),
        (
            json!({"data.redirections": [["callQueue"]]}),
            "filter.data.redirections",
            "not objects or arrays",
        ),
        (
            json!({"data.state": {"in": []}}),
            "filter.data.state.in",
            "1–100",
        ),
        (
            json!({"data.number": {"prefix": 1}}),
            "filter.data.number.prefix",
            "must be a string",
        ),
        (
            json!({"data.redirections": {"exists": "yes"}}),
            "filter.data.redirections.exists",
            "true or false",
        ),
        (json!({}), "filter", "1–20"),
        (
            json!("data.personality=terminator"),
            "filter",
            "must be an object",
        ),
        (json!(["terminator"]), "filter", "must be an object"),
    ];
    for (filter, field, says) in &cases {
        let mut body = valid_body();
        body["filter"] = filter.clone();
        let e = h
            .call("POST", HOOKS, Some(&key), Some(body))
            .await
            .assert_error(422, "validation_failed");
        assert_eq!(e["field"], *field, "{filter}: {e}");
        assert!(
            e["detail"].as_str().unwrap().contains(says),
            "{filter}: {e}"
        );
        let e = h
            .call("PATCH", &p, Some(&key), Some(json!({ "filter": filter })))
            .await
            .assert_error(422, "validation_failed");
        assert_eq!(e["field"], *field, "{filter}: {e}");
    }
    let after = h.stored(&sid).await;
    assert_eq!(
        after.version, before.version,
        "a refused PATCH changes nothing"
    );
    assert_eq!(after.filter, before.filter);
    let listed = h
        .call("GET", HOOKS, Some(&key), None)
        .await
        .assert_status(200);
    assert_eq!(
        listed["data"].as_array().unwrap().len(),
        1,
        "a refused create stores nothing"
    );
    assert_eq!(listed["data"][0]["filter"], good);
}

/// The catalogue shows the filter examples (only inbound external calls, only one call queue) for
/// telephony and call events, none for the others; each is a filter the API accepts, and the
/// inbound one passes the catalogue's own telephony example.
async fn the_catalogues_filter_examples_are_accepted(b: Backend) {
    let Some(h) = h(b).await else { return };
    let key = h.user().await;
    let r = h
        .call("GET", "/api/hooks/event-types", Some(&key), None)
        .await
        .assert_status(200);
    let mut distinct: Vec<Value> = Vec::new();
    for item in r["data"].as_array().unwrap() {
        let t = EventType::parse(item["name"].as_str().unwrap()).unwrap();
        let examples = relay_shared::filters::examples(t);
        if examples.is_empty() {
            assert!(item.get("filterExamples").is_none(), "{item}");
            continue;
        }
        let shown = item["filterExamples"].as_array().unwrap();
        assert_eq!(shown.len(), examples.len());
        assert!(
            shown.len() >= 2,
            "inbound external and one call queue: {item}"
        );
        for (s, want) in shown.iter().zip(&examples) {
            assert_eq!(s["description"], want.description);
            assert_eq!(s["filter"], want.filter);
            if !distinct.contains(&want.filter) {
                distinct.push(want.filter.clone());
            }
        }
        let inbound = relay_shared::filters::Filter::parse(&shown[0]["filter"]).unwrap();
        let doc = relay_shared::filters::document(t, &item["example"]);
        assert!(
            inbound.matches(doc),
            "{t:?}: the example call is inbound external"
        );
    }
    assert!(distinct.len() >= 2);
    for filter in distinct {
        let mut body = valid_body();
        body["eventTypes"] = json!(["telephony:created", "call:ended"]);
        body["filter"] = filter.clone();
        let c = h
            .call("POST", HOOKS, Some(&key), Some(body))
            .await
            .assert_status(201);
        assert_eq!(c["filter"], filter);
    }
}

/// A replay re-queues only what the filter lets through, as the fan-out would have.
async fn a_replay_applies_the_filter(b: Backend) {
    let Some(h) = h(b).await else { return };
    let org = unique("org");
    let key = h.key(&unique("user"), &org, Role::User).await;
    let mut body = valid_body();
    body["eventTypes"] = json!(["telephony:updated"]);
    body["filter"] = json!({"data.personality": "originator"});
    let c = h
        .call("POST", HOOKS, Some(&key), Some(body))
        .await
        .assert_status(201);
    let id = c["id"].as_str().unwrap();
    let seed: Value = serde_json::from_str(include_str!(
        "../../../../tests/fixtures/seed001/updated.json"
    ))
    .unwrap();
    let at = h.clock.now() - Duration::minutes(30);
    let mut ids = Vec::new();
    for (i, personality) in ["terminator", "originator", "terminator"]
        .iter()
        .enumerate()
    {
        let mut logged = seed.clone();
        logged["orgId"] = json!(org);
        logged["items"]["orgId"] = json!(org);
        logged["items"]["data"]["personality"] = json!(personality);
        let e = OutboundEvent {
            id: EventId::new_at(at.timestamp_millis() as u64 + i as u64),
            event_type: EventType::TelephonyUpdated,
            org_id: org.clone(),
            created_at: at + Duration::milliseconds(i as i64),
            body: logged.to_string(),
        };
        h.stores
            .events
            .append(&e, h.clock.now() + Duration::days(30))
            .await
            .unwrap();
        ids.push(e.id);
    }
    let window = json!({"since": (at - Duration::minutes(1)).to_rfc3339(),
                        "until": (at + Duration::minutes(1)).to_rfc3339()});
    let r = h
        .call(
            "POST",
            &format!("{HOOKS}/{id}/replay"),
            Some(&key),
            Some(window),
        )
        .await
        .assert_status(202);
    assert_eq!(r["queued"], 1, "{r}");
    let jobs = h.drain_queue().await;
    assert_eq!(
        jobs.iter().map(|j| j.event_id).collect::<Vec<_>>(),
        vec![ids[1]]
    );
}

async fn create_returns_the_secret_once(b: Backend) {
    let Some(h) = h(b).await else { return };
    let key = h.user().await;
    let created = h
        .call("POST", HOOKS, Some(&key), Some(valid_body()))
        .await
        .assert_status(201);
    let secret = created["secret"].as_str().unwrap();
    let b64 = secret.strip_prefix("whsec_").expect("whsec_ prefix");
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap()
            .len(),
        32
    );
    assert!(created["id"].as_str().unwrap().starts_with("wh_"));
    assert_eq!(created["name"], "My Connection Monitor");
    assert_eq!(
        created["eventTypes"],
        json!(["telephony:created", "presence:changed"])
    );
    assert_eq!(created["enabled"], true);
    assert_eq!(created["status"], "active");
    assert_eq!(created["rateLimitPerMinute"], 100);
    assert!(created["createdAt"].as_str().unwrap().ends_with('Z'));
    assert_eq!(created["createdAt"], created["updatedAt"]);
    let id = created["id"].as_str().unwrap();

    let got = h
        .call("GET", &format!("{HOOKS}/{id}"), Some(&key), None)
        .await
        .assert_status(200);
    assert!(got.get("secret").is_none(), "{got}");
    let mut expected = created.clone();
    expected.as_object_mut().unwrap().remove("secret");
    assert_eq!(got, expected);
    let list = h
        .call("GET", HOOKS, Some(&key), None)
        .await
        .assert_status(200);
    assert_eq!(list["data"], json!([expected]));
    assert_eq!(list["nextCursor"], Value::Null);
    assert!(!list.to_string().contains(secret));
    let patched = h
        .call(
            "PATCH",
            &format!("{HOOKS}/{id}"),
            Some(&key),
            Some(json!({"name": "x"})),
        )
        .await
        .assert_status(200);
    assert!(patched.get("secret").is_none() && !patched.to_string().contains(secret));

    // Disabled at creation.
    let mut body = valid_body();
    body["enabled"] = json!(false);
    body["rateLimitPerMinute"] = json!(7);
    let c = h
        .call("POST", HOOKS, Some(&key), Some(body))
        .await
        .assert_status(201);
    assert_eq!(
        (c["status"].clone(), c["rateLimitPerMinute"].clone()),
        (json!("disabled"), json!(7))
    );
}

async fn create_with_a_given_secret(b: Backend) {
    let Some(h) = h(b).await else { return };
    let key = h.user().await;
    let mut body = valid_body();
    body["secret"] = json!("my-own-secret-that-is-long-enough");
    let c = h
        .call("POST", HOOKS, Some(&key), Some(body.clone()))
        .await
        .assert_status(201);
    assert_eq!(c["secret"], "my-own-secret-that-is-long-enough");
    let id: SubscriptionId = c["id"].as_str().unwrap().parse().unwrap();
    let stored = h.stored(&id).await;
    assert!(
        stored.secret.is_sealed(),
        "a caller-chosen secret is sealed too"
    );
    assert_eq!(
        h.open(&stored, &stored.secret).await,
        "my-own-secret-that-is-long-enough"
    );
    for bad in [
        json!("short"),
        json!("x".repeat(129)),
        json!("has spaces in the middle of it ok"),
        json!(12),
        json!(null),
    ] {
        body["secret"] = bad.clone();
        let e = h
            .call("POST", HOOKS, Some(&key), Some(body.clone()))
            .await
            .assert_error(422, "validation_failed");
        assert_eq!(e["field"], "secret", "{bad}: {e}");
    }
}

async fn validation_errors(b: Backend) {
    let Some(h) = h(b).await else { return };
    let key = h.user().await;
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            json!({"url": "https://a.example.com", "eventTypes": ["presence:changed"]}),
            "validation_failed",
            "",
        ),
        (
            json!({"name": "", "url": "https://a.example.com", "eventTypes": ["presence:changed"]}),
            "validation_failed",
            "name",
        ),
        (
            json!({"name": "   ", "url": "https://a.example.com", "eventTypes": ["presence:changed"]}),
            "validation_failed",
            "name",
        ),
        (
            json!({"name": "x".repeat(201), "url": "https://a.example.com", "eventTypes": ["presence:changed"]}),
            "validation_failed",
            "name",
        ),
        (
            json!({"name": null, "url": "https://a.example.com", "eventTypes": ["presence:changed"]}),
            "validation_failed",
            "name",
        ),
        (
            json!({"name": "a", "url": "https://a.example.com", "eventTypes": []}),
            "validation_failed",
            "eventTypes",
        ),
        (
            json!({"name": "a", "url": "https://a.example.com", "eventTypes": ["app:connected"]}),
            "validation_failed",
            "eventTypes[0]",
        ),
        (
            json!({"name": "a", "url": "https://a.example.com", "eventTypes": "presence:changed"}),
            "validation_failed",
            "eventTypes",
        ),
        (
            json!({"name": "a", "url": "https://a.example.com", "eventTypes": ["presence:changed"], "rateLimitPerMinute": 0}),
            "validation_failed",
            "rateLimitPerMinute",
        ),
        (
            json!({"name": "a", "url": "https://a.example.com", "eventTypes": ["presence:changed"], "rateLimitPerMinute": 101}),
            "validation_failed",
            "rateLimitPerMinute",
        ),
        (
            json!({"name": "a", "url": "https://a.example.com", "eventTypes": ["presence:changed"], "rateLimitPerMinute": -1}),
            "validation_failed",
            "rateLimitPerMinute",
        ),
        (
            json!({"name": "a", "url": "https://a.example.com", "eventTypes": ["presence:changed"], "enabled": "yes"}),
            "validation_failed",
            "enabled",
        ),
        (
            json!({"name": "a", "url": "https://a.example.com", "eventTypes": ["presence:changed"], "extra": 1}),
            "unknown_field",
            "extra",
        ),
        (json!([1, 2]), "validation_failed", ""),
    ];
    for (body, code, field) in cases {
        let e = h
            .call("POST", HOOKS, Some(&key), Some(body.clone()))
            .await
            .assert_error(422, code);
        assert_eq!(
            e.get("field").and_then(Value::as_str).unwrap_or(""),
            field,
            "{body} -> {e}"
        );
    }
    // The unknown-type error lists the catalogue.
    let e = h
        .call(
            "POST",
            HOOKS,
            Some(&key),
            Some(json!({"name": "a", "url": "https://a.example.com", "eventTypes": ["nope"]})),
        )
        .await
        .assert_error(422, "validation_failed");
    for t in EventType::ALL {
        assert!(e["detail"].as_str().unwrap().contains(t.as_str()), "{e}");
    }
    // Nothing was created.
    assert_eq!(
        h.call("GET", HOOKS, Some(&key), None)
            .await
            .assert_status(200)["data"],
        json!([])
    );
}

async fn url_validation(b: Backend) {
    let Some(h) = h(b).await else { return };
    let key = h.user().await;
    for bad in [
        "http://example.com/hook",
        "ftp://example.com/",
        "example.com/hook",
        "/relative",
        "https://user:pass@example.com/",
        "https://localhost/hook",
        "https://127.0.0.1/",
        "https://10.0.0.8/",
        "https://192.168.0.1/",
        "https://169.254.169.254/latest/meta-data/",
        "https://0.0.0.0/",
        "https://[::1]/",
        "https://[::ffff:127.0.0.1]/",
        "https://[fe80::1]/",
        "https://[fd12::1]/",
        "https://[::]/",
    ] {
        refuses_url(&h, &key, bad).await;
    }
    // The literal addresses the delivery worker refuses are refused here too, naming the class.
    for (bad, class) in [
        ("https://[2002:7f00:1::]/", "(6to4)"),
        (
            "https://[2001:0:4136:e378:8000:63bf:80ff:fffe]/",
            "(teredo)",
        ),
        ("https://[64:ff9b:1::7f00:1]/", "(local-use-nat64)"),
        ("https://[100::1]/", "(discard-only)"),
        ("https://[::ffff:0:808:808]/", "(siit)"),
        ("https://[4000::1]/", "(not-global-unicast)"),
    ] {
        let e = refuses_url(&h, &key, bad).await;
        assert!(e["detail"].as_str().unwrap().contains(class), "{bad}: {e}");
    }
    // And on update.
    let c = h.create(&key, "a").await;
    let e = h
        .call(
            "PATCH",
            &format!("{HOOKS}/{}", c["id"].as_str().unwrap()),
            Some(&key),
            Some(json!({"url": "https://[::ffff:127.0.0.1]/"})),
        )
        .await
        .assert_error(422, "validation_failed");
    assert_eq!(e["field"], "url");
    // http is accepted only when configured.
    if b == Backend::Memory {
        let h2 =
            Harness::memory(ApiConfig::from_env_pairs(&[("ALLOW_HTTP_TARGETS", "true")]).unwrap());
        let key2 = h2.user().await;
        let mut body = valid_body();
        body["url"] = json!("http://example.com/hook");
        h2.call("POST", HOOKS, Some(&key2), Some(body))
            .await
            .assert_status(201);
        // An operator allow-list admits its ranges (the worker reads the same variable).
        let h3 = Harness::memory(
            ApiConfig::from_env_pairs(&[("TARGET_ALLOW_CIDRS", "10.20.0.0/16, 2002:7f00:1::/48")])
                .unwrap(),
        );
        let key3 = h3.user().await;
        // 2002:a14:304:: is 6to4 of 10.20.3.4: a transition address stands for what it embeds.
        for url in ["https://10.20.3.4/hook", "https://[2002:a14:304::]/"] {
            let mut body = valid_body();
            body["url"] = json!(url);
            h3.call("POST", HOOKS, Some(&key3), Some(body))
                .await
                .assert_status(201);
        }
        // Listing a transition prefix never opens the private address it embeds (127.0.0.1 here).
        for url in ["https://10.21.0.1/hook", "https://[2002:7f00:1::]/"] {
            let mut body = valid_body();
            body["url"] = json!(url);
            h3.call("POST", HOOKS, Some(&key3), Some(body))
                .await
                .assert_error(422, "validation_failed");
        }
    }
}

async fn cloud_metadata_is_refused_even_when_private_targets_are_allowed(b: Backend) {
    let permissive = |c: &mut ApiConfig| {
        c.targets.allow_http = true;
        c.targets.allow_private = true;
    };
    let Some(h) = h_with(b, permissive).await else {
        return;
    };
    let key = h.user().await;
    for bad in [
        "http://169.254.169.254/latest/meta-data",
        "https://[::ffff:169.254.169.254]/",
        "http://2852039166/",
        "https://[64:ff9b::a9fe:a9fe]/",
        "https://[fd00:ec2::254]/",
        "http://169.254.170.2/v2/credentials",
    ] {
        let e = refuses_url(&h, &key, bad).await;
        assert!(
            e["detail"].as_str().unwrap().contains("(cloud-metadata)"),
            "{bad}: {e}"
        );
    }
    // Private targets themselves are accepted in this mode (the switch still does what it says).
    let mut body = valid_body();
    body["url"] = json!("http://127.0.0.1:3001/hook");
    h.call("POST", HOOKS, Some(&key), Some(body))
        .await
        .assert_status(201);
    // Only an allow-list entry naming the address opens it.
    let Some(h) = h_with(b, |c| {
        permissive(c);
        c.targets.allow_cidrs = vec!["169.254.169.254/32".parse().unwrap()];
    })
    .await
    else {
        return;
    };
    let key = h.user().await;
    let mut body = valid_body();
    body["url"] = json!("http://169.254.169.254/latest/meta-data");
    h.call("POST", HOOKS, Some(&key), Some(body))
        .await
        .assert_status(201);
}

async fn malformed_requests(b: Backend) {
    let Some(h) = h(b).await else { return };
    let key = h.user().await;
    let auth = format!("Bearer {key}");
    let raw = |ct: Option<&str>, body: Vec<u8>| {
        let mut r = axum::http::Request::builder()
            .method("POST")
            .uri(HOOKS)
            .header("authorization", &auth);
        if let Some(ct) = ct {
            r = r.header("content-type", ct);
        }
        r.body(axum::body::Body::from(body)).unwrap()
    };
    h.send(raw(Some("application/json"), b"{\"name\": ".to_vec()))
        .await
        .assert_error(400, "malformed_json");
    h.send(raw(Some("application/json"), b"".to_vec()))
        .await
        .assert_error(400, "malformed_json");
    h.send(raw(Some("application/json"), b"{} trailing".to_vec()))
        .await
        .assert_error(400, "malformed_json");
    h.send(raw(Some("application/json"), vec![0xff, 0xfe]))
        .await
        .assert_error(400, "malformed_json");
    h.send(raw(
        Some("text/plain"),
        valid_body().to_string().into_bytes(),
    ))
    .await
    .assert_error(415, "unsupported_media_type");
    h.send(raw(None, valid_body().to_string().into_bytes()))
        .await
        .assert_error(415, "unsupported_media_type");
    h.send(raw(
        Some("application/json; charset=utf-8"),
        valid_body().to_string().into_bytes(),
    ))
    .await
    .assert_status(201);
    // Over 256 KiB: 413 (with or without a content type).
    let mut big = valid_body();
    big["name"] = json!("x".repeat(300 * 1024));
    h.send(raw(Some("application/json"), big.to_string().into_bytes()))
        .await
        .assert_error(413, "payload_too_large");
    h.send(raw(Some("text/plain"), big.to_string().into_bytes()))
        .await
        .assert_error(413, "payload_too_large");
    // Just under the limit is parsed (and refused for the name's length, not the size).
    let mut near = valid_body();
    near["name"] = json!("x".repeat(200 * 1024));
    h.send(raw(Some("application/json"), near.to_string().into_bytes()))
        .await
        .assert_error(422, "validation_failed");
    // Query mistakes.
    for query in ["limit=abc", "limit=0", "limit=251", "limit=-3"] {
        h.call("GET", &format!("{HOOKS}?{query}"), Some(&key), None)
            .await
            .assert_error(422, "validation_failed");
    }
    h.call("GET", &format!("{HOOKS}?cursor=%%%"), Some(&key), None)
        .await;
    // Bad ids are simply not found.
    for id in [
        "nope",
        "wh_",
        "evt_01ARZ3NDEKTSV4RRFFQ69G5FAV",
        "wh_01ARZ3NDEKTSV4RRFFQ69G5FAV",
        "%F0%9F%92%A9",
    ] {
        h.call("GET", &format!("{HOOKS}/{id}"), Some(&key), None)
            .await
            .assert_error(404, "not_found");
    }
}

async fn authentication(b: Backend) {
    let Some(h) = h(b).await else { return };
    for (path, method) in [
        (HOOKS, "GET"),
        (HOOKS, "POST"),
        ("/api/hooks/event-types", "GET"),
        ("/api/hooks/dlq/redrive", "POST"),
    ] {
        let r = h.call(method, path, None, None).await;
        r.assert_error(401, "unauthorized");
        assert_eq!(r.headers.get("www-authenticate").unwrap(), "Bearer");
    }
    h.call("GET", HOOKS, Some("wrk_not_a_key"), None)
        .await
        .assert_error(401, "unauthorized");
    let r = h
        .call_with(
            "GET",
            HOOKS,
            None,
            None,
            &[("authorization", "Basic dXNlcjpwYXNz")],
        )
        .await;
    r.assert_error(401, "unauthorized");
    // Unauthenticated beats not-found and validation.
    h.call("GET", &format!("{HOOKS}/nope"), None, None)
        .await
        .assert_error(401, "unauthorized");
    h.call("POST", HOOKS, None, Some(json!({"bad": true})))
        .await
        .assert_error(401, "unauthorized");
    // Keys: created, then revoked.
    let key = webhooks_api::create_api_key(&h.stores, &unique("user"), &unique("org"), Role::User)
        .await
        .unwrap();
    assert!(key.starts_with("wrk_"));
    h.call("GET", HOOKS, Some(&key), None)
        .await
        .assert_status(200);
    h.call_with(
        "GET",
        HOOKS,
        None,
        None,
        &[("authorization", &format!("bearer   {key}"))],
    )
    .await
    .assert_status(200);
    let stored = h
        .stores
        .api_keys
        .get(&relay_shared::auth::hash_api_key(&key))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.key_hash.len(), 64);
    assert!(webhooks_api::revoke_api_key(&h.stores, &key).await.unwrap());
    assert!(!webhooks_api::revoke_api_key(&h.stores, &key).await.unwrap());
    h.call("GET", HOOKS, Some(&key), None)
        .await
        .assert_error(401, "unauthorized");
    // The openapi document is public.
    h.call("GET", "/api/hooks/openapi.json", None, None)
        .await
        .assert_status(200);
}

async fn unknown_route_and_method(b: Backend) {
    let Some(h) = h(b).await else { return };
    let key = h.user().await;
    h.call("GET", "/nope", Some(&key), None)
        .await
        .assert_error(404, "not_found");
    h.call("GET", "/api/hooks/webhooks/a/b/c", Some(&key), None)
        .await
        .assert_error(404, "not_found");
    let r = h.call("PUT", HOOKS, Some(&key), None).await;
    r.assert_error(405, "method_not_allowed");
    assert!(r.headers.get("allow").is_some());
    h.call("DELETE", HOOKS, Some(&key), None)
        .await
        .assert_error(405, "method_not_allowed");
    h.call("GET", &format!("{HOOKS}/x/test"), Some(&key), None)
        .await
        .assert_error(405, "method_not_allowed");
    h.call("POST", "/api/hooks/event-types", Some(&key), None)
        .await
        .assert_error(405, "method_not_allowed");
}

async fn tenant_isolation(b: Backend) {
    let Some(h) = h(b).await else { return };
    let (org1, org2) = (unique("org1"), unique("org2"));
    let alice = h.key(&unique("alice"), &org1, Role::User).await;
    let bob = h.key(&unique("bob"), &org2, Role::User).await;
    let carol = h.key(&unique("carol"), &org1, Role::Admin).await;
    let a = h.create(&alice, "alice's").await;
    let b_hook = h.create(&bob, "bob's").await;
    let id = a["id"].as_str().unwrap();
    // The webhook is bound to its owner's org.
    let stored = h
        .stores
        .subscriptions
        .get(&id.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.org_id, org1);
    for other in [&bob, &carol] {
        let p = format!("{HOOKS}/{id}");
        h.call("GET", &p, Some(other), None)
            .await
            .assert_error(404, "not_found");
        h.call("PATCH", &p, Some(other), Some(json!({"name": "pwned"})))
            .await
            .assert_error(404, "not_found");
        h.call("DELETE", &p, Some(other), None)
            .await
            .assert_error(404, "not_found");
        h.call("GET", &format!("{p}/deliveries"), Some(other), None)
            .await
            .assert_error(404, "not_found");
        h.call("POST", &format!("{p}/test"), Some(other), None)
            .await
            .assert_error(404, "not_found");
        h.call("POST", &format!("{p}/rotate-secret"), Some(other), None)
            .await
            .assert_error(404, "not_found");
        let since = h.clock.now() - Duration::days(1);
        let w = json!({"since": since.to_rfc3339(), "until": h.clock.now().to_rfc3339()});
        h.call("POST", &format!("{p}/replay"), Some(other), Some(w))
            .await
            .assert_error(404, "not_found");
    }
    // Untouched, and lists are per user.
    let got = h
        .call("GET", &format!("{HOOKS}/{id}"), Some(&alice), None)
        .await
        .assert_status(200);
    assert_eq!(got["name"], "alice's");
    let ids = |v: Value| {
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["id"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ids(h
            .call("GET", HOOKS, Some(&alice), None)
            .await
            .assert_status(200)),
        vec![id.to_owned()]
    );
    assert_eq!(
        ids(h
            .call("GET", HOOKS, Some(&bob), None)
            .await
            .assert_status(200)),
        vec![b_hook["id"].as_str().unwrap().to_owned()]
    );
    assert!(ids(h
        .call("GET", HOOKS, Some(&carol), None)
        .await
        .assert_status(200))
    .is_empty());
    assert!(h.drain_queue().await.is_empty());
}

async fn patch_semantics(b: Backend) {
    let Some(h) = h(b).await else { return };
    let key = h.user().await;
    let c = h.create(&key, "before").await;
    let id = c["id"].as_str().unwrap();
    let p = format!("{HOOKS}/{id}");
    let sid: SubscriptionId = id.parse().unwrap();
    let before = h.stored(&sid).await;
    let v0 = before.version;
    h.clock.advance(Duration::seconds(5));
    let u = h
        .call(
            "PATCH",
            &p,
            Some(&key),
            Some(json!({"name": "after", "eventTypes": ["telephony:deleted"]})),
        )
        .await
        .assert_status(200);
    assert_eq!(u["name"], "after");
    assert_eq!(u["eventTypes"], json!(["telephony:deleted"]));
    assert_eq!(u["url"], c["url"]);
    assert_eq!(u["enabled"], true);
    assert_eq!(u["createdAt"], c["createdAt"]);
    assert_ne!(u["updatedAt"], c["updatedAt"]);
    let stored = h.stores.subscriptions.get(&sid).await.unwrap().unwrap();
    assert_eq!(stored.version, v0 + 1);
    assert_eq!(
        stored.secret, before.secret,
        "PATCH never touches the secret"
    );
    assert_eq!(
        h.open(&stored, &stored.secret).await,
        c["secret"].as_str().unwrap()
    );
    // Empty patch: unchanged.
    let same = h
        .call("PATCH", &p, Some(&key), Some(json!({})))
        .await
        .assert_status(200);
    assert_eq!(same, u);
    // null is not "leave as is".
    for f in ["name", "url", "eventTypes", "enabled", "rateLimitPerMinute"] {
        let e = h
            .call("PATCH", &p, Some(&key), Some(json!({ f: null })))
            .await
            .assert_error(422, "validation_failed");
        assert_eq!(e["field"], f);
    }
    let e = h
        .call(
            "PATCH",
            &p,
            Some(&key),
            Some(json!({"secret": "x".repeat(30)})),
        )
        .await
        .assert_error(422, "unknown_field");
    assert_eq!(e["field"], "secret");
    h.call("PATCH", &p, Some(&key), Some(json!({"eventTypes": []})))
        .await
        .assert_error(422, "validation_failed");
    h.call(
        "PATCH",
        &p,
        Some(&key),
        Some(json!({"rateLimitPerMinute": 1000})),
    )
    .await
    .assert_error(422, "validation_failed");
    h.call("PATCH", &p, Some(&key), None)
        .await
        .assert_error(415, "unsupported_media_type");
    // Disable and re-enable.
    let d = h
        .call(
            "PATCH",
            &p,
            Some(&key),
            Some(json!({"enabled": false, "rateLimitPerMinute": 10})),
        )
        .await
        .assert_status(200);
    assert_eq!(
        (
            d["status"].clone(),
            d["enabled"].clone(),
            d["rateLimitPerMinute"].clone()
        ),
        (json!("disabled"), json!(false), json!(10))
    );
    // A webhook the worker marked failing shows as such.
    let mut s = h.stores.subscriptions.get(&sid).await.unwrap().unwrap();
    s.health = relay_shared::subscription::Health::Failing;
    s.disabled_reason = Some("receiver answered 410 Gone".into());
    s.version += 1;
    h.stores.subscriptions.update(&s).await.unwrap();
    let g = h.call("GET", &p, Some(&key), None).await.assert_status(200);
    assert_eq!(g["disabledReason"], "receiver answered 410 Gone");
    let e = h
        .call("PATCH", &p, Some(&key), Some(json!({"enabled": true})))
        .await
        .assert_status(200);
    // Re-enabling clears the disabled state, the health included, so that the next failure is
    // a new episode (docs/operational-events.md#auto-disable).
    assert_eq!(e["status"], "active");
    assert!(e.get("disabledReason").is_none());
    h.call(
        "PATCH",
        &format!("{HOOKS}/wh_01ARZ3NDEKTSV4RRFFQ69G5FAV"),
        Some(&key),
        Some(json!({"name": "x"})),
    )
    .await
    .assert_error(404, "not_found");
}

async fn concurrent_patches_never_lose_updates(b: Backend) {
    let Some(h) = h(b).await else { return };
    let key = h.user().await;
    let c = h.create(&key, "n").await;
    let id = c["id"].as_str().unwrap().to_owned();
    let sid: SubscriptionId = id.parse().unwrap();
    let v0 = h.stored(&sid).await.version;
    let h = std::sync::Arc::new(h);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..8 {
        let (h, key, id) = (h.clone(), key.clone(), id.clone());
        tasks.spawn(async move {
            h.call(
                "PATCH",
                &format!("{HOOKS}/{id}"),
                Some(&key),
                Some(json!({"name": format!("n{i}")})),
            )
            .await
            .status
            .as_u16()
        });
    }
    let mut ok = 0;
    while let Some(s) = tasks.join_next().await {
        match s.unwrap() {
            200 => ok += 1,
            409 => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert!(ok >= 1);
    assert_eq!(
        h.stores
            .subscriptions
            .get(&sid)
            .await
            .unwrap()
            .unwrap()
            .version,
        v0 + ok,
        "every successful update bumped the version once"
    );
}

async fn delete_frees_a_slot(b: Backend) {
    let Some(h) = h_with(b, |c| c.max_webhooks_per_user = 2).await else {
        return;
    };
    let key = h.user().await;
    let a = h.create(&key, "a").await;
    h.create(&key, "b").await;
    h.call("POST", HOOKS, Some(&key), Some(valid_body()))
        .await
        .assert_error(409, "limit_reached");
    let p = format!("{HOOKS}/{}", a["id"].as_str().unwrap());
    let r = h.call("DELETE", &p, Some(&key), None).await;
    r.assert_status(204);
    assert!(r.bytes.is_empty());
    h.call("GET", &p, Some(&key), None)
        .await
        .assert_error(404, "not_found");
    h.call("DELETE", &p, Some(&key), None)
        .await
        .assert_error(404, "not_found");
    h.create(&key, "c").await;
}

async fn limit_is_enforced(b: Backend) {
    let Some(h) = h(b).await else { return };
    let key = h.user().await;
    for i in 0..10 {
        h.create(&key, &format!("w{i}")).await;
    }
    let e = h
        .call("POST", HOOKS, Some(&key), Some(valid_body()))
        .await
        .assert_error(409, "limit_reached");
    assert!(e["detail"].as_str().unwrap().contains("10"), "{e}");
    // Another user is not affected.
    let other = h.user().await;
    h.create(&other, "x").await;
}

async fn racing_creates_cannot_exceed_the_limit(b: Backend) {
    let Some(h) = h(b).await else { return };
    let key = h.user().await;
    let h = std::sync::Arc::new(h);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..20 {
        let (h, key) = (h.clone(), key.clone());
        tasks.spawn(async move {
            let mut body = valid_body();
            body["name"] = json!(format!("race {i}"));
            h.call("POST", HOOKS, Some(&key), Some(body))
                .await
                .status
                .as_u16()
        });
    }
    let mut statuses = Vec::new();
    while let Some(s) = tasks.join_next().await {
        statuses.push(s.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        10,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        10,
        "{statuses:?}"
    );
    let list = h
        .call("GET", HOOKS, Some(&key), None)
        .await
        .assert_status(200);
    assert_eq!(list["data"].as_array().unwrap().len(), 10);
}

async fn pagination_over_120_webhooks(b: Backend) {
    let Some(h) = h_with(b, |c| c.max_webhooks_per_user = 150).await else {
        return;
    };
    let key = h.user().await;
    let other = h.user().await;
    let mut created = HashSet::new();
    for i in 0..120 {
        h.clock.advance(Duration::milliseconds(1));
        created.insert(
            h.create(&key, &format!("w{i}")).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    h.create(&other, "not mine").await;
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = Vec::new();
    loop {
        let path = match &cursor {
            Some(c) => format!("{HOOKS}?limit=50&cursor={c}"),
            None => format!("{HOOKS}?limit=50"),
        };
        let page = h
            .call("GET", &path, Some(&key), None)
            .await
            .assert_status(200);
        let data = page["data"].as_array().unwrap();
        pages.push(data.len());
        seen.extend(data.iter().map(|w| w["id"].as_str().unwrap().to_owned()));
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
        assert!(pages.len() < 10, "pagination does not end");
    }
    assert_eq!(pages.iter().sum::<usize>(), 120);
    assert_eq!(&pages[..2], &[50, 50]);
    assert_eq!(
        seen.iter().cloned().collect::<HashSet<_>>(),
        created,
        "every webhook exactly once"
    );
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted, "oldest first");
    // Default page size 50, max 250.
    assert_eq!(
        h.call("GET", HOOKS, Some(&key), None)
            .await
            .assert_status(200)["data"]
            .as_array()
            .unwrap()
            .len(),
        50
    );
    let all = h
        .call("GET", &format!("{HOOKS}?limit=250"), Some(&key), None)
        .await
        .assert_status(200);
    assert_eq!(all["data"].as_array().unwrap().len(), 120);
    assert_eq!(all["nextCursor"], Value::Null);
    h.call("GET", &format!("{HOOKS}?cursor=***"), Some(&key), None)
        .await
        .assert_error(422, "validation_failed");
}

fn attempt(
    sub: SubscriptionId,
    n: u64,
    status: AttemptStatus,
    at: chrono::DateTime<chrono::Utc>,
) -> AttemptRecord {
    let event = EventId::new_at(1_700_000_000_000 + n);
    let at = at + Duration::milliseconds(n as i64);
    AttemptRecord {
        event_type: EventType::PresenceChanged,
        error_class: (status == AttemptStatus::Failed).then_some(ErrorClass::HttpStatus),
        ..testkit::fixtures::attempt(sub, event, 1, status, at)
    }
}

async fn deliveries_log(b: Backend) {
    let Some(h) = h(b).await else { return };
    let key = h.user().await;
    let c = h.create(&key, "d").await;
    let id = c["id"].as_str().unwrap();
    let sid: SubscriptionId = id.parse().unwrap();
    let now = h.clock.now();
    let exp = now + Duration::days(7);
    for n in 0..5u64 {
        let status = if n % 2 == 0 {
            AttemptStatus::Succeeded
        } else {
            AttemptStatus::Failed
        };
        h.stores
            .attempts
            .record(&attempt(sid, n, status, now), exp)
            .await
            .unwrap();
    }
    let p = format!("{HOOKS}/{id}/deliveries");
    let all = h.call("GET", &p, Some(&key), None).await.assert_status(200);
    let data = all["data"].as_array().unwrap();
    assert_eq!(data.len(), 5);
    let ats: Vec<&str> = data.iter().map(|d| d["at"].as_str().unwrap()).collect();
    let mut sorted = ats.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(ats, sorted, "newest first");
    assert_eq!(data[0]["webhookId"], id);
    assert!(data[0]["deliveryId"].as_str().unwrap().starts_with("msg_"));
    let ok = h
        .call("GET", &format!("{p}?status=succeeded"), Some(&key), None)
        .await
        .assert_status(200);
    assert_eq!(ok["data"].as_array().unwrap().len(), 3);
    assert!(ok["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|d| d["status"] == "succeeded"));
    let failed = h
        .call("GET", &format!("{p}?status=failed"), Some(&key), None)
        .await
        .assert_status(200);
    assert_eq!(failed["data"].as_array().unwrap().len(), 2);
    assert_eq!(failed["data"][0]["errorClass"], "http_status");
    // Paginated.
    let p1 = h
        .call("GET", &format!("{p}?limit=2"), Some(&key), None)
        .await
        .assert_status(200);
    assert_eq!(p1["data"].as_array().unwrap().len(), 2);
    let c1 = p1["nextCursor"].as_str().unwrap();
    let p2 = h
        .call("GET", &format!("{p}?limit=2&cursor={c1}"), Some(&key), None)
        .await
        .assert_status(200);
    assert_eq!(p2["data"][0]["id"], data[2]["id"]);
    h.call("GET", &format!("{p}?status=skipped"), Some(&key), None)
        .await
        .assert_error(422, "validation_failed");
    h.call("GET", &format!("{p}?status=bogus"), Some(&key), None)
        .await
        .assert_error(422, "validation_failed");
    // Empty log.
    let c2 = h.create(&key, "e").await;
    let empty = h
        .call(
            "GET",
            &format!("{HOOKS}/{}/deliveries", c2["id"].as_str().unwrap()),
            Some(&key),
            None,
        )
        .await
        .assert_status(200);
    assert_eq!(empty, json!({"data": [], "nextCursor": null}));
}

async fn test_event_is_queued(b: Backend) {
    let Some(h) = h(b).await else { return };
    let key = h.user().await;
    let c = h.create(&key, "t").await;
    let id = c["id"].as_str().unwrap();
    let r = h
        .call("POST", &format!("{HOOKS}/{id}/test"), Some(&key), None)
        .await
        .assert_status(202);
    assert_eq!(r["eventType"], "webhook:test");
    let jobs = h.drain_queue().await;
    assert_eq!(jobs.len(), 1);
    let job = &jobs[0];
    assert_eq!(job.event_type, EventType::WebhookTest);
    assert_eq!(job.subscription_id.to_string(), id);
    assert_eq!(job.event_id.to_string(), r["eventId"].as_str().unwrap());
    assert!(job.attempts.is_empty());
    let body: Value = serde_json::from_str(&job.body).unwrap();
    assert_eq!(body["type"], "webhook:test");
    assert_eq!(body["webhookId"], id);
    assert_eq!(
        serde_json::to_string(&body).unwrap(),
        job.body,
        "compact JSON"
    );
    // With an empty JSON object too; unknown fields refused.
    h.call(
        "POST",
        &format!("{HOOKS}/{id}/test"),
        Some(&key),
        Some(json!({})),
    )
    .await
    .assert_status(202);
    h.call(
        "POST",
        &format!("{HOOKS}/{id}/test"),
        Some(&key),
        Some(json!({"x": 1})),
    )
    .await
    .assert_error(422, "unknown_field");
    assert_eq!(h.drain_queue().await.len(), 1);
    // Disabled webhooks refuse.
    h.call(
        "PATCH",
        &format!("{HOOKS}/{id}"),
        Some(&key),
        Some(json!({"enabled": false})),
    )
    .await
    .assert_status(200);
    h.call("POST", &format!("{HOOKS}/{id}/test"), Some(&key), None)
        .await
        .assert_error(409, "webhook_disabled");
    assert!(h.drain_queue().await.is_empty());
}

async fn rotation_signs_with_both_secrets_during_grace(b: Backend) {
    let Some(h) = h(b).await else { return };
    let key = h.user().await;
    let c = h.create(&key, "r").await;
    let id = c["id"].as_str().unwrap();
    let sid: SubscriptionId = id.parse().unwrap();
    let old = c["secret"].as_str().unwrap().to_owned();
    let p = format!("{HOOKS}/{id}/rotate-secret");
    let r = rotate(&h, &key, &p, Some(3600)).await.assert_status(200);
    let new = r["secret"].as_str().unwrap().to_owned();
    assert!(new.starts_with("whsec_") && new != old);
    assert_eq!(
        previous_expires(&r),
        h.clock.now() + Duration::seconds(3600)
    );
    let got = h
        .call("GET", &format!("{HOOKS}/{id}"), Some(&key), None)
        .await
        .assert_status(200);
    assert!(got.get("secret").is_none() && !got.to_string().contains(&new));

    let sign = |now: chrono::DateTime<chrono::Utc>, opened: Vec<String>| {
        let secrets: Vec<SigningSecret> = opened.into_iter().map(SigningSecret::new).collect();
        let headers = delivery_headers(&SignatureInput {
            delivery_id: "msg_x",
            timestamp: now,
            event_type: EventType::WebhookTest,
            subscription_id: id,
            org_id: "o",
            secrets: &secrets,
            body: b"{}",
        });
        headers
            .into_iter()
            .find(|(n, _)| *n == "webhook-signature")
            .unwrap()
            .1
    };
    let expect = |secret: &str, now: chrono::DateTime<chrono::Utc>| {
        standard_webhooks_signature(&SigningSecret::new(secret), "msg_x", now.timestamp(), b"{}")
    };
    let sub = h.stored(&sid).await;
    let now = h.clock.now() + Duration::seconds(60);
    let sig = sign(now, h.open_signing_secrets(&sub, now).await);
    let parts: Vec<&str> = sig.split(' ').collect();
    assert_eq!(
        parts,
        vec![expect(&new, now).as_str(), expect(&old, now).as_str()],
        "two valid signatures in the grace period"
    );
    let later = h.clock.now() + Duration::seconds(3601);
    let sig = sign(later, h.open_signing_secrets(&sub, later).await);
    assert_eq!(sig, expect(&new, later), "one after it");

    // Defaults to 24 h; 0 drops the old secret at once; > 7 days refused.
    // At most one retiring secret: r2's rotation ends `old`'s grace.
    let r2 = rotate(&h, &key, &p, None).await.assert_status(200);
    assert_eq!(
        previous_expires(&r2),
        h.clock.now() + Duration::seconds(86_400)
    );
    let sub = h.stored(&sid).await;
    let signing = h.open_signing_secrets(&sub, h.clock.now()).await;
    assert_eq!(
        signing,
        [r2["secret"].as_str().unwrap(), new.as_str()],
        "current + r2's predecessor only"
    );
    let r3 = rotate(&h, &key, &p, Some(0)).await.assert_status(200);
    assert!(r3.get("previousSecretExpiresAt").is_none());
    let sub = h.stored(&sid).await;
    assert_eq!(
        h.open(&sub, &sub.secret).await,
        r3["secret"].as_str().unwrap()
    );
    assert_eq!(
        sub.signing_secrets(h.clock.now()).len(),
        1,
        "grace 0 retires every earlier secret at once"
    );
    rotate(&h, &key, &p, Some(604_801))
        .await
        .assert_error(422, "validation_failed");
    rotate(&h, &key, &p, Some(-1))
        .await
        .assert_error(422, "validation_failed");
    h.call("POST", &p, Some(&key), Some(json!({"secret": "abc"})))
        .await
        .assert_error(422, "unknown_field");
}

/// `POST …/rotate-secret` with `gracePeriodSeconds` (none: the default).
async fn rotate(h: &Harness, key: &str, path: &str, grace: Option<i64>) -> crate::common::Resp {
    let body = grace.map(|g| json!({ "gracePeriodSeconds": g }));
    h.call("POST", path, Some(key), body).await
}

fn previous_expires(rotated: &Value) -> chrono::DateTime<chrono::Utc> {
    let at = rotated["previousSecretExpiresAt"].as_str().unwrap();
    chrono::DateTime::parse_from_rfc3339(at).unwrap().into()
}

async fn append(
    h: &Harness,
    org: &str,
    t: EventType,
    at: chrono::DateTime<chrono::Utc>,
) -> EventId {
    let id = EventId::new_at(at.timestamp_millis() as u64);
    let e = OutboundEvent {
        id,
        event_type: t,
        org_id: org.to_owned(),
        created_at: at,
        body: format!("{{\"n\":\"{id}\"}}"),
    };
    h.stores
        .events
        .append(&e, h.clock.now() + Duration::days(30))
        .await
        .unwrap();
    id
}

async fn replay_requeues_the_window(b: Backend) {
    let Some(h) = h(b).await else { return };
    let org = unique("org");
    let key = h.key(&unique("user"), &org, Role::User).await;
    let c = h.create(&key, "replay").await; // presence:changed + telephony:created
    let id = c["id"].as_str().unwrap();
    let t0 = h.clock.now() - Duration::hours(5);
    let mut want = Vec::new();
    for i in 0..6 {
        let at = t0 + Duration::minutes(i * 10);
        let t = [
            EventType::PresenceChanged,
            EventType::TelephonyCreated,
            EventType::TelephonyDeleted,
        ][i as usize % 3];
        let e = append(&h, &org, t, at).await;
        if t != EventType::TelephonyDeleted {
            want.push(e);
        }
    }
    append(
        &h,
        &unique("other-org"),
        EventType::PresenceChanged,
        t0 + Duration::minutes(1),
    )
    .await;
    append(
        &h,
        &org,
        EventType::PresenceChanged,
        t0 - Duration::hours(1),
    )
    .await; // before the window
    let body = json!({"since": (t0 - Duration::minutes(1)).to_rfc3339(), "until": (t0 + Duration::hours(1)).to_rfc3339()});
    let r = h
        .call(
            "POST",
            &format!("{HOOKS}/{id}/replay"),
            Some(&key),
            Some(body),
        )
        .await
        .assert_status(202);
    assert_eq!(r["queued"], 4);
    assert_eq!(r["truncated"], false);
    let jobs = h.drain_queue().await;
    let mut got: Vec<EventId> = jobs.iter().map(|j| j.event_id).collect();
    got.sort();
    assert_eq!(got, want);
    assert!(jobs
        .iter()
        .all(|j| j.subscription_id.to_string() == id && j.attempts.is_empty()));
    // Validation.
    let p = format!("{HOOKS}/{id}/replay");
    let bad = [
        json!({"since": "2025-01-02T00:00:00Z", "until": "2025-01-01T00:00:00Z"}),
        json!({"since": "2025-01-01T00:00:00Z", "until": "2025-01-01T00:00:00Z"}),
        json!({"since": "2025-01-01T00:00:00Z", "until": "2025-01-16T00:00:01Z"}),
        json!({"since": "yesterday", "until": "2025-01-01T00:00:00Z"}),
        json!({"since": "2025-01-01T00:00:00Z"}),
        json!({"since": "2025-01-01T00:00:00Z", "until": "2025-01-02T00:00:00Z", "types": []}),
    ];
    for body in bad {
        let r = h.call("POST", &p, Some(&key), Some(body.clone())).await;
        assert_eq!(r.status.as_u16(), 422, "{body}");
    }
    h.call("POST", &p, Some(&key), None)
        .await
        .assert_error(415, "unsupported_media_type");
    // Within the event log's retention (EVENT_RETENTION_DAYS, 14) only: older events are gone.
    let since = h.clock.now() - Duration::days(14) - Duration::seconds(1);
    let until = since + Duration::days(1);
    let r = h
        .call(
            "POST",
            &p,
            Some(&key),
            Some(json!({"since": since.to_rfc3339(), "until": until.to_rfc3339()})),
        )
        .await
        .assert_error(422, "validation_failed");
    assert_eq!(r["field"], "since", "{r}");
    assert!(r["detail"].as_str().unwrap().contains("14 days"), "{r}");
    let since = h.clock.now() - Duration::days(13);
    let ok14 =
        json!({"since": since.to_rfc3339(), "until": (since + Duration::days(14)).to_rfc3339()});
    // A 14-day window is accepted (it holds the events above again).
    h.call("POST", &p, Some(&key), Some(ok14))
        .await
        .assert_status(202);
}

async fn replay_is_bounded(b: Backend) {
    let Some(h) = h_with(b, |c| c.replay_max_events = 3).await else {
        return;
    };
    let org = unique("org");
    let key = h.key(&unique("user"), &org, Role::User).await;
    let c = h.create(&key, "bounded").await;
    let t0 = h.clock.now() - Duration::hours(1);
    let mut ats = Vec::new();
    for i in 0..5 {
        let at = t0 + Duration::minutes(i);
        append(&h, &org, EventType::PresenceChanged, at).await;
        ats.push(at);
    }
    let body = json!({"since": (t0 - Duration::minutes(1)).to_rfc3339(), "until": h.clock.now().to_rfc3339()});
    let r = h
        .call(
            "POST",
            &format!("{HOOKS}/{}/replay", c["id"].as_str().unwrap()),
            Some(&key),
            Some(body),
        )
        .await
        .assert_status(202);
    assert_eq!(r["queued"], 3);
    assert_eq!(r["truncated"], true);
    let next = chrono::DateTime::parse_from_rfc3339(r["nextSince"].as_str().unwrap()).unwrap();
    assert_eq!(next.with_timezone(&chrono::Utc), ats[3]);
    assert_eq!(h.drain_queue().await.len(), 3);
}

async fn dlq_redrive(b: Backend) {
    let Some(h) = h(b).await else { return };
    let (org, other_org) = (unique("org"), unique("org"));
    let admin = h.key(&unique("admin"), &org, Role::Admin).await;
    let other_admin = h.key(&unique("admin"), &other_org, Role::Admin).await;
    let user = h.user().await;
    let now = h.clock.now();
    // Three dead-lettered jobs of the admin's org, two of another org's (interleaved).
    for i in 0..5 {
        let event = OutboundEvent {
            id: EventId::new_at(1_000 + i),
            event_type: EventType::PresenceChanged,
            org_id: if i % 2 == 0 {
                org.clone()
            } else {
                other_org.clone()
            },
            created_at: now,
            body: "{}".into(),
        };
        let mut job = DeliveryJob::for_event(&event, SubscriptionId::new_at(5));
        job.attempts = (1..=5)
            .map(|a| AttemptSummary {
                attempt: a,
                at: now,
                status_code: Some(500),
                error_class: None,
            })
            .collect();
        job.not_before = Some(now + Duration::hours(2));
        job.dead_letter_reason = Some("attempts exhausted".into());
        h.dead_letter_sink
            .park(&serde_json::to_string(&job).unwrap())
            .await
            .unwrap();
    }
    h.dead_letter_sink.park("not a job").await.unwrap();
    const REDRIVE: &str = "/api/hooks/dlq/redrive";
    h.call("POST", REDRIVE, Some(&user), None)
        .await
        .assert_error(403, "forbidden");
    for limit in [0, 100_000] {
        h.call(
            "POST",
            REDRIVE,
            Some(&admin),
            Some(json!({ "limit": limit })),
        )
        .await
        .assert_error(422, "validation_failed");
    }
    let r = h
        .call("POST", REDRIVE, Some(&admin), Some(json!({"limit": 100})))
        .await
        .assert_status(200);
    // Only the caller's org's jobs move: an admin key is admin of its own org, not of the relay.
    assert_eq!(r, json!({"moved": 3, "skipped": 1}));
    let jobs = h.drain_queue().await;
    assert_eq!(jobs.len(), 3);
    for j in &jobs {
        assert!(
            j.org_id == org
                && j.attempts.is_empty()
                && j.not_before.is_none()
                && j.dead_letter_reason.is_none(),
            "{j:?}"
        );
    }
    // The moved ones are gone from the DLQ (the unparseable one is in flight, invisible).
    let r = h
        .call("POST", REDRIVE, Some(&admin), None)
        .await
        .assert_status(200);
    assert_eq!(r["moved"], 0);
    // The other org's jobs were left in the dead-letter queue, visible to their own admin.
    let r = h
        .call(
            "POST",
            REDRIVE,
            Some(&other_admin),
            Some(json!({"limit": 1})),
        )
        .await
        .assert_status(200);
    assert_eq!(r["moved"], 1);
    let r = h
        .call("POST", REDRIVE, Some(&other_admin), None)
        .await
        .assert_status(200);
    assert_eq!(r["moved"], 1);
    let jobs = h.drain_queue().await;
    assert!(
        jobs.len() == 2 && jobs.iter().all(|j| j.org_id == other_org),
        "{jobs:?}"
    );
}

async fn event_types_catalogue(b: Backend) {
    let Some(h) = h(b).await else { return };
    let key = h.user().await;
    let r = h
        .call("GET", "/api/hooks/event-types", Some(&key), None)
        .await
        .assert_status(200);
    let data = r["data"].as_array().unwrap();
    assert_eq!(data.len(), EventType::ALL.len());
    for (t, item) in EventType::ALL.iter().zip(data) {
        assert_eq!(item["name"], t.as_str());
        assert_eq!(item["description"], t.description());
        assert!(item["example"].is_object());
    }
    assert_eq!(data[0]["example"]["Payload"], "telephony");
    assert_eq!(data[0]["example"]["items"]["event"], "created");
    assert_eq!(data[0]["example"]["items"]["resource"], "telephony_calls");
    assert_eq!(
        data[0]["example"]["orgId"],
        data[0]["example"]["items"]["orgId"]
    );
    assert_eq!(data[2]["example"]["items"]["event"], "deleted");
    assert_eq!(data[3]["example"]["payload"], "user-presence");
    assert_eq!(data[3]["example"]["items"][0]["status"], "active");
    assert_eq!(data[4]["example"]["type"], "webhook:test");
}

async fn idempotency_key_replays_the_first_response(b: Backend) {
    let Some(h) = h(b).await else { return };
    let key = h.user().await;
    let idem = [("idempotency-key", "create-1")];
    let first = h
        .call_with("POST", HOOKS, Some(&key), Some(valid_body()), &idem)
        .await;
    first.assert_status(201);
    assert!(first.headers.get("idempotent-replayed").is_none());
    h.clock.advance(Duration::hours(23));
    let second = h
        .call_with("POST", HOOKS, Some(&key), Some(valid_body()), &idem)
        .await;
    second.assert_status(201);
    assert_eq!(second.headers.get("idempotent-replayed").unwrap(), "true");
    let mut without_secret = first.json();
    without_secret.as_object_mut().unwrap().remove("secret");
    assert_eq!(second.json(), without_secret, "the secret is shown once");
    assert_eq!(
        h.call("GET", HOOKS, Some(&key), None).await.json()["data"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "nothing new created"
    );
    // Same key, different body: refused.
    let mut other = valid_body();
    other["name"] = json!("different");
    h.call_with("POST", HOOKS, Some(&key), Some(other), &idem)
        .await
        .assert_error(422, "idempotency_key_reused");
    // Same key, another user: independent.
    let key2 = h.user().await;
    let theirs = h
        .call_with("POST", HOOKS, Some(&key2), Some(valid_body()), &idem)
        .await
        .assert_status(201);
    assert_ne!(theirs["id"], first.json()["id"]);
    // Same key, another route: independent. Test events are queued once per key.
    let id = first.json()["id"].as_str().unwrap().to_owned();
    let test = format!("{HOOKS}/{id}/test");
    let mut answers = Vec::new();
    for _ in 0..2 {
        let r = h.call_with("POST", &test, Some(&key), None, &idem).await;
        answers.push(r.assert_status(202));
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(h.drain_queue().await.len(), 1);
    // Without a key, every POST acts.
    for _ in 0..2 {
        h.call("POST", &test, Some(&key), None)
            .await
            .assert_status(202);
    }
    assert_eq!(h.drain_queue().await.len(), 2);
    // After the TTL the key is fresh again.
    h.clock.advance(Duration::hours(2));
    let third = h
        .call_with("POST", HOOKS, Some(&key), Some(valid_body()), &idem)
        .await
        .assert_status(201);
    assert_ne!(third["id"], first.json()["id"]);
    // Invalid keys.
    let long = "k".repeat(256);
    h.call_with(
        "POST",
        HOOKS,
        Some(&key),
        Some(valid_body()),
        &[("idempotency-key", &long)],
    )
    .await
    .assert_error(400, "invalid_idempotency_key");
    // Unauthenticated with a key: still 401.
    h.call_with("POST", HOOKS, None, Some(valid_body()), &idem)
        .await
        .assert_error(401, "unauthorized");
}

async fn openapi_document_is_served(b: Backend) {
    let Some(h) = h(b).await else { return };
    let r = h.call("GET", "/api/hooks/openapi.json", None, None).await;
    r.assert_status(200);
    assert_eq!(r.headers.get("content-type").unwrap(), "application/json");
    let checked_in =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../openapi.json"))
            .unwrap();
    assert_eq!(
        String::from_utf8(r.bytes.to_vec()).unwrap(),
        checked_in,
        "served == checked-in openapi.json"
    );
}

async fn concurrent_requests_with_one_idempotency_key_act_once(b: Backend) {
    let Some(h) = h(b).await else { return };
    let key = h.user().await;
    let h = std::sync::Arc::new(h);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..6 {
        let (h, key) = (h.clone(), key.clone());
        tasks.spawn(async move {
            let r = h
                .call_with(
                    "POST",
                    HOOKS,
                    Some(&key),
                    Some(valid_body()),
                    &[("idempotency-key", "same")],
                )
                .await;
            (r.status.as_u16(), r.json())
        });
    }
    let mut ids = HashSet::new();
    while let Some(r) = tasks.join_next().await {
        let (status, body) = r.unwrap();
        match status {
            201 => {
                ids.insert(body["id"].as_str().unwrap().to_owned());
            }
            409 => assert_eq!(body["error"], "idempotency_key_in_use"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(ids.len(), 1, "every 201 is the same webhook");
    let list = h
        .call("GET", HOOKS, Some(&key), None)
        .await
        .assert_status(200);
    assert_eq!(list["data"].as_array().unwrap().len(), 1, "created once");
}

async fn same_user_id_in_two_orgs_is_two_tenants(b: Backend) {
    let Some(h) = h(b).await else { return };
    let user = unique("shared-user");
    let in_org1 = h.key(&user, &unique("org1"), Role::User).await;
    let in_org2 = h.key(&user, &unique("org2"), Role::User).await;
    let w = h.create(&in_org1, "org1 hook").await;
    let p = format!("{HOOKS}/{}", w["id"].as_str().unwrap());
    h.call("GET", &p, Some(&in_org2), None)
        .await
        .assert_error(404, "not_found");
    h.call("DELETE", &p, Some(&in_org2), None)
        .await
        .assert_error(404, "not_found");
    assert_eq!(
        h.call("GET", HOOKS, Some(&in_org2), None)
            .await
            .assert_status(200)["data"],
        json!([])
    );
    h.call("GET", &p, Some(&in_org1), None)
        .await
        .assert_status(200);
}

/// Asserts a quota refusal: `429`, the JSON error body, and a `Retry-After` within the minute.
#[track_caller]
fn assert_quota(r: &crate::common::Resp, code: &str) -> u64 {
    r.assert_error(429, code);
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    retry
}

async fn test_quota_per_webhook_and_per_tenant(b: Backend) {
    let Some(h) = h_with(b, |c| {
        c.quotas.test_per_webhook = 3;
        c.quotas.test_per_tenant = 5;
    })
    .await
    else {
        return;
    };
    let org = unique("org");
    let key = h.key(&unique("user"), &org, Role::User).await;
    let test = |c: &Value| format!("{HOOKS}/{}/test", c["id"].as_str().unwrap());
    let (a, b2) = (h.create(&key, "a").await, h.create(&key, "b").await);
    for _ in 0..3 {
        h.call("POST", &test(&a), Some(&key), None)
            .await
            .assert_status(202);
    }
    let r = h.call("POST", &test(&a), Some(&key), None).await;
    let retry = assert_quota(&r, "rate_limited");
    // Retry-After is the end of the fixed minute window.
    let now = h.clock.now();
    let window_end = RateWindow::containing(now, 1).end();
    assert_eq!(
        retry,
        ((window_end - now).num_milliseconds() as u64).div_ceil(1000)
    );
    // The tenant's other webhook has its own per-webhook count, but shares the org's 5.
    for _ in 0..2 {
        h.call("POST", &test(&b2), Some(&key), None)
            .await
            .assert_status(202);
    }
    let r = h.call("POST", &test(&b2), Some(&key), None).await;
    assert_quota(&r, "rate_limited");
    assert_eq!(
        h.drain_queue().await.len(),
        5,
        "refused calls queue nothing"
    );
    // Another tenant is unaffected.
    let other = h.user().await;
    let c = h.create(&other, "c").await;
    h.call("POST", &test(&c), Some(&other), None)
        .await
        .assert_status(202);
    // The next window admits again.
    h.clock.advance(Duration::minutes(1));
    h.call("POST", &test(&a), Some(&key), None)
        .await
        .assert_status(202);
}

async fn replay_quota_and_one_replay_in_flight(b: Backend) {
    let Some(h) = h_with(b, |c| {
        c.quotas.replay_per_webhook = 2;
        c.quotas.replay_per_tenant = 3;
    })
    .await
    else {
        return;
    };
    let org = unique("org");
    let key = h.key(&unique("user"), &org, Role::User).await;
    let (a, b2) = (h.create(&key, "a").await, h.create(&key, "b").await);
    let replay = |c: &Value| format!("{HOOKS}/{}/replay", c["id"].as_str().unwrap());
    let body = json!({"since": (h.clock.now() - Duration::hours(1)).to_rfc3339(), "until": h.clock.now().to_rfc3339()});
    // One replay in flight per webhook: while the webhook's replay lease is held, another waits.
    let now = h.clock.now();
    let lease = format!("replay#{}", a["id"].as_str().unwrap());
    assert!(h
        .stores
        .leases
        .acquire(
            &lease,
            "another call",
            Term::new(now, now + Duration::minutes(2))
        )
        .await
        .unwrap());
    let r = h
        .call("POST", &replay(&a), Some(&key), Some(body.clone()))
        .await;
    assert_quota(&r, "replay_in_progress");
    h.stores
        .leases
        .release(&lease, "another call")
        .await
        .unwrap();
    h.call("POST", &replay(&a), Some(&key), Some(body.clone()))
        .await
        .assert_status(202);
    // ... and the finished replay released it: the per-webhook quota (2, the refused call
    // counted) is what refuses next.
    let r = h
        .call("POST", &replay(&a), Some(&key), Some(body.clone()))
        .await;
    assert_quota(&r, "rate_limited");
    // The org's third replay is allowed on the other webhook, its fourth is not.
    h.call("POST", &replay(&b2), Some(&key), Some(body.clone()))
        .await
        .assert_status(202);
    let r = h
        .call("POST", &replay(&b2), Some(&key), Some(body.clone()))
        .await;
    assert_quota(&r, "rate_limited");
    h.clock.advance(Duration::minutes(1));
    h.call("POST", &replay(&a), Some(&key), Some(body))
        .await
        .assert_status(202);
}

async fn replay_fills_the_backlog_up_to_its_cap(b: Backend) {
    // 3 deliveries a minute, 2 minutes of backlog at most: 6 slotted jobs.
    let Some(h) = h_with(b, |c| c.max_backlog_minutes = 2).await else {
        return;
    };
    let org = unique("org");
    let key = h.key(&unique("user"), &org, Role::User).await;
    let mut body = valid_body();
    body["rateLimitPerMinute"] = json!(3);
    let c = h
        .call("POST", HOOKS, Some(&key), Some(body))
        .await
        .assert_status(201);
    let p = format!("{HOOKS}/{}/replay", c["id"].as_str().unwrap());
    let t0 = h.clock.now() - Duration::hours(1);
    let mut ats = Vec::new();
    for i in 0..8 {
        let at = t0 + Duration::minutes(i);
        append(&h, &org, EventType::PresenceChanged, at).await;
        ats.push(at);
    }
    let window = json!({"since": (t0 - Duration::minutes(1)).to_rfc3339(), "until": h.clock.now().to_rfc3339()});
    let r = h
        .call("POST", &p, Some(&key), Some(window.clone()))
        .await
        .assert_status(202);
    assert_eq!(
        (r["queued"].clone(), r["truncated"].clone()),
        (json!(6), json!(true))
    );
    let next = chrono::DateTime::parse_from_rfc3339(r["nextSince"].as_str().unwrap()).unwrap();
    assert_eq!(next.with_timezone(&chrono::Utc), ats[6]);
    // Each job has its own slot, 20 s apart from now on: the worker sends them at the rate.
    let now = h.clock.now();
    let mut slots: Vec<_> = h
        .drain_queue()
        .await
        .iter()
        .map(|j| j.not_before.unwrap())
        .collect();
    slots.sort();
    assert_eq!(
        slots,
        (0..6)
            .map(|i| now + Duration::seconds(20 * i))
            .collect::<Vec<_>>()
    );
    // Full: refused until one job fits again (the first slot after the cap has passed).
    let r = h.call("POST", &p, Some(&key), Some(window.clone())).await;
    let retry = assert_quota(&r, "backlog_full");
    assert_eq!(retry, 20);
    assert!(h.drain_queue().await.is_empty());
    // A minute later three slots have passed: three more fit (after the six already slotted).
    h.clock.advance(Duration::minutes(1));
    let r = h
        .call("POST", &p, Some(&key), Some(window))
        .await
        .assert_status(202);
    assert_eq!(r["queued"], 3);
    let first = h
        .drain_queue()
        .await
        .iter()
        .map(|j| j.not_before.unwrap())
        .min()
        .unwrap();
    assert_eq!(first, now + Duration::seconds(120));
}

async fn replay_skips_events_too_large_for_the_queue(b: Backend) {
    let Some(h) = h(b).await else { return };
    let org = unique("org");
    let key = h.key(&unique("user"), &org, Role::User).await;
    let mut body = valid_body();
    body["eventTypes"] = json!(["presence:changed"]);
    let c = h
        .call("POST", HOOKS, Some(&key), Some(body))
        .await
        .assert_status(201);
    let p = format!("{HOOKS}/{}/replay", c["id"].as_str().unwrap());
    let t0 = h.clock.now() - Duration::hours(1);
    append(&h, &org, EventType::PresenceChanged, t0).await;
    // Kept by the event log (under DynamoDB's 400 KB item) but over SQS's 256 KiB message.
    let big = OutboundEvent {
        id: EventId::new_at((t0 + Duration::minutes(1)).timestamp_millis() as u64),
        event_type: EventType::PresenceChanged,
        org_id: org.clone(),
        created_at: t0 + Duration::minutes(1),
        body: format!("{{\"pad\":\"{}\"}}", "x".repeat(300 * 1024)),
    };
    h.stores
        .events
        .append(&big, h.clock.now() + Duration::days(30))
        .await
        .unwrap();
    let window = json!({"since": (t0 - Duration::minutes(1)).to_rfc3339(), "until": h.clock.now().to_rfc3339()});
    let r = h
        .call("POST", &p, Some(&key), Some(window))
        .await
        .assert_status(202);
    assert_eq!(
        (
            r["queued"].clone(),
            r["skippedTooLarge"].clone(),
            r["truncated"].clone()
        ),
        (json!(1), json!(1), json!(false))
    );
    assert_eq!(h.drain_queue().await.len(), 1);
}

/// The idempotency answer of a call that showed a secret: the same answer without it.
#[track_caller]
fn assert_replayed_without_secret(first: &Value, replay: &crate::common::Resp, status: u16) {
    let replayed = replay.assert_status(status);
    assert_eq!(replay.headers.get("idempotent-replayed").unwrap(), "true");
    assert!(replayed.get("secret").is_none(), "{replayed}");
    let mut expected = first.clone();
    expected.as_object_mut().unwrap().remove("secret");
    assert_eq!(replayed, expected);
}

/// Create (a generated and a caller-chosen secret) and rotate store only sealed secrets, and the
/// `Idempotency-Key` store keeps their answers without the secret (docs/security.md).
async fn secrets_are_sealed_at_rest_and_never_kept_for_a_replay(b: Backend) {
    let Some(h) = h(b).await else { return };
    let key = h.user().await;
    let idem = |k: &'static str| [("idempotency-key", k)];
    let generated = h
        .call_with("POST", HOOKS, Some(&key), Some(valid_body()), &idem("c1"))
        .await
        .assert_status(201);
    let mut body = valid_body();
    let chosen = format!("chosen-{}", unique("secret"));
    body["secret"] = json!(chosen);
    let given = h
        .call_with("POST", HOOKS, Some(&key), Some(body.clone()), &idem("c2"))
        .await
        .assert_status(201);
    assert_eq!(given["secret"], chosen.as_str(), "shown on create");
    let id = generated["id"].as_str().unwrap();
    let rotate_path = format!("{HOOKS}/{id}/rotate-secret");
    let rotated = h
        .call_with("POST", &rotate_path, Some(&key), None, &idem("r1"))
        .await
        .assert_status(200);

    let first = generated["secret"].as_str().unwrap().to_owned();
    let new = rotated["secret"].as_str().unwrap().to_owned();
    let sid: SubscriptionId = id.parse().unwrap();
    let gid: SubscriptionId = given["id"].as_str().unwrap().parse().unwrap();
    let sub = h.stored(&sid).await;
    assert!(sub.secret.is_sealed() && !sub.has_plain_secret(), "{sub:?}");
    assert_eq!(
        h.open_signing_secrets(&sub, h.clock.now()).await,
        [new.as_str(), first.as_str()],
        "the sealed secrets open to the ones shown"
    );
    let gsub = h.stored(&gid).await;
    assert!(gsub.secret.is_sealed());
    assert_eq!(h.open(&gsub, &gsub.secret).await, chosen);

    // Replays answer the stored response, without the secret.
    let replay = h
        .call_with("POST", HOOKS, Some(&key), Some(valid_body()), &idem("c1"))
        .await;
    assert_replayed_without_secret(&generated, &replay, 201);
    let replay = h
        .call_with("POST", HOOKS, Some(&key), Some(body), &idem("c2"))
        .await;
    assert_replayed_without_secret(&given, &replay, 201);
    let replay = h
        .call_with("POST", &rotate_path, Some(&key), None, &idem("r1"))
        .await;
    assert_replayed_without_secret(&rotated, &replay, 200);
    assert_eq!(
        h.open(&h.stored(&sid).await, &h.stored(&sid).await.secret)
            .await,
        new,
        "a replayed rotation rotates nothing"
    );

    let answers = h
        .idempotency_puts
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.status != 0)
        .count();
    assert_eq!(answers, 3, "three answers stored");
    let at_rest = h.at_rest(&[sid, gid]).await;
    for secret in [&first, &new, &chosen] {
        assert!(
            !at_rest.contains(secret.as_str()),
            "a plaintext secret at rest: {at_rest}"
        );
    }
    assert!(at_rest.contains(id), "the check sees the items");
}

/// An item written before sealing existed (its secret a plain JSON string) still opens, and the
/// next write of the subscription (an update, a rotation) seals it: current and retiring.
async fn a_legacy_plain_secret_is_sealed_by_the_next_write(b: Backend) {
    let Some(h) = h(b).await else { return };
    let (user, org) = (unique("user"), unique("org"));
    let key = h.key(&user, &org, Role::User).await;
    let legacy = |secret: &str| {
        relay_shared::subscription::Subscription::new(
            user.clone(),
            org.clone(),
            "https://example.com/hook",
            vec![EventType::PresenceChanged],
            secret,
            h.clock.now(),
        )
    };
    let (plain_a, plain_b) = (unique("legacy-secret-a"), unique("legacy-secret-b"));
    let (a, b2) = (legacy(&plain_a), legacy(&plain_b));
    for s in [&a, &b2] {
        h.stores.subscriptions.create(s, 10).await.unwrap();
        assert!(
            h.stored(&s.id).await.has_plain_secret(),
            "written plain, as an old release did"
        );
    }

    // An update seals it; the same secret still signs.
    h.call(
        "PATCH",
        &format!("{HOOKS}/{}", a.id),
        Some(&key),
        Some(json!({"name": "renamed"})),
    )
    .await
    .assert_status(200);
    let sa = h.stored(&a.id).await;
    assert!(sa.secret.is_sealed() && !sa.has_plain_secret(), "{sa:?}");
    assert_eq!(
        h.open_signing_secrets(&sa, h.clock.now()).await,
        [plain_a.as_str()]
    );

    // A rotation seals the new secret and the legacy one it retires; both sign in the grace.
    let r = rotate(
        &h,
        &key,
        &format!("{HOOKS}/{}/rotate-secret", b2.id),
        Some(3600),
    )
    .await
    .assert_status(200);
    let sb = h.stored(&b2.id).await;
    assert!(!sb.has_plain_secret(), "{sb:?}");
    assert!(sb.retiring_secrets.iter().all(|r| r.secret.is_sealed()));
    let now = h.clock.now() + Duration::seconds(60);
    let opened = h.open_signing_secrets(&sb, now).await;
    assert_eq!(opened, [r["secret"].as_str().unwrap(), plain_b.as_str()]);
    let signing: Vec<SigningSecret> = opened.into_iter().map(SigningSecret::new).collect();
    let headers = delivery_headers(&SignatureInput {
        delivery_id: "msg_legacy",
        timestamp: now,
        event_type: EventType::PresenceChanged,
        subscription_id: &b2.id.to_string(),
        org_id: &org,
        secrets: &signing,
        body: b"{}",
    });
    let sig = &headers
        .iter()
        .find(|(n, _)| *n == "webhook-signature")
        .unwrap()
        .1;
    let legacy_sig = standard_webhooks_signature(
        &SigningSecret::new(plain_b.as_str()),
        "msg_legacy",
        now.timestamp(),
        b"{}",
    );
    assert!(
        sig.split(' ').any(|s| s == legacy_sig),
        "the legacy secret still verifies"
    );

    let at_rest = h.at_rest(&[a.id, b2.id]).await;
    for secret in [&plain_a, &plain_b] {
        assert!(!at_rest.contains(secret.as_str()), "{at_rest}");
    }
}

/// A key service that fails every data key with `error`.
struct FailingKeys(fn(String) -> relay_shared::secrets_at_rest::SealError);

#[async_trait::async_trait]
impl relay_shared::secrets_at_rest::DataKeySource for FailingKeys {
    async fn new_data_key(
        &self,
        _: &relay_shared::secrets_at_rest::SecretContext,
    ) -> Result<relay_shared::secrets_at_rest::DataKey, relay_shared::secrets_at_rest::SealError>
    {
        Err((self.0)("the key service said no".into()))
    }
}

/// The key service down: create and rotate answer `503 secrets_key_unavailable` (a refusal:
/// `500`), and nothing is stored, not even the idempotent answer.
async fn a_failing_key_service_is_503_and_changes_nothing(b: Backend) {
    use relay_shared::secrets_at_rest::SealError;
    let Some(h) = h(b).await else { return };
    let key = h.user().await;
    let existing = h.create(&key, "before the outage").await;
    let sid: SubscriptionId = existing["id"].as_str().unwrap().parse().unwrap();
    let before = h.stored(&sid).await;
    let h = h.with_data_keys(std::sync::Arc::new(FailingKeys(SealError::Unavailable)));
    let idem = [("idempotency-key", "during-the-outage")];
    let r = h
        .send_allowing_5xx(request(
            "POST",
            HOOKS,
            Some(&key),
            Some(valid_body()),
            &idem,
        ))
        .await;
    let e = r.assert_error(503, "secrets_key_unavailable");
    assert!(
        !e.to_string().contains("said no"),
        "the detail stays in the log: {e}"
    );
    let rotate_path = format!("{HOOKS}/{sid}/rotate-secret");
    h.send_allowing_5xx(request("POST", &rotate_path, Some(&key), None, &[]))
        .await
        .assert_error(503, "secrets_key_unavailable");
    let list = h
        .call("GET", HOOKS, Some(&key), None)
        .await
        .assert_status(200);
    assert_eq!(
        list["data"].as_array().unwrap().len(),
        1,
        "nothing created: {list}"
    );
    assert!(h.stored(&sid).await == before, "nothing rotated");
    assert!(
        h.idempotency_puts
            .lock()
            .unwrap()
            .iter()
            .all(|r| r.status == 0),
        "no answer stored for a 503"
    );

    let h = h.with_data_keys(std::sync::Arc::new(FailingKeys(SealError::Rejected)));
    h.send_allowing_5xx(request("POST", &rotate_path, Some(&key), None, &[]))
        .await
        .assert_error(500, "internal");
    h.send_allowing_5xx(request("POST", HOOKS, Some(&key), Some(valid_body()), &[]))
        .await
        .assert_error(500, "internal");
    assert!(h.stored(&sid).await == before, "nothing rotated");
    let list = h
        .call("GET", HOOKS, Some(&key), None)
        .await
        .assert_status(200);
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
}
