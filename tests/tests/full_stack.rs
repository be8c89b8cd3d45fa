//! Stacks mixing every layer, over real TCP.
//!
//! - An axum server and a plain hyper 1 server behind the same inbound stack: origin
//!   allowlist → client IP → IP allowlist → inbound hygiene → body limit + signature
//!   verification → replay guard → handler. Both are called by a `hyper_util` client behind the
//!   outbound stack: header hygiene → `x-api-key` → `x-user-ip` → signing. The same scenarios
//!   run against both servers: the happy path (exactly what the handler sees) and each layer's
//!   refusal through the whole stack, with the handler counter moving only on success.
//! - A plain hyper server verifying Tranzila-style calls (`TranzilaVerifyLayer` with the memory
//!   nonce store, behind client IP and IP allowlist), called through `TranzilaSigningLayer`.
//! - A tonic server (`tonic-health`'s ready-made service) behind client IP and IP allowlist with
//!   gRPC rejections, called by a tonic `Channel`.
//!
//! Time comes from `ManualClock`s; callers outside the allowlist connect from other loopback
//! addresses (`127.0.0.2`, `127.0.0.3`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
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
    ClientIp, IpAllowlistLayer, IpOrigin, MissingClientIp, PeerAddr, ResolveClientIpLayer,
};
use tollgate::core::{
    BoxError, BufferedBody, Key, KeyRing, ManualClock, RejectionResponder, Secret,
    VerifiedSignature,
};
use tollgate::headers::{
    HeaderError, HeaderHygieneLayer, InboundHygieneLayer, Upstream, X_API_KEY,
};
use tollgate::origin::OriginAllowlistLayer;
use tollgate::replay::{MemoryNonceStore, ReplayGuardLayer};
use tollgate::signature::{Canonical, SignRequestLayer, VerifySignatureLayer};
use tollgate::tranzila::{TranzilaCredentials, TranzilaSigningLayer, TranzilaVerifyLayer};
use tower::layer::util::{Identity, Stack};
use tower::util::BoxCloneService;
use tower::{ServiceBuilder, ServiceExt, service_fn};

const NOW: u64 = 1_767_225_600;
const PARTNER_ORIGIN: &str = "https://partner.example";
const FOREIGN_ORIGIN: &str = "https://evil.example";
const API_KEY: &str = "pk_full_stack_partner";
const KEY_ID: &str = "partner-2026-01";
const SIGNING_SECRET: &str = "whk_full_stack_signing_secret";
const END_USER: &str = "198.51.100.7";
const USER_AGENT: &str = "partner-backend/1.0";
const PATH: &str = "/api/payments";
const BODY: &[u8] = br#"{"amount":100,"currency":"EUR"}"#;
const BODY_LIMIT: usize = 1024;

/// The allowed caller, a caller outside the allowlist, and the trusted reverse proxy.
const ALLOWED: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);
const OUTSIDER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
const PROXY: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);

/// The exact JSON body of a tollgate rejection.
fn rejection(code: &str, message: &str) -> String {
    serde_json::json!({ "error": { "code": code, "message": message } }).to_string()
}

// ---------------------------------------------------------------------------------------------
// What the handler saw.

#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    /// Every header, sorted by name then value.
    headers: Vec<(String, String)>,
    client_ip: Option<ClientIp>,
    /// Scheme and key id of the `VerifiedSignature`.
    verified: Option<(String, String)>,
    body: Bytes,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The handler: records what reached it and answers `{"accepted":true}`.
#[derive(Clone, Default)]
struct Handler {
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Handler {
    fn calls(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    fn take(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.seen.lock().unwrap())
    }

    async fn record<B>(self, request: Request<B>) -> Response<Full<Bytes>>
    where
        B: hyper::body::Body<Data = Bytes>,
        B::Error: std::fmt::Debug,
    {
        let (parts, body) = request.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        let mut headers: Vec<(String, String)> = parts
            .headers
            .iter()
            .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap().to_owned()))
            .collect();
        headers.sort();
        self.seen.lock().unwrap().push(Seen {
            headers,
            client_ip: parts.extensions.get::<ClientIp>().cloned(),
            verified: parts
                .extensions
                .get::<VerifiedSignature>()
                .map(|v| (v.scheme().to_owned(), v.key_id().to_owned())),
            body,
        });
        let mut response = Response::new(Full::new(Bytes::from_static(br#"{"accepted":true}"#)));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    }
}

// ---------------------------------------------------------------------------------------------
// The inbound stack, shared by the axum and the hyper server.

type InboundLayers = Stack<
    ReplayGuardLayer,
    Stack<
        VerifySignatureLayer,
        Stack<
            InboundHygieneLayer,
            Stack<
                IpAllowlistLayer,
                Stack<ResolveClientIpLayer, Stack<OriginAllowlistLayer, Identity>>,
            >,
        >,
    >,
>;

fn signing_ring() -> KeyRing {
    KeyRing::new(Key::new(KEY_ID, Secret::from_string(SIGNING_SECRET)))
}

/// Origin allowlist → client IP (`X-Forwarded-For` believed from the proxy only) → IP
/// allowlist (`127.0.0.1`) → inbound hygiene → body limit + canonical signature → replay guard
/// reading the verified signature.
fn inbound(clock: &ManualClock) -> ServiceBuilder<InboundLayers> {
    let origins = OriginAllowlistLayer::builder()
        .allow_origins([PARTNER_ORIGIN])
        .allow_methods([http::Method::POST])
        .allow_headers(["content-type"])
        .build()
        .unwrap();
    // This server is the provider side: partners send `x-api-key` and `x-user-ip` on purpose,
    // so those two stay; forwarding headers survive only from the trusted proxy.
    let hygiene = InboundHygieneLayer::backend_derived()
        .allow(http::HeaderName::from_static("x-api-key"))
        .allow(http::HeaderName::from_static("x-user-ip"))
        .peer_addr(PeerAddr::find)
        .trust_peers(|peer| peer.ip() == IpAddr::V4(PROXY));
    let store = MemoryNonceStore::new(1024).with_clock(clock.clone());
    ServiceBuilder::new()
        .layer(origins)
        .resolve_client_ip(
            format!("rightmost-trusted-range:x-forwarded-for:{PROXY}")
                .parse()
                .unwrap(),
        )
        .ip_allowlist("127.0.0.1/32".parse().unwrap())
        .inbound_hygiene(hygiene)
        .layer(
            VerifySignatureLayer::new(Canonical::new(), signing_ring())
                .unwrap()
                .clock(clock.clone())
                .body_limit(BODY_LIMIT),
        )
        .layer(ReplayGuardLayer::new(store).clock(clock.clone()))
}

async fn bind() -> TcpListener {
    TcpListener::bind(SocketAddr::from((ALLOWED, 0)))
        .await
        .unwrap()
}

/// An axum router behind the inbound stack; the peer comes from `ConnectInfo`.
async fn spawn_axum(clock: &ManualClock, handler: Handler) -> SocketAddr {
    let app = axum::Router::new()
        .route(
            PATH,
            axum::routing::post(move |request: axum::extract::Request| {
                handler.clone().record(request)
            }),
        )
        .layer(inbound(clock));
    let listener = bind().await;
    let addr = listener.local_addr().unwrap();
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

/// A plain hyper 1 server behind the inbound stack; the peer is inserted per connection as
/// `PeerAddr`.
async fn spawn_hyper(clock: &ManualClock, handler: Handler) -> SocketAddr {
    let listener = bind().await;
    let addr = listener.local_addr().unwrap();
    let stack = inbound(clock);
    tokio::spawn(async move {
        loop {
            let (stream, peer) = listener.accept().await.unwrap();
            let handler = handler.clone();
            let service = ServiceBuilder::new()
                .map_request(move |mut request: Request<Incoming>| {
                    request.extensions_mut().insert(PeerAddr::new(peer));
                    request
                })
                .layer(stack.clone())
                .service(service_fn(move |request: Request<BufferedBody>| {
                    let handler = handler.clone();
                    async move {
                        if request.uri().path() == PATH {
                            Ok::<_, Infallible>(handler.record(request).await)
                        } else {
                            let mut response = Response::new(Full::default());
                            *response.status_mut() = StatusCode::NOT_FOUND;
                            Ok(response)
                        }
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

// ---------------------------------------------------------------------------------------------
// The outbound stack.

type Api = BoxCloneService<Request<Full<Bytes>>, Response<Incoming>, BoxError>;

/// What a man in the middle changes on the wire, after signing.
#[derive(Clone, Debug)]
enum Tamper {
    Nothing,
    Body(&'static [u8]),
    Header(&'static str, &'static str),
}

impl Tamper {
    fn apply(&self, mut request: Request<BufferedBody>) -> Request<BufferedBody> {
        match self {
            Self::Nothing => {}
            Self::Body(body) => {
                *request.body_mut() = BufferedBody::new(Bytes::from_static(body));
            }
            Self::Header(name, value) => {
                request
                    .headers_mut()
                    .append(*name, HeaderValue::from_static(value));
            }
        }
        request
    }
}

/// How a test's client is set up.
struct Caller {
    from: Ipv4Addr,
    origin: &'static str,
    clock: ManualClock,
    tamper: Tamper,
}

impl Caller {
    fn new(clock: &ManualClock) -> Self {
        Self {
            from: ALLOWED,
            origin: PARTNER_ORIGIN,
            clock: clock.clone(),
            tamper: Tamper::Nothing,
        }
    }

    fn from(mut self, ip: Ipv4Addr) -> Self {
        self.from = ip;
        self
    }

    fn origin(mut self, origin: &'static str) -> Self {
        self.origin = origin;
        self
    }

    fn clock(mut self, clock: ManualClock) -> Self {
        self.clock = clock;
        self
    }

    fn tamper(mut self, tamper: Tamper) -> Self {
        self.tamper = tamper;
        self
    }

    /// Header hygiene (the backend's own `Origin` and `User-Agent`) → `x-api-key` for the
    /// loopback server only → `x-user-ip` → canonical signature → (tamper) → `hyper_util`.
    fn client(self, server: SocketAddr) -> Api {
        let mut connector = HttpConnector::new();
        connector.set_local_address(Some(IpAddr::V4(self.from)));
        let hyper = Client::builder(TokioExecutor::new()).build::<_, BufferedBody>(connector);
        let tamper = self.tamper;
        let stack = ServiceBuilder::new()
            .header_hygiene(
                HeaderHygieneLayer::server_to_server()
                    .substitute(header::ORIGIN, HeaderValue::from_static(self.origin))
                    .substitute(header::USER_AGENT, HeaderValue::from_static(USER_AGENT)),
            )
            .secret_header(
                X_API_KEY,
                Secret::from_string(API_KEY),
                Upstream::parse(&format!("http://{server}")).unwrap(),
            )
            .unwrap()
            .forward_user_ip()
            .layer(
                SignRequestLayer::new(
                    Canonical::new(),
                    signing_ring(),
                    Upstream::parse(&format!("http://{server}")).unwrap(),
                )
                .unwrap()
                .clock(self.clock),
            )
            .map_request(move |request| tamper.apply(request))
            .service(hyper);
        BoxCloneService::new(stack)
    }
}

/// A request built by a partner handler from the browser's request: the browser's headers are
/// still on it (hygiene removes them) and the end user's IP is in its extensions.
fn payment(url: &str, body: &'static [u8]) -> Request<Full<Bytes>> {
    let mut request = Request::post(url)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ORIGIN, FOREIGN_ORIGIN)
        .header(header::REFERER, "https://evil.example/checkout")
        .header(header::COOKIE, "session=browser")
        .header(header::USER_AGENT, "Mozilla/5.0")
        .header("sec-fetch-site", "cross-site")
        .header("x-forwarded-for", "203.0.113.66")
        .header("x-user-ip", "6.6.6.6")
        .body(Full::new(Bytes::from_static(body)))
        .unwrap();
    request
        .extensions_mut()
        .insert(ClientIp::new(END_USER.parse().unwrap(), IpOrigin::Other));
    request
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

async fn send(api: &Api, request: Request<Full<Bytes>>) -> Answer {
    let response = api.clone().oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Answer {
        status: parts.status,
        headers: parts.headers,
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}

async fn post(api: &Api, server: SocketAddr, body: &'static [u8]) -> Answer {
    send(api, payment(&format!("http://{server}{PATH}"), body)).await
}

fn assert_refused(answer: &Answer, status: StatusCode, code: &str, message: &str) {
    assert_eq!(answer.status, status, "{}", answer.body);
    assert_eq!(answer.body, rejection(code, message));
    assert_eq!(answer.headers[header::CONTENT_TYPE], "application/json");
}

fn header_values<'a>(headers: &'a HeaderMap, name: &str) -> Vec<&'a str> {
    headers
        .get_all(name)
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect()
}

/// The same scenarios against a server started by `$spawn`.
macro_rules! inbound_scenarios {
    ($spawn:ident) => {
        use super::*;

        async fn start() -> (SocketAddr, ManualClock, Handler) {
            let clock = ManualClock::new(NOW);
            let handler = Handler::default();
            let addr = $spawn(&clock, handler.clone()).await;
            (addr, clock, handler)
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn happy_path_reaches_the_handler_with_every_fact() {
            let (server, clock, handler) = start().await;
            let api = Caller::new(&clock).client(server);
            let answer = post(&api, server, BODY).await;

            assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
            assert_eq!(answer.body, r#"{"accepted":true}"#);
            assert_eq!(
                header_values(&answer.headers, "access-control-allow-origin"),
                [PARTNER_ORIGIN]
            );
            assert_eq!(header_values(&answer.headers, "vary"), ["Origin"]);

            let seen = handler.take();
            assert_eq!(seen.len(), 1);
            let signature = Canonical::new().compute(
                &Secret::from_string(SIGNING_SECRET),
                "POST",
                PATH,
                BODY,
                NOW,
            );
            let expected: Vec<(String, String)> = [
                ("content-length", BODY.len().to_string()),
                ("content-type", "application/json".to_owned()),
                ("host", server.to_string()),
                ("origin", PARTNER_ORIGIN.to_owned()),
                ("user-agent", USER_AGENT.to_owned()),
                ("x-api-key", API_KEY.to_owned()),
                ("x-signature", signature),
                ("x-timestamp", NOW.to_string()),
                ("x-user-ip", END_USER.to_owned()),
            ]
            .into_iter()
            .map(|(n, v)| (n.to_owned(), v))
            .collect();
            assert_eq!(
                seen[0],
                Seen {
                    headers: expected,
                    client_ip: Some(ClientIp::new(IpAddr::V4(ALLOWED), IpOrigin::Peer)),
                    verified: Some(("canonical".to_owned(), KEY_ID.to_owned())),
                    body: Bytes::from_static(BODY),
                }
            );
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn foreign_origin_is_refused_before_every_other_layer() {
            let (server, clock, handler) = start().await;
            // Foreign origin, outside the IP allowlist and with a tampered body: the origin
            // allowlist answers first.
            let api = Caller::new(&clock)
                .origin(FOREIGN_ORIGIN)
                .from(OUTSIDER)
                .tamper(Tamper::Body(b"{}"))
                .client(server);
            let answer = post(&api, server, BODY).await;
            assert_refused(
                &answer,
                StatusCode::FORBIDDEN,
                "origin_not_allowed",
                "origin is not allowed",
            );
            assert_eq!(header_values(&answer.headers, "vary"), ["Origin"]);
            assert!(answer.headers.get("access-control-allow-origin").is_none());
            assert_eq!(handler.calls(), 0);
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn caller_outside_the_ip_allowlist_is_refused() {
            let (server, clock, handler) = start().await;
            let api = Caller::new(&clock).from(OUTSIDER).client(server);
            let answer = post(&api, server, BODY).await;
            assert_refused(
                &answer,
                StatusCode::FORBIDDEN,
                "ip_not_allowed",
                "client IP is not allowed",
            );
            assert_eq!(header_values(&answer.headers, "vary"), ["Origin"]);
            assert_eq!(handler.calls(), 0);

            // The refused request claimed no nonce: the same signed request from the
            // allowed address passes.
            let api = Caller::new(&clock).client(server);
            assert_eq!(post(&api, server, BODY).await.status, StatusCode::OK);
            assert_eq!(handler.calls(), 1);
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn spoofed_forwarded_for_from_an_untrusted_peer_is_ignored() {
            let (server, clock, handler) = start().await;
            // An outsider claiming to be the allowed address is still the outsider.
            let api = Caller::new(&clock)
                .from(OUTSIDER)
                .tamper(Tamper::Header("x-forwarded-for", "127.0.0.1"))
                .client(server);
            let answer = post(&api, server, BODY).await;
            assert_refused(
                &answer,
                StatusCode::FORBIDDEN,
                "ip_not_allowed",
                "client IP is not allowed",
            );
            assert_eq!(handler.calls(), 0);

            // The allowed caller's spoofed header changes nothing, and never reaches the
            // handler.
            let api = Caller::new(&clock)
                .tamper(Tamper::Header("x-forwarded-for", "203.0.113.9"))
                .client(server);
            let answer = post(&api, server, BODY).await;
            assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
            let seen = handler.take();
            assert_eq!(
                seen[0].client_ip,
                Some(ClientIp::new(IpAddr::V4(ALLOWED), IpOrigin::Peer))
            );
            assert_eq!(seen[0].header("x-forwarded-for"), None);
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn forwarded_for_from_the_trusted_proxy_is_believed() {
            let (server, clock, handler) = start().await;
            let api = Caller::new(&clock)
                .from(PROXY)
                .tamper(Tamper::Header("x-forwarded-for", "203.0.113.9, 127.0.0.1"))
                .client(server);
            let answer = post(&api, server, BODY).await;
            assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
            let seen = handler.take();
            assert_eq!(
                seen[0].client_ip,
                Some(ClientIp::new(
                    IpAddr::V4(ALLOWED),
                    IpOrigin::ListHop {
                        header: http::HeaderName::from_static("x-forwarded-for"),
                        hop: 0,
                    }
                ))
            );
            // Inbound hygiene keeps the trusted proxy's header.
            assert_eq!(
                seen[0].header("x-forwarded-for"),
                Some("203.0.113.9, 127.0.0.1")
            );

            // The proxy forwarding for an address outside the allowlist: refused.
            clock.advance(1);
            let api = Caller::new(&clock)
                .from(PROXY)
                .tamper(Tamper::Header("x-forwarded-for", "127.0.0.1, 203.0.113.9"))
                .client(server);
            let answer = post(&api, server, BODY).await;
            assert_refused(
                &answer,
                StatusCode::FORBIDDEN,
                "ip_not_allowed",
                "client IP is not allowed",
            );
            assert_eq!(handler.calls(), 0);
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn tampered_body_is_refused() {
            let (server, clock, handler) = start().await;
            let api = Caller::new(&clock)
                .tamper(Tamper::Body(br#"{"amount":900,"currency":"EUR"}"#))
                .client(server);
            let answer = post(&api, server, BODY).await;
            assert_refused(
                &answer,
                StatusCode::UNAUTHORIZED,
                "signature_invalid",
                "the signature does not match",
            );
            assert_eq!(
                header_values(&answer.headers, "access-control-allow-origin"),
                [PARTNER_ORIGIN]
            );
            assert_eq!(handler.calls(), 0);
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn replayed_request_is_refused() {
            let (server, clock, handler) = start().await;
            let api = Caller::new(&clock).client(server);
            assert_eq!(post(&api, server, BODY).await.status, StatusCode::OK);
            // The same request in the same second from another signer (a signer never makes
            // one signature twice itself) carries the same signature: a replay.
            let other = Caller::new(&clock).client(server);
            let answer = post(&other, server, BODY).await;
            assert_refused(
                &answer,
                StatusCode::UNAUTHORIZED,
                "replayed",
                "request was already received",
            );
            assert_eq!(handler.calls(), 1);
            // A second later the signature is new.
            clock.advance(1);
            assert_eq!(post(&api, server, BODY).await.status, StatusCode::OK);
            assert_eq!(handler.calls(), 2);
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn stale_timestamp_is_refused_at_the_window_edge() {
            let (server, clock, handler) = start().await;
            for (stale, message) in [
                (
                    NOW - 301,
                    "timestamp is outside the accepted window: too old",
                ),
                (
                    NOW + 301,
                    "timestamp is outside the accepted window: too far in the future",
                ),
            ] {
                let api = Caller::new(&clock)
                    .clock(ManualClock::new(stale))
                    .client(server);
                let answer = post(&api, server, BODY).await;
                assert_refused(
                    &answer,
                    StatusCode::UNAUTHORIZED,
                    "timestamp_out_of_window",
                    message,
                );
            }
            assert_eq!(handler.calls(), 0);
            for edge in [NOW - 300, NOW + 300] {
                let api = Caller::new(&clock)
                    .clock(ManualClock::new(edge))
                    .client(server);
                let answer = post(&api, server, BODY).await;
                assert_eq!(answer.status, StatusCode::OK, "{edge}: {}", answer.body);
            }
            assert_eq!(handler.calls(), 2);
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn oversized_body_is_refused_at_the_limit() {
            static LARGE: [u8; BODY_LIMIT + 1] = [b'x'; BODY_LIMIT + 1];
            static EXACT: [u8; BODY_LIMIT] = [b'x'; BODY_LIMIT];
            let (server, clock, handler) = start().await;
            let api = Caller::new(&clock).client(server);
            let answer = post(&api, server, &LARGE).await;
            assert_refused(
                &answer,
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "request body is larger than the limit: 1024 bytes",
            );
            assert_eq!(handler.calls(), 0);
            let answer = post(&api, server, &EXACT).await;
            assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
            assert_eq!(handler.take()[0].body.len(), BODY_LIMIT);
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn client_side_refusals_send_nothing() {
            let (server, clock, handler) = start().await;
            let api = Caller::new(&clock).client(server);

            // No end-user IP: the call fails before anything is sent.
            let mut request = payment(&format!("http://{server}{PATH}"), BODY);
            request.extensions_mut().remove::<ClientIp>();
            let error = api.clone().oneshot(request).await.unwrap_err();
            assert!(error.downcast_ref::<MissingClientIp>().is_some(), "{error}");

            // Another authority than the configured upstream: the key is not sent.
            let request = payment(&format!("http://localhost:{}{PATH}", server.port()), BODY);
            let error = api.clone().oneshot(request).await.unwrap_err();
            match error.downcast_ref::<HeaderError>() {
                Some(HeaderError::UpstreamNotAllowed { header, target }) => {
                    assert_eq!(header, "x-api-key");
                    assert_eq!(target, &format!("http://localhost:{}", server.port()));
                }
                other => panic!("expected UpstreamNotAllowed, got {other:?} ({error})"),
            }
            assert!(!error.to_string().contains(API_KEY));
            assert_eq!(handler.calls(), 0);
        }
    };
}

mod axum_server {
    inbound_scenarios!(spawn_axum);
}

mod hyper_server {
    inbound_scenarios!(spawn_hyper);
}

// ---------------------------------------------------------------------------------------------
// Tranzila: a plain hyper server verifying, a hyper_util client signing.

const TRANZILA_APP_KEY: &str = "pub_app_key_full_stack";
const TRANZILA_SECRET: &str = "private_secret_full_stack";
const TRANZILA_PATH: &str = "/v1/transaction/credit_card/create";

fn tranzila_credentials(secret: &str) -> TranzilaCredentials {
    TranzilaCredentials::new(TRANZILA_APP_KEY, Secret::from_string(secret)).unwrap()
}

/// Client IP (the socket peer) → IP allowlist → Tranzila verification with the memory nonce
/// store → handler.
async fn spawn_tranzila(clock: &ManualClock, handler: Handler) -> SocketAddr {
    let listener = bind().await;
    let addr = listener.local_addr().unwrap();
    let store = MemoryNonceStore::new(1024).with_clock(clock.clone());
    let stack = ServiceBuilder::new()
        .layer(ResolveClientIpLayer::remote_addr())
        .ip_allowlist("127.0.0.1/32".parse().unwrap())
        .layer(
            TranzilaVerifyLayer::new(tranzila_credentials(TRANZILA_SECRET), store)
                .unwrap()
                .clock(clock.clone()),
        );
    tokio::spawn(async move {
        loop {
            let (stream, peer) = listener.accept().await.unwrap();
            let handler = handler.clone();
            let service = ServiceBuilder::new()
                .map_request(move |mut request: Request<Incoming>| {
                    request.extensions_mut().insert(PeerAddr::new(peer));
                    request
                })
                .layer(stack.clone())
                .service(service_fn(move |request: Request<Incoming>| {
                    let handler = handler.clone();
                    async move { Ok::<_, Infallible>(handler.record(request).await) }
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

type TranzilaApi = BoxCloneService<Request<Full<Bytes>>, Response<Incoming>, BoxError>;

fn tranzila_client(from: Ipv4Addr, signing: TranzilaSigningLayer) -> TranzilaApi {
    let mut connector = HttpConnector::new();
    connector.set_local_address(Some(IpAddr::V4(from)));
    let hyper = Client::builder(TokioExecutor::new()).build::<_, Full<Bytes>>(connector);
    BoxCloneService::new(ServiceBuilder::new().layer(signing).service(hyper))
}

/// The token goes to the test's Tranzila server only.
fn upstream(server: SocketAddr) -> Upstream {
    Upstream::parse(&format!("http://{server}")).unwrap()
}

fn signing(secret: &str, clock: ManualClock, server: SocketAddr) -> TranzilaSigningLayer {
    TranzilaSigningLayer::new(tranzila_credentials(secret), upstream(server))
        .unwrap()
        .clock(clock)
}

fn charge(server: SocketAddr, body: &'static [u8]) -> Request<Full<Bytes>> {
    Request::post(format!("http://{server}{TRANZILA_PATH}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from_static(body)))
        .unwrap()
}

const CHARGE: &[u8] = br#"{"terminal_name":"demo","txn_type":"debit","amount":10}"#;
const FIXED_NONCE: &str =
    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff0011223344556677";

async fn tranzila_send(api: &TranzilaApi, request: Request<Full<Bytes>>) -> Answer {
    let response = api.clone().oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Answer {
        status: parts.status,
        headers: parts.headers,
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tranzila_signed_call_passes_the_verify_stack() {
    let clock = ManualClock::new(NOW);
    let handler = Handler::default();
    let server = spawn_tranzila(&clock, handler.clone()).await;
    let api = tranzila_client(ALLOWED, signing(TRANZILA_SECRET, clock.clone(), server));

    let answer = tranzila_send(&api, charge(server, CHARGE)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.body, r#"{"accepted":true}"#);
    let seen = handler.take();
    assert_eq!(seen.len(), 1);
    let seen = &seen[0];
    assert_eq!(
        seen.verified,
        Some(("tranzila".to_owned(), TRANZILA_APP_KEY.to_owned()))
    );
    assert_eq!(
        seen.client_ip,
        Some(ClientIp::new(IpAddr::V4(ALLOWED), IpOrigin::Peer))
    );
    assert_eq!(seen.body, CHARGE);
    assert_eq!(
        seen.header("x-tranzila-api-app-key"),
        Some(TRANZILA_APP_KEY)
    );
    assert_eq!(
        seen.header("x-tranzila-api-request-time"),
        Some(NOW.to_string().as_str())
    );
    let nonce = seen.header("x-tranzila-api-nonce").unwrap();
    assert_eq!(nonce.len(), 80);
    assert!(nonce.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(
        seen.header("x-tranzila-api-access-token"),
        Some(
            tollgate::tranzila::access_token(
                TRANZILA_APP_KEY,
                &Secret::from_string(TRANZILA_SECRET),
                &NOW.to_string(),
                nonce
            )
            .as_str()
        )
    );

    // Every call gets a fresh nonce, so a second call in the same second passes too.
    let answer = tranzila_send(&api, charge(server, CHARGE)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let second = handler.take();
    assert_ne!(second[0].header("x-tranzila-api-nonce"), Some(nonce));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tranzila_refusals_through_the_verify_stack() {
    let clock = ManualClock::new(NOW);
    let handler = Handler::default();
    let server = spawn_tranzila(&clock, handler.clone()).await;

    // Wrong secret.
    let api = tranzila_client(ALLOWED, signing("not-the-secret", clock.clone(), server));
    let answer = tranzila_send(&api, charge(server, CHARGE)).await;
    assert_refused(
        &answer,
        StatusCode::UNAUTHORIZED,
        "signature_invalid",
        "the signature does not match: `x-tranzila-api-access-token`",
    );

    // Unknown app key.
    let other = TranzilaSigningLayer::new(
        TranzilaCredentials::new("pub_app_key_unknown", Secret::from_string(TRANZILA_SECRET))
            .unwrap(),
        upstream(server),
    )
    .unwrap()
    .clock(clock.clone());
    let answer = tranzila_send(&tranzila_client(ALLOWED, other), charge(server, CHARGE)).await;
    assert_refused(
        &answer,
        StatusCode::UNAUTHORIZED,
        "tranzila_unknown_app_key",
        "app key is not known",
    );

    // A stale request time.
    let api = tranzila_client(
        ALLOWED,
        signing(TRANZILA_SECRET, ManualClock::new(NOW - 301), server),
    );
    let answer = tranzila_send(&api, charge(server, CHARGE)).await;
    assert_refused(
        &answer,
        StatusCode::UNAUTHORIZED,
        "timestamp_out_of_window",
        "timestamp is outside the accepted window: too old",
    );
    assert_eq!(handler.calls(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tranzila_nonce_is_single_use_and_outsiders_cannot_burn_it() {
    let clock = ManualClock::new(NOW);
    let handler = Handler::default();
    let server = spawn_tranzila(&clock, handler.clone()).await;
    let fixed = || {
        signing(TRANZILA_SECRET, clock.clone(), server).with_nonce_source(|| FIXED_NONCE.to_owned())
    };

    // A caller outside the IP allowlist is refused before verification: the nonce is not
    // claimed.
    let outsider = tranzila_client(OUTSIDER, fixed());
    let answer = tranzila_send(&outsider, charge(server, CHARGE)).await;
    assert_refused(
        &answer,
        StatusCode::FORBIDDEN,
        "ip_not_allowed",
        "client IP is not allowed",
    );

    let api = tranzila_client(ALLOWED, fixed());
    let answer = tranzila_send(&api, charge(server, CHARGE)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);

    // The same headers with another payload (the token does not cover the body): replayed.
    let answer = tranzila_send(&api, charge(server, br#"{"amount":99999}"#)).await;
    assert_refused(
        &answer,
        StatusCode::UNAUTHORIZED,
        "replayed",
        "request was already received",
    );
    assert_eq!(handler.calls(), 1);
}

// ---------------------------------------------------------------------------------------------
// tonic: the ready-made health service behind client IP + IP allowlist with gRPC rejections.

mod tonic_server {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tonic::transport::Endpoint;
    use tonic::transport::server::TcpIncoming;
    use tonic_health::ServingStatus;
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_check_response::ServingStatus as CheckStatus;
    use tonic_health::pb::health_client::HealthClient;

    use super::*;

    async fn spawn(calls: Arc<AtomicUsize>) -> SocketAddr {
        let (reporter, health) = tonic_health::server::health_reporter();
        reporter
            .set_service_status("", ServingStatus::Serving)
            .await;
        reporter
            .set_service_status("tollgate.Payments", ServingStatus::NotServing)
            .await;
        let guard = ServiceBuilder::new()
            .layer(ResolveClientIpLayer::remote_addr().on_rejection(RejectionResponder::grpc()))
            .layer(
                IpAllowlistLayer::new("127.0.0.1/32".parse().unwrap())
                    .on_rejection(RejectionResponder::grpc()),
            )
            .map_request(move |request: http::Request<tonic::body::Body>| {
                calls.fetch_add(1, Ordering::SeqCst);
                request
            });
        let listener = bind().await;
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            // The reporter lives as long as the server.
            let _reporter = reporter;
            tonic::transport::Server::builder()
                .layer(guard)
                .add_service(health)
                .serve_with_incoming(TcpIncoming::from(listener))
                .await
                .unwrap();
        });
        addr
    }

    async fn check(
        server: SocketAddr,
        from: Ipv4Addr,
        service: &str,
    ) -> Result<CheckStatus, tonic::Status> {
        let mut connector = HttpConnector::new();
        connector.set_local_address(Some(IpAddr::V4(from)));
        let channel = Endpoint::from_shared(format!("http://{server}"))
            .unwrap()
            .connect_with_connector(connector)
            .await
            .unwrap();
        let response = HealthClient::new(channel)
            .check(HealthCheckRequest {
                service: service.to_owned(),
            })
            .await?;
        Ok(response.into_inner().status())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn allowed_caller_gets_serving_and_outsider_gets_permission_denied() {
        let calls = Arc::new(AtomicUsize::new(0));
        let server = spawn(Arc::clone(&calls)).await;

        assert_eq!(
            check(server, ALLOWED, "").await.unwrap(),
            CheckStatus::Serving
        );
        assert_eq!(
            check(server, ALLOWED, "tollgate.Payments").await.unwrap(),
            CheckStatus::NotServing
        );
        let unknown = check(server, ALLOWED, "tollgate.Unknown")
            .await
            .unwrap_err();
        assert_eq!(unknown.code(), tonic::Code::NotFound);
        assert_eq!(calls.load(Ordering::SeqCst), 3);

        let refused = check(server, OUTSIDER, "").await.unwrap_err();
        assert_eq!(refused.code(), tonic::Code::PermissionDenied);
        assert_eq!(
            refused.message(),
            "ip_not_allowed: client IP is not allowed"
        );
        assert_eq!(
            calls.load(Ordering::SeqCst),
            3,
            "the service ran for an outsider"
        );
    }
}
