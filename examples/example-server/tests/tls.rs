//! The accept loop over TLS, on real sockets: a client trusting the local CA is served (with
//! `ConnectInfo` and the HTTPS marker), a client that stalls its handshake does not stall the
//! next one, and a client that does not trust the CA gets no answer.
#![allow(clippy::expect_used, clippy::panic, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{ConnectInfo, Extension};
use axum::routing::get;
use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use tollgate::https::{ConnectError, HttpsConnection, HttpsConnector, TlsConfig};

async fn spawn() -> SocketAddr {
    let app = Router::new().route(
        "/who",
        get(
            |ConnectInfo(peer): ConnectInfo<SocketAddr>,
             Extension(HttpsConnection): Extension<HttpsConnection>| async move {
                format!("tls from {}", peer.ip())
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(example_server::tls::serve_tls(
        listener,
        app,
        example_server::Limits::default(),
    ));
    addr
}

async fn get_who(
    addr: SocketAddr,
    tls: &TlsConfig,
) -> Result<String, hyper_util::client::legacy::Error> {
    let client = HttpsConnector::new(tls).unwrap().client::<Full<Bytes>>();
    let request = Request::get(format!("{}/who", example_server::tls::https_url(addr)))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = client.request(request).await?;
    assert_eq!(response.status(), 200);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Ok(String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_trusting_the_local_ca_is_served_with_peer_and_https_marker() {
    let addr = spawn().await;
    let tls = example_server::tls::client_tls().unwrap();
    assert_eq!(get_who(addr, &tls).await.unwrap(), "tls from 127.0.0.1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_trust_the_local_ca_refuses_the_certificate() {
    let addr = spawn().await;
    let error = get_who(addr, &TlsConfig::new()).await.unwrap_err();
    let found = ConnectError::find(&error).expect("a ConnectError");
    assert!(found.is_certificate(), "{found}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_handshake_does_not_stall_the_next_client() {
    let addr = spawn().await;
    // Connects and sends nothing: its handshake never starts.
    let _stalled = tokio::net::TcpStream::connect(addr).await.unwrap();
    let tls = example_server::tls::client_tls().unwrap();
    let started = Instant::now();
    let answer = tokio::time::timeout(Duration::from_secs(5), get_who(addr, &tls))
        .await
        .expect("the second client was served while the first stalls");
    assert_eq!(answer.unwrap(), "tls from 127.0.0.1");
    assert!(started.elapsed() < Duration::from_secs(5));
}
