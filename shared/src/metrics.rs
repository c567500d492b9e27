//! CloudWatch embedded-metric-format (EMF) lines: one JSON object per stdout line, which
//! CloudWatch Logs turns into metrics without any API call (see the CloudWatch "Embedded metric
//! format specification"). Every function's metrics share one namespace and one dimension,
//! `Function`.

use std::sync::OnceLock;

use serde::Serialize;
use serde_json::{json, Map, Value};

/// The default CloudWatch namespace of every relay metric (the template's alarms and dashboard
/// use the stack's `MetricsNamespace`, this by default).
pub const NAMESPACE: &str = "WebexRelay";
/// Another namespace for this deployment's metrics (template.yaml sets it from the
/// `MetricsNamespace` parameter), so that two stacks in one account and region keep their metrics,
/// alarms and dashboards apart.
pub const ENV_NAMESPACE: &str = "METRICS_NAMESPACE";

/// The namespace of this process's metrics: `METRICS_NAMESPACE` (read once), else [`NAMESPACE`]. A
/// value CloudWatch would refuse is ignored with a warning (the template's parameter pattern
/// already refuses it).
pub fn namespace() -> &'static str {
    static CONFIGURED: OnceLock<String> = OnceLock::new();
    CONFIGURED.get_or_init(|| {
        let set = std::env::var(ENV_NAMESPACE).unwrap_or_default();
        let set = set.trim();
        match set {
            "" => NAMESPACE.to_owned(),
            ns if valid_namespace(ns) => ns.to_owned(),
            ns => {
                tracing::warn!(
                    variable = ENV_NAMESPACE,
                    value = ns,
                    "not a CloudWatch namespace; using {NAMESPACE}"
                );
                NAMESPACE.to_owned()
            }
        }
    })
}

/// CloudWatch's rule: 1–255 of `A-Za-z0-9 . - _ / # :`, not starting with `AWS/` (AWS's own).
fn valid_namespace(ns: &str) -> bool {
    (1..=255).contains(&ns.len())
        && !ns.starts_with("AWS/")
        && ns
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-_/#:".contains(c))
}
/// The one dimension: which function emitted the metric.
pub const DIMENSION: &str = "Function";

/// The CloudWatch unit of a metric (serialised by its variant name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Unit {
    Count,
    Milliseconds,
}

/// One EMF document under construction: metrics (with values) and plain properties.
#[derive(Debug, Clone)]
pub struct Emf {
    doc: Map<String, Value>,
    metrics: Vec<Value>,
}

impl Emf {
    /// A document for `function` (the `Function` dimension's value).
    pub fn new(function: &str) -> Self {
        let mut doc = Map::new();
        doc.insert(DIMENSION.into(), json!(function));
        Self {
            doc,
            metrics: Vec::new(),
        }
    }

    /// A metric and its value.
    pub fn metric(mut self, name: &str, unit: Unit, value: impl Into<Value>) -> Self {
        self.metrics.push(json!({"Name": name, "Unit": unit}));
        self.doc.insert(name.into(), value.into());
        self
    }

    /// A property: searchable in the logs, not a dimension (so no cardinality cost).
    pub fn property(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.doc.insert(name.into(), value.into());
        self
    }

    /// The single-line JSON document, stamped `now_ms` (milliseconds since the epoch).
    pub fn line(mut self, now_ms: i64) -> String {
        self.doc.insert(
            "_aws".into(),
            json!({
                "Timestamp": now_ms,
                "CloudWatchMetrics": [{
                    "Namespace": namespace(),
                    "Dimensions": [[DIMENSION]],
                    "Metrics": self.metrics,
                }],
            }),
        );
        Value::Object(self.doc).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces() {
        for ok in ["WebexRelay", "WebexRelay/staging", "relay-eu_1.a#b:c"] {
            assert!(valid_namespace(ok), "{ok}");
        }
        for bad in ["", "AWS/Lambda", "with space", "é", &"x".repeat(256)] {
            assert!(!valid_namespace(bad), "{bad}");
        }
    }

    #[test]
    fn document_shape() {
        let line = Emf::new("f")
            .metric("Done", Unit::Count, 1)
            .metric("Latency", Unit::Milliseconds, 42)
            .property("id", "x")
            .line(1_700_000_000_000);
        assert!(!line.contains('\n'));
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["Function"], "f");
        assert_eq!(v["Done"], 1);
        assert_eq!(v["Latency"], 42);
        assert_eq!(v["id"], "x");
        let m = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(v["_aws"]["Timestamp"], 1_700_000_000_000i64);
        assert_eq!(m["Namespace"], "WebexRelay");
        assert_eq!(m["Dimensions"], json!([["Function"]]));
        assert_eq!(
            m["Metrics"],
            json!([{"Name": "Done", "Unit": "Count"}, {"Name": "Latency", "Unit": "Milliseconds"}])
        );
    }
}
