//! Step 8's selection: which subscriptions of the org get a job for one outbound event. Payload
//! filters (`relay_shared::filters`) are applied here, so a filtered-out event costs no queue
//! message; the body is parsed once per event, and only when a subscriber has a filter.

use std::cell::OnceCell;

use serde_json::Value;

use relay_shared::delivery::{CallPosition, DeliveryJob};
use relay_shared::events::OutboundEvent;
use relay_shared::filters;
use relay_shared::ports::QueuedJob;
use relay_shared::subscription::Subscription;

/// One job per subscription of `org_id` that wants the event's type and whose filter it passes,
/// with the event's place in its call (`call`: the per-call sequence, and the message group of a
/// per-call-ordered webhook, docs/ordering.md).
pub fn jobs_for(
    subs: &[Subscription],
    org_id: &str,
    event: &OutboundEvent,
    call: Option<CallPosition<'_>>,
) -> Vec<QueuedJob> {
    let doc: OnceCell<Value> = OnceCell::new();
    subs.iter()
        .filter(|s| s.org_id == org_id && s.wants(event.event_type))
        .filter(|s| {
            s.filter.as_ref().is_none_or(|f| {
                // The body is JSON the ingest built itself; `Null` would only fail the filter.
                let body =
                    doc.get_or_init(|| serde_json::from_str(&event.body).unwrap_or(Value::Null));
                f.matches(filters::document(event.event_type, body))
            })
        })
        .map(|s| QueuedJob::now(DeliveryJob::for_subscriber(event, s, call)))
        .collect()
}
