//! Attack review 8, the log half: the audit line of a reqwest client built by tollgate names
//! the path, never the query's values. (A binary of its own: log capture shares tracing's
//! process-wide interest cache with the other tests of a binary.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use tollgate::client::RetryPolicy;
use tollgate::https::TlsConfig;
use tollgate_test_support::LogCapture;
use tollgate_test_support::tls::{HttpsServer, TestPki, handler};
use tower::layer::util::Identity;

async fn recording(pki: &TestPki) -> (HttpsServer, ()) {
    let server = HttpsServer::start(
        &pki.good,
        handler(|_request: Request<Bytes>| async { Response::new(Bytes::from_static(b"ok")) }),
    )
    .await;
    (server, ())
}

fn tls(pki: &TestPki) -> TlsConfig {
    TlsConfig::new()
        .add_root_pem(pki.ca_pem.as_bytes())
        .unwrap()
}

// control: holds — the audit line of an attempt names the path, never the query's values.
#[tokio::test]
async fn audit_never_shows_query_values() {
    let pki = TestPki::generate();
    let (server, _) = recording(&pki).await;
    let logs = LogCapture::new();
    let _guard = logs.install();
    let settings = tollgate::client::ClientBuilder::new("attack8")
        .base_url(&server.url())
        .tls(tls(&pki))
        .retry(RetryPolicy::none());
    let client = tollgate::reqwest::client(settings, Identity::new()).unwrap();
    let response = client
        .get(format!("{}/pay?card=4111111111111111", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = logs.text();
    assert!(text.contains("/pay"), "{text}");
    assert!(!text.contains("4111111111111111"), "{text}");
}
