//! Not an end-to-end scenario: the fake Webex (`testkit::fake_webex`) itself behaves as Webex's
//! published API says, so the suites that use it test against Webex's rules.

use std::time::Duration;

use relay_shared::webex::webex_signature;
use serde_json::{json, Value};
use testkit::fake_webex::{people, FakeWebex, Token, ORG};

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

async fn call(
    method: reqwest::Method,
    url: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Answer {
    let mut req = reqwest::Client::new().request(method, url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap();
    Answer {
        status,
        headers,
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
    }
}

async fn get(url: &str, token: &str) -> Answer {
    call(reqwest::Method::GET, url, Some(token), None).await
}

fn next_link(a: &Answer) -> Option<String> {
    let link = a.headers.get("link")?.to_str().unwrap();
    Some(link.strip_prefix('<')?.split('>').next()?.to_owned())
}

async fn refresh(fake: &FakeWebex, refresh_token: &str) -> Answer {
    let resp = reqwest::Client::new()
        .post(format!("{}/access_token", fake.base_url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=refresh_token&client_id=cid&client_secret=cs&refresh_token={refresh_token}"
        ))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    Answer {
        status,
        headers,
        body: resp.json().await.unwrap_or(Value::Null),
    }
}

#[tokio::test]
async fn people_pages_with_link_and_webex_max_caps() {
    let fake = FakeWebex::start(people(120, Some("active"))).await;
    let first = get(
        &format!(
            "{}/people?max=1000&locationId={}",
            fake.base_url, "Y2lzY29zcGFyazovL3VzL0xPQ0FUSU9OL2xvYy0x"
        ),
        "t",
    )
    .await;
    assert_eq!(first.status, 200);
    assert_eq!(
        first.body["items"].as_array().unwrap().len(),
        50,
        "locationId caps max at 50"
    );
    let mut url = next_link(&first);
    let mut pages = 1;
    while let Some(u) = url {
        let page = get(&u, "t").await;
        assert_eq!(page.status, 200);
        pages += 1;
        url = next_link(&page);
    }
    assert_eq!(pages, 3);
    let calling = get(
        &format!("{}/people?max=1000&callingData=true", fake.base_url),
        "t",
    )
    .await;
    assert_eq!(
        calling.body["items"].as_array().unwrap().len(),
        100,
        "callingData caps max at 100"
    );
    let plain = get(&format!("{}/people", fake.base_url), "t").await;
    assert_eq!(
        plain.body["items"].as_array().unwrap().len(),
        100,
        "default max 100"
    );
    // Every response carries a tracking id; errors carry it in Webex's error body too.
    assert!(plain.headers["trackingid"]
        .to_str()
        .unwrap()
        .starts_with("ROUTER_"));
    assert_eq!(fake.seen().len(), 5);
    assert_eq!(fake.seen()[1].page, 1);
}

#[tokio::test]
async fn org_id_is_for_partners_and_bots_cannot_list() {
    let fake = FakeWebex::start(people(2, None)).await;
    let own = get(&format!("{}/people?orgId={ORG}", fake.base_url), "t").await;
    assert_eq!(own.status, 200);
    assert!(
        own.body["items"][0].get("status").is_none(),
        "a person without status"
    );
    let other = get(&format!("{}/people?orgId=other-org", fake.base_url), "t").await;
    assert_eq!(other.status, 403);
    assert_eq!(
        other.body["trackingId"],
        json!(other.headers["trackingid"].to_str().unwrap())
    );
    fake.set_token(
        "partner",
        Token {
            partner_of: vec!["other-org".into()],
            ..Token::admin(ORG)
        },
    );
    assert_eq!(
        get(
            &format!("{}/people?orgId=other-org", fake.base_url),
            "partner"
        )
        .await
        .status,
        200
    );
    fake.set_token(
        "bot",
        Token {
            kind: "bot".into(),
            admin: false,
            ..Token::admin(ORG)
        },
    );
    let me = get(&format!("{}/people/me", fake.base_url), "bot").await;
    assert_eq!(
        (me.body["type"].as_str(), me.body["orgId"].as_str()),
        (Some("bot"), Some(ORG))
    );
    assert_eq!(
        get(&format!("{}/people", fake.base_url), "bot")
            .await
            .status,
        400
    );
}

#[tokio::test]
async fn tokens_expire_and_refresh_tokens_are_spent_on_use() {
    let fake = FakeWebex::start(people(1, Some("active"))).await;
    fake.add_token("initial", Some(Duration::from_secs(60)));
    fake.oauth_client("cid", "cs", "r0", Duration::from_secs(120));
    let url = format!("{}/people", fake.base_url);
    assert_eq!(get(&url, "initial").await.status, 200);
    assert_eq!(
        get(&url, "someone-else").await.status,
        401,
        "strict: known tokens only"
    );
    fake.advance(Duration::from_secs(61));
    let expired = get(&url, "initial").await;
    assert_eq!(expired.status, 401);
    assert!(expired.body["message"].is_string() && expired.body["trackingId"].is_string());

    let a = refresh(&fake, "r0").await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert_eq!(a.body["expires_in"], 120);
    assert_eq!(a.body["token_type"], "Bearer");
    assert!(a.body["refresh_token_expires_in"].is_u64());
    let (access, next) = (
        a.body["access_token"].as_str().unwrap(),
        a.body["refresh_token"].as_str().unwrap(),
    );
    assert_ne!(next, "r0", "a new refresh token each time");
    assert_eq!(get(&url, access).await.status, 200);
    assert_eq!(
        refresh(&fake, "r0").await.status,
        400,
        "a spent refresh token is invalid"
    );
    fake.advance(Duration::from_secs(121));
    assert_eq!(get(&url, access).await.status, 401);
    let b = refresh(&fake, next).await;
    assert_eq!(b.status, 200);
    let used: Vec<String> = fake.refreshes().iter().map(|r| r.used.clone()).collect();
    assert_eq!(used, ["r0", "r0", next]);
}

#[tokio::test]
async fn past_the_budget_webex_answers_429_with_retry_after() {
    let fake = FakeWebex::start(people(1, Some("active"))).await;
    fake.set_budget(Some(2));
    let url = format!("{}/people", fake.base_url);
    assert_eq!(get(&url, "a").await.status, 200);
    assert_eq!(get(&url, "a").await.status, 200);
    let limited = get(&url, "a").await;
    assert_eq!(limited.status, 429);
    let retry: u64 = limited.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(get(&url, "b").await.status, 200, "the budget is per token");
    fake.advance(Duration::from_secs(60));
    assert_eq!(get(&url, "a").await.status, 200, "a new minute");
}

#[tokio::test]
async fn webhooks_follow_webex_rules_and_failing_ones_are_deactivated() {
    let fake = FakeWebex::start(vec![]).await;
    let hooks = format!("{}/webhooks", fake.base_url);
    let post = |body: Value| call(reqwest::Method::POST, &hooks, Some("t"), Some(body));
    let org_calls = post(json!({"name": "n", "targetUrl": "http://x", "resource": "telephony_calls", "event": "all", "ownedBy": "org"})).await;
    assert_eq!(
        org_calls.status, 400,
        "ownedBy org is not published for telephony_calls"
    );

    // A receiver that fails, then recovers.
    let failing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let flag = failing.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let flag = flag.clone();
                async move {
                    let sig = headers["x-spark-signature"].to_str().unwrap().to_owned();
                    assert_eq!(sig, webex_signature(b"hook-secret", &body));
                    if flag.load(std::sync::atomic::Ordering::SeqCst) {
                        axum::http::StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        axum::http::StatusCode::OK
                    }
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let created = post(json!({"name": "relay", "targetUrl": target, "resource": "telephony_calls", "event": "all", "secret": "hook-secret"})).await;
    assert_eq!(created.status, 200, "Webex answers a create with 200");
    let id = created.body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        (
            created.body["status"].as_str(),
            created.body["ownedBy"].as_str()
        ),
        (Some("active"), Some("creator"))
    );
    for _ in 0..3 {
        post(json!({"name": "other", "targetUrl": "http://x", "resource": "messages", "event": "created"})).await;
    }
    let page = get(&format!("{hooks}?max=2"), "t").await;
    assert_eq!(page.body["items"].as_array().unwrap().len(), 2);
    assert!(next_link(&page).is_some(), "listings page with Link");

    fake.deactivate_after(2);
    assert_eq!(
        fake.deliver(&id, json!({"eventType": "received"})).await,
        Some(500)
    );
    assert_eq!(
        fake.deliver(&id, json!({"eventType": "received"})).await,
        Some(500)
    );
    let one = format!("{hooks}/{id}");
    assert_eq!(
        get(&one, "t").await.body["status"],
        "inactive",
        "deactivated after 2 failures"
    );
    assert_eq!(
        fake.deliver(&id, json!({})).await,
        None,
        "nothing is delivered to an inactive webhook"
    );

    let put = |body: Value| call(reqwest::Method::PUT, &one, Some("t"), Some(body));
    assert_eq!(
        put(json!({"name": "relay", "targetUrl": target, "status": "inactive"}))
            .await
            .status,
        400,
        "PUT cannot deactivate"
    );
    let reactivated = put(
        json!({"name": "relay", "targetUrl": target, "status": "active", "resource": "ignored"}),
    )
    .await;
    assert_eq!(reactivated.status, 200);
    assert_eq!(
        (
            reactivated.body["status"].as_str(),
            reactivated.body["resource"].as_str()
        ),
        (Some("active"), Some("telephony_calls"))
    );
    failing.store(false, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(
        fake.deliver(&id, json!({"eventType": "received"})).await,
        Some(200)
    );
    assert_eq!(
        call(reqwest::Method::DELETE, &one, Some("t"), None)
            .await
            .status,
        204
    );
    assert_eq!(get(&one, "t").await.status, 404);
}

#[tokio::test]
async fn interest_registrations_are_an_admin_upsert_that_expires() {
    let fake = FakeWebex::start(vec![]).await;
    let url = format!("{}/telephony/webhookInterestRegistrations", fake.base_url);
    assert_eq!(get(&url, "t").await.status, 404, "none yet");
    let interests = json!([{"actor": "Workspaces"}, {"actor": "Virtual Lines"}]);
    let post = |body: Value, token: &'static str| {
        call(reqwest::Method::POST, &url, Some(token), Some(body))
    };
    assert_eq!(post(json!({"interests": []}), "t").await.status, 400);
    assert_eq!(post(json!({"interests": interests}), "t").await.status, 204);
    let got = get(&url, "t").await;
    assert_eq!(got.body["interests"], interests);
    let registered = fake.interests();
    assert!(
        got.body["expiresAt"].as_str().unwrap().ends_with('Z'),
        "UTC"
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let days = (registered[0].2.timestamp() - now) as f64 / 86_400.0;
    assert!((59.9..=60.0).contains(&days), "60 days by default: {days}");
    assert_eq!(
        post(json!({"interests": interests, "duration": 7}), "t")
            .await
            .status,
        204,
        "an upsert"
    );
    fake.advance(Duration::from_secs(8 * 86_400));
    assert_eq!(get(&url, "t").await.status, 404, "expired");
    fake.set_token(
        "user",
        Token {
            admin: false,
            ..Token::admin(ORG)
        },
    );
    assert_eq!(
        post(json!({"interests": interests}), "user").await.status,
        403,
        "admins only"
    );
    assert_eq!(
        call(reqwest::Method::DELETE, &url, Some("t"), None)
            .await
            .status,
        204
    );
    assert!(fake.recorded().iter().all(|r| r.token.is_some()));
}
