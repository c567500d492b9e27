//! `POST /api/hooks/dlq/redrive` (admin): moves dead-lettered jobs back to the delivery queue.
//!
//! Portable receive-and-resend through the ports: each job is re-sent with a fresh schedule
//! (`attempts`, `notBefore` and `deadLetterReason` reset) and only then deleted from the
//! dead-letter queue, so a crash in between can duplicate a job but never lose one (receivers
//! dedupe on the stable `webhook-id`). On AWS, SQS's own redrive (console or
//! `StartMessageMoveTask`) also works; it keeps the jobs' attempt history.

use axum::extract::State;
use axum::Json;
use relay_shared::delivery::DeliveryJob;
use relay_shared::ports::QueuedJob;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::OptionalJson;
use crate::model::{RedriveRequest, RedriveResponse};
use crate::state::AppState;

pub const DEFAULT_REDRIVE_LIMIT: u32 = 100;

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
    let (mut moved, mut skipped) = (0u32, 0u32);
    // Every received message counts towards the bound, so unparseable ones cannot loop us.
    let mut seen = 0u32;
    while seen < limit {
        let batch = state
            .dead_letter_source
            .receive((limit - seen).min(10), 0)
            .await?;
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
            job.start_new_run();
            state.queue.send(&[QueuedJob::now(job)]).await?;
            state.dead_letter_source.ack(&msg.receipt).await?;
            moved += 1;
        }
    }
    tracing::info!(moved, skipped, user_id = %caller.user_id, "dead-letter queue redriven");
    Ok(Json(RedriveResponse { moved, skipped }))
}
