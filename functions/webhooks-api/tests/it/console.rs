//! `/console/`: the static web console served by the API router (docs/console.md). Its behaviour in
//! a real browser is tests/browser (scripts/test.d/80-browser); this checks what the router serves.

use webhooks_api::routes::console::{files, CONTENT_SECURITY_POLICY};
use webhooks_api::ApiConfig;

use crate::common::{request, Harness, Resp};

fn harness() -> Harness {
    Harness::memory(ApiConfig::default())
}

async fn get(h: &Harness, path: &str, headers: &[(&str, &str)]) -> Resp {
    h.send(request("GET", path, None, None, headers)).await
}

fn header<'a>(r: &'a Resp, name: &str) -> &'a str {
    r.headers
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
}

#[track_caller]
fn assert_security_headers(r: &Resp) {
    assert_eq!(
        header(r, "content-security-policy"),
        CONTENT_SECURITY_POLICY
    );
    assert_eq!(header(r, "x-content-type-options"), "nosniff");
    assert_eq!(header(r, "referrer-policy"), "no-referrer");
    assert_eq!(header(r, "x-frame-options"), "DENY");
    assert!(r.headers.contains_key("cache-control"));
}

fn index_html() -> &'static [u8] {
    files().find(|(n, _)| *n == "index.html").unwrap().1
}

#[tokio::test]
async fn the_console_and_its_deep_links_serve_index_html_with_strict_headers() {
    let h = harness();
    for path in [
        "/console/",
        "/console/webhooks",
        "/console/webhooks/wh_01KAQ8Z3V2J6X4T1N0G9Q5M7RB/deliveries",
        "/console/webhooks/wh_01KAQ8Z3V2J6X4T1N0G9Q5M7RB/deliveries/att_01KAQ8Z3V2J6X4T1N0G9Q5M7RB",
        "/console/sign-in?next=%2Fconsole%2Fdlq",
    ] {
        let r = get(&h, path, &[]).await;
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(header(&r, "content-type"), "text/html; charset=utf-8");
        assert_eq!(header(&r, "cache-control"), "no-cache");
        assert_security_headers(&r);
        assert_eq!(&r.bytes[..], index_html(), "{path}");
    }
    // The policy itself: no inline script or style, no eval, this origin only, no framing.
    for part in [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "object-src 'none'",
    ] {
        assert!(CONTENT_SECURITY_POLICY.contains(part), "{part}");
    }
    assert!(!CONTENT_SECURITY_POLICY.contains("unsafe"));
}

#[tokio::test]
async fn console_files_have_their_types_and_revalidate_with_etags() {
    let h = harness();
    for (name, body) in files() {
        let r = get(&h, &format!("/console/{name}"), &[]).await;
        assert_eq!(r.status, 200, "{name}");
        assert_eq!(&r.bytes[..], body);
        let want = match name.rsplit('.').next().unwrap() {
            "html" => "text/html; charset=utf-8",
            "css" => "text/css; charset=utf-8",
            "js" => "text/javascript; charset=utf-8",
            "svg" => "image/svg+xml",
            other => panic!("unexpected console file type {other}"),
        };
        assert_eq!(header(&r, "content-type"), want, "{name}");
        assert_security_headers(&r);
        let tag = header(&r, "etag").to_owned();
        let again = get(&h, &format!("/console/{name}"), &[("if-none-match", &tag)]).await;
        assert_eq!(again.status, 304, "{name}");
        assert!(again.bytes.is_empty());
        assert_eq!(header(&again, "etag"), tag);
        assert_security_headers(&again);
    }
}

#[tokio::test]
async fn unknown_console_files_are_404_and_the_bare_path_redirects() {
    let h = harness();
    let r = get(&h, "/console/app.min.js", &[]).await;
    r.assert_error(404, "not_found");
    assert_security_headers(&r);
    let r = get(&h, "/console/webhooks/x/../../secrets.txt", &[]).await;
    assert_eq!(r.status, 404);
    let r = get(&h, "/console", &[]).await;
    assert_eq!(r.status, 308);
    assert_eq!(header(&r, "location"), "/console/webhooks");
    assert_security_headers(&r);
    // Only GET (and HEAD): the console takes no writes.
    let r = h
        .send(request("POST", "/console/webhooks", None, None, &[]))
        .await;
    r.assert_error(405, "method_not_allowed");
}

/// Every file the page or a module loads is one the router serves, and nothing comes from
/// elsewhere (no CDN, no third party).
#[test]
fn the_console_loads_only_its_own_files() {
    let names: Vec<&str> = files().map(|(n, _)| n).collect();
    let text = |n: &str| std::str::from_utf8(files().find(|(m, _)| *m == n).unwrap().1).unwrap();
    let html = text("index.html");
    for attr in ["src=\"", "href=\""] {
        for part in html.split(attr).skip(1) {
            let url = &part[..part.find('"').unwrap()];
            if url.starts_with('#') {
                continue; // the skip link
            }
            let file = url.strip_prefix("/console/").unwrap_or_else(|| {
                panic!("index.html loads {url}: only /console/ files are allowed")
            });
            // A file (a dot in it) must be one the router serves; the rest are views of the app.
            assert!(!file.contains('.') || names.contains(&file), "{file}");
        }
    }
    for name in names.iter().filter(|n| n.ends_with(".js")) {
        let js = text(name);
        for line in js
            .lines()
            .filter(|l| l.starts_with("import ") && l.contains(" from '"))
        {
            let from = line.rsplit("from '").next().unwrap();
            let file = from
                .trim_end_matches("';")
                .strip_prefix("./")
                .unwrap_or_else(|| panic!("{name}: a non-relative import: {line}"));
            assert!(names.contains(&file), "{name} imports {file}");
        }
    }
}

/// Hostile data is only ever text: no HTML sink, no eval, no inline handler or style anywhere.
#[test]
fn the_console_has_no_html_sinks_and_nothing_inline() {
    for (name, body) in files() {
        let text = std::str::from_utf8(body).unwrap();
        if name.ends_with(".js") {
            for banned in [
                ".innerHTML",
                ".outerHTML",
                "insertAdjacentHTML",
                "document.write",
                "eval(",
                "new Function",
                "setTimeout('",
                "setInterval('",
                "localStorage",
                "document.cookie",
            ] {
                assert!(!text.contains(banned), "{name} contains {banned}");
            }
        }
        if name == "index.html" {
            assert!(!text.contains(" style="), "inline style in {name}");
            assert!(!text.contains("<style"), "inline style in {name}");
            // An `on…=` attribute (onclick=, onerror=, …).
            for part in text.split(" on").skip(1) {
                let word: String = part
                    .chars()
                    .take_while(|c| c.is_ascii_alphabetic())
                    .collect();
                assert!(
                    !part[word.len()..].starts_with('='),
                    "an inline handler on{word}= in {name}"
                );
            }
            for script in text.split("<script").skip(1) {
                assert!(
                    script.trim_start().starts_with("type=\"module\" src="),
                    "inline script in {name}"
                );
            }
        }
    }
}

/// On Lambda: an API Gateway HTTP API v2 event for a deep link, through `lambda_http`'s request
/// conversion (as `src/main.rs` runs the router), is the app with its headers.
#[tokio::test]
async fn a_deep_link_works_through_lambda_http() {
    use tower::ServiceExt;
    let path = "/console/webhooks/wh_01KAQ8Z3V2J6X4T1N0G9Q5M7RB/deliveries";
    let event = serde_json::json!({
        "version": "2.0",
        "routeKey": "GET /console/{proxy+}",
        "rawPath": path,
        "rawQueryString": "status=failed",
        "headers": {"accept": "text/html", "host": "abcdef1234.execute-api.us-east-1.amazonaws.com"},
        "requestContext": {
            "accountId": "123456789012", "apiId": "abcdef1234",
            "domainName": "abcdef1234.execute-api.us-east-1.amazonaws.com", "domainPrefix": "abcdef1234",
            "http": {"method": "GET", "path": path, "protocol": "HTTP/1.1", "sourceIp": "198.51.100.20", "userAgent": "test"},
            "requestId": "req-console", "routeKey": "GET /console/{proxy+}", "stage": "$default",
            "time": "23/Nov/2026:12:00:00 +0000", "timeEpoch": 1795435200000u64
        },
        "pathParameters": {"proxy": "webhooks/wh_01KAQ8Z3V2J6X4T1N0G9Q5M7RB/deliveries"},
        "queryStringParameters": {"status": "failed"},
        "isBase64Encoded": false
    });
    let req = lambda_http::request::from_str(&event.to_string()).unwrap();
    let res = harness().router.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["content-security-policy"],
        CONTENT_SECURITY_POLICY
    );
    let body = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .unwrap();
    assert_eq!(&body[..], index_html());
}
