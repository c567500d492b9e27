//! `relayctl seal-secrets`: the one-off migration of signing secrets stored before sealing
//! existed (`relay_shared::secrets_at_rest`, docs/security.md). Every subscription is read; each
//! one still holding a plain current or retiring secret gets them sealed under the configured key
//! and is written back with the store's optimistic version check, so a concurrent change by the
//! API or the worker is never overwritten: on a conflict the subscription is re-read and sealed
//! again from what is stored now. Running it again seals nothing.

use relay_shared::error::StoreError;
use relay_shared::ports::{PageRequest, SubscriptionStore};
use relay_shared::secrets_at_rest::{SealError, SecretSealer};
use relay_shared::subscription::Subscription;
use serde::Serialize;

use crate::CtlError;

/// Subscriptions read per listing page (on DynamoDB also the items each Scan call reads).
const PAGE_SIZE: u32 = 500;
/// How often a subscription that keeps changing under the sweep is re-read before it counts as
/// failed (a later run picks it up).
const CONFLICT_RETRIES: u32 = 5;

/// What a sweep did, counted in subscriptions (the JSON the command prints):
/// `scanned = sealed + alreadySealed + deleted + failed`.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SealSummary {
    /// Nothing was written: `sealed` counts what would have been sealed.
    pub dry_run: bool,
    pub scanned: u64,
    /// Held at least one plain secret; now (or, in a dry run, would be) sealed.
    pub sealed: u64,
    /// Held no plain secret (or the API sealed it while the sweep ran).
    pub already_sealed: u64,
    /// Deleted while the sweep ran: nothing left to seal.
    pub deleted: u64,
    /// Could not be sealed or written (reasons on stderr); still plain and still working.
    pub failed: u64,
}

/// How sealing one subscription ended.
#[derive(Debug)]
enum Outcome {
    Sealed,
    AlreadySealed,
    Deleted,
    Failed(String),
}

/// Sweeps every subscription of `store` (see the module docs). A failure to list aborts the
/// sweep (re-run it: it is idempotent); a failure to seal or write one subscription is counted in
/// [`SealSummary::failed`], reported through `report` (never with a secret) and the sweep goes on.
pub async fn seal_secrets(
    store: &dyn SubscriptionStore,
    sealer: &SecretSealer,
    dry_run: bool,
    report: &mut dyn FnMut(&Subscription, &str),
) -> Result<SealSummary, CtlError> {
    let mut summary = SealSummary {
        dry_run,
        ..SealSummary::default()
    };
    let mut cursor = None;
    loop {
        let page = store
            .list_all(&PageRequest {
                limit: PAGE_SIZE,
                cursor: cursor.take(),
            })
            .await
            .map_err(|e| CtlError::Store(format!("listing subscriptions: {e}")))?;
        for sub in page.items {
            summary.scanned += 1;
            let outcome = if !sub.has_plain_secret() {
                Outcome::AlreadySealed
            } else if dry_run {
                Outcome::Sealed
            } else {
                seal_one(store, sealer, sub.clone()).await
            };
            match outcome {
                Outcome::Sealed => summary.sealed += 1,
                Outcome::AlreadySealed => summary.already_sealed += 1,
                Outcome::Deleted => summary.deleted += 1,
                Outcome::Failed(reason) => {
                    summary.failed += 1;
                    report(&sub, &reason);
                }
            }
        }
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => return Ok(summary),
        }
    }
}

/// Seals `sub`'s plain secrets and writes it back at the next version, re-reading it when a
/// concurrent write got there first.
async fn seal_one(
    store: &dyn SubscriptionStore,
    sealer: &SecretSealer,
    sub: Subscription,
) -> Outcome {
    let mut sub = sub;
    for _ in 0..=CONFLICT_RETRIES {
        if !sub.has_plain_secret() {
            return Outcome::AlreadySealed;
        }
        let next = match sealed(sealer, &sub).await {
            Ok(next) => next,
            Err(e) => return Outcome::Failed(e.to_string()),
        };
        match store.update(&next).await {
            Ok(()) => return Outcome::Sealed,
            Err(StoreError::NotFound) => return Outcome::Deleted,
            Err(StoreError::Conflict(_)) => match store.get(&sub.id).await {
                Ok(Some(now_stored)) => sub = now_stored,
                Ok(None) => return Outcome::Deleted,
                Err(e) => return Outcome::Failed(format!("re-reading after a conflict: {e}")),
            },
            Err(e) => return Outcome::Failed(format!("writing: {e}")),
        }
    }
    Outcome::Failed(format!(
        "changed under the sweep {} times in a row; run it again",
        CONFLICT_RETRIES + 1
    ))
}

/// `sub` at its next version with every plain secret sealed (expired retiring ones too: no
/// secret stays in the clear at rest). Nothing a tenant sees changes, so `updated_at` is kept.
async fn sealed(sealer: &SecretSealer, sub: &Subscription) -> Result<Subscription, SealError> {
    let ctx = sub.secret_context();
    let mut next = sub.clone();
    next.secret = sealer.seal_if_plain(&sub.secret, &ctx).await?;
    for retiring in &mut next.retiring_secrets {
        retiring.secret = sealer.seal_if_plain(&retiring.secret, &ctx).await?;
    }
    next.version += 1;
    Ok(next)
}

/// A local key is for the local stack and tests: sealing a deployed table under one would leave
/// every migrated webhook unreadable by the worker, which opens with KMS (and the API cannot repair
/// a sealed item). So a local key needs a local DynamoDB endpoint, or `--allow-local-key`.
pub fn check_key_choice(
    local_key: bool,
    allow_local_key: bool,
    dynamodb_endpoint: Option<&str>,
) -> Result<(), CtlError> {
    if !local_key || allow_local_key {
        return Ok(());
    }
    let local = dynamodb_endpoint.is_some_and(|e| {
        url::Url::parse(e).is_ok_and(|u| {
            matches!(
                u.host(),
                Some(url::Host::Ipv4(ip)) if ip.is_loopback()
            ) || matches!(u.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback())
                || u.host_str() == Some("localhost")
        })
    });
    if local {
        Ok(())
    } else {
        Err(CtlError::Usage(
            "seal-secrets with SECRETS_LOCAL_KEY is refused against a deployed table: the worker \
             opens secrets with the stack's KMS key (SECRETS_KMS_KEY_ID = the stack's \
             SecretsKeyArn output). Pass --allow-local-key if this table really is a local one."
                .into(),
        ))
    }
}

#[cfg(test)]
mod key_choice_tests {
    use super::check_key_choice;

    #[test]
    fn a_local_key_needs_a_local_table_or_an_explicit_flag() {
        assert!(check_key_choice(false, false, None).is_ok(), "KMS: fine");
        assert!(
            check_key_choice(true, false, None).is_err(),
            "deployed table"
        );
        assert!(check_key_choice(
            true,
            false,
            Some("https://dynamodb.eu-west-1.amazonaws.com")
        )
        .is_err());
        assert!(check_key_choice(true, false, Some("http://127.0.0.1:8000")).is_ok());
        assert!(check_key_choice(true, false, Some("http://localhost:8000")).is_ok());
        assert!(
            check_key_choice(true, true, None).is_ok(),
            "explicitly allowed"
        );
    }
}
