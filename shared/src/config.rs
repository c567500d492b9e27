//! Configuration: every setting is a clap argument bound to its environment variable
//! (`#[arg(long, env = "VAR")]`), so a function is configured from the
//! environment on Lambda ([`from_process_env`]) and the local stack flattens the same `Args`
//! structs into its command line. `value_name` is the variable, so every error names it.
//!
//! Each setting is defined once, with its default: in the function's `Args` (`default_value_t`),
//! or here when several functions read it ([`Resources`], [`DefaultRateLimit`], [`WebexArgs`];
//! the target policy's in [`crate::targets::TargetArgs`]). An empty variable counts as unset.

use std::ffi::OsString;
use std::fmt::Display;
use std::ops::{Bound, RangeBounds};
use std::str::FromStr;

use clap::{ArgAction, ArgMatches, Args, Command, FromArgMatches};
use secrecy::SecretString;

use crate::adapters::webex_http::{DEFAULT_BASE_URL, ENV_BASE_URL, ENV_TOKEN};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("environment variable {name} is required ({hint})")]
    Missing { name: String, hint: String },
    #[error("environment variable {name}=`{value}` is invalid: {reason}")]
    Invalid {
        name: String,
        value: String,
        reason: String,
    },
    /// What clap refused (`invalid value 'x' for '--flag <VARIABLE>': …`).
    #[error("{0}")]
    Parse(String),
}

/// The one constructor of [`ConfigError::Invalid`].
pub fn invalid(name: &str, value: impl Display, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        name: name.into(),
        value: value.to_string(),
        reason: reason.into(),
    }
}

impl From<clap::Error> for ConfigError {
    fn from(e: clap::Error) -> Self {
        // The first line is the message; the rest is usage, which means nothing on Lambda.
        let text = e.to_string();
        let first = text.lines().next().unwrap_or_default();
        ConfigError::Parse(first.trim_start_matches("error: ").to_owned())
    }
}

/// `true`/`false`/`1`/`0`/`yes`/`no`/`on`/`off` (any case): the clap value parser of every
/// boolean setting.
pub fn parse_flag(v: &str) -> Result<bool, String> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err("expected true or false".into()),
    }
}

/// A clap value parser: the trimmed value parsed as `T` and checked against `range`
/// (`in_range(1u32..)`, `in_range(0u32..=100)`,
/// `in_range((Bound::Excluded(0.0), Bound::Included(900.0)))`).
pub fn in_range<T, R>(range: R) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync
where
    T: FromStr + PartialOrd + Display + Clone + Send + Sync + 'static,
    T::Err: Display,
    R: RangeBounds<T> + Clone + Send + Sync + 'static,
{
    move |v: &str| {
        let n: T = v.trim().parse().map_err(|e: T::Err| e.to_string())?;
        if range.contains(&n) {
            Ok(n)
        } else {
            Err(describe(&range))
        }
    }
}

fn describe<T: Display, R: RangeBounds<T>>(range: &R) -> String {
    match (range.start_bound(), range.end_bound()) {
        (Bound::Included(lo), Bound::Unbounded) => format!("must be at least {lo}"),
        (Bound::Excluded(lo), Bound::Unbounded) => format!("must be more than {lo}"),
        (Bound::Included(lo), Bound::Included(hi)) => format!("expected {lo}..={hi}"),
        (Bound::Excluded(lo), Bound::Included(hi)) => format!("expected a value in ({lo}, {hi}]"),
        _ => "out of range".into(),
    }
}

/// The rules every setting follows, so that its declaration is just
/// `#[arg(long, env = "VAR", default_value_t = …, value_parser = in_range(…))]`: it shows (and is
/// named in errors by) its variable, and a boolean one takes a value (`--flag`, `--flag=false`,
/// `VAR=yes`) parsed by [`parse_flag`].
fn bind_to_variables(cmd: Command) -> Command {
    cmd.mut_args(|a| {
        let Some(var) = a.get_env().map(|v| v.to_string_lossy().into_owned()) else {
            return a;
        };
        let a = if matches!(a.get_action(), ArgAction::SetTrue) {
            a.action(ArgAction::Set)
                .num_args(0..=1)
                .default_value("false")
                .default_missing_value("true")
                .value_parser(parse_flag)
        } else {
            a
        };
        a.value_name(var)
    })
}

/// An empty variable counts as unset (the template sets `PRESENCE_ORG_ID` to `""` by default):
/// clap would otherwise parse the empty string.
fn skip_empty_variables(cmd: Command) -> Command {
    cmd.mut_args(|a| match a.get_env() {
        Some(name) if std::env::var_os(name).is_some_and(|v| v.is_empty()) => {
            a.env(None::<&'static str>)
        }
        _ => a,
    })
}

fn from_matches<A: FromArgMatches>(m: &ArgMatches) -> Result<A, ConfigError> {
    Ok(A::from_arg_matches(m)?)
}

/// `A` from the process environment alone: how a Lambda function reads its settings (the runtime
/// passes no arguments).
pub fn from_process_env<A: Args>(bin: &'static str) -> Result<A, ConfigError> {
    let cmd = skip_empty_variables(bind_to_variables(A::augment_args(Command::new(bin))));
    from_matches(&cmd.try_get_matches_from([bin])?)
}

/// A command line program's settings from `argv` and the environment, under the same rules as
/// [`from_process_env`].
pub fn try_parse_command_line_from<P, I, T>(argv: I) -> Result<P, clap::Error>
where
    P: clap::Parser,
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let m = skip_empty_variables(bind_to_variables(P::command())).try_get_matches_from(argv)?;
    P::from_arg_matches(&m)
}

/// [`try_parse_command_line_from`] the process's arguments; exits with clap's message (or
/// `--help`) when they do not parse.
pub fn parse_command_line<P: clap::Parser>() -> P {
    try_parse_command_line_from(std::env::args_os()).unwrap_or_else(|e| e.exit())
}

/// `A` from `(variable, value)` pairs standing in for the environment (tests, and each config's
/// defaults with no pairs): the process environment is not read. Each pair is given as the flag
/// bound to its variable; empty values count as unset.
pub fn from_env_pairs<A: Args>(pairs: &[(&str, &str)]) -> Result<A, ConfigError> {
    let cmd = bind_to_variables(A::augment_args(Command::new("config")));
    let mut argv: Vec<OsString> = vec!["config".into()];
    for (name, value) in pairs.iter().filter(|(_, v)| !v.is_empty()) {
        let arg = cmd
            .get_arguments()
            .find(|a| a.get_env().is_some_and(|e| e == *name));
        // A variable no setting reads is ignored, as in the real environment.
        if let Some(long) = arg.and_then(|a| a.get_long()) {
            argv.push(format!("--{long}={value}").into());
        }
    }
    let cmd = cmd.mut_args(|a| a.env(None::<&'static str>));
    from_matches(&cmd.try_get_matches_from(argv)?)
}

/// Every default of `A` (the environment is not read).
pub fn defaults<A: Args>() -> A {
    from_env_pairs(&[]).expect("every default parses")
}

pub const ENV_TABLE_NAME: &str = "TABLE_NAME";
pub const ENV_DELIVERY_QUEUE_URL: &str = "DELIVERY_QUEUE_URL";
pub const ENV_DEAD_LETTER_QUEUE_URL: &str = "DEAD_LETTER_QUEUE_URL";
pub const ENV_ORDERED_QUEUE_URL: &str = "ORDERED_QUEUE_URL";

/// Where the relay keeps its state and its queues: the one reader of `TABLE_NAME`,
/// `DELIVERY_QUEUE_URL` and `DEAD_LETTER_QUEUE_URL`. Each function asks for the ones it needs.
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
pub struct Resources {
    /// The DynamoDB table.
    #[arg(long = "table", env = ENV_TABLE_NAME)]
    pub table_name: Option<String>,
    /// The delivery SQS queue URL.
    #[arg(long = "queue-url", env = ENV_DELIVERY_QUEUE_URL)]
    pub delivery_queue_url: Option<String>,
    /// The dead-letter SQS queue URL.
    #[arg(long = "dlq-url", env = ENV_DEAD_LETTER_QUEUE_URL)]
    pub dead_letter_queue_url: Option<String>,
    /// The ordered (FIFO) delivery queue URL: per-call-ordered webhooks' jobs (docs/ordering.md).
    /// Unset: such jobs are refused, never delivered unordered.
    #[arg(long = "ordered-queue-url", env = ENV_ORDERED_QUEUE_URL)]
    pub ordered_queue_url: Option<String>,
}

impl Resources {
    pub fn table_name(&self) -> Result<&str, ConfigError> {
        present(&self.table_name, ENV_TABLE_NAME, "the DynamoDB table")
    }

    pub fn delivery_queue_url(&self) -> Result<&str, ConfigError> {
        present(
            &self.delivery_queue_url,
            ENV_DELIVERY_QUEUE_URL,
            "the delivery SQS queue URL",
        )
    }

    pub fn dead_letter_queue_url(&self) -> Result<&str, ConfigError> {
        present(
            &self.dead_letter_queue_url,
            ENV_DEAD_LETTER_QUEUE_URL,
            "the dead-letter SQS queue URL",
        )
    }
}

fn present<'a>(v: &'a Option<String>, name: &str, hint: &str) -> Result<&'a str, ConfigError> {
    v.as_deref().ok_or_else(|| ConfigError::Missing {
        name: name.into(),
        hint: hint.into(),
    })
}

/// `DEFAULT_RATE_LIMIT_PER_MINUTE`, read by the API (a create without `rateLimitPerMinute`) and the
/// worker (a stored subscription whose limit is 0).
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct DefaultRateLimit {
    /// Deliveries per minute of a subscription that sets no `rateLimitPerMinute`.
    #[arg(long = "default-rate-limit", env = "DEFAULT_RATE_LIMIT_PER_MINUTE", default_value_t = crate::subscription::Subscription::DEFAULT_RATE_LIMIT_PER_MINUTE, value_parser = in_range(1u32..))]
    pub per_minute: u32,
}

impl Default for DefaultRateLimit {
    fn default() -> Self {
        defaults()
    }
}

pub const ENV_EVENT_RETENTION_DAYS: &str = "EVENT_RETENTION_DAYS";
pub const ENV_ATTEMPT_RETENTION_DAYS: &str = "ATTEMPT_RETENTION_DAYS";
/// Deprecated name of [`ENV_EVENT_RETENTION_DAYS`] (the presence poller's, default 7 then).
pub const DEPRECATED_ENV_EVENT_TTL_DAYS: &str = "EVENT_TTL_DAYS";
/// Deprecated name of [`ENV_ATTEMPT_RETENTION_DAYS`].
pub const DEPRECATED_ENV_ATTEMPT_TTL_DAYS: &str = "ATTEMPT_TTL_DAYS";
pub const DEFAULT_EVENT_RETENTION_DAYS: u32 = 14;
pub const DEFAULT_ATTEMPT_RETENTION_DAYS: u32 = 30;
/// Retention is bounded by ten years.
pub const MAX_RETENTION_DAYS: u32 = 3650;

/// How long the event log and the attempt (delivery) log keep their items: the one reader of
/// `EVENT_RETENTION_DAYS` (ingest, presence poller, webhooks API) and `ATTEMPT_RETENTION_DAYS`
/// (delivery worker, webhooks API). Writers stamp each item's `expires_at` (DynamoDB's TTL) with
/// it; readers skip expired items; the API refuses a replay window older than the event log's.
/// The old names `EVENT_TTL_DAYS` and `ATTEMPT_TTL_DAYS` are still read when the new one is unset.
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
pub struct RetentionArgs {
    /// How long the event log keeps an event (replay), in days [default: 14].
    #[arg(long = "event-retention-days", env = ENV_EVENT_RETENTION_DAYS, value_parser = in_range(1u32..=MAX_RETENTION_DAYS))]
    pub event_days: Option<u32>,
    /// Deprecated: EVENT_RETENTION_DAYS (read only when that is unset).
    #[arg(long = "event-ttl-days", env = DEPRECATED_ENV_EVENT_TTL_DAYS, hide = true, value_parser = in_range(1u32..=MAX_RETENTION_DAYS))]
    pub deprecated_event_ttl_days: Option<u32>,
    /// How long the delivery (attempt) log keeps an attempt, in days [default: 30].
    #[arg(long = "attempt-retention-days", env = ENV_ATTEMPT_RETENTION_DAYS, value_parser = in_range(1u32..=MAX_RETENTION_DAYS))]
    pub attempt_days: Option<u32>,
    /// Deprecated: ATTEMPT_RETENTION_DAYS (read only when that is unset).
    #[arg(long = "attempt-ttl-days", env = DEPRECATED_ENV_ATTEMPT_TTL_DAYS, hide = true, value_parser = in_range(1u32..=MAX_RETENTION_DAYS))]
    pub deprecated_attempt_ttl_days: Option<u32>,
}

/// The retention of the event log and the attempt log (see [`RetentionArgs`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub events: chrono::Duration,
    pub attempts: chrono::Duration,
}

impl Default for Retention {
    fn default() -> Self {
        RetentionArgs::default().retention()
    }
}

impl Retention {
    /// The `expires_at` of an event logged at `now`.
    pub fn event_expiry(
        &self,
        now: chrono::DateTime<chrono::Utc>,
    ) -> chrono::DateTime<chrono::Utc> {
        now + self.events
    }

    /// The `expires_at` of an attempt recorded at `now`.
    pub fn attempt_expiry(
        &self,
        now: chrono::DateTime<chrono::Utc>,
    ) -> chrono::DateTime<chrono::Utc> {
        now + self.attempts
    }

    /// The oldest instant the event log still covers at `now`: a replay window starting earlier
    /// asks for events that are gone (or going).
    pub fn oldest_event(
        &self,
        now: chrono::DateTime<chrono::Utc>,
    ) -> chrono::DateTime<chrono::Utc> {
        now - self.events
    }
}

impl RetentionArgs {
    /// The retention: each setting, else its deprecated name (with a warning), else its default.
    pub fn retention(&self) -> Retention {
        let days = |set: Option<u32>, old: Option<u32>, old_name: &str, new_name: &str, default| {
            if set.is_none() && old.is_some() {
                tracing::warn!(
                    variable = old_name,
                    "{old_name} is deprecated: set {new_name} instead (docs/configuration.md)"
                );
            }
            chrono::Duration::days(i64::from(set.or(old).unwrap_or(default)))
        };
        Retention {
            events: days(
                self.event_days,
                self.deprecated_event_ttl_days,
                DEPRECATED_ENV_EVENT_TTL_DAYS,
                ENV_EVENT_RETENTION_DAYS,
                DEFAULT_EVENT_RETENTION_DAYS,
            ),
            attempts: days(
                self.attempt_days,
                self.deprecated_attempt_ttl_days,
                DEPRECATED_ENV_ATTEMPT_TTL_DAYS,
                ENV_ATTEMPT_RETENTION_DAYS,
                DEFAULT_ATTEMPT_RETENTION_DAYS,
            ),
        }
    }
}

/// What the webhooks API and the delivery worker read on Lambda: [`Resources`], the settings both
/// read (the target policy and [`DefaultRateLimit`], so the API accepts what the worker delivers;
/// [`SecretsKeyArgs`], so the worker opens what the API sealed)
/// and the function's own `A`. The local stack flattens the parts, each once.
#[derive(Debug, Clone, clap::Args)]
pub struct SubscriptionFunctionArgs<A: Args> {
    #[command(flatten)]
    pub resources: Resources,
    #[command(flatten)]
    pub targets: crate::targets::TargetArgs,
    #[command(flatten)]
    pub rate: DefaultRateLimit,
    /// The API seals signing secrets with it, the worker opens them.
    #[command(flatten)]
    pub secrets_key: SecretsKeyArgs,
    /// The API reads both retentions, the worker the attempt log's.
    #[command(flatten)]
    pub retention: RetentionArgs,
    #[command(flatten)]
    pub own: A,
}

pub const ENV_SECRETS_KMS_KEY_ID: &str = "SECRETS_KMS_KEY_ID";
pub const ENV_SECRETS_LOCAL_KEY: &str = "SECRETS_LOCAL_KEY";

/// The key that wraps signing secrets at rest (`crate::secrets_at_rest`), read by the API (which
/// seals), the worker (which opens) and `relayctl seal-secrets`: a KMS key on AWS, a local key in
/// the local stack and tests. Exactly one is required.
#[derive(Clone, Default, clap::Args)]
pub struct SecretsKeyArgs {
    /// The KMS key (id, ARN or alias) that wraps each signing secret's data key; template.yaml
    /// creates it and passes its ARN.
    #[arg(long = "secrets-kms-key-id", env = ENV_SECRETS_KMS_KEY_ID)]
    pub kms_key_id: Option<String>,
    /// Instead of KMS, a local 32-byte key (base64): the local stack and tests only.
    #[arg(
        long = "secrets-local-key",
        env = ENV_SECRETS_LOCAL_KEY,
        hide_env_values = true,
        conflicts_with = "kms_key_id"
    )]
    pub local_key: Option<SecretString>,
}

impl std::fmt::Debug for SecretsKeyArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretsKeyArgs")
            .field("kms_key_id", &self.kms_key_id)
            .field("local_key", &self.local_key.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// The configured key service, built once per cold start.
pub enum SecretsKey {
    Kms(crate::adapters::aws::kms::KmsKeys),
    Local(std::sync::Arc<crate::secrets_at_rest::LocalKey>),
}

impl SecretsKeyArgs {
    /// The key service; `sdk` builds the KMS client (`None` where no AWS backend is configured,
    /// which then refuses a KMS key).
    pub fn key(&self, sdk: Option<&aws_config::SdkConfig>) -> Result<SecretsKey, ConfigError> {
        use secrecy::ExposeSecret;
        match (&self.kms_key_id, &self.local_key) {
            (Some(id), _) => match sdk {
                Some(sdk) => Ok(SecretsKey::Kms(
                    crate::adapters::aws::kms::KmsKeys::from_sdk_config(sdk, id.clone()),
                )),
                None => Err(invalid(
                    ENV_SECRETS_KMS_KEY_ID,
                    id,
                    "a KMS key needs the AWS backend; use SECRETS_LOCAL_KEY with in-memory stores",
                )),
            },
            (None, Some(local)) => {
                crate::secrets_at_rest::LocalKey::from_base64(local.expose_secret())
                    .map(|k| SecretsKey::Local(std::sync::Arc::new(k)))
                    .map_err(|reason| invalid(ENV_SECRETS_LOCAL_KEY, "<redacted>", reason))
            }
            (None, None) => Err(ConfigError::Missing {
                name: ENV_SECRETS_KMS_KEY_ID.into(),
                hint: "the KMS key that wraps signing secrets (template.yaml sets it; \
                       SECRETS_LOCAL_KEY instead for local runs)"
                    .into(),
            }),
        }
    }
}

impl SecretsKey {
    /// Which key, for a log line: the KMS key as configured, or a local key's id (never the key).
    pub fn describe(&self) -> String {
        match self {
            Self::Kms(k) => format!("KMS key {}", k.key_id()),
            Self::Local(k) => format!("local key {}", k.key_id()),
        }
    }

    pub fn sealer(&self) -> crate::secrets_at_rest::SecretSealer {
        use crate::secrets_at_rest::SecretSealer;
        match self {
            Self::Kms(k) => SecretSealer::new(std::sync::Arc::new(k.clone())),
            Self::Local(k) => SecretSealer::new(k.clone()),
        }
    }

    pub fn opener(&self) -> crate::secrets_at_rest::SecretOpener {
        use crate::secrets_at_rest::SecretOpener;
        match self {
            Self::Kms(k) => SecretOpener::new(std::sync::Arc::new(k.clone())),
            Self::Local(k) => SecretOpener::new(k.clone()),
        }
    }
}

/// The Webex REST API and the access token, as the presence poller and the local stack read them.
#[derive(Debug, Clone, clap::Args)]
pub struct WebexArgs {
    /// Webex REST API base URL (a fake Webex for tests).
    #[arg(long = "webex-base-url", env = ENV_BASE_URL, default_value = DEFAULT_BASE_URL)]
    pub base_url: String,
    /// The Webex access token itself (local runs; on AWS the poller reads it from Secrets Manager).
    #[arg(long = "webex-token", env = ENV_TOKEN, hide_env_values = true)]
    pub token: Option<SecretString>,
    /// The integration's (or Service App's) OAuth client id, to refresh the token.
    #[arg(long = "webex-client-id", env = "WEBEX_CLIENT_ID")]
    pub client_id: Option<String>,
    /// Its client secret.
    #[arg(
        long = "webex-client-secret",
        env = "WEBEX_CLIENT_SECRET",
        hide_env_values = true
    )]
    pub client_secret: Option<SecretString>,
    /// The refresh token: with the client id and secret, the token is refreshed at
    /// `<base URL>/access_token` (and --webex-token may be left out).
    #[arg(
        long = "webex-refresh-token",
        env = "WEBEX_REFRESH_TOKEN",
        hide_env_values = true
    )]
    pub refresh_token: Option<SecretString>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, clap::Args)]
    struct Sample {
        #[arg(long, env = "A", default_value_t = 1, value_parser = in_range::<u32, _>(1..=20))]
        a: u32,
        #[arg(long, env = "C")]
        c: bool,
        #[command(flatten)]
        resources: Resources,
    }

    #[test]
    fn errors_name_the_variable() {
        let s: Sample = from_env_pairs(&[("A", "12"), ("C", "yes"), ("OTHER", "x")]).unwrap();
        assert_eq!((s.a, s.c), (12, true));
        let s: Sample = defaults();
        assert_eq!((s.a, s.c), (1, false));
        let e = from_env_pairs::<Sample>(&[("A", "x")]).unwrap_err();
        assert!(e.to_string().contains("<A>"), "{e}");
        let e = from_env_pairs::<Sample>(&[("A", "30")]).unwrap_err();
        assert!(e.to_string().contains("expected 1..=20"), "{e}");
        assert!(from_env_pairs::<Sample>(&[("C", "maybe")])
            .unwrap_err()
            .to_string()
            .contains("<C>"));
        let e = s.resources.table_name().unwrap_err();
        assert_eq!(
            e.to_string(),
            "environment variable TABLE_NAME is required (the DynamoDB table)"
        );
        let s: Sample = from_env_pairs(&[("TABLE_NAME", "t"), ("DELIVERY_QUEUE_URL", "")]).unwrap();
        assert_eq!(s.resources.table_name().unwrap(), "t");
        assert!(s.resources.delivery_queue_url().is_err(), "empty is unset");
        assert_eq!(
            invalid("X", 0, "must be at least 1").to_string(),
            "environment variable X=`0` is invalid: must be at least 1"
        );
    }

    #[test]
    fn flags_and_ranges() {
        for v in ["1", "true", "YES", " on "] {
            assert_eq!(parse_flag(v), Ok(true), "{v}");
        }
        for v in ["0", "false", "No", "off"] {
            assert_eq!(parse_flag(v), Ok(false), "{v}");
        }
        assert!(parse_flag("maybe").is_err());
        let p = in_range::<f64, _>((Bound::Excluded(0.0), Bound::Included(900.0)));
        assert_eq!(p(" 0.2 "), Ok(0.2));
        assert_eq!(p("0").unwrap_err(), "expected a value in (0, 900]");
        assert_eq!(
            in_range::<u32, _>(1..)("0").unwrap_err(),
            "must be at least 1"
        );
    }

    #[test]
    fn retention_one_reader_with_deprecated_aliases() {
        let r =
            |pairs: &[(&str, &str)]| from_env_pairs::<RetentionArgs>(pairs).map(|a| a.retention());
        let days = chrono::Duration::days;
        assert_eq!(
            r(&[]).unwrap(),
            Retention {
                events: days(14),
                attempts: days(30)
            }
        );
        assert_eq!(Retention::default(), r(&[]).unwrap());
        let set = r(&[
            ("EVENT_RETENTION_DAYS", "3"),
            ("ATTEMPT_RETENTION_DAYS", "90"),
        ])
        .unwrap();
        assert_eq!((set.events, set.attempts), (days(3), days(90)));
        // The old names count while the new ones are unset; the new ones win.
        let old = r(&[("EVENT_TTL_DAYS", "7"), ("ATTEMPT_TTL_DAYS", "5")]).unwrap();
        assert_eq!((old.events, old.attempts), (days(7), days(5)));
        let both = r(&[("EVENT_TTL_DAYS", "7"), ("EVENT_RETENTION_DAYS", "21")]).unwrap();
        assert_eq!(both.events, days(21));
        for (name, v) in [
            ("EVENT_RETENTION_DAYS", "0"),
            ("ATTEMPT_RETENTION_DAYS", "3651"),
            ("EVENT_TTL_DAYS", "x"),
            ("ATTEMPT_TTL_DAYS", "0"),
        ] {
            let e = r(&[(name, v)]).unwrap_err();
            assert!(e.to_string().contains(name), "{e}");
        }
        let now = chrono::DateTime::UNIX_EPOCH + days(100);
        assert_eq!(set.event_expiry(now), now + days(3));
        assert_eq!(set.attempt_expiry(now), now + days(90));
        assert_eq!(set.oldest_event(now), now - days(3));
    }

    #[test]
    fn exactly_one_secrets_key_and_the_local_one_never_echoed() {
        let e = from_env_pairs::<SecretsKeyArgs>(&[])
            .unwrap()
            .key(None)
            .err()
            .unwrap();
        assert!(e.to_string().contains("SECRETS_KMS_KEY_ID"), "{e}");
        let both = from_env_pairs::<SecretsKeyArgs>(&[
            ("SECRETS_KMS_KEY_ID", "alias/x"),
            ("SECRETS_LOCAL_KEY", "AAAA"),
        ]);
        assert!(both.is_err());
        let bad = "c2hvcnQtYnV0LXNlY3JldA==";
        let e = from_env_pairs::<SecretsKeyArgs>(&[("SECRETS_LOCAL_KEY", bad)])
            .unwrap()
            .key(None)
            .err()
            .unwrap();
        assert!(e.to_string().contains("32 bytes"), "{e}");
        assert!(!e.to_string().contains(bad), "{e}");
        let kms = from_env_pairs::<SecretsKeyArgs>(&[("SECRETS_KMS_KEY_ID", "alias/x")]).unwrap();
        assert!(kms.key(None).is_err(), "KMS needs an AWS backend");
        let key = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [1u8; 32]);
        let local = from_env_pairs::<SecretsKeyArgs>(&[("SECRETS_LOCAL_KEY", &key)]).unwrap();
        assert!(matches!(local.key(None), Ok(SecretsKey::Local(_))));
        assert!(!format!("{local:?}").contains(&key));
    }
}
