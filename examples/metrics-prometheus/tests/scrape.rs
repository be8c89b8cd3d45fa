//! The receiver and its scrape endpoint on free loopback ports: a known sequence of requests
//! over real sockets, then `GET /metrics` with a real HTTP client, and the exact values.
//!
//! One test in this binary: the Prometheus recorder is the process's one global recorder, so
//! nothing else may record into it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::net::SocketAddr;

use bytes::Bytes;
use hmac::{KeyInit, Mac};
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use metrics_prometheus::{ALLOWED_ORIGIN, app, install_recorder, spawn};
use tollgate::core::Secret;

const SECRET: &str = "metrics-test-secret";

fn sign(body: &str, secret: &str) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

type HttpClient = Client<HttpConnector, Full<Bytes>>;

async fn post(
    client: &HttpClient,
    api: SocketAddr,
    body: &str,
    signature: &str,
    origin: Option<&str>,
) -> (StatusCode, String) {
    let mut request = Request::post(format!("http://{api}/webhooks"))
        .header("content-type", "application/json")
        .header("x-webhook-signature", signature);
    if let Some(origin) = origin {
        request = request.header("origin", origin);
    }
    let response = client
        .request(
            request
                .body(Full::new(Bytes::from(body.to_owned())))
                .unwrap(),
        )
        .await
        .unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// The `"code"` of a tollgate rejection body (`{"error":{"code":"...",...}}`).
fn code(body: &str) -> &str {
    let start = body.find(r#""code":""#).map_or(body.len(), |i| i + 8);
    let rest = &body[start..];
    &rest[..rest.find('"').unwrap_or(0)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_known_sequence_gives_exact_counters_on_the_scrape_endpoint() {
    let handle = install_recorder().unwrap();
    let loopback: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let bound = spawn(
        app(Secret::from_string(SECRET)).unwrap(),
        handle,
        loopback,
        loopback,
    )
    .await
    .unwrap();
    let client: HttpClient = Client::builder(TokioExecutor::new()).build(HttpConnector::new());
    let api = bound.api;

    // 3 accepted, distinct bodies (one from the allowed browser origin).
    for (n, origin) in [(1, None), (2, Some(ALLOWED_ORIGIN)), (3, None)] {
        let body = format!(r#"{{"event":"payout.completed","id":"evt_{n}"}}"#);
        let (status, text) = post(&client, api, &body, &sign(&body, SECRET), origin).await;
        assert_eq!((status, text.as_str()), (StatusCode::OK, "received"));
    }
    // 2 bad signatures: another key, and a signature of another body.
    let body = r#"{"event":"payout.completed","id":"evt_4"}"#;
    for signature in [sign(body, "not-the-secret"), sign("other body", SECRET)] {
        let (status, text) = post(&client, api, body, &signature, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(code(&text), "signature_invalid");
    }
    // 1 replay of the first request.
    let first = r#"{"event":"payout.completed","id":"evt_1"}"#;
    let (status, text) = post(&client, api, first, &sign(first, SECRET), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(code(&text), "replayed");
    // 1 from an origin that is not allowed (correctly signed: refused before verifying).
    let body = r#"{"event":"payout.completed","id":"evt_5"}"#;
    let (status, text) = post(
        &client,
        api,
        body,
        &sign(body, SECRET),
        Some("https://evil.example"),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(code(&text), "origin_not_allowed");

    // The scrape, with a real client, on the loopback-only endpoint.
    assert!(bound.metrics.ip().is_loopback());
    let response = client
        .request(
            Request::get(format!("http://{}/metrics", bound.metrics))
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8(text.to_vec()).unwrap();

    let samples: BTreeSet<&str> = text
        .lines()
        .filter(|line| line.starts_with("tollgate_") && !line.contains("quantile="))
        .filter(|line| !line.contains("_seconds_sum"))
        .collect();
    let expected: BTreeSet<&str> = [
        // Every layer counts what it let through and what it refused, once.
        r#"tollgate_requests_allowed_total{layer="origin"} 6"#,
        r#"tollgate_requests_refused_total{layer="origin",code="origin_not_allowed"} 1"#,
        r#"tollgate_requests_allowed_total{layer="client_ip"} 6"#,
        r#"tollgate_requests_allowed_total{layer="signature"} 4"#,
        r#"tollgate_requests_refused_total{layer="signature",code="signature_invalid"} 2"#,
        r#"tollgate_requests_allowed_total{layer="replay"} 3"#,
        r#"tollgate_requests_refused_total{layer="replay",code="replayed"} 1"#,
        // Six verifications timed, whatever their outcome.
        r#"tollgate_verify_duration_seconds_count{layer="signature"} 6"#,
        // The store: three new claims, one replay; three entries of its capacity.
        r#"tollgate_nonce_claims_total{store="memory",outcome="claimed"} 3"#,
        r#"tollgate_nonce_claims_total{store="memory",outcome="replayed"} 1"#,
        r#"tollgate_nonce_claim_duration_seconds_count{store="memory"} 4"#,
        r#"tollgate_nonce_store_entries{store="memory"} 3"#,
        r#"tollgate_nonce_store_capacity{store="memory"} 12288"#,
    ]
    .into_iter()
    .collect();
    assert_eq!(samples, expected, "scraped:\n{text}");
}
