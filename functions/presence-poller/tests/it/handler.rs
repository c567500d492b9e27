//! The Lambda handler: any JSON input, deadline from the context, JSON summary out.

use std::time::Duration;

use crate::common::*;
use lambda_runtime::{Context, LambdaEvent};
use presence_poller::{handler, RunStatus};
use serde_json::{json, Value};

fn context(request_id: &str, in_ms: u64) -> Context {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let mut ctx = Context::default();
    ctx.request_id = request_id.into();
    ctx.deadline = now + in_ms;
    ctx
}

#[tokio::test]
async fn every_trigger_shape_polls_until_the_deadline_minus_the_margin() {
    let mut config = fast_config();
    config.safety_margin = Duration::from_millis(100);
    let rig = Rig::new(people(12, "active"), config).await;
    let inputs: Vec<Value> = vec![
        serde_json::from_str(include_str!("../../../../events/presence-scheduler.json")).unwrap(),
        serde_json::from_str(include_str!(
            "../../../../events/presence-scheduled-event.json"
        ))
        .unwrap(),
        json!({}),
        Value::Null,
    ];
    for (i, input) in inputs.into_iter().enumerate() {
        let id = format!("req-{i}");
        let summary = handler::handle(&rig.poller, LambdaEvent::new(input, context(&id, 400)))
            .await
            .unwrap();
        assert_eq!(summary.status, RunStatus::Completed, "{summary:?}");
        assert_eq!(summary.holder, id);
        assert!(summary.cycles >= 1, "{summary:?}");
        // Only a listing cut off by the deadline may fail (it is abandoned, never diffed).
        assert!(summary.failed_cycles <= 1, "{summary:?}");
        assert!(
            summary.errors.iter().all(|e| e.contains("deadline")),
            "{summary:?}"
        );
        assert_eq!(summary.people_seen, 12);
    }
}

#[tokio::test]
async fn a_deadline_inside_the_safety_margin_skips() {
    let mut config = fast_config();
    config.safety_margin = Duration::from_secs(5);
    let rig = Rig::new(people(1, "active"), config).await;
    let summary = handler::handle(
        &rig.poller,
        LambdaEvent::new(json!({}), context("r", 2_000)),
    )
    .await
    .unwrap();
    assert_eq!(summary.status, RunStatus::Skipped);
    assert_eq!(rig.fake.requests(), 0);
    let out = serde_json::to_value(&summary).unwrap();
    assert_eq!(out["status"], "skipped");
}
