//! Rate-limit windows: `RATE#<name>`/`<window start, Unix s>` (`<name>` is a subscription id for
//! the worker's delivery limit, `test#…`/`replay#…` for the API's quotas) with a counter `n`, incremented by
//! one conditional update (`ADD n :one` if `attribute_not_exists(n) OR n < :limit`), so concurrent
//! workers never count past the limit. Items expire a few minutes after their window.

use async_trait::async_trait;
use chrono::Duration;

use super::common::{is_conditional_failure, key, n, secs, store_error};
use super::DynamoTable;
use crate::error::StoreError;
use crate::ports::{RateLimiter, RateWindow};

/// How long a window's counter is kept after the window starts.
const WINDOW_TTL: Duration = Duration::minutes(5);

#[async_trait]
impl RateLimiter for DynamoTable {
    async fn try_acquire_named(&self, name: &str, window: RateWindow) -> Result<bool, StoreError> {
        if window.limit == 0 {
            return Ok(false);
        }
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(
                format!("RATE#{name}"),
                secs(window.start).to_string(),
            )))
            .update_expression("ADD #n :one SET expires_at = :exp")
            .condition_expression("attribute_not_exists(#n) OR #n < :limit")
            .expression_attribute_names("#n", "n")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":limit", n(window.limit))
            .expression_attribute_values(":exp", n(secs(window.start + WINDOW_TTL)))
            .send()
            .await;
        match res {
            Ok(_) => Ok(true),
            Err(e) if is_conditional_failure(&e) => Ok(false),
            Err(e) => Err(store_error("UpdateItem", e)),
        }
    }
}
