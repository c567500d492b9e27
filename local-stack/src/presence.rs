//! The presence loop, when a Webex token and an org are configured.

use std::collections::HashMap;
use std::sync::Arc;

use relay_shared::ports::Clock;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::args::Args;
use crate::backend::Backend;

pub async fn spawn(
    args: &Args,
    _env: &HashMap<String, String>,
    _backend: &Backend,
    _clock: Arc<dyn Clock>,
    _stop: watch::Receiver<bool>,
) -> anyhow::Result<Option<JoinHandle<()>>> {
    if args.webex_token.is_some() && args.presence_org.is_some() {
        tracing::warn!("presence loop: not wired yet");
    }
    Ok(None)
}
