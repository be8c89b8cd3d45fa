//! An attacker's review of the HTTPS and provider-client stacks (9d170c5..b0dfa4b):
//! tollgate-https (`HttpsConnector`, `RequireHttpsLayer`), tollgate-client (`ProviderClient`:
//! deadline, retries, rate and concurrency limits, audit), the ready provider clients
//! (OneKey, Tranzila, Transak, HMAC) and the rejection-log sampler.
//!
//! A test marked `// FINDING:` demonstrated a weakness of the code as reviewed: it asserts
//! the secure behaviour, failed before the fix and passes since. A test marked
//! `// control: holds` documents an attack that was tried and refused; it stays as a
//! regression test. Everything runs over real sockets, real TLS on loopback where a
//! connection matters.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::Full;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tollgate::client::{CallError, ClientBuilder, RetryPolicy};
use tollgate::client_ip::{IpRanges, PeerAddr};
use tollgate::core::{BoxError, KeyRing, Secret};
use tollgate::headers::Token;
use tollgate::hmac::HmacClient;
use tollgate::https::{RequireHttpsLayer, TlsConfig};
use tollgate::onekey::{OneKeyClient, OneKeyCredentials};
use tollgate::transak::TransakClient;
use tollgate::tranzila::{TranzilaClient, TranzilaCredentials};
use tollgate_test_support::LogCapture;
use tollgate_test_support::tls::{HttpsServer, TestPki, handler};
use tower::layer::util::Identity;
use tower::{Layer as _, ServiceExt as _};

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

fn tls(pki: &TestPki) -> TlsConfig {
    TlsConfig::new()
        .roots_only()
        .add_root_pem(pki.ca_pem.as_bytes())
        .unwrap()
}

/// What reached a server: arrival time, method, path and query, headers, body.
#[derive(Clone, Debug)]
struct Seen {
    at: Instant,
    /// The `Host` header, or the HTTP/2 `:authority`.
    authority: String,
    target: String,
    headers: HeaderMap,
}

type Log = Arc<Mutex<Vec<Seen>>>;

/// An HTTPS server (good leaf) recording every request, answering with `answer(n, request)`
/// (`n` = 1 for the first request).
async fn recording<F, Fut>(pki: &TestPki, answer: F) -> (HttpsServer, Log)
where
    F: Fn(usize, Request<Bytes>) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = Response<Bytes>> + Send + 'static,
{
    let log: Log = Arc::default();
    let record = Arc::clone(&log);
    let server = HttpsServer::start(
        &pki.good,
        handler(move |request: Request<Bytes>| {
            let answer = answer.clone();
            let n = {
                let mut log = record.lock().unwrap();
                log.push(Seen {
                    at: Instant::now(),
                    authority: request
                        .headers()
                        .get("host")
                        .and_then(|host| host.to_str().ok())
                        .map(ToOwned::to_owned)
                        .or_else(|| request.uri().authority().map(ToString::to_string))
                        .unwrap_or_default(),
                    target: request
                        .uri()
                        .path_and_query()
                        .map(ToString::to_string)
                        .unwrap_or_default(),
                    headers: request.headers().clone(),
                });
                log.len()
            };
            answer(n, request)
        }),
    )
    .await;
    (server, log)
}

fn status(code: u16) -> Response<Bytes> {
    Response::builder()
        .status(code)
        .body(Bytes::from_static(b"answer"))
        .unwrap()
}

fn ok() -> Response<Bytes> {
    status(200)
}

fn onekey_credentials() -> OneKeyCredentials {
    OneKeyCredentials::new(
        Secret::from_string("ok_api_key_attack6"),
        Secret::from_string("ok_passphrase_attack6"),
        Secret::from_string("ok_signature_attack6"),
    )
}

fn empty() -> Full<Bytes> {
    Full::new(Bytes::new())
}

fn json(body: &'static str) -> Full<Bytes> {
    Full::new(Bytes::from_static(body.as_bytes()))
}

// ---------------------------------------------------------------------------------------
// Rate and concurrency limits
// ---------------------------------------------------------------------------------------

// FINDING: the rate limit is taken *before* the concurrency permit (RateLimit wraps
// ConcurrencyLimit), so attempts whose rate slots passed while they queued for a permit all
// start together the moment permits free up: the provider sees a burst above the rate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_holds_when_attempts_queue_behind_the_concurrency_limit() {
    let pki = TestPki::generate();
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let (server, log) = recording(&pki, {
        let gate = Arc::clone(&gate);
        move |n, _request| {
            let gate = Arc::clone(&gate);
            async move {
                // The first two calls are slow: they hold both concurrency permits.
                if n <= 2 {
                    gate.acquire().await.unwrap().forget();
                }
                ok()
            }
        }
    })
    .await;
    let per = Duration::from_millis(250);
    let client = ClientBuilder::new("attack6")
        .base_url(&server.url())
        .tls(tls(&pki))
        .retry(RetryPolicy::none())
        .rate_limit(1, per)
        .concurrency_limit(2)
        .build(Identity::new())
        .unwrap();

    let mut calls = Vec::new();
    for _ in 0..4 {
        let client = client.clone();
        calls.push(tokio::spawn(async move {
            client
                .oneshot(Request::get("/v1/x").body(empty()).unwrap())
                .await
                .map(|response| response.status())
        }));
    }
    // Slots: t0, t0+250ms, t0+500ms, t0+750ms. Let every slot pass while the first two
    // calls hold both permits, then let the slow calls finish.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(log.lock().unwrap().len(), 2, "two calls in flight");
    gate.add_permits(2);
    for call in calls {
        assert_eq!(call.await.unwrap().unwrap(), StatusCode::OK);
    }
    let arrivals: Vec<Instant> = log.lock().unwrap().iter().map(|seen| seen.at).collect();
    assert_eq!(arrivals.len(), 4);
    // At most one request may start in any window of 250 ms: arrivals 3 and 4 must be at
    // least `per` apart (a few ms of slack for scheduling).
    let gap = arrivals[3].duration_since(arrivals[2]);
    assert!(
        gap >= per - Duration::from_millis(20),
        "requests 3 and 4 reached the provider {gap:?} apart under a 1-per-{per:?} limit"
    );
}

// control: holds — clones share one rate budget; retries count against it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_is_shared_by_clones_and_counts_retries() {
    let pki = TestPki::generate();
    let (server, log) = recording(&pki, |n, _request| async move {
        if n == 1 { status(503) } else { ok() }
    })
    .await;
    let per = Duration::from_millis(150);
    let client = ClientBuilder::new("attack6")
        .base_url(&server.url())
        .tls(tls(&pki))
        .retry(RetryPolicy::new(2).backoff(Duration::from_millis(1), Duration::from_millis(1)))
        .rate_limit(1, per)
        .build(Identity::new())
        .unwrap();
    let (a, b) = tokio::join!(
        client
            .clone()
            .oneshot(Request::get("/a").body(empty()).unwrap()),
        client
            .clone()
            .oneshot(Request::get("/b").body(empty()).unwrap()),
    );
    assert_eq!(a.unwrap().status(), StatusCode::OK);
    assert_eq!(b.unwrap().status(), StatusCode::OK);
    let arrivals: Vec<Instant> = log.lock().unwrap().iter().map(|seen| seen.at).collect();
    assert_eq!(arrivals.len(), 3, "two calls and one retry");
    for pair in arrivals.windows(2) {
        let gap = pair[1].duration_since(pair[0]);
        assert!(gap >= per - Duration::from_millis(20), "{gap:?}");
    }
}

// ---------------------------------------------------------------------------------------
// Debug output
// ---------------------------------------------------------------------------------------

// FINDING: the ready provider builders derive `Debug` over the raw base URL string, so a
// base URL carrying user info (`https://key:secret@host`) prints its password, while
// `ClientBuilder`'s own `Debug` (printed inside them) carefully strips it.
#[test]
fn provider_builders_debug_never_shows_base_url_user_info() {
    const URL: &str = "https://merchant:hunter2-base-url-pw@api.example";
    let onekey = format!("{:?}", OneKeyClient::builder(URL, onekey_credentials()));
    let hmac = format!(
        "{:?}",
        HmacClient::builder(
            "acme",
            URL,
            KeyRing::single(Secret::from_string("hmac_attack6"))
        )
    );
    let tranzila = format!(
        "{:?}",
        TranzilaClient::builder(
            TranzilaCredentials::new("pub_app_key_attack6", "private_attack6").unwrap()
        )
        .base_url(URL)
    );
    let transak = format!(
        "{:?}",
        TransakClient::builder(URL, Secret::from_string("pk_attack6"), || async {
            Ok::<_, BoxError>(Token::new(Secret::from_string("tok_attack6")))
        })
    );
    let mut leaking = Vec::new();
    for (name, text) in [
        ("OneKeyClientBuilder", &onekey),
        ("HmacClientBuilder", &hmac),
        ("TranzilaClientBuilder", &tranzila),
        ("TransakClientBuilder", &transak),
    ] {
        for secret in [
            "ok_api_key_attack6",
            "ok_passphrase_attack6",
            "ok_signature_attack6",
            "hmac_attack6",
            "private_attack6",
            "pk_attack6",
            "tok_attack6",
        ] {
            assert!(!text.contains(secret), "{name} shows {secret}: {text}");
        }
        if text.contains("hunter2") {
            leaking.push(format!("{name}: {text}"));
        }
    }
    assert!(
        leaking.is_empty(),
        "base URL user info in Debug:\n{}",
        leaking.join("\n")
    );
}

// control: holds — ClientBuilder and ProviderClient Debug drop user info.
#[test]
fn client_builder_debug_drops_user_info() {
    let builder = ClientBuilder::new("attack6").base_url("https://merchant:hunter2@api.example");
    let text = format!("{builder:?}");
    assert!(!text.contains("hunter2"), "{text}");
    assert!(!text.contains("merchant"), "{text}");
    assert!(builder.build(Identity::new()).is_err());
}

// ---------------------------------------------------------------------------------------
// Credentials only to the configured base URL
// ---------------------------------------------------------------------------------------

// control: holds — absolute URIs to another port, user info confusion, uppercase scheme,
// dot segments, encoded dot segments and a forged `Host` never carry OneKey's Basic auth
// anywhere but the configured host and base path; nothing even connects to the other port.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onekey_credentials_never_leave_the_configured_base_url() {
    let pki = TestPki::generate();
    let (provider, provider_log) = recording(&pki, |_, _| async { ok() }).await;
    let (evil, evil_log) = recording(&pki, |_, _| async { ok() }).await;
    let base = format!("{}/api", provider.url());
    let client = OneKeyClient::builder(&base, onekey_credentials())
        .configure(|c| c.tls(tls(&pki)).retry(RetryPolicy::none()))
        .build()
        .unwrap();
    let p = provider.addr().port();
    let e = evil.addr().port();
    let absolute = [
        format!("https://localhost:{e}/api/v3/cashout"),
        format!("HTTPS://LOCALHOST:{e}/api/v3/cashout"),
        format!("https://localhost:{p}@localhost:{e}/api/v3/cashout"),
        format!("https://user@localhost:{p}/api/v3/cashout"),
        format!("https://127.0.0.1:{e}/api/v3/cashout"),
        format!("https://localhost:{p}/api/../admin"),
        format!("https://localhost:{p}/api/%2e%2e/admin"),
        format!("https://localhost:{p}/admin"),
        format!("https://localhost.:{p}/api/v3/cashout"),
    ];
    for uri in &absolute {
        let Ok(request) = Request::post(uri.as_str()).body(json("{}")) else {
            continue;
        };
        let result = client.clone().oneshot(request).await;
        assert!(
            matches!(
                result,
                Err(CallError::Refused(_) | CallError::InvalidUri { .. })
            ),
            "{uri}: {result:?}"
        );
    }
    for relative in [
        "/../admin",
        "/%2e%2e/admin",
        "/%2E%2E%2Fadmin",
        "/..%2fadmin",
        "/.%2e/admin",
        "/..;/admin",
        "/..\\admin",
    ] {
        let Ok(request) = Request::post(relative).body(json("{}")) else {
            continue;
        };
        let result = client.clone().oneshot(request).await;
        assert!(
            matches!(result, Err(CallError::Refused(_))),
            "{relative}: {result:?}"
        );
    }
    // A forged Host naming the other server, and `//host` paths: whatever happens, nothing
    // reaches the other server and the provider never sees a foreign Host.
    let forged = Request::post("/v3/cashout")
        .header("host", format!("localhost:{e}"))
        .body(json("{}"))
        .unwrap();
    let _ = client.clone().oneshot(forged).await;
    let slashes = Request::post(format!("//localhost:{e}/api/v3/cashout"))
        .body(json("{}"))
        .unwrap();
    let _ = client.clone().oneshot(slashes).await;

    // A control: a request the client may send reaches the provider, so the checks below
    // look at real traffic.
    let control = Request::post("/v3/cashout").body(json("{}")).unwrap();
    assert_eq!(
        client.clone().oneshot(control).await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(evil.connections(), 0, "{:?}", evil_log.lock().unwrap());
    assert!(!provider_log.lock().unwrap().is_empty());
    for seen in provider_log.lock().unwrap().iter() {
        assert_eq!(seen.authority, format!("localhost:{p}"), "{seen:?}");
        assert!(seen.target.starts_with("/api/"), "{seen:?}");
        assert!(!seen.target.contains(".."), "{seen:?}");
    }
}

// control: holds — a plain-http absolute URI never opens a connection, whatever the case
// of its scheme; a base URL that is not https is refused at build.
#[tokio::test]
async fn plain_http_never_leaves() {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&accepted);
    let task = tokio::spawn(async move {
        while let Ok((_tcp, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });
    let client = ClientBuilder::new("attack6")
        .build(Identity::new())
        .unwrap();
    for uri in [
        format!("http://127.0.0.1:{port}/x"),
        format!("HTTP://127.0.0.1:{port}/x"),
        format!("ws://127.0.0.1:{port}/x"),
    ] {
        let result = client
            .clone()
            .oneshot(Request::get(uri.as_str()).body(empty()).unwrap())
            .await;
        assert!(
            matches!(result, Err(CallError::NotHttps { .. })),
            "{uri}: {result:?}"
        );
    }
    for base in [
        format!("http://127.0.0.1:{port}"),
        format!("HTTP://127.0.0.1:{port}"),
    ] {
        assert!(
            ClientBuilder::new("attack6")
                .base_url(&base)
                .build(Identity::new())
                .is_err(),
            "{base}"
        );
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 0);
    task.abort();
}

// control: holds — a certificate for another name, expired or self-signed: refused before
// any request, never retried (one handshake attempt each, no request).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_certificates_send_nothing_and_are_not_retried() {
    let pki = TestPki::generate();
    for leaf in [&pki.other_name, &pki.expired, &pki.self_signed] {
        let server = HttpsServer::start(leaf, handler(|_| async { ok() })).await;
        let client = ClientBuilder::new("attack6")
            .base_url(&server.url())
            .tls(tls(&pki))
            .retry(RetryPolicy::new(3).backoff(Duration::from_millis(1), Duration::from_millis(1)))
            .build(Identity::new())
            .unwrap();
        let result = client
            .oneshot(Request::get("/x").body(empty()).unwrap())
            .await;
        assert!(
            matches!(result, Err(CallError::Certificate { .. })),
            "{result:?}"
        );
        assert_eq!(server.requests(), 0);
        assert_eq!(server.connections(), 1, "not retried");
    }
}

// ---------------------------------------------------------------------------------------
// Retries
// ---------------------------------------------------------------------------------------

// control: holds — a POST without an idempotency key is sent once after a 502, a 503, a
// transport failure or an attempt timeout (it may have been processed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_that_may_have_been_processed_is_sent_once() {
    let pki = TestPki::generate();
    let (server, log) = recording(&pki, |_, request: Request<Bytes>| async move {
        match request.uri().path() {
            "/502" => status(502),
            "/503" => status(503),
            _ => {
                std::future::pending::<()>().await;
                ok()
            }
        }
    })
    .await;
    let client = ClientBuilder::new("attack6")
        .base_url(&server.url())
        .tls(tls(&pki))
        .attempt_timeout(Duration::from_millis(200))
        .retry(RetryPolicy::new(3).backoff(Duration::from_millis(1), Duration::from_millis(1)))
        .build(Identity::new())
        .unwrap();
    let post = |path: &str| Request::post(path).body(json(r#"{"amount":1}"#)).unwrap();
    assert_eq!(
        client.clone().oneshot(post("/502")).await.unwrap().status(),
        StatusCode::BAD_GATEWAY
    );
    assert_eq!(
        client.clone().oneshot(post("/503")).await.unwrap().status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    let error = client.clone().oneshot(post("/slow")).await.unwrap_err();
    assert!(
        matches!(error, CallError::AttemptTimeout { .. }),
        "{error:?}"
    );
    assert!(!error.nothing_sent());
    let paths: Vec<String> = log
        .lock()
        .unwrap()
        .iter()
        .map(|s| s.target.clone())
        .collect();
    assert_eq!(paths, ["/502", "/503", "/slow"]);
}

// control: holds — Retry-After cannot hold a call past its deadline nor make it spin: a long
// one ends retrying at once, a zero one still counts attempts, a past date or repeated
// values fall back to the backoff.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_abuse_is_bounded() {
    let pki = TestPki::generate();
    let (server, log) = recording(&pki, |_, request: Request<Bytes>| async move {
        let mut response = status(503);
        let values: &[&'static str] = match request.uri().path() {
            "/long" => &["20"],
            "/huge" => &["99999999999999999999999999"],
            "/zero" => &["0"],
            "/past" => &["Thu, 01 Jan 1970 00:00:00 GMT"],
            "/future-date" => &["Fri, 31 Dec 9999 23:59:59 GMT"],
            "/many" => &["0", "100"],
            "/negative" => &["-5"],
            _ => &[],
        };
        for value in values {
            response
                .headers_mut()
                .append("retry-after", http::HeaderValue::from_static(value));
        }
        response
    })
    .await;
    let deadline = Duration::from_millis(1500);
    let client = ClientBuilder::new("attack6")
        .base_url(&server.url())
        .tls(tls(&pki))
        .deadline(deadline)
        .retry(RetryPolicy::new(3).backoff(Duration::from_millis(1), Duration::from_millis(2)))
        .build(Identity::new())
        .unwrap();
    for (path, attempts) in [
        ("/long", 1),
        ("/huge", 1),
        ("/future-date", 1),
        ("/zero", 3),
        ("/past", 3),
        ("/many", 3),
        ("/negative", 3),
    ] {
        let before = log.lock().unwrap().len();
        let started = Instant::now();
        let response = client
            .clone()
            .oneshot(Request::get(path).body(empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE, "{path}");
        assert!(
            started.elapsed() < deadline,
            "{path}: {:?}",
            started.elapsed()
        );
        assert_eq!(log.lock().unwrap().len() - before, attempts, "{path}");
    }
}

// control: holds — each retry of the Tranzila client carries a fresh nonce and signature.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tranzila_retry_never_resends_a_nonce_or_signature() {
    let pki = TestPki::generate();
    let (server, log) = recording(&pki, |n, _| async move {
        if n < 3 { status(503) } else { ok() }
    })
    .await;
    let client = TranzilaClient::builder(
        TranzilaCredentials::new("pub_app_key_attack6", "private_attack6").unwrap(),
    )
    .base_url(&server.url())
    .configure(|c| {
        c.tls(tls(&pki))
            .retry(RetryPolicy::new(3).backoff(Duration::from_millis(1), Duration::from_millis(1)))
    })
    .build()
    .unwrap();
    let response = client
        .oneshot(Request::get("/v1/transactions").body(empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let log = log.lock().unwrap();
    assert_eq!(log.len(), 3);
    for name in ["x-tranzila-api-nonce", "x-tranzila-api-access-token"] {
        let values: std::collections::HashSet<_> =
            log.iter().map(|seen| seen.headers[name].clone()).collect();
        assert_eq!(values.len(), 3, "{name} repeated across attempts");
    }
}

// ---------------------------------------------------------------------------------------
// Secrets in errors and logs
// ---------------------------------------------------------------------------------------

// control: holds — user info and query values of an absolute URI appear in no error text,
// no Debug and no tollgate log line (audit included), whether the call connects or not.
#[tokio::test]
async fn tollgate_errors_and_audit_never_show_uri_user_info_or_query() {
    let pki = TestPki::generate();
    let (server, _log) = recording(&pki, |_, _| async { ok() }).await;
    let port = tollgate_test_support::free_port();
    let logs = LogCapture::new();
    let _guard = logs.install();
    let client = ClientBuilder::new("attack6")
        .tls(tls(&pki))
        .retry(RetryPolicy::none())
        .build(Identity::new())
        .unwrap();
    let mut texts = Vec::new();
    for uri in [
        format!("https://merchant:hunter2pw@127.0.0.1:{port}/pay?card=4111111111111111"),
        format!(
            "https://localhost:{}/pay?card=4111111111111111",
            server.addr().port()
        ),
    ] {
        match client
            .clone()
            .oneshot(Request::get(uri.as_str()).body(empty()).unwrap())
            .await
        {
            Ok(response) => texts.push(format!("{response:?}")),
            Err(error) => {
                texts.push(error.to_string());
                texts.push(format!("{error:?}"));
                let mut source = std::error::Error::source(&error);
                while let Some(inner) = source {
                    texts.push(inner.to_string());
                    source = inner.source();
                }
            }
        }
    }
    let text = logs.text();
    assert!(text.contains("provider call"), "{text}");
    // tollgate's own lines (dependencies' TRACE lines are the next test's subject).
    texts.extend(
        text.lines()
            .filter(|line| line.contains(" tollgate"))
            .map(ToOwned::to_owned),
    );
    for text in texts {
        assert!(!text.contains("hunter2pw"), "{text}");
        assert!(!text.contains("4111111111111111"), "{text}");
    }
}

// FINDING: an absolute request URI with user info (`https://user:password@host/...`) is
// accepted and sent (the base URL refuses user info, request URIs do not): hyper_util's
// pool writes the authority, password included, in its TRACE/DEBUG lines, and the pooled
// connection is keyed by it. It should be refused unsent, like `CallError::InvalidUri`.
#[tokio::test]
async fn a_request_uri_with_user_info_is_refused_unsent() {
    let pki = TestPki::generate();
    let (server, log) = recording(&pki, |_, _| async { ok() }).await;
    let logs = LogCapture::new();
    let _guard = logs.install();
    let client = ClientBuilder::new("attack6")
        .tls(tls(&pki))
        .retry(RetryPolicy::none())
        .build(Identity::new())
        .unwrap();
    let uri = format!(
        "https://merchant:hunter2pw@localhost:{}/pay",
        server.addr().port()
    );
    let result = client
        .oneshot(Request::get(uri.as_str()).body(empty()).unwrap())
        .await;
    let seen: Vec<String> = log
        .lock()
        .unwrap()
        .iter()
        .map(|s| s.authority.clone())
        .collect();
    let leaked: Vec<String> = logs
        .text()
        .lines()
        .filter(|line| line.contains("hunter2pw"))
        .map(ToOwned::to_owned)
        .collect();
    assert!(
        matches!(result, Err(CallError::InvalidUri { .. })),
        "sent: {result:?}; the server saw authorities {seen:?}; log lines with the password: {leaked:#?}"
    );
    assert_eq!(server.connections(), 0);
    assert!(leaked.is_empty(), "{leaked:#?}");
}

// ---------------------------------------------------------------------------------------
// Request body
// ---------------------------------------------------------------------------------------

// control: holds — a caller's lying Content-Length cannot smuggle a second request onto a
// pooled provider connection, and a declared length over the limit is refused unsent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lying_content_length_smuggles_nothing() {
    let pki = TestPki::generate();
    let (server, log) = recording(&pki, |_, _| async { ok() }).await;
    let client = ClientBuilder::new("attack6")
        .base_url(&server.url())
        .tls(tls(&pki).http1_only())
        .retry(RetryPolicy::none())
        .max_request_body(1024)
        .build(Identity::new())
        .unwrap();
    let smuggled = "GET /smuggled HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let body = format!("abcd{smuggled}");
    let request = Request::post("/v1/first")
        .header("content-length", "4")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let _ = client.clone().oneshot(request).await;
    let request = Request::get("/v1/second").body(empty()).unwrap();
    let second = client.clone().oneshot(request).await.unwrap();
    assert_eq!(second.status(), StatusCode::OK);
    let too_big = Request::post("/v1/big")
        .header("content-length", "4096")
        .body(json("{}"))
        .unwrap();
    assert!(matches!(
        client.clone().oneshot(too_big).await,
        Err(CallError::BodyTooLarge { limit: 1024 })
    ));
    let targets: Vec<String> = log
        .lock()
        .unwrap()
        .iter()
        .map(|s| s.target.clone())
        .collect();
    assert!(!targets.iter().any(|t| t == "/smuggled"), "{targets:?}");
    assert!(!targets.iter().any(|t| t == "/v1/big"), "{targets:?}");
    assert!(targets.iter().any(|t| t == "/v1/second"), "{targets:?}");
}

// ---------------------------------------------------------------------------------------
// RequireHttpsLayer over a real socket (HTTP/1.1 and h2c)
// ---------------------------------------------------------------------------------------

/// Serves `RequireHttpsLayer` (as configured) over plain TCP on loopback, HTTP/1.1 and
/// HTTP/2 prior knowledge, with the peer address as `PeerAddr`.
async fn plain_server(layer: RequireHttpsLayer) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        while let Ok((tcp, peer)) = listener.accept().await {
            let layer = layer.clone();
            tokio::spawn(async move {
                let inner = tower::service_fn(|_request: Request<hyper::body::Incoming>| async {
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"inner"))))
                });
                let service = layer.layer(inner);
                let service =
                    tower::service_fn(move |mut request: Request<hyper::body::Incoming>| {
                        request.extensions_mut().insert(PeerAddr::new(peer));
                        service.clone().oneshot(request)
                    });
                let _ = hyper_util::server::conn::auto::Builder::new(
                    hyper_util::rt::TokioExecutor::new(),
                )
                .serve_connection(
                    hyper_util::rt::TokioIo::new(tcp),
                    hyper_util::service::TowerToHyperService::new(service),
                )
                .await;
            });
        }
    });
    (addr, task)
}

/// Sends `raw` and reads until the server closes (requests carry `Connection: close`).
async fn raw(addr: SocketAddr, raw: &str) -> String {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(raw.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tcp.read_to_end(&mut out).await.unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

fn status_line(response: &str) -> &str {
    response.lines().next().unwrap_or_default()
}

fn header<'a>(response: &'a str, name: &str) -> Vec<&'a str> {
    response
        .split("\r\n\r\n")
        .next()
        .unwrap_or_default()
        .lines()
        .skip(1)
        .filter_map(|line| line.split_once(':'))
        .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
        .collect()
}

// control: holds — from an untrusted peer, forwarding headers, an absolute-form https
// request line and `//host` or backslash paths neither pass as https nor redirect anywhere
// but the configured origin; no HSTS on plain answers.
#[tokio::test]
async fn require_https_spoofing_from_an_untrusted_peer() {
    let layer = RequireHttpsLayer::new()
        .redirect_to("https://pay.example.com".parse().unwrap())
        .hsts(tollgate::https::Hsts::new(Duration::from_secs(600)).unwrap())
        // Trusted: a range the loopback peer is not in.
        .trust_forwarded_proto(IpRanges::unique_local());
    let (addr, task) = plain_server(layer).await;
    let cases = [
        (
            "GET /pay HTTP/1.1\r\nHost: pay.example.com\r\nX-Forwarded-Proto: https\r\nForwarded: proto=https\r\nConnection: close\r\n\r\n",
            "/pay",
        ),
        (
            "GET https://pay.example.com/pay HTTP/1.1\r\nHost: pay.example.com\r\nConnection: close\r\n\r\n",
            "/pay",
        ),
        (
            "GET //evil.example/x HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
            "//evil.example/x",
        ),
        (
            "GET https://evil.example HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
            "/",
        ),
        (
            "GET /a/..%2f..%2f%5cevil.example?x=%0d%0aSet-Cookie:a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            "/a/..%2f..%2f%5cevil.example?x=%0d%0aSet-Cookie:a",
        ),
    ];
    for (request, path) in cases {
        let response = raw(addr, request).await;
        assert_eq!(
            status_line(&response),
            "HTTP/1.1 308 Permanent Redirect",
            "{request}\n{response}"
        );
        assert_eq!(
            header(&response, "location"),
            [format!("https://pay.example.com{path}").as_str()],
            "{request}"
        );
        assert!(
            header(&response, "strict-transport-security").is_empty(),
            "{response}"
        );
        assert!(header(&response, "set-cookie").is_empty(), "{response}");
        assert!(!response.contains("inner"), "{response}");
    }
    let post = raw(
        addr,
        "POST /pay HTTP/1.1\r\nHost: pay.example.com\r\nX-Forwarded-Proto: https\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status_line(&post), "HTTP/1.1 403 Forbidden", "{post}");
    assert!(post.contains("https_required"), "{post}");
    assert!(
        header(&post, "strict-transport-security").is_empty(),
        "{post}"
    );

    // HTTP/2 prior knowledge with `:scheme: https` over plain TCP.
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tcp),
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    let response = sender
        .send_request(
            Request::post("https://pay.example.com/pay")
                .header("x-forwarded-proto", "https")
                .body(empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(
        response
            .headers()
            .get("strict-transport-security")
            .is_none()
    );
    task.abort();
}

// control: holds — behind a trusted proxy (loopback here), a client's value left of the
// proxy's, a second header line, a second proto, an unclosed quote or disagreeing headers
// never read as https; the proxy's own https is honoured with HSTS.
#[tokio::test]
async fn require_https_forwarded_quirks_from_a_trusted_proxy() {
    let layer = RequireHttpsLayer::new()
        .hsts(tollgate::https::Hsts::new(Duration::from_secs(600)).unwrap())
        .trust_forwarded_proto(IpRanges::loopback());
    let (addr, task) = plain_server(layer).await;
    let refused = [
        "X-Forwarded-Proto: https, http",
        "X-Forwarded-Proto: https\r\nX-Forwarded-Proto: http",
        "X-Forwarded-Proto: https\r\nForwarded: proto=http",
        "X-Forwarded-Proto: http\r\nForwarded: proto=https",
        "Forwarded: proto=https, for=1.2.3.4",
        "Forwarded: proto=https;proto=http",
        "Forwarded: for=\"x, proto=https",
        "Forwarded: for=x;proto=\"https\\\"",
        "Forwarded: proto=https\r\nForwarded: for=5.6.7.8",
        "X-Forwarded-Proto: https ,",
        "X-Forwarded-Proto: \"https\"",
        "X-Forwarded-Proto: htt ps",
        "X-Forwarded-Proto:",
    ];
    for headers in refused {
        let response = raw(
            addr,
            &format!("GET /pay HTTP/1.1\r\nHost: a\r\n{headers}\r\nConnection: close\r\n\r\n"),
        )
        .await;
        assert_eq!(
            status_line(&response),
            "HTTP/1.1 403 Forbidden",
            "{headers}\n{response}"
        );
        assert!(
            header(&response, "strict-transport-security").is_empty(),
            "{headers}"
        );
    }
    for headers in [
        "X-Forwarded-Proto: http, https",
        "X-Forwarded-Proto: HTTPS",
        "Forwarded: proto=\"https\"",
        "Forwarded: for=1.2.3.4;proto=HTTPS",
    ] {
        let response = raw(
            addr,
            &format!("GET /pay HTTP/1.1\r\nHost: a\r\n{headers}\r\nConnection: close\r\n\r\n"),
        )
        .await;
        assert_eq!(
            status_line(&response),
            "HTTP/1.1 200 OK",
            "{headers}\n{response}"
        );
        assert_eq!(
            header(&response, "strict-transport-security"),
            ["max-age=600"]
        );
    }
    task.abort();
}

// ---------------------------------------------------------------------------------------
// Rejection-log sampler
// ---------------------------------------------------------------------------------------

// control: holds — a flood of one code does not hide the first event of another code at
// INFO, and the flooded code's next line carries the count held back.
#[test]
fn a_flood_of_one_code_does_not_hide_another() {
    use tollgate::core::Rejection;
    use tollgate::core::rejection::code;
    let logs = LogCapture::new();
    logs.during(|| {
        for _ in 0..10_000 {
            Rejection::from_code(code::JSON_INVALID).trace();
        }
        Rejection::from_code(code::TRANZILA_UNKNOWN_APP_KEY).trace();
    });
    let text = logs.text();
    let info = |code: &str| {
        text.lines()
            .filter(|line| line.contains(" INFO ") && line.contains(&format!("code={code}")))
            .count()
    };
    assert_eq!(
        info(code::JSON_INVALID),
        1,
        "{}",
        &text[..text.len().min(2000)]
    );
    assert_eq!(info(code::TRANZILA_UNKNOWN_APP_KEY), 1);
    assert_eq!(
        text.lines()
            .filter(|line| line.contains("DEBUG") && line.contains("code=json_invalid"))
            .count(),
        10_000
    );
}

// control: holds — a refused connection under the provider's layers is still the
// transport's failure: retried (nothing was sent), reported as `Connect`, not as a layer's
// refusal.
#[tokio::test]
async fn a_refused_connection_under_provider_layers_is_retried_and_typed() {
    let pki = TestPki::generate();
    let port = tollgate_test_support::free_port();
    let logs = LogCapture::new();
    let _guard = logs.install();
    let client = OneKeyClient::builder(&format!("https://localhost:{port}"), onekey_credentials())
        .configure(|c| {
            c.tls(tls(&pki)).retry(
                RetryPolicy::new(3).backoff(Duration::from_millis(1), Duration::from_millis(1)),
            )
        })
        .build()
        .unwrap();
    let error = client
        .oneshot(Request::post("/api/v3/cashout").body(json("{}")).unwrap())
        .await
        .unwrap_err();
    assert!(matches!(error, CallError::Connect(_)), "{error:?}");
    assert!(error.nothing_sent());
    let text = logs.text();
    let attempts: Vec<&str> = text
        .lines()
        .filter(|line| line.contains("tollgate::audit"))
        .collect();
    assert_eq!(attempts.len(), 3, "{text}");
    assert!(attempts[2].contains("attempt=3"), "{attempts:?}");
    assert!(!text.contains("ok_passphrase_attack6"));
}
