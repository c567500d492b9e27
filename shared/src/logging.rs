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
//!
//! A JSON line written inside a started span (`crate::telemetry::start`: the ingest request, a
//! delivery job, an invocation) also carries `traceId`, `spanId` and `requestId` at the top
//! level, whether trace export is on or not (docs/observability.md, "Tracing").

use std::fmt;

use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::filter::{EnvFilter, FilterExt, FilterFn};
use tracing_subscriber::fmt::format::{Format, Json, JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::layer::{Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

use crate::telemetry::{SpanIds, Telemetry, TracingConfig};

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

/// The relay's JSON line: tracing-subscriber's, plus `traceId`, `spanId` and `requestId` from
/// the nearest started span of the event's scope.
pub struct JsonWithIds {
    inner: Format<Json>,
}

impl JsonWithIds {
    pub fn new() -> Self {
        Self {
            inner: tracing_subscriber::fmt::format()
                .json()
                .with_current_span(false)
                .with_target(false),
        }
    }
}

impl Default for JsonWithIds {
    fn default() -> Self {
        Self::new()
    }
}

impl<S, N> FormatEvent<S, N> for JsonWithIds
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        // The ids of the nearest started span, as the JSON members to append (one allocation,
        // none when the line is outside any started span).
        let members = ctx.event_scope().and_then(|scope| {
            scope.into_iter().find_map(|span| {
                let ext = span.extensions();
                let ids = ext.get::<SpanIds>()?;
                let mut m = format!(
                    ",\"traceId\":\"{}\",\"spanId\":\"{}\"",
                    ids.trace_id, ids.span_id
                );
                if let Some(request_id) = &ids.request_id {
                    let quoted = serde_json::to_string(request_id).ok()?;
                    m.push_str(",\"requestId\":");
                    m.push_str(&quoted);
                }
                Some(m)
            })
        });
        let Some(members) = members else {
            return self.inner.format_event(ctx, writer, event);
        };
        let mut line = String::new();
        self.inner
            .format_event(ctx, Writer::new(&mut line), event)?;
        // tracing-subscriber's JSON line is one object and a newline: the ids go before its `}`.
        let Some(object) = line.strip_suffix("}\n") else {
            return writer.write_str(&line);
        };
        writer.write_str(object)?;
        writer.write_str(&members)?;
        writer.write_str("}\n")
    }
}

/// The OpenTelemetry layer of `telemetry` (none when export is off): the relay's own spans only,
/// no events (log lines go to CloudWatch, not into spans), no thread or code-location attributes.
fn otel_layer<S>(telemetry: &Telemetry) -> Option<impl Layer<S> + Send + Sync>
where
    S: Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
{
    let tracer = telemetry.tracer()?;
    Some(
        tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_threads(false)
            .with_location(false)
            .with_tracked_inactivity(false)
            .with_filter(FilterFn::new(own_span).with_max_level_hint(Level::INFO)),
    )
}

/// The subscriber [`init`] installs, writing to `writer` (tests pass a buffer).
pub fn subscriber<W>(
    format: LogFormat,
    default_filter: &str,
    telemetry: &Telemetry,
    writer: W,
) -> tracing::Dispatch
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let env = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    // Per layer, not global: the log level decides what is logged, never which spans exist. The
    // relay's own spans are always there (a `warn` line in a request still names its trace, and
    // `RUST_LOG=warn` does not switch tracing off); a span is not a log line by itself.
    let own = FilterFn::new(own_span).with_max_level_hint(Level::INFO);
    let fmt_filter = env.or(own).and(FilterFn::new(allowed));
    let base = tracing_subscriber::registry();
    match format {
        LogFormat::Json => {
            let fmt = tracing_subscriber::fmt::layer()
                .fmt_fields(JsonFields::new())
                .event_format(JsonWithIds::new())
                .with_writer(writer)
                .with_filter(fmt_filter);
            let base = base.with(fmt);
            let otel = otel_layer(telemetry);
            tracing::Dispatch::new(base.with(otel))
        }
        LogFormat::Compact => {
            let fmt = tracing_subscriber::fmt::layer()
                .compact()
                .with_target(false)
                .with_writer(writer)
                .with_filter(fmt_filter);
            let base = base.with(fmt);
            let otel = otel_layer(telemetry);
            tracing::Dispatch::new(base.with(otel))
        }
    }
}

/// A span of the relay's own code at `info` or above: what is traced and names log lines.
fn own_span(meta: &Metadata<'_>) -> bool {
    meta.is_span() && *meta.level() <= Level::INFO && is_own(meta.target())
}

/// Installs the global subscriber: level from `RUST_LOG` (else `default_filter`), capped as the
/// module says; trace export as the `OTEL_*` variables say (`crate::telemetry`), for `service`
/// (the default service name). Returns the export handle (flush it at the end of each Lambda
/// invocation). Safe to call more than once (later calls install nothing and return an
/// exporter-less handle).
pub fn init(format: LogFormat, default_filter: &str, service: &str) -> Telemetry {
    if tracing::dispatcher::has_been_set() {
        return Telemetry::off();
    }
    let config = TracingConfig::from_env(service);
    let (telemetry, problem) = match crate::telemetry::build(&config) {
        Ok(t) => (t, None),
        Err(e) => (Telemetry::off(), Some(e)),
    };
    let dispatch = subscriber(format, default_filter, &telemetry, std::io::stdout);
    if tracing::dispatcher::set_global_default(dispatch).is_err() {
        return Telemetry::off();
    }
    match (&config, problem) {
        (_, Some(e)) => tracing::warn!(error = %e, "trace export is off"),
        (TracingConfig::Off { warning: Some(w) }, None) => tracing::warn!("{w}"),
        (TracingConfig::On { endpoint, .. }, None) => {
            tracing::info!(%endpoint, "exporting traces (OTLP http/protobuf)")
        }
        (TracingConfig::Off { warning: None }, None) => {}
    }
    telemetry
}

/// Installs the global subscriber without trace export (see [`init`]).
pub fn init_logging(format: LogFormat, default_filter: &str) {
    if tracing::dispatcher::has_been_set() {
        return;
    }
    let _ = tracing::dispatcher::set_global_default(subscriber(
        format,
        default_filter,
        &Telemetry::off(),
        std::io::stdout,
    ));
}

/// JSON logs on stdout (CloudWatch-friendly), level from `RUST_LOG` (default `info`).
/// Safe to call more than once (later calls are no-ops).
pub fn init_json_logging() {
    init_logging(LogFormat::Json, "info");
}

/// A function's set-up: JSON logs (default level `info`) and trace export per `OTEL_*`.
pub fn init_function(service: &str) -> Telemetry {
    init(LogFormat::Json, "info", service)
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

    /// The subscriber `init` installs, writing JSON lines to a buffer.
    fn json_subscriber(telemetry: &Telemetry) -> (tracing::Dispatch, Buf) {
        let buf = Buf::default();
        let out = buf.clone();
        let dispatch = subscriber(LogFormat::Json, "info", telemetry, move || out.clone());
        (dispatch, buf)
    }

    fn lines(buf: &Buf) -> Vec<serde_json::Value> {
        String::from_utf8(buf.0.lock().unwrap().clone())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
            .collect()
    }

    /// Off (no OTLP endpoint): no exporter is built and the subscriber has no OpenTelemetry
    /// layer (setting a parent finds none), yet a started span's lines carry its ids.
    #[test]
    fn with_export_off_there_is_no_otel_layer_and_lines_still_carry_the_ids() {
        use crate::telemetry::{build, start, Start, TracingConfig};
        use tracing_opentelemetry::{OpenTelemetrySpanExt, SetParentError};
        let config = TracingConfig::from_lookup("t", |_| None);
        let telemetry = build(&config).unwrap();
        assert!(!telemetry.is_enabled(), "no exporter, no batch thread");
        let (dispatch, buf) = json_subscriber(&telemetry);
        tracing::dispatcher::with_default(&dispatch, || {
            let probe = tracing::info_span!("probe");
            assert!(
                matches!(
                    probe.set_parent(opentelemetry::Context::new()),
                    Err(SetParentError::LayerNotFound)
                ),
                "the off path installs no OpenTelemetry layer"
            );
            tracing::info!("before any request");
            let span = tracing::info_span!("request");
            start(
                &span,
                Start {
                    request_id: Some("req-\"1\""),
                    tracking_id: Some("ROUTER_1"),
                    ..Default::default()
                },
            );
            span.in_scope(|| {
                let inner = tracing::info_span!("inner");
                inner.in_scope(|| tracing::info!(n = 1, "inside"));
                let carrier = crate::telemetry::carrier();
                let ids = crate::telemetry::current().unwrap();
                assert_eq!(carrier.traceparent, Some(ids.traceparent()));
                assert_eq!(carrier.tracking_id().as_deref(), Some("ROUTER_1"));
                // A consumer continuing it: same trace, a span of its own.
                let job = tracing::info_span!(parent: None, "job");
                start(
                    &job,
                    Start {
                        remote: Some(&carrier),
                        ..Default::default()
                    },
                );
                let job_ids = crate::telemetry::context::ids_of(&job).unwrap();
                assert_eq!(job_ids.trace_id, ids.trace_id);
                assert_ne!(job_ids.span_id, ids.span_id);
                assert_eq!(job_ids.tracking_id.as_deref(), Some("ROUTER_1"));
            });
        });
        let lines = lines(&buf);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].get("traceId").is_none(), "outside any request");
        let line = &lines[1];
        assert_eq!(line["fields"]["message"], "inside");
        assert_eq!(line["traceId"].as_str().unwrap().len(), 32, "{line}");
        assert_eq!(line["spanId"].as_str().unwrap().len(), 16, "{line}");
        assert_eq!(line["requestId"], "req-\"1\"");
    }

    /// On (an endpoint set): the layer is there and the ids in the lines are the
    /// OpenTelemetry span's.
    #[test]
    fn with_export_on_the_ids_are_the_otel_spans() {
        use crate::telemetry::{build, start, Start, TracingConfig};
        use opentelemetry::trace::TraceContextExt;
        use tracing_opentelemetry::OpenTelemetrySpanExt;
        // Nothing listens there; nothing is flushed either.
        let config = TracingConfig::from_lookup("t", |k| {
            (k == "OTEL_EXPORTER_OTLP_ENDPOINT").then(|| "http://127.0.0.1:9".to_owned())
        });
        let telemetry = build(&config).unwrap();
        assert!(telemetry.is_enabled());
        let (dispatch, buf) = json_subscriber(&telemetry);
        let otel_trace_id = tracing::dispatcher::with_default(&dispatch, || {
            let span = tracing::info_span!("request");
            start(&span, Start::default());
            let id = span.context().span().span_context().trace_id().to_string();
            span.in_scope(|| tracing::info!("inside"));
            id
        });
        assert_eq!(lines(&buf)[0]["traceId"], otel_trace_id.as_str());
    }

    /// The log level does not decide which spans exist: at `warn` a warning inside a request still
    /// names its trace (and export, were it on, would still see the span).
    #[test]
    fn a_warn_level_keeps_the_ids_on_warnings() {
        if std::env::var_os("RUST_LOG").is_some() {
            return; // the level comes from there then
        }
        let buf = Buf::default();
        let out = buf.clone();
        let dispatch = subscriber(LogFormat::Json, "warn", &Telemetry::off(), move || {
            out.clone()
        });
        tracing::dispatcher::with_default(&dispatch, || {
            let span = tracing::info_span!("request");
            crate::telemetry::start(&span, crate::telemetry::Start::default());
            span.in_scope(|| {
                tracing::info!("not logged at warn");
                tracing::warn!("logged");
            });
        });
        let lines = lines(&buf);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert_eq!(lines[0]["traceId"].as_str().map(str::len), Some(32));
    }
}
