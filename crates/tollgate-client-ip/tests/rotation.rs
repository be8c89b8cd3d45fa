//! Trusted proxies and allowlists swapped while the server runs, through `IpRangesHandle`,
//! over real sockets: a swap applies to the next request, and many clients resolving while
//! another task swaps see one version per request (no torn walk) and lose no request.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use axum::{Router, routing::get};
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tollgate_client_ip::{
    ClientIp, ClientIpSource, IpAllowlistLayer, IpRanges, IpRangesHandle, ListHeader,
    ResolveClientIpLayer,
};
use tower::ServiceBuilder;

async fn serve(proxies: IpRangesHandle, allowed: IpRangesHandle) -> SocketAddr {
    let source = ClientIpSource::rightmost_trusted_range(ListHeader::XForwardedFor, proxies);
    let app = Router::new()
        .route(
            "/ip",
            get(|ip: ClientIp| async move { ip.ip().to_string() }),
        )
        .layer(
            ServiceBuilder::new()
                .layer(ResolveClientIpLayer::new(source))
                .layer(IpAllowlistLayer::with_handle(allowed)),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    });
    addr
}

fn client() -> Client<HttpConnector, Empty<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

async fn get_ip(
    client: &Client<HttpConnector, Empty<Bytes>>,
    addr: SocketAddr,
    xff: &str,
) -> (StatusCode, String) {
    let request = Request::get(format!("http://{addr}/ip"))
        .header("x-forwarded-for", xff)
        .body(Empty::new())
        .unwrap();
    let response = client.request(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

fn ranges(text: &str) -> IpRanges {
    text.parse().unwrap()
}

/// A proxy added to the trusted ranges is believed from the next request on, and one
/// removed is no longer believed; an allowlist swap applies to the next request too.
#[tokio::test]
async fn swapped_proxies_and_allowlist_apply_to_the_next_request() {
    let proxies = IpRangesHandle::new(IpRanges::none());
    let allowed = IpRangesHandle::new(IpRanges::any());
    let addr = serve(proxies.clone(), allowed.clone()).await;
    let client = client();

    // The loopback peer is not a trusted proxy: it is the client.
    assert_eq!(
        get_ip(&client, addr, "203.0.113.9").await,
        (StatusCode::OK, "127.0.0.1".into())
    );
    proxies.store(IpRanges::loopback());
    assert_eq!(
        get_ip(&client, addr, "203.0.113.9").await,
        (StatusCode::OK, "203.0.113.9".into())
    );

    // Allowlist narrowed: the client 203.0.113.9 is refused on the very next request.
    allowed.store(ranges("198.51.100.0/24"));
    let (status, body) = get_ip(&client, addr, "203.0.113.9").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        body,
        r#"{"error":{"code":"ip_not_allowed","message":"client IP is not allowed"}}"#
    );
    assert_eq!(
        get_ip(&client, addr, "198.51.100.4").await,
        (StatusCode::OK, "198.51.100.4".into())
    );

    // The proxy removed again: its header is ignored, the peer is judged (and refused).
    proxies.store(IpRanges::none());
    assert_eq!(
        get_ip(&client, addr, "198.51.100.4").await.0,
        StatusCode::FORBIDDEN
    );
}

/// Many clients while another task swaps the trusted proxies between two versions. With
/// `x-forwarded-for: 198.51.100.7, 127.0.0.2` from the peer 127.0.0.1, version A (trusts
/// 127.0.0.1 and 127.0.0.2) answers 198.51.100.7 and version B (trusts nobody) answers the
/// peer, 127.0.0.1. A request that checked its peer under A and walked the header under B
/// would answer 127.0.0.2, which no version gives: never seen. Every request is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_resolvers_while_ranges_swap_see_one_version_per_request() {
    const TASKS: usize = 8;
    const REQUESTS: usize = 40;
    let version_a = ranges("127.0.0.1, 127.0.0.2");
    let proxies = IpRangesHandle::new(version_a.clone());
    let allowed = IpRangesHandle::new(IpRanges::any());
    let addr = serve(proxies.clone(), allowed.clone()).await;
    let done = Arc::new(AtomicBool::new(false));
    let swapper = {
        let done = Arc::clone(&done);
        tokio::spawn(async move {
            let mut swaps = 0usize;
            while !done.load(Ordering::Relaxed) {
                swaps += 1;
                proxies.store(if swaps.is_multiple_of(2) {
                    version_a.clone()
                } else {
                    IpRanges::none()
                });
                // The allowlist swaps too; both of its versions allow both answers.
                allowed.store(if swaps.is_multiple_of(3) {
                    IpRanges::any()
                } else {
                    IpRanges::loopback().union(&ranges("198.51.100.0/24"))
                });
                tokio::task::yield_now().await;
            }
            swaps
        })
    };
    let (forwarded, peer) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        let (forwarded, peer) = (Arc::clone(&forwarded), Arc::clone(&peer));
        tasks.push(tokio::spawn(async move {
            let client = client();
            for _ in 0..REQUESTS {
                let (status, body) = get_ip(&client, addr, "198.51.100.7, 127.0.0.2").await;
                assert_eq!(status, StatusCode::OK, "{body}");
                match body.as_str() {
                    "198.51.100.7" => forwarded.fetch_add(1, Ordering::Relaxed),
                    "127.0.0.1" => peer.fetch_add(1, Ordering::Relaxed),
                    other => panic!("torn: {other}"),
                };
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    done.store(true, Ordering::Relaxed);
    let swaps = swapper.await.unwrap();
    let (forwarded, peer) = (
        forwarded.load(Ordering::Relaxed),
        peer.load(Ordering::Relaxed),
    );
    assert_eq!(forwarded + peer, TASKS * REQUESTS, "a request was lost");
    assert!(
        forwarded > 0 && peer > 0,
        "forwarded {forwarded}, peer {peer}"
    );
    assert!(swaps > 10, "only {swaps} swaps");
}
