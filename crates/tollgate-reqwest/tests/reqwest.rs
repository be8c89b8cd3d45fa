//! tollgate's layers through a real reqwest client, against HTTPS mocks on loopback that run
//! tollgate's own server-side layers.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::routing::post;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, Request, Response, StatusCode};
use reqwest_middleware::ClientWithMiddleware;
use tollgate_client_ip::{ClientIp, IpOrigin, MissingClientIp};
use tollgate_core::{BufferedBody, KeyRing, ManualClock, Secret, Upstream};
use tollgate_headers::{HeaderError, HeaderHygieneLayer, SecretHeaderLayer};
use tollgate_replay::MemoryNonceStore;
use tollgate_reqwest::{
    ClientBuilder, ConfigError, Error, RetryMiddleware, RetryPolicy, TlsConfig, TowerMiddleware,
    find_error,
};
use tollgate_signature::{BodyHmac, Canonical, SignRequestLayer, VerifySignatureLayer};
use tollgate_test_support::tls::{HttpsServer, Seen, TestPki, handler, serve_recording};
use tollgate_tranzila::{TranzilaCredentials, TranzilaSigningLayer, TranzilaVerifyLayer};
use tower::{Layer as _, ServiceExt as _, service_fn};

const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
const API_KEY: &str = "sk_test_reqwest_key";

/// Serves `app` over TLS with the good leaf, recording each request as it arrived.
async fn serve(pki: &TestPki, app: Router) -> (HttpsServer, Seen) {
    serve_recording::<_, axum::body::Body, _>(&pki.good, app).await
}

/// A server answering every request with `status`, `headers` and "ok".
async fn answering(pki: &TestPki, status: u16, headers: &[(&'static str, String)]) -> HttpsServer {
    let headers = headers.to_vec();
    HttpsServer::start(
        &pki.good,
        handler(move |_request| {
            let headers = headers.clone();
            async move {
                let mut response = Response::builder().status(status);
                for (name, value) in headers {
                    response = response.header(name, value);
                }
                response.body(Bytes::from_static(b"ok")).unwrap()
            }
        }),
    )
    .await
}

fn tls(pki: &TestPki) -> TlsConfig {
    TlsConfig::new()
        .add_root_pem(pki.ca_pem.as_bytes())
        .unwrap()
}

/// A plain reqwest client trusting the test CA (no tollgate middleware).
fn plain(pki: &TestPki) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls(pki).client_config().unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The tollgate builder for `server`, trusting the test CA, quick retries.
fn builder(pki: &TestPki, server: &HttpsServer) -> ClientBuilder {
    ClientBuilder::new(server.url()).tls(tls(pki)).retry(
        RetryPolicy::new(3)
            .backoff(Duration::from_millis(1), Duration::from_millis(5))
            .idempotency_key(IDEMPOTENCY_KEY),
    )
}

fn upstream(server: &HttpsServer) -> Upstream {
    Upstream::parse(&server.url()).unwrap()
}

fn api_key(server: &HttpsServer) -> SecretHeaderLayer {
    SecretHeaderLayer::api_key(Secret::from_string(API_KEY), upstream(server)).unwrap()
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test(flavor = "multi_thread")]
async fn api_key_goes_to_the_pinned_upstream_only() {
    let pki = TestPki::generate();
    let app = Router::new().route("/v1/orders", post(|| async { "created" }));
    let (pinned, seen) = serve(&pki, app).await;
    let other = answering(&pki, 200, &[]).await;

    // The adapter alone over a plain reqwest client: the layer's own pinning.
    let client: ClientWithMiddleware = reqwest_middleware::ClientBuilder::new(plain(&pki))
        .with(TowerMiddleware::api_key(Secret::from_string(API_KEY), upstream(&pinned)).unwrap())
        .build();
    let response = client
        .post(format!("{}/v1/orders", pinned.url()))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text().await.unwrap(), "created");
    assert_eq!(seen.lock().unwrap()[0].0["x-api-key"], API_KEY);

    let error = client
        .post(format!("{}/collect", other.url()))
        .body("{}")
        .send()
        .await
        .unwrap_err();
    assert!(matches!(
        find_error::<Error>(&error),
        Some(Error::Refused(_))
    ));
    match find_error::<HeaderError>(&error) {
        Some(HeaderError::UpstreamNotAllowed { header, target }) => {
            assert_eq!(header, "x-api-key");
            assert_eq!(
                target,
                &format!("https://localhost:{}", other.addr().port())
            );
        }
        other => panic!("expected UpstreamNotAllowed, got {other:?}"),
    }
    assert!(!format!("{error:?}").contains(API_KEY));
    assert!(!error.to_string().contains(API_KEY));
    assert_eq!(other.connections(), 0);

    // The builder's client pins every request to its base URL before any layer runs.
    let client = builder(&pki, &pinned).build(api_key(&pinned)).unwrap();
    let error = client
        .get(format!("{}/collect", other.url()))
        .send()
        .await
        .unwrap_err();
    match find_error::<Error>(&error) {
        Some(Error::NotBaseUrl { target }) => {
            assert_eq!(
                target,
                &format!("https://localhost:{}", other.addr().port())
            );
        }
        other => panic!("expected NotBaseUrl, got {other:?}"),
    }
    assert_eq!(other.connections(), 0);
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redirect_to_another_host_is_not_followed_and_carries_nothing() {
    let pki = TestPki::generate();
    let foreign = answering(&pki, 200, &[]).await;
    let location = format!("{}/steal", foreign.url());
    let redirecting = answering(&pki, 302, &[("location", location.clone())]).await;

    let layers = tower::ServiceBuilder::new()
        .layer(HeaderHygieneLayer::server_to_server())
        .layer(api_key(&redirecting))
        .layer(
            TranzilaSigningLayer::new(
                TranzilaCredentials::new("pub_app_key_demo", "private_secret_demo").unwrap(),
                upstream(&redirecting),
            )
            .unwrap(),
        )
        .into_inner();
    let client = builder(&pki, &redirecting).build(layers).unwrap();
    let response = client
        .post(format!("{}/v1/charge", redirecting.url()))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(response.headers()["location"], location.as_str());
    assert_eq!(redirecting.requests(), 1);
    assert_eq!(foreign.connections(), 0);
    assert_eq!(foreign.requests(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn x_user_ip_comes_from_the_task_local_client_ip() {
    let pki = TestPki::generate();
    let (server, seen) = serve(
        &pki,
        Router::new().route("/v1/orders", post(|| async { "ok" })),
    )
    .await;
    let client = builder(&pki, &server)
        .build(tollgate_client_ip::ForwardUserIpLayer::new())
        .unwrap();
    let user = ClientIp::new(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9)), IpOrigin::Other);
    let url = format!("{}/v1/orders", server.url());
    let response = user
        .scope(async {
            client
                .post(&url)
                // A browser's value is replaced, never forwarded.
                .header("x-user-ip", "6.6.6.6")
                .body("{}")
                .send()
                .await
        })
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let headers = seen.lock().unwrap()[0].0.clone();
    assert_eq!(
        headers.get_all("x-user-ip").iter().collect::<Vec<_>>(),
        ["203.0.113.9"]
    );

    // Outside any scope: refused, nothing sent.
    let error = client.post(&url).body("{}").send().await.unwrap_err();
    assert!(find_error::<MissingClientIp>(&error).is_some(), "{error:?}");
    assert!(matches!(
        find_error::<Error>(&error),
        Some(Error::Refused(_))
    ));
    assert_eq!(server.requests(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_streaming_body_is_refused_and_nothing_is_sent() {
    let pki = TestPki::generate();
    let server = answering(&pki, 200, &[]).await;
    let client = builder(&pki, &server)
        .build(
            SignRequestLayer::new(
                BodyHmac::onekey(),
                Secret::from_string("onekey-secret"),
                upstream(&server),
            )
            .unwrap(),
        )
        .unwrap();
    let body = reqwest::Body::wrap(http_body_util::Full::new(Bytes::from_static(b"{}")));
    let error = client
        .post(format!("{}/v1/pay", server.url()))
        .body(body)
        .send()
        .await
        .unwrap_err();
    assert!(
        matches!(find_error::<Error>(&error), Some(Error::StreamingBody)),
        "{error:?}"
    );
    assert_eq!(server.connections(), 0);
}

/// The headers `layer` adds to `request` over the plain tower path (a capture service).
async fn tower_headers(layer: &SignRequestLayer, url: &str, body: &'static [u8]) -> HeaderMap {
    let capture = service_fn(|request: Request<BufferedBody>| async move {
        Ok::<_, Infallible>(request.headers().clone())
    });
    let request = Request::post(url)
        .header("content-type", "application/json")
        .body(BufferedBody::new(Bytes::from_static(body)))
        .unwrap();
    layer.layer(capture).oneshot(request).await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn signatures_are_byte_identical_to_the_tower_path_and_accepted() {
    let pki = TestPki::generate();
    let secret = || Secret::from_string("whk_demo_secret");
    // The server verifies Canonical with tollgate's own layer, at the system clock.
    let (server, seen) = serve(
        &pki,
        Router::new()
            .route("/v1/payments", post(|| async { "verified" }))
            .layer(VerifySignatureLayer::new(Canonical::new(), KeyRing::single(secret())).unwrap()),
    )
    .await;
    let url = format!("{}/v1/payments", server.url());
    let body: &'static [u8] = br#"{"amount":100}"#;
    let now = now_unix();

    for index in 0..2 {
        // Two layers built alike: one layer (and its clones) never makes one signature
        // twice, so a second signing of this message by the same layer would be a second
        // later.
        let layer = || {
            let layer = if index == 0 {
                SignRequestLayer::new(Canonical::new(), secret(), upstream(&server))
            } else {
                SignRequestLayer::new(BodyHmac::onekey(), secret(), upstream(&server))
            };
            layer.unwrap().clock(ManualClock::new(now))
        };
        let expected = tower_headers(&layer(), &url, body).await;
        let client = builder(&pki, &server).build(layer()).unwrap();
        let response = client
            .post(&url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let sent = seen.lock().unwrap()[index].clone();
        assert_eq!(sent.1, body);
        let mut signed = 0;
        for (name, value) in &expected {
            if name == "content-type" {
                continue;
            }
            assert_eq!(sent.0.get(name), Some(value), "{name}");
            signed += 1;
        }
        assert!(signed >= 1, "the layer added a signature header");
        if index == 0 {
            assert_eq!(status, StatusCode::OK);
            assert_eq!(sent.0["x-timestamp"], now.to_string().as_str());
            assert!(sent.0.contains_key("x-signature"));
        } else {
            // BodyHmac is not what this server verifies: refused, which shows it checks.
            assert_eq!(status, StatusCode::UNAUTHORIZED);
            assert!(sent.0.contains_key("payload-signature"));
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn tranzila_retry_is_signed_anew_and_the_first_attempt_cannot_be_replayed() {
    let pki = TestPki::generate();
    let credentials =
        || TranzilaCredentials::new("pub_app_key_demo", "private_secret_demo").unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let app = Router::new()
        .route(
            "/v1/charge",
            post(move || {
                let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
                async move {
                    if n == 1 {
                        (StatusCode::SERVICE_UNAVAILABLE, "busy".to_owned())
                    } else {
                        (StatusCode::OK, format!("call {n}"))
                    }
                }
            }),
        )
        .layer(TranzilaVerifyLayer::new(credentials(), MemoryNonceStore::new(1000)).unwrap());
    let (server, seen) = serve(&pki, app).await;

    let client = builder(&pki, &server)
        .build(TranzilaSigningLayer::new(credentials(), upstream(&server)).unwrap())
        .unwrap();
    let url = format!("{}/v1/charge", server.url());
    let response = client
        .post(&url)
        .header("content-type", "application/json")
        .header(IDEMPOTENCY_KEY, "charge-1")
        .body(r#"{"amount":100}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text().await.unwrap(), "call 2");
    assert_eq!(calls.load(Ordering::SeqCst), 2);

    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    for name in ["x-tranzila-api-nonce", "x-tranzila-api-access-token"] {
        assert_ne!(
            seen[0].0[name], seen[1].0[name],
            "{name} must be new on a retry"
        );
    }

    // The first attempt's exact headers and body, sent again: its nonce was claimed.
    let mut again = plain(&pki).post(&url).body(seen[0].1.clone());
    for (name, value) in &seen[0].0 {
        if name != http::header::HOST && name != http::header::CONTENT_LENGTH {
            again = again.header(name, value);
        }
    }
    let response = again.send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body = response.text().await.unwrap();
    assert!(body.contains(r#""code":"replayed""#), "{body}");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_post_without_idempotency_key_is_not_retried() {
    let pki = TestPki::generate();
    let server = answering(&pki, 503, &[]).await;
    let client = builder(&pki, &server)
        .build(tower::layer::util::Identity::new())
        .unwrap();
    let url = format!("{}/v1/charge", server.url());
    let response = client.post(&url).body("{}").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(server.requests(), 1);
    // A GET is idempotent: three attempts.
    let response = client.get(&url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(server.requests(), 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_certificate_is_refused_and_not_retried() {
    let pki = TestPki::generate();
    for leaf in [&pki.expired, &pki.self_signed, &pki.other_name] {
        let server = HttpsServer::start(
            leaf,
            handler(|_request| async { Response::new(Bytes::new()) }),
        )
        .await;
        let client = builder(&pki, &server).build(api_key(&server)).unwrap();
        let error = client
            .get(format!("{}/v1/orders", server.url()))
            .send()
            .await
            .unwrap_err();
        assert!(
            matches!(error, reqwest_middleware::Error::Reqwest(ref e) if e.is_connect()),
            "{error:?}"
        );
        assert_eq!(server.handshakes(), 0);
        assert_eq!(server.requests(), 0);
        assert_eq!(
            server.connections(),
            1,
            "a certificate failure is never retried"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_configurations_are_refused_at_build() {
    use tollgate_client::ConfigError as Client;
    let identity = tower::layer::util::Identity::new;
    let refused = |builder: ClientBuilder| builder.build(identity()).unwrap_err();
    assert!(matches!(
        refused(ClientBuilder::new("http://127.0.0.1:8080")),
        ConfigError::Client(Client::NotHttps { scheme }) if scheme == "http"
    ));
    let error = refused(ClientBuilder::new("https://user:hunter2@api.example"));
    assert!(matches!(error, ConfigError::Client(Client::UserInfo)));
    assert!(!format!("{error:?} {error}").contains("hunter2"));
    assert!(matches!(
        refused(ClientBuilder::new("https://api.example").timeout(Duration::ZERO)),
        ConfigError::Client(Client::ZeroTimeout { .. })
    ));
    assert!(matches!(
        refused(ClientBuilder::new("https://api.example").connect_timeout(Duration::ZERO)),
        ConfigError::Client(Client::ZeroTimeout { .. })
    ));
    assert!(matches!(
        refused(ClientBuilder::new("https://api.example").retry(RetryPolicy::new(0))),
        ConfigError::Client(Client::ZeroAttempts)
    ));
    assert!(matches!(
        refused(ClientBuilder::new("https://api.example").tls(TlsConfig::new().roots_only())),
        ConfigError::Tls(_)
    ));
    assert!(
        ClientBuilder::new("https://api.example")
            .build(identity())
            .is_ok()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_http_url_is_refused_by_the_client() {
    let pki = TestPki::generate();
    let server = answering(&pki, 200, &[]).await;
    // Even a plain-http URL to the pinned host and port: https_only, and the pin, refuse it.
    let client = reqwest_middleware::ClientBuilder::new(
        reqwest::Client::builder()
            .tls_backend_preconfigured(tls(&pki).client_config().unwrap())
            .https_only(true)
            .build()
            .unwrap(),
    )
    .build();
    let error = client
        .get(format!("http://localhost:{}/", server.addr().port()))
        .send()
        .await
        .unwrap_err();
    assert!(
        matches!(error, reqwest_middleware::Error::Reqwest(ref e) if e.is_builder()),
        "{error:?}"
    );
    let tollgate = builder(&pki, &server).build(api_key(&server)).unwrap();
    let error = tollgate
        .get(format!("http://localhost:{}/", server.addr().port()))
        .send()
        .await
        .unwrap_err();
    assert!(
        matches!(find_error::<Error>(&error), Some(Error::NotBaseUrl { .. })),
        "{error:?}"
    );
    assert_eq!(server.connections(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn hygiene_presets_strip_what_the_browser_sent() {
    let pki = TestPki::generate();
    let (server, seen) = serve(
        &pki,
        Router::new().route("/v1/orders", post(|| async { "ok" })),
    )
    .await;
    let url = format!("{}/v1/orders", server.url());
    let send = |middleware: reqwest_middleware::ClientWithMiddleware| {
        let url = url.clone();
        async move {
            let response = middleware
                .post(&url)
                .header("cookie", "session=browser")
                .header("origin", "https://shop.example")
                .header("x-forwarded-for", "6.6.6.6")
                .header("content-type", "application/json")
                .body("{}")
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK);
        }
    };
    send(
        reqwest_middleware::ClientBuilder::new(plain(&pki))
            .with(TowerMiddleware::server_to_server())
            .build(),
    )
    .await;
    send(
        reqwest_middleware::ClientBuilder::new(plain(&pki))
            .with(TowerMiddleware::only([http::header::CONTENT_TYPE]))
            .build(),
    )
    .await;
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    for (headers, _) in &seen {
        for name in ["cookie", "origin", "x-forwarded-for"] {
            assert!(!headers.contains_key(name), "{name} reached the provider");
        }
        assert_eq!(headers["content-type"], "application/json");
    }
}

/// `RetryMiddleware` alone (no `TowerMiddleware` to report what the layers sent) keeps the
/// caller's idempotency key: a POST carrying it is retried after a 503, and the retry still
/// carries it (the key is taken off only when a layer is seen stripping it).
#[tokio::test(flavor = "multi_thread")]
async fn retry_middleware_alone_keeps_the_idempotency_key() {
    let pki = TestPki::generate();
    let calls = Arc::new(AtomicUsize::new(0));
    let keys = Arc::new(std::sync::Mutex::new(Vec::new()));
    let server = {
        let (calls, keys) = (Arc::clone(&calls), Arc::clone(&keys));
        HttpsServer::start(
            &pki.good,
            handler(move |request: Request<Bytes>| {
                let (calls, keys) = (Arc::clone(&calls), Arc::clone(&keys));
                async move {
                    keys.lock().unwrap().push(
                        request
                            .headers()
                            .get(&IDEMPOTENCY_KEY)
                            .map(|value| value.to_str().unwrap().to_owned()),
                    );
                    let status = if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                        503
                    } else {
                        200
                    };
                    Response::builder()
                        .status(status)
                        .body(Bytes::from_static(b"ok"))
                        .unwrap()
                }
            }),
        )
        .await
    };
    let retry = RetryMiddleware::new(
        RetryPolicy::new(3)
            .backoff(Duration::from_millis(1), Duration::from_millis(5))
            .idempotency_key(IDEMPOTENCY_KEY),
    );
    let client = reqwest_middleware::ClientBuilder::new(plain(&pki))
        .with(retry)
        .build();
    let response = client
        .post(format!("{}/v1/charge", server.url()))
        .header(&IDEMPOTENCY_KEY, "charge-42")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        *keys.lock().unwrap(),
        [Some("charge-42".to_owned()), Some("charge-42".to_owned())]
    );
}
