//! Cases reconstructed from the published behaviour of the field's reference implementations
//! (realclientip-go, Express `proxy-addr`, nginx realip, Envoy's XFF handling,
//! axum-client-ip), run against the public API. Where tollgate deliberately answers
//! differently, the case says so and asserts tollgate's answer.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroUsize;

use http::{HeaderMap, HeaderName, HeaderValue, Request, StatusCode};
use tollgate_client_ip::{
    ClientIp, ClientIpSource, ExtractError, IpOrigin, IpRanges, ListHeader, PeerAddr,
    ResolveClientIpLayer, parse_ip,
};
use tower::{Layer, ServiceExt, service_fn};

use common::{headers, ip, peer, src};

fn ranges(text: &str) -> IpRanges {
    text.parse().unwrap()
}

fn count(list: ListHeader, n: usize) -> ClientIpSource {
    ClientIpSource::rightmost_trusted_count(list, NonZeroUsize::new(n).unwrap())
}

/// The IP as text, or `""` when there is none (realclientip-go's convention).
fn get(source: &ClientIpSource, h: &HeaderMap, peer: Option<IpAddr>) -> String {
    source
        .extract(h, peer)
        .map(|client| client.ip().to_string())
        .unwrap_or_default()
}

// ---- realclientip-go: parsing helpers ---------------------------------------------------

#[test]
fn realclientip_parse_ip_addr() {
    let cases = [
        ("1.1.1.1", Some("1.1.1.1")),
        ("1.1.1.1:1234", Some("1.1.1.1")),
        ("  1.1.1.1  ", Some("1.1.1.1")),
        ("2001:db8:cafe::17", Some("2001:db8:cafe::17")),
        ("[2001:db8:cafe::17]", Some("2001:db8:cafe::17")),
        ("[2001:db8:cafe::17]:4711", Some("2001:db8:cafe::17")),
        // Deliberate: the zone is dropped (Go keeps `%eth0`); `x-user-ip` takes a plain IP.
        ("fe80::1%eth0", Some("fe80::1")),
        ("[fe80::1%eth0]:4711", Some("fe80::1")),
        ("fe80::1111%eth0", Some("fe80::1111")),
        ("::ffff:188.0.2.128", Some("188.0.2.128")),
        ("[::ffff:188.0.2.128]:80", Some("188.0.2.128")),
        ("[::1]:8080", Some("::1")),
        ("[1.1.1.1]:80", Some("1.1.1.1")),
        ("2607:F8B0:4004:83F::200E", Some("2607:f8b0:4004:83f::200e")),
        ("", None),
        ("garbage", None),
        ("1.1.1", None),
        ("1.1.1.1.1", None),
        ("300.1.1.1", None),
        ("1.1.1.1:99999999", None),
        ("unknown", None),
        ("_hidden", None),
        ("1.1.1.1, 2.2.2.2", None),
        ("\"1.1.1.1\"", None),
        // Deliberate: unspecified addresses are never a client.
        ("0.0.0.0", None),
        ("::", None),
        ("[::]:80", None),
    ];
    for (text, want) in cases {
        assert_eq!(parse_ip(text), want.map(ip), "{text:?}");
        if let Some(got) = parse_ip(text) {
            assert_eq!(got.to_string(), want.unwrap(), "{text:?}");
        }
    }
}

// ---- realclientip-go: RemoteAddrStrategy ------------------------------------------------

#[test]
fn realclientip_remote_addr() {
    let source = ClientIpSource::remote_addr();
    let spoof = headers(&[
        ("x-real-ip", "1.1.1.1"),
        ("x-forwarded-for", "2.2.2.2, 3.3.3.3"),
        ("forwarded", "for=4.4.4.4"),
    ]);
    for (addr, want) in [
        ("1.1.1.1:1234", "1.1.1.1"),
        ("[2607:f8b0:4004:83f::18]:3838", "2607:f8b0:4004:83f::18"),
        ("[::ffff:188.0.2.128]:48483", "188.0.2.128"),
        ("[::1]:8080", "::1"),
    ] {
        let addr: SocketAddr = addr.parse().unwrap();
        assert_eq!(get(&source, &spoof, Some(addr.ip())), want, "{addr}");
    }
    assert_eq!(get(&source, &spoof, None), "");
    assert_eq!(get(&source, &spoof, peer("0.0.0.0")), "");
    assert_eq!(get(&source, &spoof, peer("::")), "");
}

// ---- realclientip-go: SingleIPHeaderStrategy ----------------------------------------------

#[test]
fn realclientip_single_ip_header() {
    // Header names are case-insensitive and canonicalised.
    for text in ["header:X-Real-IP", "header:x-real-ip", "header:X-REAL-IP"] {
        assert_eq!(src(text), src("header:x-real-ip"));
    }
    let source = src("header:X-Real-IP");
    let one = |value: &str| get(&source, &headers(&[("X-Real-IP", value)]), None);
    assert_eq!(one("1.1.1.1"), "1.1.1.1");
    assert_eq!(one("2.2.2.2:39471"), "2.2.2.2");
    assert_eq!(one("2607:f8b0:4004:83f::18"), "2607:f8b0:4004:83f::18");
    assert_eq!(
        one("[2607:f8b0:4004:83f::18]:3393"),
        "2607:f8b0:4004:83f::18"
    );
    assert_eq!(one("fe80::1111%eth0"), "fe80::1111");
    assert_eq!(one("::ffff:188.0.2.128"), "188.0.2.128");
    assert_eq!(one("garbage"), "");
    assert_eq!(one(""), "");
    assert_eq!(one("1.1.1.1, 2.2.2.2"), "");
    assert_eq!(get(&source, &HeaderMap::new(), None), "");
    // Several lines of a single-IP header make no sense; the last one is used.
    let h = headers(&[("x-real-ip", "1.1.1.1"), ("x-real-ip", "2.2.2.2")]);
    assert_eq!(get(&source, &h, None), "2.2.2.2");
    // Other single-IP headers.
    for name in [
        "cf-connecting-ip",
        "true-client-ip",
        "fastly-client-ip",
        "fly-client-ip",
        "x-client-ip",
        "x-azure-clientip",
    ] {
        let source = src(&format!("header:{name}"));
        assert_eq!(
            get(&source, &headers(&[(name, "3.3.3.3")]), None),
            "3.3.3.3"
        );
        assert_eq!(
            get(&source, &headers(&[("x-real-ip", "3.3.3.3")]), None),
            ""
        );
    }
    // A list header is refused as a single-IP header, at configuration time.
    assert!("header:X-Forwarded-For".parse::<ClientIpSource>().is_err());
    assert!("header:Forwarded".parse::<ClientIpSource>().is_err());
}

// ---- realclientip-go: LeftmostNonPrivateStrategy ----------------------------------------

#[test]
fn realclientip_leftmost_non_private() {
    let from = peer("10.0.0.1");
    let xff = ClientIpSource::leftmost_non_private(ListHeader::XForwardedFor);
    let fwd = ClientIpSource::leftmost_non_private(ListHeader::Forwarded);
    let h = headers(&[
        ("X-Real-IP", "1.1.1.1"),
        ("X-Forwarded-For", "2.2.2.2:3384, 3.3.3.3, 4.4.4.4"),
        (
            "Forwarded",
            r#"For="[2607:f8b0:4004:83f::18]:3838", For=6.6.6.6"#,
        ),
    ]);
    assert_eq!(get(&xff, &h, from), "2.2.2.2");
    assert_eq!(get(&fwd, &h, from), "2607:f8b0:4004:83f::18");
    let h = headers(&[(
        "Forwarded",
        r#"For=fe80::abcd;By=fe80::1234, Proto=https;For=::ffff:188.0.2.128, For="[2607:f8b0:4004:83f::18]:3393""#,
    )]);
    assert_eq!(get(&fwd, &h, from), "188.0.2.128");
    let h = headers(&[(
        "X-Forwarded-For",
        "10.0.0.1, 127.0.0.1, 192.168.0.3, 172.16.1.1, 169.254.0.9, fd00::1, fe80::1, ::1, 100.64.0.1",
    )]);
    assert_eq!(get(&xff, &h, from), "");
    // All lines merged.
    let h = headers(&[
        ("X-Forwarded-For", "10.0.0.1, 192.168.0.1"),
        ("X-Forwarded-For", "3.3.3.3, 4.4.4.4"),
    ]);
    assert_eq!(get(&xff, &h, from), "3.3.3.3");
    // The leftmost *valid* non-private: garbage is skipped (spoofable anyway).
    let h = headers(&[("X-Forwarded-For", "garbage, 10.0.0.3, 5.5.5.5, 6.6.6.6")]);
    assert_eq!(get(&xff, &h, from), "5.5.5.5");
    assert_eq!(get(&xff, &HeaderMap::new(), from), "");
}

// ---- realclientip-go: RightmostNonPrivateStrategy ---------------------------------------

#[test]
fn realclientip_rightmost_non_private() {
    let from = peer("192.168.1.1");
    let xff = ClientIpSource::rightmost_non_private(ListHeader::XForwardedFor);
    let fwd = ClientIpSource::rightmost_non_private(ListHeader::Forwarded);
    let h = headers(&[
        (
            "X-Forwarded-For",
            "1.1.1.1, 2.2.2.2:3384, 10.0.0.1, 192.168.1.1",
        ),
        (
            "Forwarded",
            r#"For=1.1.1.1, For="[2607:f8b0:4004:83f::18]:3393", For=fe80::abcd, For="[fd00::1]:80""#,
        ),
    ]);
    assert_eq!(get(&xff, &h, from), "2.2.2.2");
    assert_eq!(get(&fwd, &h, from), "2607:f8b0:4004:83f::18");
    let h = headers(&[("X-Forwarded-For", "10.0.0.1, 127.0.0.1, 192.168.1.3, ::1")]);
    assert_eq!(get(&xff, &h, from), "");
    let h = headers(&[("X-Forwarded-For", "::ffff:188.0.2.128, ::ffff:10.0.0.1")]);
    assert_eq!(get(&xff, &h, from), "188.0.2.128");
    // Rightmost rule: garbage right of the client stops the walk (never skipped).
    let h = headers(&[("X-Forwarded-For", "1.1.1.1, garbage, 10.0.0.1")]);
    assert_eq!(
        xff.extract(&h, from),
        Err(ExtractError::InvalidHop {
            header: HeaderName::from_static("x-forwarded-for"),
            hop: 1
        })
    );
    // tollgate also checks the peer: a public peer is the client.
    assert_eq!(get(&xff, &h, peer("9.9.9.9")), "9.9.9.9");
}

// ---- realclientip-go: RightmostTrustedCountStrategy --------------------------------------

#[test]
fn realclientip_rightmost_trusted_count() {
    let from = peer("4.4.4.4");
    let h = headers(&[
        ("X-Forwarded-For", "1.1.1.1, 2.2.2.2, 3.3.3.3"),
        ("X-Forwarded-For", "4.4.4.4, 5.5.5.5"),
        (
            "Forwarded",
            "For=1.1.1.1, For=\"[2607:f8b0:4004:83f::18]:3393\"",
        ),
        ("Forwarded", "For=3.3.3.3"),
    ]);
    let xff = |n| count(ListHeader::XForwardedFor, n);
    // count = 1: one proxy, which appended the client it saw: the rightmost entry.
    assert_eq!(get(&xff(1), &h, from), "5.5.5.5");
    assert_eq!(get(&xff(2), &h, from), "4.4.4.4");
    assert_eq!(get(&xff(3), &h, from), "3.3.3.3");
    assert_eq!(get(&xff(5), &h, from), "1.1.1.1");
    // Fewer entries than trusted proxies: an error, not the leftmost entry.
    assert_eq!(
        xff(6).extract(&h, from),
        Err(ExtractError::TooFewHops {
            header: HeaderName::from_static("x-forwarded-for"),
            needed: 6,
            found: 5
        })
    );
    let fwd = |n| count(ListHeader::Forwarded, n);
    assert_eq!(get(&fwd(1), &h, from), "3.3.3.3");
    assert_eq!(get(&fwd(2), &h, from), "2607:f8b0:4004:83f::18");
    assert_eq!(get(&fwd(3), &h, from), "1.1.1.1");
    assert_eq!(get(&fwd(4), &h, from), "");
    // Garbage at the counted position.
    let h = headers(&[("X-Forwarded-For", "1.1.1.1, garbage, 3.3.3.3")]);
    assert_eq!(get(&xff(2), &h, from), "");
    assert_eq!(get(&xff(3), &h, from), "");
    // Garbage left of the counted position is never read.
    assert_eq!(get(&xff(1), &h, from), "3.3.3.3");
    assert_eq!(get(&xff(1), &HeaderMap::new(), from), "");
    // A count of 0 is a configuration error.
    assert!(
        "rightmost-trusted-count:x-forwarded-for:0"
            .parse::<ClientIpSource>()
            .is_err()
    );
}

// ---- realclientip-go: RightmostTrustedRangeStrategy --------------------------------------

#[test]
fn realclientip_rightmost_trusted_range() {
    let trusted = ranges("4.4.4.4, 5.5.5.0/24, 2607:f8b0:4004:83f::200e, ::ffff:6.6.6.0/120");
    let xff = ClientIpSource::rightmost_trusted_range(ListHeader::XForwardedFor, trusted.clone());
    let fwd = ClientIpSource::rightmost_trusted_range(ListHeader::Forwarded, trusted);
    let from = peer("5.5.5.5");
    let h = headers(&[
        (
            "X-Forwarded-For",
            "1.1.1.1, 2.2.2.2:3384, 4.4.4.4, 5.5.5.100",
        ),
        (
            "Forwarded",
            r#"For=1.1.1.1, For="[2001:db8:cafe::17]:4711", For="[2607:f8b0:4004:83f::200e]:4747""#,
        ),
    ]);
    assert_eq!(get(&xff, &h, from), "2.2.2.2");
    assert_eq!(get(&fwd, &h, from), "2001:db8:cafe::17");
    // IPv4-mapped entries match IPv4 ranges and IPv4 entries match IPv4-mapped ranges.
    let h = headers(&[("X-Forwarded-For", "3.3.3.3, ::ffff:4.4.4.4, 6.6.6.77")]);
    assert_eq!(get(&xff, &h, from), "3.3.3.3");
    let h = headers(&[("X-Forwarded-For", "4.4.4.4, 5.5.5.4")]);
    assert_eq!(get(&xff, &h, from), "");
    assert_eq!(get(&xff, &HeaderMap::new(), from), "");
    // Garbage right of the client stops; left of it is never reached.
    let h = headers(&[("X-Forwarded-For", "1.1.1.1, garbage, 4.4.4.4")]);
    assert_eq!(get(&xff, &h, from), "");
    let h = headers(&[("X-Forwarded-For", "garbage, 1.1.1.1, 4.4.4.4")]);
    assert_eq!(get(&xff, &h, from), "1.1.1.1");
    // Multiple lines merged in order.
    let h = headers(&[
        ("X-Forwarded-For", "1.1.1.1, 2.2.2.2"),
        ("X-Forwarded-For", "3.3.3.3"),
        ("X-Forwarded-For", "4.4.4.4, 5.5.5.5"),
    ]);
    assert_eq!(get(&xff, &h, from), "3.3.3.3");
    // tollgate checks the peer too: an untrusted peer is the client (realclientip-go leaves
    // that to the caller).
    assert_eq!(get(&xff, &h, peer("7.7.7.7")), "7.7.7.7");
}

// ---- realclientip-go: Forwarded parsing -------------------------------------------------

#[test]
fn realclientip_forwarded_list_items() {
    let source = src("rightmost-trusted-range:forwarded:10.0.0.0/8");
    let from = peer("10.0.0.1");
    let one = |value: &str| get(&source, &headers(&[("forwarded", value)]), from);
    assert_eq!(
        one(r#"For="[2001:db8:cafe::17]:4711""#),
        "2001:db8:cafe::17"
    );
    assert_eq!(
        one(r#"For="[2001:db8:cafe::17%zone]:4711""#),
        "2001:db8:cafe::17"
    );
    assert_eq!(one(r#"For="[2001:db8:cafe::17]""#), "2001:db8:cafe::17");
    assert_eq!(
        one("for=192.0.2.60;proto=http;by=203.0.113.43"),
        "192.0.2.60"
    );
    assert_eq!(
        one("proto=http;for=192.0.2.60;by=203.0.113.43"),
        "192.0.2.60"
    );
    assert_eq!(one("for=192.0.2.43"), "192.0.2.43");
    assert_eq!(one("FOR=1.1.1.1"), "1.1.1.1");
    assert_eq!(one("fOr=1.1.1.1"), "1.1.1.1");
    assert_eq!(one(r#"for="1.1.1.1""#), "1.1.1.1");
    assert_eq!(one(r#"for="1.1.1.1:48485""#), "1.1.1.1");
    // Tolerated although RFC 7239 wants quotes.
    assert_eq!(one("for=1.1.1.1:48485"), "1.1.1.1");
    assert_eq!(one("for=[2001:db8:cafe::17]:4711"), "2001:db8:cafe::17");
    assert_eq!(one("for=2001:db8:cafe::17"), "2001:db8:cafe::17");
    assert_eq!(one("for=::ffff:188.0.2.128"), "188.0.2.128");
    // Whitespace around separators.
    assert_eq!(one(" for = 1.1.1.1 ; proto = https "), "1.1.1.1");
    assert_eq!(one("for=1.1.1.1\t,\tfor=2.2.2.2"), "2.2.2.2");
    for bad in [
        "for=_hidden",
        "for=\"_hidden\"",
        "for=unknown",
        "for=\"unknown\"",
        "for=",
        "for=\"\"",
        "proto=https",
        "for=garbage",
        "for=\"1.1.1.1",
        "for=1.1.1.1\"",
        "for=1.1.1.1=2",
        "",
    ] {
        assert_eq!(one(bad), "", "{bad:?}");
    }
    // Several Forwarded headers are one list.
    let h = headers(&[
        ("Forwarded", "for=1.1.1.1"),
        ("Forwarded", "for=2.2.2.2;proto=https, for=10.0.0.9"),
    ]);
    assert_eq!(get(&source, &h, from), "2.2.2.2");
    // Deliberate: quoted strings are honoured, so a comma inside one does not split.
    let h = headers(&[("Forwarded", r#"for=2.2.2.2;host="a,b", for=10.0.0.9"#)]);
    assert_eq!(get(&source, &h, from), "2.2.2.2");
    // Deliberate: a malformed element is an invalid hop (stops the walk), as is one whose
    // other parameters are malformed (an unterminated quote could otherwise swallow the
    // element a proxy appended on the same line).
    let h = headers(&[("Forwarded", r#"for=6.6.6.6;x=", for=10.0.0.9"#)]);
    assert_eq!(get(&source, &h, from), "");
}

// ---- realclientip-go: ChainStrategy -----------------------------------------------------

#[test]
fn realclientip_chain() {
    let source =
        ClientIpSource::header(HeaderName::from_static("cf-connecting-ip"), IpRanges::any())
            .or(ClientIpSource::remote_addr());
    let h = headers(&[("Cf-Connecting-IP", "1.1.1.1")]);
    assert_eq!(get(&source, &h, peer("2.2.2.2")), "1.1.1.1");
    // Deliberate: realclientip-go answers the peer "2.2.2.2" for a missing or invalid
    // header. The header source trusts every peer, so 2.2.2.2 is the proxy that should have
    // set it, not the client: no IP (see "Security considerations" in the crate docs).
    assert_eq!(get(&source, &HeaderMap::new(), peer("2.2.2.2")), "");
    let garbage = headers(&[("Cf-Connecting-IP", "garbage")]);
    assert_eq!(get(&source, &garbage, peer("2.2.2.2")), "");
    // With a header source that trusts only named proxies, other peers are the client.
    let source = ClientIpSource::header(
        HeaderName::from_static("cf-connecting-ip"),
        "10.0.0.0/8".parse::<IpRanges>().unwrap(),
    )
    .or(ClientIpSource::remote_addr());
    assert_eq!(get(&source, &garbage, peer("2.2.2.2")), "2.2.2.2");
    assert_eq!(get(&source, &garbage, peer("10.0.0.2")), "");
    // Several list strategies.
    let source = src(
        "rightmost-trusted-range:forwarded:10.0.0.0/8 or rightmost-trusted-count:x-forwarded-for:1",
    );
    let h = headers(&[("X-Forwarded-For", "1.1.1.1, 3.3.3.3")]);
    assert_eq!(get(&source, &h, peer("10.0.0.1")), "3.3.3.3");
    let h = headers(&[("X-Forwarded-For", "3.3.3.3"), ("Forwarded", "for=4.4.4.4")]);
    assert_eq!(get(&source, &h, peer("10.0.0.1")), "4.4.4.4");
    // Empty chain text is a configuration error.
    assert!("".parse::<ClientIpSource>().is_err());
}

// ---- "The perils of the 'real' client IP" ---------------------------------------------

#[test]
fn perils_rules() {
    // Never the leftmost for security: an attacker prepends what it likes.
    let source = src("rightmost-trusted-range:x-forwarded-for:10.0.0.0/8");
    let h = headers(&[("X-Forwarded-For", "1.2.3.4, 203.0.113.9")]);
    assert_eq!(get(&source, &h, peer("10.0.0.1")), "203.0.113.9");
    // All lines of the header, not just the first or last: an attacker's own header line
    // comes first, the proxy's appended line last.
    let h = headers(&[
        ("X-Forwarded-For", "1.2.3.4"),
        ("X-Forwarded-For", "203.0.113.9"),
    ]);
    assert_eq!(get(&source, &h, peer("10.0.0.1")), "203.0.113.9");
    let h = headers(&[
        ("X-Forwarded-For", "203.0.113.9"),
        ("X-Forwarded-For", "10.0.0.7"),
    ]);
    assert_eq!(get(&source, &h, peer("10.0.0.1")), "203.0.113.9");
    // Headers sent directly (not through the proxy) are ignored.
    assert_eq!(get(&source, &h, peer("198.51.100.7")), "198.51.100.7");
    let cf = ClientIpSource::cloudflare();
    let h = headers(&[("CF-Connecting-IP", "1.2.3.4")]);
    assert_eq!(get(&cf, &h, peer("198.51.100.7")), "198.51.100.7");
    assert_eq!(get(&cf, &h, peer("173.245.48.1")), "1.2.3.4");
    assert_eq!(get(&cf, &h, peer("2a06:98c0::1")), "1.2.3.4");
}

// ---- Express proxy-addr -----------------------------------------------------------------

#[test]
fn proxy_addr_trust_lists() {
    let xff = |trust: &str| {
        ClientIpSource::rightmost_trusted_range(ListHeader::XForwardedFor, ranges(trust))
    };
    let h = headers(&[("x-forwarded-for", "10.0.0.1, 10.0.0.2")]);
    // Nothing trusted: the socket address.
    let none = ClientIpSource::rightmost_trusted_range(ListHeader::XForwardedFor, IpRanges::none());
    assert_eq!(get(&none, &h, peer("127.0.0.1")), "127.0.0.1");
    // First untrusted after the trusted socket.
    assert_eq!(get(&xff("127.0.0.1"), &h, peer("127.0.0.1")), "10.0.0.2");
    assert_eq!(
        get(&xff("127.0.0.1, 10.0.0.2"), &h, peer("127.0.0.1")),
        "10.0.0.1"
    );
    assert_eq!(
        get(&xff("loopback, 10.0.0.2"), &h, peer("127.0.0.1")),
        "10.0.0.1"
    );
    // Does not skip an untrusted address to reach a trusted one.
    let h2 = headers(&[("x-forwarded-for", "10.0.0.1, 10.0.0.2, 127.0.0.2")]);
    assert_eq!(get(&xff("127.0.0.1"), &h2, peer("127.0.0.1")), "127.0.0.2");
    assert_eq!(get(&xff("loopback"), &h2, peer("127.0.0.1")), "10.0.0.2");
    // CIDR with host bits, and dotted netmasks.
    for trust in [
        "127.0.0.1, 10.0.0.2/26",
        "127.0.0.1, 10.0.0.2/255.255.255.192",
        "127.0.0.1/255.0.0.0, 10.0.0.0/255.255.255.0",
    ] {
        let h = headers(&[("x-forwarded-for", "192.168.0.1, 10.0.0.1, 10.0.0.2")]);
        assert_eq!(
            get(&xff(trust), &h, peer("127.0.0.1")),
            "192.168.0.1",
            "{trust}"
        );
    }
    // IPv6.
    let h = headers(&[("x-forwarded-for", "2002:c000:203::1, fe80::1")]);
    assert_eq!(
        get(&xff("::1, fe80::/10"), &h, peer("::1")),
        "2002:c000:203::1"
    );
    assert_eq!(
        get(&xff("loopback, linklocal"), &h, peer("::1")),
        "2002:c000:203::1"
    );
    // IPv4-mapped IPv6 sockets match IPv4 trust, and mapped trust matches IPv4.
    let h = headers(&[("x-forwarded-for", "10.0.0.1, 10.0.0.2")]);
    assert_eq!(
        get(&xff("127.0.0.1"), &h, peer("::ffff:127.0.0.1")),
        "10.0.0.2"
    );
    assert_eq!(
        get(&xff("::ffff:127.0.0.1"), &h, peer("127.0.0.1")),
        "10.0.0.2"
    );
    let h3 = headers(&[("x-forwarded-for", "192.168.0.1, 10.0.0.1, 10.0.0.2")]);
    assert_eq!(
        get(&xff("::ffff:a00:2/122, 127.0.0.1"), &h3, peer("127.0.0.1")),
        "192.168.0.1"
    );
    assert_eq!(
        get(&xff("::ffff:7f00:1"), &h, peer("127.0.0.1")),
        "10.0.0.2"
    );
    // uniquelocal covers RFC 1918 and fc00::/7.
    let h = headers(&[("x-forwarded-for", "1.2.3.4, 10.0.0.1, 192.168.0.1, fd00::1")]);
    assert_eq!(get(&xff("uniquelocal"), &h, peer("172.16.0.1")), "1.2.3.4");
    // Deliberate: proxy-addr returns the raw text of an invalid entry ("proxy"); tollgate
    // never answers with something that is not an IP.
    let h = headers(&[("x-forwarded-for", "myrouter, 127.0.0.1, proxy")]);
    assert_eq!(get(&xff("127.0.0.1"), &h, peer("127.0.0.1")), "");
    // Deliberate: when everything is trusted proxy-addr answers the leftmost (trusted)
    // address; tollgate answers no IP.
    let h = headers(&[("x-forwarded-for", "127.0.0.3, 127.0.0.2")]);
    assert_eq!(get(&xff("loopback"), &h, peer("127.0.0.1")), "");
}

#[test]
fn proxy_addr_trust_errors() {
    for bad in [
        "blargh",
        "10.0.0.1/33",
        "10.0.0.1/255.0.255.0",
        "10.0.0.1/ffff::",
        "::1/129",
        "10.0.0.1,",
        "10.0.0.1/",
    ] {
        assert!(bad.parse::<IpRanges>().is_err(), "{bad}");
    }
}

#[test]
fn proxy_addr_hop_counts() {
    // `trust proxy = n` trusts the socket and n-1 entries: the same count as tollgate's.
    let h = headers(&[("x-forwarded-for", "10.0.0.1, 10.0.0.2")]);
    let xff = |n| count(ListHeader::XForwardedFor, n);
    assert_eq!(get(&xff(1), &h, peer("127.0.0.1")), "10.0.0.2");
    assert_eq!(get(&xff(2), &h, peer("127.0.0.1")), "10.0.0.1");
    // Deliberate: with more hops than entries proxy-addr answers the leftmost; tollgate
    // errors (as realclientip-go does).
    assert_eq!(get(&xff(3), &h, peer("127.0.0.1")), "");
    // `trust proxy = 0`: the socket, which is `remote-addr` here.
    assert_eq!(get(&src("remote-addr"), &h, peer("127.0.0.1")), "127.0.0.1");
}

// ---- nginx realip -----------------------------------------------------------------------

#[test]
fn nginx_realip() {
    // set_real_ip_from 192.168.1.0/24; set_real_ip_from 2001:db8::/32;
    // real_ip_header X-Forwarded-For; real_ip_recursive on;
    let source = src("rightmost-trusted-range:x-forwarded-for:192.168.1.0/24,2001:db8::/32");
    let h = headers(&[("X-Forwarded-For", "203.0.113.7, 198.51.100.2, 192.168.1.20")]);
    assert_eq!(get(&source, &h, peer("192.168.1.5")), "198.51.100.2");
    assert_eq!(get(&source, &h, peer("2001:db8::5")), "198.51.100.2");
    // A peer outside set_real_ip_from keeps its own address.
    assert_eq!(get(&source, &h, peer("198.51.100.99")), "198.51.100.99");
    // real_ip_recursive off: the rightmost entry, whoever it is.
    let h = headers(&[("X-Forwarded-For", "203.0.113.7, 192.168.1.20")]);
    assert_eq!(
        get(
            &count(ListHeader::XForwardedFor, 1),
            &h,
            peer("192.168.1.5")
        ),
        "192.168.1.20"
    );
    // real_ip_header X-Real-IP.
    let source = src("header:x-real-ip:192.168.1.0/24");
    let h = headers(&[("X-Real-IP", "203.0.113.7")]);
    assert_eq!(get(&source, &h, peer("192.168.1.5")), "203.0.113.7");
    assert_eq!(get(&source, &h, peer("203.0.113.200")), "203.0.113.200");
    // Deliberate: nginx keeps the proxy's address on an unparseable entry or when every
    // entry is trusted; tollgate answers no IP rather than a proxy's address.
    let source = src("rightmost-trusted-range:x-forwarded-for:192.168.1.0/24");
    let h = headers(&[("X-Forwarded-For", "203.0.113.7, unknown, 192.168.1.20")]);
    assert_eq!(get(&source, &h, peer("192.168.1.5")), "");
    let h = headers(&[("X-Forwarded-For", "192.168.1.30, 192.168.1.20")]);
    assert_eq!(get(&source, &h, peer("192.168.1.5")), "");
}

// ---- Envoy xff_num_trusted_hops ---------------------------------------------------------

#[test]
fn envoy_xff_examples() {
    // Edge Envoy, use_remote_address: true, xff_num_trusted_hops: 0 → the peer.
    let h = headers(&[(
        "X-Forwarded-For",
        "203.0.113.128, 203.0.113.10, 203.0.113.1",
    )]);
    assert_eq!(
        get(&src("remote-addr"), &h, peer("192.0.2.10")),
        "192.0.2.10"
    );
    // Internal service behind one edge proxy (use_remote_address: false, 0 trusted hops):
    // the rightmost entry, tollgate's count 1.
    let h2 = headers(&[("X-Forwarded-For", "203.0.113.128, 203.0.113.10, 192.0.2.1")]);
    assert_eq!(
        get(&count(ListHeader::XForwardedFor, 1), &h2, peer("10.0.0.1")),
        "192.0.2.1"
    );
    // Two trusted proxies in front (use_remote_address: true, xff_num_trusted_hops: 2):
    // tollgate's count 2 over the header as received.
    assert_eq!(
        get(&count(ListHeader::XForwardedFor, 2), &h, peer("192.0.2.10")),
        "203.0.113.10"
    );
    // And by range, when the two proxies' addresses are known.
    let by_range = src("rightmost-trusted-range:x-forwarded-for:192.0.2.10,203.0.113.1");
    assert_eq!(get(&by_range, &h, peer("192.0.2.10")), "203.0.113.10");
}

// ---- axum-client-ip ---------------------------------------------------------------------

#[test]
fn axum_client_ip_sources() {
    for name in [
        "cf-connecting-ip",
        "true-client-ip",
        "fly-client-ip",
        "x-real-ip",
        "cloudfront-viewer-address",
    ] {
        let source = src(&format!("header:{name}"));
        let got = source
            .extract(&headers(&[(name, "1.2.3.4")]), None)
            .unwrap();
        assert_eq!(
            got,
            ClientIp::new(
                ip("1.2.3.4"),
                IpOrigin::Header(HeaderName::from_bytes(name.as_bytes()).unwrap())
            )
        );
        let got = get(&source, &headers(&[(name, "2001:db8::1")]), None);
        assert_eq!(got, "2001:db8::1", "{name}");
        assert_eq!(
            get(&source, &headers(&[(name, "ohno")]), None),
            "",
            "{name}"
        );
    }
    // CloudFront-Viewer-Address is `ip:port`, IPv6 unbracketed.
    let cloudfront = src("header:cloudfront-viewer-address");
    let one = |value: &str| {
        get(
            &cloudfront,
            &headers(&[("cloudfront-viewer-address", value)]),
            None,
        )
    };
    assert_eq!(one("198.51.100.10:46532"), "198.51.100.10");
    assert_eq!(
        one("2a09:bac1:3b20:38::17:3c9:46532"),
        "2a09:bac1:3b20:38::17:3c9"
    );
    assert_eq!(
        one("[2a09:bac1:3b20:38::17:3c9]:46532"),
        "2a09:bac1:3b20:38::17:3c9"
    );
    assert_eq!(one("2001:db8::1:443"), "2001:db8::1");
    // Rightmost X-Forwarded-For / Forwarded (one proxy in front).
    let xff = count(ListHeader::XForwardedFor, 1);
    assert_eq!(
        get(
            &xff,
            &headers(&[("x-forwarded-for", "1.1.1.1, 2.2.2.2")]),
            peer("10.0.0.1")
        ),
        "2.2.2.2"
    );
    let h = headers(&[
        ("x-forwarded-for", "1.1.1.1"),
        ("x-forwarded-for", "3.3.3.3, 2.2.2.2"),
    ]);
    assert_eq!(get(&xff, &h, peer("10.0.0.1")), "2.2.2.2");
    let fwd = count(ListHeader::Forwarded, 1);
    let h = headers(&[("forwarded", "for=1.1.1.1, for=\"[::1]:1000\"")]);
    assert_eq!(get(&fwd, &h, peer("10.0.0.1")), "::1");
}

/// axum-client-ip answers a plain 500 on garbage; tollgate never lets client bytes cause one.
#[tokio::test]
async fn client_garbage_is_400_never_500() {
    let sources = [
        "header:cf-connecting-ip",
        "header:x-real-ip:10.0.0.0/8",
        "header:cloudfront-viewer-address",
        "rightmost-trusted-range:x-forwarded-for:10.0.0.0/8",
        "rightmost-trusted-range:forwarded:10.0.0.0/8",
        "rightmost-trusted-count:x-forwarded-for:2",
        "rightmost-trusted-count:forwarded:1",
        "rightmost-non-private:x-forwarded-for",
        "leftmost-non-private:forwarded",
    ];
    let garbage: &[&[u8]] = &[
        b"",
        b"ohno",
        b"\xff\xfe\xfd",
        b"1.1.1.1, , ,",
        b"for=\"",
        b"\"[::1",
        b"[",
        b"]:80",
        b"::::::::",
        b"1.1.1.1:99999",
        b"for=1.1.1.1;for=2.2.2.2",
        b"unknown",
        b"_hidden",
    ];
    for text in sources {
        let layer = ResolveClientIpLayer::new(src(text));
        for bytes in garbage {
            let mut request = Request::new(());
            for name in [
                "cf-connecting-ip",
                "x-real-ip",
                "cloudfront-viewer-address",
                "x-forwarded-for",
                "forwarded",
            ] {
                request
                    .headers_mut()
                    .append(name, HeaderValue::from_bytes(bytes).unwrap());
            }
            request
                .extensions_mut()
                .insert(PeerAddr::new("10.0.0.1:4000".parse().unwrap()));
            let response = layer
                .layer(service_fn(|_: Request<()>| async {
                    Ok::<_, std::convert::Infallible>(http::Response::new(()))
                }))
                .oneshot(request)
                .await
                .unwrap();
            assert_eq!(
                response.status(),
                StatusCode::BAD_REQUEST,
                "{text} with {:?}",
                String::from_utf8_lossy(bytes)
            );
        }
    }
}
