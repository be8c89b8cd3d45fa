//! The axum extractor after a continuing `ResolveClientIpLayer`: 400 for the client's
//! garbage, 500 for a missing peer, the IP otherwise (feature `axum`).
#![cfg(feature = "axum")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::{Router, routing::get};
use http::{HeaderValue, Request, StatusCode};
use tollgate_client_ip::{ClientIp, PeerAddr};
use tower::ServiceExt;

use common::{behind_proxy, body_string, ip};

#[tokio::test]
async fn extractor_after_a_continuing_layer_answers_400_for_client_garbage() {
    let app = Router::new()
        .route("/", get(|ip: ClientIp| async move { ip.to_string() }))
        .layer(behind_proxy().continue_on_failure());
    let call = |peer_ip: Option<&str>, xff_value: &str| {
        let mut request = Request::get("/").body(::axum::body::Body::empty()).unwrap();
        request
            .headers_mut()
            .insert("x-forwarded-for", HeaderValue::from_str(xff_value).unwrap());
        if let Some(peer_ip) = peer_ip {
            request
                .extensions_mut()
                .insert(PeerAddr::new(std::net::SocketAddr::new(ip(peer_ip), 1)));
        }
        app.clone().oneshot(request)
    };
    let response = call(Some("10.0.0.1"), "192.0.2.1, garbage").await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        body_string(response).await,
        r#"{"error":{"code":"invalid_client_ip","message":"no valid client IP could be derived from the request"}}"#
    );
    let response = call(None, "192.0.2.1").await.unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        body_string(response).await,
        r#"{"error":{"code":"client_ip_misconfigured","message":"the server cannot determine the client IP"}}"#
    );
    let response = call(Some("10.0.0.1"), "192.0.2.1").await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body_string(response).await, "192.0.2.1");
}
