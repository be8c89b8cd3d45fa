//! Retries over real TLS on loopback: what is retried, what is not, how long it waits, and
//! that every attempt runs the provider's layers again.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderName, Request};
use http_body_util::{BodyExt as _, Full};
use tollgate_client::{CallError, ClientBuilder, ProviderClient, RetryPolicy};
use tollgate_core::{BoxError, BufferedBody};
use tollgate_https::{ConnectError, HttpsConnector};
use tollgate_test_support::tls::{HttpsServer, TestPki, handler};
use tower::{Service, ServiceExt as _};

use common::*;

const FAST: Duration = Duration::from_millis(1);

/// A server answering `statuses` in turn (then 200), recording `x-stamp` and `x-attempt`.
async fn scripted(
    pki: &TestPki,
    statuses: &'static [(u16, Option<&'static str>)],
) -> (HttpsServer, Seen) {
    let seen = Seen::default();
    let calls = Arc::new(AtomicUsize::new(0));
    let record = seen.clone();
    let server = HttpsServer::start(
        &pki.good,
        handler(move |request| {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            record.push(format!(
                "{} stamp={} attempt={}",
                request.method(),
                header(&request, "x-stamp"),
                header(&request, "x-attempt")
            ));
            async move {
                let (status, retry_after) = statuses.get(n).copied().unwrap_or((200, None));
                let mut response = respond(status);
                if let Some(value) = retry_after {
                    response
                        .headers_mut()
                        .insert("retry-after", value.parse().unwrap());
                }
                *response.body_mut() = Bytes::from(format!("answer {}", n + 1));
                response
            }
        }),
    )
    .await;
    (server, seen)
}

fn client(
    pki: &TestPki,
    server: &HttpsServer,
    stamp: &Stamp,
    policy: RetryPolicy,
) -> ProviderClient {
    ClientBuilder::new("acme")
        .base_url(&url(server))
        .tls(trust(pki))
        .retry(policy)
        .build(stamp.clone())
        .unwrap()
}

async fn body(response: http::Response<hyper::body::Incoming>) -> Bytes {
    response.into_body().collect().await.unwrap().to_bytes()
}

#[tokio::test]
async fn get_503_then_200_is_retried_and_re_runs_the_layers() {
    let pki = TestPki::generate();
    let (server, seen) = scripted(&pki, &[(503, None)]).await;
    let stamp = Stamp::default();
    let client = client(
        &pki,
        &server,
        &stamp,
        RetryPolicy::new(3).backoff(FAST, FAST),
    );

    let response = client.oneshot(get("/v1/orders")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(body(response).await, "answer 2");
    assert_eq!(server.requests(), 2);
    // The layer ran once per attempt, saw Attempt 1 then 2, and its stamp reached the server.
    assert_eq!(stamp.attempts(), [1, 2]);
    assert_eq!(
        seen.get(),
        ["GET stamp=1 attempt=1", "GET stamp=2 attempt=2"]
    );
}

#[tokio::test]
async fn retries_stop_after_max_attempts_with_the_last_answer() {
    let pki = TestPki::generate();
    let (server, seen) =
        scripted(&pki, &[(502, None), (504, None), (503, None), (503, None)]).await;
    let stamp = Stamp::default();
    let client = client(
        &pki,
        &server,
        &stamp,
        RetryPolicy::new(3).backoff(FAST, FAST),
    );

    let response = client.oneshot(get("/v1/orders")).await.unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(body(response).await, "answer 3");
    assert_eq!(server.requests(), 3);
    assert_eq!(seen.get().len(), 3);
}

#[tokio::test]
async fn post_503_is_not_retried_unless_it_carries_the_idempotency_key() {
    let pki = TestPki::generate();
    let (server, seen) = scripted(&pki, &[(503, None), (503, None)]).await;
    let stamp = Stamp::default();
    let policy = RetryPolicy::new(3)
        .backoff(FAST, FAST)
        .idempotency_key(HeaderName::from_static("idempotency-key"));
    let client = client(&pki, &server, &stamp, policy);

    let response = client
        .clone()
        .oneshot(post("/v1/charges", "{}"))
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(server.requests(), 1);
    assert_eq!(stamp.count(), 1);

    // The second answer is also 503; with the key, it is retried and the third is 200.
    let mut keyed = post("/v1/charges", "{}");
    keyed
        .headers_mut()
        .insert("Idempotency-Key", "order-42".parse().unwrap());
    let response = client.oneshot(keyed).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(server.requests(), 3);
    assert_eq!(
        seen.get(),
        [
            "POST stamp=1 attempt=1",
            "POST stamp=2 attempt=1",
            "POST stamp=3 attempt=2"
        ]
    );
}

#[tokio::test]
async fn retry_after_is_waited_for() {
    let pki = TestPki::generate();
    let (server, _seen) = scripted(&pki, &[(429, Some("1"))]).await;
    let stamp = Stamp::default();
    let client = client(
        &pki,
        &server,
        &stamp,
        RetryPolicy::new(2).backoff(FAST, FAST),
    );

    let started = Instant::now();
    let response = client.oneshot(get("/v1/quote")).await.unwrap();
    let elapsed = started.elapsed();
    assert_eq!(response.status(), 200);
    assert_eq!(server.requests(), 2);
    assert!(elapsed >= Duration::from_secs(1), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
}

#[tokio::test]
async fn a_long_retry_after_returns_the_answer_at_once() {
    let pki = TestPki::generate();
    let (server, _seen) = scripted(&pki, &[(429, Some("120")), (503, Some("31"))]).await;
    let stamp = Stamp::default();
    let client = client(
        &pki,
        &server,
        &stamp,
        RetryPolicy::new(3).backoff(FAST, FAST),
    );

    let started = Instant::now();
    let response = client.clone().oneshot(get("/v1/quote")).await.unwrap();
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "120");
    assert_eq!(server.requests(), 1);
    // Over the default max_retry_after of 30 s.
    let response = client.oneshot(get("/v1/quote")).await.unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(server.requests(), 2);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_retry_after_past_the_deadline_returns_the_answer_at_once() {
    let pki = TestPki::generate();
    let (server, _seen) = scripted(&pki, &[(503, Some("3"))]).await;
    let stamp = Stamp::default();
    let client = ClientBuilder::new("acme")
        .base_url(&url(&server))
        .tls(trust(&pki))
        .deadline(Duration::from_secs(2))
        .retry(RetryPolicy::new(3).backoff(FAST, FAST))
        .build(stamp.clone())
        .unwrap();
    let started = Instant::now();
    let response = client.oneshot(get("/v1/quote")).await.unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(server.requests(), 1);
    assert!(started.elapsed() < Duration::from_secs(1));
}

/// A server that never answers.
async fn silent(pki: &TestPki) -> HttpsServer {
    HttpsServer::start(
        &pki.good,
        handler(|_request| async {
            std::future::pending::<()>().await;
            respond(200)
        }),
    )
    .await
}

#[tokio::test]
async fn attempt_timeout_is_retried_on_get_then_reported() {
    let pki = TestPki::generate();
    let server = silent(&pki).await;
    let stamp = Stamp::default();
    let client = ClientBuilder::new("acme")
        .base_url(&url(&server))
        .tls(trust(&pki))
        .attempt_timeout(Duration::from_millis(100))
        .retry(RetryPolicy::new(2).backoff(FAST, FAST))
        .build(stamp.clone())
        .unwrap();

    let error = client.clone().oneshot(get("/v1/slow")).await.unwrap_err();
    assert!(
        matches!(error, CallError::AttemptTimeout { after } if after == Duration::from_millis(100)),
        "{error:?}"
    );
    assert_eq!(stamp.count(), 2);
    assert_eq!(server.requests(), 2);

    // A POST may have been processed: not retried.
    let error = client.oneshot(post("/v1/slow", "{}")).await.unwrap_err();
    assert!(
        matches!(error, CallError::AttemptTimeout { .. }),
        "{error:?}"
    );
    assert_eq!(stamp.count(), 3);
    assert_eq!(server.requests(), 3);
}

#[tokio::test]
async fn the_deadline_bounds_the_whole_call() {
    let pki = TestPki::generate();
    let server = silent(&pki).await;
    let stamp = Stamp::default();
    let client = ClientBuilder::new("acme")
        .base_url(&url(&server))
        .tls(trust(&pki))
        .attempt_timeout(Duration::from_millis(200))
        .deadline(Duration::from_millis(300))
        .retry(RetryPolicy::new(5).backoff(FAST, FAST))
        .build(stamp.clone())
        .unwrap();

    let started = Instant::now();
    let error = client.oneshot(get("/v1/slow")).await.unwrap_err();
    let elapsed = started.elapsed();
    assert!(
        matches!(error, CallError::DeadlineExceeded { after } if after == Duration::from_millis(300)),
        "{error:?}"
    );
    assert!(error.is_timeout());
    assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
    assert!(elapsed < Duration::from_millis(1000), "{elapsed:?}");
    // The first attempt timed out, the second was cut short by the deadline.
    assert_eq!(stamp.count(), 2);
}

#[tokio::test]
async fn a_layer_refusal_is_never_retried_and_nothing_is_sent() {
    let pki = TestPki::generate();
    let (server, _seen) = scripted(&pki, &[]).await;
    let stamp = Stamp::default();
    let client = ClientBuilder::new("acme")
        .base_url(&url(&server))
        .tls(trust(&pki))
        .retry(RetryPolicy::new(3).backoff(FAST, FAST))
        .build(
            tower::ServiceBuilder::new()
                .layer(stamp.clone())
                .layer(RefuseLayer),
        )
        .unwrap();

    let error = client.oneshot(get("/v1/orders")).await.unwrap_err();
    let CallError::Refused(source) = &error else {
        panic!("{error:?}");
    };
    assert_eq!(source.downcast_ref::<CannotSign>(), Some(&CannotSign));
    assert_eq!(
        error.to_string(),
        "a layer refused to send the request: cannot sign"
    );
    assert!(error.nothing_sent());
    assert_eq!(stamp.count(), 1);
    assert_eq!(server.connections(), 0);
}

#[tokio::test]
async fn connection_refused_is_retried_for_any_method() {
    // Nothing listens on this port: every attempt is refused before anything is sent.
    let port = tollgate_test_support::free_port();
    let pki = TestPki::generate();
    let stamp = Stamp::default();
    let client = ClientBuilder::new("acme")
        .base_url(&format!("https://127.0.0.1:{port}"))
        .tls(trust(&pki))
        .retry(RetryPolicy::new(3).backoff(FAST, FAST))
        .build(stamp.clone())
        .unwrap();
    let error = client.oneshot(post("/v1/charges", "{}")).await.unwrap_err();
    assert!(matches!(error, CallError::Connect(_)), "{error:?}");
    assert!(error.nothing_sent());
    assert_eq!(stamp.attempts(), [1, 2, 3]);
}

/// The HTTPS client, but the first `failures` calls fail as a refused connection would.
#[derive(Clone)]
struct Flaky<S> {
    inner: S,
    failures: Arc<AtomicUsize>,
}

impl<S> Service<Request<BufferedBody>> for Flaky<S>
where
    S: Service<Request<BufferedBody>> + Clone + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future =
        std::pin::Pin<Box<dyn std::future::Future<Output = Result<S::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<BufferedBody>) -> Self::Future {
        let fail = self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        let inner = self.inner.clone();
        Box::pin(async move {
            if fail {
                let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
                return Err(Box::new(ConnectError::Connect(Box::new(refused))) as BoxError);
            }
            inner.oneshot(request).await.map_err(Into::into)
        })
    }
}

#[tokio::test]
async fn a_refused_connection_then_success_over_build_over() {
    let pki = TestPki::generate();
    let (server, seen) = scripted(&pki, &[]).await;
    let stamp = Stamp::default();
    let transport = Flaky {
        inner: HttpsConnector::new(&trust(&pki))
            .unwrap()
            .client::<BufferedBody>(),
        failures: Arc::new(AtomicUsize::new(1)),
    };
    let client = ClientBuilder::new("acme")
        .base_url(&url(&server))
        .retry(RetryPolicy::new(3).backoff(FAST, FAST))
        .build_over(stamp.clone(), transport)
        .unwrap();

    let response = client.oneshot(post("/v1/charges", "{}")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(stamp.attempts(), [1, 2]);
    assert_eq!(server.requests(), 1);
    assert_eq!(seen.get(), ["POST stamp=2 attempt=2"]);
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_before_sending() {
    let pki = TestPki::generate();
    let (server, seen) = scripted(&pki, &[]).await;
    let stamp = Stamp::default();
    let client = ClientBuilder::new("acme")
        .base_url(&url(&server))
        .tls(trust(&pki))
        .max_request_body(10)
        .build(stamp.clone())
        .unwrap();

    let error = client
        .clone()
        .oneshot(post("/v1/charges", "12345678901"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, CallError::BodyTooLarge { limit: 10 }),
        "{error:?}"
    );
    assert_eq!(stamp.count(), 0);
    assert_eq!(server.connections(), 0);

    // At the limit: sent, with the exact bytes.
    let response = client
        .oneshot(post("/v1/charges", "1234567890"))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(seen.get(), ["POST stamp=1 attempt=1"]);
}

#[tokio::test]
async fn every_attempt_sends_the_same_body() {
    let pki = TestPki::generate();
    let bodies = Seen::default();
    let record = bodies.clone();
    let calls = Arc::new(AtomicUsize::new(0));
    let server = HttpsServer::start(
        &pki.good,
        handler(move |request| {
            record.push(format!(
                "{} {}",
                request.uri().path_and_query().unwrap(),
                String::from_utf8(request.body().to_vec()).unwrap()
            ));
            let first = calls.fetch_add(1, Ordering::SeqCst) == 0;
            async move { respond(if first { 503 } else { 201 }) }
        }),
    )
    .await;
    let client = ClientBuilder::new("acme")
        .base_url(&format!("{}/api/v2", url(&server)))
        .tls(trust(&pki))
        .retry(RetryPolicy::new(2).backoff(FAST, FAST))
        .build(tower::layer::util::Identity::new())
        .unwrap();
    let request = Request::put("/orders/7?x=1")
        .body(Full::new(Bytes::from_static(b"{\"amount\":100}")))
        .unwrap();
    let response = client.oneshot(request).await.unwrap();
    assert_eq!(response.status(), 201);
    // The relative URI was joined under the base path; both attempts carried the same bytes.
    assert_eq!(
        bodies.get(),
        [
            "/api/v2/orders/7?x=1 {\"amount\":100}",
            "/api/v2/orders/7?x=1 {\"amount\":100}"
        ]
    );
}

#[tokio::test]
async fn a_post_whose_idempotency_key_the_layers_strip_is_not_retried() {
    let pki = TestPki::generate();
    let (server, _seen) = scripted(&pki, &[(503, None), (503, None)]).await;
    // A provider layer that drops the key (an allowlist of headers would): the provider
    // cannot tell two attempts apart, so the POST must go out once.
    let strip = tower::util::MapRequestLayer::new(|mut request: http::Request<_>| {
        request.headers_mut().remove("idempotency-key");
        request
    });
    let client = ClientBuilder::new("acme")
        .base_url(&url(&server))
        .tls(trust(&pki))
        .retry(
            RetryPolicy::new(3)
                .backoff(FAST, FAST)
                .idempotency_key(HeaderName::from_static("idempotency-key")),
        )
        .build(strip)
        .unwrap();
    let mut keyed = post("/v1/charges", "{}");
    keyed
        .headers_mut()
        .insert("idempotency-key", "order-43".parse().unwrap());
    let response = client.oneshot(keyed).await.unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(server.requests(), 1, "the key never reached the provider");
}
