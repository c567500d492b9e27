//! The Webex-side health check, on the presence poller's schedule: at most once every
//! `WEBEX_HEALTH_INTERVAL_MINUTES` (a lease, so overlapping invocations run it once), beside the
//! polling loop. It runs `relay_shared::webex_registrations::check` in its repair-only mode —
//! reactivate the relay's webhook if Webex deactivated it, recreate it if it is missing (with the
//! ingest secret), renew the actor interest registration before it expires — and warns before the
//! Webex refresh token expires. Each finding is one EMF metric (alarmed in template.yaml) and one
//! `tracing::warn!(event = "webex:…")` line; a reactivation is also the operational event
//! `webex:webhook-reactivated` (docs/operational-events.md). See docs/deploy.md.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use relay_shared::adapters::aws::secrets::SecretsManager;
use relay_shared::config::in_range;
use relay_shared::metrics::{Emf, Unit};
use relay_shared::operational::{OperationalEmitter, OperationalEvent};
use relay_shared::ports::{Clock, LeaseStore, Term, WebexClient};
use relay_shared::webex_registrations::{
    check, refresh_token_expiring, Desired, Finding, Mode, Report, DEFAULT_NAME,
    DEFAULT_RENEW_WITHIN_DAYS,
};
use relay_shared::webex_token::TokenSource;
use secrecy::SecretString;

/// The lease that spaces the checks (one per deployment: one org, one ingest URL).
pub const LEASE: &str = "webex-health";

/// The health check's settings (flattened into the function's and the local stack's flags).
#[derive(Debug, Clone, clap::Args)]
pub struct HealthArgs {
    /// The ingest URL the relay's telephony webhook targets (the stack output `WebexIngestUrl`);
    /// unset: no health check.
    #[arg(long, env = "WEBEX_HEALTH_TARGET_URL")]
    pub webex_health_target_url: Option<String>,
    /// The name of a recreated webhook.
    #[arg(long, env = "WEBEX_HEALTH_NAME", default_value = DEFAULT_NAME)]
    pub webex_health_name: String,
    /// Minutes between two checks.
    #[arg(long, env = "WEBEX_HEALTH_INTERVAL_MINUTES", default_value_t = 15, value_parser = in_range(1u32..=1440))]
    pub webex_health_interval_minutes: u32,
    /// Renew the interest registration when it expires within this many days.
    #[arg(long, env = "WEBEX_HEALTH_INTEREST_RENEW_DAYS", default_value_t = DEFAULT_RENEW_WITHIN_DAYS, value_parser = in_range(1u32..=59))]
    pub webex_health_interest_renew_days: u32,
    /// Keep the Workspaces / Virtual Lines actor interests registered.
    #[arg(long, env = "WEBEX_HEALTH_ACTOR_INTERESTS", default_value_t = true, action = clap::ArgAction::Set)]
    pub webex_health_actor_interests: bool,
    /// Accept a non-admin token (then only its own user's calls are covered; no interests).
    #[arg(long, env = "WEBEX_HEALTH_ALLOW_USER_SCOPE")]
    pub webex_health_allow_user_scope: bool,
    /// The Secrets Manager secret of the ingest's Webex webhook secret (the template passes
    /// `WebexWebhookSecretArn`): the secret a recreated webhook gets. Unset: a missing webhook
    /// is only reported.
    #[arg(long, env = "WEBEX_HEALTH_SECRET_ARN")]
    pub webex_health_secret_arn: Option<String>,
    /// Warn this many days before the Webex refresh token expires.
    #[arg(long, env = "WEBEX_HEALTH_REFRESH_WARN_DAYS", default_value_t = 14, value_parser = in_range(1u32..=365))]
    pub webex_health_refresh_warn_days: u32,
}

/// The settings of an enabled check.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthConfig {
    pub target_url: String,
    pub name: String,
    pub interval: Duration,
    pub renew_within: Duration,
    pub actor_interests: bool,
    pub allow_user_scope: bool,
    pub refresh_warn: Duration,
}

impl HealthArgs {
    /// `None` when `WEBEX_HEALTH_TARGET_URL` is unset or empty (the check is off).
    pub fn config(&self) -> Option<HealthConfig> {
        let target = self.webex_health_target_url.as_deref().map(str::trim)?;
        (!target.is_empty()).then(|| HealthConfig {
            target_url: target.to_owned(),
            name: self.webex_health_name.clone(),
            interval: Duration::minutes(i64::from(self.webex_health_interval_minutes)),
            renew_within: Duration::days(i64::from(self.webex_health_interest_renew_days)),
            actor_interests: self.webex_health_actor_interests,
            allow_user_scope: self.webex_health_allow_user_scope,
            refresh_warn: Duration::days(i64::from(self.webex_health_refresh_warn_days)),
        })
    }
}

impl HealthArgs {
    /// The secret source of a Lambda run (`WEBEX_HEALTH_SECRET_ARN`).
    pub fn signing_secret(&self, sdk: &aws_config::SdkConfig) -> SigningSecret {
        match self.webex_health_secret_arn.as_deref().map(str::trim) {
            Some(arn) if !arn.is_empty() => SigningSecret::SecretsManager {
                secrets: SecretsManager::from_sdk_config(sdk),
                arn: arn.to_owned(),
            },
            _ => SigningSecret::None,
        }
    }
}

/// Where the secret of a recreated webhook comes from (the ingest's own secret).
pub enum SigningSecret {
    /// None configured: a missing webhook is only reported (`WebexRegistrationMissing`).
    None,
    /// Given (the local stack's `--webex-secret`).
    Fixed(SecretString),
    /// `WEBEX_HEALTH_SECRET_ARN` (the ingest's `WEBEX_WEBHOOK_SECRET_ARN`), read when a check runs
    /// (so a rotation is picked up).
    SecretsManager {
        secrets: SecretsManager,
        arn: String,
    },
}

impl SigningSecret {
    async fn get(&self, org_id: &str) -> Option<SecretString> {
        match self {
            SigningSecret::None => None,
            SigningSecret::Fixed(s) => Some(s.clone()),
            SigningSecret::SecretsManager { secrets, arn } => {
                let org = (!org_id.is_empty()).then_some(org_id);
                match secrets.read_webhook_secrets(arn).await {
                    Ok(all) => all.signing_secret(org).cloned(),
                    Err(e) => {
                        tracing::warn!(error = %e, "health check: cannot read the Webex webhook secret; a missing webhook cannot be recreated");
                        None
                    }
                }
            }
        }
    }
}

/// What one check found.
#[derive(Debug, Clone)]
pub struct HealthOutcome {
    pub findings: Vec<Finding>,
    pub report: Option<Report>,
    pub error: Option<String>,
}

impl HealthOutcome {
    /// One EMF line: every finding's metric, 0 or 1, so each alarm sees data every check.
    pub fn emf_line(&self, now_ms: i64) -> String {
        let doc = Finding::ALL
            .iter()
            .fold(Emf::new("presence-poller"), |doc, f| {
                let hit = self.findings.contains(f);
                doc.metric(f.metric(), Unit::Count, if hit { 1.0 } else { 0.0 })
            });
        let doc = match self.report.as_ref().map(|r| r.webhook.id.as_str()) {
            Some(id) if !id.is_empty() => doc.property("webhookId", id),
            _ => doc,
        };
        doc.line(now_ms)
    }
}

pub struct HealthCheck {
    webex: Arc<dyn WebexClient>,
    leases: Arc<dyn LeaseStore>,
    clock: Arc<dyn Clock>,
    tokens: Option<Arc<dyn TokenSource>>,
    secret: SigningSecret,
    /// The org whose secret signs a recreated webhook (the token's own: `org::signing_org`).
    org_id: String,
    config: HealthConfig,
    /// `webex:webhook-reactivated` to this org's subscribers (docs/operational-events.md).
    operational: Option<(OperationalEmitter, String)>,
}

impl HealthCheck {
    pub fn new(
        webex: Arc<dyn WebexClient>,
        leases: Arc<dyn LeaseStore>,
        clock: Arc<dyn Clock>,
        config: HealthConfig,
    ) -> Self {
        Self {
            webex,
            leases,
            clock,
            tokens: None,
            secret: SigningSecret::None,
            org_id: String::new(),
            config,
            operational: None,
        }
    }

    /// Reports a reactivation as the operational event `webex:webhook-reactivated` to the
    /// subscribers of `org_id` (the org the poller watches).
    pub fn with_operational(
        mut self,
        emitter: OperationalEmitter,
        org_id: impl Into<String>,
    ) -> Self {
        self.operational = Some((emitter, org_id.into()));
        self
    }

    /// The token source whose record says when the refresh token expires.
    pub fn with_tokens(mut self, tokens: Arc<dyn TokenSource>) -> Self {
        self.tokens = Some(tokens);
        self
    }

    /// The secret a recreated webhook gets, and the org it is looked up for.
    pub fn with_secret(mut self, secret: SigningSecret, org_id: impl Into<String>) -> Self {
        self.secret = secret;
        self.org_id = org_id.into();
        self
    }

    pub fn config(&self) -> &HealthConfig {
        &self.config
    }

    /// Runs the check if no other invocation ran it within the interval (`None`: not due).
    pub async fn run_if_due(&self, holder: &str) -> Option<HealthOutcome> {
        let now = self.clock.now();
        let term = Term::new(now, now + self.config.interval);
        match self.leases.acquire(LEASE, holder, term).await {
            Ok(true) => Some(self.run(now).await),
            Ok(false) => None,
            Err(e) => {
                tracing::warn!(error = %e, "health check: lease store unavailable; skipped");
                None
            }
        }
    }

    /// One check now (no lease).
    pub async fn run(&self, now: DateTime<Utc>) -> HealthOutcome {
        let want = Desired {
            name: self.config.name.clone(),
            secret: self.secret.get(&self.org_id).await,
            actor_interests: self.config.actor_interests,
            renew_within: self.config.renew_within,
            allow_user_scope: self.config.allow_user_scope,
            ..Desired::new(self.config.target_url.clone())
        };
        let mut out = match check(self.webex.as_ref(), &want, Mode::Health, now).await {
            Ok(report) => HealthOutcome {
                findings: report.findings(),
                report: Some(report),
                error: None,
            },
            Err(e) => HealthOutcome {
                findings: vec![Finding::CheckFailed],
                report: None,
                error: Some(e.to_string()),
            },
        };
        if let Some(tokens) = &self.tokens {
            let expires_at = tokens
                .record()
                .await
                .and_then(|r| r.refresh_token_expires_at);
            if refresh_token_expiring(expires_at, now, self.config.refresh_warn).is_some() {
                out.findings.push(Finding::RefreshTokenExpiringSoon);
            }
        }
        self.log(&out);
        if let (Some((emitter, org)), Some(report)) = (&self.operational, &out.report) {
            if out.findings.contains(&Finding::Reactivated) {
                let op = OperationalEvent::webex_webhook_reactivated(
                    org,
                    &report.webhook.id,
                    &self.config.target_url,
                    now,
                );
                emitter.emit_logged(&op).await;
            }
        }
        out
    }

    pub(crate) fn log(&self, out: &HealthOutcome) {
        let target = self.config.target_url.as_str();
        let webhook = out.report.as_ref().map(|r| r.webhook.id.as_str());
        let expires = out.report.as_ref().and_then(|r| r.interests.expires_at);
        for f in &out.findings {
            match f {
                Finding::Reactivated => tracing::warn!(event = f.event(), webhook_id = ?webhook, target_url = target, "Webex had deactivated the relay's webhook: reactivated"),
                Finding::Recreated => tracing::warn!(event = f.event(), webhook_id = ?webhook, target_url = target, "the relay's Webex webhook was missing: recreated"),
                Finding::Missing => tracing::warn!(event = f.event(), target_url = target, "the relay's Webex webhook is missing and no secret is configured to recreate it (WEBEX_HEALTH_SECRET_ARN); run relayctl webex-webhooks ensure"),
                Finding::InterestRenewed => tracing::warn!(event = f.event(), expires_at = ?expires, "Webex webhook interest registration renewed"),
                Finding::RefreshTokenExpiringSoon => {
                    tracing::warn!(event = f.event(), warn_days = self.config.refresh_warn.num_days(), "the Webex refresh token expires soon: re-authorise the integration / Service App and store the new token record")
                }
                Finding::CheckFailed => tracing::warn!(event = f.event(), error = out.error.as_deref().unwrap_or(""), "Webex health check failed"),
            }
        }
        if out.findings.is_empty() {
            tracing::info!(webhook_id = ?webhook, interests_expire = ?expires, "Webex health check: all well");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use relay_shared::config::from_env_pairs;

    #[test]
    fn config_is_off_without_a_target() {
        let a: HealthArgs = from_env_pairs(&[]).unwrap();
        assert!(a.config().is_none());
        let a: HealthArgs = from_env_pairs(&[
            ("WEBEX_HEALTH_TARGET_URL", "https://x/webex/telephony"),
            ("WEBEX_HEALTH_ACTOR_INTERESTS", "false"),
            ("WEBEX_HEALTH_INTERVAL_MINUTES", "30"),
        ])
        .unwrap();
        let c = a.config().unwrap();
        assert_eq!(c.interval, Duration::minutes(30));
        assert!(!c.actor_interests);
        assert_eq!(c.renew_within, Duration::days(7));
        assert_eq!(c.refresh_warn, Duration::days(14));
        assert!(from_env_pairs::<HealthArgs>(&[("WEBEX_HEALTH_INTERVAL_MINUTES", "0")]).is_err());
    }
}
