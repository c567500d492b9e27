//! The retry schedule: how many attempts, the delay before each, jitter, and `Retry-After`.

use std::time::Duration;

use rand::Rng;

/// `delays[i]` is the wait before attempt `i + 1`, counted from the failure of attempt `i`
/// (`delays[0]` belongs to the first attempt, which runs as soon as the job is queued: it is
/// informational). The number of entries is the number of attempts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule {
    pub delays: Vec<u64>,
    /// Each delay is spread uniformly over ±`jitter_percent` % of itself.
    pub jitter_percent: u32,
}

impl Default for RetrySchedule {
    fn default() -> Self {
        Self {
            delays: vec![0, 60, 300, 1800, 7200],
            jitter_percent: 20,
        }
    }
}

impl RetrySchedule {
    pub fn new(delays: Vec<u64>, jitter_percent: u32) -> Self {
        assert!(
            !delays.is_empty(),
            "a retry schedule has at least one attempt"
        );
        Self {
            delays,
            jitter_percent: jitter_percent.min(100),
        }
    }

    /// `"0,60,300,1800,7200"`: comma-separated whole seconds, at least one.
    pub fn parse_delays(v: &str) -> Result<Vec<u64>, String> {
        let delays = v
            .split(',')
            .map(str::trim)
            .map(|s| {
                s.parse::<u64>()
                    .map_err(|_| format!("`{s}` is not a whole number of seconds"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if delays.is_empty() {
            return Err("expected at least one attempt".into());
        }
        if delays.len() > 50 {
            return Err("expected at most 50 attempts".into());
        }
        Ok(delays)
    }

    pub fn max_attempts(&self) -> u32 {
        self.delays.len() as u32
    }

    /// The scheduled (un-jittered) wait after attempt `failed_attempt` (1-based) failed, or `None`
    /// when that was the last attempt.
    pub fn base_delay_after(&self, failed_attempt: u32) -> Option<Duration> {
        self.delays
            .get(failed_attempt as usize)
            .map(|s| Duration::from_secs(*s))
    }

    /// The jittered wait after attempt `failed_attempt` failed, or `None` when it was the last.
    pub fn delay_after(&self, failed_attempt: u32) -> Option<Duration> {
        self.base_delay_after(failed_attempt)
            .map(|d| self.jitter(d))
    }

    /// `d` ± `jitter_percent` %, uniformly.
    pub fn jitter(&self, d: Duration) -> Duration {
        if self.jitter_percent == 0 || d.is_zero() {
            return d;
        }
        let spread = f64::from(self.jitter_percent) / 100.0;
        let factor = rand::rng().random_range((1.0 - spread)..=(1.0 + spread));
        Duration::from_secs_f64((d.as_secs_f64() * factor).max(0.0))
    }
}

/// A `Retry-After` on 429/503 is honoured within `[scheduled, 2 × scheduled]`: it can lengthen
/// the wait up to twice the schedule, never shorten it.
pub fn honour_retry_after(scheduled: Duration, retry_after: Option<Duration>) -> Duration {
    match retry_after {
        Some(ra) => ra.clamp(scheduled, scheduled * 2),
        None => scheduled,
    }
}

/// The one `Retry-After` parser (seconds or HTTP-date), shared with the Webex client.
pub use relay_shared::retry::parse_retry_after;

/// Whole seconds for SQS `DelaySeconds`: rounded up, capped at 15 minutes.
pub fn sqs_delay_seconds(d: Duration) -> u32 {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    secs.min(900) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_schedule_is_five_attempts() {
        let s = RetrySchedule::default();
        assert_eq!(s.max_attempts(), 5);
        assert_eq!(s.base_delay_after(1), Some(Duration::from_secs(60)));
        assert_eq!(s.base_delay_after(4), Some(Duration::from_secs(7200)));
        assert_eq!(s.base_delay_after(5), None);
    }

    #[test]
    fn jitter_stays_within_bounds() {
        let s = RetrySchedule::new(vec![0, 100], 20);
        for _ in 0..1000 {
            let d = s.delay_after(1).unwrap().as_secs_f64();
            assert!((80.0..=120.0).contains(&d), "{d}");
        }
        assert_eq!(s.delay_after(0), Some(Duration::ZERO));
        let none = RetrySchedule::new(vec![0, 100], 0);
        assert_eq!(none.delay_after(1), Some(Duration::from_secs(100)));
    }

    #[test]
    fn retry_after_is_clamped() {
        let s = Duration::from_secs(60);
        assert_eq!(honour_retry_after(s, None), s);
        assert_eq!(honour_retry_after(s, Some(Duration::from_secs(5))), s);
        assert_eq!(
            honour_retry_after(s, Some(Duration::from_secs(90))),
            Duration::from_secs(90)
        );
        assert_eq!(
            honour_retry_after(s, Some(Duration::from_secs(3600))),
            Duration::from_secs(120)
        );
    }

    #[test]
    fn sqs_delay_rounds_up_and_caps() {
        assert_eq!(sqs_delay_seconds(Duration::ZERO), 0);
        assert_eq!(sqs_delay_seconds(Duration::from_millis(1)), 1);
        assert_eq!(sqs_delay_seconds(Duration::from_secs(60)), 60);
        assert_eq!(sqs_delay_seconds(Duration::from_secs(7200)), 900);
    }

    #[test]
    fn parse_rejects_garbage() {
        assert_eq!(
            RetrySchedule::parse_delays("0,60, 300").unwrap(),
            vec![0, 60, 300]
        );
        assert!(RetrySchedule::parse_delays("0,-1").is_err());
        assert!(RetrySchedule::parse_delays("").is_err());
    }
}
