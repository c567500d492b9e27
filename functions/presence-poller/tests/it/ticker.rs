//! The fixed-rate ticker and the Webex call budget in tokio's paused time (no network: an
//! in-process Webex double), so a whole minute runs instantly and deterministically.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use presence_poller::{Poller, PollerConfig, RunOptions, RunStatus};
use relay_shared::adapters::memory::{memory_stores, MemoryQueue};
use relay_shared::clock::SystemClock;
use relay_shared::ports::{PeoplePage, WebexClient};
use relay_shared::webex_api::{
    RegistrationCreate, RegistrationUpdate, WebexApiError, WebexRegistration,
};
use tokio::time::Instant;

/// Answers listings of `pages` pages; the calls listed in `slow` take that long (virtual time),
/// those in `limited` answer 429 with that `Retry-After` (seconds).
struct Scripted {
    start: Instant,
    slow: Vec<(usize, Duration)>,
    pages: usize,
    limited: Vec<(usize, u64)>,
    calls: Mutex<Vec<Duration>>,
}

impl Scripted {
    fn new(start: Instant, slow: Vec<(usize, Duration)>) -> Self {
        Self {
            start,
            slow,
            pages: 1,
            limited: Vec::new(),
            calls: Mutex::new(Vec::new()),
        }
    }
}

#[async_trait]
impl WebexClient for Scripted {
    async fn list_people(
        &self,
        _q: &[(String, String)],
        next: Option<&str>,
    ) -> Result<PeoplePage, WebexApiError> {
        let n = {
            let mut calls = self.calls.lock().unwrap();
            calls.push(self.start.elapsed());
            calls.len() - 1
        };
        if let Some((_, d)) = self.slow.iter().find(|(i, _)| *i == n) {
            tokio::time::sleep(*d).await;
        }
        if let Some((_, secs)) = self.limited.iter().find(|(i, _)| *i == n) {
            return Err(WebexApiError::RateLimited {
                status: 429,
                retry_after_seconds: Some(*secs),
            });
        }
        // `next` is `page<k>-<call>`: unique, so the poller's repeated-Link guard stays quiet.
        let page: usize = next
            .and_then(|n| n.strip_prefix("page")?.split('-').next()?.parse().ok())
            .unwrap_or(0);
        let person = serde_json::from_value(
            serde_json::json!({"id": format!("p{page}"), "status": "active"}),
        )
        .unwrap();
        Ok(PeoplePage {
            items: vec![person],
            next: (page + 1 < self.pages).then(|| format!("page{}-{n}", page + 1)),
        })
    }
    async fn list_registrations(&self) -> Result<Vec<WebexRegistration>, WebexApiError> {
        unimplemented!()
    }
    async fn create_registration(
        &self,
        _r: &RegistrationCreate,
    ) -> Result<WebexRegistration, WebexApiError> {
        unimplemented!()
    }
    async fn update_registration(
        &self,
        _i: &str,
        _r: &RegistrationUpdate,
    ) -> Result<WebexRegistration, WebexApiError> {
        unimplemented!()
    }
    async fn get_registration(&self, _i: &str) -> Result<WebexRegistration, WebexApiError> {
        unimplemented!()
    }
    async fn delete_registration(&self, _i: &str) -> Result<(), WebexApiError> {
        unimplemented!()
    }
}

async fn run_minute(slow: Vec<(usize, Duration)>) -> (presence_poller::Summary, Vec<Duration>) {
    run_minute_with(Scripted::new(Instant::now(), slow)).await
}

/// A 60 s invocation with every default (2 s interval, 5 s margin, 60 Webex calls a minute).
async fn run_minute_with(webex: Scripted) -> (presence_poller::Summary, Vec<Duration>) {
    let start = webex.start;
    let webex = Arc::new(webex);
    let config = PollerConfig::new("org"); // 2 s interval, 5 s margin, 60 calls a minute
    let poller = Poller::new(
        &memory_stores(),
        webex.clone(),
        Arc::new(MemoryQueue::new(Duration::from_secs(30))),
        Arc::new(SystemClock),
        config,
    );
    // A 60 s invocation: stop 5 s before its end.
    let summary = poller
        .run(RunOptions::until(
            "inv",
            start + Duration::from_secs(60) - Duration::from_secs(5),
        ))
        .await;
    let calls = webex.calls.lock().unwrap().clone();
    (summary, calls)
}

#[tokio::test(start_paused = true)]
async fn one_cycle_every_two_seconds_until_the_deadline_minus_the_margin() {
    let (summary, calls) = run_minute(vec![]).await;
    assert_eq!(summary.status, RunStatus::Completed);
    assert_eq!(summary.cycles, 28, "ticks at 0, 2, …, 54 s");
    let expected: Vec<Duration> = (0..28).map(|i| Duration::from_secs(2 * i)).collect();
    assert_eq!(calls, expected);
}

#[tokio::test(start_paused = true)]
async fn a_slow_cycle_delays_the_ticker_instead_of_bursting() {
    // The first listing takes 7 s: the next cycles start at 7, 9, 11, … (no catch-up burst).
    let (summary, calls) = run_minute(vec![(0, Duration::from_secs(7))]).await;
    let mut expected = vec![Duration::ZERO];
    expected.extend((0..24).map(|i| Duration::from_secs(7 + 2 * i)));
    assert_eq!(calls, expected);
    assert_eq!(summary.cycles, 25);
    assert_eq!(summary.failed_cycles, 0);
}

#[tokio::test(start_paused = true)]
async fn a_listing_still_running_at_the_deadline_is_abandoned_not_diffed() {
    // The call at 54 s would end at 64 s, past the 55 s stop: that cycle fails, nothing is emitted.
    let (summary, calls) = run_minute(vec![(27, Duration::from_secs(10))]).await;
    assert_eq!(calls.len(), 28);
    assert_eq!(summary.cycles, 28);
    assert_eq!(summary.failed_cycles, 1);
    assert!(
        summary.errors[0].contains("deadline"),
        "{:?}",
        summary.errors
    );
    assert_eq!(summary.events, 0);
}

#[tokio::test(start_paused = true)]
async fn the_budget_spreads_a_listing_that_needs_more_calls_and_stretches_the_cycle() {
    // 3 pages a listing: 90 calls a minute at 2 s, over the default budget of 60. The calls go
    // one a second (never two closer), each cycle takes 3 s instead of 2.
    let mut webex = Scripted::new(Instant::now(), vec![]);
    webex.pages = 3;
    let (summary, calls) = run_minute_with(webex).await;
    let expected: Vec<Duration> = (0..55).map(Duration::from_secs).collect();
    assert_eq!(calls, expected, "one call a second, from 0 to 54 s");
    assert_eq!(summary.webex_calls, 55);
    // 18 complete listings (at 0, 3, …, 51 s); the 19th has no slot before the 55 s stop.
    assert_eq!(summary.cycles, 19);
    assert_eq!(summary.failed_cycles, 1);
    assert!(summary.errors[0].contains("budget"), "{:?}", summary.errors);
    assert_eq!(summary.people_seen, 3);
    assert!(summary.budget_wait_ms > 0, "{summary:?}");
}

#[tokio::test(start_paused = true)]
async fn a_listing_within_the_budget_keeps_the_two_second_cadence() {
    // 2 pages a listing: exactly 60 calls a minute, the default budget.
    let mut webex = Scripted::new(Instant::now(), vec![]);
    webex.pages = 2;
    let (summary, calls) = run_minute_with(webex).await;
    assert_eq!(summary.cycles, 28);
    // The last one, at 54 s, would take its second page at 55 s, the stop: abandoned.
    assert_eq!(summary.failed_cycles, 1);
    assert!(summary.errors[0].contains("budget"), "{:?}", summary.errors);
    let starts: Vec<Duration> = calls.iter().step_by(2).copied().collect();
    let expected: Vec<Duration> = (0..28).map(|i| Duration::from_secs(2 * i)).collect();
    assert_eq!(starts, expected, "a listing every 2 s");
    assert_eq!(
        calls[1],
        Duration::from_secs(1),
        "its second page a second later"
    );
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_honoured_on_top_of_the_budget() {
    // The second cycle's call answers 429 with Retry-After: 10: the retry comes 10 s later. The
    // ticker resumes from there without a burst of missed cycles: the one delayed tick fires at
    // once, and the budget moves its call a second after the retry.
    let mut webex = Scripted::new(Instant::now(), vec![]);
    webex.limited = vec![(1, 10)];
    let (summary, calls) = run_minute_with(webex).await;
    assert_eq!(&calls[..5], &[0, 2, 12, 13, 14].map(Duration::from_secs));
    assert_eq!(summary.failed_cycles, 0);
    assert_eq!(
        summary.cycles, 24,
        "ticks at 0, 2, 12 (called at 13), then 14, 16, …, 54 s"
    );
    assert_eq!(summary.webex_calls, 25);
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_beyond_the_deadline_pauses_polling_until_the_deadline() {
    // The second cycle's call (at 2 s) answers 429 with Retry-After: 60, past the 55 s stop: the
    // cycle fails at once (no waiting within it), and no call is made before Retry-After has
    // passed: every later tick (4, 6, …, 54 s) is skipped.
    let mut webex = Scripted::new(Instant::now(), vec![]);
    webex.limited = vec![(1, 60)];
    let (summary, calls) = run_minute_with(webex).await;
    assert_eq!(calls, [0, 2].map(Duration::from_secs));
    assert_eq!(summary.status, RunStatus::Completed);
    assert_eq!(summary.cycles, 2);
    assert_eq!(summary.failed_cycles, 1);
    assert_eq!(summary.skipped_ticks, 26, "{summary:?}");
    assert_eq!(summary.webex_calls, 2);
    assert_eq!(summary.webex_rate_limited, 1);
    assert_eq!(
        summary.cycle_durations_ms.len(),
        1,
        "the failed one untimed"
    );
    assert!(
        summary.errors[0].contains("rate limit"),
        "{:?}",
        summary.errors
    );
}
