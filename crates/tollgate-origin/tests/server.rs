//! The layer in front of an axum server on a real loopback socket, called with the
//! `hyper_util` client.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpListener;
use tollgate_origin::OriginAllowlistLayer;

const APP: &str = "https://app.example.com";

struct Server {
    base: String,
    calls: Arc<AtomicUsize>,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Server {
    async fn start() -> Self {
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&calls);
        let layer = OriginAllowlistLayer::builder()
            .allow_origins([APP, "https://*.shop.example.com"])
            .allow_methods(["GET", "POST"])
            .allow_headers(["content-type"])
            .allow_credentials(true)
            .max_age(Duration::from_secs(300))
            .bypass_path("/healthz")
            .build()
            .unwrap();
        let app = Router::new()
            .route(
                "/api/widget-session",
                post(move || {
                    counter.fetch_add(1, Ordering::SeqCst);
                    async {
                        (
                            [("content-type", "application/json")],
                            r#"{"session":"s-1"}"#,
                        )
                    }
                }),
            )
            .route("/healthz", get(|| async { "ok" }))
            .layer(layer);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            base,
            calls,
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
    ) -> (StatusCode, HeaderMap, String) {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request
            .body(Full::new(Bytes::from_static(b"amount=1")))
            .unwrap();
        let response = self.client.request(request).await.unwrap();
        let (parts, body) = response.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        (
            parts.status,
            parts.headers,
            String::from_utf8(body.to_vec()).unwrap(),
        )
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

fn vary(headers: &HeaderMap) -> Vec<&str> {
    headers
        .get_all("vary")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect()
}

#[tokio::test]
async fn allowed_origin_over_tcp() {
    let server = Server::start().await;
    let (status, headers, body) = server
        .send(Method::POST, "/api/widget-session", &[("origin", APP)])
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, r#"{"session":"s-1"}"#);
    assert_eq!(headers["access-control-allow-origin"], APP);
    assert_eq!(headers["access-control-allow-credentials"], "true");
    assert_eq!(vary(&headers), ["Origin"]);
    assert_eq!(server.calls(), 1);

    let shop = "https://berlin.shop.example.com";
    let (status, headers, _) = server
        .send(Method::POST, "/api/widget-session", &[("origin", shop)])
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["access-control-allow-origin"], shop);
    assert_eq!(server.calls(), 2);
}

#[tokio::test]
async fn foreign_origin_over_tcp_never_reaches_the_handler() {
    let server = Server::start().await;
    for origin in [
        "https://evil.example",
        "https://app.example.com.evil.example",
        "https://shop.example.com",
        "https://a.b.shop.example.com",
        "http://app.example.com",
        "null",
    ] {
        let (status, headers, body) = server
            .send(Method::POST, "/api/widget-session", &[("origin", origin)])
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{origin}");
        let expected = if origin == "null" {
            r#"{"error":{"code":"origin_not_allowed","message":"origin is not allowed: the null origin is never allowed"}}"#
        } else {
            r#"{"error":{"code":"origin_not_allowed","message":"origin is not allowed"}}"#
        };
        assert_eq!(body, expected);
        assert_eq!(headers["content-type"], "application/json");
        assert!(headers.get("access-control-allow-origin").is_none());
        assert!(headers.get("access-control-allow-credentials").is_none());
        assert_eq!(vary(&headers), ["Origin"]);
    }
    let (status, _, _) = server
        .send(
            Method::POST,
            "/api/widget-session",
            &[("sec-fetch-site", "cross-site")],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(server.calls(), 0);
}

#[tokio::test]
async fn preflight_over_tcp() {
    let server = Server::start().await;
    let (status, headers, body) = server
        .send(
            Method::OPTIONS,
            "/api/widget-session",
            &[
                ("origin", APP),
                ("access-control-request-method", "POST"),
                ("access-control-request-headers", "content-type"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(body, "");
    assert_eq!(headers["access-control-allow-origin"], APP);
    assert_eq!(headers["access-control-allow-methods"], "GET, POST");
    assert_eq!(headers["access-control-allow-headers"], "content-type");
    assert_eq!(headers["access-control-allow-credentials"], "true");
    assert_eq!(headers["access-control-max-age"], "300");

    let (status, _, body) = server
        .send(
            Method::OPTIONS,
            "/api/widget-session",
            &[
                ("origin", APP),
                ("access-control-request-method", "POST"),
                (
                    "access-control-request-headers",
                    "content-type, x-partner-secret",
                ),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        body,
        r#"{"error":{"code":"header_not_allowed","message":"header is not allowed"}}"#
    );
    assert_eq!(server.calls(), 0);
}

#[tokio::test]
async fn server_to_server_and_bypass_over_tcp() {
    let server = Server::start().await;
    let (status, headers, body) = server.send(Method::POST, "/api/widget-session", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, r#"{"session":"s-1"}"#);
    assert!(headers.get("access-control-allow-origin").is_none());
    assert_eq!(vary(&headers), ["Origin"]);
    assert_eq!(server.calls(), 1);

    let (status, headers, body) = server
        .send(
            Method::GET,
            "/healthz",
            &[("origin", "https://evil.example")],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "ok");
    assert!(headers.get("access-control-allow-origin").is_none());
    assert_eq!(vary(&headers), ["Origin"]);
}

/// `HEAD` over a real connection: the refusal and the allowed answer carry their headers but
/// no body, and the connection stays usable for the next request (the framing is right).
#[tokio::test]
async fn head_over_tcp_keeps_the_connection_framed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let server = Server::start().await;
    let address = server.base.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    let requests = format!(
        "HEAD /api/widget-session HTTP/1.1\r\nhost: {address}\r\norigin: https://evil.example\r\n\r\n\
         HEAD /healthz HTTP/1.1\r\nhost: {address}\r\norigin: {APP}\r\n\r\n\
         GET /healthz HTTP/1.1\r\nhost: {address}\r\nconnection: close\r\n\r\n"
    );
    stream.write_all(requests.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw))
        .await
        .unwrap()
        .unwrap();
    let raw = String::from_utf8(raw).unwrap().to_ascii_lowercase();
    let responses: Vec<&str> = raw.split("http/1.1 ").filter(|r| !r.is_empty()).collect();
    assert_eq!(responses.len(), 3, "{raw}");

    let refused = responses[0];
    assert!(refused.starts_with("403 forbidden\r\n"), "{refused}");
    assert!(refused.contains("\r\nvary: origin\r\n"), "{refused}");
    assert!(
        refused.contains("content-type: application/json"),
        "{refused}"
    );
    assert!(!refused.contains("access-control-"), "{refused}");
    assert!(
        refused.ends_with("\r\n\r\n"),
        "a HEAD answer has no body: {refused}"
    );

    let bypassed = responses[1];
    assert!(bypassed.starts_with("200 ok\r\n"), "{bypassed}");
    assert!(bypassed.ends_with("\r\n\r\n"), "{bypassed}");

    let last = responses[2];
    assert!(last.starts_with("200 ok\r\n"), "{last}");
    assert!(last.ends_with("\r\n\r\nok"), "{last}");
    assert_eq!(server.calls(), 0);
}
