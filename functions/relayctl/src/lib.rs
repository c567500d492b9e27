//! # relayctl
//!
//! Operator commands over the Webex webhooks API (`relay_shared::ports::WebexClient`), chiefly
//! `ensure`: make exactly one `telephony_calls`/`all` webhook point at the deployed ingest URL,
//! with the current secret, and active.
//!
//! Webex never returns a webhook's secret, so a changed secret cannot be detected: `ensure`
//! re-applies the secret with every run (a `PUT` with the same secret is harmless). Secrets are
//! never printed.

use std::fmt::Write as _;

use relay_shared::adapters::aws::secrets::{SecretsManager, WEBHOOK_SECRET};
use relay_shared::ports::WebexClient;
use relay_shared::webex_api::{
    RegistrationCreate, RegistrationUpdate, WebexApiError, WebexRegistration,
};
use secrecy::{ExposeSecret, SecretString};

pub const TELEPHONY_RESOURCE: &str = "telephony_calls";
pub const EVENT_ALL: &str = "all";
pub const DEFAULT_NAME: &str = "webex-relay telephony";

#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    #[error(transparent)]
    Webex(#[from] WebexApiError),
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

/// What `ensure` should make true.
#[derive(Debug, Clone)]
pub struct EnsureSpec {
    pub target_url: String,
    pub name: String,
    pub secret: SecretString,
    /// Delete further webhooks that match too (each would deliver every event again).
    pub prune_duplicates: bool,
    /// Only say what would be done.
    pub dry_run: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnsureAction {
    Created,
    Updated,
}

/// What `ensure` did (or, with `dry_run`, would do).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnsureReport {
    /// Empty when a dry run would create one.
    pub id: String,
    pub action: EnsureAction,
    /// Human-readable changes, e.g. `name "a" → "b"`, `reactivated (was inactive)`.
    pub changes: Vec<String>,
    /// Further matching webhooks (deleted when `prune_duplicates`).
    pub duplicates: Vec<String>,
    pub pruned: bool,
    pub dry_run: bool,
}

impl EnsureReport {
    /// The lines `relayctl` prints (never the secret).
    pub fn render(&self, target_url: &str) -> String {
        let mut s = String::new();
        let would = if self.dry_run { "would be " } else { "" };
        match self.action {
            EnsureAction::Created => {
                let _ = writeln!(
                    s,
                    "{would}created webhook {} ({TELEPHONY_RESOURCE}/{EVENT_ALL} -> {target_url})",
                    if self.id.is_empty() {
                        "<new>"
                    } else {
                        &self.id
                    }
                );
            }
            EnsureAction::Updated => {
                let _ = writeln!(s, "{would}updated webhook {} ({TELEPHONY_RESOURCE}/{EVENT_ALL} -> {target_url}): {}", self.id, self.changes.join("; "));
            }
        }
        for d in &self.duplicates {
            if self.pruned {
                let _ = writeln!(s, "{would}deleted duplicate webhook {d}");
            } else {
                let _ = writeln!(s, "warning: duplicate webhook {d} also targets {target_url} (every event would be relayed twice); rerun with --prune-duplicates to delete it");
            }
        }
        s
    }
}

fn matches(w: &WebexRegistration, target_url: &str) -> bool {
    w.resource == TELEPHONY_RESOURCE && w.event == EVENT_ALL && w.target_url == target_url
}

fn is_active(w: &WebexRegistration) -> bool {
    w.status
        .as_deref()
        .is_none_or(|s| s.eq_ignore_ascii_case("active"))
}

/// Idempotently makes one active `telephony_calls`/`all` webhook target `spec.target_url` with
/// `spec.name` and `spec.secret`. Matching is on resource + event + targetUrl. An existing match
/// is always re-`PUT` (the secret cannot be compared, Webex does not return it) with
/// `status: active`, which also reactivates a webhook Webex disabled.
pub async fn ensure(client: &dyn WebexClient, spec: &EnsureSpec) -> Result<EnsureReport, CtlError> {
    if !(spec.target_url.starts_with("https://") || spec.target_url.starts_with("http://")) {
        return Err(CtlError::Usage(format!(
            "--target-url must be an http(s) URL, got `{}`",
            spec.target_url
        )));
    }
    let all = client.list_registrations().await?;
    let mut found: Vec<&WebexRegistration> = all
        .iter()
        .filter(|w| matches(w, &spec.target_url))
        .collect();
    // Keep an active one if there is one, else the oldest listed.
    found.sort_by_key(|w| !is_active(w));
    let Some(keep) = found.first().copied() else {
        let id = if spec.dry_run {
            String::new()
        } else {
            let created = client
                .create_registration(&RegistrationCreate {
                    name: spec.name.clone(),
                    target_url: spec.target_url.clone(),
                    resource: TELEPHONY_RESOURCE.into(),
                    event: EVENT_ALL.into(),
                    filter: None,
                    secret: Some(spec.secret.expose_secret().to_owned()),
                })
                .await?;
            created.id
        };
        return Ok(EnsureReport {
            id,
            action: EnsureAction::Created,
            changes: vec![],
            duplicates: vec![],
            pruned: false,
            dry_run: spec.dry_run,
        });
    };

    let mut changes = Vec::new();
    if keep.name != spec.name {
        changes.push(format!("name {:?} -> {:?}", keep.name, spec.name));
    }
    if !is_active(keep) {
        changes.push(format!(
            "reactivated (was {})",
            keep.status.as_deref().unwrap_or("unknown")
        ));
    }
    changes.push("secret re-applied".to_owned());
    if !spec.dry_run {
        client
            .update_registration(
                &keep.id,
                &RegistrationUpdate {
                    name: spec.name.clone(),
                    target_url: spec.target_url.clone(),
                    secret: Some(spec.secret.expose_secret().to_owned()),
                    status: Some("active".into()),
                },
            )
            .await?;
    }
    let duplicates: Vec<String> = found.iter().skip(1).map(|w| w.id.clone()).collect();
    if spec.prune_duplicates && !spec.dry_run {
        for d in &duplicates {
            client.delete_registration(d).await?;
        }
    }
    Ok(EnsureReport {
        id: keep.id.clone(),
        action: EnsureAction::Updated,
        changes,
        duplicates,
        pruned: spec.prune_duplicates,
        dry_run: spec.dry_run,
    })
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
