//! Configuration of the management API, read once per cold start.

use relay_shared::config::{
    defaults, from_env_pairs, in_range, invalid, ConfigError, Retention, SubscriptionFunctionArgs,
};
use relay_shared::stats::ReadLimits;
use relay_shared::targets::TargetPolicy;

/// Limits and switches of the API (see `docs/webhooks-api.md` for the environment variables).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiConfig {
    /// `MAX_WEBHOOKS_PER_USER` (10): enforced atomically by the subscription store.
    pub max_webhooks_per_user: u32,
    /// Which target URLs a subscription may have: the delivery worker's policy, read from the same
    /// `ALLOW_HTTP_TARGETS`, `ALLOW_PRIVATE_TARGETS` and `TARGET_ALLOW_CIDRS`, so the API accepts
    /// exactly the literal targets the worker will call.
    pub targets: TargetPolicy,
    /// `MAX_BODY_BYTES` (262144): larger request bodies get `413`.
    pub max_body_bytes: usize,
    /// `IDEMPOTENCY_TTL_HOURS` (24): how long an `Idempotency-Key` answer is replayed.
    pub idempotency_ttl_hours: u32,
    /// `DEFAULT_RATE_LIMIT_PER_MINUTE` (100): `rateLimitPerMinute` when a create omits it.
    pub default_rate_limit_per_minute: u32,
    /// `MAX_RATE_LIMIT_PER_MINUTE` (100, the OpenWork webhook limit of 100 events/min): the highest
    /// `rateLimitPerMinute` accepted.
    pub max_rate_limit_per_minute: u32,
    /// `REPLAY_MAX_EVENTS` (10000): events re-queued by one replay call at most.
    pub replay_max_events: u32,
    /// `REPLAY_MAX_WINDOW_DAYS` (14): the longest replay window.
    pub replay_max_window_days: u32,
    /// `REDRIVE_MAX_PER_CALL` (1000): dead-lettered jobs moved by one redrive call at most.
    pub redrive_max_per_call: u32,
    /// The quotas on `/test` and `/replay` (fixed one-minute windows, per webhook and per tenant).
    pub quotas: Quotas,
    /// `MAX_BACKLOG_MINUTES` (15): a webhook's backlog of slotted jobs (deferred by the worker's
    /// rate limit or queued by a replay) may take at most this long to drain at its rate, i.e. at
    /// most `MAX_BACKLOG_MINUTES × rateLimitPerMinute` jobs; a replay queues only what fits.
    pub max_backlog_minutes: u32,
    /// `EVENT_RETENTION_DAYS` (14) and `ATTEMPT_RETENTION_DAYS` (30): a replay window may not
    /// start before the event log's retention (422 `since`).
    pub retention: Retention,
    /// How `GET …/stats` pages through the attempt log: 500 records a page, at most
    /// `relay_shared::stats::RECORD_BUDGET` (10,000) a request. Not an environment variable (the
    /// budget is sized to the function's timeout); tests make it small.
    pub stats_limits: ReadLimits,
}

/// Calls allowed per fixed one-minute window (shared by every instance through the table's
/// rate-limit counters); over them the API answers `429` with `Retry-After` = the window's end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quotas {
    /// `TEST_PER_WEBHOOK_PER_MINUTE` (10).
    pub test_per_webhook: u32,
    /// `TEST_PER_TENANT_PER_MINUTE` (60): over all webhooks of one org.
    pub test_per_tenant: u32,
    /// `REPLAY_PER_WEBHOOK_PER_MINUTE` (2).
    pub replay_per_webhook: u32,
    /// `REPLAY_PER_TENANT_PER_MINUTE` (10).
    pub replay_per_tenant: u32,
}

/// The API's own settings (flattened into the local stack's flags); the ones it shares with the
/// worker are in [`SubscriptionFunctionArgs`].
#[derive(Debug, Clone, clap::Args)]
pub struct ApiArgs {
    /// Subscriptions one user may own.
    #[arg(long, env = "MAX_WEBHOOKS_PER_USER", default_value_t = 10, value_parser = in_range(1u32..))]
    pub max_webhooks_per_user: u32,
    /// Largest request body in bytes (larger ones get 413).
    #[arg(long, env = "MAX_BODY_BYTES", default_value_t = 256 * 1024, value_parser = in_range(1024usize..))]
    pub max_body_bytes: usize,
    /// How long an `Idempotency-Key` answer is replayed, in hours.
    #[arg(long, env = "IDEMPOTENCY_TTL_HOURS", default_value_t = 24, value_parser = in_range(1u32..))]
    pub idempotency_ttl_hours: u32,
    /// Highest `rateLimitPerMinute` the API accepts (100 by default, the OpenWork limit; raise it for load tests).
    #[arg(long, env = "MAX_RATE_LIMIT_PER_MINUTE", default_value_t = 100, value_parser = in_range(1u32..))]
    pub max_rate_limit: u32,
    /// Events re-queued by one replay call at most.
    #[arg(long, env = "REPLAY_MAX_EVENTS", default_value_t = 10_000, value_parser = in_range(1u32..))]
    pub replay_max_events: u32,
    /// The longest replay window, in days.
    #[arg(long, env = "REPLAY_MAX_WINDOW_DAYS", default_value_t = 14, value_parser = in_range(1u32..))]
    pub replay_max_window_days: u32,
    /// Dead-lettered jobs moved by one redrive call at most.
    #[arg(long, env = "REDRIVE_MAX_PER_CALL", default_value_t = 1_000, value_parser = in_range(1u32..))]
    pub redrive_max_per_call: u32,
    /// `POST …/test` calls per webhook per minute.
    #[arg(long, env = "TEST_PER_WEBHOOK_PER_MINUTE", default_value_t = 10, value_parser = in_range(1u32..))]
    pub test_per_webhook_per_minute: u32,
    /// `POST …/test` calls per tenant (org) per minute, over all its webhooks.
    #[arg(long, env = "TEST_PER_TENANT_PER_MINUTE", default_value_t = 60, value_parser = in_range(1u32..))]
    pub test_per_tenant_per_minute: u32,
    /// `POST …/replay` calls per webhook per minute.
    #[arg(long, env = "REPLAY_PER_WEBHOOK_PER_MINUTE", default_value_t = 2, value_parser = in_range(1u32..))]
    pub replay_per_webhook_per_minute: u32,
    /// `POST …/replay` calls per tenant (org) per minute, over all its webhooks.
    #[arg(long, env = "REPLAY_PER_TENANT_PER_MINUTE", default_value_t = 10, value_parser = in_range(1u32..))]
    pub replay_per_tenant_per_minute: u32,
    /// The longest a webhook's backlog may take to drain at its rate limit, in minutes (a replay
    /// queues at most `MAX_BACKLOG_MINUTES × rateLimitPerMinute` jobs minus the backlog).
    #[arg(long, env = "MAX_BACKLOG_MINUTES", default_value_t = 15, value_parser = in_range(1u32..=10_080))]
    pub max_backlog_minutes: u32,
}

impl ApiArgs {
    /// The API's configuration under `targets`, with `default_rate_limit_per_minute` for creates
    /// that omit `rateLimitPerMinute` (at most `MAX_RATE_LIMIT_PER_MINUTE`).
    pub fn config(
        &self,
        targets: TargetPolicy,
        default_rate_limit_per_minute: u32,
        retention: Retention,
    ) -> Result<ApiConfig, ConfigError> {
        if default_rate_limit_per_minute > self.max_rate_limit {
            return Err(invalid(
                "DEFAULT_RATE_LIMIT_PER_MINUTE",
                default_rate_limit_per_minute,
                "must be between 1 and MAX_RATE_LIMIT_PER_MINUTE",
            ));
        }
        Ok(ApiConfig {
            max_webhooks_per_user: self.max_webhooks_per_user,
            targets,
            max_body_bytes: self.max_body_bytes,
            idempotency_ttl_hours: self.idempotency_ttl_hours,
            default_rate_limit_per_minute,
            max_rate_limit_per_minute: self.max_rate_limit,
            replay_max_events: self.replay_max_events,
            replay_max_window_days: self.replay_max_window_days,
            redrive_max_per_call: self.redrive_max_per_call,
            quotas: Quotas {
                test_per_webhook: self.test_per_webhook_per_minute,
                test_per_tenant: self.test_per_tenant_per_minute,
                replay_per_webhook: self.replay_per_webhook_per_minute,
                replay_per_tenant: self.replay_per_tenant_per_minute,
            },
            max_backlog_minutes: self.max_backlog_minutes,
            retention,
            stats_limits: ReadLimits::default(),
        })
    }
}

/// Everything the Lambda function reads.
pub type FunctionArgs = SubscriptionFunctionArgs<ApiArgs>;

impl Default for ApiConfig {
    /// Every default: the strict target policy.
    fn default() -> Self {
        Self::from_args(&defaults()).expect("the defaults are consistent")
    }
}

impl ApiConfig {
    pub fn from_args(args: &FunctionArgs) -> Result<Self, ConfigError> {
        args.own.config(
            args.targets.policy(),
            args.rate.per_minute,
            args.retention.retention(),
        )
    }

    /// The configuration the Lambda function would read from these variables (tests).
    pub fn from_env_pairs(pairs: &[(&str, &str)]) -> Result<Self, ConfigError> {
        Self::from_args(&from_env_pairs(pairs)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        assert_eq!(
            ApiConfig::from_env_pairs(&[]).unwrap(),
            ApiConfig::default()
        );
        assert_eq!(ApiConfig::default().max_body_bytes, 262_144);
        assert_eq!(ApiConfig::default().max_rate_limit_per_minute, 100);
        assert_eq!(ApiConfig::default().retention, Retention::default());
        let r = ApiConfig::from_env_pairs(&[("EVENT_RETENTION_DAYS", "3")]).unwrap();
        assert_eq!(r.retention.events, chrono::Duration::days(3));
        let env = [
            ("MAX_WEBHOOKS_PER_USER", "3"),
            ("ALLOW_HTTP_TARGETS", "true"),
            ("MAX_BODY_BYTES", "2048"),
            ("IDEMPOTENCY_TTL_HOURS", "1"),
        ];
        let c = ApiConfig::from_env_pairs(&env).unwrap();
        assert_eq!(
            (
                c.max_webhooks_per_user,
                c.targets.allow_http,
                c.max_body_bytes,
                c.idempotency_ttl_hours
            ),
            (3, true, 2048, 1)
        );
        assert!(ApiConfig::from_env_pairs(&[("MAX_WEBHOOKS_PER_USER", "0")]).is_err());
        for (k, v) in [
            ("MAX_BODY_BYTES", "1000"),
            ("IDEMPOTENCY_TTL_HOURS", "0"),
            ("REPLAY_MAX_EVENTS", "0"),
            ("TEST_PER_WEBHOOK_PER_MINUTE", "0"),
            ("REPLAY_PER_TENANT_PER_MINUTE", "0"),
            ("MAX_BACKLOG_MINUTES", "0"),
            ("DEFAULT_RATE_LIMIT_PER_MINUTE", "0"),
            ("DEFAULT_RATE_LIMIT_PER_MINUTE", "101"),
        ] {
            let e = ApiConfig::from_env_pairs(&[(k, v)]).unwrap_err();
            assert!(e.to_string().contains(k), "{e}");
        }
        assert!(
            ApiConfig::from_env_pairs(&[("ALLOW_HTTP_TARGETS", "maybe")])
                .unwrap_err()
                .to_string()
                .contains("ALLOW_HTTP_TARGETS")
        );
    }
}
