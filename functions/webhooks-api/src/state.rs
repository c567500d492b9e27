//! What every handler shares: the stores, the queues, the clock and the configuration.

use std::sync::Arc;

use relay_shared::ports::{Clock, CorePorts, DeliveryQueue, QueueConsumer, Stores};

use crate::config::ApiConfig;

#[derive(Clone)]
pub struct AppState {
    pub stores: Stores,
    /// Where test, replay and redriven jobs are sent.
    pub queue: Arc<dyn DeliveryQueue>,
    /// The dead-letter queue's consuming side (for `POST /api/hooks/dlq/redrive`).
    pub dead_letter_source: Arc<dyn QueueConsumer>,
    pub clock: Arc<dyn Clock>,
    pub config: Arc<ApiConfig>,
}

impl AppState {
    pub fn new(
        core: CorePorts,
        dead_letter_source: Arc<dyn QueueConsumer>,
        config: ApiConfig,
    ) -> Self {
        let CorePorts {
            stores,
            queue,
            clock,
        } = core;
        Self {
            stores,
            queue,
            dead_letter_source,
            clock,
            config: Arc::new(config),
        }
    }
}
