//! TLS for tests and the demo: a test PKI made at run time ([`TestPki`]) and an HTTPS server on
//! loopback ([`HttpsServer`]) that counts what reaches it.
//!
//! Nothing here disables certificate checks: clients trust [`TestPki::ca_pem`] by adding it to
//! their root store.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;

/// `der` as PEM with `label` (rcgen's own PEM output would pull a second base64 into the tree).
pub fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let text = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in text.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// A server certificate and its key.
#[derive(Clone, Debug)]
pub struct Leaf {
    /// The certificate chain (leaf only), DER.
    pub chain: Vec<CertificateDer<'static>>,
    /// The PKCS#8 key, DER.
    pub key: Vec<u8>,
}

impl Leaf {
    /// A rustls server configuration presenting this leaf (TLS 1.2 and 1.3, ALPN h2 and
    /// http/1.1).
    pub fn server_config(&self) -> rustls::ServerConfig {
        self.server_config_with_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
    }

    /// A rustls server configuration presenting this leaf with only `versions` (e.g. a
    /// server limited to TLS 1.2), ALPN h2 and http/1.1.
    pub fn server_config_with_versions(
        &self,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> rustls::ServerConfig {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .expect("ring supports TLS 1.2 and 1.3")
            .with_no_client_auth()
            .with_single_cert(
                self.chain.clone(),
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.clone())),
            )
            .expect("the leaf and its key match");
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        config
    }
}

/// A test CA and server certificates made now: one good leaf and each kind of bad one.
#[derive(Debug)]
pub struct TestPki {
    /// The CA certificate, DER (what clients add to their roots).
    pub ca_der: CertificateDer<'static>,
    /// The CA certificate, PEM.
    pub ca_pem: String,
    /// Signed by the CA for `localhost` and `127.0.0.1`, valid now.
    pub good: Leaf,
    /// Signed by the CA for `localhost` and `127.0.0.1`, expired in 2021.
    pub expired: Leaf,
    /// Signed by the CA, valid now, for `other.example` only.
    pub other_name: Leaf,
    /// Self-signed for `localhost` and `127.0.0.1` (no CA vouches for it).
    pub self_signed: Leaf,
}

fn leaf_params(names: &[&str]) -> CertificateParams {
    CertificateParams::new(
        names
            .iter()
            .map(|name| (*name).to_owned())
            .collect::<Vec<_>>(),
    )
    .expect("valid names")
}

impl TestPki {
    /// Makes a fresh CA and leaves (ECDSA P-256; a few milliseconds).
    pub fn generate() -> Self {
        crate::trace_log::init();
        let ca_key = KeyPair::generate().expect("key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "tollgate test CA");
        let ca = ca_params.self_signed(&ca_key).expect("CA");
        let issuer = Issuer::from_params(&ca_params, &ca_key);
        let local = ["localhost", "127.0.0.1"];

        let signed = |params: CertificateParams| {
            let key = KeyPair::generate().expect("key");
            let cert = params.signed_by(&key, &issuer).expect("leaf");
            Leaf {
                chain: vec![cert.der().clone()],
                key: key.serialize_der(),
            }
        };
        let good = signed(leaf_params(&local));
        let mut expired_params = leaf_params(&local);
        expired_params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        expired_params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        let expired = signed(expired_params);
        let other_name = signed(leaf_params(&["other.example"]));
        let self_key = KeyPair::generate().expect("key");
        let self_cert = leaf_params(&local)
            .self_signed(&self_key)
            .expect("self-signed");
        let self_signed = Leaf {
            chain: vec![self_cert.der().clone()],
            key: self_key.serialize_der(),
        };
        Self {
            ca_pem: pem("CERTIFICATE", ca.der()),
            ca_der: ca.der().clone(),
            good,
            expired,
            other_name,
            self_signed,
        }
    }
}

/// What an [`HttpsServer`] answers with: a request with its whole body, to a response.
pub type Handler = Arc<
    dyn Fn(Request<Bytes>) -> Pin<Box<dyn Future<Output = Response<Bytes>> + Send>> + Send + Sync,
>;

/// Wraps an async closure as a [`Handler`].
pub fn handler<F, Fut>(f: F) -> Handler
where
    F: Fn(Request<Bytes>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<Bytes>> + Send + 'static,
{
    Arc::new(move |request| Box::pin(f(request)))
}

/// An HTTPS server on `127.0.0.1` (HTTP/1.1 and HTTP/2), counting TCP connections accepted,
/// TLS handshakes completed and requests received. Stops when dropped.
#[derive(Debug)]
pub struct HttpsServer {
    addr: SocketAddr,
    counters: Arc<Counters>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Debug, Default)]
struct Counters {
    connections: AtomicUsize,
    handshakes: AtomicUsize,
    requests: AtomicUsize,
}

impl HttpsServer {
    /// Serves `handler` over TLS with `leaf` on a free loopback port.
    pub async fn start(leaf: &Leaf, handler: Handler) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.expect("bind");
        Self::serve(listener, leaf.server_config(), handler)
    }

    /// Serves `handler` over TLS on `listener` with `config`.
    pub fn serve(listener: TcpListener, config: rustls::ServerConfig, handler: Handler) -> Self {
        crate::trace_log::init();
        let addr = listener.local_addr().expect("local addr");
        let counters = Arc::new(Counters::default());
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let task = {
            let counters = Arc::clone(&counters);
            tokio::spawn(async move {
                loop {
                    let Ok((tcp, _peer)) = listener.accept().await else {
                        continue;
                    };
                    counters.connections.fetch_add(1, Ordering::SeqCst);
                    let acceptor = acceptor.clone();
                    let counters = Arc::clone(&counters);
                    let handler = Arc::clone(&handler);
                    tokio::spawn(async move {
                        let Ok(tls) = acceptor.accept(tcp).await else {
                            return;
                        };
                        counters.handshakes.fetch_add(1, Ordering::SeqCst);
                        let service = hyper::service::service_fn(
                            move |request: Request<hyper::body::Incoming>| {
                                let handler = Arc::clone(&handler);
                                let counters = Arc::clone(&counters);
                                async move {
                                    counters.requests.fetch_add(1, Ordering::SeqCst);
                                    let (parts, body) = request.into_parts();
                                    let body = body
                                        .collect()
                                        .await
                                        .map(|collected| collected.to_bytes())
                                        .unwrap_or_default();
                                    let response = handler(Request::from_parts(parts, body)).await;
                                    Ok::<_, Infallible>(response.map(Full::new))
                                }
                            },
                        );
                        let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                            .serve_connection(TokioIo::new(tls), service)
                            .await;
                    });
                }
            })
        };
        Self {
            addr,
            counters,
            task,
        }
    }

    /// The address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https://localhost:<port>`.
    pub fn url(&self) -> String {
        format!("https://localhost:{}", self.addr.port())
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.counters.connections.load(Ordering::SeqCst)
    }

    /// TLS handshakes completed so far.
    pub fn handshakes(&self) -> usize {
        self.counters.handshakes.load(Ordering::SeqCst)
    }

    /// HTTP requests received so far.
    pub fn requests(&self) -> usize {
        self.counters.requests.load(Ordering::SeqCst)
    }
}

impl Drop for HttpsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A server on `127.0.0.1` serving, over TLS or plain TCP (HTTP/1.1 and HTTP/2, h2c by prior
/// knowledge on plain TCP), the hyper service `make` returns for each accepted connection.
/// `make` gets the peer's address and whether the connection is TLS, so a test can do what a
/// real accept loop does: insert the peer address and a "this connection is TLS" marker into
/// each request. Stops when dropped.
#[derive(Debug)]
pub struct ServiceServer {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl ServiceServer {
    /// Serves over TLS with `leaf` on a free loopback port.
    pub async fn tls<M, S, B>(leaf: &Leaf, make: M) -> Self
    where
        M: Fn(SocketAddr, bool) -> S + Send + Sync + 'static,
        S: hyper::service::Service<Request<hyper::body::Incoming>, Response = Response<B>>
            + Send
            + 'static,
        S::Future: Send + 'static,
        S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
        B: hyper::body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.expect("bind");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(leaf.server_config()));
        Self::spawn(listener, Some(acceptor), make)
    }

    /// Serves over plain TCP on a free loopback port.
    pub async fn plain<M, S, B>(make: M) -> Self
    where
        M: Fn(SocketAddr, bool) -> S + Send + Sync + 'static,
        S: hyper::service::Service<Request<hyper::body::Incoming>, Response = Response<B>>
            + Send
            + 'static,
        S::Future: Send + 'static,
        S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
        B: hyper::body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.expect("bind");
        Self::spawn(listener, None, make)
    }

    fn spawn<M, S, B>(
        listener: TcpListener,
        acceptor: Option<tokio_rustls::TlsAcceptor>,
        make: M,
    ) -> Self
    where
        M: Fn(SocketAddr, bool) -> S + Send + Sync + 'static,
        S: hyper::service::Service<Request<hyper::body::Incoming>, Response = Response<B>>
            + Send
            + 'static,
        S::Future: Send + 'static,
        S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
        B: hyper::body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let addr = listener.local_addr().expect("local addr");
        let make = Arc::new(make);
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, peer)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                let make = Arc::clone(&make);
                tokio::spawn(async move {
                    let builder =
                        hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    match acceptor {
                        Some(acceptor) => {
                            let Ok(tls) = acceptor.accept(tcp).await else {
                                return;
                            };
                            let _ = builder
                                .serve_connection(TokioIo::new(tls), make(peer, true))
                                .await;
                        }
                        None => {
                            let _ = builder
                                .serve_connection(TokioIo::new(tcp), make(peer, false))
                                .await;
                        }
                    }
                });
            }
        });
        Self { addr, task }
    }

    /// The address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

impl Drop for ServiceServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What a [`serve_recording`] server saw, before the service: the headers and body of every
/// request, in order.
pub type Seen = Arc<std::sync::Mutex<Vec<(http::HeaderMap, Bytes)>>>;

/// Serves `service` (an axum `Router` with tollgate's server layers, say) over TLS with `leaf`,
/// recording each request as it arrived, before the service ran.
pub async fn serve_recording<S, B, RB>(leaf: &Leaf, service: S) -> (HttpsServer, Seen)
where
    S: tower_service::Service<Request<B>, Response = Response<RB>> + Clone + Send + Sync + 'static,
    S::Future: Send,
    S::Error: std::fmt::Debug,
    B: From<Bytes> + Send + 'static,
    RB: http_body::Body + Send + 'static,
    RB::Data: Send,
    RB::Error: std::fmt::Debug,
{
    let seen: Seen = Arc::default();
    let record = Arc::clone(&seen);
    let server = HttpsServer::start(
        leaf,
        handler(move |request: Request<Bytes>| {
            let mut service = service.clone();
            let record = Arc::clone(&record);
            async move {
                record
                    .lock()
                    .expect("the record")
                    .push((request.headers().clone(), request.body().clone()));
                std::future::poll_fn(|cx| service.poll_ready(cx))
                    .await
                    .expect("the service is ready");
                let response = service
                    .call(request.map(B::from))
                    .await
                    .expect("the service answers");
                let (parts, body) = response.into_parts();
                let body = body.collect().await.expect("the body").to_bytes();
                Response::from_parts(parts, body)
            }
        }),
    )
    .await;
    (server, seen)
}
