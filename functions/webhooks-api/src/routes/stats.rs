//! `GET /api/hooks/webhooks/{id}/stats`: the webhook's delivery figures over the last hour and
//! day, counted from its attempt log (`relay_shared::stats::webhook_stats`): the day's closed
//! five-minute buckets as an earlier read materialised them, the attempt records since its
//! watermark live (oldest first, at most `RECORD_BUDGET` of them); buckets closed since are
//! materialised by this read, page by page. A read that reaches its budget answers 503 (below).

use axum::extract::State;
use axum::Json;
use chrono::SecondsFormat;
use relay_shared::stats::webhook_stats_with;

use super::webhooks::find_owned;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::SubscriptionIdPath;
use crate::model::{StatsResponse, StatsWindows};
use crate::state::AppState;

pub async fn get_stats(
    State(state): State<AppState>,
    caller: Caller,
    SubscriptionIdPath(id): SubscriptionIdPath,
) -> ApiResult<Json<StatsResponse>> {
    let sub = find_owned(&state, &caller, &id).await?;
    let stats = webhook_stats_with(
        state.stores.stats.as_ref(),
        state.stores.attempts.as_ref(),
        &sub.id,
        state.clock.now(),
        state.config.stats_limits,
    )
    .await?;
    tracing::debug!(
        subscription_id = %sub.id,
        buckets_read = stats.buckets_read,
        attempts_read = stats.attempts_read,
        buckets_written = stats.buckets_written,
        complete = stats.is_complete(),
        "stats read"
    );
    // The read stopped at its record budget (`relay_shared::stats::RECORD_BUDGET`) with records
    // still unread: its figures count the webhook's attempts only up to `unread_from`, and miss
    // the newest ones (the records are read oldest first, so that what was read is materialised
    // for good). Answering 200 with them would be a silent undercount — `1h` could show no
    // attempt at all for a webhook busy right now — and the response schema has no field to say
    // "partial" (`WebhookStats` allows no extra property), so no client could tell. A 503
    // `unavailable` ("retry") is in the route's schema and says what is true: the figures are not
    // ready yet; each retry goes on where this one stopped (the catch-up is kept); a whole
    // day at the default rate limit takes about 15 GETs, a webhook with fewer than 10,000
    // attempts a day never meets this, and every GET makes progress (the open buckets' records
    // do not count against the budget: `webhook_stats_with`). We never show a figure that is not
    // the window's.
    if let Some(unread_from) = stats.unread_from {
        tracing::info!(
            subscription_id = %sub.id,
            attempts_read = stats.attempts_read,
            unread_from = %unread_from,
            "stats read stopped at its record budget: answered 503, the next read goes on"
        );
        let upto = stats
            .materialised_upto
            .map(|t| {
                format!(
                    ", counted up to {}",
                    t.to_rfc3339_opts(SecondsFormat::Secs, true)
                )
            })
            .unwrap_or_default();
        let mut e = ApiError::unavailable(format!(
            "The webhook's figures are still being counted from its attempt log ({} records read by this request{upto}); retry: each request goes on where the last one stopped.",
            stats.attempts_read
        ));
        // Nothing to wait for (the catch-up goes on with the next request), so the soonest a
        // header can say: a client that honours `Retry-After` retries at once rather than backing
        // off as from an outage.
        e.retry_after = Some(1);
        return Err(e);
    }
    Ok(Json(StatsResponse {
        webhook_id: sub.id.to_string(),
        windows: StatsWindows {
            hour: stats.hour.into(),
            day: stats.day.into(),
        },
    }))
}
