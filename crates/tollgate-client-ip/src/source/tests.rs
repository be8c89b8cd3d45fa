//! The sources on header maps and peers: every kind, chains, and property tests of what an
//! extraction may answer.

use std::net::IpAddr;
use std::num::NonZeroUsize;

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn peer(s: &str) -> Option<IpAddr> {
    Some(ip(s))
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_bytes(value.as_bytes()).unwrap(),
        );
    }
    map
}

fn xff(lines: &[&str]) -> HeaderMap {
    headers(
        &lines
            .iter()
            .map(|l| ("x-forwarded-for", *l))
            .collect::<Vec<_>>(),
    )
}

fn fwd(lines: &[&str]) -> HeaderMap {
    headers(&lines.iter().map(|l| ("forwarded", *l)).collect::<Vec<_>>())
}

fn src(text: &str) -> ClientIpSource {
    text.parse().unwrap()
}

fn hop(header: &str, hop: usize) -> IpOrigin {
    IpOrigin::ListHop {
        header: HeaderName::from_bytes(header.as_bytes()).unwrap(),
        hop,
    }
}

fn name(header: &str) -> HeaderName {
    HeaderName::from_bytes(header.as_bytes()).unwrap()
}

fn n(count: usize) -> NonZeroUsize {
    NonZeroUsize::new(count).unwrap()
}

// ---- remote address -------------------------------------------------------------------

#[test]
fn remote_addr_is_the_peer_canonicalised() {
    let source = ClientIpSource::remote_addr();
    let spoof = xff(&["1.2.3.4"]);
    let got = source.extract(&spoof, peer("192.0.2.1")).unwrap();
    assert_eq!(got, ClientIp::new(ip("192.0.2.1"), IpOrigin::Peer));
    let got = source.extract(&spoof, peer("::ffff:192.0.2.1")).unwrap();
    assert_eq!(got.ip(), ip("192.0.2.1"));
    assert!(got.ip().is_ipv4());
    assert_eq!(source.extract(&spoof, None), Err(ExtractError::MissingPeer));
    assert_eq!(
        source.extract(&spoof, peer("0.0.0.0")),
        Err(ExtractError::MissingPeer)
    );
    assert_eq!(source.extract_opt(&spoof, None), None);
}

// ---- single-IP headers ----------------------------------------------------------------

#[test]
fn cloudflare_header_from_cloudflare_peer() {
    let source = ClientIpSource::cloudflare();
    let h = headers(&[("cf-connecting-ip", "203.0.113.50")]);
    let got = source.extract(&h, peer("173.245.48.7")).unwrap();
    assert_eq!(got.ip(), ip("203.0.113.50"));
    assert_eq!(got.origin(), &IpOrigin::Header(name("cf-connecting-ip")));
    assert_eq!(got.header(), Some(&name("cf-connecting-ip")));
    // IPv6 edge and v6 visitor.
    let h = headers(&[("cf-connecting-ip", "2001:db8::7")]);
    let got = source.extract(&h, peer("2606:4700::1")).unwrap();
    assert_eq!(got.ip(), ip("2001:db8::7"));
}

#[test]
fn spoofed_cf_connecting_ip_sent_directly_is_ignored() {
    let source = ClientIpSource::cloudflare();
    let h = headers(&[("cf-connecting-ip", "1.1.1.1")]);
    let got = source.extract(&h, peer("198.51.100.23")).unwrap();
    assert_eq!(got, ClientIp::new(ip("198.51.100.23"), IpOrigin::Peer));
    assert!(got.is_from_peer());
    assert_eq!(got.header(), None);
    // Without any peer, a range-restricted header cannot be believed.
    assert_eq!(source.extract(&h, None), Err(ExtractError::MissingPeer));
}

#[test]
fn single_header_values() {
    let source =
        ClientIpSource::header(name("x-real-ip"), "10.0.0.0/8".parse::<IpRanges>().unwrap());
    let from = peer("10.0.0.1");
    let get = |value: &str| source.extract(&headers(&[("x-real-ip", value)]), from);
    assert_eq!(get("192.0.2.1").unwrap().ip(), ip("192.0.2.1"));
    assert_eq!(get(" 192.0.2.1:5000 ").unwrap().ip(), ip("192.0.2.1"));
    assert_eq!(get("[2001:db8::1]:5000").unwrap().ip(), ip("2001:db8::1"));
    assert_eq!(get("fe80::1%eth0").unwrap().ip(), ip("fe80::1"));
    assert_eq!(get("::ffff:192.0.2.1").unwrap().ip(), ip("192.0.2.1"));
    let invalid = Err(ExtractError::InvalidHeader {
        header: name("x-real-ip"),
    });
    for bad in [
        "192.0.2.1, 192.0.2.2",
        "unknown",
        "_x",
        "",
        "0.0.0.0",
        "::",
        "garbage",
        "1.2.3",
    ] {
        assert_eq!(get(bad), invalid, "{bad:?}");
    }
    assert_eq!(
        source.extract(&HeaderMap::new(), from),
        Err(ExtractError::MissingHeader {
            header: name("x-real-ip")
        })
    );
    // Several lines: the last one (the closest proxy's) counts.
    let h = headers(&[("x-real-ip", "6.6.6.6"), ("x-real-ip", "192.0.2.9")]);
    assert_eq!(source.extract(&h, from).unwrap().ip(), ip("192.0.2.9"));
}

#[test]
fn header_trusting_any_peer_needs_no_peer() {
    let source = src("header:true-client-ip");
    let h = headers(&[("true-client-ip", "192.0.2.77")]);
    assert_eq!(source.extract(&h, None).unwrap().ip(), ip("192.0.2.77"));
    assert_eq!(
        source.extract(&h, peer("8.8.8.8")).unwrap().ip(),
        ip("192.0.2.77")
    );
}

// ---- rightmost trusted range ----------------------------------------------------------

#[test]
fn rightmost_trusted_range_skips_trusted_hops() {
    let source = src("rightmost-trusted-range:x-forwarded-for:10.0.0.0/8");
    let got = source
        .extract(&xff(&["1.1.1.1, 2.2.2.2, 10.0.0.2"]), peer("10.0.0.1"))
        .unwrap();
    assert_eq!(got, ClientIp::new(ip("2.2.2.2"), hop("x-forwarded-for", 1)));
    let got = source
        .extract(&xff(&["1.1.1.1, 2.2.2.2"]), peer("10.0.0.1"))
        .unwrap();
    assert_eq!(got, ClientIp::new(ip("2.2.2.2"), hop("x-forwarded-for", 0)));
}

#[test]
fn multiple_lines_are_merged_in_order() {
    let source = src("rightmost-trusted-range:x-forwarded-for:10.0.0.0/8");
    let h = xff(&["1.1.1.1, 2.2.2.2", "10.0.0.3", "10.0.0.4,10.0.0.5"]);
    let got = source.extract(&h, peer("10.0.0.1")).unwrap();
    assert_eq!(got, ClientIp::new(ip("2.2.2.2"), hop("x-forwarded-for", 3)));
    let count = ClientIpSource::rightmost_trusted_count(ListHeader::XForwardedFor, n(5));
    assert_eq!(
        count.extract(&h, peer("10.0.0.1")).unwrap().ip(),
        ip("1.1.1.1")
    );
}

#[test]
fn spoofed_xff_from_untrusted_peer_is_ignored() {
    let source = src("rightmost-trusted-range:x-forwarded-for:10.0.0.0/8");
    let got = source
        .extract(&xff(&["1.1.1.1"]), peer("203.0.113.4"))
        .unwrap();
    assert_eq!(got, ClientIp::new(ip("203.0.113.4"), IpOrigin::Peer));
    assert_eq!(
        source.extract(&xff(&["1.1.1.1"]), None),
        Err(ExtractError::MissingPeer)
    );
}

#[test]
fn ports_zones_and_mapped_addresses_in_lists() {
    let source = src("rightmost-trusted-range:x-forwarded-for:10.0.0.0/8,fd00::/8");
    let from = peer("::ffff:10.0.0.1"); // dual-stack socket: mapped peer is still trusted
    let cases = [
        ("192.0.2.1:4711, 10.0.0.2:80", "192.0.2.1"),
        ("[2001:db8::1]:443, [fd00::2]:80", "2001:db8::1"),
        ("2001:db8::2, fd00::3", "2001:db8::2"),
        ("fe80::1%eth0, 10.0.0.2", "fe80::1"),
        ("::ffff:192.0.2.3, ::ffff:10.0.0.2", "192.0.2.3"),
        ("  192.0.2.4\t,\t10.0.0.2  ", "192.0.2.4"),
    ];
    for (line, want) in cases {
        let got = source.extract(&xff(&[line]), from).unwrap();
        assert_eq!(got.ip(), ip(want), "{line}");
        assert_eq!(got.ip().to_string(), want);
    }
    // Trusted ranges written as mapped IPv6 match IPv4 hops.
    let mapped = src("rightmost-trusted-range:x-forwarded-for:::ffff:10.0.0.0/104");
    let got = mapped
        .extract(&xff(&["192.0.2.8, 10.0.0.2"]), peer("10.0.0.1"))
        .unwrap();
    assert_eq!(got.ip(), ip("192.0.2.8"));
}

#[test]
fn invalid_hops_stop_the_walk() {
    let source = src("rightmost-trusted-range:x-forwarded-for:10.0.0.0/8");
    let from = peer("10.0.0.1");
    let cases = [
        ("1.1.1.1, garbage, 10.0.0.2", 1),
        ("1.1.1.1, unknown, 10.0.0.2", 1),
        ("1.1.1.1, _hidden, 10.0.0.2", 1),
        ("1.1.1.1, _x", 0),
        ("1.1.1.1,,10.0.0.2", 1),
        ("1.1.1.1, 0.0.0.0", 0),
        ("1.1.1.1, ::", 0),
        ("1.1.1.1, 10.0.0.2, ", 0),
        ("", 0),
        ("1.1.1.1, 10.0.0.2:http", 0),
        ("1.1.1.1 10.0.0.2", 0),
    ];
    for (line, at) in cases {
        assert_eq!(
            source.extract(&xff(&[line]), from),
            Err(ExtractError::InvalidHop {
                header: name("x-forwarded-for"),
                hop: at
            }),
            "{line:?}"
        );
    }
    // Garbage left of the client is never reached.
    let got = source
        .extract(&xff(&["garbage, unknown, 192.0.2.1, 10.0.0.2"]), from)
        .unwrap();
    assert_eq!(got.ip(), ip("192.0.2.1"));
    // Non-UTF-8 bytes are an invalid hop, not a failure.
    let mut h = HeaderMap::new();
    h.insert(
        "x-forwarded-for",
        HeaderValue::from_bytes(b"1.1.1.1, \xff\xfe, 10.0.0.2").unwrap(),
    );
    assert_eq!(
        source.extract(&h, from),
        Err(ExtractError::InvalidHop {
            header: name("x-forwarded-for"),
            hop: 1
        })
    );
}

#[test]
fn all_trusted_means_no_ip() {
    let source = src("rightmost-trusted-range:x-forwarded-for:10.0.0.0/8");
    assert_eq!(
        source.extract(&xff(&["10.0.0.3, 10.0.0.2"]), peer("10.0.0.1")),
        Err(ExtractError::AllTrusted {
            header: name("x-forwarded-for")
        })
    );
    assert_eq!(
        source.extract(&HeaderMap::new(), peer("10.0.0.1")),
        Err(ExtractError::MissingHeader {
            header: name("x-forwarded-for")
        })
    );
}

#[test]
fn forwarded_rfc7239() {
    let source = src("rightmost-trusted-range:forwarded:10.0.0.0/8");
    let from = peer("10.0.0.1");
    let get = |lines: &[&str]| source.extract(&fwd(lines), from);
    // RFC 7239 section 7.1 style examples.
    let got = get(&[r#"for=192.0.2.60;proto=http;by=203.0.113.43, for="[2001:db8:cafe::17]:4711", for=10.0.0.2"#]).unwrap();
    assert_eq!(
        got,
        ClientIp::new(ip("2001:db8:cafe::17"), hop("forwarded", 1))
    );
    assert_eq!(get(&["for=192.0.2.43"]).unwrap().ip(), ip("192.0.2.43"));
    assert_eq!(
        get(&["For=\"192.0.2.43:47011\""]).unwrap().ip(),
        ip("192.0.2.43")
    );
    // A comma inside a quoted string does not split the element.
    let got = get(&[r#"for=203.0.113.1;by="a,b", for=10.0.0.2"#]).unwrap();
    assert_eq!(got, ClientIp::new(ip("203.0.113.1"), hop("forwarded", 1)));
    // A malformed element invalidates only itself: elements right of it still parse.
    let got = get(&["for=garbage!!;x, for=203.0.113.1, for=10.0.0.2"]).unwrap();
    assert_eq!(got.ip(), ip("203.0.113.1"));
    let invalid = |at| {
        Err(ExtractError::InvalidHop {
            header: name("forwarded"),
            hop: at,
        })
    };
    assert_eq!(
        get(&["for=203.0.113.1, for=unknown, for=10.0.0.2"]),
        invalid(1)
    );
    assert_eq!(get(&["for=203.0.113.1, for=_hidden"]), invalid(0));
    assert_eq!(get(&["for=203.0.113.1, proto=https"]), invalid(0));
    assert_eq!(get(&["for=203.0.113.1, for=\"10.0.0.2"]), invalid(0));
    assert_eq!(get(&["for=203.0.113.1;for=10.0.0.2"]), invalid(0));
    // Lines merge in order.
    let got = get(&["for=192.0.2.1", "for=10.0.0.3, for=10.0.0.2"]).unwrap();
    assert_eq!(got, ClientIp::new(ip("192.0.2.1"), hop("forwarded", 2)));
    assert_eq!(
        get(&["for=10.0.0.3"]),
        Err(ExtractError::AllTrusted {
            header: name("forwarded")
        })
    );
}

#[test]
fn forwarded_with_many_elements_spills_past_the_stack_buffer() {
    let source = src("rightmost-trusted-range:forwarded:10.0.0.0/8");
    let mut line = String::from("for=192.0.2.200");
    for i in 0..50 {
        line.push_str(&format!(", for=10.0.{i}.1"));
    }
    let got = source.extract(&fwd(&[&line]), peer("10.0.0.1")).unwrap();
    assert_eq!(got, ClientIp::new(ip("192.0.2.200"), hop("forwarded", 50)));
    let mut line = String::from("for=10.0.0.9");
    for i in 0..40 {
        line.push_str(&format!(", for=192.0.2.{i}"));
    }
    let got = source.extract(&fwd(&[&line]), peer("10.0.0.1")).unwrap();
    assert_eq!(got, ClientIp::new(ip("192.0.2.39"), hop("forwarded", 0)));
}

// ---- trusted count --------------------------------------------------------------------

#[test]
fn rightmost_trusted_count_off_by_one() {
    let h = xff(&["1.1.1.1, 2.2.2.2, 3.3.3.3"]);
    let from = peer("10.0.0.1");
    let count = |c| ClientIpSource::rightmost_trusted_count(ListHeader::XForwardedFor, n(c));
    // One proxy: it appended the client it saw, the rightmost entry.
    assert_eq!(
        count(1).extract(&h, from).unwrap(),
        ClientIp::new(ip("3.3.3.3"), hop("x-forwarded-for", 0))
    );
    assert_eq!(count(2).extract(&h, from).unwrap().ip(), ip("2.2.2.2"));
    assert_eq!(count(3).extract(&h, from).unwrap().ip(), ip("1.1.1.1"));
    // Too short: the count says more proxies than the header shows.
    assert_eq!(
        count(4).extract(&h, from),
        Err(ExtractError::TooFewHops {
            header: name("x-forwarded-for"),
            needed: 4,
            found: 3
        })
    );
    assert_eq!(
        count(2).extract(&xff(&["1.1.1.1, garbage"]), from),
        Err(ExtractError::InvalidHop {
            header: name("x-forwarded-for"),
            hop: 0
        })
    );
    // A bad hop left of the counted position is never read.
    assert_eq!(
        count(1)
            .extract(&xff(&["garbage, 3.3.3.3"]), from)
            .unwrap()
            .ip(),
        ip("3.3.3.3")
    );
    assert_eq!(count(1).extract(&h, None), Err(ExtractError::MissingPeer));
    assert_eq!(
        count(1).extract(&HeaderMap::new(), from),
        Err(ExtractError::MissingHeader {
            header: name("x-forwarded-for")
        })
    );
    let forwarded = ClientIpSource::rightmost_trusted_count(ListHeader::Forwarded, n(2));
    let got = forwarded
        .extract(&fwd(&["for=192.0.2.1, for=10.0.0.2"]), from)
        .unwrap();
    assert_eq!(got, ClientIp::new(ip("192.0.2.1"), hop("forwarded", 1)));
}

// ---- non-private ----------------------------------------------------------------------

#[test]
fn rightmost_non_private() {
    let source = ClientIpSource::rightmost_non_private(ListHeader::XForwardedFor);
    let h = xff(&["1.1.1.1, 2.2.2.2, 192.168.1.1, 100.64.0.1, 10.0.0.2"]);
    let got = source.extract(&h, peer("10.0.0.1")).unwrap();
    assert_eq!(got, ClientIp::new(ip("2.2.2.2"), hop("x-forwarded-for", 3)));
    // A public peer is the client itself.
    assert!(source.extract(&h, peer("8.8.4.4")).unwrap().is_from_peer());
    assert_eq!(
        source.extract(&xff(&["10.1.1.1, fd00::1"]), peer("10.0.0.1")),
        Err(ExtractError::AllTrusted {
            header: name("x-forwarded-for")
        })
    );
}

#[test]
fn leftmost_non_private_is_the_first_public_entry() {
    let source = ClientIpSource::leftmost_non_private(ListHeader::XForwardedFor);
    let h = xff(&["10.1.1.1, 1.1.1.1", "2.2.2.2, 10.0.0.2"]);
    let got = source.extract(&h, peer("10.0.0.1")).unwrap();
    assert_eq!(got, ClientIp::new(ip("1.1.1.1"), hop("x-forwarded-for", 2)));
    // Client-controlled either way: invalid hops are skipped (the leftmost *valid* public
    // address), and reported only when nothing is found.
    assert_eq!(
        source
            .extract(&xff(&["garbage, 1.1.1.1"]), peer("10.0.0.1"))
            .unwrap(),
        ClientIp::new(ip("1.1.1.1"), hop("x-forwarded-for", 0))
    );
    assert_eq!(
        source.extract(&xff(&["10.0.0.9, unknown, _x, 10.0.0.8"]), peer("10.0.0.1")),
        Err(ExtractError::InvalidHop {
            header: name("x-forwarded-for"),
            hop: 2
        })
    );
    assert_eq!(
        source.extract(&xff(&["10.1.1.1"]), peer("10.0.0.1")),
        Err(ExtractError::AllTrusted {
            header: name("x-forwarded-for")
        })
    );
    assert!(source.extract(&h, peer("9.9.9.9")).unwrap().is_from_peer());
    let forwarded = ClientIpSource::leftmost_non_private(ListHeader::Forwarded);
    let got = forwarded
        .extract(
            &fwd(&["for=10.0.0.7, for=\"[2001:db8::5]\", for=192.0.2.1"]),
            peer("10.0.0.1"),
        )
        .unwrap();
    assert_eq!(got, ClientIp::new(ip("2001:db8::5"), hop("forwarded", 1)));
}

// ---- chains ---------------------------------------------------------------------------

#[test]
fn chain_takes_the_first_source_that_yields() {
    let source = src(
        "header:x-real-ip:10.0.0.0/8 or rightmost-trusted-range:x-forwarded-for:10.0.0.0/8 or remote-addr",
    );
    let from = peer("10.0.0.1");
    let both = headers(&[("x-real-ip", "192.0.2.1"), ("x-forwarded-for", "192.0.2.2")]);
    assert_eq!(source.extract(&both, from).unwrap().ip(), ip("192.0.2.1"));
    let only_xff = xff(&["192.0.2.2"]);
    assert_eq!(
        source.extract(&only_xff, from).unwrap().ip(),
        ip("192.0.2.2")
    );
    // Neither header: both sources trusted the proxy, so it is not the client, and
    // `remote-addr` is no fallback (it answered 10.0.0.1 before the trusted-proxy fix).
    assert_eq!(
        source.extract(&HeaderMap::new(), from),
        Err(ExtractError::MissingHeader {
            header: name("x-real-ip")
        })
    );
    // From a peer no source trusts, `remote-addr` (like every chain) answers the peer.
    let got = source.extract(&both, peer("192.0.2.200")).unwrap();
    assert_eq!(got, ClientIp::new(ip("192.0.2.200"), IpOrigin::Peer));
}

#[test]
fn chain_errors() {
    let source = ClientIpSource::header(name("x-real-ip"), IpRanges::any())
        .or(ClientIpSource::remote_addr());
    // No peer: a deployment error wins over the header's reason.
    assert_eq!(
        source.extract(&HeaderMap::new(), None),
        Err(ExtractError::MissingPeer)
    );
    let source =
        src("rightmost-trusted-range:x-forwarded-for:10.0.0.0/8 or header:x-real-ip:10.0.0.0/8");
    assert_eq!(
        source.extract(&xff(&["garbage"]), peer("10.0.0.1")),
        Err(ExtractError::InvalidHop {
            header: name("x-forwarded-for"),
            hop: 0
        })
    );
    // Chains flatten.
    let a = ClientIpSource::cloudflare().or(ClientIpSource::remote_addr());
    let b = ClientIpSource::remote_addr().or(a);
    assert_eq!(
        b.to_string(),
        "remote-addr or header:cf-connecting-ip:cloudflare or remote-addr"
    );
}

#[test]
fn chain_sources_that_do_not_trust_the_peer_pass() {
    // Cloudflare in front for most traffic, an internal nginx (10.0.0.5) for the rest.
    let source = src("cloudflare or header:x-real-ip:10.0.0.5");
    let h = headers(&[("x-real-ip", "192.0.2.44"), ("cf-connecting-ip", "6.6.6.6")]);
    // From nginx: Cloudflare's source passes, nginx's header is read.
    let got = source.extract(&h, peer("10.0.0.5")).unwrap();
    assert_eq!(
        got,
        ClientIp::new(ip("192.0.2.44"), IpOrigin::Header(name("x-real-ip")))
    );
    // From Cloudflare: its header.
    let got = source.extract(&h, peer("104.16.0.9")).unwrap();
    assert_eq!(got.ip(), ip("6.6.6.6"));
    // From anyone else: every source passes, the peer is the client; no header believed.
    let got = source.extract(&h, peer("198.51.100.3")).unwrap();
    assert_eq!(got, ClientIp::new(ip("198.51.100.3"), IpOrigin::Peer));
    // nginx trusted but it sent no header: an error, not nginx's address as the client.
    assert_eq!(
        source.extract(&HeaderMap::new(), peer("10.0.0.5")),
        Err(ExtractError::MissingHeader {
            header: name("x-real-ip")
        })
    );
    // Same for list sources.
    let source = src(
        "rightmost-trusted-range:x-forwarded-for:10.0.0.0/8 or rightmost-trusted-range:forwarded:192.168.0.0/16",
    );
    let h = headers(&[
        ("x-forwarded-for", "203.0.113.1"),
        ("forwarded", "for=203.0.113.2"),
    ]);
    assert_eq!(
        source.extract(&h, peer("192.168.1.1")).unwrap().ip(),
        ip("203.0.113.2")
    );
    assert_eq!(
        source.extract(&h, peer("10.1.1.1")).unwrap().ip(),
        ip("203.0.113.1")
    );
    assert!(source.extract(&h, peer("8.8.8.8")).unwrap().is_from_peer());
}

// ---- property -------------------------------------------------------------------------

mod property {
    use proptest::prelude::*;

    use super::*;

    fn node() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<[u8; 4]>().prop_map(|b| std::net::Ipv4Addr::from(b).to_string()),
            (any::<[u8; 4]>(), 1u16..)
                .prop_map(|(b, p)| format!("{}:{p}", std::net::Ipv4Addr::from(b))),
            prop_oneof![Just(10u8), Just(172), Just(192)].prop_flat_map(|first| any::<[u8; 3]>()
                .prop_map(move |r| format!("{first}.{}.{}.{}", r[0], r[1], r[2]))),
            any::<[u16; 8]>().prop_map(|s| std::net::Ipv6Addr::from(s).to_string()),
            any::<[u16; 8]>().prop_map(|s| format!("[{}]:443", std::net::Ipv6Addr::from(s))),
            any::<[u8; 4]>().prop_map(|b| std::net::Ipv4Addr::from(b).to_ipv6_mapped().to_string()),
            any::<[u16; 8]>().prop_map(|s| format!("{}%eth0", std::net::Ipv6Addr::from(s))),
            Just("unknown".to_owned()),
            Just("_hidden".to_owned()),
            Just(String::new()),
            Just("0.0.0.0".to_owned()),
            "[ -~]{0,12}".prop_filter("no commas", |s| !s.contains(',')),
        ]
    }

    fn line() -> impl Strategy<Value = String> {
        proptest::collection::vec(node(), 1..6).prop_map(|nodes| nodes.join(", "))
    }

    fn ranges() -> impl Strategy<Value = IpRanges> {
        proptest::sample::subsequence(
            vec![
                "10.0.0.0/8",
                "172.16.0.0/12",
                "192.168.0.0/16",
                "::ffff:127.0.0.0/104",
                "fc00::/7",
                "2001:db8::/32",
                "203.0.113.0/24",
                "0.0.0.0/1",
            ],
            0..5,
        )
        .prop_map(|nets| nets.join(",").parse().unwrap_or_else(|_| IpRanges::none()))
    }

    fn peer() -> impl Strategy<Value = Option<IpAddr>> {
        prop_oneof![
            1 => Just(None),
            4 => any::<[u8; 4]>().prop_map(|b| Some(IpAddr::from(b))),
            4 => (prop_oneof![Just(10u8), Just(127), Just(203)], any::<[u8; 3]>())
                .prop_map(|(f, r)| Some(IpAddr::from([f, r[0], r[1], r[2]]))),
            2 => any::<[u16; 8]>().prop_map(|s| Some(IpAddr::from(s))),
            2 => any::<[u8; 4]>().prop_map(|b| Some(IpAddr::V6(std::net::Ipv4Addr::from(b).to_ipv6_mapped()))),
        ]
    }

    fn check(
        source: &ClientIpSource,
        trusted: &IpRanges,
        h: &HeaderMap,
        peer: Option<IpAddr>,
    ) -> Result<(), TestCaseError> {
        if let Ok(client) = source.extract(h, peer) {
            let text = client.ip().to_string();
            // Re-parses to itself, canonical, usable as x-user-ip.
            prop_assert_eq!(text.parse::<IpAddr>().unwrap(), client.ip());
            prop_assert_eq!(crate::parse::parse_node(text.as_bytes()), Some(client.ip()));
            let value = client.to_header_value();
            prop_assert_eq!(value.to_str().unwrap(), text.as_str());
            prop_assert!(!client.ip().is_unspecified());
            // Never inside a trusted range.
            prop_assert!(!trusted.contains(client.ip()));
            // Never from a header when the peer is untrusted.
            let peer_trusted = match peer {
                Some(p) => trusted.contains(p),
                None => trusted.is_any(),
            };
            if !peer_trusted {
                prop_assert!(client.is_from_peer());
                prop_assert_eq!(Some(client.ip()), peer.map(crate::parse::canonical));
            }
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn extraction_invariants(
            lines in proptest::collection::vec(line(), 0..3),
            trusted in ranges(),
            peer in peer(),
        ) {
            let mut h = HeaderMap::new();
            for l in &lines {
                if let Ok(value) = HeaderValue::from_str(l) {
                    h.append("x-forwarded-for", value.clone());
                    h.append("x-real-ip", value);
                }
            }
            let forwarded = lines.iter().map(|l| l.split(", ").map(|n| format!("for=\"{n}\"")).collect::<Vec<_>>().join(", "));
            for l in forwarded {
                if let Ok(value) = HeaderValue::from_str(&l) {
                    h.append("forwarded", value);
                }
            }
            for list in [ListHeader::XForwardedFor, ListHeader::Forwarded] {
                let source = ClientIpSource::rightmost_trusted_range(list, trusted.clone());
                check(&source, &trusted, &h, peer)?;
            }
            let header = ClientIpSource::header(name("x-real-ip"), trusted.clone());
            if let Ok(client) = header.extract(&h, peer) {
                let peer_trusted = peer.is_some_and(|p| trusted.contains(p));
                prop_assert_eq!(client.is_from_peer(), !peer_trusted);
                prop_assert_eq!(client.ip().to_string().parse::<IpAddr>().unwrap(), client.ip());
            }
            let private = IpRanges::private();
            check(&ClientIpSource::rightmost_non_private(ListHeader::XForwardedFor), &private, &h, peer)?;
        }
    }
}

mod property_bytes {
    //! No panic and no server-side error on any header bytes; chains keep the trust rule.
    use proptest::prelude::*;

    use super::*;

    /// Bytes biased towards the characters forwarding headers are made of.
    fn header_bytes() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(
            prop_oneof![
                3 => proptest::sample::select(b"0123456789abcdefABCDEF:.,;=\"[]%_ \tfor".to_vec()),
                1 => any::<u8>(),
            ],
            0..48,
        )
    }

    fn all_sources() -> Vec<ClientIpSource> {
        [
            "remote-addr",
            "cloudflare",
            "header:x-real-ip",
            "header:x-real-ip:10.0.0.0/8",
            "header:cloudfront-viewer-address",
            "rightmost-trusted-range:x-forwarded-for:10.0.0.0/8,fd00::/8",
            "rightmost-trusted-range:forwarded:10.0.0.0/8,fd00::/8",
            "rightmost-trusted-count:x-forwarded-for:1",
            "rightmost-trusted-count:forwarded:3",
            "rightmost-non-private:x-forwarded-for",
            "rightmost-non-private:forwarded",
            "leftmost-non-private:x-forwarded-for",
            "leftmost-non-private:forwarded",
            "cloudflare or header:x-real-ip:10.0.0.5 or rightmost-trusted-range:forwarded:10.0.0.0/8",
        ]
        .iter()
        .map(|text| text.parse().unwrap())
        .collect()
    }

    proptest! {
        #[test]
        fn any_header_bytes_never_panic_nor_blame_the_server(
            lines in proptest::collection::vec(header_bytes(), 0..4),
            peer in prop_oneof![
                Just(ip("10.0.0.1")),
                Just(ip("10.0.0.5")),
                Just(ip("fd00::1")),
                Just(ip("173.245.48.1")),
                Just(ip("::ffff:10.0.0.1")),
                any::<[u8; 4]>().prop_map(IpAddr::from),
            ],
        ) {
            let mut h = HeaderMap::new();
            for line in &lines {
                if let Ok(value) = HeaderValue::from_bytes(line) {
                    for name in ["x-forwarded-for", "forwarded", "x-real-ip", "cf-connecting-ip", "cloudfront-viewer-address"] {
                        h.append(name, value.clone());
                    }
                }
            }
            for source in all_sources() {
                match source.extract(&h, Some(peer)) {
                    Ok(client) => {
                        // Canonical, re-parses to itself, never unspecified.
                        prop_assert_eq!(parse_ip(&client.ip().to_string()), Some(client.ip()));
                        let value = client.to_header_value();
                        prop_assert_eq!(value.to_str().unwrap(), client.ip().to_string());
                    }
                    // With a peer, a failure is always the request's fault (400), never 500.
                    Err(err) => prop_assert!(!err.is_misconfiguration(), "{source}: {err}"),
                }
            }
        }

        #[test]
        fn chains_read_a_header_only_from_a_peer_its_source_trusts(
            real_ip in prop_oneof![Just("192.0.2.1"), Just("garbage"), Just("")],
            xff_line in prop_oneof![Just("198.51.100.1, 10.0.0.9"), Just("10.0.0.9"), Just("x")],
            a in prop_oneof![Just("10.0.0.0/8"), Just("192.168.0.0/16"), Just("10.0.0.5")],
            b in prop_oneof![Just("10.0.0.0/24"), Just("172.16.0.0/12"), Just("fd00::/8")],
            peer in prop_oneof![
                Just(ip("10.0.0.5")),
                Just(ip("10.0.1.1")),
                Just(ip("192.168.1.1")),
                Just(ip("172.16.0.1")),
                Just(ip("fd00::5")),
                Just(ip("8.8.8.8")),
            ],
        ) {
            let header_trust: IpRanges = a.parse().unwrap();
            let list_trust: IpRanges = b.parse().unwrap();
            let source = src(&format!(
                "header:x-real-ip:{a} or rightmost-trusted-range:x-forwarded-for:{b}"
            ));
            let h = headers(&[("x-real-ip", real_ip), ("x-forwarded-for", xff_line)]);
            if let Ok(client) = source.extract(&h, Some(peer)) {
                match client.origin() {
                    IpOrigin::Header(_) => prop_assert!(header_trust.contains(peer)),
                    IpOrigin::ListHop { .. } => {
                        prop_assert!(list_trust.contains(peer));
                        prop_assert!(!list_trust.contains(client.ip()));
                    }
                    IpOrigin::Peer => {
                        // Only when no source trusts the peer.
                        prop_assert!(!header_trust.contains(peer) && !list_trust.contains(peer));
                        prop_assert_eq!(client.ip(), peer);
                    }
                    IpOrigin::Other => prop_assert!(false, "unexpected origin"),
                }
            } else {
                prop_assert!(header_trust.contains(peer) || list_trust.contains(peer));
            }
        }
    }
}
