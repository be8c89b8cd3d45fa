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
#![forbid(unsafe_code)]

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tollgate::ServiceBuilderExt;
use tollgate::client_ip::{ClientIp, ClientIpSource, IpAllowlistLayer, IpRanges, PeerAddr};
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
}

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
pub async fn serve(listener: TcpListener, config: Config) -> Result<(), BoxError> {
    let origins = OriginAllowlistLayer::builder()
        .allow_origins(config.allowed_origins.iter().cloned())
        .allow_http_origins(true)
        .allow_methods([http::Method::GET, http::Method::POST])
        .allow_headers(["content-type"])
        .build()?;
    loop {
        let (stream, peer) = listener.accept().await?;
        // The stack per connection: the socket peer is the one fact the client-IP layer needs.
        let service = ServiceBuilder::new()
            .map_request(move |mut request: Request<Incoming>| {
                request.extensions_mut().insert(PeerAddr::new(peer));
                request
            })
            .origin_allowlist(origins.clone())
            .client_ip(config.client_ip_source.clone())
            .ip_allowlist(IpAllowlistLayer::new(config.ip_allowlist.clone()))
            .service(service_fn(whoami));
        tokio::spawn(async move {
            let connection = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
            if let Err(err) = connection.await {
                tracing::debug!(%err, "connection ended with an error");
            }
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
