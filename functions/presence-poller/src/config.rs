//! Configuration from the environment (see docs/presence-poller.md for the full table).

use std::time::Duration;

use relay_shared::config::{flag, parsed_or, required, ConfigError, Env};

use crate::diff::DiffFields;

/// Webex's largest `max` for `GET /v1/people`.
pub const WEBEX_MAX_PAGE_SIZE: u32 = 1000;
/// The largest outbound event (and SQS message) the poller produces.
pub const MAX_EVENT_BYTES: usize = 256 * 1024;

/// What the core poller needs (no AWS clients here: those are built in `main.rs`).
#[derive(Debug, Clone, PartialEq)]
pub struct PollerConfig {
    /// `PRESENCE_ORG_ID`: the org whose people are polled; the `x-org-id` of its events. Empty in
    /// the environment means "the token's own org", resolved at cold start (`GET /v1/people/me`).
    pub org_id: String,
    /// `PRESENCE_LOCATION_ID`: optionally narrow the listing to one location.
    pub location_id: Option<String>,
    /// `PRESENCE_POLL_INTERVAL_MS` (2000).
    pub poll_interval: Duration,
    /// `PRESENCE_SAFETY_MARGIN_MS` (5000): stop polling this long before the invocation deadline.
    pub safety_margin: Duration,
    /// `PRESENCE_EMIT_BASELINE` (false): emit every person on a first run with empty state.
    pub emit_baseline: bool,
    /// `PRESENCE_DIFF_FIELDS` (`status`).
    pub diff_fields: DiffFields,
    /// `PRESENCE_PAGE_SIZE` (1000, Webex's maximum): the `max` query parameter.
    pub page_size: u32,
    /// `PRESENCE_MAX_RETRIES` (2): retries of one page after a 429/423/5xx/transport error.
    pub max_retries: u32,
    /// `PRESENCE_MAX_RETRY_AFTER_MS` (60000): cap on an honoured `Retry-After`.
    pub max_retry_after: Duration,
    /// `PRESENCE_BACKOFF_BASE_MS` (500): first 5xx back-off, doubled per retry and per failed cycle.
    pub backoff_base: Duration,
    /// `PRESENCE_BACKOFF_MAX_MS` (16000): cap of the 5xx back-off between cycles.
    pub backoff_max: Duration,
    /// `PRESENCE_MAX_EVENT_BYTES` (262144): no event (nor its SQS job) is larger.
    pub max_event_bytes: usize,
    /// `PRESENCE_LEASE_GRACE_MS` (10000): the lease outlives the polling loop by this much.
    pub lease_grace: Duration,
    /// `PRESENCE_MAX_RUN_MS` (unset): stop polling after this long even if the invocation could go
    /// on (e.g. to end before the next scheduled invocation when the timeout exceeds a minute).
    pub max_run: Option<Duration>,
    /// `EVENT_TTL_DAYS` (7): how long events stay in the replay log.
    pub event_ttl: chrono::Duration,
}

impl PollerConfig {
    /// A config for `org_id` with every default (tests and the local stack).
    pub fn new(org_id: impl Into<String>) -> Self {
        Self {
            org_id: org_id.into(),
            location_id: None,
            poll_interval: Duration::from_millis(2000),
            safety_margin: Duration::from_millis(5000),
            emit_baseline: false,
            diff_fields: DiffFields::default(),
            page_size: WEBEX_MAX_PAGE_SIZE,
            max_retries: 2,
            max_retry_after: Duration::from_secs(60),
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(16),
            max_event_bytes: MAX_EVENT_BYTES,
            lease_grace: Duration::from_secs(10),
            max_run: None,
            event_ttl: chrono::Duration::days(7),
        }
    }

    pub fn from_env(env: &dyn Env) -> Result<Self, ConfigError> {
        // Empty: the token's own org, resolved at cold start (`org::own_org_id`).
        let d = Self::new(
            env.var("PRESENCE_ORG_ID")
                .map(|o| o.trim().to_owned())
                .unwrap_or_default(),
        );
        let ms = |name: &str, default: Duration| -> Result<Duration, ConfigError> {
            parsed_or::<u64>(env, name, default.as_millis() as u64).map(Duration::from_millis)
        };
        let invalid = |name: &str, value: String, reason: &str| ConfigError::Invalid {
            name: name.into(),
            value,
            reason: reason.into(),
        };

        let poll_interval = ms("PRESENCE_POLL_INTERVAL_MS", d.poll_interval)?;
        if poll_interval < Duration::from_millis(100) {
            return Err(invalid(
                "PRESENCE_POLL_INTERVAL_MS",
                poll_interval.as_millis().to_string(),
                "must be at least 100",
            ));
        }
        let diff_fields = match env.var("PRESENCE_DIFF_FIELDS") {
            None => d.diff_fields,
            Some(v) => DiffFields::parse(&v).map_err(|reason| ConfigError::Invalid {
                name: "PRESENCE_DIFF_FIELDS".into(),
                value: v,
                reason,
            })?,
        };
        let page_size = match env.var("PRESENCE_PAGE_SIZE") {
            None => d.page_size,
            Some(v) if v.trim().eq_ignore_ascii_case("max") => WEBEX_MAX_PAGE_SIZE,
            Some(v) => match v.trim().parse::<u32>() {
                Ok(n) if (1..=WEBEX_MAX_PAGE_SIZE).contains(&n) => n,
                _ => {
                    return Err(invalid(
                        "PRESENCE_PAGE_SIZE",
                        v,
                        "expected 1..=1000 or `max`",
                    ))
                }
            },
        };
        let max_event_bytes =
            parsed_or::<usize>(env, "PRESENCE_MAX_EVENT_BYTES", d.max_event_bytes)?;
        if !(4096..=MAX_EVENT_BYTES).contains(&max_event_bytes) {
            return Err(invalid(
                "PRESENCE_MAX_EVENT_BYTES",
                max_event_bytes.to_string(),
                "expected 4096..=262144",
            ));
        }
        let ttl_days = parsed_or::<u32>(env, "EVENT_TTL_DAYS", 7)?;
        Ok(Self {
            location_id: env.var("PRESENCE_LOCATION_ID"),
            poll_interval,
            safety_margin: ms("PRESENCE_SAFETY_MARGIN_MS", d.safety_margin)?,
            emit_baseline: flag(env, "PRESENCE_EMIT_BASELINE", d.emit_baseline)?,
            diff_fields,
            page_size,
            max_retries: parsed_or(env, "PRESENCE_MAX_RETRIES", d.max_retries)?,
            max_retry_after: ms("PRESENCE_MAX_RETRY_AFTER_MS", d.max_retry_after)?,
            backoff_base: ms("PRESENCE_BACKOFF_BASE_MS", d.backoff_base)?,
            backoff_max: ms("PRESENCE_BACKOFF_MAX_MS", d.backoff_max)?,
            max_event_bytes,
            lease_grace: ms("PRESENCE_LEASE_GRACE_MS", d.lease_grace)?,
            max_run: env
                .var("PRESENCE_MAX_RUN_MS")
                .map(|_| ms("PRESENCE_MAX_RUN_MS", Duration::ZERO))
                .transpose()?,
            event_ttl: chrono::Duration::days(i64::from(ttl_days)),
            ..d
        })
    }

    /// The query of the first `GET /v1/people` page.
    pub fn people_query(&self) -> Vec<(String, String)> {
        let mut q = vec![("orgId".to_owned(), self.org_id.clone())];
        if let Some(loc) = &self.location_id {
            q.push(("locationId".to_owned(), loc.clone()));
        }
        q.push(("max".to_owned(), self.page_size.to_string()));
        q
    }

    /// The lease that keeps two pollers of this org from running at once.
    pub fn lease_name(&self) -> String {
        match &self.location_id {
            None => format!("presence-poller#{}", self.org_id),
            Some(loc) => format!("presence-poller#{}#{}", self.org_id, loc),
        }
    }
}

/// Where the Webex token comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenConfig {
    /// `WEBEX_TOKEN_SECRET_ARN`: a Secrets Manager secret (plain token, or JSON with `token` /
    /// `accessToken` / `access_token`).
    Secret(String),
    /// `WEBEX_TOKEN`: the token itself (local runs).
    Plain(String),
}

/// Everything `main.rs` needs besides the poller config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeConfig {
    /// `PRESENCE_MEMORY_STORES=true`: in-memory stores and queue (local runs without AWS; state
    /// lives as long as the process).
    pub memory: bool,
    /// `TABLE_NAME` (required unless `memory`).
    pub table_name: Option<String>,
    /// `DELIVERY_QUEUE_URL` (required unless `memory`).
    pub queue_url: Option<String>,
    pub token: TokenConfig,
    /// `WEBEX_API_BASE_URL` (`https://webexapis.com/v1`).
    pub webex_base_url: String,
}

impl RuntimeConfig {
    pub fn from_env(env: &dyn Env) -> Result<Self, ConfigError> {
        let memory = flag(env, "PRESENCE_MEMORY_STORES", false)?;
        let (table_name, queue_url) = if memory {
            (env.var("TABLE_NAME"), env.var("DELIVERY_QUEUE_URL"))
        } else {
            (
                Some(required(
                    env,
                    "TABLE_NAME",
                    "the DynamoDB table; or PRESENCE_MEMORY_STORES=true for a local run",
                )?),
                Some(required(
                    env,
                    "DELIVERY_QUEUE_URL",
                    "the delivery SQS queue",
                )?),
            )
        };
        let token = match (env.var("WEBEX_TOKEN_SECRET_ARN"), env.var("WEBEX_TOKEN")) {
            (Some(arn), _) => TokenConfig::Secret(arn),
            (None, Some(t)) => TokenConfig::Plain(t),
            (None, None) => {
                return Err(ConfigError::Missing {
                    name: "WEBEX_TOKEN_SECRET_ARN".into(),
                    hint: "the Secrets Manager secret holding the Webex token; or WEBEX_TOKEN for a local run".into(),
                })
            }
        };
        let webex_base_url = env
            .var("WEBEX_API_BASE_URL")
            .unwrap_or_else(|| "https://webexapis.com/v1".into());
        Ok(Self {
            memory,
            table_name,
            queue_url,
            token,
            webex_base_url,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let c = PollerConfig::from_env(&[("PRESENCE_ORG_ID", "org1")]).unwrap();
        assert_eq!(c, PollerConfig::new("org1"));
        assert_eq!(c.poll_interval, Duration::from_secs(2));
        assert_eq!(c.page_size, 1000);
        assert_eq!(
            c.people_query(),
            vec![
                ("orgId".to_string(), "org1".to_string()),
                ("max".to_string(), "1000".to_string())
            ]
        );
        assert_eq!(c.lease_name(), "presence-poller#org1");
    }

    #[test]
    fn overrides_and_errors() {
        let env = [
            ("PRESENCE_ORG_ID", "org1"),
            ("PRESENCE_LOCATION_ID", "loc9"),
            ("PRESENCE_POLL_INTERVAL_MS", "500"),
            ("PRESENCE_SAFETY_MARGIN_MS", "3000"),
            ("PRESENCE_EMIT_BASELINE", "true"),
            ("PRESENCE_DIFF_FIELDS", "status,lastActivity"),
            ("PRESENCE_PAGE_SIZE", "250"),
        ];
        let c = PollerConfig::from_env(&env).unwrap();
        assert_eq!(c.poll_interval, Duration::from_millis(500));
        assert_eq!(c.safety_margin, Duration::from_secs(3));
        assert!(c.emit_baseline);
        assert_eq!(c.diff_fields.names(), "status,lastActivity");
        assert_eq!(
            c.people_query()[1],
            ("locationId".to_string(), "loc9".to_string())
        );
        assert_eq!(c.people_query()[2], ("max".to_string(), "250".to_string()));
        assert_eq!(c.lease_name(), "presence-poller#org1#loc9");

        assert_eq!(
            PollerConfig::from_env(&[("PRESENCE_ORG_ID", "o"), ("PRESENCE_PAGE_SIZE", "max")])
                .unwrap()
                .page_size,
            1000
        );
        for (k, v) in [
            ("PRESENCE_PAGE_SIZE", "0"),
            ("PRESENCE_PAGE_SIZE", "5000"),
            ("PRESENCE_DIFF_FIELDS", ","),
            ("PRESENCE_POLL_INTERVAL_MS", "5"),
        ] {
            let e = PollerConfig::from_env(&[("PRESENCE_ORG_ID", "o"), (k, v)]).unwrap_err();
            assert!(e.to_string().contains(k), "{e}");
        }
        assert_eq!(
            PollerConfig::from_env(&[("PRESENCE_ORG_ID", "")])
                .unwrap()
                .org_id,
            "",
            "empty: the token's own org"
        );
    }

    #[test]
    fn runtime_config() {
        let env = [
            ("TABLE_NAME", "t"),
            ("DELIVERY_QUEUE_URL", "q"),
            ("WEBEX_TOKEN_SECRET_ARN", "arn"),
            ("WEBEX_TOKEN", "plain"),
        ];
        let r = RuntimeConfig::from_env(&env).unwrap();
        assert_eq!(r.token, TokenConfig::Secret("arn".into()));
        assert_eq!(r.webex_base_url, "https://webexapis.com/v1");
        assert!(!r.memory);
        assert!(RuntimeConfig::from_env(&[("WEBEX_TOKEN", "x")])
            .unwrap_err()
            .to_string()
            .contains("TABLE_NAME"));
        let r = RuntimeConfig::from_env(&[("PRESENCE_MEMORY_STORES", "1"), ("WEBEX_TOKEN", "x")])
            .unwrap();
        assert!(r.memory);
        assert_eq!(r.token, TokenConfig::Plain("x".into()));
        assert!(RuntimeConfig::from_env(&[("PRESENCE_MEMORY_STORES", "1")])
            .unwrap_err()
            .to_string()
            .contains("WEBEX_TOKEN_SECRET_ARN"));
    }
}
