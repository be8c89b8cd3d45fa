//! A gRPC health server (tonic, with `tonic-health`'s ready-made `grpc.health.v1.Health`
//! service, so no protobuf code generation) behind tollgate's client-IP and IP-allowlist
//! layers, and a tonic client that calls it.
//!
//! A caller whose IP is outside the allowlist gets a proper gRPC status,
//! `PERMISSION_DENIED` with the message `ip_not_allowed: ...`, not an HTTP error page.
//!
//! The server is safe to expose: an accept error (`EMFILE`, ...) is logged and retried after a
//! second instead of spinning, at most [`Limits::max_connections`] connections are served at
//! once (further ones wait in the listen backlog), every connection is closed after
//! [`Limits::max_connection_age`] (so one that never completes its HTTP/2 handshake cannot
//! hold a slot for long), dead peers are found by HTTP/2 keep-alive pings, and every call has
//! a deadline ([`Limits::request_timeout`]).
#![forbid(unsafe_code)]

use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::client::legacy::connect::HttpConnector;
use ipnet::IpNet;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tollgate::client_ip::{IpAllowlistLayer, IpRanges, ResolveClientIpLayer};
use tollgate::core::{BoxError, RejectionResponder};
use tonic::codegen::tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::{Connected, TcpConnectInfo};
use tonic::transport::{Endpoint, Server};
use tonic_health::ServingStatus;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;
use tower::ServiceBuilder;

/// The status a health check answers (`SERVING`, `NOT_SERVING`, ...).
pub use tonic_health::pb::health_check_response::ServingStatus as CheckStatus;

/// Settings, from the environment with loopback defaults.
#[derive(Debug, Clone)]
pub struct Config {
    /// `TONIC_HEALTH_ADDR`, default `127.0.0.1:50051`.
    pub addr: SocketAddr,
    /// `IP_ALLOWLIST`: comma-separated CIDRs or IPs allowed to call, default `127.0.0.1/32`.
    pub allowlist: Vec<IpNet>,
}

impl Config {
    /// Reads the environment.
    pub fn from_env() -> Result<Self, BoxError> {
        let addr = std::env::var("TONIC_HEALTH_ADDR")
            .unwrap_or_else(|_| "127.0.0.1:50051".to_owned())
            .parse()?;
        let allowlist = parse_nets(
            &std::env::var("IP_ALLOWLIST").unwrap_or_else(|_| "127.0.0.1/32".to_owned()),
        )?;
        Ok(Self { addr, allowlist })
    }
}

/// Parses `10.0.0.0/8, 127.0.0.1` (bare IPs become single-address networks).
pub fn parse_nets(list: &str) -> Result<Vec<IpNet>, BoxError> {
    list.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| {
            item.parse::<IpNet>()
                .or_else(|_| item.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| format!("`{item}` is neither a CIDR nor an IP address").into())
        })
        .collect()
}

/// How much a client can hold of the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections served at once; default 512, below the usual 1024 open files.
    pub max_connections: usize,
    /// Every connection is closed gracefully after this long (then forcibly after as long
    /// again); default 5 minutes.
    pub max_connection_age: Duration,
    /// The deadline of every call; default 10 seconds.
    pub request_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 512,
            max_connection_age: Duration::from_secs(300),
            request_timeout: Duration::from_secs(10),
        }
    }
}

/// An accepted connection holding one of the [`Limits::max_connections`] slots until it is
/// dropped.
#[derive(Debug)]
struct Limited {
    stream: TcpStream,
    _permit: OwnedSemaphorePermit,
}

impl Connected for Limited {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.stream.connect_info()
    }
}

impl AsyncRead for Limited {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Limited {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Accepts on `listener` within `max_connections`, retrying accept errors after a pause, and
/// hands the connections to tonic through a channel.
fn limited_incoming(
    listener: TcpListener,
    max_connections: usize,
) -> ReceiverStream<std::io::Result<Limited>> {
    let (tx, rx) = mpsc::channel(1);
    tokio::spawn(async move {
        let slots = Arc::new(Semaphore::new(max_connections.max(1)));
        loop {
            let Ok(permit) = Arc::clone(&slots).acquire_owned().await else {
                return;
            };
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(err)
                    if matches!(
                        err.kind(),
                        std::io::ErrorKind::ConnectionAborted
                            | std::io::ErrorKind::ConnectionReset
                            | std::io::ErrorKind::ConnectionRefused
                    ) =>
                {
                    continue;
                }
                Err(err) => {
                    tracing::error!(%err, "accept error; retrying in a second");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            let limited = Limited {
                stream,
                _permit: permit,
            };
            if tx.send(Ok(limited)).await.is_err() {
                return; // the server is gone
            }
        }
    });
    ReceiverStream::new(rx)
}

/// Serves the health service on `listener` with the default [`Limits`] until the task is
/// dropped.
pub async fn serve(listener: TcpListener, config: Config) -> Result<(), BoxError> {
    serve_with(listener, config, Limits::default()).await
}

/// Serves the health service on `listener` within `limits` until the task is dropped.
pub async fn serve_with(
    listener: TcpListener,
    config: Config,
    limits: Limits,
) -> Result<(), BoxError> {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("", ServingStatus::Serving)
        .await;
    // The peer comes from tonic's TcpConnectInfo (feature `tonic`); refusals are gRPC
    // statuses: PERMISSION_DENIED for an IP outside the allowlist.
    let guard = ServiceBuilder::new()
        .layer(ResolveClientIpLayer::remote_addr().on_rejection(RejectionResponder::grpc()))
        .layer(
            IpAllowlistLayer::new(IpRanges::new(config.allowlist))
                .on_rejection(RejectionResponder::grpc()),
        );
    Server::builder()
        .timeout(limits.request_timeout)
        .max_connection_age(limits.max_connection_age)
        .max_connection_age_grace(limits.max_connection_age)
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
        .layer(guard)
        .add_service(health)
        .serve_with_incoming(limited_incoming(listener, limits.max_connections))
        .await?;
    Ok(())
}

/// Binds `config.addr` and serves in a spawned task; returns the bound address.
pub async fn spawn(config: Config) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(config.addr).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(err) = serve(listener, config).await {
            tracing::error!(%err, "tonic health server stopped");
        }
    });
    Ok(addr)
}

/// Calls `grpc.health.v1.Health/Check` on `server` from the local address `from` (any
/// `127.0.0.0/8` address works on Linux loopback) and returns the serving status.
pub async fn check(server: SocketAddr, from: IpAddr) -> Result<CheckStatus, tonic::Status> {
    let mut connector = HttpConnector::new();
    connector.set_local_address(Some(from));
    let channel = Endpoint::from_shared(format!("http://{server}"))
        .map_err(|err| tonic::Status::invalid_argument(err.to_string()))?
        .connect_with_connector(connector)
        .await
        .map_err(|err| tonic::Status::unavailable(err.to_string()))?;
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await?;
    Ok(response.into_inner().status())
}
