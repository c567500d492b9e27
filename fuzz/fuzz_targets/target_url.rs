//! Subscriber target URLs through the one target policy (`TargetPolicy::check_url`, used by the
//! API on create/update and by the worker before every request), strict, allow-listed and
//! permissive. An accepted URL never names a non-public literal address the policy does not allow,
//! never carries credentials, and is accepted again, unchanged, in its stored (serialised) form.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use relay_shared::targets::{embedded_ipv4, forbidden, parse_cidrs, TargetPolicy};
use url::{Host, Url};

struct Policies {
    strict: TargetPolicy,
    listed: TargetPolicy,
    permissive: TargetPolicy,
}

fn policies() -> &'static Policies {
    static P: OnceLock<Policies> = OnceLock::new();
    P.get_or_init(|| Policies {
        strict: TargetPolicy::default(),
        listed: TargetPolicy {
            allow_http: true,
            allow_private: false,
            allow_cidrs: parse_cidrs("10.0.0.0/8, 64:ff9b::/96").unwrap(),
        },
        permissive: TargetPolicy {
            allow_http: true,
            allow_private: true,
            allow_cidrs: vec![],
        },
    })
}

/// Checks independent of the policy's own table: the standard library's view of the address.
fn plainly_internal(ip: IpAddr) -> bool {
    let v4_internal = |v4: Ipv4Addr| {
        v4.is_loopback()
            || v4.is_private()
            || v4.is_link_local()
            || v4.is_unspecified()
            || v4.is_multicast()
            || v4.is_broadcast()
            || v4.is_documentation()
    };
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4_internal(v4),
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || v6.is_unique_local()
                || v6.is_unicast_link_local()
                || embedded_ipv4(v6).is_some_and(v4_internal)
        }
    }
}

fn literal(url: &Url) -> Option<IpAddr> {
    match url.host()? {
        Host::Ipv4(v4) => Some(IpAddr::V4(v4)),
        Host::Ipv6(v6) => Some(IpAddr::V6(v6)),
        Host::Domain(_) => None,
    }
}

fn common(policy: &TargetPolicy, url: &Url) {
    assert!(url.scheme() == "https" || (policy.allow_http && url.scheme() == "http"));
    assert!(
        url.username().is_empty() && url.password().is_none(),
        "credentials"
    );
    assert!(url.host().is_some());
    // The API stores `url.to_string()`; the worker checks that string again before each request.
    let again = policy
        .check_url(url.as_str())
        .unwrap_or_else(|r| panic!("stored form `{url}` refused: {r}"));
    assert_eq!(again.as_str(), url.as_str(), "normalisation is idempotent");
}

fn is_localhost(url: &Url) -> bool {
    matches!(url.host(), Some(Host::Domain(d)) if {
        let d = d.trim_end_matches('.').to_ascii_lowercase();
        d == "localhost" || d.ends_with(".localhost")
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    let p = policies();
    if let Ok(url) = p.strict.check_url(raw) {
        common(&p.strict, &url);
        assert!(!is_localhost(&url));
        if let Some(ip) = literal(&url) {
            assert!(forbidden(ip).is_none(), "strict accepted {ip}");
            assert!(!plainly_internal(ip), "strict accepted internal {ip}");
        }
    }
    if let Ok(url) = p.listed.check_url(raw) {
        common(&p.listed, &url);
        assert!(!is_localhost(&url));
        if let Some(ip) = literal(&url) {
            let inner = match ip.to_canonical() {
                IpAddr::V6(v6) => embedded_ipv4(v6).map(IpAddr::V4),
                v4 => Some(v4),
            };
            let in_ten =
                |ip: Option<IpAddr>| matches!(ip, Some(IpAddr::V4(v4)) if v4.octets()[0] == 10);
            // Public, or in 10.0.0.0/8 (itself or embedded); a listed NAT64 prefix only for a
            // public embedded address.
            assert!(
                forbidden(ip).is_none()
                    || in_ten(inner)
                    || inner.is_some_and(|i| forbidden(i).is_none()),
                "allow-listed policy accepted {ip}"
            );
            assert!(
                !inner.is_some_and(|i| i.is_loopback()),
                "loopback behind {ip}"
            );
        }
    }
    if let Ok(url) = p.permissive.check_url(raw) {
        common(&p.permissive, &url);
    }
    // Whatever the strict policy accepts, the looser ones accept too.
    if p.strict.check_url(raw).is_ok() {
        assert!(p.listed.check_url(raw).is_ok() && p.permissive.check_url(raw).is_ok());
    }
});
