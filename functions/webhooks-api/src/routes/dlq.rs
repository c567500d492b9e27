//! `GET /api/hooks/dlq` (admin): the dead-letter queue's depth. `POST /api/hooks/dlq/redrive` (admin): moves the caller's org's dead-lettered jobs back to the
//! delivery queue. The operator-wide redrive (every org) is `relay-keys redrive-dlq`, a CLI that
//! needs AWS credentials for the queues rather than an API key (docs/webhooks-api.md).
//!
//! Portable receive-and-resend through the ports: each job is re-sent with a fresh schedule
//! (`attempts`, `notBefore` and `deadLetterReason` reset) and only then deleted from the
//! dead-letter queue, so a crash in between can duplicate a job but never lose one (receivers
//! dedupe on the stable `webhook-id`). On AWS, SQS's own redrive (console or
//! `StartMessageMoveTask`) also works; it keeps the jobs' attempt history.

use axum::extract::State;
use axum::Json;
use relay_shared::delivery::DeliveryJob;
use relay_shared::error::QueueError;
use relay_shared::ports::{DeliveryQueue, QueueConsumer, QueuedJob};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::OptionalJson;
use crate::model::{DlqDepth, RedriveRequest, RedriveResponse};
use crate::state::AppState;

pub const DEFAULT_REDRIVE_LIMIT: u32 = 100;

/// Whose dead-lettered jobs a redrive moves.
#[derive(Debug, Clone, Copy)]
pub enum RedriveScope<'a> {
    /// One tenant's (the API: the caller's org).
    Org(&'a str),
    /// Every org's (the operator CLI only).
    All,
}

pub async fn redrive(
    State(state): State<AppState>,
    caller: Caller,
    OptionalJson(req): OptionalJson<RedriveRequest>,
) -> ApiResult<Json<RedriveResponse>> {
    caller.require_admin()?;
    let max = state.config.redrive_max_per_call;
    let limit = req.limit.unwrap_or(DEFAULT_REDRIVE_LIMIT.min(max));
    if limit == 0 || limit > max {
        return Err(ApiError::invalid(
            "limit",
            format!("`limit` must be between 1 and {max}."),
        ));
    }
    // The dead-letter queue is shared by every org: other orgs' jobs are looked at (and left
    // alone), so the scan may go beyond `limit`, up to the per-call maximum.
    let r = redrive_jobs(
        state.dead_letter_source.as_ref(),
        state.queue.as_ref(),
        RedriveScope::Org(&caller.org_id),
        limit,
        max,
    )
    .await?;
    tracing::info!(moved = r.moved, skipped = r.skipped, user_id = %caller.user_id,
        org_id = %caller.org_id, "dead-letter queue redriven for one org");
    Ok(Json(r))
}

/// `GET /api/hooks/dlq` (admin): about how many messages the dead-letter queue that redrive
/// reads holds (visible, in flight and delayed; every org's, the queue is shared, so only the
/// count is shown).
pub async fn depth(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<DlqDepth>> {
    caller.require_admin()?;
    let approximate_messages = state.dead_letter_source.depth().await?;
    Ok(Json(DlqDepth {
        approximate_messages,
    }))
}

/// Moves up to `limit` jobs of `scope` from `source` (the dead-letter queue) to `queue`, looking
/// at no more than `scan` messages. Other orgs' jobs are held while the call runs (so they are not
/// received twice) and released at its end; messages that are not delivery jobs are counted in
/// `skipped` and left to reappear after the queue's visibility timeout.
pub async fn redrive_jobs(
    source: &dyn QueueConsumer,
    queue: &dyn DeliveryQueue,
    scope: RedriveScope<'_>,
    limit: u32,
    scan: u32,
) -> Result<RedriveResponse, QueueError> {
    let scan = scan.max(limit);
    let (mut moved, mut skipped) = (0u32, 0u32);
    let mut held = Vec::new();
    // Every received message counts towards `scan`, so unparseable ones cannot loop us.
    let mut seen = 0u32;
    while moved < limit && seen < scan {
        let batch = source.receive((scan - seen).min(10), 0).await?;
        if batch.is_empty() {
            break;
        }
        for msg in batch {
            seen += 1;
            let Ok(mut job) = serde_json::from_str::<DeliveryJob>(&msg.body) else {
                tracing::warn!(
                    "dead-lettered message is not a delivery job; left in the dead-letter queue"
                );
                skipped += 1;
                continue;
            };
            let ours = match scope {
                RedriveScope::All => true,
                RedriveScope::Org(org) => job.org_id == org,
            };
            if !ours || moved >= limit {
                held.push(msg.receipt);
                continue;
            }
            job.start_new_run();
            queue.send(&[QueuedJob::now(job)]).await?;
            source.ack(&msg.receipt).await?;
            moved += 1;
        }
    }
    for receipt in held {
        source.retry_after(&receipt, 0).await?;
    }
    Ok(RedriveResponse { moved, skipped })
}
