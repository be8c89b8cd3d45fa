//! A `hyper_util` client signing with `TranzilaSigningLayer` calls an axum server verifying
//! with `TranzilaVerifyLayer`, over real loopback sockets.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashSet;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use tollgate_core::{BoxError, ManualClock};
use tollgate_tranzila::{
    SignError, TranzilaCredentials, TranzilaSigningLayer, TranzilaVerifyLayer,
};
use tower::{Service, ServiceBuilder, ServiceExt};

fn credentials() -> TranzilaCredentials {
    TranzilaCredentials::new("pub_app_key_demo", "private_secret_demo").unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn signed_client_calls_verifying_server() {
    let clock = ManualClock::new(1_700_000_000);
    let addr = common::serve(
        TranzilaVerifyLayer::new(credentials(), common::store(clock.clone()))
            .unwrap()
            .clock(clock.clone()),
    )
    .await;
    let mut client = ServiceBuilder::new()
        .layer(
            TranzilaSigningLayer::new(credentials(), common::upstream(addr))
                .unwrap()
                .clock(clock.clone()),
        )
        .service(common::client());

    let mut nonces = HashSet::new();
    for i in 0..5 {
        let body = format!("{{\"amount\":{i}}}");
        let request = Request::post(format!("http://{addr}/v1/charge"))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.clone())))
            .unwrap();
        let response = client.ready().await.unwrap().call(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let text = common::text(response.into_body()).await;
        let mut parts = text.splitn(3, ' ');
        assert_eq!(parts.next(), Some("pub_app_key_demo"));
        let nonce = parts.next().unwrap().to_owned();
        assert_eq!(nonce.len(), 80);
        assert_eq!(parts.next(), Some(body.as_str()));
        assert!(nonces.insert(nonce), "nonce reused");
        clock.advance(1);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn captured_headers_replayed_or_unsigned_are_refused() {
    let clock = ManualClock::new(1_700_000_000);
    let addr = common::serve(
        TranzilaVerifyLayer::new(credentials(), common::store(clock.clone()))
            .unwrap()
            .clock(clock.clone()),
    )
    .await;
    let url = format!("http://{addr}/v1/charge");

    // Sign once, capture what went on the wire by signing into a recorder.
    let captured = ServiceBuilder::new()
        .layer(
            TranzilaSigningLayer::new(credentials(), common::upstream(addr))
                .unwrap()
                .clock(clock.clone()),
        )
        .service(tower::service_fn(
            |request: Request<Full<Bytes>>| async move { Ok::<_, BoxError>(request) },
        ))
        .oneshot(Request::post(&url).body(Full::default()).unwrap())
        .await
        .unwrap();
    let headers = captured.headers().clone();

    let send = |body: &'static str| {
        let mut request = Request::post(&url)
            .body(Full::new(Bytes::from_static(body.as_bytes())))
            .unwrap();
        *request.headers_mut() = headers.clone();
        common::client().request(request)
    };
    let first = send("{\"amount\":1}").await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    // An attacker reuses the headers with another body: refused, because of the nonce.
    let again = send("{\"amount\":1000}").await.unwrap();
    assert_eq!(again.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(again.headers()["content-type"], "application/json");
    assert_eq!(
        common::text(again.into_body()).await,
        r#"{"error":{"code":"replayed","message":"request was already received"}}"#
    );

    let unsigned = common::client()
        .request(Request::post(&url).body(Full::default()).unwrap())
        .await
        .unwrap();
    assert_eq!(unsigned.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        common::text(unsigned.into_body()).await,
        r#"{"error":{"code":"header_malformed","message":"a required header is missing or malformed: `x-tranzila-api-app-key` must be present once, as visible ASCII"}}"#
    );

    // Six minutes later the same headers are stale before they are replays.
    clock.advance(301);
    let stale = send("{}").await.unwrap();
    assert_eq!(stale.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        common::text(stale.into_body()).await,
        r#"{"error":{"code":"timestamp_out_of_window","message":"timestamp is outside the accepted window: too old"}}"#
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn signing_failure_sends_nothing() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut client = ServiceBuilder::new()
        .layer(
            TranzilaSigningLayer::new(credentials(), common::upstream(addr))
                .unwrap()
                .with_nonce_source(|| "not-a-nonce".to_owned()),
        )
        .service(common::client());
    let request = Request::post(format!("http://{addr}/v1/charge"))
        .body(Full::default())
        .unwrap();
    let err = client
        .ready()
        .await
        .unwrap()
        .call(request)
        .await
        .unwrap_err();
    assert_eq!(
        err.downcast_ref::<SignError>(),
        Some(&SignError::InvalidNonce)
    );
    // No connection was ever opened.
    let accepted =
        tokio::time::timeout(std::time::Duration::from_millis(200), listener.accept()).await;
    assert!(
        accepted.is_err(),
        "the client connected although signing failed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_copies_of_one_request_are_accepted_once() {
    let clock = ManualClock::new(1_700_000_000);
    let addr = common::serve(
        TranzilaVerifyLayer::new(credentials(), common::store(clock.clone()))
            .unwrap()
            .clock(clock.clone()),
    )
    .await;
    let url = format!("http://{addr}/v1/charge");
    let signed = ServiceBuilder::new()
        .layer(
            TranzilaSigningLayer::new(credentials(), common::upstream(addr))
                .unwrap()
                .clock(clock.clone()),
        )
        .service(tower::service_fn(
            |request: Request<Full<Bytes>>| async move { Ok::<_, BoxError>(request) },
        ))
        .oneshot(Request::post(&url).body(Full::default()).unwrap())
        .await
        .unwrap();
    let headers = signed.headers().clone();

    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let mut request = Request::post(&url).body(Full::default()).unwrap();
            *request.headers_mut() = headers.clone();
            tokio::spawn(common::client().request(request))
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap().unwrap().status());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == StatusCode::OK).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::UNAUTHORIZED)
            .count(),
        19
    );
}
