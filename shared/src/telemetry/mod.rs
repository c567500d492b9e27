//! OpenTelemetry tracing, configured by the standard `OTEL_*` variables and off unless an OTLP
//! endpoint is set (docs/observability.md, "Tracing").
//!
//! Off (the default): no exporter, no OpenTelemetry layer in the subscriber, no background
//! thread; [`Telemetry::flush`] returns at once. The relay still gives each request a W3C trace
//! id of its own ([`context`]), so log lines and attempt records correlate across functions.
//!
//! On (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or `OTEL_EXPORTER_OTLP_ENDPOINT` set, `OTEL_SDK_DISABLED`
//! not `true`, `OTEL_TRACES_EXPORTER` unset or `otlp`): the relay's own spans (never other
//! crates', never log events) go to a batch span processor exporting OTLP http/protobuf —
//! what the AWS Distro for OpenTelemetry Lambda layer's collector takes on localhost:4318. A
//! Lambda function calls [`Telemetry::flush`] at the end of every invocation: the runtime
//! freezes the process once the invocation returns, so a batch left for later might never go.
//! The sampler (`OTEL_TRACES_SAMPLER`, `_ARG`), the batch knobs (`OTEL_BSP_*`), headers,
//! timeout and compression of the exporter, and the resource (`OTEL_SERVICE_NAME`,
//! `OTEL_RESOURCE_ATTRIBUTES`) are read by the OpenTelemetry SDK itself.

pub mod context;

use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};

pub use context::{
    carrier, current, set_attribute, set_error, start, SpanIds, Start, TraceCarrier,
};

/// Whether this process exports traces (set once, by [`build`]).
static ENABLED: AtomicBool = AtomicBool::new(false);

/// Is trace export on in this process? Everything OpenTelemetry-specific is skipped when not.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// What the `OTEL_*` variables ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TracingConfig {
    /// No export; the reason, for the start-up log line (`None`: nothing configured, the default).
    Off { warning: Option<String> },
    On {
        /// The OTLP traces URL (`…/v1/traces`).
        endpoint: String,
        /// The service name to use when neither `OTEL_SERVICE_NAME` nor
        /// `OTEL_RESOURCE_ATTRIBUTES` names one (the function's name).
        default_service_name: Option<String>,
    },
}

impl TracingConfig {
    /// From the process environment.
    pub fn from_env(function: &str) -> Self {
        Self::from_lookup(function, |k| std::env::var(k).ok())
    }

    /// From `lookup` (the environment, or a test's map): the OpenTelemetry specification's
    /// rules for the variables this relay honours.
    pub fn from_lookup(function: &str, lookup: impl Fn(&str) -> Option<String>) -> Self {
        let get = |k: &str| {
            lookup(k)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let off = |warning: Option<String>| TracingConfig::Off { warning };
        if get("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            return off(None);
        }
        match get("OTEL_TRACES_EXPORTER").map(|v| v.to_ascii_lowercase()) {
            None => {}
            Some(v) if v == "otlp" => {}
            Some(v) if v == "none" => return off(None),
            Some(v) => {
                return off(Some(format!(
                    "OTEL_TRACES_EXPORTER={v} is not supported (only otlp or none): traces are not exported"
                )))
            }
        }
        let endpoint = match (
            get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
            get("OTEL_EXPORTER_OTLP_ENDPOINT"),
        ) {
            // The signal's own URL is used as it is; the general one gets the signal's path.
            (Some(url), _) => url,
            (None, Some(base)) => format!("{}/v1/traces", base.trim_end_matches('/')),
            (None, None) => return off(None),
        };
        let protocol = get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            .or_else(|| get("OTEL_EXPORTER_OTLP_PROTOCOL"));
        if let Some(p) = protocol.filter(|p| p != "http/protobuf") {
            return off(Some(format!(
                "OTEL_EXPORTER_OTLP_PROTOCOL={p} is not supported (only http/protobuf, e.g. the ADOT \
                 collector on localhost:4318): traces are not exported"
            )));
        }
        let named = get("OTEL_SERVICE_NAME").is_some()
            || get("OTEL_RESOURCE_ATTRIBUTES").is_some_and(|a| {
                a.split(',')
                    .any(|kv| kv.split('=').next().map(str::trim) == Some("service.name"))
            });
        TracingConfig::On {
            endpoint,
            default_service_name: (!named).then(|| function.to_owned()),
        }
    }
}

/// The process's trace export: flushed at the end of each Lambda invocation, shut down at exit.
/// Cheap to clone. Off: every method returns at once.
#[derive(Clone, Default)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry")
            .field("enabled", &self.is_enabled())
            .finish()
    }
}

impl Telemetry {
    pub fn off() -> Self {
        Self::default()
    }

    pub fn is_enabled(&self) -> bool {
        self.provider.is_some()
    }

    /// Exports every ended span now and waits for the collector's answer (bounded by the
    /// exporter's timeout, `OTEL_EXPORTER_OTLP_TIMEOUT`). On a blocking thread: the batch
    /// processor's flush blocks.
    pub async fn flush(&self) {
        let Some(provider) = self.provider.clone() else {
            return;
        };
        match tokio::task::spawn_blocking(move || provider.force_flush()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "could not export traces"),
            Err(e) => tracing::warn!(error = %e, "trace flush task failed"),
        }
    }

    /// Flushes and stops the exporter (a long-running process at exit).
    pub fn shutdown(&self) {
        if let Some(provider) = &self.provider {
            if let Err(e) = provider.shutdown() {
                tracing::warn!(error = %e, "trace exporter shutdown failed");
            }
        }
    }

    /// The tracer for the OpenTelemetry layer.
    pub(crate) fn tracer(&self) -> Option<SdkTracer> {
        self.provider.as_ref().map(|p| p.tracer("webex-relay"))
    }
}

/// Builds the exporter and provider for `config` (nothing for `Off`), and marks the process as
/// exporting.
pub fn build(config: &TracingConfig) -> Result<Telemetry, String> {
    let TracingConfig::On {
        endpoint,
        default_service_name,
    } = config
    else {
        return Ok(Telemetry::off());
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(endpoint.clone())
        .build()
        .map_err(|e| format!("building the OTLP exporter for {endpoint}: {e}"))?;
    let mut resource = opentelemetry_sdk::Resource::builder();
    if let Some(name) = default_service_name {
        resource = resource.with_service_name(name.clone());
    }
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build();
    ENABLED.store(true, Ordering::Relaxed);
    Ok(Telemetry {
        provider: Some(provider),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> TracingConfig {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        TracingConfig::from_lookup("delivery-worker", |k| map.get(k).cloned())
    }

    #[test]
    fn otel_variables_decide_export() {
        assert_eq!(config(&[]), TracingConfig::Off { warning: None });
        assert_eq!(
            config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4318/")]),
            TracingConfig::On {
                endpoint: "http://localhost:4318/v1/traces".into(),
                default_service_name: Some("delivery-worker".into()),
            }
        );
        assert_eq!(
            config(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://ignored:4318"),
                ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://c:4318/custom"),
                ("OTEL_SERVICE_NAME", "relay-worker"),
            ]),
            TracingConfig::On {
                endpoint: "http://c:4318/custom".into(),
                default_service_name: None,
            }
        );
        for off in [
            &[("OTEL_SDK_DISABLED", "TRUE")][..],
            &[("OTEL_TRACES_EXPORTER", "none")],
        ] {
            let mut vars = off.to_vec();
            vars.push(("OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4318"));
            assert_eq!(
                config(&vars),
                TracingConfig::Off { warning: None },
                "{off:?}"
            );
        }
        for unsupported in [
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_TRACES_EXPORTER", "zipkin"),
        ] {
            let c = config(&[
                unsupported,
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4318"),
            ]);
            assert!(
                matches!(c, TracingConfig::Off { warning: Some(_) }),
                "{unsupported:?}: {c:?}"
            );
        }
        let named = config(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4318"),
            (
                "OTEL_RESOURCE_ATTRIBUTES",
                "deployment.environment=prod, service.name=x",
            ),
        ]);
        assert!(matches!(
            named,
            TracingConfig::On {
                default_service_name: None,
                ..
            }
        ));
    }

    /// A loopback OTLP receiver for one request: answers 200 and hands back what was posted.
    fn one_request_receiver() -> (String, std::sync::mpsc::Receiver<(String, usize)>) {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let (head, body_len) = loop {
                let n = conn.read(&mut chunk).unwrap();
                assert!(n > 0, "connection closed mid-request");
                buf.extend_from_slice(&chunk[..n]);
                if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                    let len = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .map(|v| v.trim().parse::<usize>().unwrap())
                        .unwrap_or(0);
                    while buf.len() < end + 4 + len {
                        let n = conn.read(&mut chunk).unwrap();
                        assert!(n > 0, "connection closed mid-body");
                        buf.extend_from_slice(&chunk[..n]);
                    }
                    break (head, len);
                }
            };
            // Handed over before the answer: once the client has the answer, the channel has it.
            let _ = tx.send((head, body_len));
            conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n")
                .unwrap();
        });
        (format!("http://{addr}"), rx)
    }

    /// What a Lambda invocation relies on: `flush` returns once the collector has the spans
    /// (OTLP http/protobuf to `/v1/traces`), so nothing is left when the runtime freezes.
    #[tokio::test]
    async fn flush_exports_the_ended_spans_before_returning() {
        let (endpoint, received) = one_request_receiver();
        let config = TracingConfig::from_lookup("t", |k| {
            (k == "OTEL_EXPORTER_OTLP_ENDPOINT").then(|| endpoint.clone())
        });
        let telemetry = build(&config).unwrap();
        let dispatch = crate::logging::subscriber(
            crate::logging::LogFormat::Json,
            "info",
            &telemetry,
            std::io::sink,
        );
        tracing::dispatcher::with_default(&dispatch, || {
            let span = tracing::info_span!("request");
            start(&span, Start::default());
        });
        telemetry.flush().await;
        // No waiting here: the flush returned after the collector's answer, which it sends
        // after handing the request over (the batch's own schedule is 5 s away).
        let (head, body_len) = received
            .try_recv()
            .expect("the spans were posted by the time flush returned");
        assert!(head.starts_with("post /v1/traces "), "{head}");
        assert!(
            head.contains("content-type: application/x-protobuf"),
            "{head}"
        );
        assert!(body_len > 0);
        telemetry.shutdown();
    }
}
