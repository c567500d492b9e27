use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;

/// An SDK interceptor that counts the requests a client sends, by operation (the
/// `x-amz-target` header's last part, e.g. `PutItem`, `SendMessageBatch`), retries included. A
/// DynamoDB request naming an `IndexName` counts as `<Op>(index)`. The cost model's call counts
/// come from it; attach a clone to a DynamoDB, SQS or KMS client config with `.interceptor(…)`.
/// [`OpCounter::recording`] also keeps each request's target and body (the IAM policy test,
/// local-stack/tests/it/iam_policy.rs, reads what each function asks for from them).
#[derive(Debug, Clone, Default)]
pub struct OpCounter {
    counts: Arc<Mutex<BTreeMap<String, u32>>>,
    requests: Option<Arc<Mutex<Vec<Request>>>>,
}

/// One request an [`OpCounter::recording`] saw.
#[derive(Debug, Clone)]
pub struct Request {
    /// The whole `x-amz-target`, e.g. `DynamoDB_20120810.GetItem`, `TrentService.Decrypt`.
    pub target: String,
    /// The JSON body.
    pub body: Vec<u8>,
}

impl OpCounter {
    /// A counter that also keeps every request ([`OpCounter::take_requests`]).
    pub fn recording() -> Self {
        Self {
            requests: Some(Arc::default()),
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
}
