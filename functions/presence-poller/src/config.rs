//! Configuration from the environment (see docs/presence-poller.md for the full table).

use std::time::Duration;

use relay_shared::config::{
    defaults, in_range, invalid, ConfigError, Resources, Retention, RetentionArgs, WebexArgs,
};
use relay_shared::webex_token::TokenRecord;

use crate::diff::{DiffFields, ExtraFields};

/// The largest `PRESENCE_PAGE_SIZE`. Webex publishes no general cap for `GET /v1/people`
/// (default 100), only the two below.
pub const WEBEX_MAX_PAGE_SIZE: u32 = 1000;
/// Webex: "If `locationId` is specified then `max` will not be more than 50."
pub const WEBEX_MAX_PAGE_SIZE_LOCATION: u32 = 50;
/// Webex: "If `callingData`=true, then `max` will not be more than 100."
pub const WEBEX_MAX_PAGE_SIZE_CALLING_DATA: u32 = 100;
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
    /// `PRESENCE_EXTRA_FIELDS` (none): person fields sent besides the contract's 13.
    pub extra_fields: ExtraFields,
    /// `PRESENCE_CALLING_DATA` (false): list with `callingData=true` (Webex Calling details).
    pub calling_data: bool,
    /// `PRESENCE_PAGE_SIZE` (1000): the `max` query parameter, before Webex's caps
    /// ([`PollerConfig::page_max`]).
    pub page_size: u32,
    /// `PRESENCE_WEBEX_CALLS_PER_MINUTE` (60): the token's budget of Webex calls; calls are spaced
    /// at least a minute / this apart, stretching the cycle when a listing needs more.
    pub webex_calls_per_minute: u32,
    /// The token's own org (`GET /v1/people/me` at cold start, `org::resolve`): `orgId` is sent
    /// only for another org. `None` (unknown): it is sent.
    pub token_org_id: Option<String>,
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
    /// How long events stay in the event log (replay): `EVENT_RETENTION_DAYS` (14), the shared
    /// reader `relay_shared::config::RetentionArgs` (`EVENT_TTL_DAYS` is its deprecated name).
    pub event_ttl: chrono::Duration,
}

/// `PRESENCE_PAGE_SIZE`: 1..=1000, or `max` (Webex's maximum).
fn parse_page_size(v: &str) -> Result<u32, String> {
    let v = v.trim();
    if v.eq_ignore_ascii_case("max") {
        return Ok(WEBEX_MAX_PAGE_SIZE);
    }
    match v.parse::<u32>() {
        Ok(n) if (1..=WEBEX_MAX_PAGE_SIZE).contains(&n) => Ok(n),
        _ => Err("expected 1..=1000 or `max`".into()),
    }
}

/// The poller's settings (flattened into the local stack's flags); durations in milliseconds.
#[derive(Debug, Clone, clap::Args)]
pub struct PollerArgs {
    /// The org to poll; empty: the token's own org.
    #[arg(long, env = "PRESENCE_ORG_ID")]
    pub presence_org: Option<String>,
    /// Only people of this location.
    #[arg(long, env = "PRESENCE_LOCATION_ID")]
    pub presence_location: Option<String>,
    /// Cycle period.
    #[arg(long, env = "PRESENCE_POLL_INTERVAL_MS", default_value_t = 2000, value_parser = in_range(100u64..))]
    pub presence_poll_interval_ms: u64,
    /// Stop polling this long before the invocation deadline.
    #[arg(long, env = "PRESENCE_SAFETY_MARGIN_MS", default_value_t = 5000, value_parser = in_range(0u64..))]
    pub presence_safety_margin_ms: u64,
    /// Emit everybody on a first run with empty state.
    #[arg(long, env = "PRESENCE_EMIT_BASELINE")]
    pub presence_emit_baseline: bool,
    /// Comma-separated Webex person fields compared (default: `status`).
    #[arg(long, env = "PRESENCE_DIFF_FIELDS", value_parser = DiffFields::parse)]
    pub presence_diff_fields: Option<DiffFields>,
    /// Comma-separated Webex person fields sent besides the contract's 13 (default: none).
    #[arg(long, env = "PRESENCE_EXTRA_FIELDS", value_parser = ExtraFields::parse)]
    pub presence_extra_fields: Option<ExtraFields>,
    /// List people with `callingData=true` (caps the page size at 100).
    #[arg(long, env = "PRESENCE_CALLING_DATA")]
    pub presence_calling_data: bool,
    /// The `max` query parameter: 1-1000 or `max` (capped at 50 with a location, 100 with calling data).
    #[arg(long, env = "PRESENCE_PAGE_SIZE", default_value = "max", value_parser = parse_page_size)]
    pub presence_page_size: u32,
    /// The token's budget of Webex calls per minute (calls spaced a minute / this apart).
    #[arg(long, env = "PRESENCE_WEBEX_CALLS_PER_MINUTE", default_value_t = 60, value_parser = in_range(1u32..=60_000))]
    pub presence_webex_calls_per_minute: u32,
    /// Retries of one page after a 429/423/5xx/transport error.
    #[arg(long, env = "PRESENCE_MAX_RETRIES", default_value_t = 2, value_parser = in_range(0u32..))]
    pub presence_max_retries: u32,
    /// Cap on an honoured `Retry-After`.
    #[arg(long, env = "PRESENCE_MAX_RETRY_AFTER_MS", default_value_t = 60_000, value_parser = in_range(0u64..))]
    pub presence_max_retry_after_ms: u64,
    /// First 5xx back-off, doubled per retry and per failed cycle.
    #[arg(long, env = "PRESENCE_BACKOFF_BASE_MS", default_value_t = 500, value_parser = in_range(0u64..))]
    pub presence_backoff_base_ms: u64,
    /// Cap of the 5xx back-off between cycles.
    #[arg(long, env = "PRESENCE_BACKOFF_MAX_MS", default_value_t = 16_000, value_parser = in_range(0u64..))]
    pub presence_backoff_max_ms: u64,
    /// Largest event (and SQS job) in bytes.
    #[arg(long, env = "PRESENCE_MAX_EVENT_BYTES", default_value_t = MAX_EVENT_BYTES, value_parser = in_range(4096usize..=MAX_EVENT_BYTES))]
    pub presence_max_event_bytes: usize,
    /// The lease outlives the polling loop by this much.
    #[arg(long, env = "PRESENCE_LEASE_GRACE_MS", default_value_t = 10_000, value_parser = in_range(0u64..))]
    pub presence_lease_grace_ms: u64,
    /// Stop polling after this long even if the invocation could go on.
    #[arg(long, env = "PRESENCE_MAX_RUN_MS", value_parser = in_range(0u64..))]
    pub presence_max_run_ms: Option<u64>,
}

impl PollerArgs {
    /// The config, the event log kept for `retention.events`; refuses diff fields that are not
    /// sent (a change only there would emit an item that looks unchanged).
    pub fn config(&self, retention: &Retention) -> Result<PollerConfig, ConfigError> {
        let ms = Duration::from_millis;
        let diff_fields = self.presence_diff_fields.clone().unwrap_or_default();
        let extra_fields = self.presence_extra_fields.clone().unwrap_or_default();
        let unsent = diff_fields.unsent(&extra_fields);
        if !unsent.is_empty() {
            return Err(invalid(
                "PRESENCE_DIFF_FIELDS",
                diff_fields.names(),
                format!(
                    "`{}` would be compared but not sent: add it to PRESENCE_EXTRA_FIELDS",
                    unsent.join(",")
                ),
            ));
        }
        Ok(PollerConfig {
            // Empty: the token's own org, resolved at cold start (`org::own_org_id`).
            org_id: self
                .presence_org
                .as_deref()
                .map(str::trim)
                .unwrap_or_default()
                .to_owned(),
            location_id: self.presence_location.clone(),
            poll_interval: ms(self.presence_poll_interval_ms),
            safety_margin: ms(self.presence_safety_margin_ms),
            emit_baseline: self.presence_emit_baseline,
            diff_fields,
            extra_fields,
            calling_data: self.presence_calling_data,
            page_size: self.presence_page_size,
            webex_calls_per_minute: self.presence_webex_calls_per_minute,
            token_org_id: None,
            max_retries: self.presence_max_retries,
            max_retry_after: ms(self.presence_max_retry_after_ms),
            backoff_base: ms(self.presence_backoff_base_ms),
            backoff_max: ms(self.presence_backoff_max_ms),
            max_event_bytes: self.presence_max_event_bytes,
            lease_grace: ms(self.presence_lease_grace_ms),
            max_run: self.presence_max_run_ms.map(ms),
            event_ttl: retention.events,
        })
    }
}

impl PollerConfig {
    /// A config for `org_id` with every default (tests and the local stack).
    pub fn new(org_id: impl Into<String>) -> Self {
        Self {
            org_id: org_id.into(),
            ..defaults::<PollerArgs>()
                .config(&Retention::default())
                .expect("the defaults are valid")
        }
    }

    /// The `max` sent: the page size within Webex's caps for the query.
    pub fn page_max(&self) -> u32 {
        let mut max = self.page_size;
        if self.location_id.is_some() {
            max = max.min(WEBEX_MAX_PAGE_SIZE_LOCATION);
        }
        if self.calling_data {
            max = max.min(WEBEX_MAX_PAGE_SIZE_CALLING_DATA);
        }
        max
    }

    /// The query of the first `GET /v1/people` page. `orgId` only for an org other than the
    /// token's own (Webex: "Only admin users of another organization (such as partners) may use
    /// this parameter").
    pub fn people_query(&self) -> Vec<(String, String)> {
        let mut q = Vec::new();
        if self.token_org_id.as_deref() != Some(self.org_id.as_str()) {
            q.push(("orgId".to_owned(), self.org_id.clone()));
        }
        if let Some(loc) = &self.location_id {
            q.push(("locationId".to_owned(), loc.clone()));
        }
        if self.calling_data {
            q.push(("callingData".to_owned(), "true".to_owned()));
        }
        q.push(("max".to_owned(), self.page_max().to_string()));
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
#[derive(Debug, Clone)]
pub enum TokenConfig {
    /// `WEBEX_TOKEN_SECRET_ARN`: a Secrets Manager secret holding the token record (a plain
    /// token, or JSON with the access token and, to refresh it, `refreshToken`, `clientId`,
    /// `clientSecret`: `relay_shared::webex_token`), written back after each refresh.
    Secret(String),
    /// `WEBEX_TOKEN` and/or `WEBEX_REFRESH_TOKEN` + `WEBEX_CLIENT_ID` + `WEBEX_CLIENT_SECRET`
    /// (local runs: the record lives in memory).
    Local(TokenRecord),
}

/// Everything `main.rs` needs besides the poller config.
#[derive(Debug, Clone)]
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

/// What the Lambda function reads besides [`PollerArgs`].
#[derive(Debug, Clone, clap::Args)]
pub struct RuntimeArgs {
    #[command(flatten)]
    pub resources: Resources,
    #[command(flatten)]
    pub webex: WebexArgs,
    /// The Secrets Manager secret holding the Webex token (wins over WEBEX_TOKEN).
    #[arg(long, env = "WEBEX_TOKEN_SECRET_ARN")]
    pub webex_token_secret_arn: Option<String>,
    /// In-memory stores and queue (local runs without AWS).
    #[arg(long, env = "PRESENCE_MEMORY_STORES")]
    pub presence_memory_stores: bool,
}

impl RuntimeArgs {
    pub fn config(&self) -> Result<RuntimeConfig, ConfigError> {
        let (table_name, queue_url) = if self.presence_memory_stores {
            (
                self.resources.table_name.clone(),
                self.resources.delivery_queue_url.clone(),
            )
        } else {
            (
                Some(self.resources.table_name()?.to_owned()),
                Some(self.resources.delivery_queue_url()?.to_owned()),
            )
        };
        let token = match (&self.webex_token_secret_arn, self.webex.token_record()) {
            (Some(arn), _) => TokenConfig::Secret(arn.clone()),
            (None, Some(record)) => TokenConfig::Local(record),
            (None, None) => {
                return Err(ConfigError::Missing {
                    name: "WEBEX_TOKEN_SECRET_ARN".into(),
                    hint: "the Secrets Manager secret holding the Webex token; or WEBEX_TOKEN (or WEBEX_REFRESH_TOKEN, WEBEX_CLIENT_ID and WEBEX_CLIENT_SECRET) for a local run".into(),
                })
            }
        };
        Ok(RuntimeConfig {
            memory: self.presence_memory_stores,
            table_name,
            queue_url,
            token,
            webex_base_url: self.webex.base_url.clone(),
        })
    }
}

/// Everything the Lambda function reads.
#[derive(Debug, Clone, clap::Args)]
pub struct FunctionArgs {
    #[command(flatten)]
    pub runtime: RuntimeArgs,
    #[command(flatten)]
    pub poller: PollerArgs,
    #[command(flatten)]
    pub retention: RetentionArgs,
    /// The Webex-side health check (`crate::health`).
    #[command(flatten)]
    pub health: crate::health::HealthArgs,
}

#[cfg(test)]
mod tests {
    use super::*;
    use relay_shared::config::from_env_pairs;

    impl PollerConfig {
        fn from_env(env: &[(&str, &str)]) -> Result<Self, ConfigError> {
            from_env_pairs::<PollerArgs>(env)?.config(&Retention::default())
        }
    }

    impl RuntimeConfig {
        fn from_env(env: &[(&str, &str)]) -> Result<Self, ConfigError> {
            from_env_pairs::<RuntimeArgs>(env)?.config()
        }
    }

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
        assert_eq!(
            c.people_query()[2],
            ("max".to_string(), "50".to_string()),
            "Webex caps max at 50 with a location"
        );
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
    fn webex_caps_on_max_and_org_id_only_for_another_org() {
        let mut c = PollerConfig::new("org1");
        c.page_size = 1000;
        let q = |c: &PollerConfig| {
            c.people_query()
                .into_iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("&")
        };
        assert_eq!(
            q(&c),
            "orgId=org1&max=1000",
            "the token's org unknown: orgId is sent"
        );
        c.token_org_id = Some("org1".into());
        assert_eq!(q(&c), "max=1000", "the token's own org: no orgId");
        c.token_org_id = Some("partner".into());
        assert_eq!(q(&c), "orgId=org1&max=1000");
        c.calling_data = true;
        assert_eq!(q(&c), "orgId=org1&callingData=true&max=100");
        c.location_id = Some("loc".into());
        assert_eq!(q(&c), "orgId=org1&locationId=loc&callingData=true&max=50");
        c.calling_data = false;
        c.page_size = 20;
        assert_eq!(c.page_max(), 20, "a smaller page size stays");

        let c = PollerConfig::from_env(&[
            ("PRESENCE_ORG_ID", "o"),
            ("PRESENCE_CALLING_DATA", "true"),
            ("PRESENCE_WEBEX_CALLS_PER_MINUTE", "120"),
        ])
        .unwrap();
        assert!(c.calling_data);
        assert_eq!(c.page_max(), 100);
        assert_eq!(c.webex_calls_per_minute, 120);
        assert_eq!(PollerConfig::new("o").webex_calls_per_minute, 60);
        let e = PollerConfig::from_env(&[("PRESENCE_WEBEX_CALLS_PER_MINUTE", "0")]).unwrap_err();
        assert!(
            e.to_string().contains("PRESENCE_WEBEX_CALLS_PER_MINUTE"),
            "{e}"
        );
    }

    #[test]
    fn extra_fields_and_diff_fields_that_are_not_sent() {
        let c = PollerConfig::new("o");
        assert_eq!(
            c.extra_fields.names(),
            "",
            "only the contract's fields by default"
        );
        let c = PollerConfig::from_env(&[
            ("PRESENCE_EXTRA_FIELDS", "phoneNumbers,title"),
            ("PRESENCE_DIFF_FIELDS", "status,title"),
        ])
        .unwrap();
        assert_eq!(c.extra_fields.names(), "phoneNumbers,title");
        let e = PollerConfig::from_env(&[("PRESENCE_DIFF_FIELDS", "status,title")]).unwrap_err();
        assert!(
            e.to_string().contains("PRESENCE_DIFF_FIELDS")
                && e.to_string().contains("PRESENCE_EXTRA_FIELDS"),
            "{e}"
        );
        let e = PollerConfig::from_env(&[("PRESENCE_EXTRA_FIELDS", "a b")]).unwrap_err();
        assert!(e.to_string().contains("PRESENCE_EXTRA_FIELDS"), "{e}");
    }

    #[test]
    fn runtime_config() {
        use secrecy::ExposeSecret;
        let env = [
            ("TABLE_NAME", "t"),
            ("DELIVERY_QUEUE_URL", "q"),
            ("WEBEX_TOKEN_SECRET_ARN", "arn"),
            ("WEBEX_TOKEN", "plain"),
        ];
        let r = RuntimeConfig::from_env(&env).unwrap();
        assert!(matches!(&r.token, TokenConfig::Secret(arn) if arn == "arn"));
        assert_eq!(r.webex_base_url, "https://webexapis.com/v1");
        assert!(!r.memory);
        assert!(RuntimeConfig::from_env(&[("WEBEX_TOKEN", "x")])
            .unwrap_err()
            .to_string()
            .contains("TABLE_NAME"));
        let r = RuntimeConfig::from_env(&[("PRESENCE_MEMORY_STORES", "1"), ("WEBEX_TOKEN", "x")])
            .unwrap();
        assert!(r.memory);
        assert!(
            matches!(&r.token, TokenConfig::Local(t) if t.access_token.as_ref().unwrap().expose_secret() == "x" && !t.can_refresh())
        );
        let r = RuntimeConfig::from_env(&[
            ("PRESENCE_MEMORY_STORES", "1"),
            ("WEBEX_REFRESH_TOKEN", "r"),
            ("WEBEX_CLIENT_ID", "c"),
            ("WEBEX_CLIENT_SECRET", "cs"),
        ])
        .unwrap();
        assert!(
            matches!(&r.token, TokenConfig::Local(t) if t.can_refresh() && t.access_token.is_none()),
            "a refresh token alone will do"
        );
        assert!(!format!("{r:?}").contains("\"cs\""), "{r:?}");
        assert!(
            !format!("{r:?}").contains("\"x\""),
            "the token must not show in Debug: {r:?}"
        );
        assert!(RuntimeConfig::from_env(&[("PRESENCE_MEMORY_STORES", "1")])
            .unwrap_err()
            .to_string()
            .contains("WEBEX_TOKEN_SECRET_ARN"));
    }
}
