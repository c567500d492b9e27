//! Configuration of the management API, read once per cold start.

use relay_shared::config::{flag, parsed_or, ConfigError, Env};

/// Limits and switches of the API (see `docs/webhooks-api.md` for the environment variables).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiConfig {
    /// `MAX_WEBHOOKS_PER_USER` (10): enforced atomically by the subscription store.
    pub max_webhooks_per_user: u32,
    /// `ALLOW_HTTP_TARGETS` (false): accept `http://` target URLs (local testing only).
    pub allow_http_targets: bool,
    /// `ALLOW_PRIVATE_TARGETS` (false): accept literal loopback/private hosts and `localhost`
    /// (the local stack's demo receiver; never in a deployment).
    pub allow_private_targets: bool,
    /// `MAX_BODY_BYTES` (262144): larger request bodies get `413`.
    pub max_body_bytes: usize,
    /// `IDEMPOTENCY_TTL_HOURS` (24): how long an `Idempotency-Key` answer is replayed.
    pub idempotency_ttl_hours: u32,
    /// `DEFAULT_RATE_LIMIT_PER_MINUTE` (100): `rateLimitPerMinute` when a create omits it.
    pub default_rate_limit_per_minute: u32,
    /// `MAX_RATE_LIMIT_PER_MINUTE` (100, seed 004): the highest `rateLimitPerMinute` accepted.
    pub max_rate_limit_per_minute: u32,
    /// `REPLAY_MAX_EVENTS` (10000): events re-queued by one replay call at most.
    pub replay_max_events: u32,
    /// `REPLAY_MAX_WINDOW_DAYS` (14): the longest replay window.
    pub replay_max_window_days: u32,
    /// `REDRIVE_MAX_PER_CALL` (1000): dead-lettered jobs moved by one redrive call at most.
    pub redrive_max_per_call: u32,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            max_webhooks_per_user: 10,
            allow_http_targets: false,
            allow_private_targets: false,
            max_body_bytes: 256 * 1024,
            idempotency_ttl_hours: 24,
            default_rate_limit_per_minute: 100,
            max_rate_limit_per_minute: 100,
            replay_max_events: 10_000,
            replay_max_window_days: 14,
            redrive_max_per_call: 1_000,
        }
    }
}

impl ApiConfig {
    pub fn from_env(env: &dyn Env) -> Result<Self, ConfigError> {
        let d = Self::default();
        let cfg = Self {
            max_webhooks_per_user: parsed_or(
                env,
                "MAX_WEBHOOKS_PER_USER",
                d.max_webhooks_per_user,
            )?,
            allow_http_targets: flag(env, "ALLOW_HTTP_TARGETS", d.allow_http_targets)?,
            allow_private_targets: flag(env, "ALLOW_PRIVATE_TARGETS", d.allow_private_targets)?,
            max_body_bytes: parsed_or(env, "MAX_BODY_BYTES", d.max_body_bytes)?,
            idempotency_ttl_hours: parsed_or(
                env,
                "IDEMPOTENCY_TTL_HOURS",
                d.idempotency_ttl_hours,
            )?,
            default_rate_limit_per_minute: parsed_or(
                env,
                "DEFAULT_RATE_LIMIT_PER_MINUTE",
                d.default_rate_limit_per_minute,
            )?,
            max_rate_limit_per_minute: parsed_or(
                env,
                "MAX_RATE_LIMIT_PER_MINUTE",
                d.max_rate_limit_per_minute,
            )?,
            replay_max_events: parsed_or(env, "REPLAY_MAX_EVENTS", d.replay_max_events)?,
            replay_max_window_days: parsed_or(
                env,
                "REPLAY_MAX_WINDOW_DAYS",
                d.replay_max_window_days,
            )?,
            redrive_max_per_call: parsed_or(env, "REDRIVE_MAX_PER_CALL", d.redrive_max_per_call)?,
        };
        let invalid = |name: &str, value: String, reason: &str| ConfigError::Invalid {
            name: name.into(),
            value,
            reason: reason.into(),
        };
        if cfg.max_webhooks_per_user == 0 {
            return Err(invalid(
                "MAX_WEBHOOKS_PER_USER",
                "0".into(),
                "must be at least 1",
            ));
        }
        if cfg.max_body_bytes < 1024 {
            return Err(invalid(
                "MAX_BODY_BYTES",
                cfg.max_body_bytes.to_string(),
                "must be at least 1024",
            ));
        }
        if cfg.max_rate_limit_per_minute == 0 {
            return Err(invalid(
                "MAX_RATE_LIMIT_PER_MINUTE",
                "0".into(),
                "must be at least 1",
            ));
        }
        if cfg.default_rate_limit_per_minute == 0
            || cfg.default_rate_limit_per_minute > cfg.max_rate_limit_per_minute
        {
            return Err(invalid(
                "DEFAULT_RATE_LIMIT_PER_MINUTE",
                cfg.default_rate_limit_per_minute.to_string(),
                "must be between 1 and MAX_RATE_LIMIT_PER_MINUTE",
            ));
        }
        if cfg.idempotency_ttl_hours == 0 {
            return Err(invalid(
                "IDEMPOTENCY_TTL_HOURS",
                "0".into(),
                "must be at least 1",
            ));
        }
        if cfg.replay_max_events == 0
            || cfg.replay_max_window_days == 0
            || cfg.redrive_max_per_call == 0
        {
            return Err(invalid(
                "REPLAY_MAX_EVENTS/REPLAY_MAX_WINDOW_DAYS/REDRIVE_MAX_PER_CALL",
                "0".into(),
                "must be at least 1",
            ));
        }
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let env: [(&str, &str); 0] = [];
        assert_eq!(ApiConfig::from_env(&env).unwrap(), ApiConfig::default());
        let env = [
            ("MAX_WEBHOOKS_PER_USER", "3"),
            ("ALLOW_HTTP_TARGETS", "true"),
            ("MAX_BODY_BYTES", "2048"),
            ("IDEMPOTENCY_TTL_HOURS", "1"),
        ];
        let c = ApiConfig::from_env(&env).unwrap();
        assert_eq!(
            (
                c.max_webhooks_per_user,
                c.allow_http_targets,
                c.max_body_bytes,
                c.idempotency_ttl_hours
            ),
            (3, true, 2048, 1)
        );
        assert!(ApiConfig::from_env(&[("MAX_WEBHOOKS_PER_USER", "0")]).is_err());
        assert!(ApiConfig::from_env(&[("ALLOW_HTTP_TARGETS", "maybe")])
            .unwrap_err()
            .to_string()
            .contains("ALLOW_HTTP_TARGETS"));
    }
}
