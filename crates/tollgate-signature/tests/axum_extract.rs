//! The axum extractors (feature `axum`) over real TCP: raw bytes and JSON without
//! re-encoding, rejections, and verification behind `Router::nest`.
#![cfg(feature = "axum")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::Router;
use axum::routing::post;
use bytes::Bytes;
use http::{Request, StatusCode};
use serde::Deserialize;
use serde_json::Value;
use tollgate_core::{KeyRing, ManualClock, Secret, Upstream};
use tollgate_signature::{
    BodyHmac, Canonical, SignRequestLayer, SignedBody, SignedJson, VerifySignatureLayer,
};

use common::{full, rejection_json, send_raw, send_signed};

#[derive(Deserialize)]
struct Payment {
    amount: f64,
    name: String,
}

async fn json_handler(
    SignedJson {
        value,
        bytes,
        signature,
    }: SignedJson<Payment>,
) -> String {
    format!(
        "{}|{}|{}|{}",
        value.amount,
        value.name,
        signature.key_id(),
        String::from_utf8(bytes.to_vec()).unwrap()
    )
}

async fn raw_handler(SignedBody { bytes, signature }: SignedBody) -> Bytes {
    assert_eq!(signature.scheme(), "onekey");
    bytes
}

async fn serve(app: Router) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

#[tokio::test]
async fn extractors_give_the_signed_bytes_not_a_re_encoding() {
    let secret = Secret::from_string("cashout_secret_key");
    let signed = Router::new()
        .route("/json", post(json_handler))
        .route("/raw", post(raw_handler))
        .layer(VerifySignatureLayer::new(BodyHmac::onekey(), secret.clone()).unwrap());
    let app = Router::new()
        .merge(signed)
        .route("/unprotected", post(raw_handler));
    let addr = serve(app).await;
    let upstream = Upstream::parse(&format!("http://{addr}")).unwrap();
    let sign =
        || SignRequestLayer::new(BodyHmac::onekey(), secret.clone(), upstream.clone()).unwrap();

    // Spacing, `2000.0` and an escaped `é`: re-encoding would change every one of them.
    let body = r#"{ "amount" : 2000.0, "name":"Jos\u00e9" }"#;
    let reencoded = serde_json::to_string(&serde_json::from_str::<Value>(body).unwrap()).unwrap();
    assert_ne!(reencoded, body);
    let request = Request::post(format!("http://{addr}/json"))
        .body(full(body))
        .unwrap();
    let answer = send_signed(sign(), request).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body, format!("2000|José|default|{body}"));

    let raw = vec![0xffu8, 0x00, 0x7b];
    let request = Request::post(format!("http://{addr}/raw"))
        .body(full(raw.clone()))
        .unwrap();
    let answer = send_signed(sign(), request).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body, raw);

    // Verified, but not the JSON the handler wants.
    let request = Request::post(format!("http://{addr}/json"))
        .body(full("[1,2]"))
        .unwrap();
    let answer = send_signed(sign(), request).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        answer.body,
        rejection_json(
            "json_invalid",
            "the signed body is not JSON of the expected shape"
        )
    );

    // Not verified at all: the layer refuses before the extractor runs.
    let request = Request::post(format!("http://{addr}/json"))
        .body(full(body))
        .unwrap();
    assert_eq!(send_raw(request).await.code(), "signature_missing");

    // An extractor on a route without the layer is a deployment error, not a pass.
    let request = Request::post(format!("http://{addr}/unprotected"))
        .body(full("{}"))
        .unwrap();
    let answer = send_raw(request).await;
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        answer.body,
        rejection_json(
            "signature_layer_missing",
            "the request did not pass through the signature layer"
        )
    );
}

#[tokio::test]
async fn nested_routers_verify_the_path_the_client_signed() {
    let secret = Secret::from_string("k");
    let clock = ManualClock::new(1_700_000_000);
    let inner = Router::new()
        .route(
            "/pay",
            post(|SignedBody { bytes, .. }: SignedBody| async move { bytes }),
        )
        .layer(
            VerifySignatureLayer::new(Canonical::new(), KeyRing::single(secret.clone()))
                .unwrap()
                .clock(clock.clone()),
        );
    let addr = serve(Router::new().nest("/api", inner)).await;

    let request = Request::post(format!("http://{addr}/api/pay?x=1"))
        .body(full("{}"))
        .unwrap();
    let answer = send_signed(
        SignRequestLayer::new(
            Canonical::new(),
            secret,
            Upstream::parse(&format!("http://{addr}")).unwrap(),
        )
        .unwrap()
        .clock(clock),
        request,
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    assert_eq!(answer.body, "{}");
}
