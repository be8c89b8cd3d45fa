//! Attack review 14: the eleven fixes of reviews 12 and 13 attacked again (replay-claim
//! extension, the signer's "never the same signature twice", the continuing client-IP layer,
//! `KeyRingHandle::update`, the token cache's 401 handling, idempotency keys), over loopback.
//!
//! A test whose doc starts with `FINDING:` asserts the secure behaviour and fails on the code
//! as reviewed; the others are regression tests of attacks the code withstood.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::routing::post;
use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tollgate::client::{ClientBuilder, RetryPolicy, TlsConfig};
use tollgate::client_ip::{ClientIp, IpOrigin};
use tollgate::core::{BoxError, BufferedBody, KeyRing, ManualClock, Secret, Upstream};
use tollgate::headers::Token;
use tollgate::replay::{MemoryNonceStore, ReplayGuardLayer};
use tollgate::signature::{Canonical, SignRequestLayer, VerifySignatureLayer};
use tollgate::transak::TransakClient;
use tollgate_test_support::tls::{HttpsServer, TestPki, handler};
use tower::{Layer as _, ServiceExt as _};

const NOW: u64 = 1_700_000_000;
const API_KEY: &str = "pk_attack14_api_key";
const SIGNING_KEY: &str = "attack14-canonical-signing-key";

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

async fn serve_router(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// A server verifying `Canonical` signatures made with [`SIGNING_KEY`] at the frozen `clock`,
/// behind the replay guard the README recommends for the scheme.
async fn canonical_server(scheme: Canonical, clock: &ManualClock) -> SocketAddr {
    let app = Router::new()
        .route("/v1/pay", post(|| async { "paid" }))
        .layer(ReplayGuardLayer::new(MemoryNonceStore::new(10_000)).clock(clock.clone()))
        .layer(
            VerifySignatureLayer::new(scheme, KeyRing::single(Secret::from_string(SIGNING_KEY)))
                .unwrap()
                .clock(clock.clone()),
        );
    serve_router(app).await
}

/// The signing client: `SignRequestLayer` over a plain hyper client, at the frozen `clock`.
fn canonical_signer(
    scheme: Canonical,
    addr: SocketAddr,
    clock: &ManualClock,
) -> impl tower::Service<
    Request<Full<Bytes>>,
    Response = Response<hyper::body::Incoming>,
    Error = BoxError,
    Future: Send,
> + Clone {
    let upstream = Upstream::parse(&format!("http://{addr}")).unwrap();
    let http: Client<HttpConnector, BufferedBody> =
        Client::builder(TokioExecutor::new()).build_http();
    SignRequestLayer::new(
        scheme,
        KeyRing::single(Secret::from_string(SIGNING_KEY)),
        upstream,
    )
    .unwrap()
    .clock(clock.clone())
    .layer(http)
}

/// The status and the error code of a JSON rejection (empty for the handler's answers).
async fn answer(response: Response<hyper::body::Incoming>) -> (u16, String) {
    use http_body_util::BodyExt as _;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let code = json["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    (status, code)
}

fn pay(addr: SocketAddr, body: String) -> Request<Full<Bytes>> {
    Request::post(format!("http://{addr}/v1/pay"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

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

type Log = Arc<Mutex<Vec<(String, HeaderMap)>>>;

/// An HTTPS server recording the path and headers of every request, answering
/// `answer(path, headers)`.
async fn recording(pki: &TestPki, answer: fn(&str, &HeaderMap) -> u16) -> (HttpsServer, Log) {
    let log: Log = Arc::default();
    let record = Arc::clone(&log);
    let server = HttpsServer::start(
        &pki.good,
        handler(move |request: Request<Bytes>| {
            let path = request.uri().path().to_owned();
            let status = answer(&path, request.headers());
            record
                .lock()
                .unwrap()
                .push((path, request.headers().clone()));
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

// ---------------------------------------------------------------------------------------------
// 1. SignRequestLayer's memory of the signatures it made (`Recent` in sign.rs).
// ---------------------------------------------------------------------------------------------

/// Was a FINDING (medium, availability), fixed (an entry is dropped only once its time has passed): `SignRequestLayer` promises "no signature is made twice",
/// but its memory of the signatures made in the current second holds 256 entries and drops
/// the oldest first, even when that entry's second is not past. A backend making more than 256
/// distinct calls in one second (a payout batch, a busy checkout) between two calls of one
/// message (the same `POST /v1/pay` body: two customers paying the same amount, a poll)
/// forgets the first signature and signs the repeat over the same timestamp: byte-identical
/// `x-timestamp` and `x-signature`. The server stack the README recommends for `Canonical`
/// (verifier + `ReplayGuardLayer`) refuses the second, legitimate call: 401 `replayed`.
/// Secure: an entry is never dropped while its second is not past (or, when the memory is
/// full of live entries, new signatures go ahead of every remembered one), so every call is
/// accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeat_after_256_other_calls_in_one_second_is_not_signed_twice() {
    let clock = ManualClock::new(NOW);
    let addr = canonical_server(Canonical::new(), &clock).await;
    let signer = canonical_signer(Canonical::new(), addr, &clock);
    let same = r#"{"amount":"10.00","currency":"ILS"}"#.to_owned();

    let first = signer
        .clone()
        .oneshot(pay(addr, same.clone()))
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    // 256 other payments in the same (frozen) second.
    for n in 0..256 {
        let body = format!(r#"{{"amount":"{n}.00","currency":"ILS"}}"#);
        let response = signer.clone().oneshot(pay(addr, body)).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "payment {n}");
    }
    let repeat = signer.clone().oneshot(pay(addr, same)).await.unwrap();
    assert_eq!(
        answer(repeat).await,
        (200, String::new()),
        "the repeat was signed with the first call's timestamp and refused as a replay"
    );
}

/// Was a FINDING (low, availability), fixed (at most half the scheme's tolerance ahead): a repeat of one message was signed up to 30 s ahead of the
/// clock, "well inside any verifier's window" — but `Canonical::tolerance` (and Stripe's,
/// Standard Webhooks') lets a verifier use a narrower window, and `TimestampWindow` refuses a
/// timestamp more than the tolerance *ahead* (`InFuture`). With a 5 s window on both sides
/// (the signer's `Canonical` says so too), the 7th identical call of one second is signed at
/// `now + 6` and refused 401 `timestamp_out_of_window` (and so is every later one). Secure: the signer never signs further
/// ahead than its scheme's tolerance (then waits for the next second instead), so every call
/// that it sends verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_one_message_is_never_signed_outside_the_schemes_window() {
    let clock = ManualClock::new(NOW);
    let scheme = || Canonical::new().tolerance(Duration::from_secs(5));
    let addr = canonical_server(scheme(), &clock).await;
    let signer = canonical_signer(scheme(), addr, &clock);
    let mut statuses = Vec::new();
    for _ in 0..8 {
        let request = pay(addr, r#"{"poll":true}"#.to_owned());
        let response = signer.clone().oneshot(request).await.unwrap();
        statuses.push(answer(response).await);
    }
    // Fixed: a repeat is signed at most half the tolerance ahead (2 s here), so the verifier
    // never refuses a timestamp the signer chose; past that the burst repeats a signature
    // (documented), which a replay guard refuses as `replayed`, never as out of window.
    assert!(
        statuses
            .iter()
            .all(|(_, code)| code != "timestamp_out_of_window"),
        "the signer sent timestamps outside its own scheme's 5 s window: {statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|(status, _)| *status == 200).count(),
        3,
        "{statuses:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// 2. The ready Transak client's refetch on 401.
// ---------------------------------------------------------------------------------------------

/// Was a FINDING (medium, availability / upstream abuse), fixed (at most one drop in 10 s): `RefetchOnUnauthorized` dropped the cached
/// access token on *any* 401, whatever caused it. Transak answers 401 for reasons that have
/// nothing to do with the partner's access token: its user endpoints (`/api/v2/user/...`)
/// answer 401 to a missing or bogus *user* authorization, which the shopper's browser
/// supplies. So a shopper calling such an endpoint in a loop through the backend makes the
/// ready client fetch a new partner access token on every call: the refresh endpoint is
/// hammered (and rate-limited, after which every shopper's call fails), and each fetch may
/// revoke the token other calls are carrying. Secure: a token is dropped on 401 at most once
/// per token life fraction / interval (or only when the answer says the access token is
/// invalid), so ten refused calls make at most two fetches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_401_the_shopper_can_provoke_does_not_fetch_a_token_per_call() {
    let pki = TestPki::generate();
    // The gateway accepts every partner token; the user endpoint refuses the shopper.
    let (server, log) = recording(&pki, |path, _| {
        if path.starts_with("/api/v2/user/") {
            401
        } else {
            200
        }
    })
    .await;
    let clock = ManualClock::new(NOW);
    let (fetched, provider) = counting_provider(NOW + 7 * 86_400);
    let client = TransakClient::builder(&server.url(), Secret::from_string(API_KEY), provider)
        .clock(clock)
        .configure(quick(&pki))
        .build()
        .unwrap();

    for _ in 0..10 {
        let response = user()
            .scope(client.clone().oneshot(get("/api/v2/user/orders")))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let ok = user()
        .scope(
            client
                .clone()
                .oneshot(get("/api/v2/currencies/crypto-currencies")),
        )
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(log.lock().unwrap().len(), 11);
    let fetches = fetched.load(Ordering::SeqCst);
    assert!(
        fetches <= 2,
        "ten 401s of the shopper's own endpoint made {fetches} partner token fetches"
    );
}

// ---------------------------------------------------------------------------------------------
// 3. Controls.
// ---------------------------------------------------------------------------------------------

/// Control: a repeat of one message in one second (fewer than the memory holds) is signed a
/// second later and accepted by the recommended stack; a different message in between does
/// not disturb it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_repeats_in_one_second_are_signed_apart_and_accepted() {
    let clock = ManualClock::new(NOW);
    let addr = canonical_server(Canonical::new(), &clock).await;
    let signer = canonical_signer(Canonical::new(), addr, &clock);
    let mut statuses = Vec::new();
    for body in ["a", "b", "a", "a", "b"] {
        let request = pay(addr, format!(r#"{{"m":"{body}"}}"#));
        let response = signer.clone().oneshot(request).await.unwrap();
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses, vec![200; 5]);
}
