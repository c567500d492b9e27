//! The e2e harness: the real `local-stack` binary driven over HTTP, and a receiver on 127.0.0.1
//! that records every request and can be told to fail, hang, or restart.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use rand::{Rng, SeedableRng};
use relay_shared::webex::webex_signature;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub const WEBEX_SECRET: &str = "e2e-webex-secret";
pub const USER_KEY: &str = "wrk_e2e_user_key_000000000000000";
pub const ADMIN_KEY: &str = "wrk_e2e_admin_key_00000000000000";
pub const ORG: &str =
    "Y2lzY29zcGFyazovL3VzL09SR0FOSVpBVElPTi8xNzExMTdkNi04YjgyLTQ0Y2EtOThlOS1hYzExNTdmMmNkMWQ";

/// Whether the `--aws` variants can run: `testkit::aws`'s gate (both endpoints set; unset → skip
/// with a reason, unless `RELAY_REQUIRE_AWS=1`, the test command, then fail).
pub fn aws_available(test: &str) -> bool {
    testkit::aws::available(test, testkit::aws::BOTH)
}

/// A running local stack; killed when dropped.
pub struct Stack {
    pub base: String,
    /// The DynamoDB table of an `--aws` stack.
    pub table: Option<String>,
    child: Child,
    log_path: std::path::PathBuf,
    /// Every line the stack printed on stdout but its ready line (e.g. EMF metric lines).
    stdout: Arc<Mutex<Vec<String>>>,
    pub http: reqwest::Client,
}

impl Stack {
    pub async fn start(extra: &[&str], aws: bool) -> Stack {
        Self::start_with_env(extra, &[], aws).await
    }

    /// Like `start`, with extra environment variables (e.g. the presence poller's knobs).
    pub async fn start_with_env(extra: &[&str], env: &[(&str, &str)], aws: bool) -> Stack {
        let mut args: Vec<String> = vec![
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--webex-secret".into(),
            WEBEX_SECRET.into(),
            "--api-key".into(),
            format!("{USER_KEY}=e2e-user:{ORG}"),
            "--api-key".into(),
            format!("{ADMIN_KEY}=e2e-admin:{ORG}:admin"),
            "--allow-private-targets".into(),
            "--max-rate-limit".into(),
            "1000000".into(),
            // The chaos test reads back every attempt of its 2,000 events (retries included), so
            // the embedded store must keep them all.
            "--store-capacity".into(),
            "20000".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let table = aws.then(|| format!("e2e-{}", ulid::Ulid::new().to_string().to_lowercase()));
        if let Some(table) = &table {
            args.extend([
                "--aws".into(),
                "--create-resources".into(),
                "--table".into(),
                table.clone(),
            ]);
        }
        // Warnings and errors go to a file, shown when a test fails (`Stack::log`).
        let log_path = std::env::temp_dir().join(format!(
            "e2e-local-stack-{}.log",
            ulid::Ulid::new().to_string().to_lowercase()
        ));
        let mut child = Command::new(env!("CARGO_BIN_EXE_local-stack"))
            .args(&args)
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .env_remove("AWS_ENDPOINT_URL")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log_path).expect("stack log file"))
            .kill_on_drop(true)
            .spawn()
            .expect("spawn local-stack");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut before_ready = Vec::new();
        let base = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await.expect("read stdout") {
                if let Some(rest) = line.strip_prefix("listening on ") {
                    return rest.split_whitespace().next().unwrap().to_owned();
                }
                before_ready.push(line);
            }
            panic!("local-stack exited before its ready line");
        })
        .await
        .expect("local-stack ready within 60 s");
        // Keep draining stdout so the child never blocks on a full pipe.
        let stdout = Arc::new(Mutex::new(before_ready));
        let kept = stdout.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                kept.lock().unwrap().push(line);
            }
        });
        Stack {
            base,
            table,
            child,
            log_path,
            stdout,
            http: reqwest::Client::new(),
        }
    }

    /// The user's view of one subscription: `GET /api/hooks/webhooks/{id}`.
    pub async fn subscription(&self, id: &str) -> (u16, Value) {
        let path = format!("/api/hooks/webhooks/{id}");
        self.api(reqwest::Method::GET, &path, USER_KEY, None).await
    }

    pub async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        key: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("API request");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Creates a subscription for every telephony event type pointing at `url`; returns its id.
    pub async fn subscribe(&self, url: &str, secret: &str) -> String {
        const TELEPHONY: &[&str] = &[
            "telephony:created",
            "telephony:updated",
            "telephony:deleted",
        ];
        self.subscribe_to(url, secret, TELEPHONY).await
    }

    /// Creates a subscription for `event_types` pointing at `url`; returns its id.
    pub async fn subscribe_to(&self, url: &str, secret: &str, event_types: &[&str]) -> String {
        let (status, body) = self
            .api(
                reqwest::Method::POST,
                "/api/hooks/webhooks",
                USER_KEY,
                Some(json!({
                    "name": "e2e receiver",
                    "url": url,
                    "eventTypes": event_types,
                    "secret": secret,
                    "rateLimitPerMinute": 1000000
                })),
            )
            .await;
        assert_eq!(status, 201, "create subscription: {body}");
        body["id"].as_str().unwrap().to_owned()
    }

    /// POSTs a Webex envelope to ingest, signed as Webex signs it.
    pub async fn ingest(&self, envelope: &str) -> u16 {
        self.ingest_signed(envelope, WEBEX_SECRET).await
    }

    /// POSTs a Webex envelope to ingest, signed with `secret`.
    pub async fn ingest_signed(&self, envelope: &str, secret: &str) -> u16 {
        self.http
            .post(format!("{}/webex/telephony", self.base))
            .header("content-type", "application/json")
            .header(
                "x-spark-signature",
                webex_signature(secret.as_bytes(), envelope.as_bytes()),
            )
            .body(envelope.to_owned())
            .send()
            .await
            .expect("ingest request")
            .status()
            .as_u16()
    }

    /// Waits (bounded) for a stdout line containing `needle`; returns it, or `None` past `within`.
    pub async fn wait_for_stdout(&self, needle: &str, within: Duration) -> Option<String> {
        let deadline = Instant::now() + within;
        loop {
            let found = self
                .stdout
                .lock()
                .unwrap()
                .iter()
                .find(|l| l.contains(needle))
                .cloned();
            if found.is_some() || Instant::now() >= deadline {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Everything the stack printed so far: stdout (where its logs go), then stderr.
    pub fn output(&self) -> String {
        let mut all = self.stdout.lock().unwrap().join("\n");
        all.push('\n');
        all.push_str(&std::fs::read_to_string(&self.log_path).unwrap_or_default());
        all
    }

    /// The last `lines` lines the stack logged (warnings and errors).
    pub fn log(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// SIGTERM and wait: the stack must stop by itself.
    pub async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("stops within 30 s after SIGTERM");
        assert!(
            status.expect("wait").success(),
            "local-stack exits cleanly on SIGTERM; its log:\n{}",
            self.log(50)
        );
        let _ = std::fs::remove_file(&self.log_path);
    }
}

/// The three envelopes of the captured Webex telephony webhook, in captured order (updated,
/// created, deleted), compact, re-dated to the present.
pub fn seed_envelopes() -> Vec<(String, Value)> {
    ["updated", "created", "deleted"]
        .iter()
        .map(|name| {
            let path = format!(
                "{}/../tests/fixtures/seed001/{name}.json",
                env!("CARGO_MANIFEST_DIR")
            );
            let mut v: Value =
                serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
            // Moved to the present: the ingest relays only events inside its dedupe window.
            relay_shared::webex::redate_captured(&mut v["items"]);
            (v["items"].to_string(), v["items"].clone())
        })
        .collect()
}

/// How the receiver answers.
#[derive(Debug, Clone, Copy)]
pub enum Behaviour {
    Ok,
    AlwaysFail,
    /// Every request answered with this status (e.g. 410 Gone).
    Status(u16),
    /// 500 on `fail_pct` % and a hang (longer than the delivery timeout, then 500) on
    /// `hang_pct` % of requests, at random from a fixed seed; an id that already failed
    /// `max_failures_per_id` times is answered 200, so the retry schedule always suffices.
    Chaos {
        fail_pct: u32,
        hang_pct: u32,
        hang: Duration,
        max_failures_per_id: u32,
    },
}

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Capture {
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
    pub status: u16,
}

impl Capture {
    /// The delivered JSON body, checked to be of the type its `X-ServiceHook-Event` header names
    /// (the relay's own and derived events carry a `type`).
    pub fn typed_body(&self) -> Value {
        let body: Value = serde_json::from_slice(&self.body).unwrap();
        assert_eq!(
            self.headers["x-servicehook-event"],
            body["type"].as_str().unwrap()
        );
        body
    }
}

#[derive(Default)]
pub struct Log {
    pub captures: Vec<Capture>,
    pub successes: HashMap<String, u32>,
    pub failures: HashMap<String, u32>,
    pub answered_500: u32,
    pub hung: u32,
}

struct RecvState {
    behaviour: Arc<Mutex<Behaviour>>,
    log: Arc<Mutex<Log>>,
    rng: Mutex<rand::rngs::StdRng>,
}

pub struct Receiver {
    pub url: String,
    addr: SocketAddr,
    behaviour: Arc<Mutex<Behaviour>>,
    pub log: Arc<Mutex<Log>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    pub restarts: u32,
}

impl Receiver {
    pub async fn start(behaviour: Behaviour) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut r = Receiver {
            url: format!("http://{addr}/hook"),
            addr,
            behaviour: Arc::new(Mutex::new(behaviour)),
            log: Arc::new(Mutex::new(Log::default())),
            stop: None,
            task: None,
            restarts: 0,
        };
        r.serve(listener);
        r
    }

    fn serve(&mut self, listener: tokio::net::TcpListener) {
        let state = Arc::new(RecvState {
            behaviour: self.behaviour.clone(),
            log: self.log.clone(),
            rng: Mutex::new(rand::rngs::StdRng::seed_from_u64(
                42 + u64::from(self.restarts),
            )),
        });
        let app = Router::new().route("/hook", post(handle)).with_state(state);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        self.stop = Some(tx);
        self.task = Some(tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                })
                .await;
        }));
    }

    /// Stops accepting for `down`, then listens again on the same port.
    pub async fn restart(&mut self, down: Duration) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
        }
        tokio::time::sleep(down).await;
        let deadline = Instant::now() + Duration::from_secs(10);
        let listener = loop {
            match tokio::net::TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("rebinding the receiver: {e}"),
            }
        };
        self.restarts += 1;
        self.serve(listener);
    }

    /// Changes how later requests are answered.
    pub fn set_behaviour(&self, behaviour: Behaviour) {
        *self.behaviour.lock().unwrap() = behaviour;
    }

    pub fn successes(&self) -> usize {
        self.log.lock().unwrap().successes.len()
    }

    /// Waits (bounded) until `n` distinct webhook-ids were answered 2xx.
    pub async fn wait_for_successes(&self, n: usize, within: Duration) -> usize {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline && self.successes() < n {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.successes()
    }
}

async fn handle(
    State(state): State<Arc<RecvState>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let id = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let (status, hang) = {
        let mut log = state.log.lock().unwrap();
        let failures = log.failures.get(&id).copied().unwrap_or(0);
        let roll: u32 = state.rng.lock().unwrap().random_range(0..100);
        let behaviour = *state.behaviour.lock().unwrap();
        match behaviour {
            Behaviour::Ok => (StatusCode::OK, None),
            Behaviour::AlwaysFail => (StatusCode::INTERNAL_SERVER_ERROR, None),
            Behaviour::Status(code) => (
                StatusCode::from_u16(code).expect("a valid status code"),
                None,
            ),
            Behaviour::Chaos {
                max_failures_per_id,
                ..
            } if failures >= max_failures_per_id => (StatusCode::OK, None),
            Behaviour::Chaos { fail_pct, .. } if roll < fail_pct => {
                log.answered_500 += 1;
                (StatusCode::INTERNAL_SERVER_ERROR, None)
            }
            Behaviour::Chaos {
                fail_pct,
                hang_pct,
                hang,
                ..
            } if roll < fail_pct + hang_pct => {
                log.hung += 1;
                (StatusCode::GATEWAY_TIMEOUT, Some(hang))
            }
            Behaviour::Chaos { .. } => (StatusCode::OK, None),
        }
    };
    // Recorded before any hang: the relay gives up on a hung request, which may drop this future.
    {
        let mut log = state.log.lock().unwrap();
        if status.is_success() {
            *log.successes.entry(id).or_default() += 1;
        } else {
            *log.failures.entry(id).or_default() += 1;
        }
        log.captures.push(Capture {
            headers: headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_owned(),
                        v.to_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect(),
            body: body.to_vec(),
            status: status.as_u16(),
        });
    }
    if let Some(d) = hang {
        tokio::time::sleep(d).await;
    }
    status
}
