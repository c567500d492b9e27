use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn strict() -> TargetPolicy {
    TargetPolicy::default()
}

/// One address in every range of [`RULES`], with the reason it is refused for.
const REFUSED: &[(&str, Reason)] = &[
    ("255.255.255.255", Reason::Broadcast),
    ("0.1.2.3", Reason::Unspecified),
    ("10.1.2.3", Reason::Private),
    ("100.127.255.255", Reason::SharedAddressSpace),
    ("127.255.255.254", Reason::Loopback),
    ("169.254.169.254", Reason::CloudMetadata),
    ("169.254.170.2", Reason::CloudMetadata),
    ("169.254.170.23", Reason::CloudMetadata),
    ("100.100.100.200", Reason::CloudMetadata),
    ("169.254.1.1", Reason::LinkLocal),
    ("172.31.255.255", Reason::Private),
    ("192.0.0.8", Reason::ProtocolAssignments),
    ("192.0.2.1", Reason::Documentation),
    ("192.88.99.1", Reason::RelayAnycast),
    ("192.168.1.1", Reason::Private),
    ("198.19.255.255", Reason::Benchmarking),
    ("198.51.100.7", Reason::Documentation),
    ("203.0.113.9", Reason::Documentation),
    ("239.255.255.250", Reason::Multicast),
    ("240.0.0.1", Reason::Reserved),
    ("::", Reason::Unspecified),
    ("::1", Reason::Loopback),
    ("::ffff:8.8.8.8", Reason::Ipv4Mapped),
    ("::ffff:0:7f00:1", Reason::Siit),
    ("::127.0.0.1", Reason::Ipv4Compatible),
    ("64:ff9b::808:808", Reason::Nat64),
    ("64:ff9b:1::7f00:1", Reason::LocalUseNat64),
    ("100::1", Reason::DiscardOnly),
    ("2001:db8::1", Reason::Documentation),
    ("2001:2::1", Reason::Benchmarking),
    ("2001:0:4136:e378:8000:63bf:80ff:fffe", Reason::Teredo),
    ("2001:10::1", Reason::Orchid),
    ("2001:20::1", Reason::Orchid),
    ("2002:7f00:1::", Reason::SixToFour),
    ("3fff::1", Reason::Documentation),
    ("fd12:3456::1", Reason::UniqueLocal),
    ("fd00:ec2::254", Reason::CloudMetadata), // the EC2 instance metadata service over IPv6
    ("fd00:ec2::23", Reason::CloudMetadata),
    ("fe80::1", Reason::LinkLocal),
    ("fec0::1", Reason::SiteLocal),
    ("ff02::1", Reason::Multicast),
    ("1000::1", Reason::NotGlobalUnicast),
    ("4000::1", Reason::NotGlobalUnicast),
    ("8000::1", Reason::NotGlobalUnicast),
    // Bottom edges and well-known members of the ranges above.
    ("0.0.0.0", Reason::Unspecified),
    ("100.64.0.1", Reason::SharedAddressSpace),
    ("172.16.0.1", Reason::Private),
    ("198.18.0.1", Reason::Benchmarking),
    ("224.0.0.1", Reason::Multicast),
    ("fc00::1", Reason::UniqueLocal),
    ("64:ff9b::7f00:1", Reason::Nat64),
    ("::ffff:10.0.0.1", Reason::Ipv4Mapped),
];

#[test]
fn every_range_refuses_its_sample_for_its_reason() {
    for (s, reason) in REFUSED {
        let refusal = strict().check_ip(ip(s)).unwrap_err();
        assert_eq!(refusal.reason, *reason, "{s}: {refusal}");
        assert!(
            refusal.message.starts_with(&format!("{} is ", ip(s))),
            "{refusal}"
        );
    }
    // Each rule has its sample (so a new range cannot be added untested).
    for rule in RULES {
        assert!(
            REFUSED.iter().any(|(s, _)| rule_for(ip(s)) == Some(rule)),
            "no sample for {} ({})",
            rule.net,
            rule.label
        );
    }
}

#[test]
fn public_addresses_are_allowed() {
    for s in [
        "8.8.8.8",
        "1.1.1.1",
        "93.184.216.34",
        "100.128.0.1",
        "172.32.0.1",
        "198.20.0.1",
        "2606:4700:4700::1111",
        "2a00:1450:4001::200e",
        "2001:4860:4860::8888",
    ] {
        assert_eq!(forbidden(ip(s)), None, "{s}");
        assert!(strict().is_allowed(ip(s)), "{s}");
    }
}

#[test]
fn transition_addresses_name_what_they_embed() {
    for (s, inner) in [
        ("::ffff:127.0.0.1", "127.0.0.1"),
        ("::ffff:0:a00:1", "10.0.0.1"),
        ("::127.0.0.1", "127.0.0.1"),
        ("64:ff9b::a9fe:a9fe", "169.254.169.254"),
        ("64:ff9b:1::7f00:1", "127.0.0.1"),
        ("2002:a9fe:a9fe::1", "169.254.169.254"),
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", "127.0.0.1"),
    ] {
        let IpAddr::V6(v6) = ip(s) else { panic!() };
        assert_eq!(embedded_ipv4(v6), Some(inner.parse().unwrap()), "{s}");
        let r = forbidden(ip(s)).unwrap().message;
        assert!(r.contains(inner) && r.contains("refused unless"), "{r}");
    }
    let r = forbidden(ip("2001:0:4136:e378:8000:63bf:80ff:fffe"))
        .unwrap()
        .message;
    assert!(r.contains("Teredo") && r.contains("(loopback)"), "{r}");
    // Not transition addresses: nothing embedded (`::` and `::1` are not IPv4-compatible).
    for s in ["::", "::1", "2606:4700::1111", "fe80::1"] {
        let IpAddr::V6(v6) = ip(s) else { panic!() };
        assert_eq!(embedded_ipv4(v6), None, "{s}");
    }
}

#[test]
fn url_forms_of_internal_hosts_are_normalised_and_refused() {
    let p = TargetPolicy {
        allow_http: true,
        ..Default::default()
    };
    for (raw, reason) in [
        ("http://2130706433/", Reason::Loopback),
        ("http://0x7f.1/", Reason::Loopback),
        ("http://0x7f000001/", Reason::Loopback),
        ("http://0177.0.0.1/", Reason::Loopback),
        ("http://017700000001/", Reason::Loopback),
        ("http://127.1/", Reason::Loopback),
        ("http://127.0.0.1./", Reason::Loopback),
        ("http://[::ffff:127.0.0.1]/", Reason::Ipv4Mapped),
        ("http://[::ffff:7f00:1]/", Reason::Ipv4Mapped),
        ("http://[::1]:8080/x", Reason::Loopback),
        (
            "http://169.254.169.254/latest/meta-data/",
            Reason::CloudMetadata,
        ),
        ("http://0251.0376.0251.0376/", Reason::CloudMetadata),
        ("http://0251.0376.1.1/", Reason::LinkLocal),
        ("http://0/", Reason::Unspecified),
        ("http://localhost/", Reason::Localhost),
        ("http://LOCALHOST./", Reason::Localhost),
        ("http://api.localhost/", Reason::Localhost),
        ("https://[2002:7f00:1::]/", Reason::SixToFour),
    ] {
        let e = p.check_url(raw).unwrap_err();
        assert_eq!(e.reason, reason, "{raw}: {e}");
        assert_eq!(e.reason.error_class(), ErrorClass::SsrfBlocked, "{raw}");
    }
}

#[test]
fn url_shape_rules() {
    let p = strict();
    for (raw, reason, class) in [
        (
            "http://example.com/",
            Reason::Scheme,
            ErrorClass::SsrfBlocked,
        ),
        (
            "ftp://example.com/",
            Reason::Scheme,
            ErrorClass::SsrfBlocked,
        ),
        (
            "file:///etc/passwd",
            Reason::Scheme,
            ErrorClass::SsrfBlocked,
        ),
        ("not a url", Reason::InvalidUrl, ErrorClass::InvalidUrl),
        ("/relative", Reason::InvalidUrl, ErrorClass::InvalidUrl),
        (
            "https://user:pw@example.com/",
            Reason::Credentials,
            ErrorClass::InvalidUrl,
        ),
        (
            "https://user@example.com/",
            Reason::Credentials,
            ErrorClass::InvalidUrl,
        ),
    ] {
        let e = p.check_url(raw).unwrap_err();
        assert_eq!(
            (e.reason, e.reason.error_class()),
            (reason, class),
            "{raw}: {e}"
        );
    }
    assert!(p.check_url("https://example.com/hook").is_ok());
    assert!(p.check_url("https://8.8.8.8/hook").is_ok());
    assert!(p.check_url("https://[2606:4700::1111]/").is_ok());
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
        allow_cidrs: ["127.0.0.1/32", "::1/128", "fd00::/8"]
            .map(|s| s.parse().unwrap())
            .to_vec(),
        ..Default::default()
    };
    assert!(p.check_url("http://127.0.0.1:9/").is_ok());
    assert!(p.check_url("http://[::ffff:127.0.0.1]:9/").is_ok());
    assert!(
        p.check_url("http://[2002:7f00:1::]:9/").is_ok(),
        "by what it embeds"
    );
    assert!(p.check_url("http://[fd00::7]/").is_ok());
    assert!(
        p.check_url("http://localhost:9/").is_ok(),
        "localhost is loopback"
    );
    assert!(p.check_url("http://127.0.0.2/").is_err());
    // localhost resolves to both loopback addresses: allowing one of them is not enough.
    let v4_only = TargetPolicy {
        allow_cidrs: vec!["127.0.0.1/32".parse().unwrap()],
        ..p.clone()
    };
    assert_eq!(
        v4_only.check_url("http://localhost:9/").unwrap_err().reason,
        Reason::Localhost
    );
    // Listing a transition prefix (DNS64 on an IPv6-only network) admits what it embeds only when
    // that is public: the metadata service and private addresses behind it stay refused.
    let dns64 = TargetPolicy {
        allow_cidrs: vec!["64:ff9b::/96".parse().unwrap(), "2000::/3".parse().unwrap()],
        ..Default::default()
    };
    assert!(dns64.check_ip(ip("64:ff9b::808:808")).is_ok());
    for s in [
        "64:ff9b::a00:5",
        "64:ff9b::a9fe:a9fe",
        "64:ff9b::7f00:1",
        "2002:7f00:1::",
        "2001:0:4136:e378:8000:63bf:80ff:fffe",
    ] {
        assert!(
            dns64.check_ip(ip(s)).is_err(),
            "{s} embeds a non-public address"
        );
    }
    assert!(p.check_url("http://10.0.0.1/").is_err());
    assert!(p.check_url("http://[fe80::1]/").is_err());
    let open = TargetPolicy {
        allow_http: true,
        allow_private: true,
        ..Default::default()
    };
    assert!(open.check_ip(ip("10.0.0.1")).is_ok());
    assert!(open.check_url("http://localhost:3001/hook").is_ok());
    assert!(open.check_url("http://127.0.0.1:3001/hook").is_ok());
    // The switch is about addresses, not about the URL's shape.
    assert!(open.check_url("http://user:pw@127.0.0.1/").is_err());
    assert!(strict().check_url("http://127.0.0.1/").is_err());
}

#[test]
fn target_args_read_the_three_settings() {
    let policy = |pairs: &[(&str, &str)]| {
        crate::config::from_env_pairs::<TargetArgs>(pairs).map(|a| a.policy())
    };
    assert_eq!(policy(&[]).unwrap(), TargetPolicy::default());
    let p = policy(&[
        (ENV_ALLOW_CIDRS, "10.0.0.0/8, 127.0.0.1 ,fd00::/8"),
        (ENV_ALLOW_HTTP, "true"),
        (ENV_ALLOW_PRIVATE, "1"),
    ])
    .unwrap();
    assert!(p.allow_http && p.allow_private);
    assert_eq!(
        p.allow_cidrs,
        ["10.0.0.0/8", "127.0.0.1/32", "fd00::/8"].map(|s| s.parse::<IpNet>().unwrap())
    );
    for (k, v) in [
        (ENV_ALLOW_CIDRS, "10.0.0.0/33"),
        (ENV_ALLOW_CIDRS, "10.20.0.1/1"),
        (ENV_ALLOW_CIDRS, "example.com"),
        (ENV_ALLOW_HTTP, "maybe"),
        (ENV_ALLOW_PRIVATE, "2"),
    ] {
        let e = policy(&[(k, v)]).unwrap_err();
        assert!(e.to_string().contains(k), "{e}");
    }
}

#[test]
fn reason_names_are_the_kebab_case_classes_the_api_shows() {
    for (reason, name) in [
        (Reason::InvalidUrl, "invalid-url"),
        (Reason::SharedAddressSpace, "shared-address-space"),
        (Reason::RelayAnycast, "6to4-relay-anycast"),
        (Reason::SixToFour, "6to4"),
        (Reason::Ipv4Mapped, "ipv4-mapped"),
        (Reason::LocalUseNat64, "local-use-nat64"),
        (Reason::NotGlobalUnicast, "not-global-unicast"),
    ] {
        assert_eq!(reason.as_str(), name);
        assert_eq!(reason.to_string(), name);
    }
}

/// Every spelling of a metadata endpoint a tenant could put in a URL (or DNS could answer with):
/// IPv4 forms the `url` crate normalises, and the IPv6 transition encodings of the IPv4 ones.
const METADATA_URLS: &[&str] = &[
    "http://169.254.169.254/latest/meta-data",
    "http://2852039166/",
    "http://0xa9fea9fe/",
    "http://0xa9.0xfe.0xa9.0xfe/",
    "http://0251.0376.0251.0376/",
    "http://169.254.43518/",
    "http://169.254.169.254./",
    "https://[::ffff:169.254.169.254]/",
    "https://[::ffff:a9fe:a9fe]/",
    "https://[0:0:0:0:0:ffff:169.254.169.254]/",
    "https://[::ffff:0:a9fe:a9fe]/",
    "https://[::169.254.169.254]/",
    "https://[64:ff9b::a9fe:a9fe]/",
    "https://[64:ff9b:1::a9fe:a9fe]/",
    "https://[2002:a9fe:a9fe::1]/",
    "https://[2001:0:4136:e378:8000:63bf:5601:5601]/",
    "https://[fd00:ec2::254]/latest/meta-data",
    "https://[fd00:0ec2:0000::0254]/",
    "http://169.254.170.2/v2/credentials",
    "http://100.100.100.200/latest/meta-data",
];

fn host_ip(u: &Url) -> IpAddr {
    match u.host().unwrap() {
        Host::Ipv4(v4) => IpAddr::V4(v4),
        Host::Ipv6(v6) => IpAddr::V6(v6),
        Host::Domain(d) => panic!("{d} is not an address"),
    }
}

#[test]
fn cloud_metadata_is_refused_in_every_encoding_whatever_allow_private_says() {
    let open = TargetPolicy {
        allow_http: true,
        allow_private: true,
        ..Default::default()
    };
    let strict_http = TargetPolicy {
        allow_http: true,
        ..Default::default()
    };
    // A wide allow-list entry does not open them either: only the exact address does.
    let wide = TargetPolicy {
        allow_http: true,
        allow_private: true,
        allow_cidrs: parse_cidrs(
            "169.254.0.0/16, 100.64.0.0/10, fd00::/8, 64:ff9b::/96, 2002::/16, 0.0.0.0/0, ::/0",
        )
        .unwrap(),
    };
    for raw in METADATA_URLS {
        for p in [&open, &strict_http, &wide] {
            let r = p.check_url(raw).unwrap_err();
            assert_eq!(r.reason, Reason::CloudMetadata, "{raw}: {r}");
            assert!(r.message.contains("ALLOW_PRIVATE_TARGETS"), "{r}");
        }
        // The worker checks resolved addresses with check_ip: the same verdict there.
        let at = host_ip(&Url::parse(raw).unwrap());
        assert!(is_cloud_metadata(at), "{raw}");
        assert_eq!(open.check_ip(at).unwrap_err().reason, Reason::CloudMetadata);
    }
    // Their neighbours are ordinary link-local / unique-local / CGNAT addresses: permissive opens them.
    for s in [
        "169.254.169.253",
        "169.254.170.3",
        "fd00:ec2::253",
        "100.100.100.201",
        "::ffff:169.254.1.1",
    ] {
        assert!(!is_cloud_metadata(ip(s)), "{s}");
        assert!(open.check_ip(ip(s)).is_ok(), "{s}");
        assert!(strict().check_ip(ip(s)).is_err(), "{s}");
    }
}

#[test]
fn an_allow_list_entry_naming_a_metadata_address_opens_it() {
    let p = TargetPolicy {
        allow_http: true,
        allow_cidrs: parse_cidrs("169.254.169.254/32, fd00:ec2::254").unwrap(),
        ..Default::default()
    };
    for raw in [
        "http://169.254.169.254/latest/meta-data",
        "http://2852039166/",
        "https://[::ffff:169.254.169.254]/",
        "https://[64:ff9b::a9fe:a9fe]/",
        "https://[fd00:ec2::254]/",
    ] {
        assert!(p.check_url(raw).is_ok(), "{raw}");
    }
    // Only those: the other endpoints stay refused.
    assert_eq!(
        p.check_url("http://169.254.170.2/").unwrap_err().reason,
        Reason::CloudMetadata
    );
}

#[test]
fn a_shareable_url_keeps_scheme_host_and_port_only() {
    for (raw, shown) in [
        (
            "https://crm.example.com/hooks/webex?token=s3cr3t#frag",
            "https://crm.example.com",
        ),
        (
            "https://user:pa55@crm.example.com:8443/h?a=1&key=s3cr3t",
            "https://crm.example.com:8443",
        ),
        (
            "https://hooks.slack.com/services/T000/B000/s3cr3tTokenInThePath",
            "https://hooks.slack.com",
        ),
        ("https://crm.example.com:443/x", "https://crm.example.com"),
        ("http://127.0.0.1:9000/x/y", "http://127.0.0.1:9000"),
    ] {
        assert_eq!(shareable_url(raw).as_deref(), Some(shown), "{raw}");
    }
    assert_eq!(shareable_url("not a url?token=s3cr3t"), None);
}
