//! The Webex-side health check (`presence_poller::health`) against the shared fake Webex: it
//! reactivates a deactivated webhook, recreates a missing one only with a secret, registers the
//! actor interests, runs once per interval (lease), refuses a bot token, and warns before the
//! refresh token expires — each finding a metric of its EMF line.

use std::sync::Arc;

use async_trait::async_trait;
use presence_poller::health::{HealthArgs, HealthCheck, HealthOutcome, SigningSecret};
use presence_poller::token::StaticToken;
use relay_shared::adapters::memory::memory_stores;
use relay_shared::clock::SystemClock;
use relay_shared::config::from_env_pairs;
use relay_shared::webex_api::{
    RegistrationCreate, RegistrationUpdate, WebexApiError, WebexRegistration,
};
use relay_shared::webex_registrations::Finding;
use relay_shared::webex_token::{TokenError, TokenRecord, TokenSource};
use secrecy::SecretString;
use serde_json::{json, Value};
use testkit::fake_webex::{FakeWebex, Token, ORG};

use crate::common::client;

const TARGET: &str = "https://relay.example/webex/telephony";

fn check(fake: &FakeWebex, token: &str) -> HealthCheck {
    let args: HealthArgs = from_env_pairs(&[("WEBEX_HEALTH_TARGET_URL", TARGET)]).unwrap();
    HealthCheck::new(
        client(fake, Arc::new(StaticToken(token.into()))),
        memory_stores().leases,
        Arc::new(SystemClock),
        args.config().unwrap(),
    )
}

fn metric(out: &HealthOutcome, f: Finding) -> f64 {
    let v: Value = serde_json::from_str(&out.emf_line(0)).unwrap();
    v[f.metric()].as_f64().unwrap()
}

#[tokio::test]
async fn reactivates_a_deactivated_webhook_and_registers_the_interests_once_per_interval() {
    let fake = FakeWebex::start(vec![]).await;
    let hook = fake.add_webhook(json!({"name": "webex-relay telephony", "targetUrl": TARGET,
        "resource": "telephony_calls", "event": "all", "secret": "s"}));
    let id = hook["id"].as_str().unwrap().to_owned();
    fake.deactivate(&id);
    let health = check(&fake, "t");

    let out = health.run_if_due("invocation-1").await.expect("due");
    assert_eq!(
        out.findings,
        [Finding::Reactivated, Finding::InterestRenewed],
        "{:?}",
        out.error
    );
    assert_eq!(metric(&out, Finding::Reactivated), 1.0);
    assert_eq!(metric(&out, Finding::Recreated), 0.0);
    assert_eq!(fake.webhooks()[0]["status"], "active");
    assert_eq!(fake.webhooks().len(), 1);
    let interests = fake.interests();
    assert_eq!(
        interests[0].1,
        json!([{"actor": "Workspaces"}, {"actor": "Virtual Lines"}])
    );

    // The next invocation within the interval does not check again.
    assert!(health.run_if_due("invocation-2").await.is_none());
    // A check now finds all well and changes nothing.
    let out = health.run(chrono::Utc::now()).await;
    assert!(out.findings.is_empty(), "{:?}", out.findings);
    assert_eq!(metric(&out, Finding::Reactivated), 0.0);
}

#[tokio::test]
async fn recreates_a_missing_webhook_only_with_the_secret() {
    let fake = FakeWebex::start(vec![]).await;
    let out = check(&fake, "t").run(chrono::Utc::now()).await;
    assert!(out.findings.contains(&Finding::Missing));
    assert!(fake.webhooks().is_empty());

    let health = check(&fake, "t").with_secret(SigningSecret::Fixed("s3cret".into()), ORG);
    let out = health.run(chrono::Utc::now()).await;
    assert_eq!(out.findings, [Finding::Recreated]);
    let hooks = fake.webhooks();
    assert_eq!(
        (
            &hooks[0]["resource"],
            &hooks[0]["event"],
            &hooks[0]["targetUrl"]
        ),
        (&json!("telephony_calls"), &json!("all"), &json!(TARGET))
    );
}

#[tokio::test]
async fn a_bot_token_fails_the_check() {
    let fake = FakeWebex::start(vec![]).await;
    let mut bot = Token::admin(ORG);
    bot.kind = "bot".into();
    bot.admin = false;
    fake.set_token("bot-token", bot);
    let out = check(&fake, "bot-token").run(chrono::Utc::now()).await;
    assert_eq!(out.findings, [Finding::CheckFailed]);
    assert!(out
        .error
        .as_deref()
        .unwrap()
        .contains("spark-admin:calls_read"));
    assert_eq!(metric(&out, Finding::CheckFailed), 1.0);
}

/// A token source whose refresh token expires in `days`.
struct Expiring(i64);

#[async_trait]
impl TokenSource for Expiring {
    async fn token(&self) -> Result<SecretString, TokenError> {
        Ok("t".into())
    }
    async fn record(&self) -> Option<TokenRecord> {
        Some(TokenRecord {
            refresh_token_expires_at: Some(chrono::Utc::now() + chrono::Duration::days(self.0)),
            ..TokenRecord::default()
        })
    }
}

#[tokio::test]
async fn warns_before_the_refresh_token_expires() {
    let fake = FakeWebex::start(vec![]).await;
    fake.add_webhook(
        json!({"name": "n", "targetUrl": TARGET, "resource": "telephony_calls",
        "event": "all", "secret": "s"}),
    );
    let soon = check(&fake, "t").with_tokens(Arc::new(Expiring(3)));
    let out = soon.run(chrono::Utc::now()).await;
    assert!(out.findings.contains(&Finding::RefreshTokenExpiringSoon));
    assert_eq!(metric(&out, Finding::RefreshTokenExpiringSoon), 1.0);
    let later = check(&fake, "t").with_tokens(Arc::new(Expiring(60)));
    let out = later.run(chrono::Utc::now()).await;
    assert!(!out.findings.contains(&Finding::RefreshTokenExpiringSoon));
}

/// A Webex that never answers.
struct Silent;

#[async_trait]
impl relay_shared::ports::WebexClient for Silent {
    async fn list_people(
        &self,
        _q: &[(String, String)],
        _n: Option<&str>,
    ) -> Result<relay_shared::ports::PeoplePage, WebexApiError> {
        std::future::pending().await
    }
    async fn list_registrations(&self) -> Result<Vec<WebexRegistration>, WebexApiError> {
        std::future::pending().await
    }
    async fn create_registration(
        &self,
        _r: &RegistrationCreate,
    ) -> Result<WebexRegistration, WebexApiError> {
        std::future::pending().await
    }
    async fn update_registration(
        &self,
        _i: &str,
        _r: &RegistrationUpdate,
    ) -> Result<WebexRegistration, WebexApiError> {
        std::future::pending().await
    }
    async fn get_registration(&self, _i: &str) -> Result<WebexRegistration, WebexApiError> {
        std::future::pending().await
    }
    async fn delete_registration(&self, _i: &str) -> Result<(), WebexApiError> {
        std::future::pending().await
    }
    async fn me(&self) -> Result<relay_shared::webex::Person, WebexApiError> {
        std::future::pending().await
    }
}

#[tokio::test(start_paused = true)]
async fn a_check_still_running_at_the_invocation_deadline_is_a_failed_check() {
    let args: HealthArgs = from_env_pairs(&[("WEBEX_HEALTH_TARGET_URL", TARGET)]).unwrap();
    let health = HealthCheck::new(
        Arc::new(Silent),
        memory_stores().leases,
        Arc::new(SystemClock),
        args.config().unwrap(),
    );
    let stop_at = tokio::time::Instant::now() + std::time::Duration::from_secs(40);
    let out = presence_poller::handler::health_until(Some(&health), "inv", stop_at)
        .await
        .expect("a check ran");
    assert_eq!(
        tokio::time::Instant::now(),
        stop_at,
        "ended at the deadline"
    );
    assert_eq!(out.findings, [Finding::CheckFailed]);
    assert_eq!(metric(&out, Finding::CheckFailed), 1.0);
    assert!(out.error.unwrap().contains("deadline"));
    assert!(presence_poller::handler::health_until(None, "inv", stop_at)
        .await
        .is_none());
}
