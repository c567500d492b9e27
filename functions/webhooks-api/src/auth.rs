//! Bearer authentication: `Authorization: Bearer <key>`, looked up by SHA-256 hash.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use chrono::Utc;
use relay_shared::auth::{generate_api_key, hash_api_key, ApiKeyRecord, Role};
use relay_shared::error::StoreError;
use relay_shared::ports::Stores;

use crate::error::ApiError;
use crate::state::AppState;

/// The authenticated caller: who they are, which org they act in, and their role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub user_id: String,
    pub org_id: String,
    pub role: Role,
}

impl Caller {
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.role == Role::Admin {
            Ok(())
        } else {
            Err(ApiError::forbidden(
                "This operation needs an admin API key.",
            ))
        }
    }
}

/// The key presented in an `Authorization: Bearer` header, if any.
pub fn bearer_key(parts: &Parts) -> Option<&str> {
    let value = parts
        .headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .trim();
    let (scheme, key) = value.split_once(' ')?;
    let key = key.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !key.is_empty()).then_some(key)
}

/// Resolves the caller of a request (cached in the request's extensions).
pub async fn authenticate(parts: &mut Parts, state: &AppState) -> Result<Caller, ApiError> {
    if let Some(caller) = parts.extensions.get::<Caller>() {
        return Ok(caller.clone());
    }
    let Some(key) = bearer_key(parts) else {
        return Err(ApiError::unauthorized(
            "A valid `Authorization: Bearer <key>` header is required.",
        ));
    };
    // Keys are long random strings; anything absurdly long cannot be one (and is not hashed).
    if key.len() > 512 {
        return Err(ApiError::unauthorized("The API key is not valid."));
    }
    let record = state.stores.api_keys.get(&hash_api_key(key)).await?;
    let Some(record) = record else {
        return Err(ApiError::unauthorized("The API key is not valid."));
    };
    let caller = Caller {
        user_id: record.user_id,
        org_id: record.org_id,
        role: record.role,
    };
    parts.extensions.insert(caller.clone());
    Ok(caller)
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        authenticate(parts, state).await
    }
}

/// Creates an API key for `user_id` in `org_id` and returns it: this is the only time the key is
/// seen, only its SHA-256 hash is stored.
pub async fn create_api_key(
    stores: &Stores,
    user_id: &str,
    org_id: &str,
    role: Role,
) -> Result<String, StoreError> {
    let key = generate_api_key();
    store_api_key(stores, &key, user_id, org_id, role).await?;
    Ok(key)
}

/// Stores a caller-chosen key (tests and the local e2e setup use a well-known key this way).
pub async fn store_api_key(
    stores: &Stores,
    key: &str,
    user_id: &str,
    org_id: &str,
    role: Role,
) -> Result<(), StoreError> {
    if user_id.trim().is_empty() || org_id.trim().is_empty() {
        return Err(StoreError::Conflict(
            "user and org ids must not be empty".into(),
        ));
    }
    let record = ApiKeyRecord {
        key_hash: hash_api_key(key),
        user_id: user_id.to_owned(),
        org_id: org_id.to_owned(),
        role,
        created_at: Utc::now(),
    };
    stores.api_keys.put(&record).await
}

/// Revokes a key given the key itself; `false` if it did not exist.
pub async fn revoke_api_key(stores: &Stores, key: &str) -> Result<bool, StoreError> {
    stores.api_keys.delete(&hash_api_key(key)).await
}

/// Revokes a key by its stored hash (hex SHA-256); `false` if it did not exist.
pub async fn revoke_api_key_hash(stores: &Stores, key_hash: &str) -> Result<bool, StoreError> {
    stores.api_keys.delete(&key_hash.to_ascii_lowercase()).await
}
