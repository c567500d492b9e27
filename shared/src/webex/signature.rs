//! Verification of incoming Webex webhooks: `X-Spark-Signature` (or `X-Webex-Signature`) is the
//! hex HMAC-SHA1 of the raw body under the webhook's secret, as Webex signs webhooks
//! (docs/telephony-ingest.md). [`WebhookSecrets`] is every secret a deployment accepts: per org
//! (or for any org), the current one and the previous one during a rotation.

use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha1::Sha1;

/// Header Webex signs with; `X-Webex-Signature` is accepted as a fallback.
pub const SPARK_SIGNATURE_HEADER: &str = "x-spark-signature";
pub const WEBEX_SIGNATURE_HEADER: &str = "x-webex-signature";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    #[error("missing X-Spark-Signature (or X-Webex-Signature) header")]
    Missing,
    #[error("signature is not 40 hexadecimal characters")]
    Malformed,
    #[error("signature does not match the body")]
    Mismatch,
}

/// Hex HMAC-SHA1 of `body` under `secret`, as Webex computes it.
pub fn webex_signature(secret: &[u8], body: &[u8]) -> String {
    let mut mac = hmac_sha1(secret);
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

fn hmac_sha1(secret: &[u8]) -> Hmac<Sha1> {
    <Hmac<Sha1> as KeyInit>::new_from_slice(secret).expect("HMAC takes keys of any length")
}

/// The 20 bytes of a hex signature (any case, surrounding whitespace ignored).
fn decode_signature(signature: Option<&str>) -> Result<Vec<u8>, SignatureError> {
    let signature = signature
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or(SignatureError::Missing)?;
    let expected = hex::decode(signature).map_err(|_| SignatureError::Malformed)?;
    if expected.len() != 20 {
        return Err(SignatureError::Malformed);
    }
    Ok(expected)
}

/// Checks `signature` (hex, any case) against `body` in constant time.
pub fn verify_webex_signature(
    secret: &[u8],
    body: &[u8],
    signature: Option<&str>,
) -> Result<(), SignatureError> {
    let expected = decode_signature(signature)?;
    let mut mac = hmac_sha1(secret);
    mac.update(body);
    mac.verify_slice(&expected)
        .map_err(|_| SignatureError::Mismatch)
}

/// Which of an org's secrets verified a webhook: the current one, or the previous one during a
/// rotation (the window between storing a new secret and Webex signing with it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum SecretRole {
    Current,
    Previous,
}

impl SecretRole {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// One secret webhooks may be signed with, and the org whose events it may vouch for.
#[derive(Debug, Clone)]
pub struct WebhookSecret {
    /// `None`: any org (a deployment with one secret for all its webhooks).
    pub org_id: Option<String>,
    pub role: SecretRole,
    /// `Debug` redacts it.
    pub secret: SecretString,
}

/// Every secret an incoming webhook may be signed with: per org (or for any org), the current
/// one and, during a rotation, the previous one (docs/telephony-ingest.md, "Webhook secrets").
#[derive(Debug, Clone, Default)]
pub struct WebhookSecrets {
    secrets: Vec<WebhookSecret>,
}

/// A signature that matched: which role, and which orgs' events the matching secret(s) vouch for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub role: SecretRole,
    /// `None`: a secret for any org matched.
    orgs: Option<Vec<String>>,
}

impl Verified {
    /// Whether a body claiming `org_id` counts: only when a secret that verified it is that org's
    /// (or a secret for any org).
    pub fn admits(&self, org_id: &str) -> bool {
        self.orgs
            .as_ref()
            .is_none_or(|orgs| orgs.iter().any(|o| o == org_id))
    }
}

impl WebhookSecrets {
    /// One secret for every org, and the previous one during a rotation.
    pub fn single(current: SecretString, previous: Option<SecretString>) -> Self {
        let mut s = Self::default();
        s.push(None, SecretRole::Current, current);
        if let Some(p) = previous {
            s.push(None, SecretRole::Previous, p);
        }
        s
    }

    pub fn push(&mut self, org_id: Option<String>, role: SecretRole, secret: SecretString) {
        self.secrets.push(WebhookSecret {
            org_id,
            role,
            secret,
        });
    }

    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &WebhookSecret> {
        self.secrets.iter()
    }

    /// The secret to give Webex for `org_id`'s webhook (`None`: the single-secret form): that
    /// org's current secret, else the current secret for any org.
    pub fn signing_secret(&self, org_id: Option<&str>) -> Option<&SecretString> {
        let current = |want: Option<&str>| {
            self.secrets
                .iter()
                .find(|s| s.role == SecretRole::Current && s.org_id.as_deref() == want)
        };
        org_id
            .and_then(|o| current(Some(o)))
            .or_else(|| current(None))
            .map(|s| &s.secret)
    }

    /// Checks `signature` against every secret, each in constant time and all of them every
    /// time (no early exit: the timing says nothing about which secret matched).
    pub fn verify(&self, body: &[u8], signature: Option<&str>) -> Result<Verified, SignatureError> {
        let expected = decode_signature(signature)?;
        let mut role = None;
        let mut orgs: Option<Vec<String>> = Some(Vec::new());
        for s in &self.secrets {
            let mut mac = hmac_sha1(s.secret.expose_secret().as_bytes());
            mac.update(body);
            if mac.verify_slice(&expected).is_ok() {
                if role != Some(SecretRole::Current) {
                    role = Some(s.role);
                }
                match (&s.org_id, &mut orgs) {
                    (None, _) => orgs = None,
                    (Some(o), Some(list)) => list.push(o.clone()),
                    (Some(_), None) => {}
                }
            }
        }
        match role {
            Some(role) => Ok(Verified { role, orgs }),
            None => Err(SignatureError::Mismatch),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Computed independently: python3 -c 'import hmac,hashlib;print(hmac.new(b"mySecretToValidateRequests",b"{\"id\":\"x\"}",hashlib.sha1).hexdigest())'
    const VECTOR_SECRET: &[u8] = b"mySecretToValidateRequests";
    const VECTOR_BODY: &[u8] = br#"{"id":"x"}"#;
    const VECTOR_SIG: &str = include_str!("../../testdata/webex_sha1_vector.txt");

    #[test]
    fn matches_python_hmac_vector() {
        assert_eq!(
            webex_signature(VECTOR_SECRET, VECTOR_BODY),
            VECTOR_SIG.trim()
        );
        verify_webex_signature(VECTOR_SECRET, VECTOR_BODY, Some(VECTOR_SIG.trim())).unwrap();
        verify_webex_signature(
            VECTOR_SECRET,
            VECTOR_BODY,
            Some(&VECTOR_SIG.trim().to_uppercase()),
        )
        .unwrap();
    }

    #[test]
    fn rejects_missing_malformed_and_wrong() {
        assert_eq!(
            verify_webex_signature(b"k", b"b", None),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify_webex_signature(b"k", b"b", Some("  ")),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify_webex_signature(b"k", b"b", Some("zz")),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify_webex_signature(b"k", b"b", Some("abcd")),
            Err(SignatureError::Malformed)
        );
        let good = webex_signature(b"k", b"b");
        assert_eq!(
            verify_webex_signature(b"other", b"b", Some(&good)),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_webex_signature(b"k", b"b2", Some(&good)),
            Err(SignatureError::Mismatch)
        );
    }

    fn sig(secret: &str, body: &[u8]) -> String {
        webex_signature(secret.as_bytes(), body)
    }

    #[test]
    fn current_and_previous_verify_an_unrelated_secret_does_not() {
        let set = WebhookSecrets::single("new".into(), Some("old".into()));
        let body = br#"{"orgId":"o"}"#;
        let v = set.verify(body, Some(&sig("new", body))).unwrap();
        assert_eq!(v.role, SecretRole::Current);
        assert!(v.admits("o") && v.admits("any"));
        let v = set.verify(body, Some(&sig("old", body))).unwrap();
        assert_eq!(v.role, SecretRole::Previous);
        assert_eq!(
            set.verify(body, Some(&sig("unrelated", body))),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(set.verify(body, None), Err(SignatureError::Missing));
        assert_eq!(set.verify(body, Some("zz")), Err(SignatureError::Malformed));
        assert_eq!(
            WebhookSecrets::default().verify(body, Some(&sig("new", body))),
            Err(SignatureError::Mismatch)
        );
        let only = WebhookSecrets::single("new".into(), None);
        assert!(only.verify(body, Some(&sig("old", body))).is_err());
    }

    #[test]
    fn an_org_secret_vouches_for_its_org_only() {
        let mut set = WebhookSecrets::default();
        set.push(Some("A".into()), SecretRole::Current, "a-new".into());
        set.push(Some("A".into()), SecretRole::Previous, "a-old".into());
        set.push(Some("B".into()), SecretRole::Current, "b".into());
        let body = b"{}";
        let v = set.verify(body, Some(&sig("a-old", body))).unwrap();
        assert_eq!(v.role, SecretRole::Previous);
        assert!(v.admits("A"));
        assert!(!v.admits("B"), "org A's secret must not vouch for org B");
        let v = set.verify(body, Some(&sig("b", body))).unwrap();
        assert!(v.admits("B") && !v.admits("A"));
        // The same text configured for two orgs vouches for both.
        set.push(Some("C".into()), SecretRole::Current, "b".into());
        let v = set.verify(body, Some(&sig("b", body))).unwrap();
        assert!(v.admits("B") && v.admits("C") && !v.admits("A"));
    }

    #[test]
    fn signing_secret_is_the_orgs_current_else_the_shared_one() {
        let mut set = WebhookSecrets::single("shared".into(), Some("old".into()));
        set.push(Some("A".into()), SecretRole::Previous, "a-old".into());
        set.push(Some("A".into()), SecretRole::Current, "a".into());
        let get = |o| set.signing_secret(o).map(|s| s.expose_secret().to_owned());
        assert_eq!(get(Some("A")).as_deref(), Some("a"));
        assert_eq!(get(Some("B")).as_deref(), Some("shared"));
        assert_eq!(get(None).as_deref(), Some("shared"));
        assert!(WebhookSecrets::default().signing_secret(None).is_none());
        assert!(!format!("{set:?}").contains("a-old"));
    }
}
