//! The run's root span (`presence_poller::invocation_span`, the one function the Lambda main and
//! the local stack's presence loop both instrument a run with; docs/observability.md, "Tracing"):
//! the run's log lines carry its trace and request ids, and the jobs it queues its trace context.

use relay_shared::ports::QueueConsumer;
use tracing::Instrument;

use crate::common::*;

#[tokio::test]
async fn a_run_in_its_invocation_span_logs_its_ids_and_queues_its_trace() {
    let logs = testkit::logs::capture();
    let mut served = people(3, "active");
    let rig = Rig::new(served.clone(), fast_config()).await;
    rig.subscribe().await;
    run_cycles(&rig.poller, "inv-0", 1).await;
    for job in rig.queue.receive(10, 0).await.unwrap() {
        rig.queue.ack(&job.receipt).await.unwrap();
    }

    set_status(&mut served, 1, "inactive");
    rig.fake.set_people(served);
    let summary = run_cycles(&rig.poller, "inv-1", 1)
        .instrument(presence_poller::invocation_span(Some("req-9")))
        .await;
    assert_eq!(summary.changes, 1, "{summary:?}");
    let line = logs
        .with_message("presence poller finished")
        .pop()
        .expect("the run's summary line");
    let trace_id = line["traceId"]
        .as_str()
        .unwrap_or_else(|| panic!("a traceId on the run's line: {line}"));
    assert_eq!(line["requestId"], "req-9", "{line}");
    let jobs = rig.queue.receive(10, 0).await.unwrap();
    assert_eq!(jobs.len(), 2, "one per subscriber");
    for job in jobs {
        let tp = job.trace.traceparent.expect("the run's trace context");
        assert!(tp.starts_with(&format!("00-{trace_id}-")), "{tp}");
    }
}
