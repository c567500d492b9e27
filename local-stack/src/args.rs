//! Command-line flags; each has an environment-variable equivalent (see docs/local-stack.md).

use std::net::SocketAddr;

use clap::Parser;
use delivery_worker::config::WorkerArgs;
use presence_poller::config::PollerArgs;
use relay_shared::config::{DefaultRateLimit, Resources, RetentionArgs, SecretsKeyArgs, WebexArgs};
use relay_shared::targets::TargetArgs;
use telephony_ingest::config::IngestArgs;
use webhooks_api::config::ApiArgs;

/// `--table` when neither it nor `TABLE_NAME` is given.
pub const LOCAL_TABLE: &str = "webex-relay-local";
/// What ingest verifies `X-Spark-Signature` with when no secret is configured.
pub const LOCAL_WEBEX_SECRET: &str = "local-webex-secret";

/// Every webex-relay function in one process on 127.0.0.1. Each function's settings are the
/// same flags and variables it reads on Lambda (docs/configuration.md).
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

    /// An API key to accept: `<key>=<userId>:<orgId>[:admin]` (repeatable).
    #[arg(
        long = "api-key",
        env = "LOCAL_STACK_API_KEYS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub api_keys: Vec<String>,

    /// Concurrent in-process delivery consumers (each takes up to 10 jobs at a time).
    #[arg(long, env = "LOCAL_STACK_CONSUMERS", default_value_t = 8)]
    pub consumers: u32,

    /// Embedded store bound: events kept per org (replay), attempts per subscription (delivery
    /// log), calls' state, and twice as many attempt claims; the oldest are forgotten beyond this (a
    /// duplicate delivery whose attempt record or claim was forgotten is POSTed again).
    #[arg(
        long,
        alias = "event-log-capacity",
        env = "LOCAL_STACK_STORE_CAPACITY",
        default_value_t = 2000
    )]
    pub store_capacity: usize,

    /// Start a verifying receiver, subscribe it, replay the captured Webex telephony events and
    /// show the deliveries.
    #[arg(long)]
    pub demo: bool,

    /// JSON log lines (as on Lambda) instead of human-readable ones.
    #[arg(long, env = "LOCAL_STACK_LOG_JSON")]
    pub log_json: bool,

    /// With --aws: the table (default webex-relay-local, also the queues' name prefix with
    /// --create-resources) and existing queues.
    #[command(
        flatten,
        next_help_heading = "With --aws (table: webex-relay-local unless set)"
    )]
    pub resources: Resources,

    /// Targets, as the API and the worker read them. `--allow-private-targets` also allows
    /// `http://` here (local receivers).
    #[command(
        flatten,
        next_help_heading = "Targets (webhooks API and delivery worker)"
    )]
    pub targets: TargetArgs,

    #[command(
        flatten,
        next_help_heading = "Subscriptions (webhooks API and delivery worker)"
    )]
    pub rate: DefaultRateLimit,

    /// The key the API seals signing secrets with and the worker opens them with: a KMS key
    /// (with --aws) or a local one; neither given → a local key generated for this run (secrets
    /// stored by one run cannot be opened by the next: give --secrets-local-key to keep a table).
    #[command(
        flatten,
        next_help_heading = "Secrets at rest (webhooks API and delivery worker)"
    )]
    pub secrets_key: SecretsKeyArgs,

    /// How long the event log (ingest, presence, replay) and the attempt log (worker, delivery
    /// log) keep their items, as every function reads it.
    #[command(flatten, next_help_heading = "Retention (event log and delivery log)")]
    pub retention: RetentionArgs,

    #[command(flatten, next_help_heading = "telephony-ingest")]
    pub ingest: IngestArgs,

    #[command(flatten, next_help_heading = "webhooks-api")]
    pub api: ApiArgs,

    #[command(flatten, next_help_heading = "delivery-worker")]
    pub worker: WorkerArgs,

    /// The presence loop runs when --presence-org and a token are given: --webex-token, or
    /// --webex-refresh-token with --webex-client-id and --webex-client-secret (refreshed at
    /// <--webex-base-url>/access_token).
    #[command(flatten, next_help_heading = "Presence loop")]
    pub webex: WebexArgs,

    #[command(flatten, next_help_heading = "Presence loop")]
    pub presence: PollerArgs,

    /// The Webex-side health check, beside the presence loop when --webex-health-target-url is
    /// given (a recreated webhook gets --webex-secret).
    #[command(flatten, next_help_heading = "Webex health check")]
    pub health: presence_poller::health::HealthArgs,
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
    fn function_settings_are_flags() {
        use clap::CommandFactory;
        Args::command().debug_assert();
        let parse = |argv: &[&str]| {
            relay_shared::config::try_parse_command_line_from::<Args, _, _>(argv.iter().copied())
        };
        let a = parse(&[
            "local-stack",
            "--allow-private-targets",
            "--retry-schedule",
            "0,1,2",
            "--delivery-timeout",
            "0.5",
            "--max-rate-limit",
            "500",
            "--webex-secret",
            "s",
            "--presence-org",
            "o1",
        ])
        .unwrap();
        assert!(a.targets.allow_private_targets);
        assert_eq!(a.worker.retry_schedule, Some(vec![0, 1, 2]));
        assert_eq!(a.worker.delivery_timeout, 0.5);
        assert_eq!(a.api.max_rate_limit, 500);
        assert_eq!(a.presence.presence_org.as_deref(), Some("o1"));
        let e = parse(&["local-stack", "--delivery-timeout", "0"]).unwrap_err();
        assert!(e.to_string().contains("DELIVERY_TIMEOUT_SECONDS"), "{e}");
        // Every boolean setting takes the same values, here as on Lambda.
        let a = parse(&[
            "local-stack",
            "--allow-http-targets=yes",
            "--aws=1",
            "--presence-emit-baseline",
        ])
        .unwrap();
        assert!(a.targets.allow_http_targets && a.aws && a.presence.presence_emit_baseline);
        assert!(parse(&["local-stack", "--log-json=maybe"]).is_err());
        // The secrets key, once for both functions; a local key or a KMS key, not both.
        let a = parse(&["local-stack", "--secrets-local-key", "AAAA"]).unwrap();
        assert!(a.secrets_key.local_key.is_some() && a.secrets_key.kms_key_id.is_none());
        let a = parse(&["local-stack", "--secrets-kms-key-id", "alias/k"]).unwrap();
        assert_eq!(a.secrets_key.kms_key_id.as_deref(), Some("alias/k"));
        assert!(parse(&[
            "local-stack",
            "--secrets-kms-key-id",
            "alias/k",
            "--secrets-local-key",
            "AAAA"
        ])
        .is_err());
        assert!(!format!(
            "{:?}",
            parse(&["local-stack", "--secrets-local-key", "c2VjcmV0"]).unwrap()
        )
        .contains("c2VjcmV0"));
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
