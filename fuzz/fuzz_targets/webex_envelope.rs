//! The Webex webhook as telephony-ingest receives it: the `X-Spark-Signature` check (every secret
//! of a `WebhookSecrets`, per org) and the envelope parser with its dedupe key.
//!
//! Input: byte 0 picks the mode; in "own signature" mode the first line is the header value and the
//! rest the body, otherwise the body is signed correctly.
#![no_main]

use libfuzzer_sys::fuzz_target;
use relay_shared::webex::{
    verify_webex_signature, webex_signature, SecretRole, SignatureError, WebhookSecrets,
    TELEPHONY_RESOURCE,
};
use telephony_ingest::envelope::{
    dedupe_key, event_millis, parse_detail, parse_envelope, Unparsed,
};

const SECRET: &str = "fuzz-webhook-secret-0123456789";
const OLD: &str = "fuzz-previous-secret-987654321";
const ORG_SECRET: &str = "org-a-only-secret-abcdefghijk";

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (signature, body) = if mode & 1 == 1 {
        let cut = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
        let sig = String::from_utf8_lossy(&rest[..cut]).into_owned();
        (sig, rest.get(cut + 1..).unwrap_or(&[]))
    } else {
        (webex_signature(SECRET.as_bytes(), rest), rest)
    };
    check_signature(body, &signature, mode);
    check_envelope(body);
});

fn check_signature(body: &[u8], signature: &str, mode: u8) {
    let single = WebhookSecrets::single(SECRET.into(), Some(OLD.into()));
    let mut per_org = WebhookSecrets::default();
    per_org.push(Some("org-a".into()), SecretRole::Current, ORG_SECRET.into());
    per_org.push(None, SecretRole::Previous, SECRET.into());

    let own = verify_webex_signature(SECRET.as_bytes(), body, Some(signature));
    let set = single.verify(body, Some(signature));
    let good = webex_signature(SECRET.as_bytes(), body);
    let normalised = signature.trim().to_ascii_lowercase();
    // Accepted exactly when it is the HMAC (any case, surrounding whitespace) of one secret.
    assert_eq!(own.is_ok(), normalised == good, "single-secret verdict");
    let old_good = webex_signature(OLD.as_bytes(), body);
    match &set {
        Ok(v) => {
            assert!(normalised == good || normalised == old_good);
            let want = if normalised == good {
                SecretRole::Current
            } else {
                SecretRole::Previous
            };
            assert_eq!(v.role, want);
            assert!(
                v.admits("any-org"),
                "a secret for any org vouches for every org"
            );
        }
        Err(e) => {
            assert!(normalised != good && normalised != old_good);
            assert_eq!(
                own.as_ref().err(),
                Some(e),
                "both paths give the same reason"
            );
        }
    }
    // The per-org secret vouches for its org only.
    if let Ok(v) = per_org.verify(body, Some(signature)) {
        if normalised == webex_signature(ORG_SECRET.as_bytes(), body) && normalised != good {
            assert!(v.admits("org-a") && !v.admits("org-b"));
            assert_eq!(v.role, SecretRole::Current);
        }
    }
    // A correct signature with one flipped hex digit never verifies.
    if mode & 2 == 2 && !good.is_empty() {
        let i = usize::from(mode >> 2) % good.len();
        let mut bytes = good.into_bytes();
        bytes[i] = if bytes[i] == b'0' { b'1' } else { b'0' };
        let flipped = String::from_utf8(bytes).expect("hex");
        assert_eq!(
            verify_webex_signature(SECRET.as_bytes(), body, Some(&flipped)),
            Err(SignatureError::Mismatch)
        );
    }
}

fn check_envelope(body: &[u8]) {
    match parse_envelope(body) {
        Ok(env) => {
            assert_eq!(env.resource, TELEPHONY_RESOURCE);
            let key = dedupe_key(&env.data);
            assert!(
                key.starts_with("tel:") && key.len() == 4 + 64,
                "bounded key: {key}"
            );
            assert!(event_millis(&env.data) < 1 << 48);
            // What is forwarded parses back to the same envelope and the same event.
            let json = serde_json::to_vec(&env).expect("serialises");
            let again = match parse_envelope(&json) {
                Ok(e) => e,
                Err(_) => panic!(
                    "re-serialised envelope does not parse: {}",
                    String::from_utf8_lossy(&json)
                ),
            };
            assert_eq!(again, env, "round trip");
            assert_eq!(dedupe_key(&again.data), key);
        }
        Err(Unparsed::OtherResource(r)) => assert_ne!(r, TELEPHONY_RESOURCE),
        Err(Unparsed::Invalid(e)) => {
            let _ = parse_detail(&e);
            let _ = e.code();
        }
    }
}
