//! `SetPeerAddrLayer` in front of `ResolveClientIpLayer`: a loopback test coming "from"
//! Cloudflare, or from anyone else.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::convert::Infallible;

use http::{Request, Response};
use tollgate_client_ip::{
    ClientIp, ClientIpSource, PeerAddr, ResolveClientIpLayer, SetPeerAddrLayer,
};
use tower::{ServiceBuilder, ServiceExt, service_fn};

async fn client_ip(peer: &str, request: Request<()>) -> Option<String> {
    ServiceBuilder::new()
        .layer(SetPeerAddrLayer::new(peer.parse().unwrap()))
        .layer(ResolveClientIpLayer::new(ClientIpSource::cloudflare()))
        .service(service_fn(|request: Request<()>| async move {
            let mut response = Response::new(());
            *response.extensions_mut() = request.extensions().clone();
            Ok::<_, Infallible>(response)
        }))
        .oneshot(request)
        .await
        .unwrap()
        .extensions()
        .get::<ClientIp>()
        .map(ToString::to_string)
}

fn with_cf_header() -> Request<()> {
    Request::get("/")
        .header("cf-connecting-ip", "203.0.113.7")
        .body(())
        .unwrap()
}

#[tokio::test]
async fn cloudflare_peer_gets_the_end_users_ip() {
    let ip = client_ip("173.245.48.1:443", with_cf_header()).await;
    assert_eq!(ip.as_deref(), Some("203.0.113.7"));
    let ip = client_ip("[2400:cb00::1]:443", with_cf_header()).await;
    assert_eq!(ip.as_deref(), Some("203.0.113.7"));
}

#[tokio::test]
async fn other_peer_is_the_client() {
    let ip = client_ip("198.51.100.9:5000", with_cf_header()).await;
    assert_eq!(ip.as_deref(), Some("198.51.100.9"));
}

#[tokio::test]
async fn replaces_a_peer_already_there() {
    let mut request = with_cf_header();
    request
        .extensions_mut()
        .insert(PeerAddr::new("173.245.48.1:443".parse().unwrap()));
    let ip = client_ip("198.51.100.9:5000", request).await;
    assert_eq!(ip.as_deref(), Some("198.51.100.9"));
}
