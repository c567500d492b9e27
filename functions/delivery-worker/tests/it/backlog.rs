//! Draining a rate-limited backlog costs O(B) queue sends, not O(B²): each deferred job gets its
//! own future slot and comes back once, at it (docs/delivery-worker.md, "Rate limit"). Counted,
//! not timed: a simulated queue hands each sent job back at `now + DelaySeconds` on a manual clock.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use relay_shared::adapters::memory::{memory_stores_at, MemoryQueue};
use relay_shared::clock::ManualClock;
use relay_shared::error::QueueError;
use relay_shared::events::EventType;
use relay_shared::ports::{Clock, DeliveryQueue, QueuedJob, RateWindow};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::common::*;
use delivery_worker::DeliveryOutcome;

/// Records every send: the job's body and when it becomes visible.
struct CountingQueue {
    clock: Arc<ManualClock>,
    sent: Mutex<Vec<(DateTime<Utc>, String)>>,
}

#[async_trait]
impl DeliveryQueue for CountingQueue {
    async fn send(&self, jobs: &[QueuedJob]) -> Result<(), QueueError> {
        let now = self.clock.now();
        let mut sent = self.sent.lock().unwrap();
        for j in jobs {
            let visible = now + chrono::Duration::seconds(i64::from(j.delay_seconds));
            sent.push((visible, serde_json::to_string(&j.job).unwrap()));
        }
        Ok(())
    }
}

#[tokio::test]
async fn a_rate_limited_backlog_is_re_sent_once_per_job() {
    const B: usize = 120;
    const LIMIT: u32 = 10;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let clock = Arc::new(ManualClock::new(at("2026-11-23T12:00:30Z")));
    let queue = Arc::new(CountingQueue {
        clock: clock.clone(),
        sent: Mutex::new(Vec::new()),
    });
    let unused = Arc::new(MemoryQueue::new(std::time::Duration::from_secs(30)));
    let config = test_config(5);
    let h = Harness::with_queues(
        config.clone(),
        sender(&config),
        clock.clone(),
        memory_stores_at(clock.clone()),
        unused.clone(),
        queue.clone(),
        unused.clone(),
        unused,
    );
    let mut sub = subscription(&format!("{}/hook", server.uri()));
    sub.rate_limit_per_minute = LIMIT;
    h.add(&sub).await;

    // B jobs arrive at once (a replay); then every re-sent job comes back when it is visible.
    let mut pending: BTreeMap<(DateTime<Utc>, usize), String> = (0..B)
        .map(|i| {
            (
                (clock.now(), i),
                raw(&job_for(&sub, EventType::TelephonyCreated)),
            )
        })
        .collect();
    let mut seen = 0;
    let mut delivered_at = Vec::new();
    let mut receives = 0;
    while let Some(((visible, _), body)) = pending.pop_first() {
        receives += 1;
        assert!(receives < 20 * B, "the backlog does not drain");
        if visible > clock.now() {
            clock.set(visible);
        }
        match h.worker.process_message(&body, 1).await {
            DeliveryOutcome::Delivered { .. } => delivered_at.push(clock.now()),
            DeliveryOutcome::Deferred { .. } => {}
            other => panic!("{other:?}"),
        }
        let sent = queue.sent.lock().unwrap();
        for (i, (visible, body)) in sent.iter().enumerate().skip(seen) {
            pending.insert((*visible, B + i), body.clone());
        }
        seen = sent.len();
    }
    let sends = queue.sent.lock().unwrap().len();
    assert_eq!(delivered_at.len(), B);
    // The first window's LIMIT go out at once; every other job is deferred once, to its slot.
    assert_eq!(
        sends,
        B - LIMIT as usize,
        "queue sends for a backlog of {B}"
    );
    assert_eq!(receives, 2 * B - LIMIT as usize);
    // ... and the limit holds in every window.
    let mut per_window = BTreeMap::new();
    for t in &delivered_at {
        *per_window
            .entry(RateWindow::containing(*t, LIMIT).start)
            .or_insert(0u32) += 1;
    }
    assert!(per_window.values().all(|n| *n <= LIMIT), "{per_window:?}");
    assert_eq!(per_window.len(), B / LIMIT as usize);
}
