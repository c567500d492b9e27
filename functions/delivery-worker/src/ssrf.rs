//! The SSRF guard: which delivery targets may be called.
//!
//! * Scheme: `https` only, unless `ALLOW_HTTP_TARGETS`.
//! * Address: every address a host resolves to must be public. Literal IPs are checked here (the
//!   `url` crate has already normalised decimal/hex/octal IPv4 forms such as `http://2130706433/`,
//!   `http://0x7f.1/`, `http://0177.0.0.1/` to `127.0.0.1`); names are resolved by
//!   [`GuardedResolver`], which reqwest uses as its DNS resolver, so the connection goes to exactly
//!   the addresses that were checked (no second lookup, no DNS rebinding window).
//! * `TARGET_ALLOW_CIDRS` (operator allow-list) wins over the address rules;
//!   `ALLOW_PRIVATE_TARGETS` (local use only) switches the address rules off.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;

use ipnet::IpNet;
use relay_shared::delivery::ErrorClass;
use url::{Host, Url};

/// Which targets the worker may call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetPolicy {
    pub allow_http: bool,
    /// Disables the address check entirely (local development only; logged loudly).
    pub allow_private: bool,
    /// Addresses in these blocks are allowed even when they are not public.
    pub allow_cidrs: Vec<IpNet>,
}

/// Why a target was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Refusal {
    /// `SsrfBlocked` or `InvalidUrl`: both are permanent.
    pub class: ErrorClass,
    pub reason: String,
}

impl Refusal {
    fn blocked(reason: impl Into<String>) -> Self {
        Self {
            class: ErrorClass::SsrfBlocked,
            reason: reason.into(),
        }
    }
}

impl TargetPolicy {
    /// Parses the URL and checks its scheme and, for a literal IP host, its address.
    /// Host names are checked at resolution time by [`GuardedResolver`].
    pub fn check_url(&self, raw: &str) -> Result<Url, Refusal> {
        let url = Url::parse(raw).map_err(|e| Refusal {
            class: ErrorClass::InvalidUrl,
            reason: format!("invalid URL: {e}"),
        })?;
        match url.scheme() {
            "https" => {}
            "http" if self.allow_http => {}
            "http" => {
                return Err(Refusal::blocked(
                    "plain http targets are not allowed (https only)",
                ))
            }
            other => return Err(Refusal::blocked(format!("scheme `{other}` is not allowed"))),
        }
        match url.host() {
            None => {
                return Err(Refusal {
                    class: ErrorClass::InvalidUrl,
                    reason: "URL has no host".into(),
                })
            }
            Some(Host::Ipv4(v4)) => self.check_ip(IpAddr::V4(v4)).map_err(Refusal::blocked)?,
            Some(Host::Ipv6(v6)) => self.check_ip(IpAddr::V6(v6)).map_err(Refusal::blocked)?,
            Some(Host::Domain(d)) => {
                if d.is_empty() {
                    return Err(Refusal {
                        class: ErrorClass::InvalidUrl,
                        reason: "URL has an empty host".into(),
                    });
                }
            }
        }
        Ok(url)
    }

    /// `Ok` if the address may be called under this policy, else the reason.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), String> {
        if self.is_allow_listed(ip) || self.allow_private {
            return Ok(());
        }
        match forbidden_reason(ip) {
            Some(reason) => Err(format!("{ip} is {reason}")),
            None => Ok(()),
        }
    }

    fn is_allow_listed(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        let embedded = match ip {
            IpAddr::V6(v6) => embedded_ipv4(v6).map(IpAddr::V4),
            IpAddr::V4(_) => None,
        };
        self.allow_cidrs
            .iter()
            .any(|net| net.contains(&ip) || embedded.is_some_and(|e| net.contains(&e)))
    }
}

/// An IPv4-mapped IPv6 address is its IPv4 address for allow-listing purposes.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn v4_in(ip: Ipv4Addr, net: [u8; 4], prefix: u8) -> bool {
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    };
    (u32::from(ip) & mask) == (u32::from(Ipv4Addr::from(net)) & mask)
}

fn v6_in(ip: Ipv6Addr, net: Ipv6Addr, prefix: u8) -> bool {
    let mask = if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - prefix)
    };
    (u128::from(ip) & mask) == (u128::from(net) & mask)
}

const V4_RULES: &[([u8; 4], u8, &str)] = &[
    ([255, 255, 255, 255], 32, "the broadcast address"),
    ([0, 0, 0, 0], 8, "unspecified (0.0.0.0/8)"),
    ([10, 0, 0, 0], 8, "private (10.0.0.0/8)"),
    (
        [100, 64, 0, 0],
        10,
        "shared address space / CGNAT (100.64.0.0/10)",
    ),
    ([127, 0, 0, 0], 8, "loopback (127.0.0.0/8)"),
    (
        [169, 254, 0, 0],
        16,
        "link-local (169.254.0.0/16, incl. the instance metadata service)",
    ),
    ([172, 16, 0, 0], 12, "private (172.16.0.0/12)"),
    (
        [192, 0, 0, 0],
        24,
        "IETF protocol assignments (192.0.0.0/24)",
    ),
    ([192, 0, 2, 0], 24, "documentation (192.0.2.0/24)"),
    ([192, 88, 99, 0], 24, "6to4 relay anycast (192.88.99.0/24)"),
    ([192, 168, 0, 0], 16, "private (192.168.0.0/16)"),
    ([198, 18, 0, 0], 15, "benchmarking (198.18.0.0/15)"),
    ([198, 51, 100, 0], 24, "documentation (198.51.100.0/24)"),
    ([203, 0, 113, 0], 24, "documentation (203.0.113.0/24)"),
    ([224, 0, 0, 0], 4, "multicast (224.0.0.0/4)"),
    ([240, 0, 0, 0], 4, "reserved (240.0.0.0/4)"),
];

fn v4_reason(ip: Ipv4Addr) -> Option<&'static str> {
    V4_RULES
        .iter()
        .find(|(net, p, _)| v4_in(ip, *net, *p))
        .map(|(_, _, r)| *r)
}

/// The IPv4 address an IPv6 transition address carries (mapped, compatible, NAT64, 6to4, Teredo).
pub fn embedded_ipv4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let bits = u128::from(ip);
    let low32 = Ipv4Addr::from(bits as u32);
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    if v6_in(ip, Ipv6Addr::UNSPECIFIED, 96) && bits > 1 {
        return Some(low32); // IPv4-compatible (deprecated)
    }
    if v6_in(ip, Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), 96)
        || v6_in(ip, Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0), 48)
    {
        return Some(low32); // NAT64
    }
    if v6_in(ip, Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0), 16) {
        return Some(Ipv4Addr::from((bits >> 80) as u32)); // 6to4
    }
    if v6_in(ip, Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 32) {
        return Some(Ipv4Addr::from(!(bits as u32))); // Teredo client (obfuscated)
    }
    None
}

fn v6_reason(ip: Ipv6Addr) -> Option<String> {
    let embedded = |kind: &str| match embedded_ipv4(ip) {
        Some(v4) => {
            let verdict = v4_reason(v4).map_or_else(|| "public".to_owned(), str::to_owned);
            format!("{kind} (embeds {v4}: {verdict}; never allowed)")
        }
        None => kind.to_owned(),
    };
    let rules: &[(Ipv6Addr, u8, &str)] = &[
        (Ipv6Addr::UNSPECIFIED, 128, "unspecified (::)"),
        (Ipv6Addr::LOCALHOST, 128, "loopback (::1)"),
        (
            Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0, 0),
            96,
            "IPv4-mapped (::ffff:0:0/96)",
        ),
        (Ipv6Addr::UNSPECIFIED, 96, "IPv4-compatible (::/96)"),
        (
            Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0),
            96,
            "NAT64 (64:ff9b::/96)",
        ),
        (
            Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0),
            48,
            "local-use NAT64 (64:ff9b:1::/48)",
        ),
        (
            Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0),
            64,
            "discard-only (100::/64)",
        ),
        (
            Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0),
            32,
            "documentation (2001:db8::/32)",
        ),
        (
            Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0),
            32,
            "Teredo (2001::/32)",
        ),
        (
            Ipv6Addr::new(0x2001, 0x10, 0, 0, 0, 0, 0, 0),
            28,
            "ORCHID (2001:10::/28)",
        ),
        (
            Ipv6Addr::new(0x2001, 0x20, 0, 0, 0, 0, 0, 0),
            28,
            "ORCHIDv2 (2001:20::/28)",
        ),
        (
            Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0),
            16,
            "6to4 (2002::/16)",
        ),
        (
            Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0),
            20,
            "documentation (3fff::/20)",
        ),
        (
            Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0),
            7,
            "unique-local (fc00::/7)",
        ),
        (
            Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0),
            10,
            "link-local (fe80::/10)",
        ),
        (
            Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0),
            10,
            "site-local (fec0::/10)",
        ),
        (
            Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0),
            8,
            "multicast (ff00::/8)",
        ),
    ];
    if let Some((_, _, r)) = rules.iter().find(|(net, p, _)| v6_in(ip, *net, *p)) {
        return Some(embedded(r));
    }
    if !v6_in(ip, Ipv6Addr::new(0x2000, 0, 0, 0, 0, 0, 0, 0), 3) {
        return Some("not global unicast (outside 2000::/3)".into());
    }
    None
}

/// Why an address is not a public internet address, if it is not.
pub fn forbidden_reason(ip: IpAddr) -> Option<String> {
    match ip {
        IpAddr::V4(v4) => v4_reason(v4).map(str::to_owned),
        IpAddr::V6(v6) => v6_reason(v6),
    }
}

/// Looks host names up (the system resolver in production, a fixed table in tests).
pub trait Lookup: Send + Sync {
    fn lookup(
        &self,
        host: String,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send>>;
}

/// `getaddrinfo` via tokio.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemLookup;

impl Lookup for SystemLookup {
    fn lookup(
        &self,
        host: String,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send>> {
        // `name.` is the same (absolute) name; some resolvers refuse the trailing dot form.
        let name = host
            .strip_suffix('.')
            .filter(|n| !n.is_empty())
            .unwrap_or(&host)
            .to_owned();
        Box::pin(async move {
            Ok(tokio::net::lookup_host((name.as_str(), 0))
                .await?
                .map(|a| a.ip())
                .collect())
        })
    }
}

/// A fixed name → addresses table (tests: "a name resolving to 127.0.0.1", rebinding).
#[derive(Debug, Default, Clone)]
pub struct StaticLookup(pub std::collections::HashMap<String, Vec<IpAddr>>);

impl Lookup for StaticLookup {
    fn lookup(
        &self,
        host: String,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send>> {
        let found = self.0.get(&host.to_ascii_lowercase()).cloned();
        Box::pin(async move {
            found.ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::NotFound, format!("no such host {host}"))
            })
        })
    }
}

/// What the guarded resolver reports (found again in reqwest's error source chain).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveFailure {
    #[error("DNS lookup of `{host}` failed: {message}")]
    Dns { host: String, message: String },
    #[error("target `{host}` refused: {reason}")]
    Blocked { host: String, reason: String },
}

/// reqwest's DNS resolver: resolves, then refuses the whole host when any address is not allowed.
/// reqwest connects only to the addresses returned here.
#[derive(Clone)]
pub struct GuardedResolver {
    policy: Arc<TargetPolicy>,
    lookup: Arc<dyn Lookup>,
}

impl GuardedResolver {
    pub fn new(policy: Arc<TargetPolicy>, lookup: Arc<dyn Lookup>) -> Self {
        Self { policy, lookup }
    }

    /// The checked addresses of `host`.
    pub async fn resolve_checked(&self, host: &str) -> Result<Vec<IpAddr>, ResolveFailure> {
        // A bracketed or bare literal never reaches a resolver in reqwest, but be safe.
        let trimmed = host.trim_start_matches('[').trim_end_matches(']');
        let addrs = match trimmed.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => {
                self.lookup
                    .lookup(host.to_owned())
                    .await
                    .map_err(|e| ResolveFailure::Dns {
                        host: host.to_owned(),
                        message: e.to_string(),
                    })?
            }
        };
        if addrs.is_empty() {
            return Err(ResolveFailure::Dns {
                host: host.to_owned(),
                message: "no addresses".into(),
            });
        }
        for ip in &addrs {
            self.policy
                .check_ip(*ip)
                .map_err(|reason| ResolveFailure::Blocked {
                    host: host.to_owned(),
                    reason,
                })?;
        }
        Ok(addrs)
    }
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let this = self.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs = this
                .resolve_checked(&host)
                .await
                .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)?;
            let out: reqwest::dns::Addrs =
                Box::new(addrs.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(out)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strict() -> TargetPolicy {
        TargetPolicy::default()
    }

    #[test]
    fn refuses_non_public_ipv4() {
        for ip in [
            "127.0.0.1",
            "127.255.255.254",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.255",
            "0.0.0.0",
            "0.1.2.3",
            "255.255.255.255",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "192.0.0.8",
            "192.0.2.1",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.9",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(forbidden_reason(ip).is_some(), "{ip} should be refused");
            assert!(strict().check_ip(ip).is_err(), "{ip}");
        }
    }

    #[test]
    fn allows_public_addresses() {
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "100.128.0.1",
            "172.32.0.1",
            "198.20.0.1",
            "2606:4700:4700::1111",
            "2a00:1450:4001::200e",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(forbidden_reason(ip), None, "{ip}");
        }
    }

    #[test]
    fn refuses_non_public_ipv6() {
        for ip in [
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:8.8.8.8",
            "::127.0.0.1",
            "64:ff9b::7f00:1",
            "64:ff9b::808:808",
            "2002:7f00:1::",
            "2002:a9fe:a9fe::1",
            "2001:0:4136:e378:8000:63bf:80ff:fffe",
            "2001:db8::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "100::1",
            "3fff::1",
            "4000::1",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(forbidden_reason(ip).is_some(), "{ip} should be refused");
        }
        let r = forbidden_reason("2002:a9fe:a9fe::1".parse().unwrap()).unwrap();
        assert!(r.contains("169.254.169.254"), "{r}");
        let r = forbidden_reason("2001:0:4136:e378:8000:63bf:80ff:fffe".parse().unwrap()).unwrap();
        assert!(r.contains("Teredo") && r.contains("127.0.0.1"), "{r}");
    }

    #[test]
    fn url_forms_of_loopback_are_normalised_and_refused() {
        let p = TargetPolicy {
            allow_http: true,
            ..Default::default()
        };
        for raw in [
            "http://2130706433/",
            "http://0x7f.1/",
            "http://0x7f000001/",
            "http://0177.0.0.1/",
            "http://017700000001/",
            "http://127.1/",
            "http://127.0.0.1./",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:7f00:1]/",
            "http://[::1]:8080/x",
            "http://169.254.169.254/latest/meta-data/",
            "http://0251.0376.0251.0376/",
            "http://0/",
        ] {
            let e = p.check_url(raw).unwrap_err();
            assert_eq!(e.class, ErrorClass::SsrfBlocked, "{raw}: {e}");
        }
        // The url crate really does normalise them.
        assert_eq!(
            Url::parse("http://2130706433/").unwrap().host(),
            Some(Host::Ipv4(Ipv4Addr::LOCALHOST))
        );
        assert_eq!(
            Url::parse("http://0x7f.1/").unwrap().host(),
            Some(Host::Ipv4(Ipv4Addr::LOCALHOST))
        );
        assert_eq!(
            Url::parse("http://0177.0.0.1/").unwrap().host(),
            Some(Host::Ipv4(Ipv4Addr::LOCALHOST))
        );
    }

    #[test]
    fn scheme_rules() {
        let p = strict();
        assert_eq!(
            p.check_url("http://example.com/").unwrap_err().class,
            ErrorClass::SsrfBlocked
        );
        assert_eq!(
            p.check_url("ftp://example.com/").unwrap_err().class,
            ErrorClass::SsrfBlocked
        );
        assert_eq!(
            p.check_url("file:///etc/passwd").unwrap_err().class,
            ErrorClass::SsrfBlocked
        );
        assert_eq!(
            p.check_url("not a url").unwrap_err().class,
            ErrorClass::InvalidUrl
        );
        assert!(p.check_url("https://example.com/hook").is_ok());
        assert!(p.check_url("https://8.8.8.8/hook").is_ok());
        let http = TargetPolicy {
            allow_http: true,
            ..Default::default()
        };
        assert!(http.check_url("http://example.com/").is_ok());
    }

    #[test]
    fn allow_list_and_private_override() {
        let p = TargetPolicy {
            allow_http: true,
            allow_cidrs: vec!["127.0.0.1/32".parse().unwrap()],
            ..Default::default()
        };
        assert!(p.check_url("http://127.0.0.1:9/").is_ok());
        assert!(p.check_url("http://[::ffff:127.0.0.1]:9/").is_ok());
        assert!(p.check_url("http://127.0.0.2/").is_err());
        assert!(p.check_url("http://10.0.0.1/").is_err());
        let open = TargetPolicy {
            allow_private: true,
            ..Default::default()
        };
        assert!(open.check_ip("10.0.0.1".parse().unwrap()).is_ok());
    }

    #[tokio::test]
    async fn resolver_refuses_when_any_address_is_private() {
        let mut table = std::collections::HashMap::new();
        table.insert(
            "mixed.test".to_owned(),
            vec!["8.8.8.8".parse().unwrap(), "10.0.0.1".parse().unwrap()],
        );
        table.insert("public.test".to_owned(), vec!["8.8.8.8".parse().unwrap()]);
        table.insert(
            "meta.test".to_owned(),
            vec!["169.254.169.254".parse().unwrap()],
        );
        let r = GuardedResolver::new(Arc::new(strict()), Arc::new(StaticLookup(table)));
        assert!(matches!(
            r.resolve_checked("mixed.test").await,
            Err(ResolveFailure::Blocked { .. })
        ));
        assert!(matches!(
            r.resolve_checked("meta.test").await,
            Err(ResolveFailure::Blocked { .. })
        ));
        assert!(matches!(
            r.resolve_checked("nope.test").await,
            Err(ResolveFailure::Dns { .. })
        ));
        assert_eq!(r.resolve_checked("public.test").await.unwrap().len(), 1);
        let sys = GuardedResolver::new(Arc::new(strict()), Arc::new(SystemLookup));
        assert!(matches!(
            sys.resolve_checked("localhost").await,
            Err(ResolveFailure::Blocked { .. })
        ));
    }
}
