//! The Transak presets and `ServiceBuilderExt` over `service_fn` echoes: exact statuses,
//! headers and JSON bodies.
#![cfg(all(feature = "origin", feature = "client-ip", feature = "headers"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use tollgate::ServiceBuilderExt;
use tollgate::client_ip::{ClientIp, IpAllowlistLayer, MissingClientIp, PeerAddr};
use tollgate::core::Secret;
use tollgate::headers::{HeaderError, HeaderHygieneLayer, Upstream};
use tollgate::transak::{TransakInbound, TransakOutbound};
use tower::{ServiceBuilder, ServiceExt, service_fn};

const APP: &str = "https://app.example.com";

fn from_peer(peer: &str, origin: Option<&str>) -> Request<Full<Bytes>> {
    let mut builder = Request::post("/api/widget-url");
    if let Some(origin) = origin {
        builder = builder.header("origin", origin);
    }
    let mut request = builder.body(Full::new(Bytes::new())).unwrap();
    request
        .extensions_mut()
        .insert(PeerAddr::new(peer.parse::<SocketAddr>().unwrap()));
    request
}

async fn echo_ip(request: Request<Full<Bytes>>) -> Result<Response<Full<Bytes>>, Infallible> {
    let ip = request
        .extensions()
        .get::<ClientIp>()
        .map(|ip| ip.ip().to_string())
        .unwrap_or_default();
    Ok(Response::new(Full::new(Bytes::from(ip))))
}

async fn body_json<B>(response: Response<B>) -> serde_json::Value
where
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn inbound_allows_listed_origin_and_records_client_ip() {
    let inbound = TransakInbound::new([APP], "remote-addr".parse().unwrap()).unwrap();
    let service = ServiceBuilder::new()
        .layer(inbound)
        .service(service_fn(echo_ip));
    let response = service
        .oneshot(from_peer("198.51.100.7:5000", Some(APP)))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["access-control-allow-origin"], APP);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "198.51.100.7");
}

#[tokio::test]
async fn inbound_refuses_foreign_origin_before_the_handler() {
    let calls = Arc::new(Mutex::new(0));
    let counted = calls.clone();
    let inbound = TransakInbound::new([APP], "remote-addr".parse().unwrap()).unwrap();
    let service = ServiceBuilder::new()
        .layer(inbound)
        .service(service_fn(move |request| {
            *counted.lock().unwrap() += 1;
            echo_ip(request)
        }));
    let response = service
        .oneshot(from_peer("198.51.100.7:5000", Some("https://evil.example")))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        body_json(response).await["error"]["code"],
        "origin_not_allowed"
    );
    assert_eq!(*calls.lock().unwrap(), 0);
}

#[tokio::test]
async fn inbound_ip_allowlist_answers_403_json() {
    let inbound = TransakInbound::new([APP], "remote-addr".parse().unwrap())
        .unwrap()
        .ip_allowlist(IpAllowlistLayer::new("203.0.113.0/24".parse().unwrap()));
    let service = ServiceBuilder::new()
        .layer(inbound)
        .service(service_fn(echo_ip));
    let refused = service
        .clone()
        .oneshot(from_peer("198.51.100.7:5000", Some(APP)))
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(body_json(refused).await["error"]["code"], "ip_not_allowed");
    let allowed = service
        .oneshot(from_peer("203.0.113.9:5000", Some(APP)))
        .await
        .unwrap();
    assert_eq!(allowed.status(), StatusCode::OK);
}

fn preflight(method: &str) -> Request<Full<Bytes>> {
    Request::options("/api/widget-url")
        .header("origin", APP)
        .header("access-control-request-method", method)
        .header("access-control-request-headers", "content-type")
        .body(Full::new(Bytes::new()))
        .unwrap()
}

#[tokio::test]
async fn inbound_new_keeps_get_and_post() {
    let inbound = TransakInbound::new([APP], "remote-addr".parse().unwrap()).unwrap();
    let service = ServiceBuilder::new()
        .layer(inbound)
        .service(service_fn(echo_ip));
    let response = service.oneshot(preflight("POST")).await.unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    assert_eq!(
        response.headers()["access-control-allow-methods"],
        "GET, POST"
    );
    assert_eq!(
        response.headers()["access-control-allow-headers"],
        "content-type"
    );
    assert_eq!(response.headers()["access-control-max-age"], "600");
}

#[tokio::test]
async fn inbound_post_only_preflight_advertises_only_post() {
    let inbound = TransakInbound::builder([APP], "remote-addr".parse().unwrap())
        .methods([http::Method::POST])
        .build()
        .unwrap();
    let service = ServiceBuilder::new()
        .layer(inbound)
        .service(service_fn(echo_ip));
    let response = service.clone().oneshot(preflight("POST")).await.unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    assert_eq!(response.headers()["access-control-allow-methods"], "POST");
    assert_eq!(
        response.headers()["access-control-allow-headers"],
        "content-type"
    );
    // A preflight for GET is no longer granted.
    let response = service.oneshot(preflight("GET")).await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(
        response
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    assert_eq!(
        body_json(response).await["error"]["code"],
        tollgate::core::rejection::code::METHOD_NOT_ALLOWED
    );
}

#[tokio::test]
async fn inbound_builder_takes_the_rest_of_the_origin_config() {
    let inbound =
        TransakInbound::builder(["http://localhost:5173"], "remote-addr".parse().unwrap())
            .allow_http_origins(true)
            .headers(["content-type", "x-request-id"])
            .max_age(std::time::Duration::from_secs(60))
            .origin_policy(|origin| origin.bypass_path("/healthz"))
            .ip_allowlist(IpAllowlistLayer::new("203.0.113.0/24".parse().unwrap()))
            .build()
            .unwrap();
    let service = ServiceBuilder::new()
        .layer(inbound)
        .service(service_fn(echo_ip));
    let mut request = preflight("POST");
    request
        .headers_mut()
        .insert("origin", "http://localhost:5173".parse().unwrap());
    let response = service.clone().oneshot(request).await.unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    assert_eq!(
        response.headers()["access-control-allow-headers"],
        "content-type, x-request-id"
    );
    assert_eq!(response.headers()["access-control-max-age"], "60");
    // The IP allowlist is still there.
    let refused = service
        .oneshot(from_peer(
            "198.51.100.7:5000",
            Some("http://localhost:5173"),
        ))
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(body_json(refused).await["error"]["code"], "ip_not_allowed");
}

#[test]
fn inbound_builder_refuses_an_invalid_method_at_build_time() {
    let built = TransakInbound::builder([APP], "remote-addr".parse().unwrap())
        .methods(["GET POST"])
        .build();
    assert!(built.is_err());
}

#[test]
fn inbound_refuses_wildcard_origin_at_build_time() {
    assert!(TransakInbound::new(["*"], "remote-addr".parse().unwrap()).is_err());
}

type Seen = Arc<Mutex<Option<http::HeaderMap>>>;

fn recording() -> (
    Seen,
    impl tower::Service<
        Request<Full<Bytes>>,
        Response = Response<Full<Bytes>>,
        Error = tollgate::core::BoxError,
        Future = impl Send,
    > + Clone,
) {
    let seen: Seen = Arc::default();
    let writer = seen.clone();
    let service = service_fn(move |request: Request<Full<Bytes>>| {
        *writer.lock().unwrap() = Some(request.headers().clone());
        async { Ok(Response::new(Full::new(Bytes::new()))) }
    });
    (seen, service)
}

fn outbound() -> TransakOutbound {
    TransakOutbound::new(
        Upstream::parse("http://127.0.0.1:9").unwrap(),
        Secret::from_string("partner-key"),
        Secret::from_string("partner-token"),
    )
    .unwrap()
}

#[tokio::test]
async fn outbound_strips_browser_headers_and_sets_backend_ones() {
    let (seen, client) = recording();
    let service = ServiceBuilder::new().layer(outbound()).service(client);
    let mut request = Request::post("http://127.0.0.1:9/api/v2/auth/session")
        .header("origin", APP)
        .header("referer", "https://app.example.com/buy")
        .header("cookie", "session=1")
        .header("x-api-key", "client-supplied")
        .header("x-user-ip", "6.6.6.6")
        .body(Full::new(Bytes::new()))
        .unwrap();
    request.extensions_mut().insert(ClientIp::new(
        "198.51.100.7".parse().unwrap(),
        tollgate::client_ip::IpOrigin::Peer,
    ));
    service.oneshot(request).await.unwrap();
    let headers = seen.lock().unwrap().clone().unwrap();
    assert!(headers.get("origin").is_none());
    assert!(headers.get("referer").is_none());
    assert!(headers.get("cookie").is_none());
    assert_eq!(headers.get_all("x-api-key").iter().count(), 1);
    assert_eq!(headers["x-api-key"], "partner-key");
    assert!(headers["x-api-key"].is_sensitive());
    assert_eq!(headers["access-token"], "partner-token");
    assert_eq!(headers["x-user-ip"], "198.51.100.7");
}

#[tokio::test]
async fn outbound_without_client_ip_fails_and_sends_nothing() {
    let (seen, client) = recording();
    let service = ServiceBuilder::new().layer(outbound()).service(client);
    let request = Request::post("http://127.0.0.1:9/api/v2/auth/session")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let error = service.oneshot(request).await.unwrap_err();
    assert!(error.downcast_ref::<MissingClientIp>().is_some(), "{error}");
    assert!(seen.lock().unwrap().is_none());
}

#[tokio::test]
async fn outbound_refuses_another_authority() {
    let (seen, client) = recording();
    let service = ServiceBuilder::new()
        .layer(outbound().hygiene(HeaderHygieneLayer::server_to_server()))
        .service(client);
    let request = Request::post("http://127.0.0.1:10/api/v2/auth/session")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let error = ClientIp::new(
        "198.51.100.7".parse().unwrap(),
        tollgate::client_ip::IpOrigin::Peer,
    )
    .scope(service.oneshot(request))
    .await
    .unwrap_err();
    assert!(
        matches!(
            error.downcast_ref::<HeaderError>(),
            Some(HeaderError::UpstreamNotAllowed { .. })
        ),
        "{error}"
    );
    assert!(seen.lock().unwrap().is_none());
}

#[tokio::test]
async fn service_builder_ext_stacks_in_call_order() {
    let (seen, client) = recording();
    let service = ServiceBuilder::new()
        .header_hygiene(HeaderHygieneLayer::server_to_server())
        .forward_user_ip()
        .service(client);
    let request = Request::get("http://127.0.0.1:9/")
        .header("origin", APP)
        .body(Full::new(Bytes::new()))
        .unwrap();
    ClientIp::new(
        "2001:db8::7".parse().unwrap(),
        tollgate::client_ip::IpOrigin::Peer,
    )
    .scope(service.oneshot(request))
    .await
    .unwrap();
    let headers = seen.lock().unwrap().clone().unwrap();
    assert!(headers.get("origin").is_none());
    assert_eq!(headers["x-user-ip"], "2001:db8::7");
}

/// The outbound preset, boxed as `BoxedClient`, stored in axum state and called from a
/// handler behind the client-IP layer (the request comes "from" a peer set in the test).
#[tokio::test]
async fn boxed_client_lives_in_axum_state() {
    use axum::extract::State;
    use axum::routing::post;
    use tollgate::BoxedClient;
    use tollgate::client_ip::{ResolveClientIpLayer, SetPeerAddrLayer};

    #[derive(Clone)]
    struct AppState {
        transak: BoxedClient<Full<Bytes>, Full<Bytes>>,
    }

    async fn handler(State(state): State<AppState>) -> StatusCode {
        let request = Request::post("http://127.0.0.1:9/api/v2/auth/session")
            .body(Full::new(Bytes::new()))
            .unwrap();
        match state.transak.clone().oneshot(request).await {
            Ok(response) => response.status(),
            Err(_) => StatusCode::BAD_GATEWAY,
        }
    }

    let (seen, client) = recording();
    let transak = BoxedClient::new(ServiceBuilder::new().layer(outbound()).service(client));
    let app = axum::Router::new()
        .route("/api/widget-url", post(handler))
        .with_state(AppState { transak })
        .layer(ResolveClientIpLayer::new("remote-addr".parse().unwrap()))
        .layer(SetPeerAddrLayer::new("198.51.100.7:5000".parse().unwrap()));
    let response = app
        .oneshot(
            Request::post("/api/widget-url")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let headers = seen.lock().unwrap().clone().unwrap();
    assert_eq!(headers["x-user-ip"], "198.51.100.7");
    assert_eq!(headers["x-api-key"], "partner-key");
}
