//! "A trusted proxy's address is never reported as the client": the attacks of the security
//! issue (a source that trusts the peer fails, and the peer was taken for the client), then a
//! property test of the guarantee over every source kind and chains, and a check that the
//! crate docs state exactly the guarantee these tests prove.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tollgate_client_ip::{
    ClientIp, ClientIpSource, ExtractError, ForwardUserIpLayer, IpAllowlistLayer, IpOrigin,
    IpRanges, ListHeader, MissingClientIp, PeerAddr, ResolveClientIpLayer,
};
use tower::{Layer, ServiceBuilder, ServiceExt, service_fn};

use common::{INVALID_CLIENT_IP, body_string, echo, headers, ip, request_from as request, src};

/// The trusted proxy (an internal nginx) in the issue.
const PROXY: &str = "10.0.0.5";
/// What the client's unterminated quote swallows: the proxy's own element on the same line.
const SWALLOWED: &str = r#"for=", for=203.0.113.9"#;

// ---- (a) a failing source that trusts the peer, then `remote-addr` ----------------------

#[test]
fn forwarded_garbage_before_the_proxys_entry_is_not_the_proxy() {
    let source = src("rightmost-trusted-range:forwarded:10.0.0.0/8 or remote-addr");
    let got = source.extract(&headers(&[("forwarded", SWALLOWED)]), Some(ip(PROXY)));
    assert_eq!(
        got,
        Err(ExtractError::InvalidHop {
            header: HeaderName::from_static("forwarded"),
            hop: 0
        }),
        "the trusted proxy {PROXY} was reported as the client"
    );
}

/// Header lines, as (name, value).
type Pairs = &'static [(&'static str, &'static str)];

/// Every source kind, failing on input the client controls while its peer is trusted,
/// followed by `remote-addr`: never the peer.
#[test]
fn every_source_kind_failing_from_a_trusted_peer_then_remote_addr_is_refused() {
    let cases: &[(&str, &str, Pairs)] = &[
        ("cloudflare", "173.245.48.1", &[]),
        ("cloudflare", "173.245.48.1", &[("cf-connecting-ip", "x")]),
        ("header:x-real-ip", PROXY, &[]),
        (
            "header:x-real-ip:10.0.0.0/8",
            PROXY,
            &[("x-real-ip", "1.2.3.4, 5.6.7.8")],
        ),
        (
            "header:cloudfront-viewer-address",
            PROXY,
            &[("cloudfront-viewer-address", "garbage")],
        ),
        (
            "rightmost-trusted-range:forwarded:10.0.0.0/8",
            PROXY,
            &[("forwarded", SWALLOWED)],
        ),
        (
            "rightmost-trusted-range:x-forwarded-for:10.0.0.0/8",
            PROXY,
            &[("x-forwarded-for", "unknown")],
        ),
        (
            "rightmost-trusted-range:x-forwarded-for:10.0.0.0/8",
            PROXY,
            &[("x-forwarded-for", "10.0.0.9")],
        ),
        (
            "rightmost-trusted-range:x-forwarded-for:10.0.0.0/8",
            PROXY,
            &[],
        ),
        (
            "rightmost-trusted-count:x-forwarded-for:2",
            PROXY,
            &[("x-forwarded-for", "203.0.113.9")],
        ),
        (
            "rightmost-trusted-count:forwarded:1",
            PROXY,
            &[("forwarded", SWALLOWED)],
        ),
        (
            "rightmost-non-private:x-forwarded-for",
            PROXY,
            &[("x-forwarded-for", "192.168.1.1")],
        ),
        (
            "rightmost-non-private:forwarded",
            PROXY,
            &[("forwarded", SWALLOWED)],
        ),
        (
            "leftmost-non-private:x-forwarded-for",
            PROXY,
            &[("x-forwarded-for", "_hidden")],
        ),
        (
            "leftmost-non-private:forwarded",
            PROXY,
            &[("forwarded", SWALLOWED)],
        ),
        // A longer chain: two sources trust the peer and both fail.
        (
            "cloudflare or header:x-real-ip:10.0.0.5 or rightmost-trusted-range:forwarded:10.0.0.0/8",
            PROXY,
            &[("x-real-ip", "garbage"), ("forwarded", SWALLOWED)],
        ),
    ];
    for (text, peer, pairs) in cases {
        let alone = src(text);
        let h = headers(pairs);
        let err = alone.extract(&h, Some(ip(peer))).unwrap_err();
        // `remote-addr` last, first, or in the middle: the same refusal.
        for chain in [
            alone.clone().or(ClientIpSource::remote_addr()),
            ClientIpSource::remote_addr().or(alone.clone()),
            alone
                .clone()
                .or(ClientIpSource::remote_addr())
                .or(alone.clone()),
        ] {
            assert_eq!(
                chain.extract(&h, Some(ip(peer))),
                Err(err.clone()),
                "`{chain}` from trusted {peer} with {pairs:?}"
            );
        }
    }
}

#[tokio::test]
async fn layer_refuses_with_400_instead_of_the_proxy() {
    for (layer, peer) in [
        (
            ResolveClientIpLayer::new(src(
                "rightmost-trusted-range:forwarded:10.0.0.0/8 or remote-addr",
            )),
            PROXY,
        ),
        (
            ResolveClientIpLayer::new(
                ClientIpSource::cloudflare().or(ClientIpSource::remote_addr()),
            ),
            "173.245.48.1",
        ),
    ] {
        let response = layer
            .layer(echo())
            .oneshot(request(peer, &[("forwarded", SWALLOWED)]))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{layer:?}");
        assert_eq!(body_string(response).await, INVALID_CLIENT_IP);
    }
}

/// The peer is still the client when no source trusts it, wherever `remote-addr` stands.
#[test]
fn an_untrusted_peer_is_still_the_client() {
    let h = headers(&[("forwarded", SWALLOWED), ("cf-connecting-ip", "6.6.6.6")]);
    for text in [
        "rightmost-trusted-range:forwarded:10.0.0.0/8 or remote-addr",
        "remote-addr or rightmost-trusted-range:forwarded:10.0.0.0/8",
        "cloudflare or remote-addr",
        "remote-addr",
    ] {
        let got = src(text).extract(&h, Some(ip("198.51.100.4"))).unwrap();
        assert_eq!(
            got,
            ClientIp::new(ip("198.51.100.4"), IpOrigin::Peer),
            "{text}"
        );
    }
}

// ---- (b) continue_on_failure + IpAllowlistLayer -----------------------------------------

#[tokio::test]
async fn continue_on_failure_does_not_let_the_proxy_pass_an_internal_allowlist() {
    for source in [
        "rightmost-trusted-range:forwarded:10.0.0.0/8",
        "rightmost-trusted-range:forwarded:10.0.0.0/8 or remote-addr",
    ] {
        let service = ServiceBuilder::new()
            .layer(ResolveClientIpLayer::new(src(source)).continue_on_failure())
            // Internal only.
            .layer(IpAllowlistLayer::new("10.0.0.0/8".parse().unwrap()))
            .service(echo());
        let response = service
            .oneshot(request(PROXY, &[("forwarded", SWALLOWED)]))
            .await
            .unwrap();
        let status = response.status();
        let body = body_string(response).await;
        assert_ne!(
            (status, body.as_str()),
            (StatusCode::OK, "none"),
            "`{source}`: passed the allowlist as the trusted proxy {PROXY}"
        );
        assert_ne!(
            (status, body.as_str()),
            (StatusCode::OK, PROXY),
            "`{source}`: passed the allowlist as the trusted proxy {PROXY}"
        );
        assert_eq!(
            (status, body.as_str()),
            (StatusCode::BAD_REQUEST, INVALID_CLIENT_IP),
            "`{source}`"
        );
    }
}

#[tokio::test]
async fn allowlist_still_judges_the_peer_when_no_client_ip_layer_ran() {
    let service = IpAllowlistLayer::new("10.0.0.0/8".parse().unwrap()).layer(echo());
    let response = service.oneshot(request(PROXY, &[])).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn continue_on_failure_with_missing_peer_stays_a_500_at_the_allowlist() {
    let service = ServiceBuilder::new()
        .layer(ResolveClientIpLayer::remote_addr().continue_on_failure())
        .layer(IpAllowlistLayer::new(IpRanges::any()))
        .service(echo());
    let response = service.oneshot(Request::new(())).await.unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
}

// ---- (c) ForwardUserIpLayer never sends the proxy's address ------------------------------

/// The inbound stack `layer` in front of a handler that calls a provider through
/// `ForwardUserIpLayer` (the client IP reaches it through the task-local scope only; without
/// feature `task-local`, through the `ClientIp` the handler copies into the outbound request).
/// Returns the inbound status and what the provider saw as `x-user-ip` (if it was called).
async fn inbound_then_outbound(
    layer: ResolveClientIpLayer,
    peer: &str,
) -> (StatusCode, Vec<String>) {
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let record = Arc::clone(&seen);
    let provider = ServiceBuilder::new()
        .layer(ForwardUserIpLayer::new())
        .service(service_fn(move |request: Request<()>| {
            let record = Arc::clone(&record);
            async move {
                let value = request.headers()["x-user-ip"].to_str().unwrap().to_owned();
                record.lock().unwrap().push(value);
                Ok::<_, Infallible>(Response::new(()))
            }
        }));
    let handler = service_fn(move |inbound: Request<()>| {
        let provider = provider.clone();
        // Without the scope (feature `task-local` off), the handler hands the inbound
        // `ClientIp`, if any, to the outbound request: the documented way without it.
        #[cfg(not(feature = "task-local"))]
        let outbound = {
            let mut outbound = Request::new(());
            if let Some(ip) = inbound.extensions().get::<ClientIp>() {
                outbound.extensions_mut().insert(ip.clone());
            }
            outbound
        };
        #[cfg(feature = "task-local")]
        let outbound = {
            drop(inbound);
            Request::new(())
        };
        async move {
            let status = match provider.oneshot(outbound).await {
                Ok(_) => StatusCode::OK,
                Err(err) => {
                    assert!(err.downcast_ref::<MissingClientIp>().is_some(), "{err}");
                    StatusCode::BAD_GATEWAY
                }
            };
            let mut response = Response::new(String::new());
            *response.status_mut() = status;
            Ok::<_, Infallible>(response)
        }
    });
    let response = layer
        .layer(handler)
        .oneshot(request(peer, &[("forwarded", SWALLOWED)]))
        .await
        .unwrap();
    let calls = seen.lock().unwrap().clone();
    (response.status(), calls)
}

#[tokio::test]
async fn forward_user_ip_never_sends_the_trusted_proxy() {
    let chain = "rightmost-trusted-range:forwarded:10.0.0.0/8 or remote-addr";
    let (status, calls) = inbound_then_outbound(ResolveClientIpLayer::new(src(chain)), PROXY).await;
    assert!(
        !calls.iter().any(|value| value == PROXY),
        "`{chain}`: x-user-ip {calls:?} is the trusted proxy"
    );
    assert_eq!((status, calls), (StatusCode::BAD_REQUEST, vec![]));

    // Continuing: the handler runs, the outbound call fails before anything is sent.
    for text in [chain, "rightmost-trusted-range:forwarded:10.0.0.0/8"] {
        let layer = ResolveClientIpLayer::new(src(text)).continue_on_failure();
        let (status, calls) = inbound_then_outbound(layer, PROXY).await;
        assert!(
            !calls.iter().any(|value| value == PROXY),
            "`{text}` continuing: x-user-ip {calls:?} is the trusted proxy"
        );
        assert_eq!((status, calls), (StatusCode::BAD_GATEWAY, vec![]), "{text}");
    }

    // A peer no source trusts is the client, and is sent.
    let (status, calls) =
        inbound_then_outbound(ResolveClientIpLayer::new(src(chain)), "198.51.100.4").await;
    assert_eq!(
        (status, calls),
        (StatusCode::OK, vec!["198.51.100.4".to_owned()])
    );
}

// ---- the same over real TCP ---------------------------------------------------------------

/// A plain hyper server on 127.0.0.1 (reachable from every loopback address) behind
/// `PeerAddr` → `ResolveClientIpLayer` → an allowlist of the internal network `127.0.0.0/8`
/// → a handler that calls `provider` through `ForwardUserIpLayer`. The trusted proxy is
/// `127.0.0.5`.
async fn start_server(layer: ResolveClientIpLayer, provider: SocketAddr) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let outbound = ServiceBuilder::new()
        .layer(ForwardUserIpLayer::new())
        .service(Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>());
    tokio::spawn(async move {
        loop {
            let (stream, peer) = listener.accept().await.unwrap();
            let outbound = outbound.clone();
            let service = ServiceBuilder::new()
                .map_request(move |mut request: Request<Incoming>| {
                    request.extensions_mut().insert(PeerAddr::new(peer));
                    request
                })
                .layer(layer.clone())
                .layer(IpAllowlistLayer::new("127.0.0.0/8".parse().unwrap()))
                .service(service_fn(move |inbound: Request<Incoming>| {
                    let outbound = outbound.clone();
                    #[allow(unused_mut)]
                    let mut call = Request::post(format!("http://{provider}/quote"))
                        .body(Full::new(Bytes::new()))
                        .unwrap();
                    // Without the scope, the handler hands the client IP on itself.
                    #[cfg(not(feature = "task-local"))]
                    if let Some(ip) = inbound.extensions().get::<ClientIp>() {
                        call.extensions_mut().insert(ip.clone());
                    }
                    drop(inbound);
                    async move {
                        let text = match outbound.oneshot(call).await {
                            Ok(response) => {
                                let body = response.into_body().collect().await.unwrap();
                                format!("sent {}", String::from_utf8_lossy(&body.to_bytes()))
                            }
                            Err(err) if err.downcast_ref::<MissingClientIp>().is_some() => {
                                "not sent".to_owned()
                            }
                            Err(err) => format!("error {err}"),
                        };
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(text))))
                    }
                }));
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
                    .await;
            });
        }
    });
    addr
}

/// A provider that answers with the `x-user-ip` it got.
async fn start_provider() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|request: Request<Incoming>| async move {
                    let value = request
                        .headers()
                        .get("x-user-ip")
                        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                        .unwrap_or_default();
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(value))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// Calls `server` from the loopback address `from` with a `Forwarded` line.
async fn call_from(from: &str, server: SocketAddr, forwarded: &str) -> (StatusCode, String) {
    let mut connector = HttpConnector::new();
    connector.set_local_address(Some(ip(from)));
    let client = Client::builder(TokioExecutor::new()).build::<_, Full<Bytes>>(connector);
    let request = Request::get(format!("http://{server}/"))
        .header("forwarded", forwarded)
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = client.request(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn real_tcp_the_trusted_proxy_is_never_the_client() {
    let provider = start_provider().await;
    let source = "rightmost-trusted-range:forwarded:127.0.0.5 or remote-addr";
    let rejecting = start_server(ResolveClientIpLayer::new(src(source)), provider).await;
    let continuing = start_server(
        ResolveClientIpLayer::new(src(source)).continue_on_failure(),
        provider,
    )
    .await;

    // The honest path: the proxy appended the client it saw.
    for server in [rejecting, continuing] {
        let got = call_from("127.0.0.5", server, "for=127.0.0.77").await;
        assert_eq!(got, (StatusCode::OK, "sent 127.0.0.77".to_owned()));
    }
    // The attack: the client's unterminated quote swallows the proxy's element.
    let forged = r#"for=", for=127.0.0.77"#;
    for server in [rejecting, continuing] {
        let (status, body) = call_from("127.0.0.5", server, forged).await;
        assert_ne!(
            body, "sent 127.0.0.5",
            "the trusted proxy was sent as x-user-ip"
        );
        assert_eq!(
            (status, body.as_str()),
            (StatusCode::BAD_REQUEST, INVALID_CLIENT_IP)
        );
    }
    // Straight from another internal host, no source trusts it: it is the client.
    let got = call_from("127.0.0.9", rejecting, forged).await;
    assert_eq!(got, (StatusCode::OK, "sent 127.0.0.9".to_owned()));
}

// ---- the guarantee, as the crate docs state it, and the property test of it -------------

/// The guarantee, word for word as the crate docs' "Security considerations" state it
/// (whitespace and the `//!` markers aside).
const GUARANTEE: &str = "The socket peer is taken for the client only when no source of the \
    configured chain trusts it as a proxy. Once a source trusts the peer, the client IP is \
    read from the headers that proxy forwarded, or there is none: `ResolveClientIpLayer` answers 400 \
    `invalid_client_ip`, and with `continue_on_failure` the request goes on without a \
    `ClientIp`, which `IpAllowlistLayer` refuses and `ForwardUserIpLayer` never sends. A \
    trusted proxy's own address is never reported as the client because it connected.";

fn squash(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn the_crate_docs_state_exactly_this_guarantee() {
    let lib = include_str!("../src/lib.rs");
    let docs: String = lib
        .lines()
        .filter_map(|line| line.strip_prefix("//!"))
        .collect::<Vec<_>>()
        .join("\n");
    let section = docs
        .split("\n # Security considerations\n")
        .nth(1)
        .expect("a `# Security considerations` heading in the crate docs");
    let section = section.split("\n # ").next().unwrap_or(section);
    assert!(
        squash(section).contains(&squash(GUARANTEE)),
        "the crate docs' Security considerations no longer state the guarantee this file tests:\n{}",
        squash(section)
    );
}

mod property {
    //! The oracle, for any header bytes and any chain of sources, with a known peer:
    //!
    //! 1. The answer is the peer ([`IpOrigin::Peer`]) exactly when no source trusts the peer
    //!    (then it is always `Ok(peer)`).
    //! 2. When some source trusts the peer, the answer is never [`IpOrigin::Peer`], and it
    //!    does not depend on the peer's address: a second peer that the same sources trust
    //!    gets the same answer (or the same error). So the peer's address can only come out
    //!    when a header names it, the "legitimately named" case, never because it connected.
    //! 3. A single-header or list source answers from a header only when it trusts the peer,
    //!    and a range-trusting list source never answers an address inside its ranges.
    //!
    //! Trust is computed here from the configuration, independently of the library.
    use proptest::prelude::*;

    use super::*;

    /// Who a source trusts, written out from its documentation.
    #[derive(Clone, Copy, Debug)]
    enum Trust {
        Nobody,
        Everyone,
        Ranges(&'static str),
    }

    impl Trust {
        fn trusts(self, peer: IpAddr) -> bool {
            match self {
                Self::Nobody => false,
                Self::Everyone => true,
                Self::Ranges(text) => text.parse::<IpRanges>().unwrap().contains(peer),
            }
        }
    }

    const PRIVATE: &str = "private";

    /// Every source kind (and the presets), with whom it trusts.
    const SOURCES: &[(&str, Trust)] = &[
        ("remote-addr", Trust::Nobody),
        ("cloudflare", Trust::Ranges("cloudflare")),
        ("header:x-real-ip", Trust::Everyone),
        ("header:x-real-ip:10.0.0.0/8", Trust::Ranges("10.0.0.0/8")),
        (
            "header:cf-connecting-ip:cloudflare,10.0.0.0/24",
            Trust::Ranges("cloudflare,10.0.0.0/24"),
        ),
        (
            "header:cloudfront-viewer-address:10.0.0.0/8",
            Trust::Ranges("10.0.0.0/8"),
        ),
        (
            "rightmost-trusted-range:x-forwarded-for:10.0.0.0/8,fd00::/8",
            Trust::Ranges("10.0.0.0/8,fd00::/8"),
        ),
        (
            "rightmost-trusted-range:forwarded:10.0.0.0/8,fd00::/8",
            Trust::Ranges("10.0.0.0/8,fd00::/8"),
        ),
        (
            "rightmost-trusted-range:x-forwarded-for:cloudflare",
            Trust::Ranges("cloudflare"),
        ),
        ("rightmost-trusted-count:x-forwarded-for:1", Trust::Everyone),
        ("rightmost-trusted-count:forwarded:2", Trust::Everyone),
        (
            "rightmost-non-private:x-forwarded-for",
            Trust::Ranges(PRIVATE),
        ),
        ("rightmost-non-private:forwarded", Trust::Ranges(PRIVATE)),
        (
            "leftmost-non-private:x-forwarded-for",
            Trust::Ranges(PRIVATE),
        ),
        ("leftmost-non-private:forwarded", Trust::Ranges(PRIVATE)),
    ];

    /// Pairs of peers that every source in [`SOURCES`] trusts alike.
    const PEERS: &[(&str, &str)] = &[
        ("10.0.0.5", "10.0.0.6"),         // an internal proxy
        ("::ffff:10.0.0.5", "10.0.0.7"),  // the same, IPv4-mapped
        ("fd00::5", "fd00::6"),           // an internal IPv6 proxy
        ("173.245.48.1", "173.245.48.2"), // Cloudflare
        ("2400:cb00::1", "2400:cb00::2"), // Cloudflare, IPv6
        ("192.168.1.1", "192.168.1.2"),   // private, trusted only by the non-private sources
        ("198.51.100.4", "198.51.100.5"), // the internet
    ];

    /// Address-like tokens, including the peers themselves and things that break parsers.
    const TOKENS: &[&str] = &[
        "10.0.0.5",
        "10.0.0.6",
        "10.0.0.9",
        "fd00::5",
        "173.245.48.1",
        "192.168.1.1",
        "198.51.100.4",
        "203.0.113.9",
        "2001:db8::1",
        "[2001:db8::1]:443",
        "203.0.113.9:80",
        "::ffff:203.0.113.9",
        "unknown",
        "_hidden",
        "",
        "0.0.0.0",
        "\"",
        "for=\"",
        "garbage",
    ];

    fn token_line() -> impl Strategy<Value = Vec<u8>> {
        (
            proptest::collection::vec(proptest::sample::select(TOKENS), 1..5),
            any::<bool>(),
        )
            .prop_map(|(tokens, forwarded)| {
                let line = if forwarded {
                    tokens
                        .iter()
                        .map(|t| format!("for=\"{t}\""))
                        .collect::<Vec<_>>()
                        .join(", ")
                } else {
                    tokens.join(", ")
                };
                line.into_bytes()
            })
    }

    /// Bytes biased towards the characters forwarding headers are made of.
    fn raw_line() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(
            prop_oneof![
                3 => proptest::sample::select(b"0123456789abcdef:.,;=\"[]%_ for".to_vec()),
                1 => any::<u8>(),
            ],
            0..40,
        )
    }

    const NAMES: &[&str] = &[
        "x-forwarded-for",
        "forwarded",
        "x-real-ip",
        "cf-connecting-ip",
        "cloudfront-viewer-address",
    ];

    fn header_map() -> impl Strategy<Value = HeaderMap> {
        proptest::collection::vec(
            (
                proptest::sample::select(NAMES),
                prop_oneof![token_line(), raw_line()],
            ),
            0..6,
        )
        .prop_map(|lines| {
            let mut map = HeaderMap::new();
            for (name, bytes) in lines {
                if let Ok(value) = HeaderValue::from_bytes(&bytes) {
                    map.append(HeaderName::from_static(name), value);
                }
            }
            map
        })
    }

    fn chain() -> impl Strategy<Value = Vec<usize>> {
        proptest::collection::vec(0..SOURCES.len(), 1..5)
    }

    fn build(chain: &[usize]) -> ClientIpSource {
        let mut sources = chain.iter().map(|&i| src(SOURCES[i].0));
        let first = sources.next().unwrap();
        sources.fold(first, ClientIpSource::or)
    }

    fn canonical(ip: IpAddr) -> IpAddr {
        match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            IpAddr::V4(_) => ip,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 2048,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn a_trusted_proxy_is_never_reported_as_the_client(
            h in header_map(),
            chain in chain(),
            pair in proptest::sample::select(PEERS),
        ) {
            let source = build(&chain);
            let (peer, twin) = (ip(pair.0), ip(pair.1));
            let trusted_by: Vec<&str> = chain
                .iter()
                .filter(|&&i| SOURCES[i].1.trusts(canonical(peer)))
                .map(|&i| SOURCES[i].0)
                .collect();
            // The twin really is trusted alike (guards the table above).
            for &i in &chain {
                prop_assert_eq!(
                    SOURCES[i].1.trusts(canonical(peer)),
                    SOURCES[i].1.trusts(canonical(twin)),
                );
            }
            let got = source.extract(&h, Some(peer));
            if trusted_by.is_empty() {
                // 1. No source trusts the peer: the peer is the client.
                prop_assert_eq!(got, Ok(ClientIp::new(peer, IpOrigin::Peer)), "`{}`", source);
                return Ok(());
            }
            // 2. Some source trusts the peer: never the peer as such, and the answer is the
            // headers' alone.
            if let Ok(client) = &got {
                prop_assert!(
                    !client.is_from_peer(),
                    "`{}` reported trusted peer {} (trusted by {:?}) as the client", source, peer, trusted_by
                );
                prop_assert!(client.header().is_some(), "`{}`: {:?}", source, client);
                // 3. A range-trusting list source alone never answers one of its proxies.
                if let ([i], IpOrigin::ListHop { .. }) = (chain.as_slice(), client.origin())
                    && let (true, Trust::Ranges(ranges)) =
                        (SOURCES[*i].0.starts_with("rightmost-"), SOURCES[*i].1)
                {
                    prop_assert!(!ranges.parse::<IpRanges>().unwrap().contains(client.ip()));
                }
            } else if let Err(err) = &got {
                prop_assert!(!err.is_misconfiguration(), "`{}`: {}", source, err);
            }
            let twin_got = source.extract(&h, Some(twin));
            prop_assert_eq!(
                &got, &twin_got,
                "`{}`: the answer follows the peer's address ({} vs {})", source, peer, twin
            );
        }
    }

    #[test]
    fn the_source_table_covers_every_kind() {
        let kinds: std::collections::BTreeSet<&str> = SOURCES
            .iter()
            .map(|(text, _)| text.split(':').next().unwrap())
            .collect();
        let want: std::collections::BTreeSet<&str> = [
            "remote-addr",
            "cloudflare",
            "header",
            "rightmost-trusted-range",
            "rightmost-trusted-count",
            "rightmost-non-private",
            "leftmost-non-private",
        ]
        .into();
        assert_eq!(kinds, want);
        // Both list headers for every list kind.
        for list in [ListHeader::XForwardedFor, ListHeader::Forwarded] {
            for kind in [
                "rightmost-trusted-range",
                "rightmost-trusted-count",
                "rightmost-non-private",
                "leftmost-non-private",
            ] {
                let prefix = format!("{kind}:{list}");
                assert!(
                    SOURCES.iter().any(|(t, _)| t.starts_with(&prefix)),
                    "{prefix}"
                );
            }
        }
    }
}
