//! What every handler shares: the stores, the queues, the clock and the configuration.

use std::sync::Arc;

use relay_shared::ports::{Clock, DeliveryQueue, QueueConsumer, Stores};

use crate::config::ApiConfig;

#[derive(Clone)]
pub struct AppState {
    pub stores: Stores,
    /// Where test, replay and redriven jobs are sent.
    pub queue: Arc<dyn DeliveryQueue>,
    /// The dead-letter queue's consuming side (for `POST /api/hooks/dlq/redrive`).
    pub dlq: Arc<dyn QueueConsumer>,
    pub clock: Arc<dyn Clock>,
    pub config: Arc<ApiConfig>,
}

impl AppState {
    pub fn new(
        stores: Stores,
        queue: Arc<dyn DeliveryQueue>,
        dlq: Arc<dyn QueueConsumer>,
        clock: Arc<dyn Clock>,
        config: ApiConfig,
    ) -> Self {
        Self {
            stores,
            queue,
            dlq,
            clock,
            config: Arc::new(config),
        }
    }
}
