use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;

/// An SDK interceptor that counts the requests a client sends, by operation (the
/// `x-amz-target` header's last part, e.g. `PutItem`, `SendMessageBatch`), retries included. A
/// DynamoDB request naming an `IndexName` counts as `<Op>(index)`. The cost model's call counts
/// come from it; attach a clone to a DynamoDB or SQS client config with `.interceptor(…)`.
#[derive(Debug, Clone, Default)]
pub struct OpCounter(Arc<Mutex<BTreeMap<String, u32>>>);

impl OpCounter {
    /// How many `op` requests were sent so far.
    pub fn get(&self, op: &str) -> u32 {
        self.0.lock().unwrap().get(op).copied().unwrap_or(0)
    }

    /// The counts so far, resetting them.
    pub fn take(&self) -> BTreeMap<String, u32> {
        std::mem::take(&mut *self.0.lock().unwrap())
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
            *self.0.lock().unwrap().entry(op).or_default() += 1;
        }
        Ok(())
    }
}
