//! Over real TCP on 127.0.0.1: an axum server and a plain hyper server with the inbound
//! layers, a `hyper_util` client with `ForwardUserIpLayer`, and a mock provider that records
//! every `x-user-ip` it receives.
#![cfg(feature = "axum")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::routing::get;
use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tollgate_client_ip::{
    ClientIp, ClientIpSource, ForwardUserIp, ForwardUserIpLayer, IpAllowlistLayer, IpRanges,
    MissingClientIp, PeerAddr, ResolveClientIpLayer,
};
use tower::{ServiceBuilder, ServiceExt, service_fn};

/// Whether handlers run inside the client-IP scope in this build.
const SCOPED: bool = cfg!(feature = "task-local");

type PlainClient = Client<HttpConnector, Full<Bytes>>;
type ProviderClient = ForwardUserIp<PlainClient>;

fn plain_client() -> PlainClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// The mock provider: answers every call with the `x-user-ip` values it got, joined by `|`,
/// and 400 with Transak's message when there is not exactly one valid address.
struct Provider {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Vec<String>>>>,
}

impl Provider {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen: Arc<Mutex<Vec<Vec<String>>>> = Arc::default();
        let record = seen.clone();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let record = record.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                        let record = record.clone();
                        async move {
                            let values: Vec<String> = request
                                .headers()
                                .get_all("x-user-ip")
                                .iter()
                                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                                .collect();
                            record.lock().unwrap().push(values.clone());
                            let valid =
                                values.len() == 1 && values[0].parse::<std::net::IpAddr>().is_ok();
                            let mut response = Response::new(Full::new(Bytes::from(if valid {
                                values.join("|")
                            } else {
                                "x-user-ip must be a valid IPv4 or IPv6 address".to_owned()
                            })));
                            if !valid {
                                *response.status_mut() = StatusCode::BAD_REQUEST;
                            }
                            Ok::<_, Infallible>(response)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { addr, seen }
    }

    fn calls(&self) -> Vec<Vec<String>> {
        self.seen.lock().unwrap().clone()
    }

    fn client(&self) -> ProviderClient {
        ServiceBuilder::new()
            .layer(ForwardUserIpLayer::new())
            .service(plain_client())
    }

    fn request(&self, copied_user_ip: Option<&str>) -> Request<Full<Bytes>> {
        let mut request = Request::post(format!("http://{}/api/v2/quote", self.addr))
            .body(Full::new(Bytes::from_static(b"{}")))
            .unwrap();
        if let Some(value) = copied_user_ip {
            request
                .headers_mut()
                .insert("x-user-ip", value.parse().unwrap());
        }
        request
    }
}

async fn text(response: Response<Incoming>) -> (StatusCode, HeaderMap, String) {
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8(body.to_vec()).unwrap())
}

async fn get_with(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, HeaderMap, String) {
    let mut request = Request::get(format!("http://{addr}{path}"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    for (name, value) in headers {
        request.headers_mut().append(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    text(plain_client().request(request).await.unwrap()).await
}

/// An axum app behind `ResolveClientIpLayer` (and optionally the allowlist), served with
/// connect info.
async fn start_axum(
    source: ClientIpSource,
    allow: Option<IpRanges>,
    provider: &Provider,
) -> SocketAddr {
    let client = provider.client();
    let provider_addr = provider.addr;
    let quote = {
        let client = client.clone();
        move |inbound: HeaderMap, _ip: Option<ClientIp>| {
            let client = client.clone();
            async move {
                // A careless handler copies the browser's x-user-ip; the layer must replace it.
                let mut outbound = Request::post(format!("http://{provider_addr}/api/v2/quote"))
                    .body(Full::new(Bytes::new()))
                    .unwrap();
                if let Some(value) = inbound.get("x-user-ip") {
                    outbound.headers_mut().insert("x-user-ip", value.clone());
                }
                // With feature `task-local` the client IP reaches the outbound layer through the
                // scope; without it, the handler hands it on.
                #[cfg(not(feature = "task-local"))]
                if let Some(ip) = _ip {
                    outbound.extensions_mut().insert(ip);
                }
                match client.oneshot(outbound).await {
                    Ok(response) => {
                        let body = response.into_body().collect().await.unwrap().to_bytes();
                        (StatusCode::OK, String::from_utf8(body.to_vec()).unwrap())
                    }
                    Err(err) => (StatusCode::BAD_GATEWAY, err.to_string()),
                }
            }
        }
    };
    #[cfg(feature = "task-local")]
    let spawned = {
        let client = client.clone();
        move |ip: ClientIp| {
            let client = client.clone();
            async move {
                let request = || {
                    Request::post(format!("http://{provider_addr}/api/v2/quote"))
                        .body(Full::new(Bytes::new()))
                        .unwrap()
                };
                // A spawned task does not inherit the scope: the call must fail, typed.
                let bare = tokio::spawn(client.clone().oneshot(request()))
                    .await
                    .unwrap();
                let bare = match bare {
                    Err(err) if err.downcast_ref::<MissingClientIp>().is_some() => "missing",
                    Err(_) => "other error",
                    Ok(_) => "sent",
                };
                // Carrying the IP into the task explicitly works.
                let carried = tokio::spawn(ip.scope(client.oneshot(request())))
                    .await
                    .unwrap()
                    .unwrap();
                let carried = carried.into_body().collect().await.unwrap().to_bytes();
                format!("{bare} {}", String::from_utf8(carried.to_vec()).unwrap())
            }
        }
    };
    let app = Router::new()
        .route(
            "/ip",
            get(|ip: ClientIp| async move { format!("{ip} {:?}", ip.origin()) }),
        )
        .route(
            "/maybe",
            get(|ip: Option<ClientIp>| async move { format!("{ip:?}") }),
        )
        .route("/quote", get(quote));
    #[cfg(feature = "task-local")]
    let app = app.route("/spawned", get(spawned));
    let app = match allow {
        Some(allow) => app.layer(IpAllowlistLayer::new(allow)),
        None => app,
    };
    let app = app.layer(ResolveClientIpLayer::new(source));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
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

#[tokio::test]
async fn axum_sets_the_extension_from_connect_info() {
    let provider = Provider::start().await;
    let addr = start_axum(ClientIpSource::remote_addr(), None, &provider).await;
    let (status, _, body) = get_with(addr, "/ip", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "127.0.0.1 Peer");
}

#[tokio::test]
async fn spoofed_forwarded_for_from_untrusted_peer_is_ignored() {
    let provider = Provider::start().await;
    // Only 10.0.0.0/8 is a trusted proxy; the test connects from 127.0.0.1.
    let source = "rightmost-trusted-range:x-forwarded-for:10.0.0.0/8"
        .parse()
        .unwrap();
    let addr = start_axum(source, None, &provider).await;
    let spoof = [
        ("x-forwarded-for", "6.6.6.6"),
        ("x-forwarded-for", "7.7.7.7, 10.0.0.2"),
        ("forwarded", "for=8.8.8.8"),
        ("cf-connecting-ip", "9.9.9.9"),
    ];
    let (status, _, body) = get_with(addr, "/ip", &spoof).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "127.0.0.1 Peer");
}

#[tokio::test]
async fn trusted_proxy_header_is_used_and_garbage_is_400() {
    let provider = Provider::start().await;
    let source = "rightmost-trusted-range:x-forwarded-for:loopback,10.0.0.0/8"
        .parse()
        .unwrap();
    let addr = start_axum(source, None, &provider).await;
    let (status, _, body) = get_with(
        addr,
        "/ip",
        &[
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-for", "203.0.113.7:5050, 10.0.0.2"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        "203.0.113.7 ListHop { header: \"x-forwarded-for\", hop: 1 }"
    );

    let (status, headers, body) =
        get_with(addr, "/ip", &[("x-forwarded-for", "1.1.1.1, unknown")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(
        body,
        r#"{"error":{"code":"invalid_client_ip","message":"no valid client IP could be derived from the request"}}"#
    );
}

#[tokio::test]
async fn user_ip_reaches_the_provider_on_every_call_replacing_the_clients() {
    let provider = Provider::start().await;
    let source = "rightmost-trusted-range:x-forwarded-for:127.0.0.1"
        .parse()
        .unwrap();
    let addr = start_axum(source, None, &provider).await;

    let (status, _, body) = get_with(
        addr,
        "/quote",
        &[("x-forwarded-for", "203.0.113.9"), ("x-user-ip", "6.6.6.6")],
    )
    .await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "203.0.113.9"));
    let (status, _, body) = get_with(addr, "/quote", &[("x-user-ip", "not an ip")]).await;
    // No forwarding header from the trusted proxy: the rightmost source has no IP → 400,
    // and the provider is never called.
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("invalid_client_ip"), "{body}");
    let (status, _, body) = get_with(
        addr,
        "/quote",
        &[
            ("x-forwarded-for", "[2001:db8::5]:443"),
            ("x-user-ip", "6.6.6.6"),
        ],
    )
    .await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "2001:db8::5"));

    assert_eq!(
        provider.calls(),
        vec![
            vec!["203.0.113.9".to_owned()],
            vec!["2001:db8::5".to_owned()]
        ]
    );
}

#[cfg(feature = "task-local")]
#[tokio::test]
async fn spawned_tasks_do_not_inherit_the_scope() {
    let provider = Provider::start().await;
    let addr = start_axum(ClientIpSource::remote_addr(), None, &provider).await;
    let (status, _, body) = get_with(addr, "/spawned", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "missing 127.0.0.1");
    // Only the explicitly scoped call was sent.
    assert_eq!(provider.calls(), vec![vec!["127.0.0.1".to_owned()]]);
}

#[tokio::test]
async fn call_without_client_ip_fails_with_the_typed_error() {
    let provider = Provider::start().await;
    let err = provider
        .client()
        .oneshot(provider.request(Some("6.6.6.6")))
        .await
        .unwrap_err();
    assert!(err.downcast_ref::<MissingClientIp>().is_some(), "{err}");
    assert!(provider.calls().is_empty());

    // With the extension, the same request goes out with the client's value replaced.
    let mut request = provider.request(Some("6.6.6.6"));
    request.extensions_mut().insert(ClientIp::new(
        "198.51.100.20".parse().unwrap(),
        tollgate_client_ip::IpOrigin::Other,
    ));
    let response = provider.client().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(provider.calls(), vec![vec!["198.51.100.20".to_owned()]]);
}

#[tokio::test]
async fn allowlist_answers_403_with_the_json_rejection() {
    let provider = Provider::start().await;
    let source = "rightmost-trusted-range:x-forwarded-for:loopback"
        .parse()
        .unwrap();
    let allow: IpRanges = "192.0.2.0/24".parse().unwrap();
    let addr = start_axum(source, Some(allow), &provider).await;
    let (status, _, body) = get_with(addr, "/ip", &[("x-forwarded-for", "192.0.2.44")]).await;
    assert_eq!(
        (status, body.as_str()),
        (
            StatusCode::OK,
            "192.0.2.44 ListHop { header: \"x-forwarded-for\", hop: 0 }"
        )
    );
    let (status, headers, body) =
        get_with(addr, "/ip", &[("x-forwarded-for", "198.51.100.44")]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(
        body,
        r#"{"error":{"code":"ip_not_allowed","message":"client IP is not allowed"}}"#
    );
}

#[tokio::test]
async fn extractor_without_layer_is_500_and_option_is_none() {
    let app = Router::new()
        .route("/ip", get(|ip: ClientIp| async move { ip.to_string() }))
        .route(
            "/maybe",
            get(|ip: Option<ClientIp>| async move { format!("{ip:?}") }),
        );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let (status, _, body) = get_with(addr, "/ip", &[]).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        body,
        r#"{"error":{"code":"client_ip_misconfigured","message":"the server cannot determine the client IP"}}"#
    );
    let (status, _, body) = get_with(addr, "/maybe", &[]).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "None"));
}

#[tokio::test]
async fn axum_without_connect_info_is_misconfigured() {
    let app = Router::new()
        .route("/ip", get(|ip: ClientIp| async move { ip.to_string() }))
        .layer(ResolveClientIpLayer::remote_addr());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Served without `into_make_service_with_connect_info`: no peer reaches the layer.
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let (status, _, body) = get_with(addr, "/ip", &[("x-forwarded-for", "1.2.3.4")]).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        body,
        r#"{"error":{"code":"client_ip_misconfigured","message":"the server cannot determine the client IP"}}"#
    );
}

/// A plain hyper server: `PeerAddr` inserted per connection, then `ResolveClientIpLayer` and
/// the allowlist, over a `service_fn`.
async fn start_hyper(source: ClientIpSource, allow: IpRanges) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, peer) = listener.accept().await.unwrap();
            let service = ServiceBuilder::new()
                .map_request(move |mut request: Request<Incoming>| {
                    request.extensions_mut().insert(PeerAddr::new(peer));
                    request
                })
                .layer(ResolveClientIpLayer::new(source.clone()))
                .layer(IpAllowlistLayer::new(allow.clone()))
                .service(service_fn(|request: Request<Incoming>| async move {
                    let ip = request.extensions().get::<ClientIp>().unwrap();
                    #[cfg(feature = "task-local")]
                    let scoped = ClientIp::current().is_some_and(|c| &c == ip);
                    #[cfg(not(feature = "task-local"))]
                    let scoped = false;
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(format!(
                        "{ip} scoped={scoped}"
                    )))))
                }));
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
                    .await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn hyper_server_with_peer_addr() {
    let source = "header:x-real-ip:10.0.0.0/8 or remote-addr"
        .parse()
        .unwrap();
    let addr = start_hyper(source, "127.0.0.0/8".parse().unwrap()).await;
    // x-real-ip from an untrusted peer (loopback is not in 10/8) is ignored.
    let (status, _, body) = get_with(addr, "/", &[("x-real-ip", "192.0.2.1")]).await;
    assert_eq!(
        (status, body.as_str()),
        (
            StatusCode::OK,
            format!("127.0.0.1 scoped={SCOPED}").as_str()
        )
    );

    let trusting = "header:x-real-ip:loopback".parse().unwrap();
    let addr = start_hyper(trusting, "192.0.2.0/24".parse().unwrap()).await;
    let (status, _, body) = get_with(addr, "/", &[("x-real-ip", "192.0.2.1")]).await;
    assert_eq!(
        (status, body.as_str()),
        (
            StatusCode::OK,
            format!("192.0.2.1 scoped={SCOPED}").as_str()
        )
    );
    let (status, _, body) = get_with(addr, "/", &[("x-real-ip", "198.51.100.1")]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        body,
        r#"{"error":{"code":"ip_not_allowed","message":"client IP is not allowed"}}"#
    );
    let (status, _, body) = get_with(addr, "/", &[("x-real-ip", "192.0.2.1, 192.0.2.2")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("\"invalid_client_ip\""), "{body}");
}
