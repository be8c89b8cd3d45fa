//! `tollgate_reqwest::client`: every setting of `tollgate_client::ClientBuilder` honoured by a
//! real reqwest client, against HTTPS servers on loopback.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, Response, StatusCode};
use reqwest_middleware::ClientWithMiddleware;
use tollgate_client::{AUDIT_TARGET, ClientBuilder, RetryPolicy};
use tollgate_core::{BoxError, Secret, Upstream};
use tollgate_headers::{HeaderError, Token, TokenHeaderLayer};
use tollgate_reqwest::{ConfigError, Error, TlsConfig, TowerMiddleware, client, find_error};
use tollgate_test_support::LogCapture;
use tollgate_test_support::tls::{HttpsServer, TestPki, handler};
use tower::layer::util::Identity;

fn tls(pki: &TestPki) -> TlsConfig {
    TlsConfig::new()
        .add_root_pem(pki.ca_pem.as_bytes())
        .unwrap()
}

/// The settings for `server`: the test CA, quick retries.
fn settings(pki: &TestPki, server: &HttpsServer) -> ClientBuilder {
    ClientBuilder::new("acme")
        .base_url(&server.url())
        .tls(tls(pki))
        .retry(RetryPolicy::new(3).backoff(Duration::from_millis(1), Duration::from_millis(5)))
}

/// A server answering `statuses` in turn (the last one for ever after), recording when (Unix
/// time) each request arrived and its headers.
async fn sequence(
    pki: &TestPki,
    statuses: &'static [u16],
) -> (HttpsServer, Arc<Mutex<Vec<(Duration, HeaderMap)>>>) {
    let seen: Arc<Mutex<Vec<(Duration, HeaderMap)>>> = Arc::default();
    let record = Arc::clone(&seen);
    let server = HttpsServer::start(
        &pki.good,
        handler(move |request: http::Request<Bytes>| {
            let record = Arc::clone(&record);
            async move {
                let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
                let mut seen = record.lock().unwrap();
                let status = statuses[seen.len().min(statuses.len() - 1)];
                seen.push((now, request.headers().clone()));
                Response::builder()
                    .status(status)
                    .body(Bytes::from_static(b"ok"))
                    .unwrap()
            }
        }),
    )
    .await;
    (server, seen)
}

fn url(server: &HttpsServer, path: &str) -> String {
    format!("{}{path}", server.url())
}

async fn get(client: &ClientWithMiddleware, url: &str) -> reqwest_middleware::Result<StatusCode> {
    client
        .get(url)
        .send()
        .await
        .map(|response| response.status())
}

#[tokio::test]
async fn the_deadline_bounds_every_attempt_and_wait() {
    let pki = TestPki::generate();
    // Never answers.
    let server = HttpsServer::start(
        &pki.good,
        handler(|_request| std::future::pending::<Response<Bytes>>()),
    )
    .await;
    let client = client(
        settings(&pki, &server)
            .attempt_timeout(Duration::from_secs(5))
            .deadline(Duration::from_millis(150)),
        Identity::new(),
    )
    .unwrap();
    let started = Instant::now();
    let error = get(&client, &url(&server, "/slow")).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(
        matches!(
            find_error::<Error>(&error),
            Some(Error::DeadlineExceeded { after }) if *after == Duration::from_millis(150)
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_backoff_past_the_deadline_returns_the_last_answer() {
    let pki = TestPki::generate();
    let (server, seen) = sequence(&pki, &[503]).await;
    // Equal jitter: the first wait is 1.5..=3 s, past the 1 s deadline whatever the draw, so
    // the 503 is returned at once instead of waiting into a deadline error. (A shorter
    // backoff that fits a few attempts first would leave the last attempt racing the
    // deadline on a loaded machine.)
    let client = client(
        settings(&pki, &server)
            .retry(RetryPolicy::new(10).backoff(Duration::from_secs(3), Duration::from_secs(3)))
            .deadline(Duration::from_secs(1)),
        Identity::new(),
    )
    .unwrap();
    let started = Instant::now();
    let status = get(&client, &url(&server, "/busy")).await.unwrap();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn the_rate_limit_is_shared_by_clones() {
    let pki = TestPki::generate();
    let (server, seen) = sequence(&pki, &[200]).await;
    let first = client(
        settings(&pki, &server).rate_limit(1, Duration::from_millis(300)),
        Identity::new(),
    )
    .unwrap();
    let second = first.clone();
    assert_eq!(get(&first, &url(&server, "/a")).await.unwrap(), 200);
    assert_eq!(get(&second, &url(&server, "/b")).await.unwrap(), 200);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    let gap = seen[1].0.saturating_sub(seen[0].0);
    assert!(gap >= Duration::from_millis(290), "{gap:?}");
}

#[tokio::test]
async fn a_rate_limit_slot_after_the_deadline_fails_at_once() {
    let pki = TestPki::generate();
    let (server, seen) = sequence(&pki, &[200]).await;
    let client = client(
        settings(&pki, &server)
            .rate_limit(1, Duration::from_secs(60))
            .deadline(Duration::from_millis(500)),
        Identity::new(),
    )
    .unwrap();
    assert_eq!(get(&client, &url(&server, "/a")).await.unwrap(), 200);
    let started = Instant::now();
    let error = get(&client.clone(), &url(&server, "/b")).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_millis(400));
    assert!(
        matches!(
            find_error::<Error>(&error),
            Some(Error::DeadlineExceeded { .. })
        ),
        "{error:?}"
    );
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn the_concurrency_limit_is_shared_by_clones() {
    let pki = TestPki::generate();
    let in_flight = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let (now, max) = (Arc::clone(&in_flight), Arc::clone(&most));
    let server = HttpsServer::start(
        &pki.good,
        handler(move |_request| {
            let (now, max) = (Arc::clone(&now), Arc::clone(&max));
            async move {
                let current = now.fetch_add(1, Ordering::SeqCst) + 1;
                max.fetch_max(current, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(30)).await;
                now.fetch_sub(1, Ordering::SeqCst);
                Response::new(Bytes::from_static(b"ok"))
            }
        }),
    )
    .await;
    let client = client(
        settings(&pki, &server).concurrency_limit(1),
        Identity::new(),
    )
    .unwrap();
    let (a, b, c) = (client.clone(), client.clone(), client);
    let target = url(&server, "/x");
    let (ra, rb, rc) = tokio::join!(get(&a, &target), get(&b, &target), get(&c, &target));
    for result in [ra, rb, rc] {
        assert_eq!(result.unwrap(), 200);
    }
    assert_eq!(server.requests(), 3);
    assert_eq!(most.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_unsent() {
    let pki = TestPki::generate();
    let (server, seen) = sequence(&pki, &[200]).await;
    let client = client(settings(&pki, &server).max_request_body(8), Identity::new()).unwrap();
    let error = client
        .post(url(&server, "/orders"))
        .body("123456789")
        .send()
        .await
        .unwrap_err();
    assert!(
        matches!(
            find_error::<Error>(&error),
            Some(Error::BodyTooLarge { limit: 8 })
        ),
        "{error:?}"
    );
    assert_eq!(server.connections(), 0);
    let response = client
        .post(url(&server, "/orders"))
        .body("12345678")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn every_attempt_is_audited_like_the_hyper_client() {
    let pki = TestPki::generate();
    let (server, _seen) = sequence(&pki, &[503, 200]).await;
    let client = client(settings(&pki, &server), Identity::new()).unwrap();
    let logs = LogCapture::new();
    let _guard = logs.install();
    let status = get(&client, &url(&server, "/v1/charges?card=4242424242424242"))
        .await
        .unwrap();
    assert_eq!(status, 200);
    let text = logs.text();
    let events: Vec<&str> = text
        .lines()
        .filter(|line| line.contains("provider call"))
        .collect();
    assert_eq!(events.len(), 2, "{text}");
    for (event, (status, attempt)) in events.iter().zip([("503", "1"), ("200", "2")]) {
        assert!(event.contains(" INFO "), "{event}");
        assert!(event.contains(AUDIT_TARGET), "{event}");
        for field in [
            "provider=\"acme\"".to_owned(),
            "method=GET".to_owned(),
            "path=/v1/charges".to_owned(),
            format!("status={status}"),
            format!("attempt={attempt}"),
            "latency_ms=".to_owned(),
        ] {
            assert!(event.contains(&field), "{field} missing in {event}");
        }
    }
    assert!(!text.contains("4242424242424242"), "{text}");
}

#[tokio::test]
async fn a_refused_certificate_is_audited_and_not_retried() {
    let pki = TestPki::generate();
    let server = HttpsServer::start(
        &pki.self_signed,
        handler(|_request| async { Response::new(Bytes::new()) }),
    )
    .await;
    let client = client(settings(&pki, &server), Identity::new()).unwrap();
    let logs = LogCapture::new();
    let _guard = logs.install();
    let error = get(&client, &url(&server, "/x")).await.unwrap_err();
    assert!(
        matches!(error, reqwest_middleware::Error::Reqwest(_)),
        "{error:?}"
    );
    assert_eq!(server.requests(), 0);
    let text = logs.text();
    let events: Vec<&str> = text
        .lines()
        .filter(|line| line.contains("provider call"))
        .collect();
    assert_eq!(events.len(), 1, "{text}");
    assert!(events[0].contains("error=\"certificate\""), "{}", events[0]);
}

#[tokio::test]
async fn a_retry_of_a_time_signed_request_starts_in_a_new_tick() {
    let pki = TestPki::generate();
    let (server, seen) = sequence(&pki, &[503, 200]).await;
    let tick = Duration::from_millis(200);
    let client = client(
        settings(&pki, &server).signed_time_resolution(tick),
        Identity::new(),
    )
    .unwrap();
    assert_eq!(get(&client, &url(&server, "/x")).await.unwrap(), 200);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    let tick_of = |at: Duration| at.as_millis() / tick.as_millis();
    assert!(
        tick_of(seen[1].0) > tick_of(seen[0].0),
        "{:?}",
        (seen[0].0, seen[1].0)
    );
}

#[tokio::test]
async fn requests_are_pinned_to_the_base_url() {
    let pki = TestPki::generate();
    let (server, _seen) = sequence(&pki, &[200]).await;
    let client = client(
        settings(&pki, &server).base_url(&format!("{}/v2", server.url())),
        Identity::new(),
    )
    .unwrap();
    assert_eq!(
        get(&client, &url(&server, "/v2/charges")).await.unwrap(),
        200
    );
    for elsewhere in [
        url(&server, "/v1/charges"),
        "https://evil.example/v2".to_owned(),
    ] {
        let error = get(&client, &elsewhere).await.unwrap_err();
        assert!(
            matches!(find_error::<Error>(&error), Some(Error::NotBaseUrl { .. })),
            "{error:?}"
        );
    }
    assert_eq!(server.requests(), 1);
}

#[test]
fn every_setting_is_checked_as_the_hyper_client_checks_it() {
    let base = || ClientBuilder::new("acme").base_url("https://api.acme.example");
    let refusals = [
        (
            ClientBuilder::new("acme").base_url("http://api.acme.example"),
            "NotHttps",
        ),
        (
            ClientBuilder::new("acme").base_url("https://u:p@api.acme.example"),
            "UserInfo",
        ),
        (base().deadline(Duration::ZERO), "ZeroTimeout"),
        (base().retry(RetryPolicy::new(0)), "ZeroAttempts"),
        (
            base().rate_limit(0, Duration::from_secs(1)),
            "ZeroRateLimit",
        ),
        (base().concurrency_limit(0), "ZeroConcurrency"),
        (base().signed_time_resolution(Duration::ZERO), "ZeroTimeout"),
    ];
    for (settings, expected) in refusals {
        match client(settings, Identity::new()) {
            Err(ConfigError::Client(error)) => {
                let debug = format!("{error:?}");
                assert!(debug.starts_with(expected), "{debug}");
                assert!(!debug.contains("u:p"), "{debug}");
            }
            other => panic!("{expected}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn access_token_is_fetched_once_and_pinned() {
    let pki = TestPki::generate();
    let (server, seen) = sequence(&pki, &[200]).await;
    let fetched = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&fetched);
    let provider = move || {
        let count = Arc::clone(&count);
        async move {
            let n = count.fetch_add(1, Ordering::SeqCst) + 1;
            Ok::<_, BoxError>(Token::new(Secret::from_string(format!("t0ken-{n}"))))
        }
    };
    let upstream = Upstream::parse(&server.url()).unwrap();
    // The named constructor, in a chain built by hand (no pin: the layer pins its header).
    let plain = reqwest::Client::builder()
        .tls_backend_preconfigured(tls(&pki).client_config().unwrap())
        .build()
        .unwrap();
    let by_hand = reqwest_middleware::ClientBuilder::new(plain)
        .with(TowerMiddleware::access_token(
            provider.clone(),
            upstream.clone(),
        ))
        .build();
    for _ in 0..2 {
        assert_eq!(get(&by_hand, &url(&server, "/x")).await.unwrap(), 200);
    }
    let error = get(&by_hand, "https://elsewhere.example/x")
        .await
        .unwrap_err();
    assert!(find_error::<HeaderError>(&error).is_some(), "{error:?}");
    // The same layer through `client`.
    let through_client = client(
        settings(&pki, &server),
        TokenHeaderLayer::access_token(provider, upstream),
    )
    .unwrap();
    assert_eq!(
        get(&through_client, &url(&server, "/y")).await.unwrap(),
        200
    );
    let tokens: Vec<String> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|(_, headers)| headers["access-token"].to_str().unwrap().to_owned())
        .collect();
    assert_eq!(tokens, ["t0ken-1", "t0ken-1", "t0ken-2"]);
    assert_eq!(fetched.load(Ordering::SeqCst), 2);
}
