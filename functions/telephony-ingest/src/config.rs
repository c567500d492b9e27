//! Configuration of the ingest function: how incoming webhooks are authenticated, and the
//! retention and retry knobs (all optional, with defaults).

use std::sync::Arc;

use relay_shared::config::{flag, parsed_or, ConfigError, Env};

/// Env: ARN of the Secrets Manager secret holding the Webex webhook secret (Lambda).
pub const ENV_SECRET_ARN: &str = "WEBEX_WEBHOOK_SECRET_ARN";
/// Env: the Webex webhook secret itself (local runs).
pub const ENV_SECRET: &str = "WEBEX_WEBHOOK_SECRET";
/// Env: `true` lets the function start without any secret and accept unsigned webhooks (local only).
pub const ENV_ALLOW_UNSIGNED: &str = "ALLOW_UNSIGNED_WEBHOOKS";
/// Env (optional): how long an ingest dedupe record lives, in hours (default 24).
pub const ENV_DEDUPE_TTL_HOURS: &str = "DEDUPE_TTL_HOURS";
/// Env (optional): how long outbound events are kept for replay, in days (default 14).
pub const ENV_EVENT_RETENTION_DAYS: &str = "EVENT_RETENTION_DAYS";
/// Env (optional): how long a call's lifecycle record lives after its last event, in hours (default 24).
pub const ENV_CALL_STATE_TTL_HOURS: &str = "CALL_STATE_TTL_HOURS";

/// The largest body accepted (API Gateway's own limit is higher; Webex bodies are a few KiB).
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// How incoming webhooks are authenticated.
#[derive(Clone)]
pub enum WebhookAuth {
    /// `X-Spark-Signature` must be the HMAC-SHA1 of the body under this secret.
    Secret(Arc<[u8]>),
    /// No secret configured and `ALLOW_UNSIGNED_WEBHOOKS=true`: every body is accepted unsigned.
    /// Local development only; logged loudly at start-up and on every request.
    InsecureUnsigned,
}

impl WebhookAuth {
    pub fn secret(secret: impl AsRef<[u8]>) -> Self {
        WebhookAuth::Secret(Arc::from(secret.as_ref()))
    }

    pub fn is_insecure(&self) -> bool {
        matches!(self, WebhookAuth::InsecureUnsigned)
    }
}

impl std::fmt::Debug for WebhookAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WebhookAuth::Secret(_) => f.write_str("Secret(<redacted>)"),
            WebhookAuth::InsecureUnsigned => f.write_str("InsecureUnsigned"),
        }
    }
}

/// Where the webhook secret comes from, decided from the environment before any I/O.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// Read once per cold start from Secrets Manager.
    SecretsManager(String),
    /// Given in plain text (`WEBEX_WEBHOOK_SECRET`).
    Plain(Redacted),
    /// No secret, insecure flag set.
    InsecureUnsigned,
}

/// A string that never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct Redacted(pub String);

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// `WEBEX_WEBHOOK_SECRET_ARN` wins, then `WEBEX_WEBHOOK_SECRET`; with neither the function refuses
/// to start unless `ALLOW_UNSIGNED_WEBHOOKS=true`.
pub fn secret_source(env: &dyn Env) -> Result<SecretSource, ConfigError> {
    if let Some(arn) = env.var(ENV_SECRET_ARN) {
        return Ok(SecretSource::SecretsManager(arn));
    }
    if let Some(secret) = env.var(ENV_SECRET) {
        return Ok(SecretSource::Plain(Redacted(secret)));
    }
    if flag(env, ENV_ALLOW_UNSIGNED, false)? {
        return Ok(SecretSource::InsecureUnsigned);
    }
    Err(ConfigError::Missing {
        name: ENV_SECRET_ARN.into(),
        hint: format!(
            "the Webex webhook secret: set {ENV_SECRET_ARN} (Secrets Manager) or {ENV_SECRET}; \
             {ENV_ALLOW_UNSIGNED}=true accepts unsigned webhooks, for local use only"
        ),
    })
}

/// A Secrets Manager `SecretString` is either the secret itself or a JSON object holding it under
/// `secret` (or `webhookSecret` / `WEBEX_WEBHOOK_SECRET`), as console-created secrets are.
pub fn secret_from_secret_string(raw: &str) -> String {
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(raw) {
        for key in ["secret", "webhookSecret", ENV_SECRET] {
            if let Some(serde_json::Value::String(s)) = map.get(key) {
                return s.clone();
            }
        }
    }
    raw.trim_end_matches(['\r', '\n']).to_owned()
}

/// Everything the ingest service needs besides its ports.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    pub auth: WebhookAuth,
    pub max_body_bytes: usize,
    /// How long a processed event is remembered (Webex retries within minutes).
    pub dedupe_ttl: chrono::Duration,
    /// How long an in-flight claim blocks a concurrent duplicate (longer than the function timeout).
    pub dedupe_lease: chrono::Duration,
    pub call_state_ttl: chrono::Duration,
    pub event_retention: chrono::Duration,
    /// `Retry-After` on 503 answers.
    pub retry_after_seconds: u32,
    /// Optimistic-concurrency attempts for the call-state write.
    pub max_call_state_attempts: u32,
}

impl IngestConfig {
    pub fn new(auth: WebhookAuth) -> Self {
        Self {
            auth,
            max_body_bytes: MAX_BODY_BYTES,
            dedupe_ttl: chrono::Duration::hours(24),
            dedupe_lease: chrono::Duration::seconds(60),
            call_state_ttl: chrono::Duration::hours(24),
            event_retention: chrono::Duration::days(14),
            retry_after_seconds: 5,
            max_call_state_attempts: 5,
        }
    }

    /// Defaults overridden by the optional `DEDUPE_TTL_HOURS`, `EVENT_RETENTION_DAYS`,
    /// `CALL_STATE_TTL_HOURS`.
    pub fn from_env(env: &dyn Env, auth: WebhookAuth) -> Result<Self, ConfigError> {
        let mut c = Self::new(auth);
        c.dedupe_ttl = chrono::Duration::hours(positive(env, ENV_DEDUPE_TTL_HOURS, 24)?);
        c.event_retention = chrono::Duration::days(positive(env, ENV_EVENT_RETENTION_DAYS, 14)?);
        c.call_state_ttl = chrono::Duration::hours(positive(env, ENV_CALL_STATE_TTL_HOURS, 24)?);
        Ok(c)
    }
}

fn positive(env: &dyn Env, name: &str, default: i64) -> Result<i64, ConfigError> {
    let v = parsed_or::<i64>(env, name, default)?;
    if v <= 0 || v > 24 * 3650 {
        return Err(ConfigError::Invalid {
            name: name.into(),
            value: v.to_string(),
            reason: "must be a positive number".into(),
        });
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_source_precedence_and_refusal() {
        let env = [
            (ENV_SECRET_ARN, "arn:aws:secretsmanager:x"),
            (ENV_SECRET, "plain"),
        ];
        assert_eq!(
            secret_source(&env).unwrap(),
            SecretSource::SecretsManager("arn:aws:secretsmanager:x".into())
        );
        let env = [(ENV_SECRET, "plain")];
        assert_eq!(
            secret_source(&env).unwrap(),
            SecretSource::Plain(Redacted("plain".into()))
        );
        let env = [(ENV_ALLOW_UNSIGNED, "true")];
        assert_eq!(secret_source(&env).unwrap(), SecretSource::InsecureUnsigned);
        let env = [(ENV_ALLOW_UNSIGNED, "false")];
        let e = secret_source(&env).unwrap_err().to_string();
        assert!(
            e.contains(ENV_SECRET_ARN) && e.contains(ENV_ALLOW_UNSIGNED),
            "{e}"
        );
        let env: [(&str, &str); 0] = [];
        assert!(secret_source(&env).is_err());
    }

    #[test]
    fn secret_string_plain_or_json() {
        assert_eq!(secret_from_secret_string("abc\n"), "abc");
        assert_eq!(secret_from_secret_string(r#"{"secret":"s3"}"#), "s3");
        assert_eq!(secret_from_secret_string(r#"{"webhookSecret":"s4"}"#), "s4");
        assert_eq!(
            secret_from_secret_string(r#"{"other":"x"}"#),
            r#"{"other":"x"}"#
        );
    }

    #[test]
    fn debug_never_shows_secrets() {
        let a = WebhookAuth::secret("hunter2");
        assert!(!format!("{a:?}").contains("hunter2"));
        assert!(!format!("{:?}", IngestConfig::new(a)).contains("hunter2"));
        assert!(
            !format!("{:?}", SecretSource::Plain(Redacted("hunter2".into()))).contains("hunter2")
        );
    }

    #[test]
    fn ttl_overrides() {
        let env = [(ENV_DEDUPE_TTL_HOURS, "2"), (ENV_EVENT_RETENTION_DAYS, "3")];
        let c = IngestConfig::from_env(&env, WebhookAuth::InsecureUnsigned).unwrap();
        assert_eq!(c.dedupe_ttl, chrono::Duration::hours(2));
        assert_eq!(c.event_retention, chrono::Duration::days(3));
        assert_eq!(c.call_state_ttl, chrono::Duration::hours(24));
        let env = [(ENV_DEDUPE_TTL_HOURS, "0")];
        assert!(IngestConfig::from_env(&env, WebhookAuth::InsecureUnsigned).is_err());
    }
}
