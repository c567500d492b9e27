//! A delivery job as the worker reads it from SQS (`serde_json::from_str`, worker.rs): whatever the
//! message, no panic; a job that parses re-serialises to a job equal to it (what the worker
//! re-queues for a retry, a deferral or the dead-letter queue is the same job).
#![no_main]

use libfuzzer_sys::fuzz_target;
use relay_shared::delivery::DeliveryJob;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(job) = serde_json::from_str::<DeliveryJob>(text) else {
        return;
    };
    let json = serde_json::to_string(&job).expect("a job serialises");
    let again: DeliveryJob = match serde_json::from_str(&json) {
        Ok(j) => j,
        Err(e) => panic!("re-queued job does not parse ({e}): {json}"),
    };
    assert_eq!(again, job, "round trip");
    assert_eq!(serde_json::to_string(&again).unwrap(), json, "stable bytes");
    // The ids keep their typed form through the text.
    assert_eq!(job.event_id.to_string().parse().ok(), Some(job.event_id));
    assert_eq!(
        job.subscription_id.to_string().parse().ok(),
        Some(job.subscription_id)
    );
});
