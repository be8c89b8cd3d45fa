//! The inbound counterpart on a real hyper server: client-supplied copies of headers the
//! backend derives are gone before the handler runs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use common::client_http1;
use http::{HeaderName, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tollgate_headers::InboundHygieneLayer;
use tower::{ServiceBuilder, ServiceExt, service_fn};

/// A hyper server whose handler answers the sorted names of the headers it sees. The peer
/// address goes into the request's extensions, where `InboundHygieneLayer` looks by default.
async fn serve(hygiene: InboundHygieneLayer) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = ServiceBuilder::new().layer(hygiene).service(service_fn(
        |request: Request<Incoming>| async move {
            let mut names: Vec<_> = request.headers().keys().map(HeaderName::as_str).collect();
            names.sort_unstable();
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(names.join(",")))))
        },
    ));
    tokio::spawn(async move {
        loop {
            let Ok((stream, peer)) = listener.accept().await else {
                return;
            };
            let app = app.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
                    request.extensions_mut().insert(peer);
                    app.clone().oneshot(request)
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

async fn names_seen(addr: SocketAddr) -> String {
    let request = Request::get(format!("http://{addr}/"))
        .header("x-user-ip", "6.6.6.6")
        .header("x-api-key", "guessed")
        .header("access-token", "guessed")
        .header("x-forwarded-for", "6.6.6.6")
        .header("x-forwarded-host", "evil.example")
        .header("forwarded", "for=6.6.6.6")
        .header("x-real-ip", "6.6.6.6")
        .header("accept", "*/*")
        .body(Full::<Bytes>::default())
        .unwrap();
    let response = client_http1().request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(body.to_vec()).unwrap()
}

#[tokio::test]
async fn untrusted_peer_loses_derived_and_forwarding_headers() {
    let addr = serve(InboundHygieneLayer::backend_derived()).await;
    assert_eq!(names_seen(addr).await, "accept,host");
}

#[tokio::test]
async fn trusted_peer_keeps_forwarding_headers_but_never_derived_ones() {
    let addr = serve(
        InboundHygieneLayer::backend_derived()
            .trust_peers(|peer: SocketAddr| peer.ip().is_loopback()),
    )
    .await;
    assert_eq!(
        names_seen(addr).await,
        "accept,forwarded,host,x-forwarded-for,x-forwarded-host,x-real-ip"
    );
}

#[tokio::test]
async fn trust_check_that_rejects_loopback_strips_again() {
    let addr = serve(
        InboundHygieneLayer::backend_derived()
            .trust_peers(|peer: SocketAddr| peer.ip().to_string() == "10.0.0.5"),
    )
    .await;
    assert_eq!(names_seen(addr).await, "accept,host");
}

#[tokio::test]
async fn configurable_lists() {
    let addr = serve(
        InboundHygieneLayer::backend_derived()
            .allow(HeaderName::from_static("x-real-ip"))
            .strip(HeaderName::from_static("accept"))
            .peer_addr(|_| None)
            .trust_peers(|_| true),
    )
    .await;
    // No peer address found: untrusted, so forwarding headers go; x-real-ip is allowed.
    assert_eq!(names_seen(addr).await, "host,x-real-ip");
}
