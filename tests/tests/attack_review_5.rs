//! An attacker's review of 58d80b6 ("a failed handling releases a nonce only when the
//! signature covers the body") and 378f835 (`ResolveClientIpFuture` on core's `InboundFuture`).
//!
//! The rule under attack: after a failed handling (error, 5xx, 429) the replay guard releases
//! a claim only when the verified signature covers the body, so the retry can only be the same
//! message; header-based guards release only for a covering `VerifiedSignature` with the same
//! message id and timestamp; Tranzila nonces never release.
//!
//! A test marked `// FINDING` failed on the code as reviewed (it demonstrated the weakness)
//! and passes since its fix (time texts in one spelling; undelimited canonical claims kept);
//! a test marked `// control: holds` documents an attack that was tried and refused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::convert::Infallible;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use http::header::HeaderName;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Body;
use tollgate::client_ip::{ClientIp, ClientIpSource, PeerAddr, ResolveClientIpLayer};
use tollgate::core::{Key, KeyRing, ManualClock, Secret};
use tollgate::replay::{MemoryNonceStore, ReplayGuardLayer};
use tollgate::signature::{BodyHmac, Canonical, StandardWebhooks, Stripe, VerifySignatureLayer};
use tollgate::tranzila::{TranzilaCredentials, TranzilaVerifyLayer, access_token};
use tower::{Layer, Service, ServiceBuilder, ServiceExt, service_fn};

const NOW: u64 = 1_700_000_000;
const SECRET: &str = "whk_attack_review_5_secret";

/// A payment handler: records every (path, body) it ran; the first `fail_first` calls answer
/// 503 (an upstream hiccup: the sender will retry), the others 200.
#[derive(Clone)]
struct Handler {
    executed: Arc<std::sync::Mutex<Vec<(String, String)>>>,
    calls: Arc<AtomicUsize>,
    fail_first: usize,
}

impl Handler {
    fn failing_first(fail_first: usize) -> Self {
        Self {
            executed: Arc::default(),
            calls: Arc::default(),
            fail_first,
        }
    }

    fn service<B>(
        &self,
    ) -> impl Service<
        Request<B>,
        Response = Response<Full<Bytes>>,
        Error = Infallible,
        Future = impl Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send,
    > + Clone
    + Send
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: std::fmt::Debug,
    {
        let this = self.clone();
        service_fn(move |request: Request<B>| {
            let this = this.clone();
            async move {
                let path = request
                    .uri()
                    .path_and_query()
                    .map(|p| p.as_str().to_owned())
                    .unwrap_or_default();
                let body = request.into_body().collect().await.unwrap().to_bytes();
                let body = String::from_utf8(body.to_vec()).unwrap();
                this.executed.lock().unwrap().push((path, body));
                let n = this.calls.fetch_add(1, Ordering::SeqCst);
                let mut response = Response::new(Full::new(Bytes::new()));
                if n < this.fail_first {
                    *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
                }
                Ok::<_, Infallible>(response)
            }
        })
    }

    fn executed(&self) -> Vec<(String, String)> {
        self.executed.lock().unwrap().clone()
    }
}

fn ring() -> KeyRing {
    KeyRing::single(Secret::from_string(SECRET))
}

fn post(path: &str, headers: &[(&str, String)], body: &str) -> Request<Full<Bytes>> {
    let mut builder = Request::post(path);
    for (name, value) in headers {
        builder = builder.header(*name, value.as_str());
    }
    builder
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap()
}

async fn status<S>(service: &mut S, request: Request<Full<Bytes>>) -> StatusCode
where
    S: Service<Request<Full<Bytes>>, Error = Infallible>,
    S::Response: HasStatus,
{
    service
        .ready()
        .await
        .unwrap()
        .call(request)
        .await
        .unwrap()
        .status_code()
}

trait HasStatus {
    fn status_code(&self) -> StatusCode;
}

impl<B> HasStatus for Response<B> {
    fn status_code(&self) -> StatusCode {
        self.status()
    }
}

// ---------------------------------------------------------------------------------------
// 1. A scheme whose signed content does not bind the body: undelimited Canonical
// ---------------------------------------------------------------------------------------

fn canonical_stack(
    scheme: Canonical,
    handler: &Handler,
) -> impl Service<Request<Full<Bytes>>, Response = Response<impl Body>, Error = Infallible> + Clone
{
    let clock = ManualClock::new(NOW);
    let store = MemoryNonceStore::new(10_000).with_clock(clock.clone());
    ServiceBuilder::new()
        .layer(
            VerifySignatureLayer::new(scheme, ring())
                .unwrap()
                .clock(clock.clone()),
        )
        .layer(ReplayGuardLayer::new(store).clock(clock))
        .service(handler.service())
}

fn canonical_headers(scheme: &Canonical, path: &str, body: &str) -> Vec<(&'static str, String)> {
    let signature = scheme.compute(
        &Secret::from_string(SECRET),
        "POST",
        path,
        body.as_bytes(),
        NOW,
    );
    vec![("x-signature", signature), ("x-timestamp", NOW.to_string())]
}

// FINDING
/// FINDING: the default (undelimited) Canonical scheme signs `method ‖ path ‖ body ‖ timestamp`
/// and records that as its signed content, so `covers_content()` is true and a 503 releases the
/// claim. But the timestamp header is read with leading zeros allowed (`parse_unix_seconds`),
/// so trailing `0`s of the body move into the timestamp text: `amount=100` + `1700000000` and
/// `amount=1` + `001700000000` are the same signed bytes, the same timestamp, the same content
/// digest and so the same claim. After the sender's delivery failed with a 503, an attacker
/// who saw it gets `amount=1` executed, same method and path, same signature.
#[tokio::test]
async fn canonical_release_lets_a_retry_move_body_zeros_into_the_timestamp() {
    let scheme = Canonical::new();
    let handler = Handler::failing_first(1);
    let mut service = canonical_stack(scheme.clone(), &handler);
    let headers = canonical_headers(&scheme, "/pay", "amount=100");

    // The sender's delivery: its handling fails, the claim is released for the retry.
    let first = status(&mut service, post("/pay", &headers, "amount=100")).await;
    assert_eq!(first, StatusCode::SERVICE_UNAVAILABLE);

    // The attacker's "retry": the same signature, two zeros moved into the timestamp header.
    let forged = vec![headers[0].clone(), ("x-timestamp", format!("00{NOW}"))];
    let second = status(&mut service, post("/pay", &forged, "amount=1")).await;
    assert_ne!(
        second,
        StatusCode::OK,
        "a released claim let another body through: {:?}",
        handler.executed()
    );
}

// FINDING
/// FINDING (same root cause, the ambiguity the docs mention for path/body, now a replay): with
/// the claim released after a 503, the body's first bytes move into the path (or the path's
/// last bytes into the body) and the retry is accepted with another body. Before 58d80b6 the
/// digest-keyed claim at least made this one use only; the release hands out a second.
#[tokio::test]
async fn canonical_release_lets_a_retry_move_body_bytes_into_the_path() {
    let scheme = Canonical::new();
    let handler = Handler::failing_first(1);
    let mut service = canonical_stack(scheme.clone(), &handler);
    let headers = canonical_headers(&scheme, "/orders/", "42:refund=0");

    let first = status(&mut service, post("/orders/", &headers, "42:refund=0")).await;
    assert_eq!(first, StatusCode::SERVICE_UNAVAILABLE);

    // Same signature: `POST` `/orders/4` `2:refund=0` `1700000000` are the same bytes.
    let second = status(&mut service, post("/orders/4", &headers, "2:refund=0")).await;
    assert_ne!(
        second,
        StatusCode::OK,
        "a released claim let another body through: {:?}",
        handler.executed()
    );
}

// control: holds
/// control: holds — without a failed handling the same variants are refused as replayed (the
/// claim is the content digest, which the variants share): the release is what opens them.
#[tokio::test]
async fn canonical_variants_are_one_claim_when_nothing_is_released() {
    let scheme = Canonical::new();
    let handler = Handler::failing_first(0);
    let mut service = canonical_stack(scheme.clone(), &handler);
    let headers = canonical_headers(&scheme, "/pay", "amount=100");
    assert_eq!(
        status(&mut service, post("/pay", &headers, "amount=100")).await,
        StatusCode::OK
    );
    let forged = vec![headers[0].clone(), ("x-timestamp", format!("00{NOW}"))];
    // Refused: a zero-padded time is no timestamp at all (400) since the fix; 401 before.
    assert_eq!(
        status(&mut service, post("/pay", &forged, "amount=1")).await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(handler.executed().len(), 1);
}

// control: holds
/// control: holds — the delimited layout binds every field: after a release, neither variant
/// verifies; the true retry is accepted.
#[tokio::test]
async fn delimited_canonical_retry_can_only_be_the_same_message() {
    let scheme = Canonical::new().delimited();
    let handler = Handler::failing_first(1);
    let mut service = canonical_stack(scheme.clone(), &handler);
    let headers = canonical_headers(&scheme, "/pay", "amount=100");
    assert_eq!(
        status(&mut service, post("/pay", &headers, "amount=100")).await,
        StatusCode::SERVICE_UNAVAILABLE
    );
    let forged = vec![headers[0].clone(), ("x-timestamp", format!("00{NOW}"))];
    // Refused: a zero-padded time is no timestamp at all (400) since the fix; 401 before.
    assert_eq!(
        status(&mut service, post("/pay", &forged, "amount=1")).await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        status(&mut service, post("/pay/", &headers, "amount=100")).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        status(&mut service, post("/pay", &headers, "amount=100")).await,
        StatusCode::OK
    );
    assert_eq!(handler.executed().len(), 2);
}

// ---------------------------------------------------------------------------------------
// 2. Stripe lists, rotation, Standard Webhooks ids and header guards
// ---------------------------------------------------------------------------------------

// control: holds
/// control: holds — Stripe with a rotation (two keys, two `v1=`): after a release the retry
/// must carry the same `t.body`; a changed body or `t` with leading zeros does not verify.
#[tokio::test]
async fn stripe_rotation_retry_can_only_be_the_same_message() {
    let clock = ManualClock::new(NOW);
    let store = MemoryNonceStore::new(10_000).with_clock(clock.clone());
    let ring = KeyRing::new(Key::new("old", Secret::from_string("old-secret")))
        .rotate(Key::new("new", Secret::from_string(SECRET)));
    let handler = Handler::failing_first(1);
    let mut service = ServiceBuilder::new()
        .layer(
            VerifySignatureLayer::new(Stripe::new(), ring)
                .unwrap()
                .clock(clock.clone()),
        )
        .layer(ReplayGuardLayer::new(store).clock(clock))
        .service(handler.service());
    let stripe = Stripe::new();
    let old = stripe.compute(&Secret::from_string("old-secret"), NOW, b"amount=100");
    let new = stripe.compute(&Secret::from_string(SECRET), NOW, b"amount=100");
    let new_v1 = new.split_once(",v1=").unwrap().1;
    let both = format!("{old},v1={new_v1}");
    assert_eq!(
        status(
            &mut service,
            post("/", &[("stripe-signature", both.clone())], "amount=100")
        )
        .await,
        StatusCode::SERVICE_UNAVAILABLE
    );
    for (header, body, refused) in [
        (both.clone(), "amount=1", StatusCode::UNAUTHORIZED),
        // A zero-padded time is no timestamp at all since the fix (400).
        (
            both.replacen(&format!("t={NOW}"), &format!("t=00{NOW}"), 1),
            "amount=1",
            StatusCode::BAD_REQUEST,
        ),
        (
            both.replacen(&format!("t={NOW}"), &format!("t=00{NOW}"), 1),
            "amount=100",
            StatusCode::BAD_REQUEST,
        ),
    ] {
        assert_eq!(
            status(
                &mut service,
                post("/", &[("stripe-signature", header)], body)
            )
            .await,
            refused
        );
    }
    // The true retry, with only the old key's entry this time: one message, one claim.
    assert_eq!(
        status(
            &mut service,
            post("/", &[("stripe-signature", old)], "amount=100")
        )
        .await,
        StatusCode::OK
    );
    assert_eq!(
        status(
            &mut service,
            post("/", &[("stripe-signature", new)], "amount=100")
        )
        .await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(handler.executed().len(), 2);
}

fn webhook_headers(id: &str, body: &str) -> Vec<(&'static str, String)> {
    let signature =
        StandardWebhooks::new().compute(&Secret::from_string(SECRET), id, NOW, body.as_bytes());
    vec![
        ("webhook-id", id.to_owned()),
        ("webhook-timestamp", NOW.to_string()),
        ("webhook-signature", signature),
    ]
}

fn webhook_stack(
    guard: ReplayGuardLayer,
    handler: &Handler,
    clock: &ManualClock,
) -> impl Service<Request<Full<Bytes>>, Response = Response<impl Body>, Error = Infallible> + Clone
{
    ServiceBuilder::new()
        .layer(
            VerifySignatureLayer::new(StandardWebhooks::new(), ring())
                .unwrap()
                .clock(clock.clone()),
        )
        .layer(guard.clock(clock.clone()))
        .service(handler.service())
}

// control: holds
/// control: holds — `standard_webhooks` header guard inside the verifier: after a 503 the retry
/// with the same id and another body, a duplicated or other-case `webhook-id`, or the id with
/// the timestamp written with leading zeros, is refused; the true retry is accepted once.
#[tokio::test]
async fn standard_webhooks_header_guard_retry_is_the_same_message() {
    let clock = ManualClock::new(NOW);
    let store = MemoryNonceStore::new(10_000).with_clock(clock.clone());
    let handler = Handler::failing_first(1);
    let mut service = webhook_stack(ReplayGuardLayer::standard_webhooks(store), &handler, &clock);
    let headers = webhook_headers("msg_1", "amount=100");
    assert_eq!(
        status(&mut service, post("/", &headers, "amount=100")).await,
        StatusCode::SERVICE_UNAVAILABLE
    );
    // Another body under the same id.
    assert_eq!(
        status(&mut service, post("/", &headers, "amount=1")).await,
        StatusCode::UNAUTHORIZED
    );
    // Duplicated webhook-id (verifier's and guard's readings could disagree).
    let mut doubled = headers.clone();
    doubled.push(("webhook-id", "msg_2".to_owned()));
    assert_ne!(
        status(&mut service, post("/", &doubled, "amount=100")).await,
        StatusCode::OK
    );
    // Other case of the header name is the same header in HTTP: still the same message.
    let upper: Vec<(&str, String)> = vec![
        ("Webhook-Id", "msg_1".to_owned()),
        ("WEBHOOK-TIMESTAMP", NOW.to_string()),
        ("webhook-signature", headers[2].1.clone()),
    ];
    // Leading zeros in the timestamp change the signed bytes.
    let mut zeros = headers.clone();
    zeros[1].1 = format!("0{NOW}");
    assert_eq!(
        status(&mut service, post("/", &zeros, "amount=100")).await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        status(&mut service, post("/", &upper, "amount=100")).await,
        StatusCode::OK
    );
    assert_eq!(
        status(&mut service, post("/", &headers, "amount=100")).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        handler.executed(),
        vec![
            ("/".to_owned(), "amount=100".to_owned()),
            ("/".to_owned(), "amount=100".to_owned())
        ]
    );
}

// control: holds
/// control: holds — a header guard whose nonce header is not the id the verifier recorded
/// (`x-delivery` vs `webhook-id`), or whose timestamp header disagrees with the signed one,
/// never releases: the true retry of a failed delivery is refused (the claim stays).
#[tokio::test]
async fn header_guard_on_another_header_than_the_verified_id_never_releases() {
    let clock = ManualClock::new(NOW);
    let store = MemoryNonceStore::new(10_000).with_clock(clock.clone());
    let handler = Handler::failing_first(10);
    let guard = ReplayGuardLayer::headers(
        "deliveries",
        HeaderName::from_static("x-delivery-time"),
        HeaderName::from_static("x-delivery"),
        store,
    );
    let mut service = webhook_stack(guard, &handler, &clock);
    let mut headers = webhook_headers("msg_1", "amount=100");
    headers.push(("x-delivery", "delivery-7".to_owned()));
    headers.push(("x-delivery-time", NOW.to_string()));
    assert_eq!(
        status(&mut service, post("/", &headers, "amount=100")).await,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        status(&mut service, post("/", &headers, "amount=100")).await,
        StatusCode::UNAUTHORIZED
    );
    // Same id, but a timestamp header one second off the signed one: not released either.
    let mut off = webhook_headers("msg_2", "amount=100");
    off.push(("x-delivery", "msg_2".to_owned()));
    off.push(("x-delivery-time", (NOW + 1).to_string()));
    assert_eq!(
        status(&mut service, post("/", &off, "amount=100")).await,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        status(&mut service, post("/", &off, "amount=100")).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(handler.executed().len(), 2);
}

// control: holds
/// control: holds — a `ReplayGuardLayer::tranzila` header guard behind a body-covering verifier
/// without a message id (OneKey body HMAC): the Tranzila nonce is never released.
#[tokio::test]
async fn tranzila_header_guard_behind_a_body_verifier_keeps_the_nonce() {
    let clock = ManualClock::new(NOW);
    let store = MemoryNonceStore::new(10_000).with_clock(clock.clone());
    let handler = Handler::failing_first(10);
    let mut service = ServiceBuilder::new()
        .layer(
            VerifySignatureLayer::new(BodyHmac::onekey(), ring())
                .unwrap()
                .clock(clock.clone()),
        )
        .layer(ReplayGuardLayer::tranzila(store).clock(clock))
        .service(handler.service());
    let nonce: String = std::iter::repeat_n('a', 80).collect();
    let body = "amount=100";
    let headers = vec![
        (
            "payload-signature",
            BodyHmac::onekey().compute(&Secret::from_string(SECRET), body.as_bytes()),
        ),
        ("x-tranzila-api-app-key", "app".to_owned()),
        ("x-tranzila-api-request-time", NOW.to_string()),
        ("x-tranzila-api-nonce", nonce),
    ];
    assert_eq!(
        status(&mut service, post("/", &headers, body)).await,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        status(&mut service, post("/", &headers, body)).await,
        StatusCode::UNAUTHORIZED
    );
}

// control: holds
/// control: holds — `TranzilaVerifyLayer` inside a body-covering verifier: the outer
/// `VerifiedSignature` (covers the body) is replaced by Tranzila's own before its guard reads
/// it, so the nonce stays spent after a 503; same headers, same body, refused.
#[tokio::test]
async fn tranzila_nonce_stays_spent_under_a_covering_outer_signature() {
    let clock = ManualClock::new(NOW);
    let store = MemoryNonceStore::new(10_000).with_clock(clock.clone());
    let handler = Handler::failing_first(10);
    let tranzila =
        TranzilaVerifyLayer::new(TranzilaCredentials::new("app", "tz-secret").unwrap(), store)
            .unwrap()
            .clock(clock.clone());
    let mut service = ServiceBuilder::new()
        .layer(
            VerifySignatureLayer::new(BodyHmac::onekey(), ring())
                .unwrap()
                .clock(clock),
        )
        .layer(tranzila)
        .service(handler.service());
    let nonce: String = std::iter::repeat_n('b', 80).collect();
    let time = NOW.to_string();
    let body = "amount=100";
    let headers = vec![
        (
            "payload-signature",
            BodyHmac::onekey().compute(&Secret::from_string(SECRET), body.as_bytes()),
        ),
        ("x-tranzila-api-app-key", "app".to_owned()),
        ("x-tranzila-api-request-time", time.clone()),
        ("x-tranzila-api-nonce", nonce.clone()),
        (
            "x-tranzila-api-access-token",
            access_token("app", &Secret::from_string("tz-secret"), &time, &nonce),
        ),
    ];
    assert_eq!(
        status(&mut service, post("/", &headers, body)).await,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        status(&mut service, post("/", &headers, body)).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(handler.executed().len(), 1);
}

// control: holds
/// control: holds — a `VerifiedSignature` a client cannot send: an outer layer of the app's
/// own that inserts one (say a cached verification) is trusted, but a header guard still
/// requires its id and timestamp to equal the headers it claims: a mismatching one does not
/// release.
#[tokio::test]
async fn a_foreign_verified_signature_must_match_the_claimed_headers() {
    use tollgate::core::VerifiedSignature;
    let clock = ManualClock::new(NOW);
    let store = MemoryNonceStore::new(10_000).with_clock(clock.clone());
    let handler = Handler::failing_first(10);
    let inner = handler.service();
    let mut service = ServiceBuilder::new()
        .map_request(|mut request: Request<Full<Bytes>>| {
            request.extensions_mut().insert(
                VerifiedSignature::from_slice("x", "k".into(), &[1; 32])
                    .with_timestamp(NOW)
                    .with_message_id(Bytes::from_static(b"other"))
                    .with_signed_content(Bytes::new(), Bytes::new(), Bytes::new()),
            );
            request
        })
        .layer(ReplayGuardLayer::standard_webhooks(store).clock(clock))
        .service(inner);
    let headers = vec![
        ("webhook-id", "msg_1".to_owned()),
        ("webhook-timestamp", NOW.to_string()),
    ];
    assert_eq!(
        status(&mut service, post("/", &headers, "x")).await,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        status(&mut service, post("/", &headers, "y")).await,
        StatusCode::UNAUTHORIZED
    );
}

// ---------------------------------------------------------------------------------------
// 3. Races: a release against a concurrent duplicate
// ---------------------------------------------------------------------------------------

// control: holds
/// control: holds — while the failing handling runs, a duplicate is refused; after the release,
/// of many concurrent retries exactly one runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_release_races_concurrent_duplicates_and_one_retry_wins() {
    let clock = ManualClock::new(NOW);
    let store = MemoryNonceStore::new(10_000).with_clock(clock.clone());
    let gate = Arc::new(tokio::sync::Notify::new());
    let calls = Arc::new(AtomicUsize::new(0));
    let inner = {
        let gate = Arc::clone(&gate);
        let calls = Arc::clone(&calls);
        service_fn(move |_request: Request<tollgate::core::BufferedBody>| {
            let gate = Arc::clone(&gate);
            let calls = Arc::clone(&calls);
            async move {
                let n = calls.fetch_add(1, Ordering::SeqCst);
                let mut response = Response::new(Full::new(Bytes::new()));
                if n == 0 {
                    gate.notified().await;
                    *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
                }
                Ok::<_, Infallible>(response)
            }
        })
    };
    let service = ServiceBuilder::new()
        .layer(
            VerifySignatureLayer::new(StandardWebhooks::new(), ring())
                .unwrap()
                .clock(clock.clone()),
        )
        .layer(ReplayGuardLayer::new(store).clock(clock))
        .service(inner);
    let headers = webhook_headers("msg_race", "amount=100");
    let first = tokio::spawn(service.clone().oneshot(post("/", &headers, "amount=100")));
    while calls.load(Ordering::SeqCst) == 0 {
        tokio::task::yield_now().await;
    }
    let duplicate = service
        .clone()
        .oneshot(post("/", &headers, "amount=100"))
        .await
        .unwrap();
    assert_eq!(duplicate.status(), StatusCode::UNAUTHORIZED);
    gate.notify_one();
    assert_eq!(
        first.await.unwrap().unwrap().status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    let mut retries = Vec::new();
    for _ in 0..16 {
        retries.push(tokio::spawn(service.clone().oneshot(post(
            "/",
            &headers,
            "amount=100",
        ))));
    }
    let mut ok = 0;
    for retry in retries {
        if retry.await.unwrap().unwrap().status() == StatusCode::OK {
            ok += 1;
        }
    }
    assert_eq!(ok, 1);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

// ---------------------------------------------------------------------------------------
// 4. ResolveClientIpFuture on core's InboundFuture
// ---------------------------------------------------------------------------------------

fn peer_request() -> Request<()> {
    let mut request = Request::new(());
    request
        .extensions_mut()
        .insert(PeerAddr::new("192.0.2.1:4000".parse().unwrap()));
    request
}

// control: holds
/// control: holds — scoped (task-local on), plain (task-local off) and rejected paths answer
/// once; every later poll is `Pending`, never a second answer or tokio's "polled after
/// completion" panic; the handler sees the scope only when it is on.
#[test]
fn resolve_client_ip_future_answers_once_on_every_path() {
    let mut cx = Context::from_waker(Waker::noop());
    for task_local in [true, false] {
        let mut service = ResolveClientIpLayer::new(ClientIpSource::remote_addr())
            .task_local(task_local)
            .layer(service_fn(move |_request: Request<()>| async move {
                let seen = ClientIp::current().is_some();
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(seen.to_string()))))
            }));
        let mut future = pin!(service.call(peer_request()));
        let Poll::Ready(Ok(response)) = future.as_mut().poll(&mut cx) else {
            panic!("the inner future is ready at once");
        };
        let mut body = pin!(response.into_body());
        let Poll::Ready(Some(Ok(frame))) = Body::poll_frame(body.as_mut(), &mut cx) else {
            panic!("body");
        };
        assert_eq!(
            frame.into_data().unwrap(),
            Bytes::from(task_local.to_string())
        );
        for _ in 0..3 {
            assert!(future.as_mut().poll(&mut cx).is_pending());
        }
        assert!(format!("{future:?}").contains("done"));
    }
    // Rejected: no peer address.
    let mut service = ResolveClientIpLayer::new(ClientIpSource::remote_addr()).layer(service_fn(
        |_request: Request<()>| async {
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
        },
    ));
    let mut future = pin!(service.call(Request::new(())));
    assert!(matches!(future.as_mut().poll(&mut cx), Poll::Ready(Ok(_))));
    assert!(future.as_mut().poll(&mut cx).is_pending());
}

// control: holds
/// control: holds — a scoped inner future that is pending and then woken runs inside the
/// scope on every poll, and the scope does not leak to the caller between polls.
#[tokio::test]
async fn resolve_client_ip_scope_holds_across_polls_and_does_not_leak() {
    let mut service = ResolveClientIpLayer::new(ClientIpSource::remote_addr()).layer(service_fn(
        |_request: Request<()>| async {
            let before = ClientIp::current().is_some();
            tokio::task::yield_now().await;
            let after = ClientIp::current().is_some();
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(format!(
                "{before}{after}"
            )))))
        },
    ));
    let mut future = pin!(service.call(peer_request()));
    let mut cx = Context::from_waker(Waker::noop());
    assert!(future.as_mut().poll(&mut cx).is_pending());
    assert!(ClientIp::current().is_none());
    let response = future.await.unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "truetrue");
}
