//! The W3C trace context of a span and how it travels: the ids every log line and attempt record
//! carries ([`SpanIds`]), and the carrier a queue message holds ([`TraceCarrier`]: `traceparent`,
//! `tracestate`, and `baggage` with the Webex tracking id).
//!
//! The ids live in the span's registry extensions, put there by [`start`]. With export on they are
//! the OpenTelemetry span's own (the OTel layer generates them and honours the sampler); with
//! export off they are generated here (16 and 8 random bytes), so a request's log lines, the
//! worker's lines for its deliveries and the attempt records still share one trace id, at the
//! cost of two random numbers per started span and ~100 bytes of message attributes per job.

use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use tracing::span::Id;
use tracing::{Dispatch, Span};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::registry::{LookupSpan, Registry};

use crate::text::truncate_utf8;

/// The SQS message attribute (and HTTP header) names of the W3C trace context.
pub const TRACEPARENT: &str = "traceparent";
pub const TRACESTATE: &str = "tracestate";
/// W3C Baggage: carries only [`TRACKING_ID_KEY`].
pub const BAGGAGE: &str = "baggage";
/// The baggage key (and span attribute) of the Webex `trackingid` of the request that started
/// the trace.
pub const TRACKING_ID_KEY: &str = "webex.trackingid";
/// The attribute names a consumer asks SQS for.
pub const ATTRIBUTE_NAMES: [&str; 3] = [TRACEPARENT, TRACESTATE, BAGGAGE];

/// Longest `tracestate` kept (W3C: 32 members; 512 characters is the spec's propagation floor).
const MAX_TRACESTATE: usize = 512;
/// Longest tracking id carried (the ingest bounds the header the same way).
const MAX_TRACKING_ID: usize = 256;

/// A span's trace context and the request ids every log line inside it shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpanIds {
    /// 32 lowercase hex digits.
    pub trace_id: String,
    /// 16 lowercase hex digits.
    pub span_id: String,
    pub sampled: bool,
    pub tracestate: Option<String>,
    /// The invocation's request id (Lambda `requestId`, or the ingest's request id).
    pub request_id: Option<String>,
    /// The Webex `trackingid` of the request that started the trace.
    pub tracking_id: Option<String>,
}

impl SpanIds {
    /// The `traceparent` value (version 00).
    pub fn traceparent(&self) -> String {
        format!(
            "00-{}-{}-{}",
            self.trace_id,
            self.span_id,
            if self.sampled { "01" } else { "00" }
        )
    }
}

/// The trace context a queue message carries (all optional: a job sent outside any span, or by
/// an older producer, has none).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TraceCarrier {
    pub traceparent: Option<String>,
    pub tracestate: Option<String>,
    pub baggage: Option<String>,
}

impl TraceCarrier {
    pub fn is_empty(&self) -> bool {
        self.traceparent.is_none()
    }

    /// From (name, value) pairs (message attributes), ignoring other names.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut c = Self::default();
        for (name, value) in pairs {
            let slot = match name {
                TRACEPARENT => &mut c.traceparent,
                TRACESTATE => &mut c.tracestate,
                BAGGAGE => &mut c.baggage,
                _ => continue,
            };
            *slot = Some(value.to_owned());
        }
        c
    }

    /// The (name, value) pairs to send, none when there is no `traceparent`.
    pub fn pairs(&self) -> Vec<(&'static str, &str)> {
        let Some(tp) = &self.traceparent else {
            return Vec::new();
        };
        let mut out = vec![(TRACEPARENT, tp.as_str())];
        if let Some(ts) = &self.tracestate {
            out.push((TRACESTATE, ts.as_str()));
        }
        if let Some(b) = &self.baggage {
            out.push((BAGGAGE, b.as_str()));
        }
        out
    }

    /// What the pairs add to an SQS message's size (names, values and the `String` data type,
    /// which SQS counts too).
    pub fn encoded_len(&self) -> usize {
        self.pairs()
            .iter()
            .map(|(n, v)| n.len() + v.len() + "String".len())
            .sum()
    }

    /// The Webex tracking id in the baggage, if any.
    pub fn tracking_id(&self) -> Option<String> {
        let baggage = self.baggage.as_deref()?;
        baggage.split(',').find_map(|member| {
            let (key, value) = member.split(';').next()?.split_once('=')?;
            (key.trim() == TRACKING_ID_KEY)
                .then(|| percent_decode(value.trim()))
                .flatten()
                .map(|v| truncate_utf8(&v, MAX_TRACKING_ID).to_owned())
        })
    }
}

/// A parsed, valid `traceparent` (any version but `ff`; only version 00's fields are read, as
/// W3C asks of a parser meeting a later version).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    pub trace_id: u128,
    pub span_id: u64,
    pub sampled: bool,
}

impl TraceParent {
    pub fn parse(value: &str) -> Option<Self> {
        let v = value.trim();
        let mut parts = v.split('-');
        let version = parts.next()?;
        let (trace, span, flags) = (parts.next()?, parts.next()?, parts.next()?);
        let hex = |s: &str, len: usize| {
            s.len() == len
                && s.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        };
        if !hex(version, 2)
            || version == "ff"
            || !hex(trace, 32)
            || !hex(span, 16)
            || !hex(flags, 2)
        {
            return None;
        }
        // Version 00 has exactly four fields; later versions may append more.
        if version == "00" && parts.next().is_some() {
            return None;
        }
        let trace_id = u128::from_str_radix(trace, 16).ok()?;
        let span_id = u64::from_str_radix(span, 16).ok()?;
        let flags = u8::from_str_radix(flags, 16).ok()?;
        (trace_id != 0 && span_id != 0).then_some(Self {
            trace_id,
            span_id,
            sampled: flags & 1 == 1,
        })
    }

    fn span_context(&self, tracestate: Option<&str>) -> SpanContext {
        let state = tracestate
            .and_then(|s| s.parse::<TraceState>().ok())
            .unwrap_or_default();
        SpanContext::new(
            TraceId::from(self.trace_id),
            SpanId::from(self.span_id),
            if self.sampled {
                TraceFlags::SAMPLED
            } else {
                TraceFlags::default()
            },
            true,
            state,
        )
    }
}

/// What [`start`] is told about a span.
#[derive(Debug, Clone, Copy, Default)]
pub struct Start<'a> {
    /// The remote parent (a queue message's carrier); `None`: the span continues its local
    /// parent's trace, or starts a new one.
    pub remote: Option<&'a TraceCarrier>,
    pub request_id: Option<&'a str>,
    pub tracking_id: Option<&'a str>,
}

/// Gives `span` its trace context: the remote parent's, else its local parent's, else a new
/// trace; records the ids (and the request and tracking ids, inherited when not given) in its
/// extensions for the log lines, [`current`] and [`carrier`]. Call it right after creating the
/// span, before entering it (the OpenTelemetry span is built on first use, with its parent).
/// Does nothing when `span` is disabled or there is no subscriber.
pub fn start(span: &Span, how: Start<'_>) {
    let remote = how.remote.and_then(|c| {
        let tp = TraceParent::parse(c.traceparent.as_deref()?)?;
        let ts = c
            .tracestate
            .as_deref()
            .filter(|s| !s.is_empty() && s.len() <= MAX_TRACESTATE);
        Some((tp, ts.map(str::to_owned), c.tracking_id()))
    });
    if super::enabled() {
        if let Some((tp, ts, _)) = &remote {
            let cx = opentelemetry::Context::new()
                .with_remote_span_context(tp.span_context(ts.as_deref()));
            // Without the OTel layer in this subscriber (a test's own), the ids are made below.
            let _ = span.set_parent(cx);
        }
    }
    // The OTel span's context when the layer is there (builds the span now, with its parent).
    let otel = if super::enabled() {
        let cx = span.context();
        let sc = cx.span().span_context().clone();
        sc.is_valid().then_some(sc)
    } else {
        None
    };
    span.with_subscriber(|(id, dispatch)| {
        let Some(registry) = dispatch.downcast_ref::<Registry>() else {
            return;
        };
        let Some(data) = registry.span(id) else {
            return;
        };
        let inherited = data.parent().and_then(|p| nearest(registry, &p.id()));
        let tracking_id = how
            .tracking_id
            .filter(|t| !t.is_empty())
            .map(|t| truncate_utf8(t, MAX_TRACKING_ID).to_owned())
            .or_else(|| remote.as_ref().and_then(|(_, _, t)| t.clone()))
            .or_else(|| inherited.as_ref().and_then(|i| i.tracking_id.clone()));
        let request_id = how
            .request_id
            .filter(|r| !r.is_empty())
            .map(str::to_owned)
            .or_else(|| inherited.as_ref().and_then(|i| i.request_id.clone()));
        let ids = match (&otel, &remote, inherited) {
            (Some(sc), _, _) => SpanIds {
                trace_id: sc.trace_id().to_string(),
                span_id: sc.span_id().to_string(),
                sampled: sc.is_sampled(),
                tracestate: Some(sc.trace_state().header()).filter(|h| !h.is_empty()),
                request_id,
                tracking_id,
            },
            (None, Some((tp, ts, _)), _) => SpanIds {
                trace_id: format!("{:032x}", tp.trace_id),
                span_id: new_span_id(),
                sampled: tp.sampled,
                tracestate: ts.clone(),
                request_id,
                tracking_id,
            },
            (None, None, Some(parent)) => SpanIds {
                span_id: new_span_id(),
                request_id,
                tracking_id,
                ..parent
            },
            // A new trace, not sampled: nothing records it (a downstream function with export
            // on honours the flag, parent-based, rather than export half a trace).
            (None, None, None) => SpanIds {
                trace_id: format!("{:032x}", non_zero(rand::random::<u128>)),
                span_id: new_span_id(),
                sampled: false,
                tracestate: None,
                request_id,
                tracking_id,
            },
        };
        data.extensions_mut().replace(ids);
    });
}

fn non_zero<T: PartialEq + Default>(draw: impl Fn() -> T) -> T {
    loop {
        let v = draw();
        if v != T::default() {
            return v;
        }
    }
}

fn new_span_id() -> String {
    format!("{:016x}", non_zero(rand::random::<u64>))
}

/// The ids of the span `id` or of its nearest ancestor that has them.
fn nearest(registry: &Registry, id: &Id) -> Option<SpanIds> {
    registry
        .span(id)?
        .scope()
        .find_map(|s| s.extensions().get::<SpanIds>().cloned())
}

/// The ids of `span` (or of its nearest started ancestor).
pub fn ids_of(span: &Span) -> Option<SpanIds> {
    span.with_subscriber(|(id, dispatch): (&Id, &Dispatch)| {
        dispatch
            .downcast_ref::<Registry>()
            .and_then(|r| nearest(r, id))
    })
    .flatten()
}

/// The ids of the current span (or of its nearest started ancestor): what an attempt record
/// stores.
pub fn current() -> Option<SpanIds> {
    ids_of(&Span::current())
}

/// The carrier to send with a queue message from the current span: its OpenTelemetry context
/// when export is on (the exact current span, sampling flag and tracestate), else the started
/// ids; plus the tracking id as baggage. Empty outside any started span.
pub fn carrier() -> TraceCarrier {
    let span = Span::current();
    let ids = ids_of(&span);
    let otel = super::enabled()
        .then(|| {
            let cx = span.context();
            let sc = cx.span().span_context().clone();
            sc.is_valid().then_some(sc)
        })
        .flatten();
    let (traceparent, tracestate) = match (&otel, &ids) {
        (Some(sc), _) => (
            format!(
                "00-{}-{}-{}",
                sc.trace_id(),
                sc.span_id(),
                if sc.is_sampled() { "01" } else { "00" }
            ),
            Some(sc.trace_state().header()).filter(|h| !h.is_empty()),
        ),
        (None, Some(ids)) => (ids.traceparent(), ids.tracestate.clone()),
        (None, None) => return TraceCarrier::default(),
    };
    let baggage = ids
        .and_then(|i| i.tracking_id)
        .map(|t| format!("{TRACKING_ID_KEY}={}", percent_encode(&t)));
    TraceCarrier {
        traceparent: Some(traceparent),
        tracestate,
        baggage,
    }
}

/// Sets an OpenTelemetry attribute on `span` (nothing when export is off: no cost, and no field
/// in the log lines).
pub fn set_attribute(span: &Span, key: &'static str, value: impl Into<opentelemetry::Value>) {
    if super::enabled() {
        span.set_attribute(key, value);
    }
}

/// Marks `span` failed for OpenTelemetry (export on only).
pub fn set_error(span: &Span, description: impl Into<String>) {
    if super::enabled() {
        span.set_status(opentelemetry::trace::Status::error(description.into()));
    }
}

/// A baggage value: everything but W3C's `baggage-octet`s (and `%`) percent-encoded.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        let plain =
            matches!(b, 0x21 | 0x23..=0x24 | 0x26..=0x2B | 0x2D..=0x3A | 0x3C..=0x5B | 0x5D..=0x7E);
        if plain {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_parsing_follows_w3c() {
        let tp =
            TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        assert_eq!(tp.trace_id, 0x4bf92f3577b34da6a3ce929d0e0e4736);
        assert_eq!(tp.span_id, 0x00f067aa0ba902b7);
        assert!(tp.sampled);
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            assert_eq!(TraceParent::parse(bad), None, "{bad:?}");
        }
        // A later version may append fields; its first four are read.
        assert!(
            TraceParent::parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-x")
                .is_some_and(|t| !t.sampled)
        );
    }

    #[test]
    fn the_tracking_id_round_trips_through_baggage() {
        let id = "ROUTER_6543 a,b;c=d%é";
        let c = TraceCarrier {
            traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
            tracestate: None,
            baggage: Some(format!(
                "other=1, {TRACKING_ID_KEY}={};p=1",
                percent_encode(id)
            )),
        };
        assert_eq!(c.tracking_id().as_deref(), Some(id));
        assert_eq!(
            TraceCarrier::from_pairs(c.pairs()),
            c,
            "pairs and from_pairs are inverse"
        );
        assert!(TraceCarrier::default().pairs().is_empty());
    }
}
