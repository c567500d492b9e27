//! The quotas on `POST …/test`, `POST …/replay` and `POST …/events/{eventId}/resend` (docs/webhooks-api.md, "Limits"): fixed
//! one-minute windows per webhook and per tenant (org), counted in the shared rate-limit store so
//! every Lambda instance sees the same counts, and one replay in flight per webhook (a lease).
//! Over a quota the answer is `429` with `Retry-After` and the usual JSON error body.

use chrono::{DateTime, Utc};
use relay_shared::ids::EventId;
use relay_shared::ports::{RateWindow, Term};
use relay_shared::subscription::Subscription;

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// How long a replay's lease is held at most (longer than any API invocation runs): a crashed
/// call frees its webhook by itself after this.
const REPLAY_LEASE: chrono::Duration = chrono::Duration::seconds(120);
/// `Retry-After` while another replay of the webhook runs.
const REPLAY_BUSY_RETRY_SECS: u64 = 5;

/// Whole seconds from `now` to `until`, rounded up.
fn secs_until(now: DateTime<Utc>, until: DateTime<Utc>) -> u64 {
    let ms = (until - now).num_milliseconds().max(0) as u64;
    ms.div_ceil(1000)
}

/// Counts one call against `counter` (at most `limit` per minute), or `429 rate_limited`.
async fn take(state: &AppState, counter: &str, limit: u32, what: &str) -> ApiResult<()> {
    let now = state.clock.now();
    let window = RateWindow::containing(now, limit);
    if state
        .stores
        .rate_limits
        .try_acquire_named(counter, window)
        .await?
    {
        return Ok(());
    }
    let retry = secs_until(now, window.end());
    tracing::info!(counter, limit, retry, "quota reached");
    Err(ApiError::too_many(
        "rate_limited",
        format!("{what} is limited to {limit} per minute; retry after {retry} s."),
        retry,
    ))
}

/// The per-webhook, then the per-tenant quota of `POST …/test`.
pub async fn test_call(state: &AppState, sub: &Subscription) -> ApiResult<()> {
    let q = state.config.quotas;
    webhook_then_tenant(
        state,
        sub,
        "test",
        q.test_per_webhook,
        q.test_per_tenant,
        "Sending test events",
    )
    .await
}

/// The per-webhook, then the per-tenant quota of `POST …/replay`.
pub async fn replay_call(state: &AppState, sub: &Subscription) -> ApiResult<()> {
    let q = state.config.quotas;
    webhook_then_tenant(
        state,
        sub,
        "replay",
        q.replay_per_webhook,
        q.replay_per_tenant,
        "Replaying",
    )
    .await
}

/// The per-webhook, then the per-tenant quota of `POST …/events/{eventId}/resend`: counters of
/// its own (`resend#…`) with the test limits, as a resend queues one job as a test does.
pub async fn resend_call(state: &AppState, sub: &Subscription) -> ApiResult<()> {
    let q = state.config.quotas;
    webhook_then_tenant(
        state,
        sub,
        "resend",
        q.test_per_webhook,
        q.test_per_tenant,
        "Resending events",
    )
    .await
}

/// The counters `<route>#<webhook>` and `<route>#org#<org>`.
async fn webhook_then_tenant(
    state: &AppState,
    sub: &Subscription,
    route: &str,
    per_webhook: u32,
    per_tenant: u32,
    what: &str,
) -> ApiResult<()> {
    let webhook = format!("{route}#{}", sub.id);
    take(
        state,
        &webhook,
        per_webhook,
        &format!("{what} to this webhook"),
    )
    .await?;
    let tenant = format!("{route}#org#{}", sub.org_id);
    take(
        state,
        &tenant,
        per_tenant,
        &format!("{what} in this organisation"),
    )
    .await
}

/// The lease name that makes replays of one webhook one at a time.
pub fn replay_lease_name(sub: &Subscription) -> String {
    format!("replay#{}", sub.id)
}

/// Runs `work` holding the webhook's replay lease, or answers `429 replay_in_progress` while
/// another replay of it runs. The lease is released whatever `work` returns.
pub async fn one_replay_at_a_time<T, F>(
    state: &AppState,
    sub: &Subscription,
    work: F,
) -> ApiResult<T>
where
    F: std::future::Future<Output = ApiResult<T>>,
{
    let name = replay_lease_name(sub);
    let now = state.clock.now();
    // A fresh random id per call (the ULID's random part).
    let holder = EventId::new_at(now.timestamp_millis().max(0) as u64).to_string();
    if !state
        .stores
        .leases
        .acquire(&name, &holder, Term::new(now, now + REPLAY_LEASE))
        .await?
    {
        return Err(ApiError::too_many(
            "replay_in_progress",
            "Another replay of this webhook is running; retry when it has finished.",
            REPLAY_BUSY_RETRY_SECS,
        ));
    }
    let result = work.await;
    if let Err(e) = state.stores.leases.release(&name, &holder).await {
        tracing::warn!(error = %e, lease = %name, "could not release the replay lease (it expires by itself)");
    }
    result
}

/// A webhook's backlog of slotted jobs (docs/webhooks-api.md, "Limits"): its delivery slots are
/// one minute / its rate limit apart, shared with the worker's rate-limit deferrals; the backlog
/// is the slots already reserved beyond now, and may hold at most `MAX_BACKLOG_MINUTES` of them.
pub struct Backlog {
    /// Time between two of the webhook's slots.
    pub interval: chrono::Duration,
    /// Jobs that still fit.
    pub room: u32,
}

/// How many more jobs fit into `sub`'s backlog, or `429 backlog_full` (with `Retry-After` = when
/// one fits again) when none does.
pub async fn backlog_room(state: &AppState, sub: &Subscription) -> ApiResult<Backlog> {
    let cfg = &state.config;
    let limit = match sub.rate_limit_per_minute {
        0 => cfg.default_rate_limit_per_minute,
        n => n,
    }
    .max(1);
    let interval = RateWindow::LENGTH / limit as i32;
    let cap = cfg.max_backlog_minutes.saturating_mul(limit);
    let now = state.clock.now();
    let next = state.stores.rate_limits.next_free_slot(&sub.id).await?;
    let backlog = match next {
        Some(next) if next > now => {
            let ahead = (next - now).num_milliseconds() as u64;
            ahead.div_ceil(interval.num_milliseconds().max(1) as u64)
        }
        _ => 0,
    };
    let room = u64::from(cap).saturating_sub(backlog) as u32;
    if room == 0 {
        // One job fits again once the backlog is under the cap.
        let fits_at = next.unwrap_or(now) - interval * cap as i32 + interval;
        let retry = secs_until(now, fits_at);
        return Err(ApiError::too_many(
            "backlog_full",
            format!(
                "This webhook's backlog already takes {} minutes to deliver at its rate limit; retry after {retry} s.",
                cfg.max_backlog_minutes
            ),
            retry,
        ));
    }
    Ok(Backlog { interval, room })
}

/// Reserves `count` consecutive slots of `sub` from now on; returns the first.
pub async fn reserve(
    state: &AppState,
    sub: &Subscription,
    backlog: &Backlog,
    count: u32,
) -> ApiResult<DateTime<Utc>> {
    let now = state.clock.now();
    Ok(state
        .stores
        .rate_limits
        .reserve_slots(&sub.id, now, backlog.interval, count)
        .await?)
}
