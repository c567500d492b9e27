//! The Lambda handler: any JSON input (EventBridge Scheduler's raw `Input`, `{}`, or the classic
//! scheduled-event envelope), the deadline from the context, a JSON summary back.

use lambda_runtime::{Context, LambdaEvent};
use relay_shared::metrics::{Emf, Unit};
use serde_json::Value;

use crate::health::{HealthCheck, HealthOutcome};
use crate::{Poller, RunOptions, Summary};
use relay_shared::webex_registrations::Finding;

/// What triggered the invocation (for the logs only: every input polls the same way).
pub fn trigger_of(payload: &Value) -> &'static str {
    let envelope =
        serde_json::from_value::<aws_lambda_events::eventbridge::EventBridgeEvent>(payload.clone());
    match envelope {
        Ok(e) if e.detail_type == "Scheduled Event" => "scheduled-event",
        Ok(_) => "eventbridge-event",
        Err(_) if payload.is_object() => "scheduler-input",
        Err(_) => "other",
    }
}

/// The run options of an invocation: holder = request id, stop = deadline − safety margin.
pub fn run_options(poller: &Poller, ctx: &Context) -> RunOptions {
    let holder = if ctx.request_id.is_empty() {
        format!("local-{}", std::process::id())
    } else {
        ctx.request_id.clone()
    };
    RunOptions::for_deadline(
        holder,
        ctx.deadline,
        poller.config().safety_margin,
        poller.config().max_run,
    )
}

pub async fn handle(
    poller: &Poller,
    event: LambdaEvent<Value>,
) -> Result<Summary, lambda_runtime::Error> {
    handle_with_health(poller, None, event).await
}

/// [`handle`], with the Webex-side health check (`health`) beside the polling loop when it is
/// due: concurrently, so the first cycle is not delayed.
pub async fn handle_with_health(
    poller: &Poller,
    health: Option<&HealthCheck>,
    event: LambdaEvent<Value>,
) -> Result<Summary, lambda_runtime::Error> {
    let (payload, ctx) = event.into_parts();
    tracing::info!(trigger = trigger_of(&payload), request_id = %ctx.request_id, deadline_ms = ctx.deadline, "presence poller invoked");
    let options = run_options(poller, &ctx);
    let checked = health_until(health, &options.holder, options.stop_at);
    let (summary, checked) = tokio::join!(poller.run(options.clone()), checked);
    let now_ms = chrono::Utc::now().timestamp_millis();
    if let Some(outcome) = checked {
        println!("{}", outcome.emf_line(now_ms));
    }
    for line in emf_lines(&summary, now_ms) {
        println!("{line}");
    }
    Ok(summary)
}

/// The health check if it is due, bounded by the invocation's `stop_at` like the polling loop: a
/// check still running then is a failed check (`CheckFailed`), not an invocation timing out.
pub async fn health_until(
    health: Option<&HealthCheck>,
    holder: &str,
    stop_at: tokio::time::Instant,
) -> Option<HealthOutcome> {
    let h = health?;
    tokio::time::timeout_at(stop_at, h.run_if_due(holder))
        .await
        .unwrap_or_else(|_| {
            let out = HealthOutcome {
                findings: vec![Finding::CheckFailed],
                report: None,
                error: Some(
                    "the health check did not finish before the invocation's deadline".into(),
                ),
            };
            h.log(&out);
            Some(out)
        })
}

/// The most values one EMF metric may carry in one document (the EMF specification's limit).
const MAX_EMF_VALUES: usize = 100;

/// The invocation's CloudWatch embedded-metric-format lines (`relay_shared::metrics`): the
/// counters ([`emf_line`]), then `PresenceCycleTime` with one value per completed cycle (in
/// documents of at most 100 values; none when no cycle completed, so the stalled-loop alarm sees
/// missing data).
pub fn emf_lines(s: &Summary, now_ms: i64) -> Vec<String> {
    let mut lines = vec![emf_line(s, now_ms)];
    lines.extend(s.cycle_durations_ms.chunks(MAX_EMF_VALUES).map(|chunk| {
        Emf::new("presence-poller")
            .metric("PresenceCycleTime", Unit::Milliseconds, chunk.to_vec())
            .property("orgId", s.org_id.as_str())
            .line(now_ms)
    }));
    lines
}

/// One CloudWatch embedded-metric-format line (`relay_shared::metrics`) with the invocation's
/// counters and the org id as a property.
pub fn emf_line(s: &Summary, now_ms: i64) -> String {
    let skipped = if s.status == crate::RunStatus::Skipped {
        1.0
    } else {
        0.0
    };
    let metrics = [
        ("PresenceCycles", f64::from(s.cycles)),
        ("PresenceFailedCycles", f64::from(s.failed_cycles)),
        ("PresenceChanges", s.changes as f64),
        ("PresenceEvents", s.events as f64),
        ("PresenceJobs", s.jobs as f64),
        ("PresenceWebexCalls", f64::from(s.webex_calls)),
        ("WebexRateLimited", f64::from(s.webex_rate_limited)),
        ("PresenceSkippedInvocations", skipped),
    ];
    metrics
        .into_iter()
        .fold(Emf::new("presence-poller"), |doc, (name, value)| {
            doc.metric(name, Unit::Count, value)
        })
        .property("orgId", s.org_id.as_str())
        .line(now_ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn triggers() {
        let classic = json!({
            "version": "0", "id": "x", "detail-type": "Scheduled Event", "source": "aws.events",
            "account": "123456789012", "time": "2026-11-23T12:00:00Z", "region": "eu-west-1",
            "resources": ["arn:aws:events:eu-west-1:123456789012:rule/presence"], "detail": {}
        });
        assert_eq!(trigger_of(&classic), "scheduled-event");
        assert_eq!(trigger_of(&json!({})), "scheduler-input");
        assert_eq!(
            trigger_of(&json!({"source": "webex-relay.scheduler"})),
            "scheduler-input"
        );
        assert_eq!(trigger_of(&json!("ping")), "other");
        assert_eq!(trigger_of(&Value::Null), "other");
    }

    #[test]
    fn deadlines() {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let left = |o: RunOptions| {
            o.stop_at
                .saturating_duration_since(tokio::time::Instant::now())
        };
        let margin = std::time::Duration::from_secs(5);
        let o = RunOptions::for_deadline("h", now_ms + 60_000, margin, None);
        assert!(
            left(o) <= std::time::Duration::from_secs(55)
                && left(RunOptions::for_deadline("h", now_ms + 60_000, margin, None))
                    > std::time::Duration::from_secs(50)
        );
        let capped = RunOptions::for_deadline(
            "h",
            now_ms + 60_000,
            margin,
            Some(std::time::Duration::from_secs(3)),
        );
        assert!(left(capped) <= std::time::Duration::from_secs(3));
        // cargo lambda's emulator sends the timeout itself.
        let relative = RunOptions::for_deadline("h", 600_000, margin, None);
        assert!(left(relative) > std::time::Duration::from_secs(590));
        assert!(left(RunOptions::for_deadline("h", now_ms - 1, margin, None)).is_zero());
    }

    #[test]
    fn emf_line_shape() {
        let summary: Summary = serde_json::from_value(json!({
            "status": "completed", "orgId": "o", "holder": "h", "cycles": 28, "failedCycles": 1,
            "skippedTicks": 0, "peopleSeen": 5, "changes": 3, "baselineRecorded": 0, "events": 2,
            "jobs": 4, "webexCalls": 29, "stateLoads": 1, "stateRecordsWritten": 3, "errorCount": 1,
            "errors": ["x"], "durationMs": 1
        }))
        .unwrap();
        let v: Value = serde_json::from_str(&emf_line(&summary, 1_700_000_000_000)).unwrap();
        assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Namespace"], "WebexRelay");
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                .as_array()
                .unwrap()
                .len(),
            8
        );
        assert_eq!(v["Function"], "presence-poller");
        assert_eq!(v["PresenceCycles"], 28.0);
        assert_eq!(v["PresenceChanges"], 3.0);
        assert_eq!(v["PresenceSkippedInvocations"], 0.0);
        assert_eq!(v["WebexRateLimited"], 0.0);
        assert_eq!(
            emf_lines(&summary, 0).len(),
            1,
            "no completed cycle: no cycle time"
        );
    }

    #[test]
    fn cycle_times_in_documents_of_at_most_100_values() {
        let mut summary: Summary = serde_json::from_value(json!({
            "status": "completed", "orgId": "o", "holder": "h", "cycles": 0, "failedCycles": 0,
            "skippedTicks": 0, "peopleSeen": 0, "changes": 0, "baselineRecorded": 0, "events": 0,
            "jobs": 0, "webexCalls": 0, "stateLoads": 0, "stateRecordsWritten": 0, "errorCount": 0,
            "errors": [], "durationMs": 1
        }))
        .unwrap();
        summary.cycle_durations_ms = (0..150).collect();
        let lines = emf_lines(&summary, 5);
        assert_eq!(lines.len(), 3);
        let doc = |i: usize| serde_json::from_str::<Value>(&lines[i]).unwrap();
        assert_eq!(doc(1)["PresenceCycleTime"].as_array().unwrap().len(), 100);
        assert_eq!(doc(2)["PresenceCycleTime"].as_array().unwrap().len(), 50);
        assert_eq!(doc(2)["PresenceCycleTime"][49], 149);
        let m = &doc(1)["_aws"]["CloudWatchMetrics"][0]["Metrics"][0];
        assert_eq!(
            m,
            &json!({"Name": "PresenceCycleTime", "Unit": "Milliseconds"})
        );
        assert!(
            !serde_json::to_string(&summary)
                .unwrap()
                .contains("cycleDurations"),
            "not in the JSON summary"
        );
    }
}
