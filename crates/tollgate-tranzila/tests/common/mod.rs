//! Support code shared by the integration tests: a nonce store, the vectors, loopback servers and
//! clients; [`verifying`]: what the `TranzilaVerifyLayer` tests share.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

pub mod verifying;

use std::net::SocketAddr;

use axum::Router;
use axum::extract::Request;
use axum::routing::post;
use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tollgate_core::{Clock, Upstream, VerifiedSignature};
use tollgate_replay::MemoryNonceStore;
use tollgate_tranzila::TranzilaVerifyLayer;

/// The store the tests verify with: tollgate-replay's memory store, reading "now" from the
/// same clock as the verifier (so that expiries and the window agree).
pub fn store(clock: impl Clock) -> MemoryNonceStore {
    MemoryNonceStore::new(10_000).with_clock(clock)
}

/// Serves `POST /v1/charge` behind `layer` on a free loopback port. The handler answers
/// `<key id> <nonce> <body>` from the `VerifiedSignature` the layer inserted.
pub async fn serve(layer: TranzilaVerifyLayer) -> SocketAddr {
    async fn charge(request: Request) -> String {
        let verified = request.extensions().get::<VerifiedSignature>().cloned();
        let body = axum::body::to_bytes(request.into_body(), 1 << 20)
            .await
            .unwrap();
        match verified {
            Some(v) => format!(
                "{} {} {}",
                v.key_id(),
                String::from_utf8_lossy(v.message_id().unwrap()),
                String::from_utf8_lossy(&body)
            ),
            None => "unverified".to_owned(),
        }
    }
    let app: Router = Router::new().route("/v1/charge", post(charge)).layer(layer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// The upstream a signing layer is pinned to for a loopback server at `addr`.
pub fn upstream(addr: SocketAddr) -> Upstream {
    Upstream::parse(&format!("http://{addr}")).unwrap()
}

/// A plain `hyper_util` client.
pub fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// The body as text.
pub async fn text(
    body: impl hyper::body::Body<Data = Bytes, Error = impl std::fmt::Debug>,
) -> String {
    use http_body_util::BodyExt;
    String::from_utf8(body.collect().await.unwrap().to_bytes().to_vec()).unwrap()
}
