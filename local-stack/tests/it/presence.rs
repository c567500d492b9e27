//! Presence through the local stack: a fake Webex people API on 127.0.0.1, the stack's presence
//! loop polling it, and a subscriber that must get exactly the changed people, as the presence
//! webhook contract (docs/presence-poller.md) says.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use relay_shared::signing::SigningSecret;
use serde_json::{json, Value};

use crate::run_external_verifiers;
use crate::support::*;

const WEBEX_TOKEN: &str = "e2e-webex-token";

#[derive(Default)]
struct Directory {
    people: Mutex<Vec<Value>>,
    listings: AtomicUsize,
}

/// `GET /v1/people?orgId=…` answering one page of the current people, for the right token only.
struct FakeWebex {
    base: String,
    directory: Arc<Directory>,
}

impl FakeWebex {
    async fn start(people: Vec<Value>) -> FakeWebex {
        let directory = Arc::new(Directory {
            people: Mutex::new(people),
            listings: AtomicUsize::new(0),
        });
        let app = Router::new()
            .route("/v1/people", get(list_people))
            .with_state(directory.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}/v1", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        FakeWebex { base, directory }
    }

    fn set_status(&self, i: usize, status: &str) {
        self.directory.people.lock().unwrap()[i]["status"] = json!(status);
    }

    fn person(&self, i: usize) -> Value {
        self.directory.people.lock().unwrap()[i].clone()
    }

    /// Waits (bounded) until `n` complete listings more than now were served.
    async fn wait_for_listings(&self, more: usize, within: Duration) {
        let target = self.directory.listings.load(Ordering::SeqCst) + more;
        let deadline = Instant::now() + within;
        while self.directory.listings.load(Ordering::SeqCst) < target {
            assert!(
                Instant::now() < deadline,
                "the presence loop polled fewer than {more} times in {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn list_people(
    State(directory): State<Arc<Directory>>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
    if auth != Some(&format!("Bearer {WEBEX_TOKEN}")) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"message": "bad token"})),
        )
            .into_response();
    }
    let org = query
        .iter()
        .find(|(k, _)| k == "orgId")
        .map(|(_, v)| v.as_str());
    if org != Some(ORG) {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"message": "wrong orgId"})),
        )
            .into_response();
    }
    let items = directory.people.lock().unwrap().clone();
    directory.listings.fetch_add(1, Ordering::SeqCst);
    Json(json!({ "items": items })).into_response()
}

/// The presence contract's example person (every field, in its order) with its own id, the e2e org,
/// and one field the relay does not model, which must be passed through.
fn person(i: usize, status: &str) -> Value {
    let seed: Value =
        serde_json::from_str(include_str!("../../../tests/fixtures/seed000.json")).unwrap();
    let mut p = seed["items"][0].clone();
    p["id"] = json!(format!("Y2lzY29zcGFyazovL3VzL1BFT1BMRS{i:06}"));
    p["orgId"] = json!(ORG);
    p["status"] = json!(status);
    p["phoneNumbers"] = json!([{"type": "work", "value": format!("+1 555 {i:04}")}]);
    p
}

async fn presence_changes_are_delivered(aws: bool) {
    let webex = FakeWebex::start((0..3).map(|i| person(i, "active")).collect()).await;
    let receiver = Receiver::start(Behaviour::Ok).await;
    let stack = Stack::start_with_env(
        &[
            "--webex-token",
            WEBEX_TOKEN,
            "--webex-base-url",
            &webex.base,
            "--presence-org",
            ORG,
        ],
        &[("PRESENCE_POLL_INTERVAL_MS", "100")],
        aws,
    )
    .await;
    let secret = SigningSecret::generate();
    let (status, created) = stack
        .api(
            reqwest::Method::POST,
            "/api/hooks/webhooks",
            USER_KEY,
            Some(json!({
                "name": "presence receiver",
                "url": receiver.url,
                "eventTypes": ["presence:changed"],
                "secret": secret.expose(),
            })),
        )
        .await;
    assert_eq!(status, 201, "create subscription: {created}");

    // The first listing is the baseline, and unchanged listings emit nothing.
    webex.wait_for_listings(3, Duration::from_secs(30)).await;
    assert_eq!(receiver.log.lock().unwrap().captures.len(), 0);

    webex.set_status(1, "DoNotDisturb");
    assert_eq!(
        receiver
            .wait_for_successes(1, Duration::from_secs(30))
            .await,
        1,
        "one presence delivery"
    );
    // Later listings see no further change: still exactly one delivery.
    webex.wait_for_listings(3, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let captures = receiver.log.lock().unwrap().captures.clone();
    assert_eq!(captures.len(), 1, "only the change is delivered, once");

    let c = &captures[0];
    let expected = format!(
        r#"{{"payload":"user-presence","items":[{}]}}"#,
        serde_json::to_string(&webex.person(1)).unwrap()
    );
    assert_eq!(
        String::from_utf8_lossy(&c.body),
        expected,
        "presence contract body: only the changed person, as Webex listed it"
    );
    assert_eq!(c.headers["x-org-id"], ORG);
    assert_eq!(c.headers["content-type"], "application/json");
    assert_eq!(c.headers["x-servicehook-event"], "presence:changed");
    run_external_verifiers(&captures, secret.expose());
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_changes_are_delivered_in_memory() {
    presence_changes_are_delivered(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_changes_are_delivered_on_aws_adapters() {
    if aws_available("presence_changes_are_delivered_on_aws_adapters") {
        presence_changes_are_delivered(true).await;
    }
}
