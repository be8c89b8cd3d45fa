//! The ready provider clients against HTTPS mocks on loopback that run tollgate's own server
//! layers: every attempt is signed anew, a retry is accepted, the first attempt's exact bytes
//! are refused when sent again, and each provider's headers are exactly what it requires.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::routing::post;
use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full};
use tollgate::client::{CallError, ClientBuilder, RetryPolicy};
use tollgate::client_ip::{ClientIp, IpOrigin, MissingClientIp};
use tollgate::core::{BoxError, KeyRing, Secret};
use tollgate::headers::Token;
use tollgate::hmac::HmacClient;
use tollgate::https::{HttpsConnector, TlsConfig};
use tollgate::onekey::{OneKeyClient, OneKeyCredentials, OneKeyError};
use tollgate::replay::{MemoryNonceStore, ReplayGuardLayer};
use tollgate::signature::{BodyHmac, Canonical, VerifySignatureLayer};
use tollgate::transak::TransakClient;
use tollgate::tranzila::{TranzilaClient, TranzilaCredentials, TranzilaVerifyLayer};
use tollgate::{ProviderConfigError, onekey};
use tollgate_test_support::tls::{HttpsServer, Seen, TestPki, serve_recording};
use tower::ServiceExt as _;

const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");

/// Serves `app` over TLS with the good leaf, recording each request as it arrived.
async fn serve(pki: &TestPki, app: Router) -> (HttpsServer, Seen) {
    serve_recording::<_, axum::body::Body, _>(&pki.good, app).await
}

fn tls(pki: &TestPki) -> TlsConfig {
    TlsConfig::new()
        .add_root_pem(pki.ca_pem.as_bytes())
        .unwrap()
}

/// Quick retries for tests: three attempts, millisecond backoff, POSTs with an idempotency
/// key retried.
fn quick(pki: &TestPki) -> impl FnOnce(ClientBuilder) -> ClientBuilder {
    let tls = tls(pki);
    move |client| {
        client.tls(tls).retry(
            RetryPolicy::new(3)
                .backoff(Duration::from_millis(1), Duration::from_millis(5))
                .idempotency_key(IDEMPOTENCY_KEY),
        )
    }
}

/// A handler answering 503 to its first call (after the layers in front of it verified and
/// claimed the request), then 200 with the attempt count.
fn fails_once() -> (Arc<AtomicUsize>, impl Clone + Fn() -> (StatusCode, String)) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let answer = move || {
        let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
        if n == 1 {
            (StatusCode::SERVICE_UNAVAILABLE, "busy".to_owned())
        } else {
            (StatusCode::OK, format!("call {n}"))
        }
    };
    (calls, answer)
}

async fn text(response: Response<hyper::body::Incoming>) -> (StatusCode, String) {
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// Sends `headers` and `body` exactly as captured, with a plain HTTPS client.
async fn resend(
    server: &HttpsServer,
    pki: &TestPki,
    path: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let client = HttpsConnector::new(&tls(pki))
        .unwrap()
        .client::<Full<Bytes>>();
    let mut request = Request::post(format!("{}{path}", server.url()))
        .body(Full::new(body))
        .unwrap();
    for (name, value) in headers {
        if name != http::header::HOST {
            request.headers_mut().append(name, value.clone());
        }
    }
    text(client.request(request).await.unwrap()).await
}

fn tranzila_credentials() -> TranzilaCredentials {
    TranzilaCredentials::new("pub_app_key_demo", "private_secret_demo").unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn tranzila_retry_is_signed_anew_and_the_first_attempt_cannot_be_replayed() {
    let pki = TestPki::generate();
    let (calls, answer) = fails_once();
    let app = Router::new()
        .route("/v1/charge", post(move || async move { answer() }))
        .layer(
            TranzilaVerifyLayer::new(tranzila_credentials(), MemoryNonceStore::new(1000)).unwrap(),
        );
    let (server, seen) = serve(&pki, app).await;

    let client = TranzilaClient::builder(tranzila_credentials())
        .base_url(&server.url())
        .configure(quick(&pki))
        .build()
        .unwrap();
    let request = Request::post("/v1/charge")
        .header("content-type", "application/json")
        .header(IDEMPOTENCY_KEY, "charge-1")
        .body(Full::new(Bytes::from_static(br#"{"amount":100}"#)))
        .unwrap();
    let (status, body) = text(client.oneshot(request).await.unwrap()).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "call 2"));
    assert_eq!(calls.load(Ordering::SeqCst), 2);

    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    let nonce = |headers: &HeaderMap| headers["x-tranzila-api-nonce"].clone();
    let token = |headers: &HeaderMap| headers["x-tranzila-api-access-token"].clone();
    assert_ne!(
        nonce(&seen[0].0),
        nonce(&seen[1].0),
        "a retry must carry a new nonce"
    );
    assert_ne!(token(&seen[0].0), token(&seen[1].0));

    // The first attempt's exact headers and body, sent again: its nonce was claimed.
    let (status, body) = resend(&server, &pki, "/v1/charge", &seen[0].0, seen[0].1.clone()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(body.contains(r#""code":"replayed""#), "{body}");
    // And the accepted one too.
    let (status, body) = resend(&server, &pki, "/v1/charge", &seen[1].0, seen[1].1.clone()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn hmac_retry_waits_for_a_new_second_so_its_signature_is_new_and_accepted() {
    let pki = TestPki::generate();
    let secret = || Secret::from_string("whk_demo_secret");
    let (calls, answer) = fails_once();
    // The undelimited canonical layout: its claims are never released, so a retry that
    // repeated the first attempt's signature would be refused as replayed.
    let app = Router::new()
        .route("/v1/payments", post(move || async move { answer() }))
        .layer(ReplayGuardLayer::new(MemoryNonceStore::new(1000)))
        .layer(VerifySignatureLayer::new(Canonical::new(), KeyRing::single(secret())).unwrap());
    let (server, seen) = serve(&pki, app).await;

    let client = HmacClient::builder("payments", &server.url(), KeyRing::single(secret()))
        .configure(quick(&pki))
        .build()
        .unwrap();
    let request = Request::post("/v1/payments")
        .header(IDEMPOTENCY_KEY, "payment-1")
        .body(Full::new(Bytes::from_static(br#"{"amount":100}"#)))
        .unwrap();
    let (status, body) = text(client.oneshot(request).await.unwrap()).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "call 2"));
    assert_eq!(calls.load(Ordering::SeqCst), 2);

    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    assert_ne!(seen[0].0["x-timestamp"], seen[1].0["x-timestamp"]);
    assert_ne!(seen[0].0["x-signature"], seen[1].0["x-signature"]);
    let (status, body) = resend(&server, &pki, "/v1/payments", &seen[0].0, seen[0].1.clone()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(body.contains(r#""code":"replayed""#), "{body}");
}

fn onekey_credentials() -> OneKeyCredentials {
    OneKeyCredentials::new(
        Secret::from_string("ok_api_key"),
        Secret::from_string("ok_passphrase"),
        Secret::from_string("ok_signature_secret"),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn onekey_sends_basic_auth_user_agent_json_and_the_payload_signature_of_the_exact_bytes() {
    let pki = TestPki::generate();
    let app = Router::new()
        .route("/api/v3/cashout", post(|| async { "created" }))
        .layer(
            VerifySignatureLayer::new(
                BodyHmac::onekey(),
                KeyRing::single(Secret::from_string("ok_signature_secret")),
            )
            .unwrap(),
        );
    let (server, seen) = serve(&pki, app).await;
    let client = OneKeyClient::builder(&server.url(), onekey_credentials())
        .user_agent("acme-cashouts/1.4")
        .configure(quick(&pki))
        .build()
        .unwrap();

    let body = Bytes::from_static(br#"{ "external_id": "123",  "amount": 2000 }"#);
    let request = Request::post("/api/v3/cashout")
        .header("user-agent", "Mozilla/5.0 (from the browser)")
        .header("origin", "https://app.example.com")
        .body(Full::new(body.clone()))
        .unwrap();
    let (status, text_body) = text(client.clone().oneshot(request).await.unwrap()).await;
    assert_eq!((status, text_body.as_str()), (StatusCode::OK, "created"));

    let (headers, sent) = seen.lock().unwrap()[0].clone();
    assert_eq!(sent, body, "the exact bytes, not re-serialised");
    let basic = base64::engine::general_purpose::STANDARD.encode("ok_api_key:ok_passphrase");
    assert_eq!(headers["authorization"], format!("Basic {basic}").as_str());
    assert_eq!(headers["user-agent"], "acme-cashouts/1.4");
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(
        headers["payload-signature"],
        BodyHmac::onekey()
            .compute(&Secret::from_string("ok_signature_secret"), &body)
            .as_str()
    );
    assert!(
        !headers.contains_key("origin"),
        "browser headers are not forwarded"
    );
    assert!(
        !headers.contains_key("x-user-ip"),
        "OneKey allowlists the server's IP"
    );

    // Another content type is refused before anything is sent.
    let before = server.requests();
    let request = Request::post("/api/v3/cashout")
        .header("content-type", "text/plain")
        .body(Full::new(Bytes::from_static(b"x")))
        .unwrap();
    let error = client.clone().oneshot(request).await.unwrap_err();
    assert!(matches!(error, CallError::Refused(_)), "{error:?}");
    assert_eq!(
        std::error::Error::source(&error).and_then(|e| e.downcast_ref::<OneKeyError>()),
        Some(&OneKeyError::ContentTypeNotJson),
        "{error:?}"
    );
    // Two Content-Type headers: which one was meant is ambiguous, refused unsent.
    let request = Request::post("/api/v3/cashout")
        .header("content-type", "application/json")
        .header("content-type", "text/plain")
        .body(Full::new(Bytes::from_static(b"{}")))
        .unwrap();
    let error = client.clone().oneshot(request).await.unwrap_err();
    assert_eq!(
        std::error::Error::source(&error).and_then(|e| e.downcast_ref::<OneKeyError>()),
        Some(&OneKeyError::ContentTypeNotJson),
        "{error:?}"
    );
    // An absolute URI to another host gets no credential: refused, nothing sent.
    let request = Request::post("https://127.0.0.1:9/api/v3/cashout")
        .body(Full::new(Bytes::from_static(b"{}")))
        .unwrap();
    let error = client.oneshot(request).await.unwrap_err();
    assert!(matches!(error, CallError::Refused(_)), "{error:?}");
    assert_eq!(server.requests(), before);
}

#[tokio::test(flavor = "multi_thread")]
async fn transak_sends_the_key_a_fresh_token_and_the_end_users_ip() {
    let pki = TestPki::generate();
    let app = Router::new().route("/api/v2/orders", post(|| async { "ok" }));
    let (server, seen) = serve(&pki, app).await;
    let fetched = Arc::new(AtomicUsize::new(0));
    let provider = {
        let fetched = Arc::clone(&fetched);
        move || {
            let n = fetched.fetch_add(1, Ordering::SeqCst) + 1;
            async move { Ok::<_, BoxError>(Token::new(Secret::from_string(format!("token-{n}")))) }
        }
    };
    let client = TransakClient::builder(&server.url(), Secret::from_string("pk_live"), provider)
        .configure(quick(&pki))
        .build()
        .unwrap();

    let user = ClientIp::new(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7)), IpOrigin::Peer);
    let request = Request::post("/api/v2/orders")
        .header("cookie", "session=browser")
        .body(Full::new(Bytes::from_static(b"{}")))
        .unwrap();
    let response = user.scope(client.clone().oneshot(request)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let (headers, _) = seen.lock().unwrap()[0].clone();
    assert_eq!(headers["x-api-key"], "pk_live");
    assert_eq!(headers["access-token"], "token-1");
    assert_eq!(headers["x-user-ip"], "203.0.113.7");
    assert!(!headers.contains_key("cookie"));
    assert_eq!(fetched.load(Ordering::SeqCst), 1);

    // Outside an inbound request there is no end-user IP: refused, nothing sent.
    let before = server.requests();
    let request = Request::post("/api/v2/orders")
        .body(Full::new(Bytes::from_static(b"{}")))
        .unwrap();
    let error = client.oneshot(request).await.unwrap_err();
    assert!(
        std::error::Error::source(&error)
            .is_some_and(|e| e.downcast_ref::<MissingClientIp>().is_some()),
        "{error:?}"
    );
    assert_eq!(server.requests(), before);
}

#[test]
fn bad_configuration_is_refused_when_the_client_is_built() {
    let build = |url: &str| OneKeyClient::builder(url, onekey_credentials()).build();
    for url in [
        "http://api-stg.onekeypayments.com",
        "https://user:pw@api-stg.onekeypayments.com",
        "https://api-stg.onekeypayments.com/?x=1",
        "not a url",
    ] {
        let error = build(url).unwrap_err();
        let text = error.to_string();
        assert!(!text.contains("pw"), "{text}");
        assert!(
            matches!(
                error,
                ProviderConfigError::Client(_) | ProviderConfigError::Upstream(_)
            ),
            "{url}: {error:?}"
        );
    }
    let blank = OneKeyCredentials::new(
        Secret::from_string(" "),
        Secret::from_string("p"),
        Secret::from_string("s"),
    );
    assert!(matches!(
        OneKeyClient::builder(onekey::STAGING, blank).build(),
        Err(ProviderConfigError::Secret(_))
    ));
    assert!(matches!(
        OneKeyClient::builder(onekey::STAGING, onekey_credentials())
            .user_agent("bad\nagent")
            .build(),
        Err(ProviderConfigError::Invalid { .. })
    ));
    assert!(matches!(
        OneKeyClient::builder(onekey::STAGING, onekey_credentials())
            .user_agent("  ")
            .build(),
        Err(ProviderConfigError::Invalid {
            reason: "the User-Agent is empty"
        })
    ));
    let colon = OneKeyCredentials::new(
        Secret::from_string("key:with-colon"),
        Secret::from_string("p"),
        Secret::from_string("s"),
    );
    match OneKeyClient::builder(onekey::STAGING, colon).build() {
        Err(ProviderConfigError::Invalid { reason }) => assert!(reason.contains("`:`"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        OneKeyClient::builder(onekey::STAGING, onekey_credentials())
            .configure(|c| c.retry(RetryPolicy::new(0)))
            .build(),
        Err(ProviderConfigError::Client(_))
    ));
    assert!(matches!(
        OneKeyClient::builder(onekey::STAGING, onekey_credentials())
            .configure(|c| c.attempt_timeout(Duration::ZERO))
            .build(),
        Err(ProviderConfigError::Client(_))
    ));
}
