//! `GET /api/hooks/webhooks/{id}/stats`: the webhook's delivery figures over the last hour and
//! day, counted from its attempt log (`relay_shared::stats::webhook_stats`): the day's closed
//! five-minute buckets as an earlier read materialised them, the attempt records since its
//! watermark live; buckets closed since are materialised by this read.

use axum::extract::State;
use axum::Json;
use relay_shared::stats::webhook_stats;

use super::webhooks::find_owned;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::SubscriptionIdPath;
use crate::model::{StatsResponse, StatsWindows};
use crate::state::AppState;

pub async fn get_stats(
    State(state): State<AppState>,
    caller: Caller,
    SubscriptionIdPath(id): SubscriptionIdPath,
) -> ApiResult<Json<StatsResponse>> {
    let sub = find_owned(&state, &caller, &id).await?;
    let stats = webhook_stats(
        state.stores.stats.as_ref(),
        state.stores.attempts.as_ref(),
        &sub.id,
        state.clock.now(),
    )
    .await?;
    tracing::debug!(
        subscription_id = %sub.id,
        buckets_read = stats.buckets_read,
        attempts_read = stats.attempts_read,
        buckets_written = stats.buckets_written,
        "stats read"
    );
    Ok(Json(StatsResponse {
        webhook_id: sub.id.to_string(),
        windows: StatsWindows {
            hour: stats.hour.into(),
            day: stats.day.into(),
        },
    }))
}
