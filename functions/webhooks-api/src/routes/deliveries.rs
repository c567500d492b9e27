//! `GET /api/hooks/webhooks/{id}/deliveries`: the attempt log, newest first, filtered by status,
//! event type and time; `GET …/deliveries/{attemptId}`: one attempt with what was sent.

use axum::extract::State;
use axum::Json;
use relay_shared::delivery::{AttemptRecord, AttemptStatus};
use relay_shared::ids::AttemptId;
use relay_shared::ports::AttemptQuery;
use serde::Deserialize;

use super::log_page;
use super::webhooks::find_owned;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiQuery, SubscriptionIdPath, WebhookAnd};
use crate::model::{body_unavailable, Delivery, DeliveryDetail, ListResponse};
use crate::state::AppState;

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StatusFilter {
    Succeeded,
    Failed,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveriesQuery {
    pub limit: Option<u32>,
    pub cursor: Option<String>,
    pub status: Option<StatusFilter>,
    pub event_type: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    SubscriptionIdPath(id): SubscriptionIdPath,
    ApiQuery(q): ApiQuery<DeliveriesQuery>,
) -> ApiResult<Json<ListResponse<Delivery>>> {
    let (page, filter) = log_page(
        q.limit,
        q.cursor,
        q.event_type.as_deref(),
        q.since.as_deref(),
        q.until.as_deref(),
    )?;
    let sub = find_owned(&state, &caller, &id).await?;
    let query = AttemptQuery {
        subscription_id: sub.id,
        status: q.status.map(|s| match s {
            StatusFilter::Succeeded => AttemptStatus::Succeeded,
            StatusFilter::Failed => AttemptStatus::Failed,
        }),
        event_type: filter.event_type,
        since: filter.since,
        until: filter.until,
        oldest_first: false,
    };
    let page = state.stores.attempts.list(query, &page).await?;
    Ok(Json(ListResponse {
        data: page.items.iter().map(Delivery::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

pub async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    WebhookAnd(id, attempt_id): WebhookAnd<AttemptId>,
) -> ApiResult<Json<DeliveryDetail>> {
    let sub = find_owned(&state, &caller, &id).await?;
    let Some(record) = state.stores.attempts.get(&sub.id, &attempt_id).await? else {
        return Err(ApiError::not_found(
            "No delivery attempt with this id exists for this webhook.",
        ));
    };
    let (body, unavailable) = sent_body(&state, &sub.org_id, &record).await?;
    Ok(Json(DeliveryDetail {
        delivery: Delivery::from(&record),
        request_headers: record.request_headers.clone(),
        body,
        body_unavailable: unavailable,
        trace_id: record.trace_id.clone(),
    }))
}

/// The body the attempt posted: kept with the attempt (events the log does not keep), else the
/// logged event's (the job's body is the event's, byte for byte), else why it is not known.
async fn sent_body(
    state: &AppState,
    org_id: &str,
    record: &AttemptRecord,
) -> ApiResult<(Option<String>, Option<&'static str>)> {
    if record.status == AttemptStatus::Skipped {
        return Ok((None, Some(body_unavailable::NOT_SENT)));
    }
    if let Some(body) = &record.request_body {
        return Ok((Some(body.clone()), None));
    }
    if relay_shared::delivery::body_kept_with_attempt(record.event_type) {
        return Ok((None, Some(body_unavailable::NOT_RECORDED)));
    }
    Ok(
        match state.stores.events.get(org_id, &record.event_id).await? {
            Some(event) => (Some(event.body), None),
            None => (None, Some(body_unavailable::EXPIRED)),
        },
    )
}
