//! `GET /api/hooks/webhooks/{id}/stats`: the webhook's delivery figures over the last hour and
//! day, added up from its five-minute buckets (`relay_shared::stats`; one query of at most 288
//! small items, whatever the traffic).

use axum::extract::State;
use axum::Json;
use chrono::Duration;
use relay_shared::stats::{window_start, WindowStats};

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
    let now = state.clock.now();
    let day_start = window_start(now, Duration::hours(24));
    let buckets = state.stores.stats.buckets(&sub.id, day_start).await?;
    let hour_start = window_start(now, Duration::hours(1));
    Ok(Json(StatsResponse {
        webhook_id: sub.id.to_string(),
        windows: StatsWindows {
            hour: WindowStats::of(&buckets, hour_start).into(),
            day: WindowStats::of(&buckets, day_start).into(),
        },
    }))
}
