//! Webex's tracking id: the `TrackingID` header on Webex's API responses and on the webhook
//! requests Webex sends, the value Webex support asks for when tracing a request. The relay logs it
//! in both directions (docs/telephony-ingest.md, "Request log").

// reqwest's `HeaderMap` is `http`'s, the one axum uses too.
use reqwest::header::HeaderMap;

/// Header names are case-insensitive: this matches `TrackingID` and `trackingid` alike.
pub const TRACKING_ID_HEADER: &str = "trackingid";

/// The longest tracking id logged (untrusted text; Webex's are well under 100 characters).
const MAX_LEN: usize = 128;

/// The request's or response's tracking id, cut to 128 characters (visible ASCII only, as
/// `HeaderValue::to_str` admits).
pub fn tracking_id(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(TRACKING_ID_HEADER)?.to_str().ok()?.trim();
    (!v.is_empty()).then(|| &v[..v.len().min(MAX_LEN)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn any_case_trimmed_and_bounded() {
        for name in ["TrackingID", "trackingid", "TRACKINGID"] {
            let mut h = HeaderMap::new();
            h.insert(
                reqwest::header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_static(" WEBHOOK_abc_0 "),
            );
            assert_eq!(tracking_id(&h), Some("WEBHOOK_abc_0"), "{name}");
        }
        let mut h = HeaderMap::new();
        assert_eq!(tracking_id(&h), None);
        h.insert(TRACKING_ID_HEADER, HeaderValue::from_static(""));
        assert_eq!(tracking_id(&h), None);
        h.insert(
            TRACKING_ID_HEADER,
            HeaderValue::from_str(&"x".repeat(500)).unwrap(),
        );
        assert_eq!(tracking_id(&h).unwrap().len(), 128);
        h.insert(
            TRACKING_ID_HEADER,
            HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap(),
        );
        assert_eq!(tracking_id(&h), None, "non-ASCII is not logged");
    }
}
