//! Real deliveries, captured by a local receiver, checked by code we did not write: the Python
//! `standardwebhooks` package, the ServiceHook guide's Python snippet (`X-ServiceHook-Signature`)
//! and the OpenWork webhook guide's Node function (`X-Hook-Signature`) (scripts in
//! `tests/verifiers/`; the headers are in docs/delivery-worker.md). `RELAY_PYTHON` (a python with
//! `standardwebhooks`) and `RELAY_NODE` select the interpreters; unset → the check is skipped with
//! a reason, unless `RELAY_REQUIRE_AWS=1`.

use std::path::PathBuf;
use std::process::Command;

use crate::common::*;
use base64::Engine;
use chrono::Utc;
use delivery_worker::DeliveryOutcome;
use relay_shared::events::EventType;
use wiremock::{MockServer, ResponseTemplate};

fn verifiers_dir() -> PathBuf {
    std::fs::canonicalize(env!("CARGO_MANIFEST_DIR"))
        .unwrap()
        .join("../../tests/verifiers")
}

/// The interpreter from `var`, or `None` (skip) — a failure when `RELAY_REQUIRE_AWS=1`
/// (`testkit::var`, the same rule as the AWS gate).
fn interpreter(var: &str) -> Option<String> {
    testkit::var("the external verifier check", var, var)
}

struct Capture {
    path: PathBuf,
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn write_capture(name: &str, secret: &str, req: &wiremock::Request, body: &[u8]) -> Capture {
    let headers: serde_json::Map<String, serde_json::Value> = req
        .headers
        .iter()
        .map(|(k, v)| (k.as_str().to_ascii_lowercase(), v.to_str().unwrap().into()))
        .collect();
    let capture = serde_json::json!({
        "secret": secret,
        "headers": headers,
        "body_b64": base64::engine::general_purpose::STANDARD.encode(body),
    });
    let path = std::env::temp_dir().join(format!(
        "relay-capture-{}-{name}-{}.json",
        std::process::id(),
        now_ms()
    ));
    std::fs::write(&path, capture.to_string()).unwrap();
    Capture { path }
}

fn run(interp: &str, script: &str, capture: &Capture) -> (bool, String) {
    let out = Command::new(interp)
        .arg(verifiers_dir().join(script))
        .arg(&capture.path)
        .output()
        .expect("run the verifier");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// One real delivery (with a rotated secret, so there are two webhook signatures; both sealed,
/// as the API stores them) and its capture, with the two secrets in the clear.
async fn deliver(body: &str) -> (wiremock::Request, String, String) {
    let server = MockServer::start().await;
    respond(&server, ResponseTemplate::new(200), None).await;
    let h = Harness::new(test_config(5));
    let mut sub = subscription(&format!("{}/hook", server.uri()));
    let old = SECRET.to_owned();
    let new = "whsec_QmVzdCBzZWNyZXQgZXZlciwgcmVhbGx5IHJlYWxseSE=".to_owned();
    sub.rotate_secret(new.as_str().into(), Utc::now(), chrono::Duration::hours(1));
    let sub = h.seal(sub).await;
    assert_eq!(sub.signing_secrets(Utc::now()).len(), 2);
    h.add(&sub).await;
    let mut job = job_for(&sub, EventType::TelephonyCreated);
    job.body = body.to_owned();
    assert!(matches!(
        h.worker.process_message(&raw(&job), 1).await,
        DeliveryOutcome::Delivered { .. }
    ));
    let req = server.received_requests().await.unwrap().remove(0);
    assert_eq!(req.body, body.as_bytes());
    (req, new, old)
}

fn bodies() -> Vec<String> {
    vec![
        sample_body(),
        r#"{"payload":"user-presence","items":[{"id":"p1","displayName":"Ünïcödé \"quoted\" \\ back/slash","status":"active","n":-1.5e-7}]}"#.to_owned(),
    ]
}

#[tokio::test]
async fn standardwebhooks_package_accepts_deliveries_signed_with_either_secret() {
    let Some(python) = interpreter("RELAY_PYTHON") else {
        return;
    };
    for body in bodies() {
        let (req, new, old) = deliver(&body).await;
        for secret in [&new, &old] {
            let cap = write_capture("sw", secret, &req, &req.body);
            let (ok, out) = run(&python, "standardwebhooks_verify.py", &cap);
            assert!(ok, "standardwebhooks rejected a real delivery: {out}");
        }
        let tampered = [&req.body[..], b" "].concat();
        let cap = write_capture("sw-bad", &new, &req, &tampered);
        assert!(
            !run(&python, "standardwebhooks_verify.py", &cap).0,
            "a tampered body must be rejected"
        );
    }
}

#[tokio::test]
async fn seed003_python_snippet_accepts_deliveries() {
    let Some(python) = interpreter("RELAY_PYTHON") else {
        return;
    };
    for body in bodies() {
        let (req, new, old) = deliver(&body).await;
        let cap = write_capture("s3", &new, &req, &req.body);
        let (ok, out) = run(&python, "seed003_verify.py", &cap);
        assert!(
            ok,
            "the ServiceHook guide's verifier rejected a real delivery: {out}"
        );
        // The hex headers use the current secret only.
        let cap = write_capture("s3-old", &old, &req, &req.body);
        assert!(!run(&python, "seed003_verify.py", &cap).0);
        let tampered = body.replacen('1', "2", 1);
        let cap = write_capture("s3-bad", &new, &req, tampered.as_bytes());
        assert!(
            !run(&python, "seed003_verify.py", &cap).0,
            "a tampered body must be rejected"
        );
    }
}

#[tokio::test]
async fn seed004_node_function_accepts_deliveries() {
    let Some(node) = interpreter("RELAY_NODE") else {
        return;
    };
    for body in bodies() {
        let (req, new, _old) = deliver(&body).await;
        let cap = write_capture("s4", &new, &req, &req.body);
        let (ok, out) = run(&node, "seed004_verify.js", &cap);
        assert!(
            ok,
            "the OpenWork guide's verifier rejected a real delivery: {out}"
        );
        let tampered = body.replacen('1', "2", 1);
        let cap = write_capture("s4-bad", &new, &req, tampered.as_bytes());
        assert!(
            !run(&node, "seed004_verify.js", &cap).0,
            "a tampered body must be rejected"
        );
    }
}
