//! Log setup of every binary: the level comes from `RUST_LOG`, but no value of it can make a log
//! carry a secret, an API key or a body (docs/configuration.md, `RUST_LOG`).
//!
//! Other crates' `debug`/`trace` lines are where those live: `lambda_runtime` logs the raw event
//! (bearer keys, create bodies with signing secrets) at trace, the AWS SDK logs every request and
//! response, bodies included (subscription items carry signing secrets), `h2`/`hyper` frames and
//! headers. So every target that is not one of this workspace's crates is capped at `info`,
//! whatever `RUST_LOG` says. The cap is a filter of its own beside the `EnvFilter` rather than
//! directives appended to it, because a more specific user directive
//! (`aws_smithy_runtime::client=trace`) would win over an appended `aws_smithy_runtime=info`.
//! It is an allowlist of our crates, so a new dependency starts capped too.

use tracing::{Level, Metadata};
use tracing_subscriber::filter::{EnvFilter, FilterFn};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The targets (crate names as `tracing` spells them) that may log below `info`: this
/// workspace's own code, which never puts a secret, a key or a body in a field.
const OWN_CRATES: &[&str] = &[
    "relay_shared",
    "webhooks_api",
    "relay_keys",
    "delivery_worker",
    "telephony_ingest",
    "presence_poller",
    "relayctl",
    "local_stack",
    "testkit",
];

/// The most verbose level a crate outside [`OWN_CRATES`] logs at.
pub const THIRD_PARTY_MAX: Level = Level::INFO;

/// Whether a span or event may be logged at all: ours at any level, others up to `info`.
pub fn allowed(meta: &Metadata<'_>) -> bool {
    *meta.level() <= THIRD_PARTY_MAX || is_own(meta.target())
}

fn is_own(target: &str) -> bool {
    let krate = target.split("::").next().unwrap_or(target);
    OWN_CRATES.contains(&krate)
}

/// How the lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line (CloudWatch-friendly), as on Lambda.
    Json,
    /// Human-readable lines (the local stack without `--log-json`).
    Compact,
}

/// Installs the global subscriber: level from `RUST_LOG` (else `default_filter`), capped as the
/// module says. Safe to call more than once (later calls are no-ops).
pub fn init_logging(format: LogFormat, default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let cap = FilterFn::new(allowed);
    let _ = match format {
        LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .with_current_span(false)
            .with_target(false)
            .finish()
            .with(cap)
            .try_init(),
        LogFormat::Compact => tracing_subscriber::fmt()
            .compact()
            .with_env_filter(filter)
            .with_target(false)
            .finish()
            .with(cap)
            .try_init(),
    };
}

/// JSON logs on stdout (CloudWatch-friendly), level from `RUST_LOG` (default `info`).
/// Safe to call more than once (later calls are no-ops).
pub fn init_json_logging() {
    init_logging(LogFormat::Json, "info");
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// What each line below logs under `RUST_LOG=<filter>` with the cap.
    fn logged(filter: &str) -> String {
        let buf = Buf::default();
        let out = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || out.clone())
            .with_env_filter(EnvFilter::new(filter))
            .finish()
            .with(FilterFn::new(allowed));
        tracing::subscriber::with_default(subscriber, || {
            tracing::trace!(target: "lambda_runtime::layers::api_response", "raw-event");
            tracing::trace!(target: "aws_smithy_runtime::client::orchestrator", "sdk-body");
            tracing::debug!(target: "h2::codec", "h2-frame");
            tracing::info!(target: "aws_config", "sdk-info");
            tracing::trace!(target: "relay_shared::x", "own-trace");
            tracing::trace!(target: "relay_shared_fake", "lookalike");
        });
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        text
    }

    #[test]
    fn other_crates_stay_at_info_whatever_rust_log_says() {
        for filter in [
            "trace",
            "lambda_runtime=trace,aws_smithy_runtime=trace,h2=trace",
            "aws_smithy_runtime::client::orchestrator=trace,lambda_runtime::layers=trace,h2::codec=trace",
        ] {
            let text = logged(filter);
            for hidden in ["raw-event", "sdk-body", "h2-frame", "lookalike"] {
                assert!(!text.contains(hidden), "{filter}: {hidden} logged:\n{text}");
            }
            if filter == "trace" {
                assert!(text.contains("sdk-info"), "{text}");
                assert!(text.contains("own-trace"), "our own trace lines stay: {text}");
            }
        }
    }
}
