//! Configuration of the ingest function: how incoming webhooks are authenticated, and the
//! retention and retry knobs (all optional, with defaults).

use std::sync::Arc;

use relay_shared::adapters::aws::secrets::{SecretError, SecretsManager};
use relay_shared::config::{
    defaults, in_range, invalid, ConfigError, Resources, Retention, RetentionArgs,
};
use relay_shared::webex::WebhookSecrets;
use secrecy::SecretString;

/// Env: ARN of the Secrets Manager secret holding the Webex webhook secret(s) (Lambda).
pub const ENV_SECRET_ARN: &str = "WEBEX_WEBHOOK_SECRET_ARN";
/// Env: the Webex webhook secret itself (local runs).
pub const ENV_SECRET: &str = "WEBEX_WEBHOOK_SECRET";
/// Env (optional, with `WEBEX_WEBHOOK_SECRET`): the previous secret, also accepted during a rotation.
pub const ENV_SECRET_PREVIOUS: &str = "WEBEX_WEBHOOK_SECRET_PREVIOUS";
/// Env: `true` lets the function start without any secret and accept unsigned webhooks (local only).
pub const ENV_ALLOW_UNSIGNED: &str = "ALLOW_UNSIGNED_WEBHOOKS";
/// Env (optional): the freshness window, in hours (default 24, at most
/// [`MAX_DEDUPE_TTL_HOURS`]): how old an event may be and still be relayed. The name is from
/// when the ingest kept dedupe records that long; a redelivery within it is now collapsed by the
/// delivery worker's attempt claims (docs/telephony-ingest.md, step 4).
pub const ENV_DEDUPE_TTL_HOURS: &str = "DEDUPE_TTL_HOURS";
/// Env (optional): how long a warm container reuses an org's subscriptions, in seconds (default 5,
/// 0 = query them for every event; [`crate::subscriptions`]).
pub const ENV_SUBSCRIPTIONS_CACHE_SECONDS: &str = "SUBSCRIPTIONS_CACHE_SECONDS";

/// The freshness window's upper bound, in whole hours (119): the worker's attempt memory
/// ([`relay_shared::delivery::ATTEMPT_CLAIM_DAYS`]) less the future skew an event may carry
/// ([`crate::ingest::MAX_CLOCK_SKEW`]), so that any event accepted as fresh is one the worker still
/// recognises if it was delivered before. An event dated `skew` ahead is fresh until its date +
/// the window, i.e. until `skew + window` after it was first ingested; its attempt claims were
/// taken no earlier than that first ingest and are remembered `ATTEMPT_CLAIM_DAYS` from then. A
/// window of the whole memory (120 h) would let a re-sent capture of such an event in for up to
/// `skew` after its claims were forgotten, and it would be POSTed again.
pub const MAX_DEDUPE_TTL_HOURS: i64 = (relay_shared::delivery::ATTEMPT_CLAIM_DAYS * 24 * 3600
    - crate::ingest::MAX_CLOCK_SKEW.num_seconds())
    / 3600;

const _: () = assert!(
    MAX_DEDUPE_TTL_HOURS * 3600 + crate::ingest::MAX_CLOCK_SKEW.num_seconds()
        <= relay_shared::delivery::ATTEMPT_CLAIM_DAYS * 24 * 3600
);
/// The largest `SUBSCRIPTIONS_CACHE_SECONDS` (the staleness bound it sets is documented; beyond
/// minutes it would only delay new webhooks).
pub const MAX_SUBSCRIPTIONS_CACHE_SECONDS: u32 = 300;
/// Env (optional): how long a call's lifecycle record lives after its last event, in hours (default 24).
pub const ENV_CALL_STATE_TTL_HOURS: &str = "CALL_STATE_TTL_HOURS";
/// Env (optional): `true` sets a person's presence to `call` (and back) when their leg connects
/// (and ends), at once (docs/presence-poller.md, "Presence from calls"; default off).
pub const ENV_PRESENCE_FROM_CALLS: &str = "PRESENCE_FROM_CALLS";

/// The largest body accepted (API Gateway's own limit is higher; Webex bodies are a few KiB).
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// How incoming webhooks are authenticated.
#[derive(Clone)]
pub enum WebhookAuth {
    /// `X-Spark-Signature` must be the HMAC-SHA1 of the body under one of these secrets, and the
    /// body's `orgId` one that secret vouches for.
    Signed(Arc<WebhookSecrets>),
    /// No secret configured and `ALLOW_UNSIGNED_WEBHOOKS=true`: every body is accepted unsigned.
    /// Local development only; logged loudly at start-up and on every request.
    InsecureUnsigned,
}

impl WebhookAuth {
    /// One secret for every org.
    pub fn secret(secret: &str) -> Self {
        Self::secrets(WebhookSecrets::single(secret.into(), None))
    }

    pub fn secrets(secrets: WebhookSecrets) -> Self {
        WebhookAuth::Signed(Arc::new(secrets))
    }

    pub fn is_insecure(&self) -> bool {
        matches!(self, WebhookAuth::InsecureUnsigned)
    }
}

impl std::fmt::Debug for WebhookAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WebhookAuth::Signed(s) => write!(f, "Signed({} secrets, <redacted>)", s.iter().count()),
            WebhookAuth::InsecureUnsigned => f.write_str("InsecureUnsigned"),
        }
    }
}

/// Where the webhook secret comes from, decided from the environment before any I/O.
#[derive(Debug, Clone)]
pub enum SecretSource {
    /// Read once per cold start from Secrets Manager.
    SecretsManager(String),
    /// Given in plain text (`WEBEX_WEBHOOK_SECRET`, `WEBEX_WEBHOOK_SECRET_PREVIOUS`).
    Plain(WebhookSecrets),
    /// No secret, insecure flag set.
    InsecureUnsigned,
}

/// Everything the ingest service needs besides its ports.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    pub auth: WebhookAuth,
    pub max_body_bytes: usize,
    /// The freshness window (`DEDUPE_TTL_HOURS`): an event dated earlier than `now - dedupe_ttl`
    /// is answered `stale`. At most the worker's attempt memory when read from the environment.
    pub dedupe_ttl: chrono::Duration,
    /// How long an org's subscriptions are reused (`SUBSCRIPTIONS_CACHE_SECONDS`; zero: not cached).
    pub subscriptions_cache_ttl: chrono::Duration,
    pub call_state_ttl: chrono::Duration,
    /// How long the event log keeps an event (`EVENT_RETENTION_DAYS`, [`RetentionArgs`]).
    pub event_retention: chrono::Duration,
    /// `Retry-After` on 503 answers.
    pub retry_after_seconds: u32,
    /// Optimistic-concurrency attempts for the call-state write.
    pub max_call_state_attempts: u32,
    /// Emit `presence:changed` (`call`, then back) when a person's leg connects and ends.
    pub presence_from_calls: bool,
}

/// Retention is bounded by ten years (in the unit of the setting).
const MAX_RETENTION: i64 = 24 * 3650;

/// The ingest function's settings (flattened into the local stack's flags).
#[derive(Debug, Clone, clap::Args)]
pub struct IngestArgs {
    /// ARN of the Secrets Manager secret holding the Webex webhook secret (read once per cold start).
    #[arg(long, env = ENV_SECRET_ARN)]
    pub webex_secret_arn: Option<String>,
    /// The Webex webhook secret itself, that X-Spark-Signature is verified with (local runs and tests).
    #[arg(long, env = ENV_SECRET, hide_env_values = true)]
    pub webex_secret: Option<SecretString>,
    /// The previous Webex webhook secret, also accepted while Webex is switched to the new one
    /// (with --webex-secret; a Secrets Manager secret holds its own `previous`).
    #[arg(long, env = ENV_SECRET_PREVIOUS, hide_env_values = true)]
    pub webex_secret_previous: Option<SecretString>,
    /// With no secret configured: accept unsigned webhooks (local use only; logged loudly).
    #[arg(long, env = ENV_ALLOW_UNSIGNED)]
    pub allow_unsigned_webhooks: bool,
    /// The freshness window, in hours: an event older than this is acknowledged as `stale` and
    /// not relayed (at most 119: the worker's 120 h attempt memory less the clock-skew allowance).
    #[arg(long, env = ENV_DEDUPE_TTL_HOURS, default_value_t = 24, value_parser = in_range(1i64..=MAX_DEDUPE_TTL_HOURS))]
    pub dedupe_ttl_hours: i64,
    /// How long a warm container reuses an org's subscriptions for the fan-out, in seconds
    /// (0 = read them for every event): a new webhook or a type/filter change reaches the ingest
    /// within this bound; disable, delete, url and secret changes apply at once (the worker reads
    /// each subscription fresh).
    #[arg(long, env = ENV_SUBSCRIPTIONS_CACHE_SECONDS, default_value_t = 5, value_parser = in_range(0u32..=MAX_SUBSCRIPTIONS_CACHE_SECONDS))]
    pub subscriptions_cache_seconds: u32,
    /// How long a call's lifecycle record lives after its last event, in hours.
    #[arg(long, env = ENV_CALL_STATE_TTL_HOURS, default_value_t = 24, value_parser = in_range(1i64..=MAX_RETENTION))]
    pub call_state_ttl_hours: i64,
    /// Set a person's presence to `call` when their leg connects and back when it ends, at once
    /// (one presence read and write per connect or end; docs/presence-poller.md).
    #[arg(long, env = ENV_PRESENCE_FROM_CALLS)]
    pub presence_from_calls: bool,
}

impl IngestArgs {
    /// `WEBEX_WEBHOOK_SECRET_ARN` wins, then `WEBEX_WEBHOOK_SECRET` (with
    /// `WEBEX_WEBHOOK_SECRET_PREVIOUS`); with neither the function refuses to start unless
    /// `ALLOW_UNSIGNED_WEBHOOKS=true`. A previous secret without the plain current one is refused
    /// rather than ignored: ignored, it would turn a rotation into 401s.
    pub fn secret_source(&self) -> Result<SecretSource, ConfigError> {
        let previous = self.webex_secret_previous.clone();
        if previous.is_some() && (self.webex_secret_arn.is_some() || self.webex_secret.is_none()) {
            let reason = if self.webex_secret_arn.is_some() {
                format!("with {ENV_SECRET_ARN}, put `previous` into the secret's JSON instead")
            } else {
                format!("it goes with {ENV_SECRET}, the current secret")
            };
            return Err(invalid(ENV_SECRET_PREVIOUS, "<redacted>", reason));
        }
        if let Some(arn) = &self.webex_secret_arn {
            return Ok(SecretSource::SecretsManager(arn.clone()));
        }
        if let Some(secret) = &self.webex_secret {
            return Ok(SecretSource::Plain(WebhookSecrets::single(
                secret.clone(),
                previous,
            )));
        }
        if self.allow_unsigned_webhooks {
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

    /// The configuration with `auth`, the event log kept for `retention.events`.
    pub fn config(&self, auth: WebhookAuth, retention: &Retention) -> IngestConfig {
        IngestConfig {
            auth,
            max_body_bytes: MAX_BODY_BYTES,
            dedupe_ttl: chrono::Duration::hours(self.dedupe_ttl_hours),
            subscriptions_cache_ttl: chrono::Duration::seconds(i64::from(
                self.subscriptions_cache_seconds,
            )),
            call_state_ttl: chrono::Duration::hours(self.call_state_ttl_hours),
            event_retention: retention.events,
            retry_after_seconds: 5,
            max_call_state_attempts: 5,
            presence_from_calls: self.presence_from_calls,
        }
    }
}

impl SecretSource {
    /// The webhook authentication: a Secrets Manager secret is read now (once per cold start),
    /// with the cold start's SDK configuration when there is one (else one is loaded for it);
    /// every form of `parse_webhook_secrets` is accepted (docs/telephony-ingest.md).
    pub async fn load(
        self,
        sdk: Option<&aws_config::SdkConfig>,
    ) -> Result<WebhookAuth, SecretError> {
        Ok(match self {
            SecretSource::SecretsManager(arn) => {
                let secrets = match sdk {
                    Some(sdk) => SecretsManager::from_sdk_config(sdk),
                    None => SecretsManager::from_env().await,
                };
                WebhookAuth::secrets(secrets.read_webhook_secrets(&arn).await?)
            }
            SecretSource::Plain(secrets) => WebhookAuth::secrets(secrets),
            SecretSource::InsecureUnsigned => {
                tracing::error!(
                    "ALLOW_UNSIGNED_WEBHOOKS=true and no webhook secret: every request is accepted WITHOUT signature \
                     verification. This is for local development only; never deploy it."
                );
                WebhookAuth::InsecureUnsigned
            }
        })
    }
}

/// Everything the Lambda function reads.
#[derive(Debug, Clone, clap::Args)]
pub struct FunctionArgs {
    #[command(flatten)]
    pub resources: Resources,
    #[command(flatten)]
    pub retention: RetentionArgs,
    #[command(flatten)]
    pub ingest: IngestArgs,
}

impl IngestConfig {
    /// Every default, with `auth`.
    pub fn new(auth: WebhookAuth) -> Self {
        defaults::<IngestArgs>().config(auth, &Retention::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use relay_shared::config::from_env_pairs;
    use relay_shared::webex::SecretRole;
    use secrecy::ExposeSecret;

    fn source(env: &[(&str, &str)]) -> Result<SecretSource, ConfigError> {
        from_env_pairs::<IngestArgs>(env)?.secret_source()
    }

    fn config(env: &[(&str, &str)], auth: WebhookAuth) -> Result<IngestConfig, ConfigError> {
        Ok(from_env_pairs::<IngestArgs>(env)?.config(auth, &Retention::default()))
    }

    #[test]
    fn secret_source_precedence_and_refusal() {
        let env = [
            (ENV_SECRET_ARN, "arn:aws:secretsmanager:x"),
            (ENV_SECRET, "plain"),
        ];
        assert!(matches!(
            source(&env).unwrap(),
            SecretSource::SecretsManager(arn) if arn == "arn:aws:secretsmanager:x"
        ));
        let env = [(ENV_SECRET, "plain")];
        assert!(matches!(
            source(&env).unwrap(),
            SecretSource::Plain(s) if s.signing_secret(None).unwrap().expose_secret() == "plain"
        ));
        let env = [(ENV_ALLOW_UNSIGNED, "true")];
        assert!(matches!(
            source(&env).unwrap(),
            SecretSource::InsecureUnsigned
        ));
        let env = [(ENV_ALLOW_UNSIGNED, "false")];
        let e = source(&env).unwrap_err().to_string();
        assert!(
            e.contains(ENV_SECRET_ARN) && e.contains(ENV_ALLOW_UNSIGNED),
            "{e}"
        );
        let env: [(&str, &str); 0] = [];
        assert!(source(&env).is_err());
    }

    #[test]
    fn previous_secret_goes_with_the_plain_one() {
        let env = [(ENV_SECRET, "new"), (ENV_SECRET_PREVIOUS, "old")];
        let SecretSource::Plain(set) = source(&env).unwrap() else {
            panic!("plain secrets")
        };
        let roles: Vec<_> = set
            .iter()
            .map(|s| (s.role, s.secret.expose_secret().to_owned()))
            .collect();
        assert_eq!(
            roles,
            [
                (SecretRole::Current, "new".to_owned()),
                (SecretRole::Previous, "old".to_owned())
            ]
        );
        // Alone, or next to an ARN, it would be silently ignored: refused, without its value.
        for env in [
            &[(ENV_SECRET_PREVIOUS, "hunter2")][..],
            &[
                (ENV_SECRET_PREVIOUS, "hunter2"),
                (ENV_ALLOW_UNSIGNED, "true"),
            ],
            &[(ENV_SECRET_PREVIOUS, "hunter2"), (ENV_SECRET_ARN, "arn:x")],
        ] {
            let e = source(env).unwrap_err().to_string();
            assert!(e.contains(ENV_SECRET_PREVIOUS), "{e}");
            assert!(!e.contains("hunter2"), "{e}");
        }
    }

    #[test]
    fn debug_never_shows_secrets() {
        let a = WebhookAuth::secret("hunter2");
        assert!(!format!("{a:?}").contains("hunter2"));
        assert!(!format!("{:?}", IngestConfig::new(a)).contains("hunter2"));
        let plain = WebhookSecrets::single("hunter2".into(), Some("hunter3".into()));
        assert!(!format!("{:?}", SecretSource::Plain(plain)).contains("hunter"));
        let args = from_env_pairs::<IngestArgs>(&[
            (ENV_SECRET, "hunter2"),
            (ENV_SECRET_PREVIOUS, "hunter3"),
        ])
        .unwrap();
        assert!(!format!("{args:?}").contains("hunter"));
    }

    #[test]
    fn ttl_overrides() {
        let env = [(ENV_DEDUPE_TTL_HOURS, "2")];
        let c = config(&env, WebhookAuth::InsecureUnsigned).unwrap();
        assert_eq!(c.dedupe_ttl, chrono::Duration::hours(2));
        assert_eq!(c.event_retention, chrono::Duration::days(14));
        // The event retention is the shared reader's (relay_shared::config::RetentionArgs).
        let args: FunctionArgs = from_env_pairs(&[
            ("EVENT_RETENTION_DAYS", "3"),
            ("ALLOW_UNSIGNED_WEBHOOKS", "true"),
        ])
        .unwrap();
        let c = args
            .ingest
            .config(WebhookAuth::InsecureUnsigned, &args.retention.retention());
        assert_eq!(c.event_retention, chrono::Duration::days(3));
        assert_eq!(c.call_state_ttl, chrono::Duration::hours(24));
        assert_eq!(c.subscriptions_cache_ttl, chrono::Duration::seconds(5));
        let off = config(
            &[(ENV_SUBSCRIPTIONS_CACHE_SECONDS, "0")],
            WebhookAuth::InsecureUnsigned,
        );
        assert_eq!(
            off.unwrap().subscriptions_cache_ttl,
            chrono::Duration::zero()
        );
        // The freshness window reaches up to the worker's attempt memory less the accepted
        // future skew, not beyond.
        let edge = config(
            &[(ENV_DEDUPE_TTL_HOURS, "119")],
            WebhookAuth::InsecureUnsigned,
        );
        assert_eq!(edge.unwrap().dedupe_ttl, chrono::Duration::hours(119));
        assert!(!c.presence_from_calls, "presence from calls is opt-in");
        let on = config(
            &[(ENV_PRESENCE_FROM_CALLS, "true")],
            WebhookAuth::InsecureUnsigned,
        );
        assert!(on.unwrap().presence_from_calls);
        for (k, v) in [
            (ENV_DEDUPE_TTL_HOURS, "0"),
            (ENV_DEDUPE_TTL_HOURS, "120"),
            (ENV_SUBSCRIPTIONS_CACHE_SECONDS, "301"),
            (ENV_SUBSCRIPTIONS_CACHE_SECONDS, "-1"),
            (ENV_CALL_STATE_TTL_HOURS, "x"),
            (ENV_ALLOW_UNSIGNED, "maybe"),
            (ENV_PRESENCE_FROM_CALLS, "maybe"),
        ] {
            let e = config(&[(k, v)], WebhookAuth::InsecureUnsigned).unwrap_err();
            assert!(e.to_string().contains(k), "{e}");
        }
    }

    /// The largest window, the largest future skew: the last instant a re-sent capture of the
    /// event is still fresh comes before the worker forgets the attempt claims the first copy
    /// took (at the first ingest, at the earliest).
    #[test]
    fn the_longest_window_ends_before_the_attempt_memory() {
        use relay_shared::delivery::ATTEMPT_CLAIM_DAYS;
        assert_eq!(MAX_DEDUPE_TTL_HOURS, 119);
        let window = chrono::Duration::hours(MAX_DEDUPE_TTL_HOURS);
        let first_ingest = chrono::DateTime::from_timestamp(1_900_000_000, 0).unwrap();
        let dated = first_ingest + crate::ingest::MAX_CLOCK_SKEW;
        let last_fresh = dated + window;
        let claims_forgotten = first_ingest + chrono::Duration::days(ATTEMPT_CLAIM_DAYS);
        assert!(
            last_fresh < claims_forgotten,
            "{last_fresh} vs {claims_forgotten}"
        );
        // One hour more and a re-send would outlive the claims.
        assert!(dated + window + chrono::Duration::hours(1) > claims_forgotten);
    }
}
