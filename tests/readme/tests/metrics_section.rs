//! The README's "Metrics" block (`sections/metrics.rs`, byte for byte) served over TCP.
//!
//! Alone in its test binary: it installs the process's global `metrics` recorder and asserts
//! exact counter values, which another test recording in the same process would change.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

// README code is written as a user's module.
#[allow(unreachable_pub)]
#[path = "sections/metrics.rs"]
mod metrics;

use std::net::SocketAddr;

use bytes::Bytes;
use hmac::{KeyInit, Mac};
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tollgate::core::{Key, KeyRing, KeyRingHandle, Secret};

const README: &str = include_str!("../../../README.md");

#[test]
fn readme_metrics_block_is_compiled() {
    let mut lines = README.lines().skip_while(|line| *line != "## Metrics");
    assert!(lines.next().is_some(), "README has no `## Metrics` heading");
    let mut lines = lines.skip_while(|line| *line != "```rust");
    assert!(
        lines.next().is_some(),
        "no ```rust block under `## Metrics`"
    );
    let mut readme = String::new();
    for line in lines.take_while(|line| *line != "```") {
        readme.push_str(line);
        readme.push('\n');
    }
    let compiled = include_str!("sections/metrics.rs");
    assert!(
        readme == compiled,
        "README.md's block under \"## Metrics\" and tests/readme/tests/sections/metrics.rs \
         differ: copy one onto the other (and run rustfmt).\n--- README\n{readme}\n--- metrics.rs\n{compiled}"
    );
}

/// Hex HMAC-SHA256 of `body`: an `X-Webhook-Signature`.
fn sign(body: &str, secret: &str) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

fn webhook(uri: &str, body: &'static str, signature: &str) -> Request<Full<Bytes>> {
    Request::post(uri)
        .header("x-webhook-signature", signature)
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_block_counts_over_tcp() {
    // The only test of this binary that installs a recorder: one per process.
    let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .unwrap();
    let keys = KeyRingHandle::new(KeyRing::new(Key::new(
        "partner-1",
        Secret::from_string("s3cr3t"),
    )));
    let serve = |router: axum::Router| async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
        });
        addr
    };
    let api = serve(metrics::api(keys).unwrap()).await;
    let scrape = serve(metrics::metrics_app(handle)).await;
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();

    let body = "{\"event\":\"payout.completed\"}";
    let uri = format!("http://{api}/webhooks");
    let good = client
        .request(webhook(&uri, body, &sign(body, "s3cr3t")))
        .await
        .unwrap();
    assert_eq!(good.status(), StatusCode::OK);
    let forged = client
        .request(webhook(&uri, body, &sign(body, "guess")))
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);

    let request = Request::get(format!("http://{scrape}/metrics"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = client.request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8(text.to_vec()).unwrap();
    let lines: Vec<&str> = text
        .lines()
        .filter(|line| line.starts_with("tollgate_requests_"))
        .collect();
    for expected in [
        r#"tollgate_requests_allowed_total{layer="client_ip"} 2"#,
        r#"tollgate_requests_allowed_total{layer="signature"} 1"#,
        r#"tollgate_requests_refused_total{layer="signature",code="signature_invalid"} 1"#,
    ] {
        assert!(
            lines.contains(&expected),
            "{expected} missing in {lines:#?}"
        );
    }
    assert_eq!(
        lines.len(),
        3,
        "no other tollgate_requests_ series: {lines:#?}"
    );
    assert!(
        text.contains(r#"tollgate_verify_duration_seconds_count{layer="signature"} 2"#),
        "{text}"
    );
}
