//! The checked-in OpenAPI document stays true: YAML and JSON agree, and it documents exactly the
//! router's routes.

use serde_json::Value;

fn load() -> (Value, Value) {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{dir}/openapi.json")).unwrap())
            .unwrap();
    let yaml: Value =
        serde_yaml::from_str(&std::fs::read_to_string(format!("{dir}/openapi.yaml")).unwrap())
            .unwrap();
    (json, yaml)
}

#[test]
fn yaml_and_json_agree() {
    let (json, yaml) = load();
    assert_eq!(json, yaml, "openapi.yaml and openapi.json differ: regenerate openapi.json from openapi.yaml (see docs/webhooks-api.md)");
    assert_eq!(json["openapi"], "3.1.0");
    assert_eq!(
        webhooks_api::routes::openapi::OPENAPI_JSON,
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../openapi.json"))
            .unwrap()
    );
}

#[test]
fn documents_every_route() {
    let (json, _) = load();
    let mut documented: Vec<String> = Vec::new();
    for (path, item) in json["paths"].as_object().unwrap() {
        for method in ["get", "post", "patch", "delete", "put"] {
            if item.get(method).is_some() {
                documented.push(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    documented.sort();
    let mut expected = vec![
        "GET /api/hooks/webhooks",
        "POST /api/hooks/webhooks",
        "GET /api/hooks/webhooks/{id}",
        "PATCH /api/hooks/webhooks/{id}",
        "DELETE /api/hooks/webhooks/{id}",
        "GET /api/hooks/webhooks/{id}/deliveries",
        "GET /api/hooks/webhooks/{id}/deliveries/{attemptId}",
        "GET /api/hooks/webhooks/{id}/stats",
        "POST /api/hooks/webhooks/{id}/events/{eventId}/resend",
        "GET /api/hooks/events",
        "GET /api/hooks/dlq",
        "POST /api/hooks/webhooks/{id}/test",
        "POST /api/hooks/webhooks/{id}/rotate-secret",
        "POST /api/hooks/webhooks/{id}/replay",
        "POST /api/hooks/dlq/redrive",
        "GET /api/hooks/event-types",
        "GET /api/hooks/openapi.json",
    ];
    expected.sort();
    assert_eq!(documented, expected);
    // The enum of event types is the catalogue.
    let types: Vec<&str> = json["components"]["schemas"]["EventType"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let catalogue: Vec<&str> = relay_shared::events::EventType::ALL
        .iter()
        .map(|t| t.as_str())
        .collect();
    assert_eq!(types, catalogue);
    // And the logged ones (`GET /api/hooks/events?eventType=`) are those the event log keeps.
    let logged: Vec<&str> = json["components"]["schemas"]["LoggedEventType"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let kept: Vec<&str> = relay_shared::events::EventType::ALL
        .iter()
        .filter(|t| t.is_logged())
        .map(|t| t.as_str())
        .collect();
    assert_eq!(logged, kept);
}
