//! The client-IP seams through the facade, over real TCP: a trusted proxy's address is never
//! reported as the client, whichever composition carries the client IP on.
//!
//! The trusted proxy is `127.0.0.5`; the servers listen on `127.0.0.1` and allow only the
//! internal network `127.0.0.0/8`, so the proxy's address would pass the allowlist if it were
//! taken for the client. Its client sends the attack from the security issue: a `Forwarded`
//! line whose unterminated quote swallows the element the proxy appended
//! (`for=", for=127.0.0.77`). Compositions:
//!
//! - axum: `TransakInbound` (origin allowlist → client IP → IP allowlist) with a chain ending
//!   in `remote-addr`, the `ClientIp` extractor, and a provider called through
//!   `forward_user_ip()`;
//! - plain hyper: `ServiceBuilderExt::client_ip`-style stacks with `continue_on_failure`,
//!   the IP allowlist and the same provider;
//! - axum with `continue_on_failure` and `Option<ClientIp>`: the handler runs without an IP
//!   and the outbound call is refused before anything is sent.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::routing::get;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tollgate::ServiceBuilderExt;
use tollgate::client_ip::{
    ClientIp, ClientIpSource, ForwardUserIp, IpAllowlistLayer, MissingClientIp, PeerAddr,
    ResolveClientIpLayer,
};
use tollgate::transak::TransakInbound;
use tower::{ServiceBuilder, ServiceExt, service_fn};

const ORIGIN: &str = "https://partner.example";
const PROXY: &str = "127.0.0.5";
const END_USER: &str = "127.0.0.77";
const OUTSIDER: &str = "127.0.0.9";
const HONEST: &str = "for=127.0.0.77";
const FORGED: &str = r#"for=", for=127.0.0.77"#;
const CHAIN: &str = "rightmost-trusted-range:forwarded:127.0.0.5 or remote-addr";
const INVALID_CLIENT_IP: &str = r#"{"error":{"code":"invalid_client_ip","message":"no valid client IP could be derived from the request"}}"#;

type Outbound = ForwardUserIp<Client<HttpConnector, Full<Bytes>>>;

/// The provider: records every `x-user-ip` it receives.
#[derive(Clone)]
struct Provider {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Provider {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen: Arc<Mutex<Vec<String>>> = Arc::default();
        let record = Arc::clone(&seen);
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let record = Arc::clone(&record);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                        let record = Arc::clone(&record);
                        async move {
                            for value in request.headers().get_all("x-user-ip") {
                                let text = String::from_utf8_lossy(value.as_bytes()).into_owned();
                                record.lock().unwrap().push(text);
                            }
                            Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { addr, seen }
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }

    fn outbound(&self) -> Outbound {
        ServiceBuilder::new()
            .forward_user_ip()
            .service(Client::builder(TokioExecutor::new()).build_http())
    }

    /// Calls the provider through `outbound`: "sent", or "not sent" when `ForwardUserIp`
    /// refused for want of a client IP.
    async fn call(&self, outbound: Outbound) -> String {
        let request = Request::post(format!("http://{}/api/v2/quote", self.addr))
            .body(Full::new(Bytes::new()))
            .unwrap();
        match outbound.oneshot(request).await {
            Ok(_) => "sent".to_owned(),
            Err(err) if err.downcast_ref::<MissingClientIp>().is_some() => "not sent".to_owned(),
            Err(err) => panic!("provider call failed: {err}"),
        }
    }
}

async fn bind() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

/// `GET /` on `server` from the loopback address `from`, with a `Forwarded` line.
async fn call_from(from: &str, server: SocketAddr, forwarded: &str) -> (StatusCode, String) {
    let mut connector = HttpConnector::new();
    connector.set_local_address(Some(from.parse::<IpAddr>().unwrap()));
    let client = Client::builder(TokioExecutor::new()).build::<_, Full<Bytes>>(connector);
    let request = Request::get(format!("http://{server}/"))
        .header("origin", ORIGIN)
        .header("forwarded", forwarded)
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = client.request(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

/// axum behind `TransakInbound` with the allowlist; the handler takes `ClientIp` and calls
/// the provider.
async fn spawn_transak_axum(provider: &Provider) -> SocketAddr {
    let inbound = TransakInbound::new([ORIGIN], CHAIN.parse().unwrap())
        .unwrap()
        .ip_allowlist(IpAllowlistLayer::new("127.0.0.0/8".parse().unwrap()));
    let provider = provider.clone();
    let app = Router::new()
        .route(
            "/",
            get(move |ip: ClientIp| {
                let provider = provider.clone();
                async move {
                    let outcome = provider.call(provider.outbound()).await;
                    format!("{ip} {outcome}")
                }
            }),
        )
        .layer(inbound);
    let (listener, addr) = bind().await;
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    addr
}

/// A plain hyper server: `PeerAddr` → `ResolveClientIpLayer` (`layer`) → IP allowlist → a handler
/// that calls the provider (the IP reaches `ForwardUserIp` through the task-local scope).
async fn spawn_hyper(layer: ResolveClientIpLayer, provider: &Provider) -> SocketAddr {
    let (listener, addr) = bind().await;
    let provider = provider.clone();
    tokio::spawn(async move {
        loop {
            let (stream, peer) = listener.accept().await.unwrap();
            let provider = provider.clone();
            let service = ServiceBuilder::new()
                .map_request(move |mut request: Request<Incoming>| {
                    request.extensions_mut().insert(PeerAddr::new(peer));
                    request
                })
                .layer(layer.clone())
                .ip_allowlist("127.0.0.0/8".parse().unwrap())
                .service(service_fn(move |request: Request<Incoming>| {
                    let provider = provider.clone();
                    async move {
                        let ip = request
                            .extensions()
                            .get::<ClientIp>()
                            .map_or_else(|| "none".to_owned(), ToString::to_string);
                        let outcome = provider.call(provider.outbound()).await;
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(format!(
                            "{ip} {outcome}"
                        )))))
                    }
                }));
            tokio::spawn(async move {
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
                    .await;
            });
        }
    });
    addr
}

/// axum with a continuing `ResolveClientIpLayer` and no allowlist; the handler takes
/// `Option<ClientIp>` and calls the provider anyway.
async fn spawn_continuing_axum(provider: &Provider) -> SocketAddr {
    let provider = provider.clone();
    let app = Router::new()
        .route(
            "/",
            get(move |ip: Option<ClientIp>| {
                let provider = provider.clone();
                async move {
                    let outcome = provider.call(provider.outbound()).await;
                    let ip = ip.map_or_else(|| "none".to_owned(), |ip| ip.to_string());
                    format!("{ip} {outcome}")
                }
            }),
        )
        .layer(ResolveClientIpLayer::new(CHAIN.parse().unwrap()).continue_on_failure());
    let (listener, addr) = bind().await;
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    addr
}

fn assert_never_the_proxy(what: &str, body: &str, provider: &Provider) {
    assert!(
        !body.starts_with(PROXY),
        "{what}: the trusted proxy {PROXY} was taken for the client: {body}"
    );
    assert!(
        !provider.seen().iter().any(|value| value == PROXY),
        "{what}: the trusted proxy {PROXY} was sent as x-user-ip: {:?}",
        provider.seen()
    );
}

#[tokio::test]
async fn transak_inbound_with_a_remote_addr_fallback() {
    let provider = Provider::start().await;
    let server = spawn_transak_axum(&provider).await;

    let got = call_from(PROXY, server, HONEST).await;
    assert_eq!(got, (StatusCode::OK, format!("{END_USER} sent")));

    let (status, body) = call_from(PROXY, server, FORGED).await;
    assert_never_the_proxy("TransakInbound", &body, &provider);
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::BAD_REQUEST, INVALID_CLIENT_IP)
    );

    // A peer that no source trusts is the client, forged header or not.
    let got = call_from(OUTSIDER, server, FORGED).await;
    assert_eq!(got, (StatusCode::OK, format!("{OUTSIDER} sent")));
    assert_eq!(provider.seen(), vec![END_USER, OUTSIDER]);
}

#[tokio::test]
async fn hyper_stacks_rejecting_and_continuing() {
    let provider = Provider::start().await;
    let source: ClientIpSource = "rightmost-trusted-range:forwarded:127.0.0.5"
        .parse()
        .unwrap();
    let stacks = [
        (
            "chain, rejecting",
            ResolveClientIpLayer::new(CHAIN.parse().unwrap()),
        ),
        (
            "chain, continuing",
            ResolveClientIpLayer::new(CHAIN.parse().unwrap()).continue_on_failure(),
        ),
        (
            "single source, continuing",
            ResolveClientIpLayer::new(source).continue_on_failure(),
        ),
    ];
    for (what, layer) in stacks {
        let server = spawn_hyper(layer, &provider).await;
        let got = call_from(PROXY, server, HONEST).await;
        assert_eq!(got, (StatusCode::OK, format!("{END_USER} sent")), "{what}");

        let (status, body) = call_from(PROXY, server, FORGED).await;
        assert_never_the_proxy(what, &body, &provider);
        // Refused at the client-IP layer, or (continuing) at the allowlist: never let
        // through the internal-only allowlist as the proxy.
        assert_eq!(
            (status, body.as_str()),
            (StatusCode::BAD_REQUEST, INVALID_CLIENT_IP),
            "{what}"
        );
    }
    assert_eq!(provider.seen(), vec![END_USER; 3]);
}

#[tokio::test]
async fn continuing_axum_handler_cannot_send_the_proxy() {
    let provider = Provider::start().await;
    let server = spawn_continuing_axum(&provider).await;

    let got = call_from(PROXY, server, HONEST).await;
    assert_eq!(got, (StatusCode::OK, format!("{END_USER} sent")));

    let (status, body) = call_from(PROXY, server, FORGED).await;
    assert_never_the_proxy("continuing axum", &body, &provider);
    assert_eq!((status, body.as_str()), (StatusCode::OK, "none not sent"));
    assert_eq!(provider.seen(), vec![END_USER]);
}
