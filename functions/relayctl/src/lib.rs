//! # relayctl
//!
//! Operator commands over the Webex webhooks API (`relay_shared::ports::WebexClient`), chiefly
//! `ensure`: cover the whole org's calls — one active `telephony_calls`/`all` webhook at the
//! deployed ingest URL with the current secret, made with an admin-level token, plus the
//! `Workspaces` / `Virtual Lines` interest registration (`relay_shared::webex_registrations`, the
//! same core the scheduled health check runs).
//!
//! Webex never returns a webhook's secret, so a changed secret cannot be detected: `ensure`
//! re-applies the secret with every run (a `PUT` with the same secret is harmless). Secrets are
//! never printed.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use relay_shared::adapters::aws::secrets::{SecretsManager, WEBHOOK_SECRET};
use relay_shared::ports::WebexClient;
use relay_shared::webex_api::{WebexApiError, WebexRegistration};
use relay_shared::webex_registrations::{check, Desired, Mode, DEFAULT_RENEW_WITHIN_DAYS};
pub use relay_shared::webex_registrations::{
    CoverageError, InterestAction, Report, Scope, WebhookAction, DEFAULT_NAME, EVENT_ALL,
    TELEPHONY_RESOURCE,
};
use secrecy::{ExposeSecret, SecretString};

#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    #[error(transparent)]
    Webex(#[from] WebexApiError),
    #[error(transparent)]
    Coverage(#[from] CoverageError),
    #[error("{0}")]
    Secret(String),
    #[error("{0}")]
    Usage(String),
}

/// Where `--secret-from` reads the secret: `env:VAR`, `file:PATH`, or a Secrets Manager ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretFrom {
    Env(String),
    File(String),
    Arn(String),
}

impl std::str::FromStr for SecretFrom {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(v) = s.strip_prefix("env:").filter(|v| !v.is_empty()) {
            Ok(SecretFrom::Env(v.to_owned()))
        } else if let Some(p) = s.strip_prefix("file:").filter(|p| !p.is_empty()) {
            Ok(SecretFrom::File(p.to_owned()))
        } else if s.starts_with("arn:") && s.contains(":secretsmanager:") {
            Ok(SecretFrom::Arn(s.to_owned()))
        } else {
            Err("expected env:VAR, file:PATH or a Secrets Manager ARN (arn:aws:secretsmanager:…); the secret itself is never taken on the command line".into())
        }
    }
}

/// Reads the secret (env/file here; ARNs through Secrets Manager).
pub async fn resolve_secret(from: &SecretFrom) -> Result<SecretString, CtlError> {
    let value = match from {
        SecretFrom::Env(var) => std::env::var(var)
            .map(SecretString::from)
            .map_err(|_| CtlError::Secret(format!("environment variable {var} is not set")))?,
        SecretFrom::File(path) => std::fs::read_to_string(path)
            .map(|s| SecretString::from(s.trim_end_matches(['\r', '\n'])))
            .map_err(|e| CtlError::Secret(format!("reading {path}: {e}")))?,
        // The same reader and `SecretString` rule as the ingest function.
        SecretFrom::Arn(arn) => SecretsManager::from_env()
            .await
            .read(arn, &WEBHOOK_SECRET)
            .await
            .map_err(|e| CtlError::Secret(e.to_string()))?,
    };
    if value.expose_secret().is_empty() {
        return Err(CtlError::Secret("the secret is empty".into()));
    }
    Ok(value)
}

/// What `ensure` should make true (flags of `relayctl webex-webhooks ensure`).
#[derive(Debug, Clone)]
pub struct EnsureSpec {
    pub target_url: String,
    pub name: String,
    pub secret: SecretString,
    /// Delete further webhooks that match too (each would deliver every event again).
    pub prune_duplicates: bool,
    /// Only say what would be done.
    pub dry_run: bool,
    /// Register the `Workspaces` and `Virtual Lines` actor interests (`--no-actor-interests`).
    pub actor_interests: bool,
    /// Accept a token that is not an admin's (covers only its own user's calls).
    pub allow_user_scope: bool,
    /// Renew the interest registration when it expires within this many days.
    pub renew_within_days: u32,
    /// Days a (re)registration lasts; `None`: Webex's default (60).
    pub interest_days: Option<u32>,
}

impl EnsureSpec {
    /// The defaults of the command's flags.
    pub fn new(target_url: impl Into<String>, secret: SecretString) -> Self {
        Self {
            target_url: target_url.into(),
            name: DEFAULT_NAME.to_owned(),
            secret,
            prune_duplicates: false,
            dry_run: false,
            actor_interests: true,
            allow_user_scope: false,
            renew_within_days: DEFAULT_RENEW_WITHIN_DAYS,
            interest_days: None,
        }
    }
}

/// `relayctl webex-webhooks ensure`: org-wide call coverage, idempotently
/// ([`relay_shared::webex_registrations::check`] in its operator mode; docs/relayctl.md).
pub async fn ensure(
    client: &dyn WebexClient,
    spec: &EnsureSpec,
    now: DateTime<Utc>,
) -> Result<Report, CtlError> {
    let want = Desired {
        target_url: spec.target_url.clone(),
        name: spec.name.clone(),
        secret: Some(spec.secret.clone()),
        actor_interests: spec.actor_interests,
        renew_within: chrono::Duration::days(i64::from(spec.renew_within_days)),
        interest_days: spec.interest_days,
        allow_user_scope: spec.allow_user_scope,
        dry_run: spec.dry_run,
    };
    let mode = Mode::Ensure {
        prune_duplicates: spec.prune_duplicates,
    };
    Ok(check(client, &want, mode, now).await?)
}

/// One line per webhook for `list`.
pub fn render_table(hooks: &[WebexRegistration]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<10} {:<26} {:<28} TARGET URL",
        "STATUS", "RESOURCE/EVENT", "NAME"
    );
    for w in hooks {
        let _ = writeln!(
            s,
            "{:<10} {:<26} {:<28} {}\n  id: {}",
            w.status.as_deref().unwrap_or("-"),
            format!("{}/{}", w.resource, w.event),
            w.name,
            w.target_url,
            w.id
        );
    }
    if hooks.is_empty() {
        s.push_str("(no webhooks)\n");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_from_parses_and_refuses_literals() {
        assert_eq!(
            "env:X".parse::<SecretFrom>().unwrap(),
            SecretFrom::Env("X".into())
        );
        assert_eq!(
            "file:/tmp/s".parse::<SecretFrom>().unwrap(),
            SecretFrom::File("/tmp/s".into())
        );
        let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:webex-AbCdEf";
        assert_eq!(
            arn.parse::<SecretFrom>().unwrap(),
            SecretFrom::Arn(arn.into())
        );
        assert!("hunter2".parse::<SecretFrom>().is_err());
        assert!("env:".parse::<SecretFrom>().is_err());
        // The one redaction wrapper is secrecy's.
        assert!(!format!("{:?}", SecretString::from("hunter2")).contains("hunter2"));
    }
}
