//! `/console/`: the web console (docs/console.md). Static files compiled into the binary, so API
//! Gateway + Lambda, the local stack and the tests serve the same bytes and a deployment needs no
//! bucket, CDN or build step. Every path under `/console/` that is not a file is a view of the
//! single-page app (`/console/webhooks/<id>/deliveries`, …) and answers `index.html`, so a deep link
//! or a reload works; the app reads the path itself (History API).
//!
//! The console talks to `/api/hooks/…` with the key the user typed (kept in `sessionStorage`), so
//! these routes need no authentication: they serve the same public files to everybody.

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// The strict policy of every console response: only this origin's own files, no inline script or
/// style (so no `style=` attribute either), no `eval`, no plugins, no framing, no `<base>`, and
/// `fetch` only to this origin (the API). `require-trusted-types-for 'script'` makes the browser
/// refuse any string assigned to an HTML sink (`innerHTML`, …): the app builds every node with
/// `createElement` + `textContent`, and this turns a regression into an error instead of an XSS.
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'self'; script-src 'self'; style-src 'self'; \
img-src 'self'; font-src 'self'; connect-src 'self'; object-src 'none'; frame-ancestors 'none'; \
base-uri 'none'; form-action 'self'; require-trusted-types-for 'script'";

/// One file of the console.
struct Asset {
    /// The path below `/console/`.
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $type:expr) => {
        Asset {
            name: $name,
            content_type: $type,
            body: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/console/", $name)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

static ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("app.css", "text/css; charset=utf-8"),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("dom.js", JS),
    asset!("views.js", JS),
    asset!("snippets.js", JS),
    asset!("favicon.svg", "image/svg+xml"),
];

/// The console's routes (stateless; merged into the API router).
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/console", get(redirect))
        .route("/console/", get(index))
        .route("/console/{*path}", get(file))
}

/// Every console file with its size, for the size budget (docs/performance.md) and its test.
pub fn files() -> impl Iterator<Item = (&'static str, &'static [u8])> {
    ASSETS.iter().map(|a| (a.name, a.body))
}

/// `/console` → the webhooks view: a path API Gateway's `/console/{proxy+}` route is sure to match
/// (an empty `{proxy+}`, `/console/`, may not be), so the `ConsoleUrl` stack output works as given.
async fn redirect() -> Response {
    with_security_headers(Redirect::permanent("/console/webhooks").into_response())
}

async fn index(headers: HeaderMap) -> Response {
    serve(0, &headers)
}

async fn file(Path(path): Path<String>, headers: HeaderMap) -> Response {
    if let Some(i) = ASSETS.iter().position(|a| a.name == path) {
        return serve(i, &headers);
    }
    // A file name (a dot in the last segment) that is not one of ours is a 404, not the app: a
    // stale or mistyped asset must fail loudly rather than be parsed as HTML. Anything else is a
    // view of the app.
    let last = path.rsplit('/').next().unwrap_or_default();
    if last.contains('.') {
        return with_security_headers(ApiError::not_found("No such console file.").into_response());
    }
    serve(0, &headers)
}

/// Strong validators, one per file, computed once per process (the files never change while it
/// runs). `Cache-Control: no-cache` + `ETag`: the browser revalidates every load and gets a
/// bodiless 304 while the file is unchanged, so a deployment is seen at once — the file names carry
/// no version, so a `max-age` could pair a new `index.html` with an old `app.js`.
fn etag(i: usize) -> &'static HeaderValue {
    static ETAGS: OnceLock<Vec<HeaderValue>> = OnceLock::new();
    &ETAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| {
                let digest = Sha256::digest(a.body);
                HeaderValue::from_str(&format!("\"{}\"", hex::encode(&digest[..16])))
                    .expect("hex is a valid header value")
            })
            .collect()
    })[i]
}

fn serve(i: usize, request: &HeaderMap) -> Response {
    let asset = &ASSETS[i];
    let tag = etag(i);
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag || t.trim() == "*"));
    let mut res = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(asset.content_type),
            )],
            asset.body,
        )
            .into_response()
    };
    let h = res.headers_mut();
    h.insert(header::ETAG, tag.clone());
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    with_security_headers(res)
}

/// The headers every console response carries (docs/console.md, "Security").
fn with_security_headers(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    // For browsers without CSP's frame-ancestors.
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        HeaderName::from_static("cross-origin-resource-policy"),
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        HeaderName::from_static("permissions-policy"),
        HeaderValue::from_static("camera=(), microphone=(), geolocation=(), payment=()"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}
