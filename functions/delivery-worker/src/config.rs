//! The worker's configuration, read from the environment once per cold start.

use std::time::Duration;

use ipnet::IpNet;
use relay_shared::config::{flag, parsed_or, ConfigError, Env};

use crate::schedule::RetrySchedule;
use crate::ssrf::TargetPolicy;

/// Everything the core `Worker` needs to know besides its ports.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Per-request timeout (`DELIVERY_TIMEOUT_SECONDS`, default 30; keep it below the function timeout).
    pub delivery_timeout: Duration,
    /// Delays before each attempt (`RETRY_SCHEDULE_SECONDS`, default `0,60,300,1800,7200`) and the
    /// jitter (`RETRY_JITTER_PERCENT`, default 20).
    pub schedule: RetrySchedule,
    /// Which targets may be called (`ALLOW_HTTP_TARGETS`, `ALLOW_PRIVATE_TARGETS`, `TARGET_ALLOW_CIDRS`).
    pub targets: TargetPolicy,
    /// Attempt log retention (`ATTEMPT_TTL_DAYS`, default 30).
    pub attempt_ttl: chrono::Duration,
    /// How long a warm container trusts a loaded subscription (`SUBSCRIPTION_CACHE_SECONDS`, default 10; 0 disables).
    pub subscription_cache: Duration,
    /// Rate limit for subscriptions that carry 0 (`DEFAULT_RATE_LIMIT_PER_MINUTE`, default 100).
    pub default_rate_limit_per_minute: u32,
    /// How much of a response body is read (`MAX_RESPONSE_BYTES`, default 65536).
    pub max_response_bytes: usize,
    /// How much of it is stored in the attempt log (1 KiB).
    pub snippet_bytes: usize,
    /// Concurrent deliveries per batch in the local consumer loop (`WORKER_CONCURRENCY`, default 10).
    pub concurrency: usize,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            delivery_timeout: Duration::from_secs(30),
            schedule: RetrySchedule::default(),
            targets: TargetPolicy::default(),
            attempt_ttl: chrono::Duration::days(30),
            subscription_cache: Duration::from_secs(10),
            default_rate_limit_per_minute: 100,
            max_response_bytes: 64 * 1024,
            snippet_bytes: 1024,
            concurrency: 10,
        }
    }
}

fn invalid(name: &str, value: String, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        name: name.into(),
        value,
        reason: reason.into(),
    }
}

impl WorkerConfig {
    pub fn from_env(env: &dyn Env) -> Result<Self, ConfigError> {
        let d = Self::default();
        let timeout_s: f64 = parsed_or(env, "DELIVERY_TIMEOUT_SECONDS", 30.0)?;
        if !(timeout_s > 0.0 && timeout_s <= 900.0) {
            return Err(invalid(
                "DELIVERY_TIMEOUT_SECONDS",
                timeout_s.to_string(),
                "expected seconds in (0, 900]",
            ));
        }
        let schedule_delays = match env.var("RETRY_SCHEDULE_SECONDS") {
            None => d.schedule.delays.clone(),
            Some(v) => RetrySchedule::parse_delays(&v)
                .map_err(|reason| invalid("RETRY_SCHEDULE_SECONDS", v.clone(), reason))?,
        };
        let jitter: u32 = parsed_or(env, "RETRY_JITTER_PERCENT", 20)?;
        if jitter > 100 {
            return Err(invalid(
                "RETRY_JITTER_PERCENT",
                jitter.to_string(),
                "expected 0..=100",
            ));
        }
        let allow_cidrs = match env.var("TARGET_ALLOW_CIDRS") {
            None => Vec::new(),
            Some(v) => parse_cidrs(&v)
                .map_err(|reason| invalid("TARGET_ALLOW_CIDRS", v.clone(), reason))?,
        };
        let ttl_days: i64 = parsed_or(env, "ATTEMPT_TTL_DAYS", 30)?;
        if ttl_days <= 0 {
            return Err(invalid(
                "ATTEMPT_TTL_DAYS",
                ttl_days.to_string(),
                "expected a positive number of days",
            ));
        }
        let cache_s: u64 = parsed_or(env, "SUBSCRIPTION_CACHE_SECONDS", 10)?;
        let rate: u32 = parsed_or(env, "DEFAULT_RATE_LIMIT_PER_MINUTE", 100)?;
        if rate == 0 {
            return Err(invalid(
                "DEFAULT_RATE_LIMIT_PER_MINUTE",
                "0".into(),
                "expected at least 1",
            ));
        }
        let max_bytes: usize = parsed_or(env, "MAX_RESPONSE_BYTES", 64 * 1024)?;
        let concurrency: usize = parsed_or(env, "WORKER_CONCURRENCY", 10)?;
        Ok(Self {
            delivery_timeout: Duration::from_secs_f64(timeout_s),
            schedule: RetrySchedule::new(schedule_delays, jitter),
            targets: TargetPolicy {
                allow_http: flag(env, "ALLOW_HTTP_TARGETS", false)?,
                allow_private: flag(env, "ALLOW_PRIVATE_TARGETS", false)?,
                allow_cidrs,
            },
            attempt_ttl: chrono::Duration::days(ttl_days),
            subscription_cache: Duration::from_secs(cache_s),
            default_rate_limit_per_minute: rate,
            max_response_bytes: max_bytes.max(1),
            snippet_bytes: d.snippet_bytes.min(max_bytes.max(1)),
            concurrency: concurrency.max(1),
        })
    }
}

/// `10.0.0.0/8, 192.168.1.7` (a bare address is a /32 or /128).
pub fn parse_cidrs(v: &str) -> Result<Vec<IpNet>, String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
                .map(|n| n.trunc())
                .map_err(|_| format!("`{s}` is not a CIDR block or an IP address"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let c = WorkerConfig::from_env(&[("X", "1")]).unwrap();
        assert_eq!(c.delivery_timeout, Duration::from_secs(30));
        assert_eq!(c.schedule.delays, vec![0, 60, 300, 1800, 7200]);
        assert_eq!(c.schedule.jitter_percent, 20);
        assert!(
            !c.targets.allow_http && !c.targets.allow_private && c.targets.allow_cidrs.is_empty()
        );
        assert_eq!(c.max_response_bytes, 65536);
        assert_eq!(c.snippet_bytes, 1024);

        let c = WorkerConfig::from_env(&[
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

    #[test]
    fn errors_name_the_variable() {
        for (k, v) in [
            ("RETRY_SCHEDULE_SECONDS", "0,x"),
            ("RETRY_SCHEDULE_SECONDS", ""),
            ("TARGET_ALLOW_CIDRS", "10.0.0.0/33"),
            ("DELIVERY_TIMEOUT_SECONDS", "0"),
            ("RETRY_JITTER_PERCENT", "150"),
            ("ALLOW_HTTP_TARGETS", "maybe"),
        ] {
            let env = [(k, v)];
            match WorkerConfig::from_env(&env) {
                Ok(_) if v.is_empty() => {}
                Ok(_) => panic!("{k}={v} accepted"),
                Err(e) => assert!(e.to_string().contains(k), "{e}"),
            }
        }
    }
}
