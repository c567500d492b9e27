//! The token's budget of Webex calls (`PRESENCE_WEBEX_CALLS_PER_MINUTE`).
//!
//! Webex publishes no number for `GET /v1/people`, only that polling it often "will quickly lead
//! to `429` errors and throttling". So the poller never bursts: consecutive calls are at least
//! *a minute / budget* apart. A listing of more pages than the cadence allows is spread out and
//! the next cycle starts later (the ticker delays, it does not catch up) — the cycle stretches
//! instead of the token running into 429s. `Retry-After` is honoured on top of this
//! (`fetch.rs`). The budget lives as long as the `Poller` (one per cold start, so across warm
//! invocations too) and counts every `list_people` call, retries included.
//!
//! Time is tokio's (`tokio::time::Instant`, `sleep`), the poller's one sleeper: tests run it in
//! paused time, deterministically.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug)]
pub struct CallBudget {
    per_minute: u32,
    spacing: Duration,
    /// The earliest instant of the next call (`None`: no call yet).
    next: Mutex<Option<Instant>>,
}

impl CallBudget {
    pub fn per_minute(calls: u32) -> Self {
        let calls = calls.max(1);
        Self {
            per_minute: calls,
            spacing: Duration::from_secs(60) / calls,
            next: Mutex::new(None),
        }
    }

    pub fn calls_per_minute(&self) -> u32 {
        self.per_minute
    }

    /// The least time between two calls.
    pub fn spacing(&self) -> Duration {
        self.spacing
    }

    /// Reserves the next call slot: how long to wait from `now` before calling. `None` when that
    /// slot is at or after `stop_at` (nothing is reserved then).
    pub fn reserve(&self, now: Instant, stop_at: Instant) -> Option<Duration> {
        let mut next = self
            .next
            .lock()
            .expect("the budget's lock is never poisoned");
        let at = next.map_or(now, |n| n.max(now));
        if at >= stop_at {
            return None;
        }
        *next = Some(at + self.spacing);
        Some(at - now)
    }

    /// Waits for the next call slot (see [`CallBudget::reserve`]); returns the time waited.
    pub async fn acquire(&self, stop_at: Instant) -> Option<Duration> {
        let wait = self.reserve(Instant::now(), stop_at)?;
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        Some(wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_spaced_a_minute_over_the_budget_apart() {
        let b = CallBudget::per_minute(60);
        assert_eq!(b.spacing(), Duration::from_secs(1));
        let t0 = Instant::now();
        let far = t0 + Duration::from_secs(3600);
        let s = Duration::from_secs;
        // A 3-page listing at t0: the pages go at 0, 1 and 2 s.
        assert_eq!(b.reserve(t0, far), Some(s(0)));
        assert_eq!(b.reserve(t0, far), Some(s(1)));
        assert_eq!(b.reserve(t0 + s(1), far), Some(s(1)));
        // The next cycle, due at 2 s, waits for the slot at 3 s.
        assert_eq!(b.reserve(t0 + s(2), far), Some(s(1)));
        // An idle budget does not save up a burst.
        assert_eq!(b.reserve(t0 + s(60), far), Some(s(0)));
        assert_eq!(b.reserve(t0 + s(60), far), Some(s(1)));
    }

    #[test]
    fn a_slot_past_the_stop_is_refused_and_not_reserved() {
        let b = CallBudget::per_minute(30);
        let t0 = Instant::now();
        let stop = t0 + Duration::from_secs(2);
        assert_eq!(b.reserve(t0, stop), Some(Duration::ZERO));
        assert_eq!(b.reserve(t0, stop), None, "the next slot is at 2 s");
        assert_eq!(
            b.reserve(t0, stop + Duration::from_secs(60)),
            Some(Duration::from_secs(2)),
            "still free"
        );
    }
}
