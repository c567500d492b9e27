//! The target policy: which subscriber URLs the relay may call. One policy, used by the webhooks
//! API when a subscription is created or updated (`422` naming the [`Reason`]) and by the delivery
//! worker before every request and in its DNS resolver (`ssrf_blocked`), so a target the API
//! accepts is one the worker will call. The contract is in docs/delivery-worker.md ("Targets").
//!
//! * Scheme: `https` only, unless `ALLOW_HTTP_TARGETS`. No `user:password@` in the URL.
//! * Host: `localhost`/`*.localhost` is loopback by definition (RFC 6761), so it is checked as
//!   `127.0.0.1`/`::1`. A literal IP host must be public ([`RULES`]); the `url` crate has already
//!   normalised decimal/hex/octal IPv4 spellings (`http://2130706433/`, `http://0x7f.1/`) to
//!   `127.0.0.1`. Other names are the worker resolver's job (DNS can change after creation).
//! * IPv4-in-IPv6 transition addresses (mapped, SIIT, compatible, NAT64, 6to4, Teredo) are refused
//!   whatever they embed: a gateway on the path could turn them into the embedded IPv4 address.
//! * `TARGET_ALLOW_CIDRS` (operator allow-list) wins over the address rules; an IPv6 address matches
//!   it by its canonical form and by the IPv4 address it embeds. `ALLOW_PRIVATE_TARGETS` (local use
//!   only) switches the address rules off — except for the cloud metadata and credential endpoints
//!   ([`Reason::CloudMetadata`], in every IPv6 encoding), which only an allow-list entry naming the address
//!   exactly (`169.254.169.254/32`) opens: a permissive demo set-up must not hand out the instance's
//!   credentials, and a wide block such as `169.254.0.0/16` must not open them by accident.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use url::{Host, Url};

use crate::delivery::ErrorClass;

/// `true` accepts `http://` targets (local testing only).
pub const ENV_ALLOW_HTTP: &str = "ALLOW_HTTP_TARGETS";
/// `true` switches the address rules off (the local stack's demo receiver; never deployed).
pub const ENV_ALLOW_PRIVATE: &str = "ALLOW_PRIVATE_TARGETS";
/// Comma-separated CIDR blocks or addresses allowed even when they are not public.
pub const ENV_ALLOW_CIDRS: &str = "TARGET_ALLOW_CIDRS";

/// Which targets may be called. `Default` is the strict policy of a deployment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetPolicy {
    /// `ALLOW_HTTP_TARGETS`.
    pub allow_http: bool,
    /// `ALLOW_PRIVATE_TARGETS`: disables the address rules entirely (logged loudly by the worker).
    pub allow_private: bool,
    /// `TARGET_ALLOW_CIDRS`: addresses in these blocks are allowed even when they are not public.
    pub allow_cidrs: Vec<IpNet>,
}

/// The class of a refusal: what the API's `422` names and what the worker's reason starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, strum::IntoStaticStr, strum::Display)]
#[strum(serialize_all = "kebab-case")]
pub enum Reason {
    InvalidUrl,
    Scheme,
    Credentials,
    Localhost,
    CloudMetadata,
    Unspecified,
    Loopback,
    Private,
    SharedAddressSpace,
    LinkLocal,
    ProtocolAssignments,
    Documentation,
    #[strum(serialize = "6to4-relay-anycast")]
    RelayAnycast,
    Benchmarking,
    Multicast,
    Broadcast,
    Reserved,
    UniqueLocal,
    SiteLocal,
    DiscardOnly,
    Orchid,
    NotGlobalUnicast,
    Ipv4Mapped,
    Siit,
    Ipv4Compatible,
    Nat64,
    LocalUseNat64,
    #[strum(serialize = "6to4")]
    SixToFour,
    Teredo,
}

impl Reason {
    /// The class name a refusal shows (kebab-case of the variant, spelled once by strum).
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The worker's attempt-log class: a URL that cannot be used as one is `invalid_url`, every
    /// policy refusal `ssrf_blocked`. Both are permanent.
    pub const fn error_class(self) -> ErrorClass {
        match self {
            Self::InvalidUrl | Self::Credentials => ErrorClass::InvalidUrl,
            _ => ErrorClass::SsrfBlocked,
        }
    }
}

/// Why a target was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Refusal {
    pub reason: Reason,
    /// A sentence naming the address and the range, e.g. `127.0.0.1 is loopback (127.0.0.0/8)`.
    pub message: String,
}

impl Refusal {
    fn new(reason: Reason, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
        }
    }

    /// What a tenant is shown when a delivery is refused (the attempt log, the dead-letter reason):
    /// the reason class, never the address — at delivery time it may be one a name resolved to,
    /// which tells the tenant about the relay's network. The full [`Refusal::message`] goes to the
    /// server log. The shape refusals (URL, scheme, credentials) name no address and stay as they are.
    pub fn tenant_message(&self) -> String {
        match self.reason {
            Reason::InvalidUrl | Reason::Scheme | Reason::Credentials => self.message.clone(),
            reason => format!("target refused ({reason})"),
        }
    }
}

/// Where an IPv4-in-IPv6 transition address carries its IPv4 address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Embedding {
    /// The low 32 bits (mapped, SIIT, compatible, NAT64).
    Low32,
    /// Bits 16..48 (6to4, RFC 3056).
    SixToFour,
    /// The low 32 bits inverted (the Teredo client address, RFC 4380).
    TeredoClient,
}

/// One non-public range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub net: IpNet,
    pub reason: Reason,
    /// The range's name in messages.
    pub label: &'static str,
    /// Set for the transition ranges, which are refused whatever they embed.
    pub embeds: Option<Embedding>,
}

const fn v4(a: u8, b: u8, c: u8, d: u8, len: u8) -> IpNet {
    IpNet::V4(Ipv4Net::new_assert(Ipv4Addr::new(a, b, c, d), len))
}

const fn v6(s: [u16; 8], len: u8) -> IpNet {
    IpNet::V6(Ipv6Net::new_assert(
        Ipv6Addr::new(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]),
        len,
    ))
}

const fn rule(net: IpNet, reason: Reason, label: &'static str) -> Rule {
    Rule {
        net,
        reason,
        label,
        embeds: None,
    }
}

const fn embedding(net: IpNet, reason: Reason, label: &'static str, how: Embedding) -> Rule {
    Rule {
        net,
        reason,
        label,
        embeds: Some(how),
    }
}

/// Every address that is not a public internet address, first match wins (so the more specific
/// ranges come before the blocks that contain them, e.g. `::1` before `::/96` before `::/3`).
#[rustfmt::skip]
pub const RULES: &[Rule] = &[
    // Cloud metadata and credential endpoints, refused whatever ALLOW_PRIVATE_TARGETS says (so
    // before the ranges holding them): the EC2/GCP/Azure/OCI instance metadata service, the ECS
    // task credentials endpoint, EKS Pod Identity, Alibaba Cloud's metadata service.
    rule(v4(169, 254, 169, 254, 32), Reason::CloudMetadata, METADATA_LABEL),
    rule(v4(169, 254, 170, 2, 32), Reason::CloudMetadata, METADATA_LABEL),
    rule(v4(169, 254, 170, 23, 32), Reason::CloudMetadata, METADATA_LABEL),
    rule(v4(100, 100, 100, 200, 32), Reason::CloudMetadata, METADATA_LABEL),
    rule(v6([0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254], 128), Reason::CloudMetadata, METADATA_LABEL),
    rule(v6([0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x23], 128), Reason::CloudMetadata, METADATA_LABEL),
    // IPv4 (RFC 6890 special-purpose registry).
    rule(v4(255, 255, 255, 255, 32), Reason::Broadcast, "the broadcast address"),
    rule(v4(0, 0, 0, 0, 8), Reason::Unspecified, "unspecified / this network"),
    rule(v4(10, 0, 0, 0, 8), Reason::Private, "private"),
    rule(v4(100, 64, 0, 0, 10), Reason::SharedAddressSpace, "shared address space / CGNAT"),
    rule(v4(127, 0, 0, 0, 8), Reason::Loopback, "loopback"),
    rule(v4(169, 254, 0, 0, 16), Reason::LinkLocal, "link-local"),
    rule(v4(172, 16, 0, 0, 12), Reason::Private, "private"),
    rule(v4(192, 0, 0, 0, 24), Reason::ProtocolAssignments, "IETF protocol assignments"),
    rule(v4(192, 0, 2, 0, 24), Reason::Documentation, "documentation"),
    rule(v4(192, 88, 99, 0, 24), Reason::RelayAnycast, "6to4 relay anycast"),
    rule(v4(192, 168, 0, 0, 16), Reason::Private, "private"),
    rule(v4(198, 18, 0, 0, 15), Reason::Benchmarking, "benchmarking"),
    rule(v4(198, 51, 100, 0, 24), Reason::Documentation, "documentation"),
    rule(v4(203, 0, 113, 0, 24), Reason::Documentation, "documentation"),
    rule(v4(224, 0, 0, 0, 4), Reason::Multicast, "multicast"),
    rule(v4(240, 0, 0, 0, 4), Reason::Reserved, "reserved"),
    // IPv6.
    rule(v6([0; 8], 128), Reason::Unspecified, "unspecified"),
    rule(v6([0, 0, 0, 0, 0, 0, 0, 1], 128), Reason::Loopback, "loopback"),
    embedding(v6([0, 0, 0, 0, 0, 0xffff, 0, 0], 96), Reason::Ipv4Mapped, "IPv4-mapped", Embedding::Low32),
    embedding(v6([0, 0, 0, 0, 0xffff, 0, 0, 0], 96), Reason::Siit, "SIIT IPv4-translated", Embedding::Low32),
    embedding(v6([0; 8], 96), Reason::Ipv4Compatible, "IPv4-compatible", Embedding::Low32),
    embedding(v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96), Reason::Nat64, "NAT64", Embedding::Low32),
    embedding(v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48), Reason::LocalUseNat64, "local-use NAT64", Embedding::Low32),
    rule(v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64), Reason::DiscardOnly, "discard-only"),
    rule(v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32), Reason::Documentation, "documentation"),
    rule(v6([0x2001, 2, 0, 0, 0, 0, 0, 0], 48), Reason::Benchmarking, "benchmarking"),
    embedding(v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 32), Reason::Teredo, "Teredo", Embedding::TeredoClient),
    rule(v6([0x2001, 0x10, 0, 0, 0, 0, 0, 0], 28), Reason::Orchid, "ORCHID"),
    rule(v6([0x2001, 0x20, 0, 0, 0, 0, 0, 0], 28), Reason::Orchid, "ORCHIDv2"),
    embedding(v6([0x2002, 0, 0, 0, 0, 0, 0, 0], 16), Reason::SixToFour, "6to4", Embedding::SixToFour),
    rule(v6([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20), Reason::Documentation, "documentation"),
    rule(v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7), Reason::UniqueLocal, "unique-local"),
    rule(v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10), Reason::LinkLocal, "link-local"),
    rule(v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10), Reason::SiteLocal, "site-local"),
    rule(v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8), Reason::Multicast, "multicast"),
    // Everything outside global unicast 2000::/3 that no rule above named.
    rule(v6([0; 8], 3), Reason::NotGlobalUnicast, "not global unicast (outside 2000::/3)"),
    rule(v6([0x4000, 0, 0, 0, 0, 0, 0, 0], 2), Reason::NotGlobalUnicast, "not global unicast (outside 2000::/3)"),
    rule(v6([0x8000, 0, 0, 0, 0, 0, 0, 0], 1), Reason::NotGlobalUnicast, "not global unicast (outside 2000::/3)"),
];

const METADATA_LABEL: &str = "a cloud metadata / credentials endpoint";

/// Is this a cloud metadata endpoint, in any encoding (an IPv6 transition address embedding one
/// counts: a NAT64 or 6to4 gateway would deliver to it)?
pub fn is_cloud_metadata(ip: IpAddr) -> bool {
    let direct = |ip: IpAddr| rule_for(ip).is_some_and(|r| r.reason == Reason::CloudMetadata);
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            direct(IpAddr::V6(v6)) || embedded_ipv4(v6).is_some_and(|i| direct(IpAddr::V4(i)))
        }
        v4 => direct(v4),
    }
}

/// The rule an address falls under, if it is not a public address.
pub fn rule_for(ip: IpAddr) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.net.contains(&ip))
}

/// The IPv4 address an IPv6 transition address carries (mapped, SIIT, compatible, NAT64, 6to4,
/// Teredo client).
pub fn embedded_ipv4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let bits = u128::from(ip);
    match rule_for(IpAddr::V6(ip))?.embeds? {
        Embedding::Low32 => Some(Ipv4Addr::from(bits as u32)),
        Embedding::SixToFour => Some(Ipv4Addr::from((bits >> 80) as u32)),
        Embedding::TeredoClient => Some(Ipv4Addr::from(!(bits as u32))),
    }
}

/// Why an address is not a public internet address, if it is not (the address rules alone,
/// without the allow-list or the permissive switch).
pub fn forbidden(ip: IpAddr) -> Option<Refusal> {
    let rule = rule_for(ip)?;
    let mut message = format!("{ip} is {} ({})", rule.label, rule.net);
    if let IpAddr::V6(v6) = ip {
        if let Some(inner) = embedded_ipv4(v6) {
            let verdict = rule_for(IpAddr::V4(inner)).map_or("public", |r| r.reason.as_str());
            message.push_str(&format!(
                ", embedding {inner} ({verdict}); IPv4-in-IPv6 transition addresses are refused unless TARGET_ALLOW_CIDRS lists them, and then only for a public embedded address"
            ));
        }
    }
    Some(Refusal::new(rule.reason, message))
}

/// `10.0.0.0/8, 192.168.1.7` (a bare address is a /32 or /128). A block with host bits set
/// (`10.20.0.1/1`) is refused rather than widened: it is almost always a typo, and widening it
/// would allow-list far more than meant.
pub fn parse_cidrs(v: &str) -> Result<Vec<IpNet>, String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            let net = s
                .parse::<IpNet>()
                .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| format!("`{s}` is not a CIDR block or an IP address"))?;
            if net != net.trunc() {
                return Err(format!(
                    "`{s}` has host bits set (the block is `{}`)",
                    net.trunc()
                ));
            }
            Ok(net)
        })
        .collect()
}

impl TargetPolicy {
    /// Is the address in `TARGET_ALLOW_CIDRS`? An IPv4-in-IPv6 transition address stands for the
    /// IPv4 address it embeds (a NAT64 or 6to4 gateway would turn it into that address), so it is
    /// allowed when that IPv4 address is listed, or when the transition address itself is listed
    /// (e.g. `64:ff9b::/96` on an IPv6-only network with DNS64) and what it embeds is public:
    /// listing a transition prefix never opens the private addresses behind it.
    ///
    /// A cloud metadata endpoint is listed only by an entry naming exactly it (`169.254.169.254/32`).
    pub fn is_allow_listed(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        let listed = |ip: IpAddr| {
            let exact_only = is_cloud_metadata(ip);
            self.allow_cidrs.iter().any(|net| {
                if exact_only {
                    net.prefix_len() == net.max_prefix_len() && net.addr() == ip
                } else {
                    net.contains(&ip)
                }
            })
        };
        match ip {
            IpAddr::V6(v6) => match embedded_ipv4(v6).map(IpAddr::V4) {
                Some(inner) => listed(inner) || (listed(ip) && forbidden(inner).is_none()),
                None => listed(ip),
            },
            IpAddr::V4(_) => listed(ip),
        }
    }

    /// `Ok` if the address may be called under this policy, else why not.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), Refusal> {
        if self.is_allow_listed(ip) {
            return Ok(());
        }
        if is_cloud_metadata(ip) {
            let what = match ip {
                IpAddr::V6(v6) => match (rule_for(ip), embedded_ipv4(v6)) {
                    (Some(r), Some(inner)) => {
                        format!("{}, embedding {inner}, {METADATA_LABEL}", r.label)
                    }
                    _ => METADATA_LABEL.to_owned(),
                },
                IpAddr::V4(_) => METADATA_LABEL.to_owned(),
            };
            let message = format!(
                "{ip} is {what}; refused whatever ALLOW_PRIVATE_TARGETS says, unless TARGET_ALLOW_CIDRS lists the address itself"
            );
            return Err(Refusal::new(Reason::CloudMetadata, message));
        }
        if self.allow_private {
            return Ok(());
        }
        forbidden(ip).map_or(Ok(()), Err)
    }

    pub fn is_allowed(&self, ip: IpAddr) -> bool {
        self.check_ip(ip).is_ok()
    }

    /// Parses the URL and checks everything that can be checked without DNS: scheme, credentials,
    /// `localhost` names and a literal IP host. Other names are checked when they are resolved.
    pub fn check_url(&self, raw: &str) -> Result<Url, Refusal> {
        let url = Url::parse(raw)
            .map_err(|e| Refusal::new(Reason::InvalidUrl, format!("not an absolute URL ({e})")))?;
        match url.scheme() {
            "https" => {}
            "http" if self.allow_http => {}
            "http" => {
                return Err(Refusal::new(
                    Reason::Scheme,
                    "plain http targets are not allowed (https only)",
                ))
            }
            other => {
                return Err(Refusal::new(
                    Reason::Scheme,
                    format!("scheme `{other}` is not allowed (https only)"),
                ))
            }
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Refusal::new(
                Reason::Credentials,
                "credentials (user:password@) are not allowed in a target URL",
            ));
        }
        match url.host() {
            None => return Err(Refusal::new(Reason::InvalidUrl, "the URL has no host")),
            Some(Host::Ipv4(v4)) => self.check_ip(IpAddr::V4(v4))?,
            Some(Host::Ipv6(v6)) => self.check_ip(IpAddr::V6(v6))?,
            Some(Host::Domain(d)) => {
                let name = d.trim_end_matches('.').to_ascii_lowercase();
                if name.is_empty() {
                    return Err(Refusal::new(
                        Reason::InvalidUrl,
                        "the URL has an empty host",
                    ));
                }
                let loopback = [
                    IpAddr::V4(Ipv4Addr::LOCALHOST),
                    IpAddr::V6(Ipv6Addr::LOCALHOST),
                ];
                // Both loopback addresses must be allowed: the worker refuses a name when any
                // address it resolves to is refused, and `localhost` resolves to both.
                if (name == "localhost" || name.ends_with(".localhost"))
                    && !loopback.iter().all(|ip| self.is_allowed(*ip))
                {
                    return Err(Refusal::new(
                        Reason::Localhost,
                        format!("`{d}` is localhost (loopback)"),
                    ));
                }
            }
        }
        Ok(url)
    }
}

/// A target URL as it may be shown to someone other than its webhook's owner (another service,
/// such as the owner's chat hook receiving operational events): its origin only,
/// `scheme://host[:port]` (the port when not the scheme's default). Receivers keep their tokens
/// in the userinfo, the query (`?token=…`) and, as chat and automation hooks do
/// (`/services/T…/B…/<token>`, `/hooks/catch/<id>/<token>`), in the path: none of it is shown.
/// `None` when it does not parse or has no host (then nothing of it is shown).
pub fn shareable_url(raw: &str) -> Option<String> {
    let url = Url::parse(raw).ok()?;
    url.host_str()?;
    match url.origin() {
        origin @ url::Origin::Tuple(..) => Some(origin.ascii_serialization()),
        url::Origin::Opaque(_) => None,
    }
}

/// One parsed `TARGET_ALLOW_CIDRS` value (an alias, so clap takes it as one value, not a list).
pub type AllowCidrs = Vec<IpNet>;

/// The target settings as clap arguments: read by the API and the worker alike (flattened once into
/// the local stack's flags); `policy()` is the [`TargetPolicy`] both enforce.
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
pub struct TargetArgs {
    /// Accept `http://` target URLs (local testing only).
    #[arg(long, env = ENV_ALLOW_HTTP)]
    pub allow_http_targets: bool,
    /// Switch the address rules off: loopback/private targets (local receivers; never deployed).
    #[arg(long, env = ENV_ALLOW_PRIVATE)]
    pub allow_private_targets: bool,
    /// Comma-separated CIDR blocks or addresses allowed even when they are not public.
    #[arg(long, env = ENV_ALLOW_CIDRS, value_parser = parse_cidrs)]
    pub target_allow_cidrs: Option<AllowCidrs>,
}

impl TargetArgs {
    pub fn policy(&self) -> TargetPolicy {
        TargetPolicy {
            allow_http: self.allow_http_targets,
            allow_private: self.allow_private_targets,
            allow_cidrs: self.target_allow_cidrs.clone().unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests;
