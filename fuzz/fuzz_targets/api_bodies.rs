//! Every webhooks-api request body through the extractors the router uses (`ApiJson`,
//! `OptionalJson`: content type, then 400 for bad syntax, 422 naming the field for a bad shape),
//! then the validators the create/update routes apply.
//!
//! Input: byte 0 picks the body type; up to the first newline is the `Content-Type` value, the
//! rest is the body.
#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::body::Body;
use axum::extract::FromRequest;
use axum::http::{header, Request, StatusCode};
use libfuzzer_sys::fuzz_target;
use relay_shared::adapters::memory::{memory_stores, MemoryQueue};
use relay_shared::clock::SystemClock;
use relay_shared::ports::CorePorts;
use relay_shared::targets::TargetPolicy;
use webhooks_api::error::ApiError;
use webhooks_api::extract::{is_json_content_type, ApiJson, OptionalJson};
use webhooks_api::model::{
    CreateWebhook, Empty, RedriveRequest, ReplayRequest, RotateSecret, UpdateWebhook,
};
use webhooks_api::{validate, ApiConfig, AppState};

struct Env {
    rt: tokio::runtime::Runtime,
    state: AppState,
    permissive: ApiConfig,
}

fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| {
        let queue = Arc::new(MemoryQueue::new(Duration::from_secs(30)));
        let core = CorePorts {
            stores: memory_stores(),
            queue: queue.clone(),
            clock: Arc::new(SystemClock),
        };
        let permissive = ApiConfig {
            targets: TargetPolicy {
                allow_http: true,
                allow_private: true,
                allow_cidrs: vec![],
            },
            ..ApiConfig::default()
        };
        Env {
            rt: tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap(),
            state: AppState::new(
                core,
                queue,
                relay_shared::secrets_at_rest::SecretSealer::new(Arc::new(
                    relay_shared::secrets_at_rest::LocalKey::generate(),
                )),
                ApiConfig::default(),
            ),
            permissive,
        }
    })
}

fn request(content_type: &str, body: &[u8]) -> Request<Body> {
    let mut b = Request::builder().method("POST").uri("/api/hooks/webhooks");
    if let Ok(v) = header::HeaderValue::from_str(content_type) {
        b = b.header(header::CONTENT_TYPE, v);
    }
    b.body(Body::from(body.to_vec())).unwrap()
}

/// What every rejection must look like, and when it must be which.
fn check_error(e: &ApiError, json: bool, body: &[u8]) {
    // JSON's grammar, in UTF-8 (`IgnoredAny` alone skips string contents; `Value` would also
    // refuse numbers out of f64 range, which the grammar allows).
    let syntax_ok = std::str::from_utf8(body)
        .is_ok_and(|t| serde_json::from_str::<serde::de::IgnoredAny>(t).is_ok());
    match e.status {
        StatusCode::UNSUPPORTED_MEDIA_TYPE => assert!(!json),
        StatusCode::BAD_REQUEST => {
            assert_eq!(e.error, "malformed_json");
            assert!(!syntax_ok, "a 400 for well-formed JSON");
        }
        StatusCode::UNPROCESSABLE_ENTITY => {
            assert!(syntax_ok, "a 422 for malformed JSON");
            assert!(matches!(e.error, "validation_failed" | "unknown_field"));
            // An unknown field named `""` has no path to name (docs/reliability.md, finding 4).
            if e.error == "unknown_field" && !e.detail.starts_with("unknown field ``") {
                assert!(e.field.as_deref().is_some_and(|f| !f.is_empty()));
            }
        }
        s => panic!("unexpected status {s}: {e:?}"),
    }
    if e.status == StatusCode::UNPROCESSABLE_ENTITY {
        // The 422 names the field by its path; only a syntax error (400) gives line and column.
        assert!(
            !e.detail.contains(" at line "),
            "position leaked: {}",
            e.detail
        );
    }
}

fn required<T: serde::de::DeserializeOwned>(ct: &str, body: &[u8]) -> Option<T> {
    let env = env();
    let json = is_json_content_type(request(ct, b"").headers());
    let got = env
        .rt
        .block_on(ApiJson::<T>::from_request(request(ct, body), &env.state));
    match got {
        Ok(ApiJson(v)) => {
            assert!(json, "accepted without a JSON content type");
            assert_eq!(body.iter().find(|b| !b.is_ascii_whitespace()), Some(&b'{'));
            Some(v)
        }
        Err(e) => {
            check_error(&e, json, body);
            None
        }
    }
}

fn optional<T: serde::de::DeserializeOwned + Default>(ct: &str, body: &[u8]) -> Option<T> {
    let env = env();
    let json = is_json_content_type(request(ct, b"").headers());
    let got = env.rt.block_on(OptionalJson::<T>::from_request(
        request(ct, body),
        &env.state,
    ));
    let blank = body.iter().all(u8::is_ascii_whitespace);
    match got {
        Ok(OptionalJson(v)) => {
            assert!(blank || json);
            Some(v)
        }
        Err(e) => {
            assert!(!blank, "a blank body is the default");
            check_error(&e, json, body);
            None
        }
    }
}

fn check_name(n: &str) {
    if let Ok(v) = validate::name(n) {
        assert!(!v.is_empty() && v.chars().count() <= validate::NAME_MAX_CHARS);
        assert!(!v.chars().any(char::is_control));
        assert_eq!(
            validate::name(&v).ok().as_deref(),
            Some(v.as_str()),
            "idempotent"
        );
    }
}

fn check_url(u: &str) {
    for cfg in [&env().state.config, &env().permissive] {
        if let Ok(v) = validate::target_url(u, cfg) {
            // What the API stores, the API (on update) and the worker accept again, unchanged.
            assert_eq!(
                validate::target_url(&v, cfg).ok().as_deref(),
                Some(v.as_str())
            );
            assert!(cfg.targets.check_url(&v).is_ok());
        }
    }
}

fn check_types(t: &[String]) {
    if let Ok(v) = validate::event_types(t) {
        assert!(!v.is_empty() && v.len() <= t.len());
        for (i, a) in v.iter().enumerate() {
            assert!(!v[i + 1..].contains(a), "duplicate kept");
        }
    }
}

fn check_secret(s: &str) {
    if let Ok(v) = validate::secret(s) {
        let n = v.len();
        assert!((validate::SECRET_MIN_CHARS..=validate::SECRET_MAX_CHARS).contains(&n));
        assert!(v.bytes().all(|b| b.is_ascii_graphic()));
    }
}

fn check_rate(r: u32) {
    let cfg = &env().state.config;
    if let Ok(v) = validate::rate_limit(r, cfg) {
        assert!(v >= 1 && v <= cfg.max_rate_limit_per_minute);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&kind, rest)) = data.split_first() else {
        return;
    };
    let cut = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
    let ct = String::from_utf8_lossy(&rest[..cut]).into_owned();
    let body = rest.get(cut + 1..).unwrap_or(&[]);
    match kind % 6 {
        0 => {
            if let Some(c) = required::<CreateWebhook>(&ct, body) {
                check_name(&c.name);
                check_url(&c.url);
                check_types(&c.event_types);
                if let Some(s) = &c.secret {
                    check_secret(s);
                }
                if let Some(r) = c.rate_limit_per_minute {
                    check_rate(r);
                }
            }
        }
        1 => {
            if let Some(u) = required::<UpdateWebhook>(&ct, body) {
                u.name.as_deref().map(check_name);
                u.url.as_deref().map(check_url);
                u.event_types.as_deref().map(check_types);
                u.rate_limit_per_minute.map(check_rate);
            }
        }
        2 => {
            optional::<RotateSecret>(&ct, body);
        }
        3 => {
            if let Some(r) = required::<ReplayRequest>(&ct, body) {
                // The route subtracts the two instants: never out of range.
                let _ = r.until - r.since;
            }
        }
        4 => {
            optional::<RedriveRequest>(&ct, body);
        }
        _ => {
            optional::<Empty>(&ct, body);
        }
    }
});
