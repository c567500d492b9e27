use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::interceptors::{
    AfterDeserializationInterceptorContextRef, BeforeSerializationInterceptorContextRef,
    BeforeTransmitInterceptorContextMut, BeforeTransmitInterceptorContextRef,
    FinalizerInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, Metadata};

/// An SDK interceptor that counts the requests a client sends, by operation (the
/// `x-amz-target` header's last part, e.g. `PutItem`, `SendMessageBatch`), retries included. A
/// DynamoDB request naming an `IndexName` counts as `<Op>(index)`. The cost model's call counts
/// come from it; attach a clone to a DynamoDB, SQS or KMS client config with `.interceptor(…)`.
/// [`OpCounter::recording`] also keeps each request's target and body (the IAM policy test,
/// local-stack/tests/it/iam_policy.rs, reads what each function asks for from them).
///
/// It also adds up:
/// * **capacity** ([`OpCounter::take_capacity`]): every DynamoDB request it sees is sent with
///   `ReturnConsumedCapacity: TOTAL` (free; set here, so no adapter needs to ask), and the
///   `ConsumedCapacity` each answer reports is summed, as write units for writes, read units
///   for reads. DynamoDB Local reports it as DynamoDB does (checked: a 3 KB PutItem 3.0, a
///   strongly consistent GetItem 1.0, an eventually consistent one 0.5). A write refused by its
///   condition reports nothing but is billed all the same: it counts 1 write unit (the minimum;
///   more for an item over 1 KiB, which the relay's conditional writes are not);
/// * **sequential round trips** ([`OpCounter::take_rounds`], a [`RoundTracker`]): the stretches
///   of time with at least one call in flight, over every client whose counter shares the
///   tracker ([`OpCounter::sharing_rounds`]). Calls run concurrently (`join!`) overlap: one round;
///   a call made after another's answer starts a new one. Counted from the order of the SDK's own
///   hooks, not from clocks. A call starts at `read_before_execution`, which the SDK runs in the
///   first poll of `send()` (before its first await); it ends at `read_after_execution`. Give the
///   client [`OpCounter::http_client`] and the count is deterministic: that client answers no
///   request in the poll that sent it, so the futures of a `join!` all start (its first poll
///   polls each) before any can end, however fast the server. Without it, two `join!`ed calls are
///   one round only as long as the first answer takes longer than polling the next sibling,
///   which is true in practice but not by construction. (It assumes, as the adapters do, that
///   a store method reaches `send()` without awaiting anything first.)
#[derive(Debug, Clone, Default)]
pub struct OpCounter {
    counts: Arc<Mutex<BTreeMap<String, u32>>>,
    requests: Option<Arc<Mutex<Vec<Request>>>>,
    capacity: Arc<Mutex<Capacity>>,
    rounds: RoundTracker,
}

/// One request an [`OpCounter::recording`] saw.
#[derive(Debug, Clone)]
pub struct Request {
    /// The whole `x-amz-target`, e.g. `DynamoDB_20120810.GetItem`, `TrentService.Decrypt`.
    pub target: String,
    /// The JSON body.
    pub body: Vec<u8>,
}

/// DynamoDB capacity consumed, as the service reported it ([`OpCounter`]).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Capacity {
    /// Write request units (on-demand) / write capacity units.
    pub write: f64,
    /// Read request units / read capacity units.
    pub read: f64,
}

/// Sequential round trips, counted as busy periods: a call started while none is in flight opens
/// a round; calls started before every call of the round has ended join it. The one home of this
/// rule: the [`OpCounter`] feeds it from the SDK's hooks, tests of the ports feed it from store
/// wrappers ([`RoundTracker::traced`]; telephony-ingest's tests/it/rounds.rs). Clones share it.
#[derive(Debug, Clone, Default)]
pub struct RoundTracker(Arc<Mutex<Rounds>>);

#[derive(Debug, Default)]
struct Rounds {
    in_flight: usize,
    /// The operations each round (so far) started, in round order.
    log: Vec<BTreeSet<String>>,
}

impl RoundTracker {
    /// A call of `op` starts.
    pub fn start(&self, op: &str) {
        let mut r = self.0.lock().unwrap();
        if r.in_flight == 0 {
            r.log.push(BTreeSet::new());
        }
        r.in_flight += 1;
        if let Some(round) = r.log.last_mut() {
            round.insert(op.to_owned());
        }
    }

    /// A call started with [`RoundTracker::start`] has its answer.
    pub fn end(&self) {
        let mut r = self.0.lock().unwrap();
        r.in_flight = r.in_flight.saturating_sub(1);
    }

    /// `call`, a call of `op`, traced: started before its first poll, ended when it is ready.
    pub async fn traced<T>(&self, op: &str, call: impl Future<Output = T>) -> T {
        self.start(op);
        let out = call.await;
        self.end();
        out
    }

    /// The rounds so far, resetting the count. A call still in flight stays counted in the next.
    pub fn take(&self) -> usize {
        self.take_log().len()
    }

    /// The operations of each round so far, resetting them (as [`RoundTracker::take`]).
    pub fn take_log(&self) -> Vec<BTreeSet<String>> {
        let mut r = self.0.lock().unwrap();
        let open = (r.in_flight > 0).then(|| r.log.last().cloned()).flatten();
        let log = std::mem::take(&mut r.log);
        r.log.extend(open);
        log
    }
}

/// The HTTP client of [`OpCounter::http_client`]: `inner`, with every request's first poll
/// answering `Pending` (a `yield_now` before the request is made).
#[derive(Debug, Clone)]
struct NoAnswerInFirstPoll(SharedHttpClient);

#[derive(Debug)]
struct NoAnswerInFirstPollConnector(SharedHttpConnector);

impl HttpClient for NoAnswerInFirstPoll {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(NoAnswerInFirstPollConnector(
            self.0.http_connector(settings, components),
        ))
    }
}

impl HttpConnector for NoAnswerInFirstPollConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let inner = self.0.clone();
        HttpConnectorFuture::new(async move {
            tokio::task::yield_now().await;
            inner.call(request).await
        })
    }
}

/// The operations that read (their capacity is read units); every other DynamoDB operation that
/// reports capacity writes.
const READS: [&str; 5] = [
    "GetItem",
    "BatchGetItem",
    "Query",
    "Scan",
    "TransactGetItems",
];

/// The operations that take `ReturnConsumedCapacity`.
const WITH_CAPACITY: [&str; 10] = [
    "GetItem",
    "BatchGetItem",
    "Query",
    "Scan",
    "TransactGetItems",
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "BatchWriteItem",
    "TransactWriteItems",
];

fn dynamodb_op(target: &str) -> Option<&str> {
    target.strip_prefix("DynamoDB_")?.split('.').nth(1)
}

/// The sum of the `CapacityUnits` of a `ConsumedCapacity` (one object, or a list for batches and
/// transactions).
fn capacity_units(answer: &serde_json::Value) -> f64 {
    let one = |c: &serde_json::Value| c["CapacityUnits"].as_f64().unwrap_or(0.0);
    match &answer["ConsumedCapacity"] {
        serde_json::Value::Array(all) => all.iter().map(one).sum(),
        c @ serde_json::Value::Object(_) => one(c),
        _ => 0.0,
    }
}

impl OpCounter {
    /// A counter that also keeps every request ([`OpCounter::take_requests`]).
    pub fn recording() -> Self {
        Self {
            requests: Some(Arc::default()),
            ..Self::default()
        }
    }

    /// A new counter (its own counts and capacity) whose calls count towards this one's round
    /// trips: one on the DynamoDB client and one on the SQS client, say, for the rounds of a
    /// handler that calls both.
    pub fn sharing_rounds(&self) -> Self {
        Self {
            rounds: self.rounds.clone(),
            ..Self::default()
        }
    }

    /// The HTTP client to give a counted SDK client (`.http_client(ops.http_client())` beside
    /// `.interceptor(ops.clone())`) so that its round trips count deterministically (see the type):
    /// the SDK's default client (rustls; plain HTTP endpoints such as DynamoDB Local and moto as
    /// well), answering no request in the poll that sent it. Tests only: it costs a task yield
    /// per request.
    pub fn http_client(&self) -> SharedHttpClient {
        use aws_smithy_http_client::tls;
        let inner = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::AwsLc,
            ))
            .build_https();
        SharedHttpClient::new(NoAnswerInFirstPoll(inner))
    }

    /// The round tracker this counter feeds (shared with [`OpCounter::sharing_rounds`]'s).
    pub fn rounds(&self) -> RoundTracker {
        self.rounds.clone()
    }

    /// How many `op` requests were sent so far.
    pub fn get(&self, op: &str) -> u32 {
        self.counts.lock().unwrap().get(op).copied().unwrap_or(0)
    }

    /// The counts so far, resetting them.
    pub fn take(&self) -> BTreeMap<String, u32> {
        std::mem::take(&mut *self.counts.lock().unwrap())
    }

    /// The DynamoDB capacity consumed so far, resetting it.
    pub fn take_capacity(&self) -> Capacity {
        std::mem::take(&mut *self.capacity.lock().unwrap())
    }

    /// The sequential round trips so far (of every counter sharing them), resetting the count. A
    /// call still in flight stays counted in the next.
    pub fn take_rounds(&self) -> usize {
        self.rounds.take()
    }

    /// The requests kept so far (none unless [`OpCounter::recording`]), forgetting them.
    pub fn take_requests(&self) -> Vec<Request> {
        self.requests
            .as_ref()
            .map(|r| std::mem::take(&mut *r.lock().unwrap()))
            .unwrap_or_default()
    }
}

impl Intercept for OpCounter {
    fn name(&self) -> &'static str {
        "OpCounter"
    }

    fn read_before_execution(
        &self,
        _ctx: &BeforeSerializationInterceptorContextRef<'_>,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let op = cfg.load::<Metadata>().map(Metadata::name).unwrap_or("?");
        self.rounds.start(op);
        Ok(())
    }

    fn modify_before_signing(
        &self,
        ctx: &mut BeforeTransmitInterceptorContextMut<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = ctx.request_mut();
        let Some(op) = request
            .headers()
            .get("x-amz-target")
            .and_then(dynamodb_op)
            .map(str::to_owned)
        else {
            return Ok(());
        };
        if !WITH_CAPACITY.contains(&op.as_str()) {
            return Ok(());
        }
        let Some(mut body) = request
            .body()
            .bytes()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok())
        else {
            return Ok(());
        };
        let Some(fields) = body.as_object_mut() else {
            return Ok(());
        };
        if fields.contains_key("ReturnConsumedCapacity") {
            return Ok(());
        }
        fields.insert("ReturnConsumedCapacity".into(), "TOTAL".into());
        let bytes = serde_json::to_vec(&body)?;
        request
            .headers_mut()
            .insert("content-length", bytes.len().to_string());
        *request.body_mut() = bytes.into();
        Ok(())
    }

    fn read_before_transmit(
        &self,
        ctx: &BeforeTransmitInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(target) = ctx.request().headers().get("x-amz-target") {
            let mut op = target.rsplit('.').next().unwrap_or(target).to_owned();
            let body = ctx.request().body().bytes().unwrap_or_default();
            if body.windows(11).any(|w| w == b"\"IndexName\"") {
                op.push_str("(index)");
            }
            *self.counts.lock().unwrap().entry(op).or_default() += 1;
            if let Some(requests) = &self.requests {
                requests.lock().unwrap().push(Request {
                    target: target.to_owned(),
                    body: body.to_vec(),
                });
            }
        }
        Ok(())
    }

    fn read_after_deserialization(
        &self,
        ctx: &AfterDeserializationInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // The request has been sent (and taken from the context) by now; the operation's
        // metadata stays in the config bag.
        let Some(op) = cfg
            .load::<Metadata>()
            .filter(|m| m.service().eq_ignore_ascii_case("dynamodb"))
            .map(Metadata::name)
        else {
            return Ok(());
        };
        let is_read = READS.contains(&op);
        let answer: serde_json::Value = ctx
            .response()
            .body()
            .bytes()
            .and_then(|b| serde_json::from_slice(b).ok())
            .unwrap_or_default();
        let mut units = capacity_units(&answer);
        let refused = answer["__type"]
            .as_str()
            .is_some_and(|t| t.ends_with("ConditionalCheckFailedException"));
        if refused && !is_read {
            units = units.max(1.0);
        }
        let mut capacity = self.capacity.lock().unwrap();
        if is_read {
            capacity.read += units;
        } else {
            capacity.write += units;
        }
        Ok(())
    }

    fn read_after_execution(
        &self,
        _ctx: &FinalizerInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.rounds.end();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ops: &[&str]) -> BTreeSet<String> {
        ops.iter().map(|op| op.to_string()).collect()
    }

    /// Calls in flight together are one round; a call after another's end opens the next; a
    /// call still in flight at `take` counts in the next count too.
    #[tokio::test]
    async fn rounds_are_busy_periods() {
        let rounds = RoundTracker::default();
        let pending_once = || tokio::task::yield_now();
        tokio::join!(
            rounds.traced("a", pending_once()),
            rounds.traced("b", pending_once())
        );
        rounds.traced("c", pending_once()).await;
        assert_eq!(rounds.take_log(), [set(&["a", "b"]), set(&["c"])]);
        assert_eq!(rounds.take(), 0);
        rounds.start("d");
        assert_eq!(rounds.take(), 1);
        rounds.start("e");
        rounds.end();
        rounds.end();
        assert_eq!(rounds.take_log(), [set(&["d", "e"])]);
    }
}
