//! tollgate's inbound stack on a plain hyper 1 server, without axum: the layers are tower
//! middleware, so any server that runs a tower `Service` can use them.
//!
//! `GET /api/whoami` and `POST /api/whoami` answer `{"clientIp":"..."}` behind the origin
//! allowlist, the client-IP layer (the socket peer, inserted per connection as
//! [`PeerAddr`]) and an IP allowlist.
//!
//! ```sh
//! cargo run -p hyper-only
//! curl -i http://127.0.0.1:3003/api/whoami -H 'origin: http://localhost:5173'
//! # 200 {"clientIp":"127.0.0.1"}
//! curl -i http://127.0.0.1:3003/api/whoami -H 'origin: https://evil.example'
//! # 403 {"error":{"code":"origin_not_allowed",...}}
//! curl -i --interface 127.0.0.2 http://127.0.0.1:3003/api/whoami
//! # 403 {"error":{"code":"ip_not_allowed",...}}
//! ```
//!
//! The accept loop is safe to copy: a failed `accept` (`EMFILE` when the process runs out of
//! file descriptors, say) is logged and retried after a short pause instead of ending the
//! server, at most [`Config::max_connections`] connections are served at once (further ones
//! wait in the listen backlog), and a connection that does not send a complete request head
//! within [`Config::header_read_timeout`] is closed (slowloris).
#![forbid(unsafe_code)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tollgate::ServiceBuilderExt;
use tollgate::client_ip::{ClientIp, ClientIpSource, IpRanges, PeerAddr};
use tollgate::core::BoxError;
use tollgate::origin::OriginAllowlistLayer;
use tower::{ServiceBuilder, service_fn};

/// Settings, from the environment with loopback defaults.
#[derive(Debug, Clone)]
pub struct Config {
    /// `HYPER_ONLY_ADDR`, default `127.0.0.1:3003`.
    pub addr: SocketAddr,
    /// `ALLOWED_ORIGINS`, default `http://localhost:5173` (`http://` allowed for loopback).
    pub allowed_origins: Vec<String>,
    /// `CLIENT_IP_SOURCE` in tollgate's grammar, default `remote-addr`.
    pub client_ip_source: ClientIpSource,
    /// `IP_ALLOWLIST`, default `127.0.0.1/32`.
    pub ip_allowlist: IpRanges,
    /// How long a connection may take to send a complete request head (also the idle time
    /// allowed between keep-alive requests), default [`DEFAULT_HEADER_READ_TIMEOUT`].
    pub header_read_timeout: Duration,
    /// `MAX_CONNECTIONS`: connections served at once, default [`DEFAULT_MAX_CONNECTIONS`].
    pub max_connections: usize,
}

/// How long a connection is kept before it is shut down gracefully: 5 minutes.
pub const MAX_CONNECTION_AGE: Duration = Duration::from_secs(300);

/// The default [`Config::header_read_timeout`]: 10 seconds.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The default [`Config::max_connections`]: 512, below the usual 1024 file descriptors.
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;

/// How long the accept loop pauses after an accept error (as axum and hyper 0.14 do).
pub const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_secs(1);

impl Config {
    /// Reads the environment.
    pub fn from_env() -> Result<Self, BoxError> {
        let or = |name: &str, default: &str| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.trim().is_empty())
                .unwrap_or_else(|| default.to_owned())
        };
        Ok(Self {
            addr: or("HYPER_ONLY_ADDR", "127.0.0.1:3003").parse()?,
            allowed_origins: or("ALLOWED_ORIGINS", "http://localhost:5173")
                .split(',')
                .map(|o| o.trim().to_owned())
                .filter(|o| !o.is_empty())
                .collect(),
            client_ip_source: or("CLIENT_IP_SOURCE", "remote-addr").parse()?,
            ip_allowlist: or("IP_ALLOWLIST", "127.0.0.1/32").parse()?,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            max_connections: match or("MAX_CONNECTIONS", "").as_str() {
                "" => DEFAULT_MAX_CONNECTIONS,
                n => n.parse::<usize>()?.max(1),
            },
        })
    }
}

async fn whoami(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, body) = match (request.uri().path(), request.extensions().get::<ClientIp>()) {
        ("/api/whoami", Some(ip)) => (StatusCode::OK, format!(r#"{{"clientIp":"{ip}"}}"#)),
        ("/api/whoami", None) => (StatusCode::INTERNAL_SERVER_ERROR, String::from("{}")),
        _ => (
            StatusCode::NOT_FOUND,
            String::from(r#"{"error":{"code":"not_found","message":"no such route"}}"#),
        ),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

/// Accepts connections on `listener` and serves each with the inbound stack, forever.
///
/// Only a failure to build the stack ends it; accept errors are logged and retried (see the
/// crate docs).
pub async fn serve(listener: TcpListener, config: Config) -> Result<(), BoxError> {
    let origins = OriginAllowlistLayer::builder()
        .allow_origins(config.allowed_origins.iter().cloned())
        .allow_http_origins(true)
        .allow_methods([http::Method::GET, http::Method::POST])
        .allow_headers(["content-type"])
        .build()?;
    let connections = Arc::new(Semaphore::new(config.max_connections.max(1)));
    loop {
        // Wait for a free slot before accepting: beyond the limit, clients wait in the backlog.
        let permit = Arc::clone(&connections).acquire_owned().await?;
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) if example_server::is_connection_error(&err) => continue,
            Err(err) => {
                tracing::error!(%err, "accept error; retrying shortly");
                tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                continue;
            }
        };
        // The stack per connection: the socket peer is the one fact the client-IP layer needs.
        let service = ServiceBuilder::new()
            .map_request(move |mut request: Request<Incoming>| {
                request.extensions_mut().insert(PeerAddr::new(peer));
                request
            })
            .layer(origins.clone())
            .resolve_client_ip(config.client_ip_source.clone())
            .ip_allowlist(config.ip_allowlist.clone())
            .service(service_fn(whoami));
        let header_read_timeout = config.header_read_timeout;
        tokio::spawn(async move {
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_read_timeout)
                .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
            // A client that stops reading its answers would hold the slot for ever: every
            // connection is shut down gracefully at MAX_CONNECTION_AGE, and closed after a
            // further header_read_timeout.
            let mut connection = std::pin::pin!(connection);
            let ended = tokio::select! {
                ended = connection.as_mut() => ended,
                () = tokio::time::sleep(MAX_CONNECTION_AGE) => {
                    connection.as_mut().graceful_shutdown();
                    tokio::time::timeout(header_read_timeout, connection)
                        .await
                        .unwrap_or(Ok(()))
                }
            };
            if let Err(err) = ended {
                tracing::debug!(%err, "connection ended with an error");
            }
            drop(permit);
        });
    }
}

/// Binds `config.addr` and serves in a spawned task; returns the bound address.
pub async fn spawn(config: Config) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(config.addr).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(err) = serve(listener, config).await {
            tracing::error!(%err, "hyper-only server stopped");
        }
    });
    Ok(addr)
}
