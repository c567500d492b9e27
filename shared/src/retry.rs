//! The one backoff formula and the one `Retry-After` parser.
//!
//! Every short in-process retry (DynamoDB conflicts and unprocessed items, refused SQS batch
//! entries, Webex listing errors, presence cycles) waits `base × 2^attempt`, capped, optionally
//! jittered. The delivery worker's schedule is a table of delays, not a formula: it stays in the
//! worker (`delivery-worker/src/schedule.rs`) and only shares the `Retry-After` parser.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// Doublings stop here: `base × 2^16` is past any cap in use, and the shift cannot overflow.
const MAX_DOUBLINGS: u32 = 16;

/// How a delay is spread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jitter {
    /// Exactly the computed delay.
    None,
    /// Uniform over `[d, 2d]`: never shorter than the schedule, so contenders drift apart.
    UpToDouble,
}

/// `delay(attempt) = min(base × 2^attempt, cap)`, then jittered. `attempt` counts from 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
    pub jitter: Jitter,
}

impl Backoff {
    /// Doubling from `base` without a cap or jitter.
    pub const fn new(base: Duration) -> Self {
        Self {
            base,
            cap: Duration::MAX,
            jitter: Jitter::None,
        }
    }

    pub const fn capped(self, cap: Duration) -> Self {
        Self { cap, ..self }
    }

    pub const fn jittered(self, jitter: Jitter) -> Self {
        Self { jitter, ..self }
    }

    /// The un-jittered delay before retry `attempt` (0 = the first retry).
    pub fn base_delay(&self, attempt: u32) -> Duration {
        self.base
            .saturating_mul(1 << attempt.min(MAX_DOUBLINGS))
            .min(self.cap)
    }

    /// The delay with `sample` (in `[0, 1]`) standing for the random draw: tests pass their own.
    pub fn delay_with(&self, attempt: u32, sample: f64) -> Duration {
        let d = self.base_delay(attempt);
        match self.jitter {
            Jitter::None => d,
            Jitter::UpToDouble => d.saturating_add(d.mul_f64(sample.clamp(0.0, 1.0))),
        }
    }

    /// The delay before retry `attempt`, with a random draw for the jitter.
    pub fn delay(&self, attempt: u32) -> Duration {
        match self.jitter {
            Jitter::None => self.base_delay(attempt),
            _ => self.delay_with(attempt, rand::random::<f64>()),
        }
    }

    /// Sleeps for [`Backoff::delay`].
    pub async fn sleep(&self, attempt: u32) {
        tokio::time::sleep(self.delay(attempt)).await;
    }
}

/// `Retry-After: <delay-seconds>` or `Retry-After: <HTTP-date>` (RFC 9110 §10.2.3), as a wait
/// from `now`; a date in the past is no wait. `None` for anything else.
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = DateTime::parse_from_rfc2822(v).ok()?.with_timezone(&Utc);
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn doubles_up_to_the_cap() {
        let b = Backoff::new(10 * MS).capped(640 * MS);
        let got: Vec<_> = (0..9).map(|a| b.delay(a).as_millis()).collect();
        assert_eq!(got, [10, 20, 40, 80, 160, 320, 640, 640, 640]);
        let uncapped = Backoff::new(Duration::from_secs(1));
        assert_eq!(uncapped.delay(40), Duration::from_secs(1 << 16));
        assert_eq!(
            Backoff::new(Duration::MAX).delay(3),
            Duration::MAX,
            "saturates"
        );
    }

    #[test]
    fn jitter_spreads_over_up_to_double() {
        let b = Backoff::new(100 * MS).jittered(Jitter::UpToDouble);
        assert_eq!(b.delay_with(0, 0.0), 100 * MS);
        assert_eq!(b.delay_with(0, 0.5), 150 * MS);
        assert_eq!(b.delay_with(1, 1.0), 400 * MS);
        assert_eq!(b.delay_with(1, 7.0), 400 * MS, "sample clamped");
        for _ in 0..200 {
            let d = b.delay(2);
            assert!((400 * MS..=800 * MS).contains(&d), "{d:?}");
        }
    }

    #[test]
    fn parses_retry_after_forms() {
        let now = DateTime::parse_from_rfc3339("2015-10-21T07:27:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let p = |v| parse_retry_after(v, now);
        assert_eq!(p("120"), Some(Duration::from_secs(120)));
        assert_eq!(p(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(
            p("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::from_secs(60))
        );
        assert_eq!(p("Wed, 21 Oct 2015 07:00:00 GMT"), Some(Duration::ZERO));
        assert_eq!(p("soon"), None);
        assert_eq!(p("-1"), None);
    }
}
