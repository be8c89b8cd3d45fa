//! The providers' signing vectors (`shared/vectors/signing.json`) through a real reqwest
//! client: the headers that reach an HTTPS server are the vectors' expected values, byte for
//! byte, as they are for the tower layers (`tollgate-signature/tests/vectors.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{HeaderMap, Request, Response};
use tollgate_core::{ManualClock, Secret, Upstream};
use tollgate_https::TlsConfig;
use tollgate_reqwest::{ClientBuilder, RetryPolicy};
use tollgate_signature::{BodyHmac, Canonical, SignRequestLayer};
use tollgate_test_support::signing_vectors;
use tollgate_test_support::tls::{HttpsServer, TestPki, handler};

type Seen = Arc<Mutex<Vec<HeaderMap>>>;

async fn server(pki: &TestPki) -> (HttpsServer, Seen) {
    let seen = Seen::default();
    let record = Arc::clone(&seen);
    let server = HttpsServer::start(
        &pki.good,
        handler(move |request: Request<Bytes>| {
            record.lock().unwrap().push(request.headers().clone());
            async { Response::new(Bytes::new()) }
        }),
    )
    .await;
    (server, seen)
}

fn text<'a>(vector: &'a serde_json::Value, key: &str) -> &'a str {
    vector[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} in {vector}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn onekey_and_canonical_vectors_through_reqwest() {
    let Some(vectors) = signing_vectors("onekey_and_canonical_vectors_through_reqwest") else {
        return;
    };
    let pki = TestPki::generate();
    let (server, seen) = server(&pki).await;
    let tls = TlsConfig::new()
        .add_root_pem(pki.ca_pem.as_bytes())
        .unwrap();
    let upstream = Upstream::parse(&server.url()).unwrap();
    let mut checked = 0;

    for vector in vectors["onekey_payload_signature"].as_array().unwrap() {
        let layer = SignRequestLayer::new(
            BodyHmac::onekey(),
            Secret::from_string(text(vector, "secret")),
            upstream.clone(),
        )
        .unwrap();
        let client = ClientBuilder::new(server.url())
            .tls(tls.clone())
            .retry(RetryPolicy::none())
            .build(layer)
            .unwrap();
        client
            .post(format!("{}/api/v3/cashout", server.url()))
            .body(text(vector, "payload").to_owned())
            .send()
            .await
            .unwrap();
        let sent = seen.lock().unwrap().last().cloned().unwrap();
        assert_eq!(
            sent["payload-signature"],
            text(vector, "expected_payload_signature"),
            "{}",
            text(vector, "id")
        );
        checked += 1;
    }

    for vector in vectors["method_path_body_timestamp"].as_array().unwrap() {
        let time: u64 = text(vector, "timestamp").parse().unwrap();
        let layer = SignRequestLayer::new(
            Canonical::new(),
            Secret::from_string(text(vector, "secret")),
            upstream.clone(),
        )
        .unwrap()
        .clock(ManualClock::new(time));
        let client = ClientBuilder::new(server.url())
            .tls(tls.clone())
            .retry(RetryPolicy::none())
            .build(layer)
            .unwrap();
        let method: reqwest::Method = text(vector, "method").parse().unwrap();
        let url = format!("{}{}", server.url(), text(vector, "path"));
        let mut request = client.request(method, url);
        let body = text(vector, "body");
        if !body.is_empty() {
            request = request.body(body.to_owned());
        }
        request.send().await.unwrap();
        let sent = seen.lock().unwrap().last().cloned().unwrap();
        assert_eq!(sent["x-timestamp"], text(vector, "timestamp"));
        assert_eq!(
            sent["x-signature"],
            text(vector, "expected_hex"),
            "{}",
            text(vector, "id")
        );
        checked += 1;
    }
    assert!(checked >= 4, "only {checked} vectors");
}
