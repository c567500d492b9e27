//! `GET /api/hooks/webhooks/{id}/deliveries`: the attempt log, newest first.

use axum::extract::State;
use axum::Json;
use relay_shared::delivery::AttemptStatus;
use relay_shared::ports::AttemptQuery;
use serde::Deserialize;

use super::webhooks::find_owned;
use super::PageQuery;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::{ApiQuery, SubscriptionIdPath};
use crate::model::{Delivery, ListResponse};
use crate::state::AppState;

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StatusFilter {
    Succeeded,
    Failed,
}

#[derive(Debug, Default, Deserialize)]
pub struct DeliveriesQuery {
    pub limit: Option<u32>,
    pub cursor: Option<String>,
    pub status: Option<StatusFilter>,
}

pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    SubscriptionIdPath(id): SubscriptionIdPath,
    ApiQuery(q): ApiQuery<DeliveriesQuery>,
) -> ApiResult<Json<ListResponse<Delivery>>> {
    let page = PageQuery {
        limit: q.limit,
        cursor: q.cursor,
    }
    .page_request()?;
    let sub = find_owned(&state, &caller, &id).await?;
    let query = AttemptQuery {
        subscription_id: sub.id,
        status: q.status.map(|s| match s {
            StatusFilter::Succeeded => AttemptStatus::Succeeded,
            StatusFilter::Failed => AttemptStatus::Failed,
        }),
    };
    let page = state.stores.attempts.list(query, &page).await?;
    Ok(Json(ListResponse {
        data: page.items.iter().map(Delivery::from).collect(),
        next_cursor: page.next_cursor,
    }))
}
