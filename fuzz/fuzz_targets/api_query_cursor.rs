//! The list routes' query strings (`?limit=&cursor=`, `&status=` on deliveries) through the
//! router's `ApiQuery` extractor and `PageQuery::page_request`, then the cursor they carry through
//! the DynamoDB adapter's cursor codec with the key shapes the two listings use.
#![no_main]

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use axum::extract::FromRequestParts;
use axum::http::{Request, StatusCode};
use libfuzzer_sys::fuzz_target;
use relay_shared::adapters::aws::fuzzing::{decode_cursor, encode_cursor};
use relay_shared::error::StoreError;
use webhooks_api::extract::ApiQuery;
use webhooks_api::routes::deliveries::DeliveriesQuery;
use webhooks_api::routes::{PageQuery, MAX_PAGE_LIMIT};

/// The attempt log (`pk` fixed to the webhook's partition) and the owner's webhooks (GSI).
const ATTEMPTS: &[(&str, Option<&str>)] = &[("pk", Some("SUB#wh_1")), ("sk", None)];
const WEBHOOKS: &[(&str, Option<&str>)] = &[
    ("pk", None),
    ("sk", Some("SUB")),
    ("gsi1pk", Some("OWNER#u")),
    ("gsi1sk", None),
];

fn rt() -> &'static tokio::runtime::Runtime {
    static RT: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
    })
}

fn extract<T: serde::de::DeserializeOwned>(query: &str) -> Option<Result<T, StatusCode>> {
    let req = Request::builder()
        .uri(format!("/api/hooks/webhooks?{query}"))
        .body(())
        .ok()?;
    let (mut parts, ()) = req.into_parts();
    Some(
        rt().block_on(ApiQuery::<T>::from_request_parts(&mut parts, &()))
            .map(|ApiQuery(q)| q)
            .map_err(|e| {
                assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY, "{e:?}");
                e.status
            }),
    )
}

fn check_page(limit: Option<u32>, cursor: Option<String>) {
    match (PageQuery { limit, cursor }).page_request() {
        Ok(p) => {
            assert!((1..=MAX_PAGE_LIMIT).contains(&p.limit));
            if let Some(c) = &p.cursor {
                assert!(!c.is_empty() && c.len() <= 1024);
                check_cursor(c);
            }
        }
        Err(e) => assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY),
    }
}

fn check_cursor(c: &str) {
    for expected in [ATTEMPTS, WEBHOOKS] {
        match decode_cursor(c, expected) {
            Ok(key) => {
                // Exactly the key attributes, each a non-empty string, in the queried partition.
                assert_eq!(key.len(), expected.len());
                for (name, want) in expected {
                    let v = key[*name].as_s().expect("a string attribute");
                    assert!(!v.is_empty());
                    if let Some(w) = want {
                        assert_eq!(v, w);
                    }
                }
                let names: Vec<&str> = expected.iter().map(|(n, _)| *n).collect();
                let again = encode_cursor(&key, &names).expect("encodes");
                let back: HashMap<String, AttributeValue> =
                    decode_cursor(&again, expected).expect("a re-encoded cursor decodes");
                assert_eq!(back, key, "round trip");
            }
            Err(e) => assert_eq!(e, StoreError::BadCursor),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&kind, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    match kind % 3 {
        0 => {
            if let Some(Ok(q)) = extract::<PageQuery>(text) {
                check_page(q.limit, q.cursor);
            }
        }
        1 => {
            if let Some(Ok(q)) = extract::<DeliveriesQuery>(text) {
                check_page(q.limit, q.cursor);
            }
        }
        _ => check_cursor(text),
    }
});
