//! tonic served over TLS: tonic puts `TlsConnectInfo<TcpConnectInfo>` (not `TcpConnectInfo`)
//! into each request, and the client-IP layers must read the peer from it, as they do from
//! the plain `TcpConnectInfo`. A real tonic TLS server with a certificate made at test time
//! (the test PKI of `tollgate-test-support`), called by a tonic `Channel` that trusts only the test CA.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use hyper_util::client::legacy::connect::HttpConnector;
use tokio::net::TcpListener;
use tollgate::client_ip::{IpAllowlistLayer, ResolveClientIpLayer};
use tollgate::core::RejectionResponder;
use tollgate_test_support::tls::{TestPki, pem};
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity, ServerTlsConfig};
use tonic_health::ServingStatus;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus as CheckStatus;
use tonic_health::pb::health_client::HealthClient;
use tower::ServiceBuilder;

const ALLOWED: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);
const OUTSIDER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

/// The server's identity for tonic's own TLS: the test PKI's good leaf (`localhost`).
fn identity(pki: &TestPki) -> Identity {
    Identity::from_pem(
        pem("CERTIFICATE", &pki.good.chain[0]),
        pem("PRIVATE KEY", &pki.good.key),
    )
}

async fn spawn_tls_server(identity: Identity) -> SocketAddr {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("", ServingStatus::Serving)
        .await;
    let guard = ServiceBuilder::new()
        .layer(ResolveClientIpLayer::remote_addr().on_rejection(RejectionResponder::grpc()))
        .layer(
            IpAllowlistLayer::new("127.0.0.1/32".parse().unwrap())
                .on_rejection(RejectionResponder::grpc()),
        );
    let listener = TcpListener::bind((ALLOWED, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _reporter = reporter;
        tonic::transport::Server::builder()
            .tls_config(ServerTlsConfig::new().identity(identity))
            .unwrap()
            .layer(guard)
            .add_service(health)
            .serve_with_incoming(TcpIncoming::from(listener))
            .await
            .unwrap();
    });
    addr
}

async fn check(server: SocketAddr, from: Ipv4Addr, ca: &str) -> Result<CheckStatus, tonic::Status> {
    let mut connector = HttpConnector::new();
    connector.set_local_address(Some(IpAddr::V4(from)));
    connector.enforce_http(false);
    let channel = Endpoint::from_shared(format!("https://localhost:{}", server.port()))
        .unwrap()
        .tls_config(
            ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(ca))
                .domain_name("localhost"),
        )
        .unwrap()
        .connect_with_connector(connector)
        .await
        .unwrap();
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await?;
    Ok(response.into_inner().status())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tonic_over_tls_finds_the_peer_and_refuses_outsiders() {
    let pki = TestPki::generate();
    let ca = pki.ca_pem.clone();
    let server = spawn_tls_server(identity(&pki)).await;
    assert_eq!(
        check(server, ALLOWED, &ca).await.unwrap(),
        CheckStatus::Serving
    );
    let refused = check(server, OUTSIDER, &ca).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused:?}");
    assert_eq!(
        refused.message(),
        "ip_not_allowed: client IP is not allowed"
    );
}

/// TLS terminated by the application (a `tokio-rustls` acceptor, e.g. to reload certificates)
/// and handed to tonic with `serve_with_incoming`: tonic then inserts only
/// `TlsConnectInfo<TcpConnectInfo>`, no `TcpConnectInfo`. The client-IP layers read the peer
/// from it too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tonic_with_its_own_tls_acceptor_finds_the_peer() {
    use std::sync::Arc;

    use tokio_rustls::TlsAcceptor;

    let pki = TestPki::generate();
    let mut config = pki.good.server_config();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(config));

    let listener = TcpListener::bind((ALLOWED, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (streams, incoming) = tokio::sync::mpsc::channel(16);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, streams) = (acceptor.clone(), streams.clone());
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(tcp).await {
                    let _ = streams.send(Ok::<_, std::io::Error>(tls)).await;
                }
            });
        }
    });
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("", ServingStatus::Serving)
        .await;
    let guard = ServiceBuilder::new()
        .layer(ResolveClientIpLayer::remote_addr().on_rejection(RejectionResponder::grpc()))
        .layer(
            IpAllowlistLayer::new("127.0.0.1/32".parse().unwrap())
                .on_rejection(RejectionResponder::grpc()),
        );
    tokio::spawn(async move {
        let _reporter = reporter;
        tonic::transport::Server::builder()
            .layer(guard)
            .add_service(health)
            .serve_with_incoming(tokio_stream::wrappers::ReceiverStream::new(incoming))
            .await
            .unwrap();
    });
    let ca = pki.ca_pem;
    assert_eq!(
        check(addr, ALLOWED, &ca).await.unwrap(),
        CheckStatus::Serving
    );
    let refused = check(addr, OUTSIDER, &ca).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused:?}");
}
