//! Least privilege, derived from running the functions (docs/security.md, "IAM model"): each
//! function's core runs its scenarios against DynamoDB Local + moto on clients of its own, whose
//! SDK interceptor records every DynamoDB request as (action, table or index, partition-key
//! prefix) and every KMS request as (action, encryption-context keys). template.yaml's policy for
//! that function must then grant exactly that: every recorded access covered by a statement with a
//! `dynamodb:LeadingKeys` (`ForAllValues:StringLike`) condition of `<prefix>*` (the index's own
//! partition key for a Query on an index) or a `kms:EncryptionContextKeys` condition, and every
//! (action, resource, prefix) it grants used by some recorded access, so an action or a prefix the
//! function no longer needs fails here too. No SAM `DynamoDB*`/`KMS*` policy template (they grant
//! whole tables or keys).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use delivery_worker::http_sender::ReqwestSender;
use delivery_worker::{Ports, Worker, WorkerConfig};
use relay_shared::adapters::aws::kms::KmsKeys;
use relay_shared::adapters::aws::{aws_stores, DynamoTable, OpCounter};
use relay_shared::auth::Role;
use relay_shared::clock::SystemClock;
use relay_shared::ports::{CorePorts, DeliveryQueue, QueueConsumer, Stores};
use relay_shared::secrets_at_rest::{SecretOpener, SecretSealer};
use relay_shared::webex::webex_signature;
use serde_json::{json, Value};
use serde_yaml::Value as Yaml;
use telephony_ingest::{Ingest, IngestConfig, WebhookAuth};

/// One request a function made, as IAM authorises it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Access {
    /// `dynamodb:GetItem`, `kms:Decrypt`, …
    action: String,
    /// `table`, `index/<name>` or `key`.
    resource: String,
    /// The partition key's prefix (up to and including its first `#`), or for KMS the
    /// encryption context's keys, comma-separated.
    scope: String,
}

/// What IAM checks for the requests an [`OpCounter::recording`] kept: a transaction or a batch
/// as one [`Access`] per item, under the action IAM requires for it.
fn accesses(recorder: &OpCounter) -> BTreeSet<Access> {
    recorder
        .take_requests()
        .iter()
        .flat_map(|r| {
            let (service, op) = r.target.split_once('.').unwrap_or(("", &r.target));
            let body: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
            match service {
                s if s.starts_with("DynamoDB") => dynamodb_accesses(op, &body),
                "TrentService" => vec![kms_access(op, &body)],
                _ => vec![],
            }
        })
        .collect()
}

fn prefix(pk: &str) -> String {
    match pk.find('#') {
        Some(i) => pk[..=i].to_owned(),
        None => pk.to_owned(),
    }
}

fn pk_of(item: &Value) -> String {
    prefix(item["pk"]["S"].as_str().unwrap_or("<no pk>"))
}

/// The partition value of a Query: the first clause of its key condition (`gsi2pk = :p`).
fn query_partition(body: &Value) -> String {
    let expr = body["KeyConditionExpression"].as_str().unwrap_or_default();
    let first = expr.split(" AND ").next().unwrap_or_default();
    let placeholder = first.split('=').nth(1).unwrap_or_default().trim();
    prefix(
        body["ExpressionAttributeValues"][placeholder]["S"]
            .as_str()
            .unwrap_or("<no partition>"),
    )
}

fn dynamodb_accesses(op: &str, body: &Value) -> Vec<Access> {
    let access = |action: &str, resource: &str, scope: String| Access {
        action: format!("dynamodb:{action}"),
        resource: resource.to_owned(),
        scope,
    };
    match op {
        "GetItem" | "DeleteItem" | "UpdateItem" => vec![access(op, "table", pk_of(&body["Key"]))],
        "PutItem" => vec![access(op, "table", pk_of(&body["Item"]))],
        "Query" => {
            let resource = match body["IndexName"].as_str() {
                Some(index) => format!("index/{index}"),
                None => "table".to_owned(),
            };
            vec![access(op, &resource, query_partition(body))]
        }
        "BatchWriteItem" => body["RequestItems"]
            .as_object()
            .into_iter()
            .flat_map(|tables| tables.values())
            .flat_map(|requests| requests.as_array().cloned().unwrap_or_default())
            .map(|r| {
                let item = if r["PutRequest"].is_object() {
                    &r["PutRequest"]["Item"]
                } else {
                    &r["DeleteRequest"]["Key"]
                };
                access(op, "table", pk_of(item))
            })
            .collect(),
        "BatchGetItem" => body["RequestItems"]
            .as_object()
            .into_iter()
            .flat_map(|tables| tables.values())
            .flat_map(|t| t["Keys"].as_array().cloned().unwrap_or_default())
            .map(|k| access(op, "table", pk_of(&k)))
            .collect(),
        // IAM authorises each item of a transaction as its own action.
        "TransactWriteItems" | "TransactGetItems" => body["TransactItems"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|t| {
                let (action, item) = if t["Put"].is_object() {
                    ("PutItem", &t["Put"]["Item"])
                } else if t["Update"].is_object() {
                    ("UpdateItem", &t["Update"]["Key"])
                } else if t["Delete"].is_object() {
                    ("DeleteItem", &t["Delete"]["Key"])
                } else if t["ConditionCheck"].is_object() {
                    ("ConditionCheckItem", &t["ConditionCheck"]["Key"])
                } else {
                    ("GetItem", &t["Get"]["Key"])
                };
                access(action, "table", pk_of(item))
            })
            .collect(),
        // A Scan, a table operation…: no partition to limit it to.
        other => vec![access(other, "table", "*".into())],
    }
}

fn kms_access(op: &str, body: &Value) -> Access {
    let mut keys: Vec<&str> = body["EncryptionContext"]
        .as_object()
        .map(|m| m.keys().map(String::as_str).collect())
        .unwrap_or_default();
    keys.sort_unstable();
    Access {
        action: format!("kms:{op}"),
        resource: "key".into(),
        scope: keys.join(","),
    }
}

/// One function's clients on the shared table and key, each request recorded.
struct FunctionClients {
    recorder: OpCounter,
    stores: Stores,
    kms: KmsKeys,
}

fn function_clients(sdk: &aws_config::SdkConfig, table: &str, key: &str) -> FunctionClients {
    let recorder = OpCounter::recording();
    let ddb = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(sdk)
            .interceptor(recorder.clone())
            .build(),
    );
    let kms = aws_sdk_kms::Client::from_conf(
        aws_sdk_kms::config::Builder::from(sdk)
            .interceptor(recorder.clone())
            .build(),
    );
    FunctionClients {
        stores: aws_stores(DynamoTable::new(ddb, table)),
        kms: KmsKeys::new(kms, key),
        recorder,
    }
}

// ---------------------------------------------------------------------------------------------
// template.yaml's side

/// What a function's policies grant on the table and the key, as [`Access`]es (the scope being
/// the `LeadingKeys` pattern, or the context keys a KMS statement allows).
#[derive(Debug, Default)]
struct Grants {
    grants: BTreeSet<Access>,
    /// Problems found reading the policies (an unconditioned grant, a SAM template…).
    problems: Vec<String>,
}

fn strings(v: &Yaml) -> Vec<String> {
    match v {
        Yaml::String(s) => vec![s.clone()],
        Yaml::Sequence(seq) => seq.iter().flat_map(strings).collect(),
        _ => vec![],
    }
}

/// `!GetAtt RelayTable.Arn` → `table`, `!Sub "${RelayTable.Arn}/index/gsi2"` → `index/gsi2`,
/// `!GetAtt SecretsKey.Arn` → `key`.
fn resource_kind(v: &Yaml) -> Option<String> {
    let Yaml::Tagged(t) = v else { return None };
    let tag = t.tag.to_string();
    let value = t.value.as_str()?;
    match (tag.as_str(), value) {
        ("!GetAtt", "RelayTable.Arn") => Some("table".into()),
        ("!GetAtt", "SecretsKey.Arn") => Some("key".into()),
        ("!Sub", v) => v
            .strip_prefix("${RelayTable.Arn}/")
            .filter(|rest| rest.starts_with("index/") && !rest.contains('*'))
            .map(str::to_owned),
        _ => None,
    }
}

fn template() -> Yaml {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml");
    serde_yaml::from_str(&std::fs::read_to_string(path).expect("template.yaml")).unwrap()
}

fn grants_of(template: &Yaml, function: &str) -> Grants {
    let mut out = Grants::default();
    let policies = &template["Resources"][function]["Properties"]["Policies"];
    let Some(policies) = policies.as_sequence() else {
        out.problems.push(format!("{function} has no Policies"));
        return out;
    };
    // A managed policy (by name or ARN) is outside what this test can read: refused.
    for managed in strings(&template["Resources"][function]["Properties"]["ManagedPolicyArns"]) {
        out.problems.push(format!(
            "{function}: managed policy {managed} cannot be checked; use a Statement"
        ));
    }
    for policy in policies {
        let Some(map) = policy.as_mapping() else {
            out.problems.push(format!(
                "{function}: policy {policy:?} (a managed policy by name or ARN) cannot be checked; use a Statement"
            ));
            continue;
        };
        for (name, body) in map {
            let name = name.as_str().unwrap_or_default();
            if name != "Statement" {
                if name.starts_with("DynamoDB") || name.starts_with("KMS") {
                    out.problems.push(format!(
                        "{function}: SAM policy template {name} grants a whole table or key"
                    ));
                }
                continue;
            }
            for statement in body.as_sequence().into_iter().flatten() {
                read_statement(function, statement, &mut out);
            }
        }
    }
    out
}

fn read_statement(function: &str, statement: &Yaml, out: &mut Grants) {
    let sid = statement["Sid"].as_str().unwrap_or("(no Sid)").to_owned();
    let actions: Vec<String> = strings(&statement["Action"])
        .into_iter()
        .filter(|a| a.starts_with("dynamodb:") || a.starts_with("kms:"))
        .collect();
    if actions.is_empty() {
        return;
    }
    if statement["Effect"].as_str() != Some("Allow") {
        out.problems
            .push(format!("{function}/{sid}: only Allow statements are read"));
        return;
    }
    // `ForAllValues` holds for a request naming no partition key: only keyed actions may be
    // limited by `LeadingKeys` (docs/security.md, "No key, no grant").
    const KEYED: &[&str] = &[
        "GetItem",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "ConditionCheckItem",
        "Query",
        "BatchGetItem",
        "BatchWriteItem",
    ];
    for a in &actions {
        if let Some(op) = a.strip_prefix("dynamodb:") {
            if !KEYED.contains(&op) {
                out.problems.push(format!(
                    "{function}/{sid}: {a} names no partition key, so LeadingKeys cannot limit it"
                ));
            }
        }
    }
    if actions.iter().any(|a| a.contains('*')) {
        out.problems
            .push(format!("{function}/{sid}: wildcard action in {actions:?}"));
    }
    let resources: Vec<Yaml> = match &statement["Resource"] {
        Yaml::Sequence(seq) => seq.clone(),
        one => vec![one.clone()],
    };
    let condition = &statement["Condition"];
    for resource in &resources {
        let Some(kind) = resource_kind(resource) else {
            out.problems.push(format!(
                "{function}/{sid}: resource {resource:?} is not the table, one named index or the secrets key"
            ));
            continue;
        };
        let scopes: Vec<String> = if kind == "key" {
            let keys =
                strings(&condition["ForAllValues:StringEquals"]["kms:EncryptionContextKeys"]);
            // ForAllValues alone admits a request with fewer keys (or none): each listed key must
            // also be required to be present.
            let every_key_required = keys.iter().all(|k| {
                condition["Null"][format!("kms:EncryptionContext:{k}").as_str()].as_str()
                    == Some("false")
            });
            if keys.is_empty() || !every_key_required {
                out.problems.push(format!(
                    "{function}/{sid}: a KMS grant needs ForAllValues:StringEquals kms:EncryptionContextKeys and, for each of those keys, Null kms:EncryptionContext:<key> \"false\""
                ));
                continue;
            }
            let mut keys = keys;
            keys.sort();
            vec![keys.join(",")]
        } else {
            let patterns = strings(&condition["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]);
            if patterns.is_empty() {
                out.problems.push(format!(
                    "{function}/{sid}: a DynamoDB grant needs a ForAllValues:StringLike dynamodb:LeadingKeys condition"
                ));
                continue;
            }
            patterns
        };
        for action in &actions {
            for scope in &scopes {
                out.grants.insert(Access {
                    action: action.clone(),
                    resource: kind.clone(),
                    scope: scope.clone(),
                });
            }
        }
    }
}

/// Whether `grant` allows `access`: same action and resource, and the pattern `<prefix>*` (KMS:
/// the request's context keys all among the allowed ones).
fn covers(grant: &Access, access: &Access) -> bool {
    if grant.action != access.action || grant.resource != access.resource {
        return false;
    }
    if access.resource == "key" {
        let allowed: BTreeSet<&str> = grant.scope.split(',').collect();
        return !access.scope.is_empty() && access.scope.split(',').all(|k| allowed.contains(k));
    }
    grant.scope == format!("{}*", access.scope)
}

/// The differences between what `function` did and what template.yaml grants it, one per line.
fn policy_findings(template: &Yaml, function: &str, used: &BTreeSet<Access>) -> Vec<String> {
    let Grants { grants, problems } = grants_of(template, function);
    let mut findings = problems;
    for access in used {
        if !grants.iter().any(|g| covers(g, access)) {
            findings.push(format!(
                "{function} needs {} on {} for {} but template.yaml does not grant it",
                access.action, access.resource, access.scope
            ));
        }
    }
    for grant in &grants {
        if !used.iter().any(|a| covers(grant, a)) {
            findings.push(format!(
                "{function} is granted {} on {} for {} but never uses it",
                grant.action, grant.resource, grant.scope
            ));
        }
    }
    findings
}

// ---------------------------------------------------------------------------------------------
// The scenarios

const WEBEX_SECRET: &str = "iam-webex-secret";
const USER_KEY: &str = "wrk_iam_user_key_000000000000000";
const ADMIN_KEY: &str = "wrk_iam_admin_key_00000000000000";

/// A receiver on 127.0.0.1: `/ok` answers 200, `/fail` 500.
async fn receiver() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(
            listener,
            axum::Router::new()
                .route("/ok", axum::routing::post(|| async { "ok" }))
                .route(
                    "/fail",
                    axum::routing::post(|| async {
                        (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "no")
                    }),
                ),
        )
        .await
    });
    base
}

/// The captured telephony events, re-dated into the freshness window, with their org.
fn envelopes() -> (Vec<String>, String) {
    let mut org = String::new();
    let bodies = ["created.json", "updated.json", "deleted.json"]
        .iter()
        .map(|name| {
            let raw = std::fs::read_to_string(format!(
                "{}/../tests/fixtures/seed001/{name}",
                env!("CARGO_MANIFEST_DIR")
            ))
            .unwrap();
            let mut fixture: Value = serde_json::from_str(&raw).unwrap();
            relay_shared::webex::redate_captured(&mut fixture["items"]);
            org = fixture["items"]["orgId"].as_str().unwrap().to_owned();
            fixture["items"].to_string()
        })
        .collect();
    (bodies, org)
}

/// The worker on what is queued, as the SQS event source runs it: an acknowledged job deleted, an
/// unacknowledged one handed out again (at once here, after its visibility timeout on AWS).
async fn work(worker: &Worker, consumer: &dyn QueueConsumer, rounds: usize) {
    for _ in 0..rounds {
        let got = consumer.receive(10, 1).await.unwrap();
        if got.is_empty() {
            return;
        }
        for m in got {
            if worker
                .process_message(&m.body, m.receive_count)
                .await
                .acknowledged()
            {
                consumer.ack(&m.receipt).await.unwrap();
            } else {
                consumer.retry_after(&m.receipt, 0).await.unwrap();
            }
        }
    }
}

struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        key: &str,
        body: Option<Value>,
        idempotency_key: Option<&str>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(key);
        if let Some(k) = idempotency_key {
            req = req.header("Idempotency-Key", k);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_function_is_granted_exactly_the_table_and_key_access_it_uses() {
    use testkit::aws::Service;
    let test = "each_function_is_granted_exactly_the_table_and_key_access_it_uses";
    let services = [Service::DynamoDb, Service::Sqs, Service::Kms];
    let Some(sdk) = testkit::aws::local(test, &services).await else {
        return;
    };
    let aws = testkit::aws::Resources::new(&sdk, "iam").await;
    let key = testkit::aws::fresh_kms_key(&aws_sdk_kms::Client::new(&sdk)).await;
    let (queue, dlq) = (aws.queue.clone(), aws.dlq.clone());
    let clock = Arc::new(SystemClock);
    let (envelopes, org) = envelopes();
    let base = receiver().await;
    for (key_, user, role) in [
        (USER_KEY, "iam-user", Role::User),
        (ADMIN_KEY, "iam-admin", Role::Admin),
    ] {
        webhooks_api::store_api_key(&aws.stores, key_, user, &org, role)
            .await
            .unwrap();
    }
    let mut used: BTreeMap<&str, BTreeSet<Access>> = BTreeMap::new();

    // ---- webhooks API: every route, an idempotent create and its replay, a caller-chosen secret.
    let api_clients = function_clients(&sdk, &aws.table, &key);
    let api_config = webhooks_api::ApiConfig::from_env_pairs(&[
        ("ALLOW_PRIVATE_TARGETS", "true"),
        ("ALLOW_HTTP_TARGETS", "true"),
    ])
    .unwrap();
    let state = webhooks_api::AppState::new(
        CorePorts {
            stores: api_clients.stores.clone(),
            queue: queue.clone(),
            clock: clock.clone(),
        },
        dlq.clone(),
        SecretSealer::new(Arc::new(api_clients.kms.clone())),
        api_config,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = Api {
        base: format!("http://{}", listener.local_addr().unwrap()),
        http: reqwest::Client::new(),
    };
    tokio::spawn(async move { axum::serve(listener, webhooks_api::router(state)).await });
    use reqwest::Method;
    let create = |url: String| {
        json!({"name": "iam", "url": url, "rateLimitPerMinute": 100,
            "eventTypes": ["telephony:created", "telephony:updated", "telephony:deleted", "presence:changed",
                "presence:throttled"]})
    };
    // Created with an Idempotency-Key, then the same request again: the stored answer replayed.
    let mut answers = Vec::new();
    for _ in 0..2 {
        let ok = Some(create(format!("{base}/ok")));
        let (status, answer) = api
            .call(
                Method::POST,
                "/api/hooks/webhooks",
                USER_KEY,
                ok,
                Some("iam-1"),
            )
            .await;
        assert!(status < 300, "create: {status} {answer}");
        answers.push(answer);
    }
    let ok_hook = answers.remove(0);
    let mut chosen = create(format!("{base}/fail"));
    chosen["secret"] = json!("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    let (status, fail_hook) = api
        .call(
            Method::POST,
            "/api/hooks/webhooks",
            USER_KEY,
            Some(chosen),
            None,
        )
        .await;
    assert_eq!(status, 201, "{fail_hook}");
    // One delivery a minute: the worker defers the others to their own future slots.
    let mut slow = create(format!("{base}/ok"));
    slow["rateLimitPerMinute"] = json!(1);
    let (status, slow_hook) = api
        .call(
            Method::POST,
            "/api/hooks/webhooks",
            USER_KEY,
            Some(slow),
            None,
        )
        .await;
    assert_eq!(status, 201, "{slow_hook}");
    let ok_id = ok_hook["id"].as_str().unwrap().to_owned();
    let fail_id = fail_hook["id"].as_str().unwrap().to_owned();
    for (method, path, key_, body) in [
        (
            Method::GET,
            "/api/hooks/webhooks".to_owned(),
            USER_KEY,
            None,
        ),
        (
            Method::GET,
            "/api/hooks/webhooks".to_owned(),
            ADMIN_KEY,
            None,
        ),
        (
            Method::GET,
            format!("/api/hooks/webhooks/{ok_id}"),
            USER_KEY,
            None,
        ),
        (
            Method::PATCH,
            format!("/api/hooks/webhooks/{ok_id}"),
            USER_KEY,
            Some(json!({"name": "iam"})),
        ),
        (
            Method::POST,
            format!("/api/hooks/webhooks/{ok_id}/rotate-secret"),
            USER_KEY,
            Some(json!({"gracePeriodSeconds": 60})),
        ),
        (
            Method::POST,
            format!("/api/hooks/webhooks/{ok_id}/test"),
            USER_KEY,
            None,
        ),
        (
            Method::GET,
            format!("/api/hooks/webhooks/{ok_id}/deliveries"),
            USER_KEY,
            None,
        ),
        (
            Method::GET,
            "/api/hooks/event-types".to_owned(),
            USER_KEY,
            None,
        ),
    ] {
        let (status, answer) = api.call(method.clone(), &path, key_, body, None).await;
        assert!(status < 300, "{method} {path}: {status} {answer}");
    }
    used.insert("api-setup", accesses(&api_clients.recorder));

    // ---- ingest: the three events of one call (new call, known call), a duplicate, a stale one.
    let ingest_clients = function_clients(&sdk, &aws.table, &key);
    // The queue refuses the first event's jobs: 503 (its retry below is a duplicate, queued again).
    let ingest_queue = Arc::new(testkit::FlakyQueue::new(queue.clone(), 1));
    let ingest = Ingest::new(
        CorePorts {
            stores: ingest_clients.stores.clone(),
            queue: ingest_queue.clone(),
            clock: clock.clone(),
        },
        IngestConfig::new(WebhookAuth::secret(WEBEX_SECRET)),
    )
    .with_metrics(Arc::new(|_| {}));
    let sign = |body: &str| webex_signature(WEBEX_SECRET.as_bytes(), body.as_bytes());
    let refused = ingest
        .handle(envelopes[0].as_bytes(), Some(&sign(&envelopes[0])))
        .await;
    assert_eq!(refused.status.as_u16(), 503, "the queue refused");
    for body in envelopes.iter().chain(envelopes.first()) {
        let answer = ingest.handle(body.as_bytes(), Some(&sign(body))).await;
        assert_eq!(answer.status.as_u16(), 200, "ingest");
    }
    let mut stale: Value = serde_json::from_str(&envelopes[0]).unwrap();
    stale["data"]["eventTimestamp"] = json!("2001-01-01T00:00:00.000Z");
    stale["id"] = json!("stale-event");
    let stale = stale.to_string();
    assert!(ingest
        .handle(stale.as_bytes(), Some(&sign(&stale)))
        .await
        .status
        .is_success());
    // Presence from calls (PRESENCE_FROM_CALLS): a leg of a person the poller recorded is answered,
    // then ends: both views of the person read (Query), the call presence written (PutItem). In an
    // org of its own, so that the poller below still starts from an empty state.
    let first: Value = serde_json::from_str(&envelopes[0]).unwrap();
    let person = first["actorId"].as_str().unwrap().to_owned();
    let presence_org = "iam-presence-org";
    let record = relay_shared::ports::PresenceRecord {
        person_id: person.clone(),
        fingerprint: "active".into(),
        version: 1,
        item: Some(format!(r#"{{"id":"{person}","status":"active"}}"#)),
    };
    aws.stores
        .presence
        .write(presence_org, &[record])
        .await
        .unwrap();
    let mut presence_config = IngestConfig::new(WebhookAuth::secret(WEBEX_SECRET));
    presence_config.presence_from_calls = true;
    let presence_ingest = Ingest::new(
        CorePorts {
            stores: ingest_clients.stores.clone(),
            queue: queue.clone(),
            clock: clock.clone(),
        },
        presence_config,
    )
    .with_metrics(Arc::new(|_| {}));
    for (stage, event_type) in [("updated", "answered"), ("deleted", "disconnected")] {
        let mut leg = first.clone();
        leg["orgId"] = json!(presence_org);
        leg["event"] = json!(stage);
        leg["data"]["callId"] = json!("iam-presence-call");
        leg["data"]["eventType"] = json!(event_type);
        leg["data"][event_type] = leg["data"]["eventTimestamp"].clone();
        let body = leg.to_string();
        let answer = presence_ingest
            .handle(body.as_bytes(), Some(&sign(&body)))
            .await;
        assert_eq!(answer.status.as_u16(), 200, "presence from calls");
    }
    let (_, call) = aws
        .stores
        .presence
        .person(presence_org, &person)
        .await
        .unwrap();
    assert!(
        call.is_some_and(|c| c.live.is_empty() && c.version == 2),
        "connected, then ended"
    );
    used.insert(
        "TelephonyIngestFunction",
        accesses(&ingest_clients.recorder),
    );

    // ---- the API's replay and redrive (after there are events and dead letters).

    // ---- delivery worker: deliveries (one rotated secret, one caller-chosen), deferrals of a
    // rate-limited webhook, a failing target retried then dead-lettered, a job of a deleted
    // webhook; the queue refusing a retry and the dead-letter queue a job once (claims released,
    // the jobs handed out again).
    let worker_clients = function_clients(&sdk, &aws.table, &key);
    let config = WorkerConfig::from_env_pairs(&[
        ("ALLOW_PRIVATE_TARGETS", "true"),
        ("ALLOW_HTTP_TARGETS", "true"),
        ("RETRY_SCHEDULE_SECONDS", "0,0"),
    ])
    .unwrap();
    let http =
        Arc::new(ReqwestSender::new(config.targets.clone(), config.max_response_bytes).unwrap());
    let worker = Worker::new(
        Ports {
            core: CorePorts {
                stores: worker_clients.stores.clone(),
                queue: Arc::new(testkit::FlakyQueue::new(queue.clone(), 1)),
                clock: clock.clone(),
            },
            http,
            dead_letter_sink: Arc::new(testkit::FlakyQueue::new(dlq.clone(), 1)),
            secrets: SecretOpener::new(Arc::new(worker_clients.kms.clone())),
        },
        config,
    );
    // A copy of a job for the healthy webhook kept aside: handed out again after its attempt was
    // made, it meets the settled claim and the record it names (GetItem ATTEMPTS#).
    let queued = queue.receive(10, 1).await.unwrap();
    for m in &queued {
        queue.retry_after(&m.receipt, 0).await.unwrap();
    }
    let kept = queued
        .iter()
        .find(|m| m.body.contains(&ok_id))
        .expect("a job for the healthy webhook")
        .body
        .clone();
    work(&worker, queue.as_ref(), 10).await;
    let copy = worker.process_message(&kept, 2).await;
    assert!(
        matches!(copy, delivery_worker::DeliveryOutcome::Dropped { .. }),
        "a copy of a made attempt: {copy:?}"
    );
    // A take-over: a copy meeting an unsettled claim whose lease ran out (its holder crashed
    // before its record) reads the next attempt's claim first (GetItem DEDUPE#), then makes the
    // attempt and, delivered, marks the next attempt's claim done. (Its own run, so its claim
    // key is fresh; the crashed holder's claim planted unrecorded.)
    let mut job: relay_shared::delivery::DeliveryJob = serde_json::from_str(&kept).unwrap();
    job.run = "iam-take-over".into();
    let past = chrono::Utc::now() - chrono::Duration::minutes(5);
    aws.stores
        .dedupe
        .claim_attempt(
            &job.claim_key(job.next_attempt()),
            relay_shared::ports::AttemptRef {
                subscription_id: job.subscription_id,
                attempt_id: relay_shared::ids::AttemptId::new_at(past.timestamp_millis() as u64),
            },
            relay_shared::ports::Term::new(past, past + chrono::Duration::seconds(1)),
            chrono::Utc::now() + chrono::Duration::days(1),
        )
        .await
        .unwrap();
    let taken = worker
        .process_message(&serde_json::to_string(&job).unwrap(), 2)
        .await;
    assert!(
        matches!(taken, delivery_worker::DeliveryOutcome::Delivered { .. }),
        "a take-over with no successor: {taken:?}"
    );
    used.insert("DeliveryWorkerFunction", accesses(&worker_clients.recorder));

    // The API again: replay, the delivery log of a failed webhook, redrive, delete.
    let since = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    let until = (chrono::Utc::now() + chrono::Duration::minutes(1)).to_rfc3339();
    for (method, path, key_, body) in [
        (
            Method::POST,
            format!("/api/hooks/webhooks/{ok_id}/replay"),
            USER_KEY,
            Some(json!({"since": since, "until": until})),
        ),
        (
            Method::GET,
            format!("/api/hooks/webhooks/{fail_id}/deliveries"),
            USER_KEY,
            None,
        ),
        (
            Method::POST,
            "/api/hooks/dlq/redrive".to_owned(),
            ADMIN_KEY,
            Some(json!({})),
        ),
        (
            Method::DELETE,
            format!("/api/hooks/webhooks/{fail_id}"),
            USER_KEY,
            None,
        ),
    ] {
        let (status, answer) = api.call(method.clone(), &path, key_, body, None).await;
        assert!(status < 300, "{method} {path}: {status} {answer}");
        if path.ends_with("/redrive") {
            assert!(
                answer["moved"].as_u64() >= Some(1),
                "the failing webhook's job was dead-lettered: {answer}"
            );
        }
    }
    // The inspection routes: stats, an attempt's detail (its body from the event log), the
    // filtered delivery log, the event log, resending one of its events, the dead-letter depth.
    let get = |path: String, key_: &'static str| {
        let api = &api;
        async move {
            let (status, answer) = api.call(Method::GET, &path, key_, None, None).await;
            assert_eq!(status, 200, "GET {path}: {answer}");
            answer
        }
    };
    let log = get(format!("/api/hooks/webhooks/{ok_id}/deliveries"), USER_KEY).await;
    let attempt = log["data"][0]["id"]
        .as_str()
        .expect("an attempt")
        .to_owned();
    get(
        format!("/api/hooks/webhooks/{ok_id}/deliveries/{attempt}"),
        USER_KEY,
    )
    .await;
    let window = format!("since={}", since.replace('+', "%2B"));
    get(
        format!("/api/hooks/webhooks/{ok_id}/deliveries?eventType=telephony:created&{window}"),
        USER_KEY,
    )
    .await;
    // An attempt of an hour ago (written by the test, not by a function): its bucket is closed,
    // so the stats GET materialises it (BatchWriteItem on STATS#), then moves the watermark.
    let hour_ago = chrono::Utc::now() - chrono::Duration::hours(1);
    let old = testkit::fixtures::attempt(
        ok_id.parse().unwrap(),
        relay_shared::ids::EventId::new_at(hour_ago.timestamp_millis() as u64),
        1,
        relay_shared::delivery::AttemptStatus::Succeeded,
        hour_ago,
    );
    aws.stores
        .attempts
        .record(&old, hour_ago + chrono::Duration::days(1))
        .await
        .unwrap();
    get(format!("/api/hooks/webhooks/{ok_id}/stats"), USER_KEY).await;
    let events = get(format!("/api/hooks/events?{window}"), USER_KEY).await;
    let event = events["data"][0]["id"]
        .as_str()
        .expect("an event")
        .to_owned();
    let (status, answer) = api
        .call(
            Method::POST,
            &format!("/api/hooks/webhooks/{ok_id}/events/{event}/resend"),
            USER_KEY,
            None,
            None,
        )
        .await;
    assert_eq!(status, 202, "resend: {answer}");
    get("/api/hooks/dlq".to_owned(), ADMIN_KEY).await;
    let mut api_used = used.remove("api-setup").unwrap();
    api_used.extend(accesses(&api_clients.recorder));
    used.insert("WebhooksApiFunction", api_used);
    // The worker on what replay and redrive queued, the deleted webhook's jobs among them.
    work(&worker, queue.as_ref(), 10).await;
    used.get_mut("DeliveryWorkerFunction")
        .unwrap()
        .extend(accesses(&worker_clients.recorder));

    // ---- presence poller: baseline, a change fanned out to the subscriptions wanting it.
    let poller_clients = function_clients(&sdk, &aws.table, &key);
    let mut people = testkit::fake_webex::people(3, Some("active"));
    let fake = testkit::fake_webex::FakeWebex::start(people.clone()).await;
    // The admin token's org is the subscriptions' (the poller lists it with `orgId`).
    fake.set_org(&org);
    let webex = Arc::new(presence_poller::token::RefreshingWebex::new(
        Arc::new(presence_poller::token::StaticToken("t".into())),
        presence_poller::token::http_clients(&fake.base_url),
    ));
    let mut presence = presence_poller::PollerConfig::new(&org);
    presence.poll_interval = Duration::from_millis(20);
    presence.safety_margin = Duration::ZERO;
    presence.webex_calls_per_minute = 60_000;
    let poller = presence_poller::Poller::new(
        &poller_clients.stores,
        webex,
        queue.clone() as Arc<dyn DeliveryQueue>,
        clock.clone(),
        presence,
    );
    let far = tokio::time::Instant::now() + Duration::from_secs(30);
    let first = poller
        .run(presence_poller::RunOptions::until("iam-1", far).max_cycles(1))
        .await;
    people[1]["status"] = json!("DoNotDisturb");
    fake.set_people(people);
    let second = poller
        .run(presence_poller::RunOptions::until("iam-2", far).max_cycles(2))
        .await;
    assert_eq!(
        (first.baseline_recorded, second.events),
        (3, 1),
        "{first:?} {second:?}"
    );
    // Webex throttles a cycle: `presence:throttled` to the org's subscribers that want it, counted
    // in the operational events' per-subject rate limit (RATE#ops#…).
    fake.fault(None, testkit::fake_webex::Fault::rate_limited(429, 30));
    let throttled = poller
        .run(
            presence_poller::RunOptions::until(
                "iam-3",
                tokio::time::Instant::now() + Duration::from_millis(300),
            )
            .max_cycles(1),
        )
        .await;
    assert_eq!(throttled.failed_cycles, 1, "{throttled:?}");
    used.insert("PresencePollerFunction", accesses(&poller_clients.recorder));

    // ---- the comparison
    let template = template();
    let mut findings = Vec::new();
    for (function, accesses) in &used {
        println!("{function}:");
        for a in accesses {
            println!("  {} {} {}", a.action, a.resource, a.scope);
        }
        findings.extend(policy_findings(&template, function, accesses));
    }
    // The finding of issue 13 itself, spelled out: the internet-facing ingest reads no API key,
    // idempotency record or attempt, and cannot open a signing secret.
    let ingest_grants = grants_of(&template, "TelephonyIngestFunction").grants;
    for g in &ingest_grants {
        assert!(
            !["KEY#*", "IDEM#*", "ATTEMPTS#*"].contains(&g.scope.as_str()) && g.resource != "key",
            "the ingest is granted {g:?}"
        );
    }
    assert!(
        findings.is_empty(),
        "template.yaml's policies and what the functions do differ:\n{}",
        findings.join("\n")
    );
}

/// The checker itself: what the old template (DynamoDBCrudPolicy on the whole table) gets.
#[test]
fn the_checker_refuses_whole_table_grants_and_unused_prefixes() {
    let old: Yaml = serde_yaml::from_str(
        r#"
Resources:
  F:
    Properties:
      Policies:
        - DynamoDBCrudPolicy:
            TableName: !Ref RelayTable
        - AmazonDynamoDBFullAccess
        - Statement:
            - Effect: Allow
              Action: [dynamodb:GetItem, dynamodb:PutItem]
              Resource: !GetAtt RelayTable.Arn
              Condition:
                ForAllValues:StringLike:
                  dynamodb:LeadingKeys: ["SUB#*", "KEY#*"]
            - Effect: Allow
              Action: dynamodb:Scan
              Resource: !GetAtt RelayTable.Arn
              Condition:
                ForAllValues:StringLike:
                  dynamodb:LeadingKeys: ["SUB#*"]
            - Effect: Allow
              Action: dynamodb:Query
              Resource: !Sub "${RelayTable.Arn}/index/gsi2"
            - Effect: Allow
              Action: kms:Decrypt
              Resource: !GetAtt SecretsKey.Arn
              Condition:
                ForAllValues:StringEquals:
                  kms:EncryptionContextKeys: [relay:org, relay:subscription]
                "Null":
                  kms:EncryptionContext:relay:org: "false"
                  kms:EncryptionContext:relay:subscription: "false"
            - Sid: WeakContext
              Effect: Allow
              Action: kms:GenerateDataKey
              Resource: !GetAtt SecretsKey.Arn
              Condition:
                ForAllValues:StringEquals:
                  kms:EncryptionContextKeys: [relay:org, relay:subscription]
                "Null":
                  kms:EncryptionContextKeys: "false"
"#,
    )
    .unwrap();
    let used: BTreeSet<Access> = [
        ("dynamodb:GetItem", "table", "SUB#"),
        ("dynamodb:PutItem", "table", "CALL#"),
        ("dynamodb:Query", "index/gsi2", "ORG#"),
        ("kms:Decrypt", "key", "relay:org,relay:subscription"),
    ]
    .into_iter()
    .map(|(a, r, s)| Access {
        action: a.into(),
        resource: r.into(),
        scope: s.into(),
    })
    .collect();
    let findings = policy_findings(&old, "F", &used);
    let has = |needle: &str| findings.iter().any(|f| f.contains(needle));
    assert!(
        has("SAM policy template DynamoDBCrudPolicy"),
        "{findings:#?}"
    );
    assert!(
        has("needs dynamodb:PutItem on table for CALL#"),
        "{findings:#?}"
    );
    assert!(
        has("granted dynamodb:GetItem on table for KEY#* but never uses it"),
        "{findings:#?}"
    );
    assert!(
        has("granted dynamodb:PutItem on table for SUB#* but never uses it"),
        "{findings:#?}"
    );
    assert!(
        has("needs a ForAllValues:StringLike dynamodb:LeadingKeys"),
        "{findings:#?}"
    );
    assert!(
        has("needs dynamodb:Query on index/gsi2 for ORG#"),
        "{findings:#?}"
    );
    assert!(has("dynamodb:Scan names no partition key"), "{findings:#?}");
    assert!(
        has("granted dynamodb:Scan on table for SUB#* but never uses it"),
        "{findings:#?}"
    );
    assert!(!has("kms:Decrypt"), "{findings:#?}");
    assert!(
        has("policy String(\"AmazonDynamoDBFullAccess\")"),
        "{findings:#?}"
    );
    assert!(
        has("F/WeakContext: a KMS grant needs ForAllValues:StringEquals kms:EncryptionContextKeys and, for each of those keys"),
        "{findings:#?}"
    );
    assert_eq!(findings.len(), 11, "{findings:#?}");
}
