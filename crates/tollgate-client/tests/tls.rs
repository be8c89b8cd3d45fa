//! HTTPS only: a non-https base URL is refused at build, a non-https request URI per call,
//! and a bad certificate ends the call with nothing sent and no retry.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tollgate_client::{CallError, ClientBuilder, ConfigError, RetryPolicy, TlsConfig};
use tollgate_test_support::tls::{HttpsServer, Leaf, TestPki, handler};
use tower::ServiceExt as _;

use common::*;

async fn ok_server(leaf: &Leaf) -> HttpsServer {
    HttpsServer::start(leaf, handler(|_request| async { respond(200) })).await
}

#[tokio::test]
async fn the_test_ca_is_trusted() {
    let pki = TestPki::generate();
    let server = ok_server(&pki.good).await;
    let client = ClientBuilder::new("acme")
        .base_url(&url(&server))
        .tls(trust(&pki))
        .build(tower::layer::util::Identity::new())
        .unwrap();
    let response = client.oneshot(get("/")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(server.handshakes(), 1);
}

#[tokio::test]
async fn bad_certificates_are_refused_without_sending_or_retrying() {
    let pki = TestPki::generate();
    for (name, leaf) in [
        ("expired", &pki.expired),
        ("other name", &pki.other_name),
        ("self-signed", &pki.self_signed),
    ] {
        let server = ok_server(leaf).await;
        let stamp = Stamp::default();
        let client = ClientBuilder::new("acme")
            .base_url(&url(&server))
            .tls(trust(&pki))
            .retry(RetryPolicy::new(3).backoff(Duration::from_millis(1), Duration::from_millis(1)))
            .build(stamp.clone())
            .unwrap();
        let error = client.oneshot(get("/v1/orders")).await.unwrap_err();
        assert!(
            matches!(error, CallError::Certificate { .. }),
            "{name}: {error:?}"
        );
        assert!(error.nothing_sent());
        assert_eq!(server.handshakes(), 0, "{name}");
        assert_eq!(server.requests(), 0, "{name}");
        // Not retried: one connection, one pass through the layers.
        assert_eq!(server.connections(), 1, "{name}");
        assert_eq!(stamp.count(), 1, "{name}");
    }
}

#[tokio::test]
async fn mozilla_roots_do_not_trust_the_test_ca() {
    let pki = TestPki::generate();
    let server = ok_server(&pki.good).await;
    let client = ClientBuilder::new("acme")
        .base_url(&url(&server))
        .build(tower::layer::util::Identity::new())
        .unwrap();
    let error = client.oneshot(get("/")).await.unwrap_err();
    assert!(matches!(error, CallError::Certificate { .. }), "{error:?}");
    assert_eq!(server.requests(), 0);
}

#[test]
fn an_http_base_url_is_refused_at_build() {
    let error = ClientBuilder::new("acme")
        .base_url("http://api.acme.example")
        .build(tower::layer::util::Identity::new())
        .unwrap_err();
    assert_eq!(
        error,
        ConfigError::NotHttps {
            scheme: "http".to_owned()
        }
    );
    assert_eq!(error.to_string(), "the base URL must be https, not `http`");
}

#[test]
fn a_tls_configuration_without_roots_is_refused_at_build() {
    let error = ClientBuilder::new("acme")
        .tls(TlsConfig::new().roots_only())
        .build(tower::layer::util::Identity::new())
        .unwrap_err();
    assert_eq!(
        error,
        ConfigError::Https(tollgate_https::ConfigError::NoRoots)
    );
}

#[tokio::test]
async fn an_http_request_uri_is_refused_per_call_before_connecting() {
    // A plain listener counting accepted connections: it must see none.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&accepted);
    let accept = tokio::spawn(async move {
        while listener.accept().await.is_ok() {
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });

    let pki = TestPki::generate();
    let stamp = Stamp::default();
    let client = ClientBuilder::new("acme")
        .base_url(&format!("https://127.0.0.1:{port}"))
        .tls(trust(&pki))
        .build(stamp.clone())
        .unwrap();
    for uri in [
        format!("http://127.0.0.1:{port}/v1/orders"),
        format!("HTTP://127.0.0.1:{port}/v1/orders"),
    ] {
        let error = client.clone().oneshot(get(&uri)).await.unwrap_err();
        assert!(
            matches!(&error, CallError::NotHttps { scheme } if scheme.eq_ignore_ascii_case("http")),
            "{error:?}"
        );
        assert!(error.nothing_sent());
    }
    assert_eq!(stamp.count(), 0);
    assert_eq!(accepted.load(Ordering::SeqCst), 0);
    accept.abort();
}

#[tokio::test]
async fn a_relative_uri_without_a_base_url_is_refused() {
    let client = ClientBuilder::new("acme")
        .build(tower::layer::util::Identity::new())
        .unwrap();
    let error = client.oneshot(get("/v1/orders")).await.unwrap_err();
    assert!(
        matches!(
            error,
            CallError::InvalidUri {
                reason: "a relative URI needs a base URL"
            }
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_finished_call_future_answers_once() {
    let mut client = ClientBuilder::new("acme")
        .build(tower::layer::util::Identity::new())
        .unwrap();
    let future = tower::Service::call(&mut client, get("http://127.0.0.1:1/"));
    let error = tollgate_test_support::poll_to_completion_then_pending(future).unwrap_err();
    assert!(matches!(error, CallError::NotHttps { .. }), "{error:?}");
    assert_eq!(error.kind(), "not_https");
    assert_eq!(
        error.to_string(),
        "refused to call over `http`: only https is allowed (nothing was sent)"
    );
}
