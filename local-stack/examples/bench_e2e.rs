//! `scripts/bench-e2e`: the release local stack plus a receiver on loopback. Sends signed
//! telephony events at full speed and then at a fixed 1,000 ev/s, and prints events/s accepted and
//! delivered, p50/p95/p99 ingest→receiver latency, and the stack's peak RSS.
//!
//! Usage: bench_e2e <path to release local-stack binary> [full-speed events] [paced events]

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use axum::Router;
use relay_shared::webex::webex_signature;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};

const SECRET: &str = "bench-webex-secret";
const KEY: &str = "wrk_bench_key_000000000000000000";

type Arrivals = Arc<Mutex<HashMap<String, Instant>>>;

async fn receive(State(arrivals): State<Arrivals>, body: Bytes) -> &'static str {
    let now = Instant::now();
    let text = String::from_utf8_lossy(&body);
    if let Some(start) = text.find("\"callId\":\"") {
        let rest = &text[start + 10..];
        if let Some(end) = rest.find('"') {
            arrivals
                .lock()
                .unwrap()
                .entry(rest[..end].to_owned())
                .or_insert(now);
        }
    }
    "ok"
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let binary = args
        .next()
        .expect("usage: bench_e2e <local-stack binary> [full] [paced]");
    let full: usize = args.next().map(|s| s.parse().unwrap()).unwrap_or(20_000);
    let paced: usize = args.next().map(|s| s.parse().unwrap()).unwrap_or(10_000);

    let template: Value =
        serde_json::from_str(include_str!("../../tests/fixtures/seed001/created.json")).unwrap();
    let mut template = template["items"].clone();
    relay_shared::webex::redate_captured(&mut template);
    let template = Arc::new(template);
    // Subscriptions only receive their owner's org's events: the key's org is the seed's.
    let org = template["orgId"].as_str().unwrap().to_owned();
    let arrivals: Arrivals = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let receiver_url = format!("http://{}/hook", listener.local_addr().unwrap());
    let app = Router::new()
        .route("/hook", post(receive))
        .with_state(arrivals.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let mut child = tokio::process::Command::new(&binary)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--webex-secret",
            SECRET,
            "--allow-private-targets",
            "--max-rate-limit",
            "100000000",
        ])
        .args(["--api-key", &format!("{KEY}=bench-user:{org}")])
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start local-stack");
    let pid = child.id().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let base = loop {
        let line = lines.next_line().await.unwrap().expect("ready line");
        if let Some(rest) = line.strip_prefix("listening on ") {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .unwrap();
    let created = http
        .post(format!("{base}/api/hooks/webhooks"))
        .bearer_auth(KEY)
        .json(&json!({"name": "bench", "url": receiver_url, "eventTypes": ["telephony:created"], "rateLimitPerMinute": 100000000}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201, "create subscription");

    let template: Value =
        serde_json::from_str(include_str!("../../tests/fixtures/seed001/created.json")).unwrap();
    let mut template = template["items"].clone();
    relay_shared::webex::redate_captured(&mut template);
    let template = Arc::new(template);
    let sent_at: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let send = {
        let http = http.clone();
        let base = base.clone();
        let sent_at = sent_at.clone();
        move |call_id: String| {
            let mut v = (*template).clone();
            v["data"]["callId"] = json!(call_id);
            v["data"]["callSessionId"] = json!(call_id);
            let body = v.to_string();
            let sig = webex_signature(SECRET.as_bytes(), body.as_bytes());
            let req = http
                .post(format!("{base}/webex/telephony"))
                .header("content-type", "application/json")
                .header("x-spark-signature", sig)
                .body(body);
            let sent_at = sent_at.clone();
            async move {
                sent_at.lock().unwrap().insert(call_id, Instant::now());
                req.send().await.map(|r| r.status().as_u16()).unwrap_or(0)
            }
        }
    };

    // Phase 1: full speed, 64 in flight.
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    let mut accepted = 0usize;
    for i in 0..full {
        if set.len() >= 64 {
            accepted += usize::from(set.join_next().await.unwrap().unwrap() == 200);
        }
        set.spawn(send(format!("full-{i}")));
    }
    while let Some(r) = set.join_next().await {
        accepted += usize::from(r.unwrap() == 200);
    }
    let accept_secs = start.elapsed().as_secs_f64();
    let deadline = Instant::now() + Duration::from_secs(120);
    while arrivals
        .lock()
        .unwrap()
        .keys()
        .filter(|k| k.starts_with("full-"))
        .count()
        < full
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let last = arrivals
        .lock()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.starts_with("full-"))
        .map(|(_, t)| *t)
        .max()
        .unwrap_or(start);
    let delivered_full = arrivals
        .lock()
        .unwrap()
        .keys()
        .filter(|k| k.starts_with("full-"))
        .count();
    let deliver_secs = (last - start).as_secs_f64();

    // Phase 2: a fixed 1,000 ev/s.
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut set = tokio::task::JoinSet::new();
    let paced_start = Instant::now();
    for i in 0..paced {
        tick.tick().await;
        set.spawn(send(format!("paced-{i}")));
    }
    while set.join_next().await.is_some() {}
    let paced_secs = paced_start.elapsed().as_secs_f64();
    let deadline = Instant::now() + Duration::from_secs(60);
    while arrivals
        .lock()
        .unwrap()
        .keys()
        .filter(|k| k.starts_with("paced-"))
        .count()
        < paced
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut latencies: Vec<Duration> = {
        let arrivals = arrivals.lock().unwrap();
        let sent = sent_at.lock().unwrap();
        arrivals
            .iter()
            .filter(|(k, _)| k.starts_with("paced-"))
            .filter_map(|(k, t)| sent.get(k).map(|s| t.saturating_duration_since(*s)))
            .collect()
    };
    latencies.sort();
    let rss = peak_rss_kib(pid);

    println!("full speed: {full} events, {accepted} accepted in {accept_secs:.2} s = {:.0} ev/s accepted; {delivered_full} delivered in {deliver_secs:.2} s = {:.0} ev/s delivered",
        accepted as f64 / accept_secs, delivered_full as f64 / deliver_secs);
    println!("paced: {paced} events at {:.0} ev/s offered; {} delivered; ingest→receiver latency p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms",
        paced as f64 / paced_secs, latencies.len(),
        percentile(&latencies, 0.50).as_secs_f64() * 1e3, percentile(&latencies, 0.95).as_secs_f64() * 1e3, percentile(&latencies, 0.99).as_secs_f64() * 1e3);
    println!("local-stack peak RSS: {:.1} MiB", rss as f64 / 1024.0);
    println!("targets: >= 5000 ev/s delivered, p99 <= 20 ms at 1000 ev/s, RSS <= 64 MiB");
    let _ = child.kill().await;
}
