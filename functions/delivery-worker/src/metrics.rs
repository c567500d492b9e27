//! The worker's CloudWatch metrics, written as EMF lines by `relay_shared::metrics::Emf`.

use std::sync::Mutex;

use relay_shared::metrics::{Emf, Unit};
use serde_json::Value;

pub const FUNCTION: &str = "delivery-worker";

/// The counters the worker emits, named by their variant (`Delivered`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr)]
pub enum Metric {
    /// A 2xx from the receiver.
    Delivered,
    /// An attempt that failed (any non-2xx, timeout, connection error, refused target).
    Failed,
    /// A failed job re-queued for its next attempt.
    Retried,
    /// A job parked in the dead-letter queue.
    DeadLettered,
    /// A job re-queued without an attempt (rate limit, or received before its `not_before`).
    Deferred,
    /// A job left on the queue because the key service could not open its signing secret
    /// (throttled, unreachable); it comes back after the visibility timeout.
    SecretUnavailable,
    /// A webhook went from healthy to failing (once per transition; the template's
    /// `WebhookFailingAlarm` watches it).
    WebhookFailing,
    /// An enabled webhook was disabled by the worker (410 Gone, or the auto-disable policy).
    WebhookDisabled,
    /// A duplicate copy of a job met its attempt's claim (the attempt made, or being made, by
    /// another copy): dropped or left for later, its rate-limit token given back.
    DuplicateCopy,
}

impl Metric {
    pub fn name(self) -> &'static str {
        self.into()
    }
}

/// Where the lines go.
#[derive(Debug, Default)]
pub enum MetricsSink {
    /// Lambda: stdout lines are CloudWatch Logs lines.
    #[default]
    Stdout,
    /// Tests: kept in memory.
    Memory(Mutex<Vec<String>>),
    /// Nowhere.
    Off,
}

impl MetricsSink {
    pub fn memory() -> Self {
        Self::Memory(Mutex::new(Vec::new()))
    }

    /// One EMF document: `count` of `metric` (with the attempt latency when there was one).
    pub fn emit(
        &self,
        metric: Metric,
        latency_ms: Option<u64>,
        subscription_id: &str,
        now_ms: i64,
    ) {
        if matches!(self, MetricsSink::Off) {
            return;
        }
        let line = emf_line(metric, latency_ms, subscription_id, now_ms);
        match self {
            MetricsSink::Stdout => println!("{line}"),
            MetricsSink::Memory(lines) => lines.lock().unwrap().push(line),
            MetricsSink::Off => {}
        }
    }

    /// The lines kept by a `Memory` sink.
    pub fn lines(&self) -> Vec<String> {
        match self {
            MetricsSink::Memory(lines) => lines.lock().unwrap().clone(),
            _ => Vec::new(),
        }
    }

    /// How many times `metric` was emitted (memory sink).
    pub fn count(&self, metric: Metric) -> usize {
        self.lines()
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v.get(metric.name()).is_some())
            .count()
    }
}

/// The EMF document: `1` of `metric`, the attempt latency when there was one, and the
/// subscription id as a property (a dimension per subscription would be a cardinality bomb).
pub fn emf_line(
    metric: Metric,
    latency_ms: Option<u64>,
    subscription_id: &str,
    now_ms: i64,
) -> String {
    let mut doc = Emf::new(FUNCTION).metric(metric.name(), Unit::Count, 1);
    if let Some(ms) = latency_ms {
        doc = doc.metric("DeliveryLatency", Unit::Milliseconds, ms);
    }
    doc.property("subscriptionId", subscription_id).line(now_ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use relay_shared::metrics::NAMESPACE;

    #[test]
    fn emf_document_shape() {
        let line = emf_line(Metric::Delivered, Some(42), "wh_x", 1_700_000_000_000);
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["Delivered"], 1);
        assert_eq!(v["DeliveryLatency"], 42);
        assert_eq!(v["Function"], "delivery-worker");
        let m = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(m["Namespace"], NAMESPACE);
        assert_eq!(m["Dimensions"][0][0], "Function");
        assert_eq!(m["Metrics"][1]["Unit"], "Milliseconds");
        assert!(!line.contains('\n'));
        let sink = MetricsSink::memory();
        sink.emit(Metric::Retried, None, "wh_x", 0);
        assert_eq!(sink.count(Metric::Retried), 1);
        assert_eq!(sink.count(Metric::Delivered), 0);
    }
}
