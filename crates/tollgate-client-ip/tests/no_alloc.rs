//! The common extraction path does not allocate: list headers are walked right to left over
//! the header bytes, and the result borrows nothing it would have to copy.
//!
//! One test in its own binary, so no other test thread allocates while the counter runs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::alloc::System;
use std::hint::black_box;
use std::net::IpAddr;

use http::{HeaderMap, HeaderValue};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use tollgate_client_ip::{ClientIpSource, IpRanges, ListHeader, parse_ip};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn extraction_does_not_allocate() {
    let mut headers = HeaderMap::new();
    headers.append(
        "x-forwarded-for",
        HeaderValue::from_static("6.6.6.6, 203.0.113.9:4711"),
    );
    headers.append(
        "x-forwarded-for",
        HeaderValue::from_static("10.0.0.3, 10.0.0.2"),
    );
    headers.append(
        "forwarded",
        HeaderValue::from_static(
            r#"for=6.6.6.6, for="[2001:db8:cafe::17]:4711";proto=https, for=10.0.0.2;by="10.0.0.1""#,
        ),
    );
    headers.append("cf-connecting-ip", HeaderValue::from_static("2001:db8::7"));
    headers.append("x-real-ip", HeaderValue::from_static("203.0.113.9"));

    let proxies: IpRanges = "10.0.0.0/8, fd00::/8".parse().unwrap();
    let cases: Vec<(ClientIpSource, IpAddr, &str)> = vec![
        (
            ClientIpSource::rightmost_trusted_range(ListHeader::XForwardedFor, proxies.clone()),
            ip("10.0.0.1"),
            "203.0.113.9",
        ),
        (
            ClientIpSource::rightmost_trusted_range(ListHeader::Forwarded, proxies.clone()),
            ip("::ffff:10.0.0.1"),
            "2001:db8:cafe::17",
        ),
        (
            "rightmost-trusted-count:x-forwarded-for:3".parse().unwrap(),
            ip("10.0.0.1"),
            "203.0.113.9",
        ),
        (
            "rightmost-trusted-count:forwarded:2".parse().unwrap(),
            ip("10.0.0.1"),
            "2001:db8:cafe::17",
        ),
        (
            ClientIpSource::rightmost_non_private(ListHeader::XForwardedFor),
            ip("10.0.0.1"),
            "203.0.113.9",
        ),
        (
            ClientIpSource::cloudflare(),
            ip("104.16.0.1"),
            "2001:db8::7",
        ),
        (
            "header:x-real-ip:10.0.0.0/8".parse().unwrap(),
            ip("10.0.0.1"),
            "203.0.113.9",
        ),
        // Spoofed header from an untrusted peer: the peer.
        (
            ClientIpSource::rightmost_trusted_range(ListHeader::XForwardedFor, proxies),
            ip("198.51.100.4"),
            "198.51.100.4",
        ),
        (
            "cloudflare or header:x-real-ip:10.0.0.0/8".parse().unwrap(),
            ip("10.0.0.1"),
            "203.0.113.9",
        ),
        (ClientIpSource::remote_addr(), ip("192.0.2.1"), "192.0.2.1"),
    ];
    // Warm up: the first clone of a header name parsed from configuration promotes its
    // bytes to a shared buffer once.
    for (source, peer, want) in &cases {
        assert_eq!(
            source.extract(&headers, Some(*peer)).unwrap().ip(),
            ip(want)
        );
    }

    let region = Region::new(GLOBAL);
    for _ in 0..100 {
        for (source, peer, _) in &cases {
            black_box(
                source
                    .extract(black_box(&headers), black_box(Some(*peer)))
                    .ok(),
            );
        }
        black_box(parse_ip(black_box("[2001:db8::1%eth0]:443")));
    }
    let stats = region.change();
    assert_eq!(stats.allocations, 0, "{stats:?}");
    assert_eq!(stats.reallocations, 0, "{stats:?}");
}
