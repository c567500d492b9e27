use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::interceptors::{
    AfterDeserializationInterceptorContextRef, BeforeSerializationInterceptorContextRef,
    BeforeTransmitInterceptorContextMut, BeforeTransmitInterceptorContextRef,
    FinalizerInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_smithy_runtime_api::client::orchestrator::Metadata;

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
/// * **sequential round trips** ([`OpCounter::take_rounds`]): the stretches of time with at least
///   one call in flight, over every client whose counter shares the tracker
///   ([`OpCounter::sharing_rounds`]). Calls run concurrently (`join!`) overlap: one round; a call
///   made after another's answer starts a new one. Counted from the order of the SDK's own
///   start and end hooks, not from clocks, so the count is deterministic: the futures of a
///   `join!` are all polled, and each sends its request, before any of them can see an answer.
#[derive(Debug, Clone, Default)]
pub struct OpCounter {
    counts: Arc<Mutex<BTreeMap<String, u32>>>,
    requests: Option<Arc<Mutex<Vec<Request>>>>,
    capacity: Arc<Mutex<Capacity>>,
    rounds: Arc<Mutex<Rounds>>,
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

#[derive(Debug, Default)]
struct Rounds {
    in_flight: usize,
    count: usize,
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
        let mut rounds = self.rounds.lock().unwrap();
        let n = rounds.count;
        rounds.count = usize::from(rounds.in_flight > 0);
        n
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
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let mut rounds = self.rounds.lock().unwrap();
        if rounds.in_flight == 0 {
            rounds.count += 1;
        }
        rounds.in_flight += 1;
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
        let mut rounds = self.rounds.lock().unwrap();
        rounds.in_flight = rounds.in_flight.saturating_sub(1);
        Ok(())
    }
}
