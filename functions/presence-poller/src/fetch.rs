//! One complete listing of the org's people: `GET /v1/people?[orgId=…&][locationId=…&]max=…`,
//! then every `Link: rel="next"` page, each call within the token's budget (`budget.rs`). A
//! listing is either complete or an error: a partial listing is never returned (so it can never be
//! diffed as if people vanished). Its people are cut down to what is sent (the contract's fields
//! and `PRESENCE_EXTRA_FIELDS`), so nothing downstream, the diff included, sees the rest.

use std::collections::HashSet;
use std::time::Duration;

use relay_shared::ports::{PeoplePage, WebexClient};
use relay_shared::retry::Backoff;
use relay_shared::webex::Person;
use relay_shared::webex_api::WebexApiError;
use tokio::time::Instant;

use crate::budget::CallBudget;
use crate::config::PollerConfig;

/// Guards against a Link chain that never ends (10 million people at the largest page size).
const MAX_PAGES: u32 = 10_000;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FetchError {
    #[error(
        "the invocation deadline came before the listing was complete ({pages} page(s) fetched)"
    )]
    Deadline { pages: u32 },
    #[error("Webex rate limit (HTTP {status}) on page {page}: waiting {retry_after:?} before the next call")]
    RateLimited {
        status: u16,
        page: u32,
        retry_after: Duration,
    },
    #[error("Webex error on page {page}: {source}")]
    Webex {
        page: u32,
        #[source]
        source: WebexApiError,
    },
    #[error("Webex pagination did not end (repeated Link URL or more than {MAX_PAGES} pages)")]
    Pagination,
    #[error("the Webex call budget ({per_minute} a minute) has no slot left before the invocation deadline ({pages} page(s) fetched)")]
    Budget { pages: u32, per_minute: u32 },
}

impl FetchError {
    /// How long Webex asked us to wait before calling again, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            FetchError::RateLimited { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }

    /// A short machine-readable kind for the summary.
    pub fn kind(&self) -> &'static str {
        match self {
            FetchError::Deadline { .. } => "deadline",
            FetchError::RateLimited { .. } => "rate_limited",
            FetchError::Webex {
                source: WebexApiError::Unauthorized,
                ..
            } => "unauthorized",
            FetchError::Webex {
                source: WebexApiError::Status { status, .. },
                ..
            } if *status >= 500 => "webex_5xx",
            FetchError::Webex {
                source: WebexApiError::Transport(_),
                ..
            } => "transport",
            FetchError::Webex { .. } => "webex",
            FetchError::Pagination => "pagination",
            FetchError::Budget { .. } => "budget",
        }
    }
}

/// A complete listing and what it cost.
#[derive(Debug, Clone, PartialEq)]
pub struct Listing {
    /// Every person once (a person repeated across pages is kept at its last position), as sent.
    pub people: Vec<Person>,
    pub pages: u32,
}

/// What the calls of one listing cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Calls {
    /// Every request, retries included.
    pub made: u32,
    /// Time spent waiting for the budget's slots.
    pub budget_wait: Duration,
    /// Answers that were a Webex rate limit (429/423, or 503 with `Retry-After`), retried ones
    /// included: the `WebexRateLimited` metric.
    pub rate_limited: u32,
}

/// The ports and limits of a listing.
pub struct Lister<'a> {
    pub webex: &'a dyn WebexClient,
    pub budget: &'a CallBudget,
    pub cfg: &'a PollerConfig,
}

/// Fetches every page, retrying one page at most `max_retries` times: after a 429/423 it waits
/// `Retry-After` (capped at `max_retry_after`), after a 5xx or a transport error it backs off
/// exponentially from `backoff_base`. Every call first takes a slot of the budget. Nothing waits
/// past `stop_at`. `calls` counts every request and the budget's waits.
pub async fn fetch_listing(
    lister: &Lister<'_>,
    stop_at: Instant,
    calls: &mut Calls,
) -> Result<Listing, FetchError> {
    let cfg = lister.cfg;
    let query = cfg.people_query();
    let mut people: Vec<Person> = Vec::new();
    let mut next: Option<String> = None;
    let mut pages = 0u32;
    let mut links = HashSet::new();
    loop {
        let page = fetch_page(lister, &query, next.as_deref(), stop_at, pages, calls).await?;
        pages += 1;
        people.extend(page.items.into_iter().map(|mut p| {
            cfg.extra_fields.apply(&mut p);
            p
        }));
        match page.next {
            None => break,
            Some(n) => {
                if pages >= MAX_PAGES || !links.insert(n.clone()) {
                    return Err(FetchError::Pagination);
                }
                next = Some(n);
            }
        }
    }
    Ok(Listing {
        people: dedupe(people),
        pages,
    })
}

/// Keeps the last occurrence of every id (a listing that shifted between pages may repeat one).
fn dedupe(people: Vec<Person>) -> Vec<Person> {
    let mut seen: HashSet<&str> = HashSet::with_capacity(people.len());
    let mut dup = vec![false; people.len()];
    let mut any = false;
    for (i, p) in people.iter().enumerate().rev() {
        if !seen.insert(p.id.as_str()) {
            dup[i] = true;
            any = true;
        }
    }
    if !any {
        return people;
    }
    tracing::debug!("the people listing repeated some ids; keeping their last occurrence");
    people
        .into_iter()
        .zip(dup)
        .filter(|(_, d)| !d)
        .map(|(p, _)| p)
        .collect()
}

async fn fetch_page(
    lister: &Lister<'_>,
    query: &[(String, String)],
    next: Option<&str>,
    stop_at: Instant,
    page: u32,
    calls: &mut Calls,
) -> Result<PeoplePage, FetchError> {
    let cfg = lister.cfg;
    let mut retries = 0u32;
    loop {
        let Some(waited) = lister.budget.acquire(stop_at).await else {
            return Err(FetchError::Budget {
                pages: page,
                per_minute: lister.budget.calls_per_minute(),
            });
        };
        calls.budget_wait += waited;
        calls.made += 1;
        let call = lister.webex.list_people(query, next);
        // Dropping the call at `stop_at` cannot cut a token refresh short: `TokenManager` runs
        // it (Webex's answer and the write-back of the rotated pair) on a task of its own.
        let err = match tokio::time::timeout_at(stop_at, call).await {
            Err(_elapsed) => return Err(FetchError::Deadline { pages: page }),
            Ok(Ok(p)) => return Ok(p),
            Ok(Err(e)) => e,
        };
        // Within a cycle the back-off is not capped by `backoff_max` (that caps the pause
        // between cycles); `max_retries` and `stop_at` bound it.
        let backoff = Backoff::new(cfg.backoff_base).delay(retries);
        let (wait, fail) = match &err {
            WebexApiError::RateLimited {
                status,
                retry_after_seconds,
            } => {
                calls.rate_limited += 1;
                let wait = retry_after_seconds
                    .map(Duration::from_secs)
                    .unwrap_or(backoff)
                    .min(cfg.max_retry_after);
                (
                    wait,
                    FetchError::RateLimited {
                        status: *status,
                        page,
                        retry_after: wait,
                    },
                )
            }
            WebexApiError::Status { status, .. } if *status >= 500 => (
                backoff,
                FetchError::Webex {
                    page,
                    source: err.clone(),
                },
            ),
            WebexApiError::Transport(_) => (
                backoff,
                FetchError::Webex {
                    page,
                    source: err.clone(),
                },
            ),
            _ => return Err(FetchError::Webex { page, source: err }),
        };
        if retries >= cfg.max_retries {
            return Err(fail);
        }
        if Instant::now() + wait >= stop_at {
            // No time left to wait: the cycle fails, and a rate limit still tells the loop to wait.
            return Err(match fail {
                f @ FetchError::RateLimited { .. } => f,
                _ => FetchError::Deadline { pages: page },
            });
        }
        retries += 1;
        tracing::warn!(page, retry = retries, wait_ms = wait.as_millis() as u64, error = %err, "Webex people listing failed; retrying");
        tokio::time::sleep(wait).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(id: &str, s: &str) -> Person {
        serde_json::from_value(json!({"id": id, "status": s})).unwrap()
    }

    #[test]
    fn dedupe_keeps_the_last_occurrence() {
        let out = dedupe(vec![p("a", "1"), p("b", "1"), p("a", "2")]);
        assert_eq!(out, vec![p("b", "1"), p("a", "2")]);
        let same = vec![p("a", "1"), p("b", "1")];
        assert_eq!(dedupe(same.clone()), same);
    }

    #[test]
    fn error_kinds() {
        assert_eq!(FetchError::Deadline { pages: 1 }.kind(), "deadline");
        let e = FetchError::Webex {
            page: 0,
            source: WebexApiError::Status {
                status: 503,
                message: String::new(),
            },
        };
        assert_eq!(e.kind(), "webex_5xx");
        assert_eq!(e.retry_after(), None);
        let e = FetchError::RateLimited {
            status: 429,
            page: 2,
            retry_after: Duration::from_secs(3),
        };
        assert_eq!(e.retry_after(), Some(Duration::from_secs(3)));
    }
}
