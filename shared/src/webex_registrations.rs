//! The Webex registrations that feed the relay, and keeping them so. One home for the operator's
//! `relayctl webex-webhooks ensure` ([`Mode::Ensure`]) and the scheduled health check of the
//! presence poller ([`Mode::Health`]).
//!
//! What covers a whole org (docs/relayctl.md "Org-wide call coverage" cites the sources):
//! - ONE `telephony_calls` webhook with event `all`, created with an admin or Service App token.
//!   Webex's webhook API does not offer `ownedBy: org` for `telephony_calls`; that an admin-level
//!   token's telephony webhook receives every calling user's calls is inferred from the Call
//!   Control guide and the interest-registration docs, not stated by them.
//! - A webhook interest registration for the actors `Workspaces` and `Virtual Lines`: without it
//!   Webex does not emit calls whose actor is a workspace or a virtual line. It is admin-only
//!   (`spark-admin:calls_read`), one per user + client of the token, and expires (60 days by
//!   default), so it is renewed ahead of `expiresAt`.
//!
//! A bot token cannot cover an org (bots have no calling access); a non-admin user token covers
//! only its own user's calls, which is refused unless `allow_user_scope`.

use std::fmt::Write as _;

use chrono::{DateTime, Duration, Utc};
use secrecy::{ExposeSecret, SecretString};

use crate::ports::WebexClient;
use crate::webex_api::{
    Interest, InterestRegistration, InterestRegistrationUpdate, RegistrationCreate,
    RegistrationUpdate, WebexApiError, WebexRegistration,
};

pub const TELEPHONY_RESOURCE: &str = "telephony_calls";
/// One webhook for `created`, `updated` and `deleted` call events.
pub const EVENT_ALL: &str = "all";
pub const DEFAULT_NAME: &str = "webex-relay telephony";
/// The actor interests the relay registers (calls of workspaces and of virtual lines).
pub const ACTOR_INTERESTS: [&str; 2] = ["Workspaces", "Virtual Lines"];
/// The scope interest registrations need (and an org-wide telephony webhook implies).
pub const ADMIN_SCOPE: &str = "spark-admin:calls_read";
/// Renew an interest registration when it expires within this many days.
pub const DEFAULT_RENEW_WITHIN_DAYS: u32 = 7;

#[derive(Debug, thiserror::Error)]
pub enum CoverageError {
    #[error(transparent)]
    Webex(#[from] WebexApiError),
    #[error("the Webex token is a bot's (GET /people/me answered type \"bot\"): bots have no calling access and cannot cover an org's calls; use a Service App token or a full administrator's integration token with the {ADMIN_SCOPE} scope")]
    BotToken,
    #[error("the Webex token cannot manage webhook interest registrations (HTTP {status}): covering the whole org needs an admin or Service App token with the {ADMIN_SCOPE} scope; a single-user setup may opt out with --allow-user-scope (WEBEX_HEALTH_ALLOW_USER_SCOPE=true for the health check), which relays only the token's own user's calls")]
    NotAdmin { status: u16 },
    #[error("{0}")]
    Usage(String),
}

/// Who may change what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The operator (`relayctl ensure`): name and secret are applied to the webhook kept
    /// (Webex never returns a secret to compare, so it is always re-sent); duplicates are
    /// deleted when asked.
    Ensure { prune_duplicates: bool },
    /// The scheduled check: repairs only (reactivate, recreate, renew); never renames, never
    /// re-sends a secret, never deletes.
    Health,
}

/// What should exist at Webex.
#[derive(Debug, Clone)]
pub struct Desired {
    /// The deployed ingest URL (`WebexIngestUrl`); webhooks are matched on it.
    pub target_url: String,
    /// The name of a webhook created (and, in [`Mode::Ensure`], of the one kept).
    pub name: String,
    /// The webhook secret: needed to create one; without it a missing webhook is only reported.
    pub secret: Option<SecretString>,
    /// Register the `Workspaces` and `Virtual Lines` actor interests.
    pub actor_interests: bool,
    /// Renew the interest registration when it expires within this long.
    pub renew_within: Duration,
    /// `duration` of a (re)registration in days; `None`: Webex's default (60).
    pub interest_days: Option<u32>,
    /// Accept a non-admin token (covers only its own user's calls).
    pub allow_user_scope: bool,
    /// Only report what would be done.
    pub dry_run: bool,
}

impl Desired {
    pub fn new(target_url: impl Into<String>) -> Self {
        Self {
            target_url: target_url.into(),
            name: DEFAULT_NAME.to_owned(),
            secret: None,
            actor_interests: true,
            renew_within: Duration::days(i64::from(DEFAULT_RENEW_WITHIN_DAYS)),
            interest_days: None,
            allow_user_scope: false,
            dry_run: false,
        }
    }
}

/// What the token can cover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// An admin or Service App token: the whole org.
    Org,
    /// A user token accepted with `allow_user_scope`: only that user's calls.
    User,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookAction {
    Created,
    Updated,
    Unchanged,
    /// None exists and there is no secret to create one with.
    Missing,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookOutcome {
    /// Empty when none exists (yet: a dry run's create, or `Missing`).
    pub id: String,
    pub action: WebhookAction,
    /// Human-readable changes, e.g. `name "a" -> "b"`, `reactivated (was inactive)`.
    pub changes: Vec<String>,
    pub reactivated: bool,
    /// Further matching webhooks (each would relay every event again).
    pub duplicates: Vec<String>,
    pub pruned: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InterestAction {
    /// None existed: registered.
    Registered,
    /// Expiring soon or lacking an actor: re-posted.
    Renewed,
    Current,
    /// Not managed (opted out, or a user-scope token); the reason.
    Skipped(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct InterestOutcome {
    pub action: InterestAction,
    /// When the registration expires (before a renewal when `dry_run`).
    pub expires_at: Option<DateTime<Utc>>,
    pub interests: Vec<Interest>,
}

/// What [`check`] found and did (or, with `dry_run`, would do).
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub scope: Scope,
    /// The token's person (`GET /people/me`): id and org, for the coverage line.
    pub person_id: String,
    pub org_id: Option<String>,
    pub webhook: WebhookOutcome,
    pub interests: InterestOutcome,
    pub dry_run: bool,
}

/// Each finding of the health check: one CloudWatch metric (namespace `WebexRelay`) and one
/// structured log line (`event = …`) until operational events exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finding {
    Reactivated,
    Recreated,
    Missing,
    InterestRenewed,
    RefreshTokenExpiringSoon,
    CheckFailed,
}

impl Finding {
    pub const ALL: [Finding; 6] = [
        Finding::Reactivated,
        Finding::Recreated,
        Finding::Missing,
        Finding::InterestRenewed,
        Finding::RefreshTokenExpiringSoon,
        Finding::CheckFailed,
    ];

    /// The metric name (template.yaml alarms on each).
    pub fn metric(self) -> &'static str {
        match self {
            Finding::Reactivated => "WebexRegistrationReactivated",
            Finding::Recreated => "WebexRegistrationRecreated",
            Finding::Missing => "WebexRegistrationMissing",
            Finding::InterestRenewed => "WebexInterestRenewed",
            Finding::RefreshTokenExpiringSoon => "WebexRefreshTokenExpiringSoon",
            Finding::CheckFailed => "WebexHealthCheckFailed",
        }
    }

    /// The operational event's name (the log line's `event` field).
    pub fn event(self) -> &'static str {
        match self {
            Finding::Reactivated => "webex:webhook-reactivated",
            Finding::Recreated => "webex:webhook-recreated",
            Finding::Missing => "webex:webhook-missing",
            Finding::InterestRenewed => "webex:interest-renewed",
            Finding::RefreshTokenExpiringSoon => "webex:refresh-token-expiring",
            Finding::CheckFailed => "webex:health-check-failed",
        }
    }
}

impl Report {
    /// The findings of this report (none for a dry run: nothing was changed).
    pub fn findings(&self) -> Vec<Finding> {
        let mut out = Vec::new();
        match self.webhook.action {
            WebhookAction::Created if !self.dry_run => out.push(Finding::Recreated),
            WebhookAction::Missing => out.push(Finding::Missing),
            _ => {}
        }
        if self.webhook.reactivated && !self.dry_run {
            out.push(Finding::Reactivated);
        }
        if matches!(
            self.interests.action,
            InterestAction::Registered | InterestAction::Renewed
        ) && !self.dry_run
        {
            out.push(Finding::InterestRenewed);
        }
        out
    }

    /// The lines `relayctl ensure` prints (never a secret).
    pub fn render(&self, target_url: &str) -> String {
        let mut s = String::new();
        let would = if self.dry_run { "would be " } else { "" };
        let w = &self.webhook;
        let what = format!("{TELEPHONY_RESOURCE}/{EVENT_ALL} -> {target_url}");
        let _ = match w.action {
            WebhookAction::Created => writeln!(
                s,
                "{would}created webhook {} ({what})",
                if w.id.is_empty() { "<new>" } else { &w.id }
            ),
            WebhookAction::Updated => writeln!(
                s,
                "{would}updated webhook {} ({what}): {}",
                w.id,
                w.changes.join("; ")
            ),
            WebhookAction::Unchanged => writeln!(s, "webhook {} is active ({what})", w.id),
            WebhookAction::Missing => writeln!(
                s,
                "warning: no webhook {what}, and no secret to create one with"
            ),
        };
        for d in &w.duplicates {
            let _ = if w.pruned {
                writeln!(s, "{would}deleted duplicate webhook {d}")
            } else {
                writeln!(s, "warning: duplicate webhook {d} also targets {target_url} (every event would be relayed twice); rerun with --prune-duplicates to delete it")
            };
        }
        let i = &self.interests;
        let names = i
            .interests
            .iter()
            .map(|x| x.actor.as_deref().or(x.resource.as_deref()).unwrap_or("?"))
            .collect::<Vec<_>>()
            .join(", ");
        let until = i
            .expires_at
            .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
            .unwrap_or_else(|| "-".into());
        let _ = match &i.action {
            InterestAction::Registered => writeln!(
                s,
                "{would}registered webhook interests [{names}] (expires {until})"
            ),
            InterestAction::Renewed => writeln!(
                s,
                "{would}renewed webhook interests [{names}] (expires {until})"
            ),
            InterestAction::Current => {
                writeln!(s, "webhook interests [{names}] current (expire {until})")
            }
            InterestAction::Skipped(why) => writeln!(s, "webhook interests not managed: {why}"),
        };
        let org = self.org_id.as_deref().unwrap_or("?");
        let _ = match self.scope {
            Scope::Org => writeln!(
                s,
                "coverage: every calling user of org {org} (admin-level token)"
            ),
            Scope::User => writeln!(
                s,
                "coverage: only the calls of person {} (user-scope token, --allow-user-scope)",
                self.person_id
            ),
        };
        s
    }
}

fn is_active(w: &WebexRegistration) -> bool {
    w.status
        .as_deref()
        .is_none_or(|s| s.eq_ignore_ascii_case("active"))
}

/// Is `w` one of the relay's call webhooks for `target_url`?
pub fn is_relay_webhook(w: &WebexRegistration, target_url: &str) -> bool {
    w.resource == TELEPHONY_RESOURCE && w.event == EVENT_ALL && w.target_url == target_url
}

/// Makes `want` true at Webex, idempotently: checks the token, keeps one active relay webhook
/// (reactivating or creating it), and keeps the actor interests registered and unexpired.
pub async fn check(
    client: &dyn WebexClient,
    want: &Desired,
    mode: Mode,
    now: DateTime<Utc>,
) -> Result<Report, CoverageError> {
    if !(want.target_url.starts_with("https://") || want.target_url.starts_with("http://")) {
        return Err(CoverageError::Usage(format!(
            "the target URL must be an http(s) URL, got `{}`",
            want.target_url
        )));
    }
    let me = client.me().await?;
    if me.person_type.as_deref() == Some("bot") {
        return Err(CoverageError::BotToken);
    }
    // The interest registration doubles as the admin probe: it is reserved for administrators.
    let (scope, current) = match client.get_interest_registration().await {
        Ok(r) => (Scope::Org, r),
        Err(WebexApiError::Status { status: 403, .. }) if want.allow_user_scope => {
            (Scope::User, None)
        }
        Err(WebexApiError::Status { status: 403, .. }) => {
            return Err(CoverageError::NotAdmin { status: 403 })
        }
        Err(e) => return Err(e.into()),
    };
    let webhook = ensure_webhook(client, want, mode).await?;
    let interests = match scope {
        Scope::User => InterestOutcome {
            action: InterestAction::Skipped(format!("the token lacks {ADMIN_SCOPE} (user scope)")),
            expires_at: None,
            interests: vec![],
        },
        Scope::Org => ensure_interests(client, want, current, now).await?,
    };
    Ok(Report {
        scope,
        person_id: me.id,
        org_id: me.org_id,
        webhook,
        interests,
        dry_run: want.dry_run,
    })
}

async fn ensure_webhook(
    client: &dyn WebexClient,
    want: &Desired,
    mode: Mode,
) -> Result<WebhookOutcome, CoverageError> {
    let all = client.list_registrations().await?;
    let mut found: Vec<&WebexRegistration> = all
        .iter()
        .filter(|w| is_relay_webhook(w, &want.target_url))
        .collect();
    // Keep an active one if there is one, else the first listed.
    found.sort_by_key(|w| !is_active(w));
    let Some(keep) = found.first().copied() else {
        let Some(secret) = &want.secret else {
            return Ok(WebhookOutcome {
                id: String::new(),
                action: WebhookAction::Missing,
                changes: vec![],
                reactivated: false,
                duplicates: vec![],
                pruned: false,
            });
        };
        let id = if want.dry_run {
            String::new()
        } else {
            client
                .create_registration(&RegistrationCreate {
                    name: want.name.clone(),
                    target_url: want.target_url.clone(),
                    resource: TELEPHONY_RESOURCE.into(),
                    event: EVENT_ALL.into(),
                    filter: None,
                    secret: Some(secret.expose_secret().to_owned()),
                })
                .await?
                .id
        };
        return Ok(WebhookOutcome {
            id,
            action: WebhookAction::Created,
            changes: vec![],
            reactivated: false,
            duplicates: vec![],
            pruned: false,
        });
    };

    let operator = matches!(mode, Mode::Ensure { .. });
    let mut changes = Vec::new();
    let name = if operator && keep.name != want.name {
        changes.push(format!("name {:?} -> {:?}", keep.name, want.name));
        want.name.clone()
    } else {
        keep.name.clone()
    };
    let reactivated = !is_active(keep);
    if reactivated {
        changes.push(format!(
            "reactivated (was {})",
            keep.status.as_deref().unwrap_or("unknown")
        ));
    }
    // Webex never returns a secret, so the operator's run always re-sends it.
    let secret = want.secret.as_ref().filter(|_| operator);
    if secret.is_some() {
        changes.push("secret re-applied".to_owned());
    }
    if !changes.is_empty() && !want.dry_run {
        client
            .update_registration(
                &keep.id,
                &RegistrationUpdate {
                    name,
                    target_url: keep.target_url.clone(),
                    secret: secret.map(|s| s.expose_secret().to_owned()),
                    // Webex's PUT can only (re)activate, never deactivate.
                    status: reactivated.then(|| "active".to_owned()),
                },
            )
            .await?;
    }
    let duplicates: Vec<String> = found.iter().skip(1).map(|w| w.id.clone()).collect();
    let prune = matches!(
        mode,
        Mode::Ensure {
            prune_duplicates: true
        }
    );
    if prune && !want.dry_run {
        for d in &duplicates {
            client.delete_registration(d).await?;
        }
    }
    Ok(WebhookOutcome {
        id: keep.id.clone(),
        action: if changes.is_empty() {
            WebhookAction::Unchanged
        } else {
            WebhookAction::Updated
        },
        changes,
        reactivated,
        duplicates,
        pruned: prune,
    })
}

async fn ensure_interests(
    client: &dyn WebexClient,
    want: &Desired,
    current: Option<InterestRegistration>,
    now: DateTime<Utc>,
) -> Result<InterestOutcome, CoverageError> {
    if !want.actor_interests {
        return Ok(InterestOutcome {
            action: InterestAction::Skipped("opted out (--no-actor-interests)".into()),
            expires_at: current.as_ref().map(|c| c.expires_at),
            interests: current.map(|c| c.interests).unwrap_or_default(),
        });
    }
    // A registration is the client's only one: keep whatever else it holds.
    let mut interests = current
        .as_ref()
        .map(|c| c.interests.clone())
        .unwrap_or_default();
    for actor in ACTOR_INTERESTS {
        let i = Interest::actor(actor);
        if !interests.contains(&i) {
            interests.push(i);
        }
    }
    let action = match &current {
        None => InterestAction::Registered,
        Some(c) if c.interests.len() < interests.len() => InterestAction::Renewed,
        Some(c) if c.expires_at - now <= want.renew_within => InterestAction::Renewed,
        Some(c) => {
            return Ok(InterestOutcome {
                action: InterestAction::Current,
                expires_at: Some(c.expires_at),
                interests,
            })
        }
    };
    let mut expires_at = current.as_ref().map(|c| c.expires_at);
    if !want.dry_run {
        client
            .put_interest_registration(&InterestRegistrationUpdate {
                interests: interests.clone(),
                duration: want.interest_days,
            })
            .await?;
        // The POST answers 204: read back the new expiry (best effort: the renewal is done).
        expires_at = match client.get_interest_registration().await {
            Ok(r) => r.map(|r| r.expires_at),
            Err(e) => {
                tracing::warn!(error = %e, "webhook interests renewed; reading the new expiry failed");
                None
            }
        };
    }
    Ok(InterestOutcome {
        action,
        expires_at,
        interests,
    })
}

/// How long the refresh token has left, when that is within `warn_within` (or already past).
pub fn refresh_token_expiring(
    expires_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    warn_within: Duration,
) -> Option<Duration> {
    let left = expires_at? - now;
    (left <= warn_within).then_some(left)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::PeoplePage;
    use crate::webex::Person;
    use async_trait::async_trait;
    use std::sync::Mutex;

    const TARGET: &str = "https://relay.example/webex/telephony";

    fn now() -> DateTime<Utc> {
        "2026-12-01T12:00:00Z".parse().unwrap()
    }

    /// A deterministic Webex: webhooks, one interest registration, and who the token is.
    #[derive(Default)]
    struct Fake {
        state: Mutex<State>,
    }

    #[derive(Default)]
    struct State {
        person_type: String,
        admin: bool,
        hooks: Vec<WebexRegistration>,
        secrets: Vec<(String, Option<String>)>,
        interests: Option<InterestRegistration>,
        calls: Vec<String>,
        next_id: u32,
    }

    impl Fake {
        fn new(person_type: &str, admin: bool) -> Self {
            let f = Fake::default();
            {
                let mut s = f.state.lock().unwrap();
                s.person_type = person_type.into();
                s.admin = admin;
            }
            f
        }
        fn admin() -> Self {
            Self::new("person", true)
        }
        fn hook(&self, id: &str, event: &str, status: &str) {
            self.state.lock().unwrap().hooks.push(WebexRegistration {
                id: id.into(),
                name: "old name".into(),
                target_url: TARGET.into(),
                resource: TELEPHONY_RESOURCE.into(),
                event: event.into(),
                filter: None,
                secret: None,
                status: Some(status.into()),
                created: None,
                org_id: None,
            });
        }
        fn calls(&self) -> Vec<String> {
            std::mem::take(&mut self.state.lock().unwrap().calls)
        }
        fn log(&self, c: impl Into<String>) {
            self.state.lock().unwrap().calls.push(c.into());
        }
    }

    #[async_trait]
    impl WebexClient for Fake {
        async fn list_people(
            &self,
            _q: &[(String, String)],
            _n: Option<&str>,
        ) -> Result<PeoplePage, WebexApiError> {
            unreachable!("the coverage check never lists people")
        }
        async fn list_registrations(&self) -> Result<Vec<WebexRegistration>, WebexApiError> {
            self.log("list");
            Ok(self.state.lock().unwrap().hooks.clone())
        }
        async fn create_registration(
            &self,
            r: &RegistrationCreate,
        ) -> Result<WebexRegistration, WebexApiError> {
            self.log(format!("create {}/{}", r.resource, r.event));
            let mut s = self.state.lock().unwrap();
            s.next_id += 1;
            let id = format!("new{}", s.next_id);
            s.secrets.push((id.clone(), r.secret.clone()));
            let w = WebexRegistration {
                id,
                name: r.name.clone(),
                target_url: r.target_url.clone(),
                resource: r.resource.clone(),
                event: r.event.clone(),
                filter: None,
                secret: None,
                status: Some("active".into()),
                created: None,
                org_id: None,
            };
            s.hooks.push(w.clone());
            Ok(w)
        }
        async fn update_registration(
            &self,
            id: &str,
            r: &RegistrationUpdate,
        ) -> Result<WebexRegistration, WebexApiError> {
            self.log(format!(
                "put {id} status={:?} secret={}",
                r.status,
                r.secret.is_some()
            ));
            let mut s = self.state.lock().unwrap();
            let w = s.hooks.iter_mut().find(|w| w.id == id).unwrap();
            w.name = r.name.clone();
            if let Some(st) = &r.status {
                assert_eq!(st, "active", "Webex's PUT can only reactivate");
                w.status = Some(st.clone());
            }
            Ok(w.clone())
        }
        async fn get_registration(&self, _id: &str) -> Result<WebexRegistration, WebexApiError> {
            unreachable!()
        }
        async fn delete_registration(&self, id: &str) -> Result<(), WebexApiError> {
            self.log(format!("delete {id}"));
            self.state.lock().unwrap().hooks.retain(|w| w.id != id);
            Ok(())
        }
        async fn me(&self) -> Result<Person, WebexApiError> {
            let s = self.state.lock().unwrap();
            Ok(serde_json::from_value(serde_json::json!({
                "id": "me-1", "orgId": "org-1", "type": s.person_type
            }))
            .unwrap())
        }
        async fn get_interest_registration(
            &self,
        ) -> Result<Option<InterestRegistration>, WebexApiError> {
            let s = self.state.lock().unwrap();
            if !s.admin {
                return Err(WebexApiError::Status {
                    status: 403,
                    message: "forbidden".into(),
                });
            }
            Ok(s.interests.clone())
        }
        async fn put_interest_registration(
            &self,
            r: &InterestRegistrationUpdate,
        ) -> Result<(), WebexApiError> {
            self.log(format!("interests {:?}", r.duration));
            let mut s = self.state.lock().unwrap();
            s.interests = Some(InterestRegistration {
                interests: r.interests.clone(),
                expires_at: now() + Duration::days(i64::from(r.duration.unwrap_or(60))),
            });
            Ok(())
        }
    }

    fn health() -> Desired {
        Desired::new(TARGET)
    }

    #[tokio::test]
    async fn bots_and_non_admins_cannot_cover_an_org() {
        let bot = Fake::new("bot", false);
        let e = check(&bot, &health(), Mode::Health, now())
            .await
            .unwrap_err();
        assert!(matches!(e, CoverageError::BotToken), "{e}");
        assert!(e.to_string().contains(ADMIN_SCOPE));

        let user = Fake::new("person", false);
        let e = check(&user, &health(), Mode::Health, now())
            .await
            .unwrap_err();
        assert!(
            matches!(e, CoverageError::NotAdmin { status: 403 })
                && e.to_string().contains(ADMIN_SCOPE),
            "{e}"
        );
        assert!(user.calls().is_empty(), "nothing changed");

        // Opted in: the user's own calls, no interests.
        let mut want = health();
        want.allow_user_scope = true;
        want.secret = Some("s".into());
        let r = check(&user, &want, Mode::Health, now()).await.unwrap();
        assert_eq!(r.scope, Scope::User);
        assert!(matches!(r.interests.action, InterestAction::Skipped(_)));
        assert!(r.render(TARGET).contains("only the calls of person me-1"));
    }

    #[tokio::test]
    async fn health_reactivates_without_touching_name_or_secret() {
        let f = Fake::admin();
        f.hook("w1", EVENT_ALL, "inactive");
        f.hook("other", "created", "inactive"); // not the relay's: left alone
        let r = check(&f, &health(), Mode::Health, now()).await.unwrap();
        assert_eq!(r.webhook.id, "w1");
        assert!(r.webhook.reactivated);
        assert_eq!(r.webhook.changes, ["reactivated (was inactive)"]);
        assert_eq!(
            r.findings(),
            [Finding::Reactivated, Finding::InterestRenewed]
        );
        assert_eq!(
            f.calls(),
            [
                "list",
                "put w1 status=Some(\"active\") secret=false",
                "interests None"
            ]
        );
        assert_eq!(f.state.lock().unwrap().hooks[0].name, "old name");

        // Second run: all is well, nothing is written.
        let r = check(&f, &health(), Mode::Health, now()).await.unwrap();
        assert_eq!(r.webhook.action, WebhookAction::Unchanged);
        assert_eq!(r.interests.action, InterestAction::Current);
        assert!(r.findings().is_empty());
        assert_eq!(f.calls(), ["list"]);
    }

    #[tokio::test]
    async fn health_recreates_only_with_a_secret() {
        let f = Fake::admin();
        let r = check(&f, &health(), Mode::Health, now()).await.unwrap();
        assert_eq!(r.webhook.action, WebhookAction::Missing);
        assert!(r.findings().contains(&Finding::Missing));

        let mut want = health();
        want.secret = Some("s3cret".into());
        let r = check(&f, &want, Mode::Health, now()).await.unwrap();
        assert_eq!(r.webhook.action, WebhookAction::Created);
        assert_eq!(r.findings(), [Finding::Recreated]);
        let s = f.state.lock().unwrap();
        assert_eq!(s.secrets, [("new1".to_owned(), Some("s3cret".to_owned()))]);
        assert_eq!(s.hooks[0].event, EVENT_ALL);
    }

    #[tokio::test]
    async fn interests_are_renewed_before_they_expire_and_merged() {
        let f = Fake::admin();
        f.hook("w1", EVENT_ALL, "active");
        f.state.lock().unwrap().interests = Some(InterestRegistration {
            interests: vec![
                Interest {
                    resource: Some("Hook Status".into()),
                    actor: None,
                },
                Interest::actor("Workspaces"),
                Interest::actor("Virtual Lines"),
            ],
            expires_at: now() + Duration::days(8),
        });
        let mut want = health();
        want.interest_days = Some(30);
        let r = check(&f, &want, Mode::Health, now()).await.unwrap();
        assert_eq!(r.interests.action, InterestAction::Current, "8 days > 7");
        f.calls();

        let later = now() + Duration::days(2);
        let r = check(&f, &want, Mode::Health, later).await.unwrap();
        assert_eq!(r.interests.action, InterestAction::Renewed);
        assert_eq!(f.calls(), ["list", "interests Some(30)"]);
        assert_eq!(r.interests.expires_at, Some(now() + Duration::days(30)));
        assert_eq!(
            r.interests.interests.len(),
            3,
            "the resource interest is kept"
        );

        // A dry run reports, writes nothing.
        want.dry_run = true;
        let r = check(&f, &want, Mode::Health, now() + Duration::days(29))
            .await
            .unwrap();
        assert_eq!(r.interests.action, InterestAction::Renewed);
        assert!(r.findings().is_empty());
        assert_eq!(f.calls(), ["list"]);

        // Opted out: left alone.
        want.dry_run = false;
        want.actor_interests = false;
        let r = check(&f, &want, Mode::Health, now() + Duration::days(59))
            .await
            .unwrap();
        assert!(matches!(r.interests.action, InterestAction::Skipped(_)));
        assert_eq!(f.calls(), ["list"]);
    }

    #[tokio::test]
    async fn ensure_applies_name_and_secret_and_prunes() {
        let f = Fake::admin();
        f.hook("a", EVENT_ALL, "inactive");
        f.hook("b", EVENT_ALL, "active");
        let mut want = health();
        want.secret = Some("s".into());
        let r = check(
            &f,
            &want,
            Mode::Ensure {
                prune_duplicates: true,
            },
            now(),
        )
        .await
        .unwrap();
        assert_eq!(r.webhook.id, "b", "the active one is kept");
        assert!(!r.webhook.reactivated);
        assert_eq!(
            r.webhook.changes,
            [
                format!("name \"old name\" -> {DEFAULT_NAME:?}"),
                "secret re-applied".into()
            ]
        );
        assert_eq!(r.webhook.duplicates, ["a"]);
        assert_eq!(
            f.calls(),
            [
                "list",
                "put b status=None secret=true",
                "delete a",
                "interests None"
            ]
        );
        let out = r.render(TARGET);
        assert!(out.contains("deleted duplicate webhook a"), "{out}");
        assert!(
            out.contains("coverage: every calling user of org org-1"),
            "{out}"
        );
        assert!(!out.contains("\"s\""));
    }

    #[test]
    fn refresh_warning_and_names() {
        let warn = Duration::days(14);
        assert_eq!(refresh_token_expiring(None, now(), warn), None);
        assert_eq!(
            refresh_token_expiring(Some(now() + Duration::days(20)), now(), warn),
            None
        );
        assert_eq!(
            refresh_token_expiring(Some(now() + Duration::days(3)), now(), warn),
            Some(Duration::days(3))
        );
        let metrics: std::collections::HashSet<_> =
            Finding::ALL.iter().map(|f| f.metric()).collect();
        assert_eq!(metrics.len(), Finding::ALL.len());
        assert!(Finding::ALL.iter().all(|f| f.event().starts_with("webex:")));
    }
}
