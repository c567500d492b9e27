//! The SSRF guard through the real sender and the worker: refused targets are permanent failures
//! (`ssrf_blocked`, no retries, DLQ with the reason) and nothing reaches the receiver.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;

use crate::common::*;
use delivery_worker::http_sender::ReqwestSender;
use delivery_worker::ssrf::{GuardedResolver, Lookup, StaticLookup, SystemLookup};
use delivery_worker::{DeliveryOutcome, WorkerConfig};
use relay_shared::clock::SystemClock;
use relay_shared::delivery::{AttemptStatus, ErrorClass};
use relay_shared::ports::{HttpSender, OutboundRequest};
use relay_shared::targets::TargetPolicy;
use wiremock::{MockServer, ResponseTemplate};

async fn receiver() -> MockServer {
    let server = MockServer::start().await;
    respond(&server, ResponseTemplate::new(200), None).await;
    server
}

/// Fixed names first, then the system resolver (so `localhost` is resolved for real).
struct TestLookup(StaticLookup);

impl Lookup for TestLookup {
    fn lookup(
        &self,
        host: String,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send>> {
        if self.0 .0.contains_key(&host.to_ascii_lowercase()) {
            self.0.lookup(host)
        } else {
            SystemLookup.lookup(host)
        }
    }
}

/// Names that resolve to fixed addresses (a DNS name pointing at loopback / metadata / mixed).
fn lookup() -> Arc<TestLookup> {
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    let mut t = HashMap::new();
    t.insert("loopback.example.test".to_owned(), vec![ip("127.0.0.1")]);
    t.insert(
        "metadata.example.test".to_owned(),
        vec![ip("169.254.169.254")],
    );
    t.insert(
        "mixed.example.test".to_owned(),
        vec![ip("93.184.215.14"), ip("10.0.0.7")],
    );
    t.insert("v6.example.test".to_owned(), vec![ip("::ffff:127.0.0.1")]);
    t.insert(
        "metadata-v6.example.test".to_owned(),
        vec![ip("::ffff:169.254.169.254")],
    );
    t.insert("receiver.example.test".to_owned(), vec![ip("127.0.0.1")]);
    Arc::new(TestLookup(StaticLookup(t)))
}

fn harness(policy: TargetPolicy) -> Harness {
    let mut config = test_config(5);
    config.targets = policy.clone();
    let http = Arc::new(ReqwestSender::with_lookup(policy, 65536, lookup()).unwrap());
    Harness::with(config, http, Arc::new(SystemClock))
}

fn strict_http() -> TargetPolicy {
    // http allowed so the test receiver's scheme is not what refuses it: the address is.
    TargetPolicy {
        allow_http: true,
        allow_private: false,
        allow_cidrs: vec![],
    }
}

async fn assert_blocked(h: &Harness, url: &str) {
    let sub = subscription(url);
    h.add(&sub).await;
    let o = h.deliver_new(&sub).await;
    match &o {
        DeliveryOutcome::DeadLettered { reason } => {
            assert!(reason.contains("ssrf_blocked"), "{url}: {reason}")
        }
        other => panic!("{url}: expected a dead-lettered job, got {other:?}"),
    }
    let log = h.attempts(&sub.id).await;
    assert_eq!(log.len(), 1, "{url}");
    assert_eq!(
        (log[0].status, log[0].error_class),
        (AttemptStatus::Failed, Some(ErrorClass::SsrfBlocked)),
        "{url}: {:?}",
        log[0]
    );
    assert!(h.queue.is_empty(), "{url}: no retries for a refused target");
    let parked = h.parked_jobs();
    let mine = parked
        .iter()
        .find(|j| j.subscription_id == sub.id)
        .expect("parked");
    assert!(mine
        .dead_letter_reason
        .as_deref()
        .unwrap()
        .contains("ssrf_blocked"));
}

#[tokio::test]
async fn refuses_every_internal_target_form() {
    let server = receiver().await;
    let port = server.address().port();
    let h = harness(strict_http());
    let urls = [
        format!("http://127.0.0.1:{port}/hook"),
        format!("http://2130706433:{port}/hook"),
        format!("http://0x7f.1:{port}/hook"),
        format!("http://0x7f000001:{port}/hook"),
        format!("http://0177.0.0.1:{port}/hook"),
        format!("http://127.1:{port}/hook"),
        format!("http://[::ffff:127.0.0.1]:{port}/hook"),
        format!("http://[::1]:{port}/hook"),
        format!("http://localhost:{port}/hook"),
        format!("http://LOCALHOST.:{port}/hook"),
        format!("http://loopback.example.test:{port}/hook"),
        format!("http://v6.example.test:{port}/hook"),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://metadata.example.test/latest/meta-data/".to_owned(),
        "http://mixed.example.test/hook".to_owned(),
        "http://10.0.0.1/hook".to_owned(),
        "http://172.16.5.4/hook".to_owned(),
        "http://192.168.0.1/hook".to_owned(),
        "http://100.64.0.1/hook".to_owned(),
        "http://0.0.0.0/hook".to_owned(),
        "http://255.255.255.255/hook".to_owned(),
        "http://224.0.0.1/hook".to_owned(),
        "http://240.0.0.1/hook".to_owned(),
        "http://192.0.0.1/hook".to_owned(),
        "http://198.18.0.1/hook".to_owned(),
        "http://192.0.2.1/hook".to_owned(),
        "http://[fd00::1]/hook".to_owned(),
        "http://[fe80::1]/hook".to_owned(),
        "http://[64:ff9b::a9fe:a9fe]/hook".to_owned(),
        "http://[2002:7f00:1::1]/hook".to_owned(),
        "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/hook".to_owned(),
        "http://[ff02::1]/hook".to_owned(),
        "https://[2002:7f00:1::]/hook".to_owned(),
        "https://[64:ff9b:1::7f00:1]/hook".to_owned(),
        "https://[::ffff:0:7f00:1]/hook".to_owned(),
        "https://[100::1]/hook".to_owned(),
        "https://[4000::1]/hook".to_owned(),
    ];
    for url in &urls {
        assert_blocked(&h, url).await;
    }
    assert!(
        server.received_requests().await.unwrap().is_empty(),
        "nothing reached the receiver"
    );
}

#[tokio::test]
async fn https_only_by_default() {
    let h = harness(TargetPolicy::default());
    assert_blocked(&h, "http://example.com/hook").await;
    assert_blocked(&h, "ftp://example.com/hook").await;
}

#[tokio::test]
async fn allow_list_overrides_for_literals_and_names() {
    let server = receiver().await;
    let port = server.address().port();
    // Read as the deployed worker reads it (the same variables the webhooks API reads).
    let policy = WorkerConfig::from_env_pairs(&[
        ("TARGET_ALLOW_CIDRS", "127.0.0.1/32"),
        ("ALLOW_HTTP_TARGETS", "true"),
    ])
    .unwrap()
    .targets;
    let h = harness(policy);
    for url in [
        format!("http://127.0.0.1:{port}/hook"),
        format!("http://2130706433:{port}/hook"),
        format!("http://receiver.example.test:{port}/hook"),
    ] {
        let sub = subscription(&url);
        h.add(&sub).await;
        let o = h.deliver_new(&sub).await;
        assert!(
            matches!(o, DeliveryOutcome::Delivered { .. }),
            "{url}: {o:?}"
        );
    }
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
    // Outside the allow-list: still refused.
    assert_blocked(&h, "http://127.0.0.2/hook").await;
    assert_blocked(&h, "http://169.254.169.254/hook").await;
}

#[tokio::test]
async fn allow_private_targets_disables_the_address_check() {
    let server = receiver().await;
    let port = server.address().port();
    let h = harness(TargetPolicy {
        allow_http: true,
        allow_private: true,
        allow_cidrs: vec![],
    });
    let sub = subscription(&format!("http://loopback.example.test:{port}/hook"));
    h.add(&sub).await;
    let o = h.deliver_new(&sub).await;
    assert!(matches!(o, DeliveryOutcome::Delivered { .. }), "{o:?}");
}

#[tokio::test]
async fn cloud_metadata_stays_refused_when_private_targets_are_allowed() {
    let permissive = TargetPolicy {
        allow_http: true,
        allow_private: true,
        allow_cidrs: vec![],
    };
    let h = harness(permissive.clone());
    for url in [
        "http://169.254.169.254/latest/meta-data/",
        "http://2852039166/latest/meta-data/",
        "http://[::ffff:169.254.169.254]/",
        "http://[64:ff9b::a9fe:a9fe]/",
        "http://[2002:a9fe:a9fe::1]/",
        "http://[fd00:ec2::254]/",
        // A name the tenant controls, resolving to the metadata service (and its mapped form).
        "http://metadata.example.test/latest/meta-data/",
        "http://metadata-v6.example.test/",
    ] {
        assert_blocked(&h, url).await;
    }
    // The operator's explicit way in: the address itself in TARGET_ALLOW_CIDRS. (Checked at the
    // resolver: the test makes no connection to a metadata address.)
    let listed = TargetPolicy {
        allow_cidrs: vec!["169.254.169.254/32".parse().unwrap()],
        ..permissive
    };
    let resolver = GuardedResolver::new(Arc::new(listed), lookup());
    for name in ["metadata.example.test", "metadata-v6.example.test"] {
        assert!(resolver.resolve_checked(name).await.is_ok(), "{name}");
    }
}

/// What the tenant sees of a refused delivery (the attempt log served by
/// `GET /api/hooks/webhooks/{id}/deliveries`, the dead-letter reason) names the reason class, never
/// the address a name resolved to.
#[tokio::test]
async fn a_refused_delivery_names_the_reason_class_not_the_resolved_address() {
    let h = harness(strict_http());
    for (url, class, hidden) in [
        (
            "http://loopback.example.test/hook",
            "(loopback)",
            "127.0.0.1",
        ),
        (
            "http://metadata.example.test/",
            "(cloud-metadata)",
            "169.254",
        ),
        ("http://mixed.example.test/hook", "(private)", "10.0.0.7"),
        ("http://v6.example.test/hook", "(ipv4-mapped)", "127.0.0.1"),
    ] {
        let sub = subscription(url);
        h.add(&sub).await;
        h.deliver_new(&sub).await;
        let log = h.attempts(&sub.id).await;
        let error = log[0].error.as_deref().unwrap();
        assert!(
            error.contains(class) && !error.contains(hidden) && !error.contains("ffff"),
            "{url}: {error}"
        );
        let parked = h.parked_jobs();
        let reason = parked
            .iter()
            .find(|j| j.subscription_id == sub.id)
            .and_then(|j| j.dead_letter_reason.clone())
            .unwrap();
        assert!(
            reason.contains("ssrf_blocked") && reason.contains(class) && !reason.contains(hidden),
            "{url}: {reason}"
        );
    }
}

#[test]
fn transport_errors_shown_to_tenants_have_no_addresses() {
    use delivery_worker::http_sender::redact_addresses;
    assert_eq!(
        redact_addresses("tcp connect error: 10.0.0.7:443: Connection refused (os error 111)"),
        "tcp connect error: <address>: Connection refused (os error 111)"
    );
    assert_eq!(
        redact_addresses("connect to [fd00::1]:8443 failed; tried 127.0.0.1."),
        "connect to <address> failed; tried <address>."
    );
    let plain = "error sending request for url (https://example.com/hook): client error (Connect)";
    assert_eq!(redact_addresses(plain), plain);
}

#[tokio::test]
async fn sender_classifies_dns_failures_and_blocks() {
    let sender = ReqwestSender::with_lookup(strict_http(), 1024, lookup()).unwrap();
    let req = |url: &str| OutboundRequest {
        url: url.into(),
        headers: vec![("content-type", "application/json".into())],
        body: Arc::from("{}"),
        timeout: std::time::Duration::from_secs(5),
    };
    let e = sender
        .post(req("http://no-such-host.example.test/"))
        .await
        .unwrap_err();
    assert_eq!(e.class, ErrorClass::Dns, "{e}");
    assert!(!e.permanent);
    let e = sender
        .post(req("http://metadata.example.test/"))
        .await
        .unwrap_err();
    assert_eq!(e.class, ErrorClass::SsrfBlocked, "{e}");
    assert!(e.permanent);
    let e = sender.post(req("http://0177.0.0.1/")).await.unwrap_err();
    assert_eq!(e.class, ErrorClass::SsrfBlocked, "{e}");
    let e = sender
        .post(req("http://[::ffff:127.0.0.1]/"))
        .await
        .unwrap_err();
    assert_eq!(e.class, ErrorClass::SsrfBlocked, "{e}");
}
