//! Input validation shared by create and update.

use chrono::{DateTime, Utc};
use relay_shared::events::EventType;
use relay_shared::filters::Filter;
use relay_shared::subscription::Ordering;
use serde_json::Value;

use crate::config::ApiConfig;
use crate::error::ApiError;

pub const NAME_MAX_CHARS: usize = 200;
pub const URL_MAX_CHARS: usize = 2048;
pub const SECRET_MIN_CHARS: usize = 24;
pub const SECRET_MAX_CHARS: usize = 128;

pub fn name(value: &str) -> Result<String, ApiError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(ApiError::invalid("name", "`name` must not be empty."));
    }
    if trimmed.chars().count() > NAME_MAX_CHARS {
        return Err(ApiError::invalid(
            "name",
            format!("`name` must be at most {NAME_MAX_CHARS} characters."),
        ));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "name",
            "`name` must not contain control characters.",
        ));
    }
    Ok(trimmed.to_owned())
}

/// A target URL: at most [`URL_MAX_CHARS`], and accepted by the one target policy
/// (`relay_shared::targets`) that the delivery worker applies at send time, so a subscription the
/// API creates is one the worker will call. The `422` detail names the policy's reason class.
/// (Host names are resolved and checked by the worker: DNS can change after creation.)
pub fn target_url(value: &str, config: &ApiConfig) -> Result<String, ApiError> {
    let too_long = || {
        ApiError::invalid(
            "url",
            format!("`url` must be at most {URL_MAX_CHARS} characters (as stored, with international names in punycode)."),
        )
    };
    if value.chars().count() > URL_MAX_CHARS {
        return Err(too_long());
    }
    let url = config
        .targets
        .check_url(value.trim())
        .map_err(|r| ApiError::invalid("url", format!("`url` is refused ({}): {r}.", r.reason)))?
        .to_string();
    // The stored (normalised) form is what a later update sends back: it must pass this check too.
    if url.chars().count() > URL_MAX_CHARS {
        return Err(too_long());
    }
    Ok(url)
}

/// `ordering`: `none` or `per-call` (docs/ordering.md).
pub fn ordering(value: &str) -> Result<Ordering, ApiError> {
    match value {
        "none" => Ok(Ordering::None),
        "per-call" => Ok(Ordering::PerCall),
        other => Err(ApiError::invalid(
            "ordering",
            format!("`ordering` must be `none` or `per-call`, not `{other}`."),
        )),
    }
}

/// `filter` (docs/call-events.md#payload-filters), checked by the filter language itself: the 422
/// names the path or operator at fault (`filter.data.personality`, `filter.data.personality.gt`).
pub fn filter(value: &Value) -> Result<Filter, ApiError> {
    Filter::parse(value).map_err(|e| ApiError::invalid(&e.field, e.message))
}

/// A user-supplied secret: 24–128 printable ASCII characters (no spaces).
pub fn secret(value: &str) -> Result<String, ApiError> {
    let n = value.chars().count();
    if !(SECRET_MIN_CHARS..=SECRET_MAX_CHARS).contains(&n)
        || !value.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(ApiError::invalid(
            "secret",
            format!("`secret` must be {SECRET_MIN_CHARS}–{SECRET_MAX_CHARS} printable ASCII characters without spaces; leave it out to have one generated."),
        ));
    }
    Ok(value.to_owned())
}

pub fn catalogue_names() -> String {
    EventType::ALL
        .iter()
        .map(|t| t.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Non-empty, each in the catalogue; duplicates are dropped (order kept).
pub fn event_types(values: &[String]) -> Result<Vec<EventType>, ApiError> {
    if values.is_empty() {
        return Err(ApiError::invalid(
            "eventTypes",
            format!(
                "`eventTypes` must list at least one event type; valid types: {}.",
                catalogue_names()
            ),
        ));
    }
    let mut out = Vec::new();
    for (i, v) in values.iter().enumerate() {
        let Some(t) = EventType::parse(v) else {
            let shown: String = v.chars().take(64).collect();
            return Err(ApiError::invalid(
                &format!("eventTypes[{i}]"),
                format!(
                    "`{shown}` is not an event type; valid types: {}.",
                    catalogue_names()
                ),
            ));
        };
        if !out.contains(&t) {
            out.push(t);
        }
    }
    Ok(out)
}

pub fn rate_limit(value: u32, config: &ApiConfig) -> Result<u32, ApiError> {
    if value == 0 || value > config.max_rate_limit_per_minute {
        return Err(ApiError::invalid(
            "rateLimitPerMinute",
            format!(
                "`rateLimitPerMinute` must be between 1 and {}.",
                config.max_rate_limit_per_minute
            ),
        ));
    }
    Ok(value)
}

/// A query parameter naming one event type (`eventType`).
pub fn event_type_param(field: &str, value: &str) -> Result<EventType, ApiError> {
    EventType::parse(value).ok_or_else(|| {
        let shown: String = value.chars().take(64).collect();
        ApiError::invalid(
            field,
            format!(
                "`{shown}` is not an event type; valid types: {}.",
                catalogue_names()
            ),
        )
    })
}

/// A `[since, until)` window, either end open.
pub type TimeWindow = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// `since`/`until` query parameters: RFC 3339 instants (`2026-12-02T03:00:00Z`), `until` later
/// than `since` when both are given. A window `[since, until)`.
pub fn time_window(since: Option<&str>, until: Option<&str>) -> Result<TimeWindow, ApiError> {
    let instant = |field: &str, value: &str| {
        DateTime::parse_from_rfc3339(value)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| {
                ApiError::invalid(
                    field,
                    format!("`{field}` must be an RFC 3339 date-time, e.g. 2026-12-02T03:00:00Z."),
                )
            })
    };
    let since = since.map(|v| instant("since", v)).transpose()?;
    let until = until.map(|v| instant("until", v)).transpose()?;
    if let (Some(s), Some(u)) = (since, until) {
        if u <= s {
            return Err(ApiError::invalid(
                "until",
                "`until` must be later than `since`.",
            ));
        }
    }
    Ok((since, until))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_stored_form_of_an_accepted_url_is_accepted_again() {
        let config = crate::config::ApiConfig::default();
        // 2048 characters as typed, longer once the international labels are stored in punycode:
        // refused, since an update sending the stored URL back would be.
        let host = vec!["ü".repeat(10); 20].join(".");
        let typed_prefix = format!("https://{host}.example/");
        let url = format!(
            "{typed_prefix}{}",
            "p".repeat(super::URL_MAX_CHARS - typed_prefix.chars().count())
        );
        assert_eq!(url.chars().count(), super::URL_MAX_CHARS);
        let e = super::target_url(&url, &config).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("url"), "{e:?}");
        // A short international URL is stored in punycode and accepted again as stored.
        let stored = super::target_url("https://bücher.example/hook", &config).unwrap();
        assert_eq!(stored, "https://xn--bcher-kva.example/hook");
        assert_eq!(super::target_url(&stored, &config).unwrap(), stored);
    }

    use super::*;

    /// The address ranges are tested once, against the policy itself (relay_shared::targets);
    /// here: that the API applies it, with its own length limit and error shape.
    #[test]
    fn urls_go_through_the_target_policy() {
        let strict = ApiConfig::default();
        assert_eq!(
            target_url(" https://Example.com", &strict).unwrap(),
            "https://example.com/"
        );
        let e = target_url("https://[2002:7f00:1::]/", &strict).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("url"));
        assert!(e.detail.contains("(6to4)"), "{}", e.detail);
        let long = format!("https://example.com/{}", "a".repeat(URL_MAX_CHARS));
        assert!(target_url(&long, &strict)
            .unwrap_err()
            .detail
            .contains("2048"));
        let allow = ApiConfig::from_env_pairs(&[("TARGET_ALLOW_CIDRS", "10.0.0.0/8")]).unwrap();
        assert!(target_url("https://10.1.2.3/hook", &allow).is_ok());
        assert!(target_url("https://10.1.2.3/hook", &strict).is_err());
    }

    #[test]
    fn secrets_and_types() {
        assert!(secret(&"a".repeat(24)).is_ok());
        assert!(secret(&"a".repeat(23)).is_err());
        assert!(secret(&"a".repeat(129)).is_err());
        assert!(secret(&format!("{} b", "a".repeat(30))).is_err());
        assert!(secret(&format!("{}é", "a".repeat(30))).is_err());
        assert_eq!(
            event_types(&["presence:changed".into(), "presence:changed".into()]).unwrap(),
            vec![EventType::PresenceChanged]
        );
        let e = event_types(&["nope".into()]).unwrap_err();
        assert!(e.detail.contains("telephony:created"), "{}", e.detail);
        assert_eq!(e.field.as_deref(), Some("eventTypes[0]"));
        assert!(event_types(&[]).is_err());
    }
}
