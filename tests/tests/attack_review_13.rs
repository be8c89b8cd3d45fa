//! Attack review 13: the outbound compositions as a user builds them from the README ("Calling
//! a provider", "Using reqwest", "Rotating keys"): the ready clients (`TransakClient`,
//! `TranzilaClient`, `OneKeyClient`, `HmacClient`), their reqwest builds, and the token,
//! secret-header and hygiene layers inside them, over real TLS on loopback.
//!
//! A test whose doc starts with `FINDING:` asserts the secure behaviour and fails on the code
//! as reviewed; the others are regression tests of attacks the code withstood.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::Full;
use tollgate::client::{CallError, ClientBuilder, RetryPolicy, TlsConfig};
use tollgate::client_ip::{ClientIp, IpOrigin};
use tollgate::core::{BoxError, ManualClock, Secret};
use tollgate::headers::{HeaderError, Token};
use tollgate::transak::TransakClient;
use tollgate_test_support::tls::{HttpsServer, TestPki, handler};
use tower::ServiceExt as _;

const NOW: u64 = 1_700_000_000;
const API_KEY: &str = "pk_attack13_api_key";

fn tls(pki: &TestPki) -> TlsConfig {
    TlsConfig::new()
        .roots_only()
        .add_root_pem(pki.ca_pem.as_bytes())
        .unwrap()
}

/// Quick settings for tests: the test CA, three attempts, millisecond backoff.
fn quick(pki: &TestPki) -> impl FnOnce(ClientBuilder) -> ClientBuilder {
    let tls = tls(pki);
    move |client| {
        client
            .tls(tls)
            .retry(RetryPolicy::new(3).backoff(Duration::from_millis(1), Duration::from_millis(5)))
    }
}

type Log = Arc<Mutex<Vec<HeaderMap>>>;

/// An HTTPS server recording the headers of every request, answering `answer(headers)`.
async fn recording(pki: &TestPki, answer: fn(&HeaderMap) -> u16) -> (HttpsServer, Log) {
    let log: Log = Arc::default();
    let record = Arc::clone(&log);
    let server = HttpsServer::start(
        &pki.good,
        handler(move |request: Request<Bytes>| {
            let status = answer(request.headers());
            record.lock().unwrap().push(request.headers().clone());
            async move {
                Response::builder()
                    .status(status)
                    .body(Bytes::from_static(b"{}"))
                    .unwrap()
            }
        }),
    )
    .await;
    (server, log)
}

fn user() -> ClientIp {
    ClientIp::new(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7)), IpOrigin::Peer)
}

fn get(path: &str) -> Request<Full<Bytes>> {
    Request::get(path).body(Full::default()).unwrap()
}

/// A token provider answering `token-1`, `token-2`, ... each expiring at `expires_at`,
/// counting its fetches.
fn counting_provider(
    expires_at: u64,
) -> (
    Arc<AtomicUsize>,
    impl Fn() -> std::future::Ready<Result<Token, BoxError>> + Send + Sync + 'static,
) {
    let fetched = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&fetched);
    let provider = move || {
        let n = count.fetch_add(1, Ordering::SeqCst) + 1;
        std::future::ready(Ok::<_, BoxError>(
            Token::new(Secret::from_string(format!("token-{n}"))).expires_at(expires_at),
        ))
    };
    (fetched, provider)
}

fn access_tokens(log: &Log) -> Vec<String> {
    log.lock()
        .unwrap()
        .iter()
        .map(|headers| {
            headers
                .get("access-token")
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default()
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// 1. Token refresh inside the ready Transak client.
// ---------------------------------------------------------------------------------------------

/// Was a FINDING, fixed (`TokenFetchError::Expired`): the docs of `TokenHeaderLayer` say "a token is used while
/// `now + refresh_margin < expires_at`", yet a token the provider answers *already expired*
/// (`expiresAt` in the past: a clock or unit mix-up in the refresh call, a cached answer
/// replayed by a proxy, a provider bug) is sent to Transak on every call that waited for the
/// fetch: `Outcome::into_result` hands the fetched value out without looking at its expiry.
/// Secure: a token that is stale when it arrives fails the call (`TokenUnavailable`), nothing
/// is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transak_client_never_sends_a_token_that_arrives_expired() {
    let pki = TestPki::generate();
    let (server, log) = recording(&pki, |_| 200).await;
    let clock = ManualClock::new(NOW);
    let (fetched, provider) = counting_provider(NOW - 3_600);
    let client = TransakClient::builder(&server.url(), Secret::from_string(API_KEY), provider)
        .clock(clock)
        .configure(quick(&pki))
        .build()
        .unwrap();

    let result = user().scope(client.oneshot(get("/api/v2/orders"))).await;
    assert_eq!(fetched.load(Ordering::SeqCst), 1);
    assert_eq!(
        access_tokens(&log),
        Vec::<String>::new(),
        "a token that expired an hour ago was sent; the call answered {:?}",
        result.as_ref().map(Response::status)
    );
    let error = result.unwrap_err();
    let refused = match &error {
        CallError::Refused(source) => source.downcast_ref::<HeaderError>(),
        _ => None,
    };
    assert!(
        matches!(refused, Some(HeaderError::TokenUnavailable { .. })),
        "{error:?}"
    );
}

/// Was a FINDING (refresh storm), fixed (refreshed from half its life): a token whose whole lifetime is shorter than the refresh margin
/// (60 s by default; here a provider issuing 30-second tokens, as some OAuth servers do) is
/// stale the moment it is cached, so *every* call fetches a new one: ten calls in the same
/// second hit the token endpoint ten times (which commonly rate-limits, failing every call).
/// Secure: a token freshly fetched serves the calls of at least some fraction of its life
/// (e.g. the margin capped at half the lifetime), so calls in the same second share one fetch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_lived_token_is_not_fetched_again_for_every_call() {
    let pki = TestPki::generate();
    let (server, log) = recording(&pki, |_| 200).await;
    let clock = ManualClock::new(NOW);
    let (fetched, provider) = counting_provider(NOW + 30);
    let client = TransakClient::builder(&server.url(), Secret::from_string(API_KEY), provider)
        .clock(clock)
        .configure(quick(&pki))
        .build()
        .unwrap();

    for _ in 0..10 {
        let response = user()
            .scope(client.clone().oneshot(get("/api/v2/orders")))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    assert_eq!(access_tokens(&log).len(), 10);
    assert!(
        fetched.load(Ordering::SeqCst) <= 2,
        "ten calls within one second of a 30-second token fetched it {} times: {:?}",
        fetched.load(Ordering::SeqCst),
        access_tokens(&log)
    );
}

/// Transak after the partner secret was regenerated: 401 to the revoked `token-1`, 200 to
/// any later token.
fn refuses_token_1(headers: &HeaderMap) -> u16 {
    if headers.get("access-token").is_some_and(|t| t == "token-1") {
        401
    } else {
        200
    }
}

/// Was a FINDING, fixed (the ready Transak client drops a token answered 401): `TokenHeaderLayer` says "call `invalidate` after the provider answers 401 to force
/// a refresh", but `TransakClient` builds its `TokenHeaderLayer` privately and exposes no way
/// to reach it, and nothing in the ready client reacts to a 401. After "Rotating keys" (the
/// partner secret regenerated because it leaked, which revokes the access tokens issued under
/// it) Transak answers 401 to the cached token, and the ready client keeps sending that
/// revoked token on every call until its `expiresAt` (Transak: 7 days), short of rebuilding
/// the client. Secure: a 401 from the upstream drops the cached token (or the builder hands
/// out the layer's `invalidate`), so the next call carries a fresh one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transak_client_drops_a_token_the_provider_refused() {
    let pki = TestPki::generate();
    let (server, log) = recording(&pki, refuses_token_1).await;
    let clock = ManualClock::new(NOW);
    let (fetched, provider) = counting_provider(NOW + 7 * 86_400);
    let client = TransakClient::builder(&server.url(), Secret::from_string(API_KEY), provider)
        .clock(clock)
        .configure(quick(&pki))
        .build()
        .unwrap();

    let first = user()
        .scope(client.clone().oneshot(get("/api/v2/orders")))
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::UNAUTHORIZED);
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let response = user()
            .scope(client.clone().oneshot(get("/api/v2/orders")))
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
    }
    assert_eq!(
        statuses,
        vec![200, 200, 200],
        "after Transak refused token-1 the client kept sending it: {:?} (fetches: {})",
        access_tokens(&log),
        fetched.load(Ordering::SeqCst)
    );
}

/// The same through `build_reqwest()`: the tower layers run before the request is sent there,
/// so the 401 is read by a middleware closest to the network (found by the docs review: the
/// reqwest path kept sending the revoked token).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transak_reqwest_client_drops_a_token_the_provider_refused() {
    let pki = TestPki::generate();
    let (server, log) = recording(&pki, refuses_token_1).await;
    let (fetched, provider) = counting_provider(NOW + 7 * 86_400);
    let client = TransakClient::builder(&server.url(), Secret::from_string(API_KEY), provider)
        .clock(ManualClock::new(NOW))
        .configure(quick(&pki))
        .build_reqwest()
        .unwrap();
    let url = format!("{}/api/v2/orders", server.url());
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let response = user().scope(client.get(&url).send()).await.unwrap();
        statuses.push(response.status().as_u16());
    }
    assert_eq!(
        statuses,
        vec![401, 200, 200, 200],
        "tokens sent: {:?} (fetches: {})",
        access_tokens(&log),
        fetched.load(Ordering::SeqCst)
    );
}

// ---------------------------------------------------------------------------------------------
// 2. Header hygiene: the end user's IP as the provider may read it.
// ---------------------------------------------------------------------------------------------

/// Was a FINDING (low), fixed (four more names stripped): `HeaderHygieneLayer::server_to_server` strips `x-user-ip`, `forwarded`,
/// `x-forwarded-*`, `x-real-ip`, `true-client-ip`, `cf-connecting-ip` and
/// `fastly-client-ip`, but not the other client-IP headers that common server stacks read
/// (`x-client-ip` and `x-cluster-client-ip`, read first by Node's `request-ip` and by several
/// WAFs and load balancers; `x-original-forwarded-for`, which the `x-forwarded-` prefix does
/// not cover). A backend that copies the browser's headers into its Transak call (what
/// hygiene exists for) lets the browser claim any IP next to the genuine `x-user-ip`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_client_ip_header_from_the_browser_reaches_the_provider() {
    let pki = TestPki::generate();
    let (server, log) = recording(&pki, |_| 200).await;
    let (_, provider) = counting_provider(u64::MAX);
    let client = TransakClient::builder(&server.url(), Secret::from_string(API_KEY), provider)
        .configure(quick(&pki))
        .build()
        .unwrap();
    let spoofed = [
        "x-client-ip",
        "x-cluster-client-ip",
        "x-original-forwarded-for",
        "client-ip",
        // Controls: stripped today.
        "x-real-ip",
        "true-client-ip",
        "x-forwarded-for",
    ];
    let mut request = get("/api/v2/orders");
    for name in spoofed {
        request
            .headers_mut()
            .insert(name, http::HeaderValue::from_static("198.51.100.66"));
    }
    let response = user().scope(client.oneshot(request)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let sent = log.lock().unwrap()[0].clone();
    assert_eq!(sent["x-user-ip"], "203.0.113.7");
    let leaked: Vec<&str> = spoofed
        .into_iter()
        .filter(|name| sent.contains_key(*name))
        .collect();
    assert!(
        leaked.is_empty(),
        "the browser's client-IP claims reached Transak: {leaked:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// 3. Retries of a POST: what counts as "carrying the idempotency key".
// ---------------------------------------------------------------------------------------------

/// Was a FINDING (low), fixed (one non-blank value counts): `RetryPolicy::may_resend` asked only whether the idempotency-key header is
/// *present*: an empty value (`Idempotency-Key: `, what `format!("{}", key_opt.unwrap_or_default())`
/// or a missing form field produces) counts as a key, so a Tranzila POST answered 503 is sent
/// three times. A provider reads an empty key as no key at all (or rejects it), so the
/// charge may be made three times. Secure: an empty (or whitespace-only) key is no key, and
/// the POST is sent once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_with_an_empty_idempotency_key_is_sent_once() {
    let pki = TestPki::generate();
    let (server, log) = recording(&pki, |_| 503).await;
    let credentials =
        tollgate::tranzila::TranzilaCredentials::new("attack13-app", "attack13-tz-secret").unwrap();
    let tls = tls(&pki);
    let client = tollgate::tranzila::TranzilaClient::builder(credentials)
        .base_url(&server.url())
        .configure(|client| {
            client.tls(tls).retry(
                RetryPolicy::new(3)
                    .backoff(Duration::from_millis(1), Duration::from_millis(5))
                    .idempotency_key(http::HeaderName::from_static("idempotency-key")),
            )
        })
        .build()
        .unwrap();
    let request = Request::post("/v1/transactions")
        .header("content-type", "application/json")
        .header("idempotency-key", "")
        .body(Full::new(Bytes::from_static(br#"{"amount":100}"#)))
        .unwrap();
    let response = client.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let sent = log.lock().unwrap().len();
    assert_eq!(
        sent, 1,
        "a POST whose idempotency key is empty was sent {sent} times"
    );
}

// ---------------------------------------------------------------------------------------------
// 4. HmacClient against the README's own verifier: two calls, one signature.
// ---------------------------------------------------------------------------------------------

/// Was a FINDING (low, availability), fixed (the signer never makes one signature twice): `HmacClient` makes a *retry* wait for the next second so its
/// signature differs from the attempt before it, but two separate calls with the same method,
/// path and body in the same second (polling `GET /v1/balance`, two customers paying the
/// same amount) carry byte-identical `x-timestamp` and `x-signature`. The server stack the
/// README recommends for this scheme (`VerifySignatureLayer(Canonical::new())` +
/// `ReplayGuardLayer`, whose undelimited canonical claims are never released) refuses the
/// second, legitimate call as `replayed`. Secure: each call of the client is signed over a
/// timestamp no earlier call of that client used for the same message (wait for the next
/// second, as retries do), so both calls are accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_identical_hmac_calls_in_one_second_are_both_accepted() {
    use axum::Router;
    use axum::routing::get as route_get;
    use tollgate::core::KeyRing;
    use tollgate::hmac::HmacClient;
    use tollgate::replay::{MemoryNonceStore, ReplayGuardLayer};
    use tollgate::signature::{Canonical, VerifySignatureLayer};
    use tollgate_test_support::tls::serve_recording;

    let pki = TestPki::generate();
    let secret = || Secret::from_string("attack13-hmac-signing-key");
    let app = Router::new()
        .route("/v1/balance", route_get(|| async { "balance" }))
        .layer(ReplayGuardLayer::new(MemoryNonceStore::new(1000)))
        .layer(VerifySignatureLayer::new(Canonical::new(), KeyRing::single(secret())).unwrap());
    let (server, seen) = serve_recording::<_, axum::body::Body, _>(&pki.good, app).await;
    let client = HmacClient::builder("payments", &server.url(), KeyRing::single(secret()))
        .configure(quick(&pki))
        .build()
        .unwrap();

    // Start just after a whole second, so both calls fall in the same one.
    tokio::time::sleep(tollgate::client::until_next_tick(Duration::from_secs(1))).await;
    let mut statuses = Vec::new();
    for _ in 0..2 {
        let response = client.clone().oneshot(get("/v1/balance")).await.unwrap();
        statuses.push(response.status().as_u16());
    }
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        statuses,
        vec![200, 200],
        "the second identical call was refused; timestamps {:?} / {:?}",
        seen[0].0.get("x-timestamp"),
        seen[1].0.get("x-timestamp")
    );
}
