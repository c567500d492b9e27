//! Input validation shared by create and update.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use relay_shared::events::EventType;
use url::{Host, Url};

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

/// A target URL: absolute `https` (`http` only when allowed), no credentials, and not a literal
/// loopback/private/link-local/unspecified address or `localhost`. (Names resolving to such
/// addresses are refused by the delivery worker at send time.)
pub fn target_url(value: &str, config: &ApiConfig) -> Result<String, ApiError> {
    let bad = |detail: &str| ApiError::invalid("url", detail.to_owned());
    if value.chars().count() > URL_MAX_CHARS {
        return Err(bad(&format!(
            "`url` must be at most {URL_MAX_CHARS} characters."
        )));
    }
    let url = Url::parse(value.trim())
        .map_err(|e| bad(&format!("`url` must be an absolute URL ({e}).")))?;
    match url.scheme() {
        "https" => {}
        "http" if config.allow_http_targets => {}
        "http" => return Err(bad("`url` must use https.")),
        _ => return Err(bad("`url` must be an https URL.")),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("`url` must not contain credentials."));
    }
    match url.host() {
        None => return Err(bad("`url` must have a host.")),
        Some(_) if config.allow_private_targets => {}
        Some(Host::Domain(d)) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            if d.is_empty() || d == "localhost" || d.ends_with(".localhost") {
                return Err(bad("`url` must not point at localhost."));
            }
        }
        Some(Host::Ipv4(ip)) => {
            if !is_public_ip(IpAddr::V4(ip)) {
                return Err(bad("`url` must not point at a private, loopback, link-local or unspecified address."));
            }
        }
        Some(Host::Ipv6(ip)) => {
            if !is_public_ip(IpAddr::V6(ip)) {
                return Err(bad("`url` must not point at a private, loopback, link-local or unspecified address."));
            }
        }
    }
    Ok(url.to_string())
}

/// Could this address be a public internet host?
pub fn is_public_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            let s = v6.segments();
            // IPv4-compatible (::a.b.c.d, deprecated) and NAT64 (64:ff9b::/96) embed an IPv4 address.
            if s[..6] == [0, 0, 0, 0, 0, 0] || s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                let v4 =
                    Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
                return !v6.is_unspecified() && !v6.is_loopback() && is_public_v4(v4);
            }
            !(v6.is_unspecified()
                || v6.is_loopback()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (s[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (s[0] & 0xffc0) == 0xfec0 // site-local fec0::/10 (deprecated)
                || (s[0] == 0x2001 && s[1] == 0x0db8)) // documentation
                && v6 != Ipv6Addr::UNSPECIFIED
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || o[0] == 0 // "this network"
        || (o[0] == 100 && (o[1] & 0xc0) == 64) // shared address space 100.64.0.0/10
        || (o[0] == 192 && o[1] == 0 && o[2] == 0) // IETF protocol assignments
        || (o[0] == 198 && (o[1] & 0xfe) == 18) // benchmarking 198.18.0.0/15
        || o[0] >= 240) // reserved
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(u: &str) -> bool {
        target_url(u, &ApiConfig::default()).is_ok()
    }

    #[test]
    fn urls() {
        assert!(ok("https://example.com/hook"));
        assert!(ok("https://93.184.216.34:8443/x?y=1"));
        assert!(ok("https://[2606:4700::1111]/"));
        for bad in [
            "http://example.com/",
            "ftp://example.com/",
            "/relative",
            "example.com",
            "https://user:pw@example.com/",
            "https://user@example.com/",
            "https://localhost/",
            "https://LOCALHOST./",
            "https://api.localhost/",
            "https://127.0.0.1/",
            "https://0x7f.1/",
            "https://2130706433/",
            "https://10.1.2.3/",
            "https://172.16.0.1/",
            "https://192.168.1.1/",
            "https://169.254.169.254/latest/meta-data",
            "https://0.0.0.0/",
            "https://100.64.0.1/",
            "https://[::1]/",
            "https://[::]/",
            "https://[::ffff:127.0.0.1]/",
            "https://[::ffff:10.0.0.1]/",
            "https://[fe80::1]/",
            "https://[fd00::1]/",
            "https://[fc00::1]/",
            "https://[64:ff9b::7f00:1]/",
        ] {
            assert!(!ok(bad), "{bad} should be refused");
        }
        let allow = ApiConfig {
            allow_http_targets: true,
            ..ApiConfig::default()
        };
        assert!(target_url("http://example.com/", &allow).is_ok());
        assert!(target_url("http://127.0.0.1/", &allow).is_err());
        let local = ApiConfig {
            allow_http_targets: true,
            allow_private_targets: true,
            ..ApiConfig::default()
        };
        assert!(target_url("http://127.0.0.1:3001/hook", &local).is_ok());
        assert!(target_url("http://localhost/", &local).is_ok());
        assert!(target_url("http://user:pw@127.0.0.1/", &local).is_err());
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
