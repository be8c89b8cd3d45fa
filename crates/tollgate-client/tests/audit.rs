//! The audit event: one per attempt, never a header value or a query value. (Its own test
//! binary: log capture shares tracing's global interest cache.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use tollgate_client::{AUDIT_TARGET, ClientBuilder, RetryPolicy};
use tollgate_test_support::LogCapture;
use tollgate_test_support::tls::{HttpsServer, TestPki, handler};
use tower::ServiceExt as _;

use common::*;

#[tokio::test(flavor = "current_thread")]
async fn one_event_per_attempt_without_credentials_or_query() {
    let pki = TestPki::generate();
    let calls = Arc::new(AtomicUsize::new(0));
    let server = HttpsServer::start(
        &pki.good,
        handler(move |_request| {
            let first = calls.fetch_add(1, Ordering::SeqCst) == 0;
            async move { respond(if first { 503 } else { 200 }) }
        }),
    )
    .await;
    let client = ClientBuilder::new("acme")
        .base_url(&url(&server))
        .tls(trust(&pki))
        .retry(RetryPolicy::new(2).backoff(Duration::from_millis(1), Duration::from_millis(1)))
        .build(tower::layer::util::Identity::new())
        .unwrap();

    let request = Request::put("/v1/cards/tokenize?card=4111111111111111&cvv=737")
        .header("x-api-key", "sk_live_PARTNERKEY")
        .header("authorization", "Bearer TOKEN-abc123")
        .body(Full::new(Bytes::from_static(
            b"{\"pan\":\"4111111111111111\"}",
        )))
        .unwrap();

    let logs = LogCapture::new();
    let response = {
        let _guard = logs.install();
        client.oneshot(request).await.unwrap()
    };
    assert_eq!(response.status(), 200);

    let text = logs.text();
    let events: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("provider call"))
        .collect();
    assert_eq!(events.len(), 2, "{text}");
    for (event, (status, attempt)) in events.iter().zip([(503, 1), (200, 2)]) {
        assert!(event.contains(" INFO "), "{event}");
        assert!(event.contains(AUDIT_TARGET), "{event}");
        for field in [
            "provider=\"acme\"".to_owned(),
            "method=PUT".to_owned(),
            "path=/v1/cards/tokenize ".to_owned(),
            format!("status={status}"),
            format!("attempt={attempt}"),
            "latency_ms=".to_owned(),
        ] {
            assert!(event.contains(&field), "{field} missing in {event}");
        }
    }
    for secret in [
        "PARTNERKEY",
        "TOKEN-abc123",
        "4111111111111111",
        "card=",
        "cvv=",
    ] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
}

#[tokio::test(flavor = "current_thread")]
async fn failed_attempts_log_the_error_kind() {
    let pki = TestPki::generate();
    let server = HttpsServer::start(&pki.expired, handler(|_request| async { respond(200) })).await;
    let client = ClientBuilder::new("acme")
        .base_url(&url(&server))
        .tls(trust(&pki))
        .build(tower::layer::util::Identity::new())
        .unwrap();
    let logs = LogCapture::new();
    {
        let _guard = logs.install();
        client
            .oneshot(get("/v1/orders?secret=1"))
            .await
            .unwrap_err();
    }
    let text = logs.text();
    let events: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("provider call"))
        .collect();
    assert_eq!(events.len(), 1, "{text}");
    assert!(events[0].contains("error=\"certificate\""), "{}", events[0]);
    assert!(events[0].contains("attempt=1"), "{}", events[0]);
    assert!(!text.contains("secret=1"), "{text}");
}
