//! `/api/hooks/webhooks`: create, list, get, update, delete, test, rotate-secret, replay.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Duration;
use relay_shared::delivery::DeliveryJob;
use relay_shared::error::StoreError;
use relay_shared::events::{rfc3339_millis, EventType, OutboundEvent};
use relay_shared::ids::{EventId, SubscriptionId};
use relay_shared::operational::{DisabledCause, OperationalEvent};
use relay_shared::ports::{EventQuery, QueuedJob};
use relay_shared::secrets_at_rest::StoredSecret;
use relay_shared::signing::SigningSecret;
use relay_shared::subscription::{Health, Ordering, Subscription};

use super::PageQuery;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiQuery, OptionalJson, SubscriptionIdPath};
use crate::idempotency::shown_once;
use crate::model::{
    time, CreateWebhook, Empty, ListResponse, ReplayRequest, ReplayResponse, RotateSecret,
    TestResponse, UpdateWebhook, Webhook, WebhookWithSecret,
};
use crate::quota;
use crate::state::AppState;
use crate::validate;

/// How often an update re-reads and retries after losing an optimistic-concurrency race.
pub const MAX_UPDATE_ATTEMPTS: u32 = 5;
pub const DEFAULT_GRACE_SECONDS: u32 = 86_400;
pub const MAX_GRACE_SECONDS: u32 = 604_800;
/// Jobs per `DeliveryQueue::send` call when re-queueing many.
const SEND_CHUNK: usize = 100;

/// The tenant-scoped finder: the caller's own webhook, or `404` (also for another user's id, so
/// ids of other tenants cannot be probed).
pub async fn find_owned(
    state: &AppState,
    caller: &Caller,
    id: &SubscriptionId,
) -> ApiResult<Subscription> {
    match state.stores.subscriptions.get(id).await? {
        Some(s) if s.owner_id == caller.user_id && s.org_id == caller.org_id => Ok(s),
        _ => Err(ApiError::webhook_not_found()),
    }
}

/// Seals every secret of `sub` still in the clear before it is written: a new one (create,
/// rotate) or a legacy item's (written before sealing existed, docs/security.md), so that no write
/// stores a plain secret. On a [`SealError`](relay_shared::secrets_at_rest::SealError) nothing is
/// written (`503 secrets_key_unavailable` or `500`).
async fn seal_plain_secrets(state: &AppState, sub: &mut Subscription) -> ApiResult<()> {
    let ctx = sub.secret_context();
    sub.secret = state.sealer.seal_if_plain(&sub.secret, &ctx).await?;
    for r in &mut sub.retiring_secrets {
        r.secret = state.sealer.seal_if_plain(&r.secret, &ctx).await?;
    }
    Ok(())
}

/// Read-modify-write with optimistic concurrency: `apply` runs on a fresh copy each attempt; the
/// write seals any plain secret, bumps `version` and is retried a bounded number of times on
/// `Conflict`.
pub async fn update_owned<F>(
    state: &AppState,
    caller: &Caller,
    id: &SubscriptionId,
    mut apply: F,
) -> ApiResult<Subscription>
where
    F: FnMut(&mut Subscription) -> ApiResult<()>,
{
    for _ in 0..MAX_UPDATE_ATTEMPTS {
        let mut sub = find_owned(state, caller, id).await?;
        apply(&mut sub)?;
        seal_plain_secrets(state, &mut sub).await?;
        sub.version += 1;
        sub.updated_at = state.clock.now();
        match state.stores.subscriptions.update(&sub).await {
            Ok(()) => return Ok(sub),
            Err(StoreError::Conflict(_)) => continue,
            Err(StoreError::NotFound) => return Err(ApiError::webhook_not_found()),
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::conflict(
        "conflict",
        "The webhook is being changed concurrently; retry the request.",
    ))
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateWebhook>,
) -> ApiResult<Response> {
    let cfg = &state.config;
    let name = validate::name(&req.name)?;
    let url = validate::target_url(&req.url, cfg)?;
    let event_types = validate::event_types(&req.event_types)?;
    let secret = match req.secret {
        Some(s) => validate::secret(&s)?,
        None => SigningSecret::generate().expose().to_owned(),
    };
    let rate_limit_per_minute = validate::rate_limit(
        req.rate_limit_per_minute
            .unwrap_or(cfg.default_rate_limit_per_minute),
        cfg,
    )?;
    let ordering = req
        .ordering
        .as_deref()
        .map(|o| ordering(&state, o))
        .transpose()?
        .unwrap_or_default();
    let filter = req.filter.as_ref().map(validate::filter).transpose()?;
    let now = state.clock.now();
    let mut sub = Subscription {
        name,
        enabled: req.enabled.unwrap_or(true),
        rate_limit_per_minute,
        ordering,
        filter,
        ..Subscription::new(
            caller.user_id.clone(),
            caller.org_id.clone(),
            url,
            event_types,
            secret.as_str(),
            now,
        )
    };
    seal_plain_secrets(&state, &mut sub).await?;
    state.stores.subscriptions.create(&sub, cfg.max_webhooks_per_user).await.map_err(|e| match e {
        StoreError::LimitReached { .. } => ApiError::conflict(
            "limit_reached",
            format!("You already have the maximum of {} webhooks per user; delete one before creating another.", cfg.max_webhooks_per_user),
        ),
        e => e.into(),
    })?;
    tracing::info!(subscription_id = %sub.id, user_id = %caller.user_id, org_id = %caller.org_id, "webhook created");
    let body = WebhookWithSecret {
        webhook: Webhook::from(&sub),
        secret: Some(secret),
        previous_secret_expires_at: None,
    };
    Ok(shown_once(StatusCode::CREATED, body))
}

pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<ListResponse<Webhook>>> {
    let page = q.page_request()?;
    let page = state
        .stores
        .subscriptions
        .list_by_owner(&caller.user_id, &page)
        .await?;
    let data = page
        .items
        .iter()
        .filter(|s| s.org_id == caller.org_id)
        .map(Webhook::from)
        .collect();
    Ok(Json(ListResponse {
        data,
        next_cursor: page.next_cursor,
    }))
}

pub async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    SubscriptionIdPath(id): SubscriptionIdPath,
) -> ApiResult<Json<Webhook>> {
    let sub = find_owned(&state, &caller, &id).await?;
    Ok(Json(Webhook::from(&sub)))
}

pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    SubscriptionIdPath(id): SubscriptionIdPath,
    ApiJson(req): ApiJson<UpdateWebhook>,
) -> ApiResult<Json<Webhook>> {
    let cfg = &state.config;
    // Validate everything before touching the store.
    let name = req.name.as_deref().map(validate::name).transpose()?;
    let url = req
        .url
        .as_deref()
        .map(|u| validate::target_url(u, cfg))
        .transpose()?;
    let event_types = req
        .event_types
        .as_deref()
        .map(validate::event_types)
        .transpose()?;
    let rate_limit = req
        .rate_limit_per_minute
        .map(|r| validate::rate_limit(r, cfg))
        .transpose()?;
    let ordering = req
        .ordering
        .as_deref()
        .map(|o| ordering(&state, o))
        .transpose()?;
    // Absent: unchanged; `null`: removed; an object: replaces the filter.
    let filter = req
        .filter
        .as_ref()
        .map(|f| f.as_ref().map(validate::filter).transpose())
        .transpose()?;
    if name.is_none()
        && url.is_none()
        && event_types.is_none()
        && rate_limit.is_none()
        && ordering.is_none()
        && filter.is_none()
        && req.enabled.is_none()
    {
        let sub = find_owned(&state, &caller, &id).await?;
        return Ok(Json(Webhook::from(&sub)));
    }
    // The webhook as it was before the write that succeeded (what `webhook:disabled` reports).
    let mut before: Option<Subscription> = None;
    let sub = update_owned(&state, &caller, &id, |sub| {
        before = Some(sub.clone());
        if let Some(n) = &name {
            sub.name = n.clone();
        }
        if let Some(u) = &url {
            sub.url = u.clone();
        }
        if let Some(t) = &event_types {
            sub.event_types = t.clone();
        }
        if let Some(r) = rate_limit {
            sub.rate_limit_per_minute = r;
        }
        if let Some(o) = ordering {
            // Jobs already queued keep the queue they were sent to (docs/ordering.md).
            sub.ordering = o;
        }
        if let Some(f) = &filter {
            // Applies to events fanned out from then on; jobs already queued are delivered.
            sub.filter = f.clone();
        }
        if let Some(e) = req.enabled {
            if e && !sub.enabled {
                // Re-enabled: the disabled state is cleared, and so is the failing streak, so
                // that the next failure is a new episode (`webhook:failing` again) and the
                // auto-disable clock starts over.
                sub.disabled_reason = None;
                sub.failing_since = None;
                sub.health = Health::Healthy;
            }
            sub.enabled = e;
        }
        Ok(())
    })
    .await?;
    tracing::info!(subscription_id = %sub.id, user_id = %caller.user_id, "webhook updated");
    if let Some(before) = before.filter(|b| b.enabled && !sub.enabled) {
        disabled_by_hand(&state, &caller, &before).await;
    }
    Ok(Json(Webhook::from(&sub)))
}

pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    SubscriptionIdPath(id): SubscriptionIdPath,
) -> ApiResult<StatusCode> {
    // The finder checks owner and org; the store's delete re-checks the owner atomically.
    find_owned(&state, &caller, &id).await?;
    if !state
        .stores
        .subscriptions
        .delete(&caller.user_id, &id)
        .await?
    {
        return Err(ApiError::webhook_not_found());
    }
    tracing::info!(subscription_id = %id, user_id = %caller.user_id, "webhook deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// `webhook:disabled` for a webhook its owner disabled (`PATCH enabled: false`), to the owner's
/// other webhooks that want it (docs/operational-events.md). Best-effort: the change is made.
async fn disabled_by_hand(state: &AppState, caller: &Caller, before: &Subscription) {
    let op = OperationalEvent::disabled(
        before,
        DisabledCause::Manual,
        "disabled by hand (PATCH enabled: false)",
        Some(&caller.user_id),
        state.clock.now(),
    );
    state.operational.emit_logged(&op).await;
}

pub(crate) fn refuse_disabled(sub: &Subscription) -> ApiResult<()> {
    if sub.enabled {
        Ok(())
    } else {
        Err(ApiError::conflict(
            "webhook_disabled",
            "The webhook is disabled; enable it (PATCH `enabled: true`) first.",
        ))
    }
}

pub async fn send_test(
    State(state): State<AppState>,
    caller: Caller,
    SubscriptionIdPath(id): SubscriptionIdPath,
    OptionalJson(_): OptionalJson<Empty>,
) -> ApiResult<Response> {
    let sub = find_owned(&state, &caller, &id).await?;
    refuse_disabled(&sub)?;
    quota::test_call(&state, &sub).await?;
    let now = state.clock.now();
    let event_id = EventId::new_at(now.timestamp_millis().max(0) as u64);
    let body = serde_json::json!({
        "type": EventType::WebhookTest.as_str(),
        "webhookId": sub.id.to_string(),
        "eventId": event_id.to_string(),
        "timestamp": rfc3339_millis(now),
    })
    .to_string();
    let event = OutboundEvent {
        id: event_id,
        event_type: EventType::WebhookTest,
        org_id: sub.org_id.clone(),
        created_at: now,
        body,
    };
    let job = DeliveryJob::for_event(&event, sub.id);
    state.queue.send(&[QueuedJob::now(job)]).await?;
    tracing::info!(subscription_id = %sub.id, event_id = %event_id, "test event queued");
    Ok((
        StatusCode::ACCEPTED,
        Json(TestResponse {
            event_id: event_id.to_string(),
            event_type: EventType::WebhookTest.as_str(),
        }),
    )
        .into_response())
}

pub async fn rotate_secret(
    State(state): State<AppState>,
    caller: Caller,
    SubscriptionIdPath(id): SubscriptionIdPath,
    OptionalJson(req): OptionalJson<RotateSecret>,
) -> ApiResult<Response> {
    let grace = req.grace_period_seconds.unwrap_or(DEFAULT_GRACE_SECONDS);
    if grace > MAX_GRACE_SECONDS {
        return Err(ApiError::invalid(
            "gracePeriodSeconds",
            format!("`gracePeriodSeconds` must be between 0 and {MAX_GRACE_SECONDS}."),
        ));
    }
    let new_secret = SigningSecret::generate().expose().to_owned();
    let now = state.clock.now();
    let sub = update_owned(&state, &caller, &id, |sub| {
        // Sealed with any legacy plain secret by `update_owned`.
        sub.rotate_secret(
            StoredSecret::from(new_secret.as_str()),
            now,
            Duration::seconds(i64::from(grace)),
        );
        Ok(())
    })
    .await?;
    tracing::info!(subscription_id = %sub.id, grace_seconds = grace, "webhook secret rotated");
    let previous_secret_expires_at =
        (grace > 0).then(|| time(now + Duration::seconds(i64::from(grace))));
    Ok(shown_once(
        StatusCode::OK,
        WebhookWithSecret {
            webhook: Webhook::from(&sub),
            secret: Some(new_secret),
            previous_secret_expires_at,
        },
    ))
}

pub async fn replay(
    State(state): State<AppState>,
    caller: Caller,
    SubscriptionIdPath(id): SubscriptionIdPath,
    ApiJson(req): ApiJson<ReplayRequest>,
) -> ApiResult<Response> {
    let cfg = &state.config;
    if req.until <= req.since {
        return Err(ApiError::invalid(
            "until",
            "`until` must be later than `since`.",
        ));
    }
    // Older events are gone (or going: TTL deletes them late, and every reader skips them), so a
    // window starting before the retention could only ever replay part of itself.
    let oldest = cfg.retention.oldest_event(state.clock.now());
    if req.since < oldest {
        return Err(ApiError::invalid(
            "since",
            format!(
                "The event log keeps events for {} days (EVENT_RETENTION_DAYS): `since` may be no earlier than {}.",
                cfg.retention.events.num_days(),
                time(oldest)
            ),
        ));
    }
    if req.until - req.since > Duration::days(i64::from(cfg.replay_max_window_days)) {
        return Err(ApiError::invalid(
            "until",
            format!(
                "The replay window may span at most {} days.",
                cfg.replay_max_window_days
            ),
        ));
    }
    let sub = find_owned(&state, &caller, &id).await?;
    refuse_disabled(&sub)?;
    quota::replay_call(&state, &sub).await?;
    let body = quota::one_replay_at_a_time(&state, &sub, queue_replay(&state, &sub, &req)).await?;
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

/// Lists the window's events (at most `REPLAY_MAX_EVENTS`, and at most what fits into the
/// webhook's backlog) and queues the webhook's types, each job with its own delivery slot as
/// `notBefore` (so the worker sends them at the webhook's rate without deferring them).
async fn queue_replay(
    state: &AppState,
    sub: &Subscription,
    req: &ReplayRequest,
) -> ApiResult<ReplayResponse> {
    let backlog = quota::backlog_room(state, sub).await?;
    let max = state.config.replay_max_events.min(backlog.room);
    let events = state
        .stores
        .events
        .list(
            &sub.org_id,
            EventQuery::new(req.since, req.until, max.saturating_add(1)),
        )
        .await?;
    let truncated = events.len() > max as usize;
    let next_since = if truncated {
        events.get(max as usize).map(|e| time(e.created_at))
    } else {
        None
    };
    let (mut jobs, too_large): (Vec<QueuedJob>, Vec<QueuedJob>) = events
        .iter()
        .take(max as usize)
        .filter(|e| sub.event_types.contains(&e.event_type) && passes_filter(sub, e))
        // The same sequence (and, per-call-ordered, the same message group) as at ingest.
        .map(|e| QueuedJob::now(DeliveryJob::rerun(e, sub)))
        // An event the log kept but the queue cannot carry (ingest parked it as too_large) is
        // skipped and counted: sending it would fail this replay on every retry.
        .partition(|q| fits_the_queue(&q.job));
    for q in &too_large {
        tracing::warn!(subscription_id = %sub.id, event_id = %q.job.event_id, "replay: event too large to queue, skipped");
    }
    if !jobs.is_empty() {
        let first = quota::reserve(state, sub, &backlog, jobs.len() as u32).await?;
        for (i, q) in jobs.iter_mut().enumerate() {
            q.job.not_before = Some(first + backlog.interval * i as i32);
        }
    }
    for chunk in jobs.chunks(SEND_CHUNK) {
        state.queue.send(chunk).await?;
    }
    tracing::info!(subscription_id = %sub.id, queued = jobs.len(), truncated, "replay queued");
    Ok(ReplayResponse {
        queued: jobs.len() as u32,
        skipped_too_large: too_large.len() as u32,
        truncated,
        next_since,
    })
}

/// Does the logged event pass the webhook's payload filter, as it would at fan-out
/// (docs/call-events.md#payload-filters)? A replay sends what the webhook would have received.
pub(crate) fn passes_filter(sub: &Subscription, e: &OutboundEvent) -> bool {
    sub.filter.as_ref().is_none_or(|f| {
        f.matches(&relay_shared::filters::pruned_document(
            e.event_type,
            &e.body,
            [f],
        ))
    })
}

/// Would the delivery queue take this job (its JSON body within SQS's message size)?
pub(crate) fn fits_the_queue(job: &DeliveryJob) -> bool {
    serde_json::to_vec(job)
        .is_ok_and(|body| relay_shared::error::QueueError::check_size(body.len()).is_ok())
}

/// `ordering`, valid and possible here: `per-call` needs the ordered queue (`ORDERED_QUEUE_URL`);
/// without it every later event of the org would fail at fan-out (docs/ordering.md).
fn ordering(state: &AppState, value: &str) -> Result<Ordering, ApiError> {
    let ordering = validate::ordering(value)?;
    if ordering == Ordering::PerCall && !state.queue.takes_ordered_jobs() {
        return Err(ApiError::invalid(
            "ordering",
            "`ordering: per-call` needs the ordered delivery queue, which this deployment does not have (ORDERED_QUEUE_URL).",
        ));
    }
    Ok(ordering)
}
