use chrono::{TimeZone, Utc};
use serde::Deserialize;

use super::*;
use crate::events::EventType;

#[test]
fn standard_webhooks_official_vector_1() {
    let secret = SigningSecret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    let sig = standard_webhooks_signature(
        &secret,
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        1614265330,
        br#"{"test": 2432232314}"#,
    );
    assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
}

#[test]
fn standard_webhooks_official_vector_2() {
    let secret = SigningSecret::new("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD");
    let body = br#"{"email":"test@example.com","username":"test_user"}"#;
    let sig =
        standard_webhooks_signature(&secret, "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk", 1649367553, body);
    assert_eq!(sig, "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=");
}

#[derive(Deserialize)]
struct HexVector {
    secret: String,
    body: String,
    x_servicehook_signature: String,
    x_hook_signature: String,
}

#[test]
fn hex_schemes_match_python_hmac_vectors() {
    let vectors: Vec<HexVector> =
        serde_json::from_str(include_str!("../../testdata/signing_vectors.json")).unwrap();
    assert_eq!(vectors.len(), 4);
    for v in vectors {
        let secret = SigningSecret::new(v.secret.clone());
        assert_eq!(
            service_hook_signature(&secret, v.body.as_bytes()),
            v.x_servicehook_signature,
            "{}",
            v.secret
        );
        assert_eq!(
            hook_signature(&secret, v.body.as_bytes()),
            v.x_hook_signature,
            "{}",
            v.secret
        );
    }
}

#[test]
fn unprefixed_secret_is_utf8_bytes_for_standard_webhooks_too() {
    let a = standard_webhooks_signature(&SigningSecret::new("plain-secret"), "m", 1, b"{}");
    let b = standard_webhooks_signature(&SigningSecret::new("plain-secret"), "m", 1, b"{}");
    assert_eq!(a, b);
    assert_ne!(
        a,
        standard_webhooks_signature(&SigningSecret::new("plain-secreT"), "m", 1, b"{}")
    );
}

#[test]
fn generated_secret_is_whsec_32_bytes() {
    let s = SigningSecret::generate();
    assert!(s.expose().starts_with("whsec_"));
    assert_eq!(s.standard_key().len(), 32);
    assert_ne!(s, SigningSecret::generate());
    assert_eq!(format!("{s:?}"), "SigningSecret(<redacted>)");
}

#[test]
fn headers_carry_every_scheme_and_one_signature_per_valid_secret() {
    let secrets = [
        SigningSecret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
        SigningSecret::new("old-secret-old-secret-0001"),
    ];
    let at = Utc.timestamp_opt(1614265330, 0).unwrap();
    let body = br#"{"payload":"user-presence","items":[]}"#;
    let headers = delivery_headers(&SignatureInput {
        delivery_id: "msg_p5jXN8AQM9LWM0D4loKWxJek",
        timestamp: at,
        event_type: EventType::PresenceChanged,
        subscription_id: "wh_x",
        org_id: "org-1",
        secrets: &secrets,
        body,
    });
    let get = |n: &str| {
        headers
            .iter()
            .find(|(k, _)| *k == n)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    let sigs: Vec<String> = get("webhook-signature")
        .split(' ')
        .map(str::to_owned)
        .collect();
    assert_eq!(sigs.len(), 2);
    assert_eq!(
        sigs[0],
        standard_webhooks_signature(
            &secrets[0],
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            body
        )
    );
    assert_eq!(
        sigs[1],
        standard_webhooks_signature(
            &secrets[1],
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            body
        )
    );
    assert_eq!(get("webhook-timestamp"), "1614265330");
    assert_eq!(get("x-servicehook-timestamp"), "2021-02-25T15:02:10Z");
    assert_eq!(get("x-hook-signature"), hook_signature(&secrets[0], body));
    assert_eq!(
        get("x-servicehook-signature"),
        service_hook_signature(&secrets[0], body)
    );
    assert_eq!(get("x-servicehook-event"), "presence:changed");
    assert_eq!(get("x-servicehook-uuid"), "wh_x");
    assert_eq!(get("x-org-id"), "org-1");
    assert_eq!(get("content-type"), "application/json");
    assert!(get("user-agent").starts_with("webex-relay/"));
}

#[test]
fn telephony_headers_have_no_org_header() {
    let secrets = [SigningSecret::new("s-123456789012345678901234")];
    let headers = delivery_headers(&SignatureInput {
        delivery_id: "msg_1",
        timestamp: Utc::now(),
        event_type: EventType::TelephonyCreated,
        subscription_id: "wh_x",
        org_id: "org-1",
        secrets: &secrets,
        body: b"{}",
    });
    assert!(headers.iter().all(|(k, _)| *k != "x-org-id"));
}

/// What the attempt log keeps: every header, in order, with no signature value (nor anything an
/// HMAC under either secret could be recomputed from besides the body, which the API shows).
#[test]
fn recorded_headers_keep_every_name_but_no_signature() {
    let secrets = [
        SigningSecret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
        SigningSecret::new("old-secret-old-secret-0001"),
    ];
    let body = b"{}";
    let headers = delivery_headers(&SignatureInput {
        delivery_id: "msg_1",
        timestamp: Utc.timestamp_opt(1614265330, 0).unwrap(),
        event_type: EventType::PresenceChanged,
        subscription_id: "wh_x",
        org_id: "org-1",
        secrets: &secrets,
        body,
    });
    let recorded = recorded_headers(&headers);
    let names = |h: &[(String, String)]| h.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    let sent: Vec<(String, String)> = headers
        .iter()
        .map(|(n, v)| ((*n).to_owned(), v.clone()))
        .collect();
    assert_eq!(names(&recorded), names(&sent));
    let get = |n: &str| recorded.iter().find(|(k, _)| k == n).unwrap().1.clone();
    assert_eq!(get("webhook-signature"), "v1,<redacted> v1,<redacted>");
    assert_eq!(get("x-hook-signature"), "sha256=<redacted>");
    assert_eq!(get("x-servicehook-signature"), "<redacted>");
    assert_eq!(get("webhook-id"), "msg_1");
    for (name, value) in &sent {
        if name.contains("signature") {
            // Each signature's MAC, without its scheme prefix (`v1,`, `sha256=`).
            for sig in value.split(' ') {
                let mac = sig
                    .strip_prefix("v1,")
                    .or_else(|| sig.strip_prefix("sha256="))
                    .unwrap_or(sig);
                assert!(mac.len() >= 32, "{name}: {sig}");
                assert!(recorded.iter().all(|(_, v)| !v.contains(mac)), "{name}");
            }
        }
    }
    for secret in [
        "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "old-secret-old-secret-0001",
    ] {
        assert!(recorded.iter().all(|(_, v)| !v.contains(secret)));
    }
}
