//! Fan-out: which subscriptions of the org get a job for one outbound event (the ingest's step 8,
//! the presence poller's emit, docs/telephony-ingest.md). Payload filters (`crate::filters`) are
//! applied here, for every event type, so a filtered-out event costs no queue
//! message; the body is parsed once per event, only when a subscriber has a filter, and only
//! into what the filters look at (`filters::pruned_document`).

use std::cell::OnceCell;

use serde_json::Value;

use crate::delivery::{CallPosition, DeliveryJob};
use crate::events::OutboundEvent;
use crate::filters;
use crate::ports::QueuedJob;
use crate::subscription::Subscription;

/// One job per subscription of `org_id` that wants the event's type and whose filter it passes,
/// with the event's place in its call (`call`: the per-call sequence, and the message group of a
/// per-call-ordered webhook, docs/ordering.md).
pub fn jobs_for(
    subs: &[Subscription],
    org_id: &str,
    event: &OutboundEvent,
    call: Option<CallPosition<'_>>,
) -> Vec<QueuedJob> {
    let wanted: Vec<&Subscription> = subs
        .iter()
        .filter(|s| s.org_id == org_id && s.wants(event.event_type))
        .collect();
    // Parsed once, for all the filters of this event's subscribers, keeping only what they look at.
    let doc: OnceCell<Value> = OnceCell::new();
    let doc = || {
        doc.get_or_init(|| {
            let filters = wanted.iter().filter_map(|s| s.filter.as_ref());
            filters::pruned_document(event.event_type, &event.body, filters)
        })
    };
    wanted
        .iter()
        .filter(|s| s.filter.as_ref().is_none_or(|f| f.matches(doc())))
        .map(|s| QueuedJob::now(DeliveryJob::for_subscriber(event, s, call)))
        .collect()
}
