//! A gRPC health server (tonic, with `tonic-health`'s ready-made `grpc.health.v1.Health`
//! service, so no protobuf code generation) behind tollgate's client-IP and IP-allowlist
//! layers, and a tonic client that calls it.
//!
//! A caller whose IP is outside the allowlist gets a proper gRPC status,
//! `PERMISSION_DENIED` with the message `ip_not_allowed: ...`, not an HTTP error page.
#![forbid(unsafe_code)]

use std::net::{IpAddr, SocketAddr};

use hyper_util::client::legacy::connect::HttpConnector;
use ipnet::IpNet;
use tokio::net::TcpListener;
use tollgate::ServiceBuilderExt;
use tollgate::client_ip::{ClientIpLayer, IpAllowlistLayer, IpRanges};
use tollgate::core::{BoxError, RejectionResponder};
use tonic::transport::server::TcpIncoming;
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

/// Serves the health service on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, config: Config) -> Result<(), BoxError> {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("", ServingStatus::Serving)
        .await;
    // The peer comes from tonic's TcpConnectInfo (feature `tonic`); refusals are gRPC
    // statuses: PERMISSION_DENIED for an IP outside the allowlist.
    let guard = ServiceBuilder::new()
        .layer(ClientIpLayer::remote_addr().on_rejection(RejectionResponder::grpc()))
        .ip_allowlist(
            IpAllowlistLayer::new(IpRanges::new(config.allowlist))
                .on_rejection(RejectionResponder::grpc()),
        );
    Server::builder()
        .layer(guard)
        .add_service(health)
        .serve_with_incoming(TcpIncoming::from(listener))
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
