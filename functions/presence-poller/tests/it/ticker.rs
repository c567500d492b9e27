//! The fixed-rate ticker in tokio's paused time (no network: an in-process Webex double), so a
//! whole minute runs instantly and deterministically.

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

/// Answers one page; the calls listed in `slow` take that long (virtual time).
struct Scripted {
    start: Instant,
    slow: Vec<(usize, Duration)>,
    calls: Mutex<Vec<Duration>>,
}

#[async_trait]
impl WebexClient for Scripted {
    async fn list_people(
        &self,
        _q: &[(String, String)],
        _n: Option<&str>,
    ) -> Result<PeoplePage, WebexApiError> {
        let n = {
            let mut calls = self.calls.lock().unwrap();
            calls.push(self.start.elapsed());
            calls.len() - 1
        };
        if let Some((_, d)) = self.slow.iter().find(|(i, _)| *i == n) {
            tokio::time::sleep(*d).await;
        }
        let person =
            serde_json::from_value(serde_json::json!({"id": "p1", "status": "active"})).unwrap();
        Ok(PeoplePage {
            items: vec![person],
            next: None,
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
    let start = Instant::now();
    let webex = Arc::new(Scripted {
        start,
        slow,
        calls: Mutex::new(Vec::new()),
    });
    let config = PollerConfig::new("org"); // 2 s interval, 5 s margin
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
