//! Command-line flags; each has an environment-variable equivalent (see docs/local-stack.md).

use std::net::SocketAddr;

use clap::Parser;

/// Every webex-relay function in one process on 127.0.0.1.
#[derive(Debug, Clone, Parser)]
#[command(name = "local-stack", version, about)]
pub struct Args {
    /// Address of the HTTP listener (ingest at /webex/telephony, API at /api/hooks/...).
    #[arg(long, env = "LOCAL_STACK_LISTEN", default_value = "127.0.0.1:3000")]
    pub listen: SocketAddr,

    /// Use the DynamoDB/SQS adapters (DynamoDB Local, moto, LocalStack or real AWS) instead of the
    /// embedded in-memory store. Implied when AWS_ENDPOINT_URL is set.
    #[arg(long, env = "LOCAL_STACK_AWS")]
    pub aws: bool,

    /// With --aws: create the table and the queues if they do not exist.
    #[arg(long, env = "LOCAL_STACK_CREATE_RESOURCES")]
    pub create_resources: bool,

    /// With --aws: the DynamoDB table.
    #[arg(long, env = "TABLE_NAME", default_value = "webex-relay-local")]
    pub table: String,

    /// With --aws: the delivery queue URL (created as `<table>-delivery` with --create-resources when unset).
    #[arg(long, env = "DELIVERY_QUEUE_URL")]
    pub queue_url: Option<String>,

    /// With --aws: the dead-letter queue URL.
    #[arg(long, env = "DEAD_LETTER_QUEUE_URL")]
    pub dlq_url: Option<String>,

    /// The Webex webhook secret that ingest verifies X-Spark-Signature with.
    #[arg(
        long,
        env = "WEBEX_WEBHOOK_SECRET",
        default_value = "local-webex-secret",
        hide_env_values = true
    )]
    pub webex_secret: String,

    /// An API key to accept: `<key>=<userId>:<orgId>[:admin]` (repeatable).
    #[arg(
        long = "api-key",
        env = "LOCAL_STACK_API_KEYS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub api_keys: Vec<String>,

    /// Let deliveries reach loopback/private addresses and http:// URLs (local receivers). Off by default.
    #[arg(long, env = "ALLOW_PRIVATE_TARGETS")]
    pub allow_private_targets: bool,

    /// Retry schedule in seconds, e.g. `0,1,2,3,4` for demos and tests.
    #[arg(
        long,
        env = "RETRY_SCHEDULE_SECONDS",
        default_value = "0,60,300,1800,7200"
    )]
    pub retry_schedule: String,

    /// Per-attempt delivery timeout in seconds (fractions allowed).
    #[arg(long, env = "DELIVERY_TIMEOUT_SECONDS", default_value = "30")]
    pub delivery_timeout: String,

    /// Concurrent in-process delivery consumers (each takes up to 10 jobs at a time).
    #[arg(long, env = "LOCAL_STACK_CONSUMERS", default_value_t = 8)]
    pub consumers: u32,

    /// Highest `rateLimitPerMinute` the API accepts (seed 004's 100 by default).
    #[arg(long, env = "MAX_RATE_LIMIT_PER_MINUTE", default_value_t = 100)]
    pub max_rate_limit: u32,

    /// Webex token for the presence loop (with --presence-org or PRESENCE_ORG_ID).
    #[arg(long, env = "WEBEX_TOKEN", hide_env_values = true)]
    pub webex_token: Option<String>,

    /// Webex API base URL (a fake Webex for tests).
    #[arg(
        long,
        env = "WEBEX_API_BASE_URL",
        default_value = "https://webexapis.com/v1"
    )]
    pub webex_base_url: String,

    /// Run the presence loop for this org (needs --webex-token).
    #[arg(long, env = "PRESENCE_ORG_ID")]
    pub presence_org: Option<String>,

    /// Embedded store bound: events kept per org (replay), attempts per subscription (delivery
    /// log), calls' state, and twice as many dedupe keys; the oldest are forgotten beyond this.
    #[arg(
        long,
        alias = "event-log-capacity",
        env = "LOCAL_STACK_STORE_CAPACITY",
        default_value_t = 2000
    )]
    pub store_capacity: usize,

    /// Start a verifying receiver, subscribe it, replay the seed 001 events and show the deliveries.
    #[arg(long)]
    pub demo: bool,

    /// JSON log lines (as on Lambda) instead of human-readable ones.
    #[arg(long, env = "LOCAL_STACK_LOG_JSON")]
    pub log_json: bool,
}

/// One `--api-key` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeySpec {
    pub key: String,
    pub user_id: String,
    pub org_id: String,
    pub admin: bool,
}

impl std::str::FromStr for ApiKeySpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || "expected <key>=<userId>:<orgId>[:admin]".to_owned();
        let (key, rest) = s.split_once('=').ok_or_else(bad)?;
        let mut parts = rest.split(':');
        let user_id = parts.next().filter(|p| !p.is_empty()).ok_or_else(bad)?;
        let org_id = parts.next().filter(|p| !p.is_empty()).ok_or_else(bad)?;
        let admin = match parts.next() {
            None => false,
            Some("admin") => true,
            Some(_) => return Err(bad()),
        };
        if key.len() < 16 || parts.next().is_some() {
            return Err("API keys must be at least 16 characters, in the form <key>=<userId>:<orgId>[:admin]".into());
        }
        Ok(Self {
            key: key.into(),
            user_id: user_id.into(),
            org_id: org_id.into(),
            admin,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_key_specs() {
        let k: ApiKeySpec = "wrk_0123456789abcdef=u1:o1:admin".parse().unwrap();
        assert_eq!(
            (k.user_id.as_str(), k.org_id.as_str(), k.admin),
            ("u1", "o1", true)
        );
        assert!(
            !"wrk_0123456789abcdef=u1:o1"
                .parse::<ApiKeySpec>()
                .unwrap()
                .admin
        );
        assert!("short=u1:o1".parse::<ApiKeySpec>().is_err());
        assert!("wrk_0123456789abcdef=u1".parse::<ApiKeySpec>().is_err());
        assert!("wrk_0123456789abcdef=u1:o1:root"
            .parse::<ApiKeySpec>()
            .is_err());
    }

    #[test]
    fn store_capacity_flag_and_its_old_name() {
        use clap::Parser;
        let a = Args::try_parse_from(["local-stack"]).unwrap();
        assert_eq!(a.store_capacity, 2000);
        let a = Args::try_parse_from(["local-stack", "--store-capacity", "300"]).unwrap();
        assert_eq!(a.store_capacity, 300);
        let a = Args::try_parse_from(["local-stack", "--event-log-capacity", "400"]).unwrap();
        assert_eq!(a.store_capacity, 400);
        assert!(Args::try_parse_from(["local-stack", "--store-capacity", "lots"]).is_err());
    }
}
