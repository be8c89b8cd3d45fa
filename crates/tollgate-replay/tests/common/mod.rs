//! Helpers shared by this crate's integration tests: refusal bodies, Tranzila-shaped requests,
//! a loopback server behind a guard, and the Redis commands the Redis tests inspect with.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::net::SocketAddr;

use axum::Router;
use axum::routing::post;
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use redis::aio::MultiplexedConnection;
use tollgate_replay::ReplayGuardLayer;
use tollgate_test_support::RedisServer;

/// The JSON body of a refusal.
pub fn json(code: &str, message: &str) -> String {
    format!(r#"{{"error":{{"code":"{code}","message":"{message}"}}}}"#)
}

/// An 80-hex-digit nonce, distinct for each `n`.
pub fn nonce(n: u64) -> String {
    format!("{n:080x}")
}

/// A request with the three headers `ReplayGuardLayer::tranzila` reads (app key
/// `pub_app_key_demo`).
pub fn tranzila_request(url: &str, time: &str, nonce: &str) -> Request<Full<Bytes>> {
    Request::post(url)
        .header("x-tranzila-api-app-key", "pub_app_key_demo")
        .header("x-tranzila-api-request-time", time)
        .header("x-tranzila-api-nonce", nonce)
        .body(Full::new(Bytes::new()))
        .unwrap()
}

pub type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// A plain `hyper_util` client.
pub fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// One instance of a service: an axum server answering `POST /api` with `accepted` behind
/// `layer`, on a free loopback port.
pub async fn serve(layer: ReplayGuardLayer) -> SocketAddr {
    let app = Router::new()
        .route("/api", post(|| async { "accepted" }))
        .layer(layer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// Sends a Tranzila-shaped request stamped `time` with `nonce` to the server at `addr`; the
/// status and the body.
pub async fn call(
    client: &HttpClient,
    addr: SocketAddr,
    time: u64,
    nonce: &str,
) -> (StatusCode, String) {
    let request = tranzila_request(&format!("http://{addr}/api"), &time.to_string(), nonce);
    let response = client.request(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

/// An admin connection to the test's Redis.
pub async fn connection(redis: &RedisServer) -> MultiplexedConnection {
    let client = redis::Client::open(redis.url()).unwrap();
    client.get_multiplexed_async_connection().await.unwrap()
}

/// `CONFIG SET name value`.
pub async fn config_set(admin: &mut MultiplexedConnection, name: &str, value: &str) {
    let _: String = redis::cmd("CONFIG")
        .arg("SET")
        .arg(name)
        .arg(value)
        .query_async(admin)
        .await
        .unwrap();
}

/// Whether `key` exists.
pub async fn exists(admin: &mut MultiplexedConnection, key: &str) -> bool {
    let n: i64 = redis::cmd("EXISTS")
        .arg(key)
        .query_async(admin)
        .await
        .unwrap();
    n == 1
}

/// Waits up to 2 s for `key` to be gone (a refused or timed-out claim is undone in the
/// background); whether it went.
pub async fn gone(admin: &mut MultiplexedConnection, key: &str) -> bool {
    for _ in 0..100 {
        if !exists(admin, key).await {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    false
}

/// The remaining TTL of `key` in milliseconds (`-2` when it is gone).
pub async fn pttl(admin: &mut MultiplexedConnection, key: &str) -> i64 {
    redis::cmd("PTTL")
        .arg(key)
        .query_async(admin)
        .await
        .unwrap()
}
