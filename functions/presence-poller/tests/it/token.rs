//! The token lifecycle through the poller against the fake Webex: an integration's token refreshed
//! at `POST /v1/access_token` ahead of expiry and after a 401, every refresh spending the previous
//! refresh token once, and no cycle lost (issue 12, token lifecycle).

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use relay_shared::adapters::memory::{memory_stores, MemoryLeases, MemoryQueue};
use relay_shared::clock::ManualClock;
use relay_shared::webex_token::{MemoryVault, TokenManager, TokenRecord, TokenSource};
use secrecy::{ExposeSecret, SecretString};

use crate::common::*;

const LIFETIME: Duration = Duration::from_secs(30);

fn integration_record() -> TokenRecord {
    TokenRecord {
        refresh_token: Some(SecretString::from("rt-initial")),
        client_id: Some("cid".into()),
        client_secret: Some(SecretString::from("csecret")),
        ..TokenRecord::default()
    }
}

/// As `main.rs` builds it, refreshing at the fake's `/access_token`, on `clock`.
fn manager(
    fake: &FakeWebex,
    vault: Arc<MemoryVault>,
    clock: Arc<ManualClock>,
) -> Arc<TokenManager> {
    let manager = TokenManager::at_webex(
        &fake.base_url,
        vault,
        Arc::new(MemoryLeases::default()),
        clock,
        "presence-poller",
    )
    .unwrap();
    Arc::new(manager.with_metrics(Arc::new(|_| {})))
}

#[tokio::test]
async fn presence_keeps_polling_across_three_token_expiries() {
    let fake = FakeWebex::start(people(20, "active")).await;
    fake.oauth_client("cid", "csecret", "rt-initial", LIFETIME);
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let vault = Arc::new(MemoryVault::new("token-secret", integration_record()));
    let manager = manager(&fake, vault.clone(), clock.clone());
    let rig = Rig::with_fake(
        fake,
        fast_config(),
        manager.clone(),
        memory_stores(),
        Arc::new(MemoryQueue::new(Duration::from_secs(30))),
    )
    .await;
    let mut s = rig.poller.session();
    let cycle = |r: presence_poller::CycleReport| {
        assert!(r.error.is_none(), "cycle failed: {:?}", r.error);
        assert_eq!(r.people, Some(20));
    };
    cycle(s.cycle(far()).await);

    // 1. Both clocks pass the expiry: refreshed before the call (no 401).
    let step = chrono::Duration::from_std(LIFETIME + Duration::from_secs(1)).unwrap();
    clock.advance(step);
    rig.fake.advance(LIFETIME + Duration::from_secs(1));
    cycle(s.cycle(far()).await);
    // 2. Only Webex's clock passes it (our idea of the expiry is late): the 401 refreshes and the
    //    call is retried within the same cycle.
    rig.fake.advance(LIFETIME + Duration::from_secs(1));
    cycle(s.cycle(far()).await);
    assert_eq!(rig.webex.refreshes(), 1, "one 401");
    // 3. Ahead of expiry: past half the lifetime, before the end.
    clock.advance(chrono::Duration::seconds(20));
    rig.fake.advance(Duration::from_secs(20));
    cycle(s.cycle(far()).await);
    cycle(s.cycle(far()).await);

    let refreshes = rig.fake.refreshes();
    assert_eq!(refreshes.len(), 4, "the first token, then three expiries");
    let mut previous = "rt-initial".to_owned();
    for r in &refreshes {
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(
            r.used, previous,
            "each refresh spends the previous refresh token"
        );
        previous = r.issued_refresh.clone().unwrap();
    }
    let stored = vault.record();
    assert_eq!(
        stored.refresh_token.as_ref().unwrap().expose_secret(),
        previous,
        "the rotated refresh token is stored"
    );
    assert_eq!(
        manager.token().await.unwrap().expose_secret(),
        refreshes[3].issued_access.as_deref().unwrap()
    );
    let failed = rig
        .fake
        .seen()
        .into_iter()
        .filter(|x| x.status != 200)
        .count();
    assert_eq!(failed, 1, "only the one 401 of step 2");
}

#[tokio::test]
async fn a_refused_refresh_fails_the_cycle_without_hammering_webex() {
    let fake = FakeWebex::start(people(5, "active")).await;
    fake.oauth_client("cid", "csecret", "rt-initial", LIFETIME);
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let vault = Arc::new(MemoryVault::new("token-secret", integration_record()));
    let manager = manager(&fake, vault, clock.clone());
    let rig = Rig::with_fake(
        fake,
        fast_config(),
        manager.clone(),
        memory_stores(),
        Arc::new(MemoryQueue::new(Duration::from_secs(30))),
    )
    .await;
    assert_eq!(rig.fake.refreshes().len(), 1, "the first access token");
    rig.fake.fail_refreshes(100);
    clock.advance(chrono::Duration::seconds(31));
    rig.fake.advance(Duration::from_secs(31));
    let mut s = rig.poller.session();
    for _ in 0..5 {
        let r = s.cycle(far()).await;
        let e = r.error.expect("no token, no listing").to_string();
        assert!(e.contains("Webex token"), "{e}");
    }
    assert_eq!(
        rig.fake.refreshes().len(),
        2,
        "backed off after the failure"
    );
    assert_eq!(manager.failures().await, 1);
    assert_eq!(rig.fake.requests(), 0, "the expired token is never sent");
    clock.advance(chrono::Duration::seconds(5));
    assert!(s.cycle(far()).await.error.is_some());
    assert_eq!(
        rig.fake.refreshes().len(),
        3,
        "one more try after the backoff"
    );
}

#[tokio::test]
async fn a_bot_token_is_refused_at_start() {
    let fake = FakeWebex::start(people(1, "active")).await;
    let mut bot = testkit::fake_webex::Token::admin(ORG);
    bot.kind = "bot".into();
    bot.admin = false;
    fake.set_token("bot-token", bot);
    // Even with the org given (where an unresolved token org only warns).
    let mut config = fast_config();
    let e =
        presence_poller::org::resolve(&mut config, client_at(&fake.base_url, "bot-token").as_ref())
            .await
            .unwrap_err();
    assert!(e.contains("belongs to a bot"), "{e}");
    assert!(e.contains("integration or a Service App"), "{e}");
    let e = presence_poller::org::own_org_id(client_at(&fake.base_url, "bot-token").as_ref())
        .await
        .unwrap_err();
    assert!(e.contains("bot"), "{e}");
    // A person's token resolves as before.
    presence_poller::org::resolve(&mut config, client_at(&fake.base_url, "someone").as_ref())
        .await
        .unwrap();
    assert_eq!(config.token_org_id.as_deref(), Some(ORG));
}

#[tokio::test]
async fn a_401_at_cold_start_refreshes_instead_of_failing() {
    let fake = FakeWebex::start(people(1, "active")).await;
    fake.oauth_client("cid", "csecret", "rt-initial", LIFETIME);
    let mut record = integration_record();
    // A token Webex no longer takes, with no expiry known: only the 401 tells.
    record.access_token = Some(SecretString::from("revoked"));
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let tokens = manager(
        &fake,
        Arc::new(MemoryVault::new("token-secret", record)),
        clock,
    );
    let mut config = fast_config();
    config.org_id.clear();
    presence_poller::org::resolve(&mut config, client(&fake, tokens).as_ref())
        .await
        .unwrap();
    assert_eq!(config.org_id, ORG);
    assert_eq!(fake.refreshes().len(), 1, "the 401 refreshed the token");
}
