//! # relayctl
//!
//! Operator commands over the Webex webhooks API (`relay_shared::ports::WebexClient`), chiefly
//! `ensure`: cover the whole org's calls — one active `telephony_calls`/`all` webhook at the
//! deployed ingest URL with the current secret, made with an admin-level token, plus the
//! `Workspaces` / `Virtual Lines` interest registration (`relay_shared::webex_registrations`, the
//! same core the scheduled health check runs). And `seal-secrets` ([`seal_secrets`]): the
//! migration of signing secrets stored in the clear before they were sealed at rest.
//!
//! Webex never returns a webhook's secret, so a changed secret cannot be detected: `ensure`
//! re-applies the secret with every run (a `PUT` with the same secret is harmless). Secrets are
//! never printed.

use std::fmt::Write as _;

mod seal;
pub use seal::{check_key_choice, seal_secrets, SealSummary};

use chrono::{DateTime, Utc};
use relay_shared::adapters::aws::secrets::SecretsManager;
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
    #[error("{0}")]
    Store(String),
    #[error(transparent)]
    Config(#[from] relay_shared::config::ConfigError),
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

/// Reads the secret (env/file here; ARNs through Secrets Manager). From an ARN it is the secret
/// the ingest verifies with as current: `org_id`'s in the per-org form, else the one for any org.
pub async fn resolve_secret(
    from: &SecretFrom,
    org_id: Option<&str>,
) -> Result<SecretString, CtlError> {
    let value = match from {
        SecretFrom::Env(var) => std::env::var(var)
            .map(SecretString::from)
            .map_err(|_| CtlError::Secret(format!("environment variable {var} is not set")))?,
        SecretFrom::File(path) => std::fs::read_to_string(path)
            .map(|s| SecretString::from(s.trim_end_matches(['\r', '\n'])))
            .map_err(|e| CtlError::Secret(format!("reading {path}: {e}")))?,
        // The same reader and forms as the ingest function.
        SecretFrom::Arn(arn) => SecretsManager::from_env()
            .await
            .read_webhook_secrets(arn)
            .await
            .map_err(|e| CtlError::Secret(e.to_string()))?
            .signing_secret(org_id)
            .cloned()
            .ok_or_else(|| {
                CtlError::Secret(format!(
                    "{arn} holds no current secret for org {}",
                    org_id.unwrap_or("(none given)")
                ))
            })?,
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

/// The Secrets Manager side of a webhook-secret rotation, in the safe order (docs/relayctl.md
/// "Rotating the webhook secret"): `Begin` adds a new current secret and keeps the old one as
/// `previous` (the ingest accepts both), then `ensure` gives Webex the new one, then `Finish`
/// drops `previous`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotationStage {
    Begin,
    Finish,
}

/// The secret's next `SecretString` for `stage`, from its current one (`raw`, any form the
/// ingest reads: `relay_shared::adapters::aws::secrets::parse_webhook_secrets`). `Begin` takes the
/// new secret. Only the one-secret forms are rotated here; the per-org form `{"orgs": …}` is
/// edited by hand (see the docs).
pub fn rotated_secret(
    raw: &str,
    stage: RotationStage,
    new_secret: &SecretString,
) -> Result<String, CtlError> {
    use relay_shared::adapters::aws::secrets::parse_webhook_secrets;
    use relay_shared::webex::SecretRole;
    let all = parse_webhook_secrets(raw).map_err(|e| CtlError::Secret(e.to_string()))?;
    if all.iter().any(|s| s.org_id.is_some()) {
        return Err(CtlError::Usage(
            "the secret holds one secret per org (`orgs`): rotate each org's `secret`/`previous` by hand (docs/relayctl.md)".into(),
        ));
    }
    let of = |role| {
        all.iter()
            .find(|s| s.role == role)
            .map(|s| s.secret.expose_secret().to_owned())
    };
    let current = of(SecretRole::Current)
        .ok_or_else(|| CtlError::Secret("the secret holds no current secret".into()))?;
    let json = match (stage, of(SecretRole::Previous)) {
        (RotationStage::Begin, Some(_)) => {
            return Err(CtlError::Usage(
                "a rotation is under way (`previous` is set): run `ensure`, then `rotate-secret finish`".into(),
            ))
        }
        (RotationStage::Begin, None) => {
            if new_secret.expose_secret() == current {
                return Err(CtlError::Usage("the new secret equals the current one".into()));
            }
            serde_json::json!({"secret": new_secret.expose_secret(), "previous": current})
        }
        (RotationStage::Finish, None) => {
            return Err(CtlError::Usage(
                "no rotation under way (`previous` is not set): nothing to finish".into(),
            ))
        }
        (RotationStage::Finish, Some(_)) => serde_json::json!({"secret": current}),
    };
    Ok(json.to_string())
}

/// A new random webhook secret: 32 random bytes, hex (what docs/deploy.md's `openssl rand -hex 32`
/// gives).
pub fn new_webhook_secret() -> SecretString {
    let bytes: [u8; 32] = rand::random();
    SecretString::from(hex::encode(bytes))
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
    fn rotation_stages_keep_the_old_secret_until_finish() {
        let new = SecretString::from("new-secret");
        let begun = rotated_secret("old-secret", RotationStage::Begin, &new).unwrap();
        let v: serde_json::Value = serde_json::from_str(&begun).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"secret": "new-secret", "previous": "old-secret"})
        );
        let again = rotated_secret(&begun, RotationStage::Begin, &new).unwrap_err();
        assert!(again.to_string().contains("under way"), "{again}");
        let done = rotated_secret(&begun, RotationStage::Finish, &new).unwrap();
        assert_eq!(done, r#"{"secret":"new-secret"}"#);
        assert!(rotated_secret(&done, RotationStage::Finish, &new).is_err());
        assert!(rotated_secret(r#"{"secret":"new-secret"}"#, RotationStage::Begin, &new).is_err());
        let orgs = r#"{"orgs":{"o1":{"secret":"a"}}}"#;
        assert!(rotated_secret(orgs, RotationStage::Begin, &new)
            .unwrap_err()
            .to_string()
            .contains("by hand"));
        let s = new_webhook_secret();
        assert_eq!(s.expose_secret().len(), 64);
        assert_ne!(s.expose_secret(), new_webhook_secret().expose_secret());
    }

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
