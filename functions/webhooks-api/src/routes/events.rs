//! The org's event log: `GET /api/hooks/events` (newest first, paged, filtered by type and
//! time) and `POST /api/hooks/webhooks/{id}/events/{eventId}/resend` (one logged event again to
//! one webhook, as a new run).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use relay_shared::delivery::DeliveryJob;
use relay_shared::ids::EventId;
use relay_shared::ports::QueuedJob;
use serde::Deserialize;

use super::log_page;
use super::webhooks::{find_owned, fits_the_queue, refuse_disabled};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiQuery, OptionalJson, WebhookAnd};
use crate::model::{Empty, ListResponse, LoggedEvent, ResendResponse};
use crate::quota;
use crate::state::AppState;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventsQuery {
    pub limit: Option<u32>,
    pub cursor: Option<String>,
    pub event_type: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<EventsQuery>,
) -> ApiResult<Json<ListResponse<LoggedEvent>>> {
    let (page, filter) = log_page(
        q.limit,
        q.cursor,
        q.event_type.as_deref(),
        q.since.as_deref(),
        q.until.as_deref(),
    )?;
    // A type the log never holds would only read the whole log to find nothing.
    if let Some(t) = filter.event_type.filter(|t| !t.is_logged()) {
        return Err(ApiError::invalid(
            "eventType",
            format!(
                "`{}` events are not kept in the event log (test and operational events are sent \
                 once, never logged): the delivery log (`GET /api/hooks/webhooks/{{id}}/deliveries`) \
                 has their attempts.",
                t.as_str()
            ),
        ));
    }
    let page = state
        .stores
        .events
        .page(&caller.org_id, filter, &page)
        .await?;
    Ok(Json(ListResponse {
        data: page.items.iter().map(LoggedEvent::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

pub async fn resend(
    State(state): State<AppState>,
    caller: Caller,
    WebhookAnd(id, event_id): WebhookAnd<EventId>,
    OptionalJson(_): OptionalJson<Empty>,
) -> ApiResult<Response> {
    let sub = find_owned(&state, &caller, &id).await?;
    refuse_disabled(&sub)?;
    let Some(event) = state.stores.events.get(&sub.org_id, &event_id).await? else {
        return Err(ApiError::not_found(
            "No event with this id is in your organisation's event log (it may have expired).",
        ));
    };
    if !sub.event_types.contains(&event.event_type) {
        return Err(ApiError::invalid(
            "eventId",
            format!(
                "This webhook does not subscribe to `{}` events.",
                event.event_type.as_str()
            ),
        ));
    }
    quota::resend_call(&state, &sub).await?;
    // A new run, in the event's per-call message group for a per-call-ordered webhook (the
    // routed queue sends it to the ordered queue), in its own delivery slot as a replay's jobs.
    let mut job = DeliveryJob::rerun(&event, &sub);
    if !fits_the_queue(&job) {
        return Err(ApiError::conflict(
            "event_too_large",
            "This event is too large for the delivery queue; it cannot be resent.",
        ));
    }
    let backlog = quota::backlog_room(&state, &sub).await?;
    job.not_before = Some(quota::reserve(&state, &sub, &backlog, 1).await?);
    let body = ResendResponse {
        event_id: job.event_id.to_string(),
        webhook_id: sub.id.to_string(),
        delivery_id: job.delivery_id(),
        run: job.run.clone(),
    };
    state.queue.send(&[QueuedJob::now(job)]).await?;
    tracing::info!(subscription_id = %sub.id, event_id = %event_id, run = %body.run, user_id = %caller.user_id, "event resent");
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}
