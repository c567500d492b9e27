//! The captured Webex telephony webhook (`tests/fixtures/seed001/`), embedded so the demo runs from
//! any directory.

/// The three Webex envelopes (`items` of each captured body), in the captured (out-of-order)
/// order: updated, created, deleted — as compact JSON, exactly what Webex would POST.
pub fn seed001_envelopes() -> Vec<(&'static str, String)> {
    [
        (
            "updated",
            include_str!("../../tests/fixtures/seed001/updated.json"),
        ),
        (
            "created",
            include_str!("../../tests/fixtures/seed001/created.json"),
        ),
        (
            "deleted",
            include_str!("../../tests/fixtures/seed001/deleted.json"),
        ),
    ]
    .into_iter()
    .map(|(name, body)| {
        let mut v: serde_json::Value =
            serde_json::from_str(body).expect("checked-in fixture is valid JSON");
        // Moved to the present: the ingest relays only events inside its dedupe window.
        relay_shared::webex::redate_captured(&mut v["items"]);
        (name, v["items"].to_string())
    })
    .collect()
}
