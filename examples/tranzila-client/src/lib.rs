//! A `hyper_util` client calling a Tranzila-style API through tollgate's
//! `TranzilaSigningLayer`, and a mock Tranzila endpoint that verifies every call with
//! `TranzilaVerifyLayer` and the in-memory nonce store.
//!
//! Tranzila authenticates each call with an app key, the request time, an 80-hex nonce and
//! `hex(HMAC-SHA256(message = app key, key = secret + time + nonce))`. The secret stays on the
//! server; the signing layer adds the four headers to every outbound request with a fresh
//! nonce, and the verifier refuses a wrong token, a stale time and a nonce it has seen. The
//! token is a bearer credential, so the client is pinned to one upstream (the mock here,
//! `Upstream::tranzila()` in production): a request to any other scheme, host or port fails
//! before a token is made or a connection opened.
//!
//! ```no_run
//! # async fn run() -> Result<(), tollgate::core::BoxError> {
//! use std::sync::Arc;
//! use tollgate::core::{Secret, SystemClock};
//! use tollgate::tranzila::TranzilaCredentials;
//!
//! let credentials = TranzilaCredentials::new("demo-app-key", Secret::from_string("demo-secret"));
//! let mock = tranzila_client::mock::MockTranzila::new(credentials.clone(), Arc::new(SystemClock));
//! let addr = mock.spawn("127.0.0.1:0".parse()?).await?;
//! let base_url = format!("http://{addr}");
//! let upstream = tranzila_client::upstream_of(&base_url)?;
//! let client = tranzila_client::signing_client(credentials, Arc::new(SystemClock), upstream)?;
//! let reply = tranzila_client::create_transaction(&client, &base_url).await?;
//! assert_eq!(reply.status(), 200);
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

pub mod mock;

use std::net::SocketAddr;

use bytes::Bytes;
use http::{Request, Response, header};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tollgate::core::{BoxError, Secret, SharedClock, Upstream};
use tollgate::tranzila::{TranzilaCredentials, TranzilaSigning, TranzilaSigningLayer};
use tower::{Layer, ServiceExt};

/// The path of the mock's (and Tranzila's) credit card transaction API.
pub const CREATE_TRANSACTION_PATH: &str = "/v1/transaction/credit_card/create";

/// Settings, from the environment with loopback defaults.
#[derive(Debug, Clone)]
pub struct Config {
    /// `TRANZILA_API_URL`: the API base URL; unset means "start the mock and call it".
    pub api_url: Option<String>,
    /// `TRANZILA_MOCK_ADDR`: where the mock listens, default `127.0.0.1:8090`.
    pub mock_addr: SocketAddr,
    /// `TRANZILA_APP_KEY` and `TRANZILA_SECRET`, default `demo-app-key` / `demo-secret`.
    pub credentials: TranzilaCredentials,
}

impl Config {
    /// Reads the environment.
    pub fn from_env() -> Result<Self, BoxError> {
        let var =
            |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_owned());
        Ok(Self {
            api_url: std::env::var("TRANZILA_API_URL").ok(),
            mock_addr: var("TRANZILA_MOCK_ADDR", "127.0.0.1:8090").parse()?,
            credentials: TranzilaCredentials::new(
                var("TRANZILA_APP_KEY", "demo-app-key"),
                Secret::from_string(var("TRANZILA_SECRET", "demo-secret")),
            ),
        })
    }
}

/// A plain `hyper_util` client (HTTP/1 over TCP).
pub type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// The signed client: every request gets the four Tranzila headers.
pub type SigningClient = TranzilaSigning<HttpClient>;

/// A `hyper_util` client wrapped in the signing layer, reading time from `clock`, signing
/// requests to `upstream` only (every other target is refused unsent).
/// (Over the internet, build the client with an HTTPS connector: Tranzila is HTTPS-only.)
pub fn signing_client(
    credentials: TranzilaCredentials,
    clock: SharedClock,
    upstream: Upstream,
) -> Result<SigningClient, BoxError> {
    let client = Client::builder(TokioExecutor::new()).build(HttpConnector::new());
    let layer = TranzilaSigningLayer::new(credentials, upstream)?.clock(clock);
    Ok(layer.layer(client))
}

/// The upstream (scheme, host and port) of an API base URL such as `https://api.tranzila.com`
/// or `http://127.0.0.1:8090/prefix`: the one place the signed client may send its token.
/// A base URL with user info is refused (and the error does not repeat it).
pub fn upstream_of(base_url: &str) -> Result<Upstream, BoxError> {
    let uri: http::Uri = base_url.parse()?;
    match (uri.scheme_str(), uri.authority()) {
        (Some(scheme), Some(authority)) => Ok(Upstream::parse(&format!("{scheme}://{authority}"))?),
        _ => Err("the API base URL needs a scheme and a host".into()),
    }
}

/// Calls `POST <base>/v1/transaction/credit_card/create` with a small JSON body through
/// `client` and reads the whole response.
pub async fn create_transaction(
    client: &SigningClient,
    base_url: &str,
) -> Result<Response<Bytes>, BoxError> {
    let request = Request::post(format!("{base_url}{CREATE_TRANSACTION_PATH}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from_static(
            br#"{"terminal_name":"demo","txn_type":"debit","sum":10.5,"currency_code":"ILS"}"#,
        )))?;
    let response = client.clone().oneshot(request).await?;
    let (parts, body) = response.into_parts();
    let body = body.collect().await?.to_bytes();
    Ok(Response::from_parts(parts, body))
}
