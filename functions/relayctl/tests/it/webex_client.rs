//! The Webex HTTP client (`relay_shared::adapters::webex_http`) and `relayctl ensure` against a
//! local fake Webex: wiremock on 127.0.0.1 for the client's scripted answers, the shared
//! `testkit::fake_webex` for `ensure`.

use std::time::Duration;

use relay_shared::adapters::webex_http::WebexHttpClient;
use relay_shared::ports::WebexClient;
use relay_shared::webex_api::{RegistrationCreate, RegistrationUpdate, WebexApiError};
use relayctl::{ensure, EnsureSpec, InterestAction, Scope, WebhookAction};
use secrecy::SecretString;
use serde_json::{json, Value};
use testkit::fake_webex::{FakeWebex, Token};
use wiremock::matchers::{
    body_partial_json, header, method, path, query_param, query_param_is_missing,
};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TOKEN: &str = "test-token-123";

fn client(server: &MockServer) -> WebexHttpClient {
    WebexHttpClient::new(&format!("{}/v1", server.uri()), TOKEN)
        .unwrap()
        .with_retries(3, Duration::from_secs(2))
}

fn hook(id: &str, target: &str, status: &str) -> Value {
    json!({"id": id, "name": format!("hook {id}"), "targetUrl": target, "resource": "telephony_calls", "event": "all",
           "status": status, "created": "2025-06-30T20:13:25.614Z", "orgId": "org-1"})
}

#[tokio::test]
async fn list_webhooks_follows_link_pagination_with_the_token() {
    let server = MockServer::start().await;
    let next = format!(
        "<{}/v1/webhooks?max=100&cursor=p2>; rel=\"next\"",
        server.uri()
    );
    Mock::given(method("GET"))
        .and(path("/v1/webhooks"))
        .and(query_param_is_missing("cursor"))
        .and(query_param("max", "100"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(ResponseTemplate::new(200).insert_header("link", next.as_str()).set_body_json(json!({"items": [hook("a", "https://x/1", "active"), hook("b", "https://x/2", "inactive")]})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/webhooks"))
        .and(query_param("cursor", "p2"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"items": [hook("c", "https://x/3", "active")]})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let hooks = client(&server).list_registrations().await.unwrap();
    assert_eq!(
        hooks.iter().map(|h| h.id.as_str()).collect::<Vec<_>>(),
        ["a", "b", "c"]
    );
    assert_eq!(hooks[1].status.as_deref(), Some("inactive"));
}

#[tokio::test]
async fn pagination_never_leaves_the_api_origin() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/webhooks"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header(
                    "link",
                    "<https://elsewhere.example/v1/webhooks?cursor=x>; rel=\"next\"",
                )
                .set_body_json(json!({"items": []})),
        )
        .mount(&server)
        .await;
    let err = client(&server).list_registrations().await.unwrap_err();
    assert!(
        matches!(&err, WebexApiError::Decode(m) if m.contains("another origin")),
        "{err:?}"
    );
}

#[tokio::test]
async fn rate_limit_is_retried_after_retry_after() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/webhooks/w1"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "1"))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/webhooks/w1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(hook("w1", "https://x/1", "active")))
        .expect(1)
        .mount(&server)
        .await;
    let started = std::time::Instant::now();
    let w = client(&server).get_registration("w1").await.unwrap();
    assert_eq!(w.id, "w1");
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "waited for Retry-After"
    );
}

#[tokio::test]
async fn rate_limit_retries_are_bounded() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/webhooks"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "0"))
        .expect(3)
        .mount(&server)
        .await;
    let c = WebexHttpClient::new(&format!("{}/v1", server.uri()), TOKEN)
        .unwrap()
        .with_retries(2, Duration::from_secs(1));
    let err = c.list_registrations().await.unwrap_err();
    assert_eq!(
        err,
        WebexApiError::RateLimited {
            status: 429,
            retry_after_seconds: Some(0)
        }
    );

    // A wait longer than the client accepts is returned to the caller at once.
    let server = MockServer::start().await;
    Mock::given(method("DELETE"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "120"))
        .expect(1)
        .mount(&server)
        .await;
    let err = client(&server).delete_registration("w1").await.unwrap_err();
    assert_eq!(
        err,
        WebexApiError::RateLimited {
            status: 429,
            retry_after_seconds: Some(120)
        }
    );
}

#[tokio::test]
async fn errors_are_typed() {
    let server = MockServer::start().await;
    Mock::given(path("/v1/webhooks/gone"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"message": "The requested resource could not be found.", "trackingId": "ROUTER_1"})))
        .mount(&server)
        .await;
    Mock::given(path("/v1/webhooks/denied"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&server)
        .await;
    let c = client(&server);
    match c.get_registration("gone").await.unwrap_err() {
        WebexApiError::Status {
            status: 404,
            message,
        } => assert!(message.contains("ROUTER_1"), "{message}"),
        e => panic!("{e:?}"),
    }
    assert_eq!(
        c.get_registration("denied").await.unwrap_err(),
        WebexApiError::Unauthorized
    );
    // Nothing listens on this port: a transport error, not a panic.
    let dead = WebexHttpClient::new("http://127.0.0.1:9/v1", TOKEN).unwrap();
    assert!(matches!(
        dead.list_registrations().await.unwrap_err(),
        WebexApiError::Transport(_)
    ));
}

#[tokio::test]
async fn create_update_delete_send_the_documented_bodies() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/webhooks"))
        .and(body_partial_json(json!({"name": "n", "targetUrl": "https://t/x", "resource": "telephony_calls", "event": "all", "secret": "s3cr3t"})))
        .respond_with(ResponseTemplate::new(200).set_body_json(hook("new", "https://t/x", "active")))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path("/v1/webhooks/new"))
        .and(body_partial_json(
            json!({"name": "n2", "targetUrl": "https://t/x", "status": "inactive"}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(hook(
            "new",
            "https://t/x",
            "inactive",
        )))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/v1/webhooks/new"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&server);
    let created = c
        .create_registration(&RegistrationCreate {
            name: "n".into(),
            target_url: "https://t/x".into(),
            resource: "telephony_calls".into(),
            event: "all".into(),
            filter: None,
            secret: Some("s3cr3t".into()),
        })
        .await
        .unwrap();
    assert_eq!(created.id, "new");
    let updated = c
        .update_registration(
            "new",
            &RegistrationUpdate {
                name: "n2".into(),
                target_url: "https://t/x".into(),
                secret: None,
                status: Some("inactive".into()),
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.status.as_deref(), Some("inactive"));
    c.delete_registration("new").await.unwrap();
}

#[tokio::test]
async fn list_people_pages_and_maps_rate_limits() {
    let server = MockServer::start().await;
    let next = format!(
        "<{}/v1/people?orgId=o1&max=2&cursor=c2>; rel=\"next\"",
        server.uri()
    );
    Mock::given(method("GET"))
        .and(path("/v1/people"))
        .and(query_param("orgId", "o1"))
        .and(query_param("callingData", "true"))
        .and(query_param_is_missing("cursor"))
        .respond_with(ResponseTemplate::new(200).insert_header("link", next.as_str()).set_body_json(json!({"items": [
            {"id": "p1", "emails": ["a@example.com"], "displayName": "A", "status": "active"},
            {"id": "p2", "status": "DoNotDisturb", "somethingNew": 1}
        ]})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/people"))
        .and(query_param("cursor", "c2"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"items": [{"id": "p3", "status": "inactive"}]})),
        )
        .mount(&server)
        .await;
    let c = client(&server);
    let q = vec![
        ("orgId".to_owned(), "o1".to_owned()),
        ("callingData".to_owned(), "true".to_owned()),
    ];
    let page1 = c.list_people(&q, None).await.unwrap();
    assert_eq!(page1.items.len(), 2);
    assert_eq!(page1.items[1].status.as_deref(), Some("DoNotDisturb"));
    assert_eq!(page1.items[1].extra["somethingNew"], 1);
    let next = page1.next.expect("next link");
    let page2 = c.list_people(&q, Some(&next)).await.unwrap();
    assert_eq!(page2.items[0].id, "p3");
    assert_eq!(page2.next, None);

    let limited = MockServer::start().await;
    Mock::given(path("/v1/people"))
        .respond_with(ResponseTemplate::new(423).insert_header("retry-after", "3"))
        .mount(&limited)
        .await;
    let no_retry = WebexHttpClient::new(&format!("{}/v1", limited.uri()), TOKEN)
        .unwrap()
        .with_retries(0, Duration::from_secs(60));
    assert_eq!(
        no_retry.list_people(&q, None).await.unwrap_err(),
        WebexApiError::RateLimited {
            status: 423,
            retry_after_seconds: Some(3)
        }
    );
    Mock::given(path("/v1/people"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&server)
        .await;
}

// ---------------------------------------------------------------------------------------------
// `ensure` against the shared fake Webex (`testkit::fake_webex`): its webhooks (2 a page here, so
// listings page), who the token is (`GET /v1/people/me`: person me-1, admin of org-1) and the
// token's webhook interest registration.

/// The fake's webhooks as the `ensure` tests read them.
trait Registrations {
    fn insert(&self, hook: Value, secret: Option<&str>);
    fn secret_of(&self, id: &str) -> Option<String>;
    fn ids(&self) -> Vec<String>;
    /// (creates, updates, deletes) of webhooks answered.
    fn counts(&self) -> (usize, usize, usize);
    fn interest_posts(&self) -> usize;
    /// The token's interest registration, `{"interests", "expiresAt"}`.
    fn interest_registration(&self) -> Option<Value>;
}

impl Registrations for FakeWebex {
    fn insert(&self, mut hook: Value, secret: Option<&str>) {
        if let Some(s) = secret {
            hook["secret"] = s.into();
        }
        self.add_webhook(hook);
    }
    fn secret_of(&self, id: &str) -> Option<String> {
        let hook = self.webhooks().into_iter().find(|h| h["id"] == id)?;
        hook["secret"].as_str().map(str::to_owned)
    }
    fn ids(&self) -> Vec<String> {
        self.webhooks()
            .iter()
            .map(|h| h["id"].as_str().unwrap().to_owned())
            .collect()
    }
    fn counts(&self) -> (usize, usize, usize) {
        let answered = |m: &str| {
            self.recorded()
                .iter()
                .filter(|r| r.method == m && r.path.starts_with("/v1/webhooks") && r.status < 300)
                .count()
        };
        (answered("POST"), answered("PUT"), answered("DELETE"))
    }
    fn interest_posts(&self) -> usize {
        self.recorded()
            .iter()
            .filter(|r| {
                r.method == "POST" && r.path == "/v1/telephony/webhookInterestRegistrations"
            })
            .count()
    }
    fn interest_registration(&self) -> Option<Value> {
        let (_, interests, expires_at) = self.interests().into_iter().next()?;
        Some(json!({"interests": interests, "expiresAt": expires_at.to_rfc3339()}))
    }
}

fn me(admin: bool, kind: &str) -> Token {
    Token {
        admin,
        kind: kind.into(),
        person: "me-1".into(),
        ..Token::admin("org-1")
    }
}

async fn fake_webex() -> FakeWebex {
    let fake = FakeWebex::start(vec![]).await;
    fake.set_org("org-1");
    fake.set_person("me-1");
    fake.accept_tokens(&[TOKEN]);
    fake.webhooks_per_page(2);
    fake
}

fn fake_client(fake: &FakeWebex) -> WebexHttpClient {
    WebexHttpClient::new(&fake.base_url, TOKEN)
        .unwrap()
        .with_retries(3, Duration::from_secs(2))
}

/// The "now" of every `ensure` here: the fake's interest expiries count from its clock, real time.
fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

const TARGET: &str = "https://abc.execute-api.us-east-1.amazonaws.com/webex/telephony";

fn spec(secret: &str) -> EnsureSpec {
    EnsureSpec::new(TARGET, SecretString::from(secret))
}

#[tokio::test]
async fn ensure_creates_then_is_idempotent_and_reactivates() {
    let fake = fake_webex().await;
    // Unrelated webhooks, enough to need pagination.
    fake.insert(hook("other1", "https://elsewhere/1", "active"), None);
    fake.insert(json!({"id": "msgs", "name": "m", "targetUrl": TARGET, "resource": "messages", "event": "created", "status": "active"}), None);
    fake.insert(json!({"id": "tel-created-only", "name": "t", "targetUrl": TARGET, "resource": "telephony_calls", "event": "created", "status": "active"}), None);
    let c = fake_client(&fake);

    let r = ensure(&c, &spec("secret-one"), now()).await.unwrap();
    assert_eq!(r.webhook.action, WebhookAction::Created);
    assert_eq!(r.scope, Scope::Org);
    assert_eq!(r.interests.action, InterestAction::Registered);
    assert_eq!(fake.counts(), (1, 0, 0));
    assert_eq!(fake.secret_of(&r.webhook.id).as_deref(), Some("secret-one"));
    assert_eq!(
        fake.interest_registration().unwrap()["interests"],
        json!([{"actor": "Workspaces"}, {"actor": "Virtual Lines"}])
    );
    let id = r.webhook.id.clone();

    // Again: no new webhook; the secret is re-applied (Webex never returns it to compare); the
    // interests are current.
    let r = ensure(&c, &spec("secret-one"), now()).await.unwrap();
    assert_eq!(
        (r.webhook.action.clone(), r.webhook.id.as_str()),
        (WebhookAction::Updated, id.as_str())
    );
    assert_eq!(r.webhook.changes, ["secret re-applied"]);
    assert_eq!(r.interests.action, InterestAction::Current);
    assert_eq!(fake.counts(), (1, 1, 0));
    assert_eq!(fake.interest_posts(), 1);

    // A rotated secret and a new name are applied to the same webhook.
    let mut s = spec("secret-two");
    s.name = "renamed".into();
    let r = ensure(&c, &s, now()).await.unwrap();
    assert_eq!(r.webhook.id, id);
    assert!(
        r.webhook.changes.iter().any(|c| c.contains("renamed")),
        "{:?}",
        r.webhook.changes
    );
    assert_eq!(fake.secret_of(&id).as_deref(), Some("secret-two"));

    // Webex disabled it: ensure reactivates.
    fake.deactivate(&id);
    let r = ensure(&c, &spec("secret-two"), now()).await.unwrap();
    assert!(
        r.webhook
            .changes
            .iter()
            .any(|c| c == "reactivated (was inactive)"),
        "{:?}",
        r.webhook.changes
    );
    assert_eq!(
        c.get_registration(&id).await.unwrap().status.as_deref(),
        Some("active")
    );
    assert_eq!(fake.counts().0, 1, "never a second webhook");
    let out = r.render(TARGET);
    assert!(out.contains(&id) && !out.contains("secret-two"), "{out}");

    // 55 days on, the interests expire within the 7 days: renewed (re-POSTed).
    let r = ensure(&c, &spec("secret-two"), now() + chrono::Duration::days(55))
        .await
        .unwrap();
    assert_eq!(r.interests.action, InterestAction::Renewed);
    assert_eq!(fake.interest_posts(), 2);
    assert!(r
        .render(TARGET)
        .contains("renewed webhook interests [Workspaces, Virtual Lines]"));
}

#[tokio::test]
async fn ensure_reports_and_prunes_duplicates() {
    let fake = fake_webex().await;
    fake.insert(hook("dup-inactive", TARGET, "inactive"), Some("old"));
    fake.insert(hook("dup-active", TARGET, "active"), Some("old"));
    let c = fake_client(&fake);
    let r = ensure(&c, &spec("s"), now()).await.unwrap();
    assert_eq!(r.webhook.id, "dup-active", "an active match is kept");
    assert_eq!(r.webhook.duplicates, ["dup-inactive"]);
    assert!(r.render(TARGET).contains("--prune-duplicates"));
    assert_eq!(fake.ids().len(), 2);

    let mut s = spec("s");
    s.prune_duplicates = true;
    let r = ensure(&c, &s, now()).await.unwrap();
    assert!(r.webhook.pruned);
    assert_eq!(fake.ids(), ["dup-active"]);

    // Dry run changes nothing.
    let mut s = spec("new-secret");
    s.dry_run = true;
    let before = fake.counts();
    let r = ensure(&c, &s, now()).await.unwrap();
    assert!(r.render(TARGET).starts_with("would be updated"));
    assert_eq!(fake.counts(), before);
    assert_eq!(fake.secret_of("dup-active").as_deref(), Some("s"));
}

/// The binary end to end: prints what it did, never the secret or the token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relayctl_binary_ensure_and_list() {
    let fake = fake_webex().await;
    let base = fake.base_url.clone();
    let run = move |args: Vec<&'static str>, base: String| {
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_relayctl"))
                .args(args)
                .env("WEBEX_TOKEN", TOKEN)
                .env("WEBEX_API_BASE_URL", base)
                .env("RELAYCTL_TEST_SECRET", "very-secret-value")
                .output()
                .unwrap()
        })
    };
    // `ensure` of the one target, its secret read as `secret_from` says.
    let ensure_args = |secret_from: &'static str| {
        let target = ["--target-url", TARGET, "--secret-from", secret_from];
        [&["webex-webhooks", "ensure"][..], &target[..]].concat()
    };
    let out = run(ensure_args("env:RELAYCTL_TEST_SECRET"), base.clone())
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let id = fake.ids()[0].clone();
    assert!(
        stdout.starts_with(&format!("created webhook {id} ")),
        "{stdout}"
    );
    assert_eq!(fake.secret_of(&id).as_deref(), Some("very-secret-value"));

    let out = run(ensure_args("env:RELAYCTL_TEST_SECRET"), base.clone())
        .await
        .unwrap();
    let stdout2 = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        stdout2.contains(&format!("updated webhook {id}")) && stdout2.contains("secret re-applied"),
        "{stdout2}"
    );

    let out = run(vec!["webex-webhooks", "list", "--json"], base.clone())
        .await
        .unwrap();
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed[0]["id"], id.as_str());
    for o in [
        stdout.as_ref(),
        stdout2.as_str(),
        String::from_utf8_lossy(&out.stdout).as_ref(),
        stderr.as_ref(),
    ] {
        assert!(
            !o.contains("very-secret-value") && !o.contains(TOKEN),
            "leaked: {o}"
        );
    }

    let out = run(ensure_args("env:RELAYCTL_UNSET_VAR"), base.clone())
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("RELAYCTL_UNSET_VAR is not set"));
    let out = run(ensure_args("literal-secret"), base).await.unwrap();
    assert!(
        !out.status.success(),
        "a literal secret on the command line is refused"
    );
}

/// A bot or a non-admin token cannot cover the org: a clear error naming the scope, nothing
/// changed; `--allow-user-scope` accepts a user token (its own calls only, no interests).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relayctl_binary_refuses_tokens_that_cannot_cover_the_org() {
    let fake = fake_webex().await;
    let base = fake.base_url.clone();
    let run = move |extra: &'static [&'static str]| {
        let base = base.clone();
        tokio::task::spawn_blocking(move || {
            let mut args = vec![
                "webex-webhooks",
                "ensure",
                "--target-url",
                TARGET,
                "--secret-from",
                "env:RELAYCTL_TEST_SECRET",
            ];
            args.extend_from_slice(extra);
            std::process::Command::new(env!("CARGO_BIN_EXE_relayctl"))
                .args(args)
                .env("WEBEX_TOKEN", TOKEN)
                .env("WEBEX_API_BASE_URL", base)
                .env("RELAYCTL_TEST_SECRET", "s")
                .output()
                .unwrap()
        })
    };
    fake.set_token(TOKEN, me(false, "bot"));
    let out = run(&[]).await.unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("bot") && err.contains("spark-admin:calls_read"),
        "{err}"
    );

    fake.set_token(TOKEN, me(false, "person"));
    let out = run(&[]).await.unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("spark-admin:calls_read") && err.contains("--allow-user-scope"),
        "{err}"
    );
    assert_eq!(fake.counts(), (0, 0, 0), "nothing changed");

    let out = run(&["--allow-user-scope"]).await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("coverage: only the calls of person me-1"),
        "{stdout}"
    );
    assert!(stdout.contains("webhook interests not managed"), "{stdout}");
    assert_eq!(fake.interest_posts(), 0);
}

/// Webex's PUT can only reactivate: `update --status inactive` is refused before any call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relayctl_binary_update_cannot_deactivate() {
    let fake = fake_webex().await;
    fake.insert(hook("w1", TARGET, "inactive"), None);
    let base = fake.base_url.clone();
    let run = move |status: &'static str| {
        let base = base.clone();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_relayctl"))
                .args(["webex-webhooks", "update", "w1", "--status", status])
                .env("WEBEX_TOKEN", TOKEN)
                .env("WEBEX_API_BASE_URL", base)
                .output()
                .unwrap()
        })
    };
    let out = run("inactive").await.unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("never deactivate"));
    assert_eq!(fake.counts().1, 0);
    let out = run("active").await.unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("status active"));
}
