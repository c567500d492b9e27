//! Webex's pagination `Link` headers: `next_link` (RFC 8288, `rel="next"`) and the rule that a
//! link is followed only on the Webex API's own origin (the bearer token goes with it).
//! Input: `Link` values separated by newlines.
#![no_main]

use std::sync::OnceLock;

use http::header::{HeaderMap, HeaderValue, LINK};
use libfuzzer_sys::fuzz_target;
use relay_shared::adapters::webex_http::{next_link, WebexHttpClient};

fn client() -> &'static WebexHttpClient {
    static C: OnceLock<WebexHttpClient> = OnceLock::new();
    C.get_or_init(|| WebexHttpClient::new("https://webexapis.com/v1", "fuzz-token").unwrap())
}

fuzz_target!(|data: &[u8]| {
    let mut headers = HeaderMap::new();
    let mut values = Vec::new();
    for line in data.split(|&b| b == b'\n') {
        if let Ok(v) = HeaderValue::from_bytes(line) {
            headers.append(LINK, v);
            values.push(line);
        }
    }
    let Some(next) = next_link(&headers) else {
        return;
    };
    // The target is what one value held between `<` and `>`, trimmed.
    assert!(!next.contains('>'));
    assert_eq!(next, next.trim());
    let needle = next.as_bytes();
    assert!(
        values
            .iter()
            .any(|v| v.windows(needle.len().max(1)).any(|w| w == needle) || needle.is_empty()),
        "next link not taken from a header value"
    );
    // Followed only on Webex's origin, whatever the link says.
    if let Ok(url) = client().fuzz_follow_link(&next) {
        assert_eq!(url.scheme(), "https");
        assert_eq!(url.host_str(), Some("webexapis.com"));
        assert_eq!(url.port_or_known_default(), Some(443));
    }
});
