//! `X-Forwarded-For`, `Forwarded` and single-IP headers, `parse_ip`, and the `ClientIpSource`
//! and `IpRanges` configuration grammars (tollgate-client-ip).
//!
//! Input lines: 1. a source (`ClientIpSource` grammar, also tried as an `IpRanges` list),
//! 2. the socket peer (`ip` or `ip:port`, anything else: no peer), then `name: value`
//! headers. Every line is also fed to `parse_ip`.
//!
//! Oracles:
//! - `parse_ip` equals the standard library wherever that parses the text (`Ipv4Addr`,
//!   `IpAddr`, `SocketAddr`), canonical (IPv4-mapped folded, never unspecified), and
//!   without `:`/`[`/spaces it is exactly `Ipv4Addr::from_str` (the byte-level fast path);
//!   a result prints and parses back to itself.
//! - `IpRanges`: display → parse gives the same set; `contains` (precomputed masks) equals
//!   `ipnet`'s `contains` over the listed networks for every candidate address.
//! - `ClientIpSource`: display → parse → display is stable, and both sources extract the same
//!   result from the fuzzed request.
//! - Extraction (each of a fixed set of sources, and the fuzzed one): an extracted IP is the
//!   peer or an address written in one of the request's headers (per an independent
//!   reference parser), never unspecified, canonical; an IP from the peer only if the peer
//!   is set; a header origin names a header present in the request.
//! - `ResolveClientIpLayer`: 200 with exactly the `ClientIp` that `extract` returns, or the
//!   documented 400 `invalid_client_ip` / 500 `client_ip_misconfigured` with a JSON body.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::OnceLock;

use http::{HeaderMap, Request, Response, StatusCode};
use libfuzzer_sys::fuzz_target;
use tollgate_client_ip::{
    ClientIp, ClientIpSource, IpOrigin, IpRanges, PeerAddr, ResolveClientIpLayer, parse_ip,
};
use tollgate_fuzz::{
    assert_json_refusal, block_on, body_bytes, headers, lines, service_fn as tower_service_fn, text,
};
use tower_layer::Layer;
use tower_service::Service;

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

fn usable(ip: IpAddr) -> Option<IpAddr> {
    let ip = canonical(ip);
    (!ip.is_unspecified()).then_some(ip)
}

/// Checks `parse_ip` on one text against the standard library.
fn check_parse_ip(s: &str) {
    let got = parse_ip(s);
    if let Some(ip) = got {
        assert_eq!(ip, canonical(ip), "parse_ip({s:?}) is not canonical");
        assert!(!ip.is_unspecified(), "parse_ip({s:?}) is unspecified");
        assert_eq!(parse_ip(&ip.to_string()), Some(ip), "round trip of {ip}");
    }
    // The fast path: no colon, bracket or whitespace leaves only dotted-quad IPv4, exactly
    // as the standard library reads it.
    if !s.bytes().any(|b| matches!(b, b':' | b'[' | b' ' | b'\t')) {
        let std = s.parse::<Ipv4Addr>().ok().map(IpAddr::V4).and_then(usable);
        assert_eq!(got, std, "parse_ip({s:?}) differs from Ipv4Addr::from_str");
    }
    let trimmed = s.trim_matches([' ', '\t']);
    if let Ok(ip) = trimmed.parse::<IpAddr>() {
        assert_eq!(
            got,
            usable(ip),
            "parse_ip({s:?}) differs from IpAddr::from_str"
        );
    }
    if let Ok(addr) = trimmed.parse::<SocketAddr>() {
        assert_eq!(
            got,
            usable(addr.ip()),
            "parse_ip({s:?}) differs from SocketAddr::from_str"
        );
    }
}

/// Every address a header value could name, by an independent reading: the whole value (a
/// single-IP header such as `x-real-ip` is not split, and its zone may hold `;` or `,`), and
/// elements split at `,` and `;`, an optional `for=` and quotes removed, then the address with
/// its optional port, brackets and zone read by the standard library.
fn candidates(headers: &HeaderMap, out: &mut Vec<IpAddr>) {
    for value in headers.values() {
        let value = String::from_utf8_lossy(value.as_bytes());
        reference_node(value.trim_matches([' ', '\t']), out);
        for piece in value.split([',', ';']) {
            let piece = piece.trim_matches([' ', '\t']);
            reference_node(piece, out);
            // A `Forwarded` pair: `for = value`, the value maybe quoted, each part trimmed.
            if let Some((name, value)) = piece.split_once('=')
                && name.trim_matches([' ', '\t']).eq_ignore_ascii_case("for")
            {
                let value = value.trim_matches([' ', '\t']);
                let value = value
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .unwrap_or(value);
                reference_node(value.trim_matches([' ', '\t']), out);
            }
        }
    }
}

fn reference_node(piece: &str, out: &mut Vec<IpAddr>) {
    let v6 = |s: &str| s.split('%').next().and_then(|s| s.parse::<Ipv6Addr>().ok());
    if let Ok(ip) = piece.parse::<IpAddr>() {
        out.push(ip);
    }
    if let Some(ip) = v6(piece) {
        out.push(IpAddr::V6(ip));
    }
    if let Some(rest) = piece.strip_prefix('[')
        && let Some((inner, _)) = rest.split_once(']')
    {
        if let Some(ip) = v6(inner) {
            out.push(IpAddr::V6(ip));
        }
        if let Ok(ip) = inner.parse::<Ipv4Addr>() {
            out.push(IpAddr::V4(ip));
        }
    }
    if let Some((host, _port)) = piece.rsplit_once(':') {
        if let Ok(ip) = host.parse::<Ipv4Addr>() {
            out.push(IpAddr::V4(ip));
        }
        if let Some(ip) = v6(host) {
            out.push(IpAddr::V6(ip));
        }
    }
}

fn fixed_sources() -> &'static [ClientIpSource] {
    static SOURCES: OnceLock<Vec<ClientIpSource>> = OnceLock::new();
    SOURCES.get_or_init(|| {
        [
            "remote-addr",
            "cloudflare",
            "header:x-real-ip:10.0.0.0/8,127.0.0.1",
            "header:cloudfront-viewer-address:0.0.0.0/0,::/0",
            "rightmost-trusted-range:x-forwarded-for:10.0.0.0/8,2001:db8::/32",
            "rightmost-trusted-range:forwarded:private,loopback",
            // count 1 on X-Forwarded-For has a fast path of its own (the last element read
            // directly), count 2 takes the general walk.
            "rightmost-trusted-count:x-forwarded-for:1",
            "rightmost-trusted-count:x-forwarded-for:2",
            "rightmost-trusted-count:forwarded:1",
            "rightmost-non-private:x-forwarded-for",
            "rightmost-non-private:forwarded",
            "leftmost-non-private:x-forwarded-for",
            "leftmost-non-private:forwarded",
            "cloudflare or header:x-real-ip:10.0.0.5 or rightmost-trusted-range:forwarded:10.0.0.0/8",
        ]
        .iter()
        .map(|s| s.parse().expect("a fixed source parses"))
        .collect()
    })
}

fn check_extract(
    source: &ClientIpSource,
    headers: &HeaderMap,
    peer: Option<IpAddr>,
    allowed: &[IpAddr],
) -> Result<ClientIp, tollgate_client_ip::ExtractError> {
    let result = source.extract(headers, peer);
    if let Ok(ip) = &result {
        let addr = ip.ip();
        assert!(!addr.is_unspecified(), "{source}: unspecified {addr}");
        assert_eq!(addr, canonical(addr), "{source}: not canonical");
        match ip.origin() {
            IpOrigin::Peer => assert_eq!(
                peer.and_then(usable),
                Some(addr),
                "{source}: the client is said to be the peer but is not"
            ),
            IpOrigin::Header(name) | IpOrigin::ListHop { header: name, .. } => {
                assert!(
                    headers.contains_key(name),
                    "{source}: {name} is not in the request"
                );
                assert!(
                    allowed.contains(&addr),
                    "{source}: {addr} from {name} appears nowhere in the request"
                );
            }
            IpOrigin::Other => panic!("{source}: IpOrigin::Other from extract"),
            _ => {}
        }
    }
    assert_eq!(source.extract_opt(headers, peer), result.clone().ok());
    result
}

fn check_layer(
    source: &ClientIpSource,
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
    expected: &Result<ClientIp, tollgate_client_ip::ExtractError>,
) {
    let layer = ResolveClientIpLayer::new(source.clone()).task_local(false);
    let mut service = layer.layer(tower_service_fn(|request: Request<()>| {
        let mut response = Response::new(String::new());
        if let Some(ip) = request.extensions().get::<ClientIp>() {
            response.extensions_mut().insert(ip.clone());
        }
        response
    }));
    let mut request = Request::new(());
    *request.headers_mut() = headers.clone();
    if let Some(peer) = peer {
        request.extensions_mut().insert(PeerAddr::new(peer));
    }
    let response = block_on(service.call(request)).unwrap_or_else(|never| match never {});
    match expected {
        Ok(ip) => {
            assert_eq!(response.status(), StatusCode::OK, "{source}");
            assert_eq!(
                response.extensions().get::<ClientIp>(),
                Some(ip),
                "{source}"
            );
        }
        Err(err) => {
            let (parts, body) = body_bytes(response);
            let want = if err.is_misconfiguration() {
                (StatusCode::INTERNAL_SERVER_ERROR, "client_ip_misconfigured")
            } else {
                (StatusCode::BAD_REQUEST, "invalid_client_ip")
            };
            assert_eq!(parts.status, want.0, "{source}: {err}");
            assert_eq!(assert_json_refusal(&body, &[want.1]), want.1);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let lines = lines(data);
    for line in &lines {
        if let Ok(s) = std::str::from_utf8(line) {
            check_parse_ip(s);
        }
    }
    let spec = text(lines.first().copied().unwrap_or_default());
    let peer_text = text(lines.get(1).copied().unwrap_or_default());
    let peer_socket = peer_text.parse::<SocketAddr>().ok().or_else(|| {
        peer_text
            .parse::<IpAddr>()
            .ok()
            .map(|ip| SocketAddr::new(ip, 443))
    });
    let peer = peer_socket.map(|addr| addr.ip());
    let headers = headers(lines.iter().skip(2).copied());

    let mut allowed = Vec::new();
    candidates(&headers, &mut allowed);
    let allowed: Vec<IpAddr> = allowed.into_iter().filter_map(usable).collect();

    // The range grammar, on the whole first line.
    if let Ok(ranges) = spec.parse::<IpRanges>() {
        let shown = ranges.to_string();
        let again: IpRanges = shown
            .parse()
            .unwrap_or_else(|err| panic!("{spec:?} displays as {shown:?}, which fails: {err}"));
        assert_eq!(again, ranges, "{spec:?} → {shown:?} is another set");
        for ip in allowed.iter().copied().chain(peer) {
            let by_ipnet = ranges.iter().any(|net| net.contains(&canonical(ip)));
            assert_eq!(ranges.contains(ip), by_ipnet, "{shown}.contains({ip})");
        }
    }

    // The source grammar, then extraction with it.
    if let Ok(source) = spec.parse::<ClientIpSource>() {
        let shown = source.to_string();
        let again: ClientIpSource = shown
            .parse()
            .unwrap_or_else(|err| panic!("{spec:?} displays as {shown:?}, which fails: {err}"));
        assert_eq!(again.to_string(), shown, "display is not a fixed point");
        let first = check_extract(&source, &headers, peer, &allowed);
        let second = check_extract(&again, &headers, peer, &allowed);
        assert_eq!(
            first, second,
            "{spec:?} and its display {shown:?} extract differently"
        );
        check_layer(&source, &headers, peer_socket, &first);
    }

    for source in fixed_sources() {
        let result = check_extract(source, &headers, peer, &allowed);
        check_layer(source, &headers, peer_socket, &result);
    }
});
