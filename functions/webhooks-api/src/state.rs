//! What every handler shares: the stores, the queues, the clock, the secrets sealer and the
//! configuration.

use std::sync::Arc;

use relay_shared::operational::{OperationalArgs, OperationalEmitter};
use relay_shared::ports::{Clock, CorePorts, DeliveryQueue, QueueConsumer, Stores};
use relay_shared::secrets_at_rest::SecretSealer;

use crate::config::ApiConfig;

#[derive(Clone)]
pub struct AppState {
    pub stores: Stores,
    /// Where test, replay and redriven jobs are sent.
    pub queue: Arc<dyn DeliveryQueue>,
    /// The dead-letter queue's consuming side (for `POST /api/hooks/dlq/redrive`).
    pub dead_letter_source: Arc<dyn QueueConsumer>,
    pub clock: Arc<dyn Clock>,
    /// Seals every signing secret before it is stored (KMS on AWS, a local key in the local stack
    /// and tests; `SECRETS_KMS_KEY_ID` / `SECRETS_LOCAL_KEY`): the table never holds one in the
    /// clear (docs/security.md).
    pub sealer: SecretSealer,
    pub config: Arc<ApiConfig>,
    /// Sends the API's operational events (`webhook:disabled` by hand), built from the same
    /// ports as the rest, as the worker's. The default rate limit: the API disables one webhook
    /// per request, so the limit is only the backstop.
    pub operational: OperationalEmitter,
}

impl AppState {
    pub fn new(
        core: CorePorts,
        dead_letter_source: Arc<dyn QueueConsumer>,
        sealer: SecretSealer,
        config: ApiConfig,
    ) -> Self {
        let operational = OperationalEmitter::from_core(&core, &OperationalArgs::default());
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
            sealer,
            config: Arc::new(config),
            operational,
        }
    }
}
