//! `relayctl seal-secrets`: the migration of signing secrets stored in the clear by releases
//! before secrets were sealed at rest. In memory with a local key, and the binary itself against
//! DynamoDB Local + moto KMS (skipped, with a note, unless `AWS_ENDPOINT_URL_DYNAMODB` and
//! `AWS_ENDPOINT_URL_KMS` are set, e.g. by `scripts/start-local-aws`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use relay_shared::adapters::aws::kms::KmsKeys;
use relay_shared::adapters::memory::MemorySubscriptions;
use relay_shared::error::StoreError;
use relay_shared::events::EventType;
use relay_shared::ids::SubscriptionId;
use relay_shared::ports::{Page, PageRequest, SubscriptionStore};
use relay_shared::secrets_at_rest::{
    DataKey, DataKeySource, LocalKey, SealError, SecretContext, SecretOpener, SecretSealer,
    StoredSecret,
};
use relay_shared::subscription::{RetiringSecret, Subscription};
use relayctl::{seal_secrets, SealSummary};
use secrecy::ExposeSecret;
use testkit::aws::{local, Service};

const CURRENT: &str = "legacy-current-secret-4f1c2a9e";
const RETIRING: &str = "legacy-retiring-secret-77b0d3c5";

/// A subscription as a release before sealing held it: both secrets in the clear.
fn legacy(org: &str, at: DateTime<Utc>) -> Subscription {
    let mut sub = testkit::fixtures::subscription_at(org, &[EventType::TelephonyCreated], at);
    sub.secret = StoredSecret::from(format!("{CURRENT}-{}", sub.id));
    sub.retiring_secrets = vec![RetiringSecret {
        secret: StoredSecret::from(format!("{RETIRING}-{}", sub.id)),
        expires_at: at + chrono::Duration::days(1),
    }];
    sub
}

fn sealer_and_opener() -> (SecretSealer, SecretOpener) {
    let key = Arc::new(LocalKey::generate());
    (SecretSealer::new(key.clone()), SecretOpener::new(key))
}

async fn run(store: &dyn SubscriptionStore, sealer: &SecretSealer, dry_run: bool) -> SealSummary {
    let mut failures = Vec::new();
    let summary = seal_secrets(store, sealer, dry_run, &mut |sub, reason| {
        failures.push(format!("{}: {reason}", sub.id))
    })
    .await
    .unwrap();
    assert_eq!(failures.len() as u64, summary.failed, "{failures:?}");
    summary
}

fn summary(dry_run: bool, sealed: u64, already_sealed: u64) -> SealSummary {
    SealSummary {
        dry_run,
        scanned: sealed + already_sealed,
        sealed,
        already_sealed,
        ..SealSummary::default()
    }
}

/// `stored` holds no plain secret and opens to `expected`'s plain secrets, in order.
async fn assert_sealed_from(stored: &Subscription, expected: &Subscription, opener: &SecretOpener) {
    assert!(!stored.has_plain_secret(), "{stored:?}");
    let ctx = stored.secret_context();
    let wanted: Vec<String> = std::iter::once(&expected.secret)
        .chain(expected.retiring_secrets.iter().map(|r| &r.secret))
        .map(plain)
        .collect();
    let mut opened = Vec::new();
    for s in
        std::iter::once(&stored.secret).chain(stored.retiring_secrets.iter().map(|r| &r.secret))
    {
        opened.push(
            opener
                .open(s, &ctx)
                .await
                .unwrap()
                .expose_secret()
                .to_owned(),
        );
    }
    assert_eq!(opened, wanted);
    assert_eq!(
        stored.retiring_secrets[0].expires_at,
        expected.retiring_secrets[0].expires_at
    );
}

/// The sweep over any store: the dry run counts and writes nothing, the run seals every plain
/// secret (already sealed ones are left as they are), the secrets open to what they were, and a
/// second run seals nothing.
async fn legacy_secrets_are_sealed_once(
    store: &dyn SubscriptionStore,
    sealer: &SecretSealer,
    opener: &SecretOpener,
) {
    let at = Utc::now();
    let old: Vec<Subscription> = (0..3)
        .map(|i| legacy(&format!("org-{i}"), at + chrono::Duration::milliseconds(i)))
        .collect();
    for sub in &old {
        store.create(sub, 100).await.unwrap();
    }
    let mut new = testkit::fixtures::subscription_at("org-0", &[EventType::TelephonyCreated], at);
    new.secret = sealer
        .seal(&testkit::fixtures::SECRET.into(), &new.secret_context())
        .await
        .unwrap();
    store.create(&new, 100).await.unwrap();

    assert_eq!(run(store, sealer, true).await, summary(true, 3, 1));
    for sub in &old {
        assert_eq!(
            store.get(&sub.id).await.unwrap().as_ref(),
            Some(sub),
            "dry run wrote"
        );
    }

    assert_eq!(run(store, sealer, false).await, summary(false, 3, 1));
    for sub in &old {
        let stored = store.get(&sub.id).await.unwrap().unwrap();
        assert_sealed_from(&stored, sub, opener).await;
        assert_eq!(stored.version, sub.version + 1);
        assert_eq!(
            stored.updated_at, sub.updated_at,
            "nothing a tenant sees changed"
        );
    }
    assert_eq!(
        store.get(&new.id).await.unwrap(),
        Some(new),
        "a sealed one is not rewritten"
    );

    assert_eq!(run(store, sealer, false).await, summary(false, 0, 4));
}

/// A store on which, the first time the sweep writes, another writer (the API renaming the
/// webhook) gets there first.
struct RacedStore {
    inner: Arc<dyn SubscriptionStore>,
    raced: AtomicBool,
}

#[async_trait]
impl SubscriptionStore for RacedStore {
    async fn create(&self, sub: &Subscription, max: u32) -> Result<(), StoreError> {
        self.inner.create(sub, max).await
    }
    async fn get(&self, id: &SubscriptionId) -> Result<Option<Subscription>, StoreError> {
        self.inner.get(id).await
    }
    async fn list_by_owner(
        &self,
        owner: &str,
        page: &PageRequest,
    ) -> Result<Page<Subscription>, StoreError> {
        self.inner.list_by_owner(owner, page).await
    }
    async fn list_by_org(&self, org: &str) -> Result<Vec<Subscription>, StoreError> {
        self.inner.list_by_org(org).await
    }
    async fn list_all(&self, page: &PageRequest) -> Result<Page<Subscription>, StoreError> {
        self.inner.list_all(page).await
    }
    async fn update(&self, sub: &Subscription) -> Result<(), StoreError> {
        if !self.raced.swap(true, Ordering::SeqCst) {
            let mut theirs = self.inner.get(&sub.id).await?.expect("stored");
            theirs.name = "renamed meanwhile".into();
            theirs.version += 1;
            self.inner.update(&theirs).await?;
        }
        self.inner.update(sub).await
    }
    async fn delete(&self, owner: &str, id: &SubscriptionId) -> Result<bool, StoreError> {
        self.inner.delete(owner, id).await
    }
}

/// A write that loses to a concurrent one is re-read and sealed again: the other writer's change
/// stays and the secret is still sealed.
async fn a_concurrent_update_is_not_lost(
    inner: Arc<dyn SubscriptionStore>,
    sealer: &SecretSealer,
    opener: &SecretOpener,
) {
    let sub = legacy("org-1", Utc::now());
    inner.create(&sub, 100).await.unwrap();
    let store = RacedStore {
        inner: inner.clone(),
        raced: AtomicBool::new(false),
    };
    assert_eq!(run(&store, sealer, false).await, summary(false, 1, 0));
    assert!(store.raced.load(Ordering::SeqCst));
    let stored = inner.get(&sub.id).await.unwrap().unwrap();
    assert_eq!(stored.name, "renamed meanwhile");
    assert_eq!(stored.version, sub.version + 2);
    assert_sealed_from(&stored, &sub, opener).await;
}

#[tokio::test]
async fn memory_legacy_secrets_are_sealed_once() {
    let (sealer, opener) = sealer_and_opener();
    legacy_secrets_are_sealed_once(&MemorySubscriptions::default(), &sealer, &opener).await;
}

#[tokio::test]
async fn memory_a_concurrent_update_is_not_lost() {
    let (sealer, opener) = sealer_and_opener();
    a_concurrent_update_is_not_lost(Arc::new(MemorySubscriptions::default()), &sealer, &opener)
        .await;
}

/// A key service that is down.
struct Down;

#[async_trait]
impl DataKeySource for Down {
    async fn new_data_key(&self, _: &SecretContext) -> Result<DataKey, SealError> {
        Err(SealError::Unavailable("throttled".into()))
    }
}

/// A subscription that cannot be sealed is counted and reported, and stays as it was (it keeps
/// working in the clear until a later run).
#[tokio::test]
async fn memory_a_key_service_failure_is_counted_and_changes_nothing() {
    let store = MemorySubscriptions::default();
    let sub = legacy("org-1", Utc::now());
    store.create(&sub, 100).await.unwrap();
    let mut reported = Vec::new();
    let got = seal_secrets(
        &store,
        &SecretSealer::new(Arc::new(Down)),
        false,
        &mut |s, reason| reported.push((s.id, reason.to_owned())),
    )
    .await
    .unwrap();
    assert_eq!(
        got,
        SealSummary {
            scanned: 1,
            failed: 1,
            ..SealSummary::default()
        }
    );
    assert_eq!(reported.len(), 1);
    assert_eq!(reported[0].0, sub.id);
    assert!(reported[0].1.contains("throttled"), "{reported:?}");
    assert!(!reported[0].1.contains(CURRENT), "{reported:?}");
    assert_eq!(store.get(&sub.id).await.unwrap(), Some(sub));
}

// --- DynamoDB Local + moto KMS ---

struct Aws {
    dynamodb: aws_sdk_dynamodb::Client,
    table: String,
    store: Arc<dyn SubscriptionStore>,
    key_arn: String,
    sealer: SecretSealer,
    opener: SecretOpener,
}

async fn aws(test: &str) -> Option<Aws> {
    let sdk = local(test, &[Service::DynamoDb, Service::Kms]).await?;
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    let (stores, table) = testkit::aws::fresh_stores(dynamodb.clone(), "relayctl-seal").await;
    let kms = aws_sdk_kms::Client::new(&sdk);
    let key_arn = testkit::aws::fresh_kms_key(&kms).await;
    let keys = Arc::new(KmsKeys::new(kms, key_arn.clone()));
    Some(Aws {
        dynamodb,
        table,
        store: stores.subscriptions,
        key_arn,
        sealer: SecretSealer::new(keys.clone()),
        opener: SecretOpener::new(keys),
    })
}

impl Aws {
    /// Writes `sub` the way a release before sealing did: its item with the secrets as bare JSON
    /// strings in `doc` (`retiringSecrets` left out when `with_retiring` is false, as the oldest
    /// releases did).
    async fn put_legacy_item(&self, sub: &Subscription, with_retiring: bool) {
        let mut doc = serde_json::to_value(sub).unwrap();
        doc["secret"] = serde_json::json!(plain(&sub.secret));
        if with_retiring {
            doc["retiringSecrets"] = serde_json::json!([{
                "secret": plain(&sub.retiring_secrets[0].secret),
                "expiresAt": sub.retiring_secrets[0].expires_at,
            }]);
        } else {
            doc.as_object_mut().unwrap().remove("retiringSecrets");
        }
        let s = |v: String| AttributeValue::S(v);
        let id = sub.id.to_string();
        let item = HashMap::from([
            ("pk".to_owned(), s(format!("SUB#{id}"))),
            ("sk".to_owned(), s("SUB".into())),
            ("doc".to_owned(), s(doc.to_string())),
            (
                "version".to_owned(),
                AttributeValue::N(sub.version.to_string()),
            ),
            ("owner_id".to_owned(), s(sub.owner_id.clone())),
            ("gsi1pk".to_owned(), s(format!("OWNER#{}", sub.owner_id))),
            ("gsi1sk".to_owned(), s(id.clone())),
            ("gsi2pk".to_owned(), s(format!("ORG#{}", sub.org_id))),
            ("gsi2sk".to_owned(), s(id)),
        ]);
        self.dynamodb
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .unwrap();
    }

    /// The item's `doc` as stored.
    async fn raw_doc(&self, id: &SubscriptionId) -> String {
        let out = self
            .dynamodb
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(format!("SUB#{id}")))
            .key("sk", AttributeValue::S("SUB".into()))
            .consistent_read(true)
            .send()
            .await
            .unwrap();
        out.item().unwrap()["doc"].as_s().unwrap().clone()
    }

    /// Runs the binary: its exit status, the summary it printed and its stderr.
    async fn relayctl(&self, key_arn: &str, dry_run: bool) -> (bool, serde_json::Value, String) {
        let mut args = vec!["seal-secrets".to_owned()];
        if dry_run {
            args.push("--dry-run".into());
        }
        let (table, key_arn) = (self.table.clone(), key_arn.to_owned());
        let out = tokio::task::spawn_blocking(move || {
            // Endpoints, region and credentials come from the environment (scripts/start-local-aws).
            std::process::Command::new(env!("CARGO_BIN_EXE_relayctl"))
                .args(args)
                .env("TABLE_NAME", table)
                .env("SECRETS_KMS_KEY_ID", key_arn)
                .env_remove("SECRETS_LOCAL_KEY")
                .env_remove("WEBEX_TOKEN")
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        let summary = serde_json::from_str(stdout.trim())
            .unwrap_or_else(|e| panic!("summary not JSON ({e}): {stdout}{stderr}"));
        (out.status.success(), summary, stderr)
    }
}

fn plain(s: &StoredSecret) -> String {
    match s {
        StoredSecret::Plain(p) => p.clone(),
        StoredSecret::Sealed(_) => panic!("expected a plain legacy secret"),
    }
}

fn json_summary(
    dry_run: bool,
    scanned: u64,
    sealed: u64,
    already: u64,
    failed: u64,
) -> serde_json::Value {
    serde_json::json!({
        "dryRun": dry_run,
        "scanned": scanned,
        "sealed": sealed,
        "alreadySealed": already,
        "deleted": 0,
        "failed": failed,
    })
}

/// The command as an operator runs it after the deploy: items an old release wrote are sealed
/// under the KMS key (the table then holds no plaintext secret), the same secrets open, and a
/// second run is a no-op. A key that cannot seal fails the run and leaves every item as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_the_command_seals_items_an_old_release_wrote() {
    let Some(env) = aws("seal_secrets::aws_the_command_seals_items_an_old_release_wrote").await
    else {
        return;
    };
    let at = Utc::now();
    let with_retiring = legacy("org-1", at);
    let mut without = legacy("org-2", at + chrono::Duration::milliseconds(1));
    env.put_legacy_item(&with_retiring, true).await;
    env.put_legacy_item(&without, false).await;
    without.retiring_secrets.clear();
    // The legacy items read back as they were written: plain, and working.
    assert_eq!(
        env.store.get(&with_retiring.id).await.unwrap(),
        Some(with_retiring.clone())
    );
    assert_eq!(
        env.store.get(&without.id).await.unwrap(),
        Some(without.clone())
    );

    // A key that cannot seal (no such KMS key): every subscription fails, nothing changes.
    let missing = format!("{}0000", &env.key_arn[..env.key_arn.len() - 4]);
    let (ok, got, stderr) = env.relayctl(&missing, false).await;
    assert!(!ok, "{stderr}");
    assert_eq!(got, json_summary(false, 2, 0, 0, 2), "{stderr}");
    assert!(stderr.contains(&with_retiring.id.to_string()), "{stderr}");
    assert!(
        !stderr.contains(CURRENT) && !stderr.contains(RETIRING),
        "{stderr}"
    );
    assert_eq!(
        env.store.get(&with_retiring.id).await.unwrap(),
        Some(with_retiring.clone())
    );

    let (ok, got, stderr) = env.relayctl(&env.key_arn, true).await;
    assert!(ok, "{stderr}");
    assert_eq!(got, json_summary(true, 2, 2, 0, 0));
    assert!(
        env.raw_doc(&with_retiring.id).await.contains(CURRENT),
        "the dry run wrote"
    );

    let (ok, got, stderr) = env.relayctl(&env.key_arn, false).await;
    assert!(ok, "{stderr}");
    assert_eq!(got, json_summary(false, 2, 2, 0, 0));
    for sub in [&with_retiring, &without] {
        let raw = env.raw_doc(&sub.id).await;
        assert!(
            !raw.contains(CURRENT) && !raw.contains(RETIRING),
            "plaintext at rest: {raw}"
        );
        assert!(
            raw.contains(&env.key_arn),
            "sealed under the KMS key: {raw}"
        );
        let stored = env.store.get(&sub.id).await.unwrap().unwrap();
        assert_eq!(stored.version, sub.version + 1);
        if sub.retiring_secrets.is_empty() {
            assert!(stored.retiring_secrets.is_empty());
            let opened = env
                .opener
                .open(&stored.secret, &stored.secret_context())
                .await
                .unwrap();
            assert_eq!(opened.expose_secret(), plain(&sub.secret));
        } else {
            assert_sealed_from(&stored, sub, &env.opener).await;
        }
    }

    let (ok, got, stderr) = env.relayctl(&env.key_arn, false).await;
    assert!(ok, "{stderr}");
    assert_eq!(
        got,
        json_summary(false, 2, 0, 2, 0),
        "a second run seals nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_legacy_secrets_are_sealed_once() {
    let Some(env) = aws("seal_secrets::aws_legacy_secrets_are_sealed_once").await else {
        return;
    };
    legacy_secrets_are_sealed_once(env.store.as_ref(), &env.sealer, &env.opener).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_a_concurrent_update_is_not_lost() {
    let Some(env) = aws("seal_secrets::aws_a_concurrent_update_is_not_lost").await else {
        return;
    };
    a_concurrent_update_is_not_lost(env.store.clone(), &env.sealer, &env.opener).await;
}
