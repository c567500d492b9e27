//! The worker's configuration, read from the environment once per cold start.

use std::ops::Bound;
use std::time::Duration;

use relay_shared::config::{
    defaults, from_env_pairs, in_range, invalid, ConfigError, Retention, SubscriptionFunctionArgs,
};
use relay_shared::operational::OperationalArgs;
use relay_shared::targets::TargetPolicy;

use crate::schedule::RetrySchedule;
/// Everything the core `Worker` needs to know besides its ports.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Per-request timeout (`DELIVERY_TIMEOUT_SECONDS`, default 30; keep it below the function
    /// timeout). The attempt claim's lease ends this + 30 s after the claim, and never before the
    /// invocation's deadline + 5 s (`worker::lease_until`): a short timeout cannot make a holder
    /// outlive its lease.
    pub delivery_timeout: Duration,
    /// Delays before each attempt (`RETRY_SCHEDULE_SECONDS`, default `0,60,300,1800,7200`) and the
    /// jitter (`RETRY_JITTER_PERCENT`, default 20).
    pub schedule: RetrySchedule,
    /// Which targets may be called (`ALLOW_HTTP_TARGETS`, `ALLOW_PRIVATE_TARGETS`, `TARGET_ALLOW_CIDRS`).
    pub targets: TargetPolicy,
    /// Attempt log retention (`ATTEMPT_RETENTION_DAYS`, default 30; the shared reader
    /// `relay_shared::config::RetentionArgs`, `ATTEMPT_TTL_DAYS` its deprecated name).
    pub attempt_ttl: chrono::Duration,
    /// Rate limit for subscriptions that carry 0 (`DEFAULT_RATE_LIMIT_PER_MINUTE`, default 100).
    pub default_rate_limit_per_minute: u32,
    /// How much of a response body is read (`MAX_RESPONSE_BYTES`, default 65536).
    pub max_response_bytes: usize,
    /// How much of it is stored in the attempt log (1 KiB).
    pub snippet_bytes: usize,
    /// Messages per receive in the local consumer loop, delivered concurrently
    /// (`WORKER_CONCURRENCY`, default 10; on Lambda the event source's batch size decides).
    pub concurrency: usize,
    /// A webhook failing continuously this long is disabled (`AUTO_DISABLE_AFTER_HOURS`, default
    /// 120 = 5 days; `None` when 0: never). Measured from `Subscription::failing_since`.
    pub auto_disable_after: Option<chrono::Duration>,
    /// The operational events' rate limit (`OPERATIONAL_EVENTS_PER_MINUTE`).
    pub operational: OperationalArgs,
}

/// The default of `AUTO_DISABLE_AFTER_HOURS` (5 days, as Svix).
pub const DEFAULT_AUTO_DISABLE_AFTER_HOURS: u32 = 120;

/// What a hold leaves of SQS's 12-hour visibility maximum: the visibility is counted from the
/// receive and the hold is set after the attempt, up to a function timeout later (at most 900 s
/// on Lambda).
pub const HOLD_MARGIN_SECONDS: u64 = 900;

/// How much of a response body is stored in the attempt log.
const SNIPPET_BYTES: usize = 1024;

/// One `RETRY_SCHEDULE_SECONDS` value (an alias, so clap takes it as one value, not a list).
pub type Delays = Vec<u64>;

/// The worker's own settings (flattened into the local stack's flags); the ones it shares with
/// the API are in [`SubscriptionFunctionArgs`].
#[derive(Debug, Clone, clap::Args)]
pub struct WorkerArgs {
    /// Per-attempt delivery timeout in seconds (fractions allowed); keep it below the function timeout.
    #[arg(long, env = "DELIVERY_TIMEOUT_SECONDS", default_value_t = 30.0, value_parser = in_range((Bound::Excluded(0.0), Bound::Included(900.0))))]
    pub delivery_timeout: f64,
    /// Seconds before each attempt, e.g. `0,1,2,3,4` for demos and tests (default: RetrySchedule's
    /// `0,60,300,1800,7200`).
    #[arg(long, env = "RETRY_SCHEDULE_SECONDS", value_parser = RetrySchedule::parse_delays)]
    pub retry_schedule: Option<Delays>,
    /// ± jitter on every retry delay, in percent (default: RetrySchedule's 20).
    #[arg(long, env = "RETRY_JITTER_PERCENT", value_parser = in_range(0u32..=100))]
    pub retry_jitter_percent: Option<u32>,
    /// Deprecated, ignored: every job reads its subscription fresh (docs/delivery-worker.md).
    /// Still accepted so that a deployment setting it keeps starting.
    #[arg(long, env = "SUBSCRIPTION_CACHE_SECONDS", hide = true, value_parser = in_range(0u64..))]
    pub subscription_cache_seconds: Option<u64>,
    /// Response bytes read at most.
    #[arg(long, env = "MAX_RESPONSE_BYTES", default_value_t = 64 * 1024, value_parser = in_range(0usize..))]
    pub max_response_bytes: usize,
    /// Messages per receive in the local consumer loop (Lambda: the batch size decides).
    #[arg(long, env = "WORKER_CONCURRENCY", default_value_t = 10, value_parser = in_range(0usize..))]
    pub worker_concurrency: usize,
    /// Disable a webhook that has failed continuously for this many hours, and send
    /// `webhook:disabled` (0: never; docs/operational-events.md).
    #[arg(long, env = "AUTO_DISABLE_AFTER_HOURS", default_value_t = DEFAULT_AUTO_DISABLE_AFTER_HOURS, value_parser = in_range(0u32..=87_600))]
    pub auto_disable_after_hours: u32,
    #[command(flatten)]
    pub operational: OperationalArgs,
}

impl WorkerArgs {
    /// The worker's configuration under `targets`, with `default_rate_limit_per_minute` for
    /// subscriptions that carry 0.
    pub fn config(
        &self,
        targets: TargetPolicy,
        default_rate_limit_per_minute: u32,
        retention: &Retention,
    ) -> WorkerConfig {
        if let Some(seconds) = self.subscription_cache_seconds {
            // Ignored: a deployment that still sets it hears so once, at start.
            tracing::warn!(
                variable = "SUBSCRIPTION_CACHE_SECONDS",
                seconds,
                "SUBSCRIPTION_CACHE_SECONDS is deprecated and ignored: every job reads its subscription fresh; unset it (docs/delivery-worker.md)"
            );
        }
        let d = RetrySchedule::default();
        let max_response_bytes = self.max_response_bytes.max(1);
        WorkerConfig {
            delivery_timeout: Duration::from_secs_f64(self.delivery_timeout),
            schedule: RetrySchedule::new(
                self.retry_schedule.clone().unwrap_or(d.delays),
                self.retry_jitter_percent.unwrap_or(d.jitter_percent),
            ),
            targets,
            attempt_ttl: retention.attempts,
            default_rate_limit_per_minute,
            max_response_bytes,
            snippet_bytes: SNIPPET_BYTES.min(max_response_bytes),
            concurrency: self.worker_concurrency.max(1),
            auto_disable_after: (self.auto_disable_after_hours > 0)
                .then(|| chrono::Duration::hours(i64::from(self.auto_disable_after_hours))),
            operational: self.operational.clone(),
        }
    }
}

/// Everything the Lambda function reads.
pub type FunctionArgs = SubscriptionFunctionArgs<WorkerArgs>;

impl Default for WorkerConfig {
    /// Every default: the strict target policy.
    fn default() -> Self {
        Self::from_args(&defaults())
    }
}

impl WorkerConfig {
    pub fn from_args(args: &FunctionArgs) -> Self {
        args.own.config(
            args.targets.policy(),
            args.rate.per_minute,
            &args.retention.retention(),
        )
    }

    /// With an ordered queue (docs/ordering.md) a retry is a hold of the message on the queue,
    /// not a re-send, so the schedule must fit what SQS can hold: every jittered delay within
    /// the visibility maximum (12 h, counted from the receive) less [`HOLD_MARGIN_SECONDS`], and
    /// room for the attempts within the ordered queue's `maxReceiveCount` (a message behind its
    /// group's held head in a batch counts a receive at every hold of the head). Checked at
    /// start-up where an ordered queue is configured (`ORDERED_QUEUE_URL`, the local stack).
    pub fn check_ordered(&self) -> Result<(), ConfigError> {
        use relay_shared::adapters::aws::{
            MAX_HOLD_SECONDS, ORDERED_BATCH_SIZE, ORDERED_MAX_RECEIVE_COUNT,
        };
        let shown = || {
            let v: Vec<String> = self.schedule.delays.iter().map(u64::to_string).collect();
            v.join(",")
        };
        let max_hold = u64::from(MAX_HOLD_SECONDS) - HOLD_MARGIN_SECONDS;
        let jitter = u64::from(self.schedule.jitter_percent);
        if let Some(d) = self.schedule.delays.iter().skip(1).find(|d| {
            // The longest jittered delay, rounded up as the hold is.
            d.saturating_mul(100 + jitter).div_ceil(100) > max_hold
        }) {
            return Err(invalid(
                "RETRY_SCHEDULE_SECONDS",
                shown(),
                format!(
                    "with the ordered queue (ORDERED_QUEUE_URL) a retry is held on the queue, at most {max_hold} s with jitter ({d} s with {jitter} % is more)"
                ),
            ));
        }
        let receives = ORDERED_BATCH_SIZE * self.schedule.max_attempts() * 2;
        if receives > ORDERED_MAX_RECEIVE_COUNT {
            return Err(invalid(
                "RETRY_SCHEDULE_SECONDS",
                shown(),
                format!(
                    "with the ordered queue (ORDERED_QUEUE_URL) at most {} attempts fit its maxReceiveCount ({ORDERED_MAX_RECEIVE_COUNT})",
                    ORDERED_MAX_RECEIVE_COUNT / ORDERED_BATCH_SIZE / 2
                ),
            ));
        }
        Ok(())
    }

    /// The configuration the Lambda function would read from these variables (tests).
    pub fn from_env_pairs(pairs: &[(&str, &str)]) -> Result<Self, ConfigError> {
        Ok(Self::from_args(&from_env_pairs(pairs)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let c = WorkerConfig::from_env_pairs(&[("X", "1")]).unwrap();
        assert_eq!(c.delivery_timeout, Duration::from_secs(30));
        assert_eq!(c.schedule.delays, vec![0, 60, 300, 1800, 7200]);
        assert_eq!(c.schedule.jitter_percent, 20);
        assert!(
            !c.targets.allow_http && !c.targets.allow_private && c.targets.allow_cidrs.is_empty()
        );
        assert_eq!(c.max_response_bytes, 65536);
        assert_eq!(c.snippet_bytes, 1024);
        assert_eq!(c.auto_disable_after, Some(chrono::Duration::days(5)));
        assert_eq!(c.operational.events_per_minute, 10);
        let c = WorkerConfig::from_env_pairs(&[
            ("AUTO_DISABLE_AFTER_HOURS", "0"),
            ("OPERATIONAL_EVENTS_PER_MINUTE", "3"),
        ])
        .unwrap();
        assert_eq!(c.auto_disable_after, None, "0 switches it off");
        assert_eq!(c.operational.events_per_minute, 3);

        let c = WorkerConfig::from_env_pairs(&[
            ("DELIVERY_TIMEOUT_SECONDS", "0.2"),
            ("RETRY_SCHEDULE_SECONDS", "0, 0,0"),
            ("RETRY_JITTER_PERCENT", "0"),
            ("TARGET_ALLOW_CIDRS", "10.0.0.0/8, 127.0.0.1 ,fd00::/8"),
            ("ALLOW_HTTP_TARGETS", "true"),
            ("ALLOW_PRIVATE_TARGETS", "1"),
            ("DEFAULT_RATE_LIMIT_PER_MINUTE", "5"),
        ])
        .unwrap();
        assert_eq!(c.delivery_timeout, Duration::from_millis(200));
        assert_eq!(c.schedule.delays, vec![0, 0, 0]);
        assert_eq!(c.targets.allow_cidrs.len(), 3);
        assert!(c.targets.allow_http && c.targets.allow_private);
        assert_eq!(c.default_rate_limit_per_minute, 5);
    }

    /// With an ordered queue a retry is a hold (docs/ordering.md): a delay SQS cannot hold, or
    /// more attempts than the ordered queue's maxReceiveCount leaves room for, is refused.
    #[test]
    fn an_ordered_queue_needs_a_schedule_sqs_can_hold() {
        let with = |schedule: &str, jitter: &str| {
            WorkerConfig::from_env_pairs(&[
                ("RETRY_SCHEDULE_SECONDS", schedule),
                ("RETRY_JITTER_PERCENT", jitter),
            ])
            .unwrap()
            .check_ordered()
        };
        assert!(WorkerConfig::default().check_ordered().is_ok());
        assert!(with("0,60,35000", "20").is_ok());
        let e = with("0,60,36000", "20").unwrap_err();
        assert!(e.to_string().contains("RETRY_SCHEDULE_SECONDS"), "{e}");
        assert!(with("0,43200", "0").is_err());
        // The first delay is informational (the first attempt runs when queued).
        assert!(with("86400,60", "0").is_ok());
        let fifty = ["1"; 50].join(",");
        assert!(with(&fifty, "0").is_ok(), "the schedule's maximum fits");
        let limit = relay_shared::adapters::aws::ORDERED_MAX_RECEIVE_COUNT;
        assert!(
            limit >= relay_shared::adapters::aws::ORDERED_BATCH_SIZE * 50 * 2,
            "maxReceiveCount {limit} leaves no room for followers' receives"
        );
        let template = include_str!("../../../template.yaml");
        assert!(
            template.contains(&format!("maxReceiveCount: {limit}\n")),
            "template.yaml's ordered queue has maxReceiveCount {limit}"
        );
    }

    /// `SUBSCRIPTION_CACHE_SECONDS` (the warm-container cache it set is gone) is still accepted,
    /// and changes nothing.
    #[test]
    fn the_deprecated_subscription_cache_setting_is_accepted_and_ignored() {
        let logs = testkit::logs::capture();
        let c = WorkerConfig::from_env_pairs(&[("SUBSCRIPTION_CACHE_SECONDS", "10")]).unwrap();
        assert_eq!(format!("{c:?}"), format!("{:?}", WorkerConfig::default()));
        // …with one warning at start (and none without it).
        let warned = |logs: &testkit::logs::CapturedLogs| {
            logs.lines()
                .iter()
                .filter(|l| {
                    l["level"] == "WARN" && l["fields"]["variable"] == "SUBSCRIPTION_CACHE_SECONDS"
                })
                .count()
        };
        assert_eq!(warned(&logs), 1, "{:?}", logs.lines());
        drop(logs);
        let logs = testkit::logs::capture();
        WorkerConfig::from_env_pairs(&[("X", "1")]).unwrap();
        assert_eq!(warned(&logs), 0);
    }

    #[test]
    fn errors_name_the_variable() {
        for (k, v) in [
            ("RETRY_SCHEDULE_SECONDS", "0,x"),
            ("RETRY_SCHEDULE_SECONDS", ""),
            ("TARGET_ALLOW_CIDRS", "10.0.0.0/33"),
            ("DELIVERY_TIMEOUT_SECONDS", "0"),
            ("RETRY_JITTER_PERCENT", "150"),
            ("ALLOW_HTTP_TARGETS", "maybe"),
            ("ATTEMPT_TTL_DAYS", "0"),
            ("DEFAULT_RATE_LIMIT_PER_MINUTE", "0"),
        ] {
            let env = [(k, v)];
            match WorkerConfig::from_env_pairs(&env) {
                Ok(_) if v.is_empty() => {}
                Ok(_) => panic!("{k}={v} accepted"),
                Err(e) => assert!(e.to_string().contains(k), "{e}"),
            }
        }
    }
}
