//! Security invariants of the replay seams, through the stacks the docs recommend:
//! `VerifySignatureLayer` (every scheme) followed by `ReplayGuardLayer`, with a `ManualClock`,
//! the memory store and a real Redis.
//!
//! The statements tested here are the ones in tollgate-replay's "Security considerations":
//!
//! 1. a message is claimed, not a key: whatever the attacker does with the signature list
//!    (strip, reorder, duplicate entries), a message signed under two keys is accepted once;
//! 2. timestamped schemes: a signed request is never accepted twice, however far the clock
//!    moves;
//! 3. body-only schemes: the same signed body is refused for the retention the user stated
//!    (never on an unsigned timestamp), and accepted again after it;
//! 4. a handling that failed (5xx, 429 or an error) can be retried by its sender; a concurrent
//!    duplicate of a request still being handled is refused and never runs twice.
//!
//! The model-based property test drives random sequences of deliveries, sender retries,
//! attacker replays with edited signature lists, rotations and clock moves, and checks every
//! status against a reference model.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, Method, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use proptest::prelude::*;
use tollgate::core::{BufferedBody, Clock, Key, KeyRing, ManualClock, Secret};
use tollgate::replay::{MemoryNonceStore, NonceStore, RedisNonceStore, ReplayGuardLayer};
use tollgate::signature::{
    BodyHmac, Canonical, RequestParts, Scheme, StandardWebhooks, Stripe, VerifySignatureLayer,
};
use tollgate_test_support::RedisServer;
use tower::util::BoxCloneService;
use tower::{ServiceBuilder, ServiceExt, service_fn};

const NOW: u64 = 1_700_000_000;
const RETENTION: u64 = 7 * 24 * 3600;

/// A stack's answer: its status and, for a refusal, the stable error code of its JSON body
/// (empty for the handler's own answers).
type Svc = BoxCloneService<Request<Full<Bytes>>, (StatusCode, String), Infallible>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Stripe,
    StandardWebhooks,
    Canonical,
    OneKey,
}

impl Kind {
    const ALL: [Kind; 4] = [
        Kind::Stripe,
        Kind::StandardWebhooks,
        Kind::Canonical,
        Kind::OneKey,
    ];

    fn timestamped(self) -> bool {
        self != Kind::OneKey
    }

    /// Whether a failed handling frees the claim: the signature must tell the body apart
    /// (the undelimited canonical layout does not, so its claims are kept).
    fn releases_on_failure(self) -> bool {
        self != Kind::Canonical
    }

    fn secret(self, key: usize) -> Secret {
        match self {
            Kind::StandardWebhooks => {
                Secret::from_bytes(vec![b'A' + u8::try_from(key).unwrap(); 24])
            }
            _ => Secret::from_string(format!("secret-{key}")),
        }
    }

    fn ring(self, keys: &[usize]) -> KeyRing {
        let mut ring: Option<KeyRing> = None;
        for &k in keys {
            let key = Key::new(format!("k{k}"), self.secret(k));
            ring = Some(match ring {
                None => KeyRing::new(key),
                Some(ring) => ring.rotate(key),
            });
        }
        ring.unwrap()
    }

    fn guard(self, clock: &ManualClock, store: impl NonceStore) -> ReplayGuardLayer {
        let guard = match self {
            Kind::OneKey => {
                ReplayGuardLayer::new(store).untimed_retention(Duration::from_secs(RETENTION))
            }
            Kind::StandardWebhooks => {
                ReplayGuardLayer::standard_webhooks(store).namespace("sender-a")
            }
            _ => ReplayGuardLayer::new(store),
        };
        guard.clock(clock.clone())
    }

    fn verifier(self, keys: &[usize], clock: &ManualClock) -> VerifySignatureLayer {
        let ring = self.ring(keys);
        let layer = match self {
            Kind::Stripe => VerifySignatureLayer::new(Stripe::new(), ring).unwrap(),
            Kind::StandardWebhooks => {
                VerifySignatureLayer::new(StandardWebhooks::new(), ring).unwrap()
            }
            Kind::Canonical => VerifySignatureLayer::new(Canonical::new(), ring).unwrap(),
            Kind::OneKey => VerifySignatureLayer::new(BodyHmac::onekey(), ring).unwrap(),
        };
        layer.clock(clock.clone())
    }
}

/// What the handler does with each request, and how often it ran to success per body.
#[derive(Clone, Default)]
struct Handler {
    /// Bodies whose next handling fails with this status.
    fail_next: Arc<Mutex<HashMap<Bytes, StatusCode>>>,
    handled: Arc<Mutex<HashMap<Bytes, usize>>>,
    runs: Arc<AtomicUsize>,
}

impl Handler {
    fn fail_next(&self, body: &Bytes, status: StatusCode) {
        self.fail_next.lock().unwrap().insert(body.clone(), status);
    }

    fn handled(&self, body: &[u8]) -> usize {
        self.handled.lock().unwrap().get(body).copied().unwrap_or(0)
    }
}

/// Verifier (the scheme, the ring of `keys`) → replay guard (the scheme's documented preset)
/// → handler, claiming in `store`.
fn stack(
    kind: Kind,
    keys: &[usize],
    clock: &ManualClock,
    store: Arc<dyn NonceStore>,
    handler: Handler,
) -> Svc {
    let service = ServiceBuilder::new()
        .layer(kind.verifier(keys, clock))
        .layer(kind.guard(clock, store))
        .service(service_fn(move |request: Request<BufferedBody>| {
            let handler = handler.clone();
            async move {
                handler.runs.fetch_add(1, Ordering::SeqCst);
                let body = request.into_body().collect().await.unwrap().to_bytes();
                let fail = handler.fail_next.lock().unwrap().remove(&body);
                let mut response = Response::new(Full::new(Bytes::new()));
                match fail {
                    Some(status) => *response.status_mut() = status,
                    None => *handler.handled.lock().unwrap().entry(body).or_default() += 1,
                }
                Ok::<_, Infallible>(response)
            }
        }));
    // Only statuses matter here: the bodies are the exact rejections other tests check.
    BoxCloneService::new(ServiceExt::<Request<Full<Bytes>>>::and_then(
        service,
        |response| async move { Ok(read(response).await) },
    ))
}

/// A signed request as it travelled on the wire: its headers and body, replayable as is or
/// with its unsigned parts edited.
#[derive(Clone, Debug)]
struct Captured {
    headers: Vec<(HeaderName, String)>,
    body: Bytes,
    /// The signature entries, one per key, for the list schemes (Stripe, Standard Webhooks).
    entries: Vec<String>,
    ts: u64,
}

const PATH: &str = "/webhooks";

/// The sender signs `body` at `ts` with every key in `keys`, as the scheme's senders do
/// (Stripe and Standard Webhooks put one entry per key in one header).
fn sign(kind: Kind, keys: &[usize], ts: u64, id: &str, body: &[u8]) -> Captured {
    let body = Bytes::copy_from_slice(body);
    let mut headers = Vec::new();
    let mut entries = Vec::new();
    match kind {
        Kind::Stripe => {
            for &k in keys {
                let value = Stripe::new().compute(&kind.secret(k), ts, &body);
                entries.push(value.split_once(",v1=").unwrap().1.to_owned());
            }
        }
        Kind::StandardWebhooks => {
            headers.push((HeaderName::from_static("webhook-id"), id.to_owned()));
            headers.push((HeaderName::from_static("webhook-timestamp"), ts.to_string()));
            for &k in keys {
                entries.push(StandardWebhooks::new().compute(&kind.secret(k), id, ts, &body));
            }
        }
        Kind::Canonical => {
            let (method, uri, empty) = (Method::POST, Uri::from_static(PATH), HeaderMap::new());
            let parts = RequestParts::new(&method, &uri, &empty, &body);
            let signed = Canonical::new()
                .sign(&kind.secret(keys[0]), &parts, ts)
                .unwrap();
            for (name, value) in signed {
                headers.push((name, value.to_str().unwrap().to_owned()));
            }
        }
        Kind::OneKey => {
            headers.push((
                HeaderName::from_static("payload-signature"),
                BodyHmac::onekey().compute(&kind.secret(keys[0]), &body),
            ));
        }
    }
    Captured {
        headers,
        body,
        entries,
        ts,
    }
}

impl Captured {
    /// The request with signature entries `pick` (indexes into `entries`, in that order,
    /// repeats allowed) and an unsigned `x-timestamp` of `fresh` when given.
    fn request(
        &self,
        kind: Kind,
        pick: Option<&[usize]>,
        fresh: Option<u64>,
    ) -> Request<Full<Bytes>> {
        let all: Vec<usize> = (0..self.entries.len()).collect();
        let pick = pick.unwrap_or(&all);
        let mut builder = Request::post(PATH);
        for (name, value) in &self.headers {
            builder = builder.header(name, value);
        }
        let chosen: Vec<&str> = pick.iter().map(|&i| self.entries[i].as_str()).collect();
        match kind {
            Kind::Stripe => {
                let mut value = format!("t={}", self.ts);
                for entry in chosen {
                    value.push_str(",v1=");
                    value.push_str(entry);
                }
                builder = builder.header("stripe-signature", value);
            }
            Kind::StandardWebhooks => {
                builder = builder.header("webhook-signature", chosen.join(" "));
            }
            _ => {}
        }
        if let Some(fresh) = fresh {
            builder = builder.header("x-timestamp", fresh.to_string());
        }
        builder.body(Full::new(self.body.clone())).unwrap()
    }
}

/// The status of `response` and the error code of its JSON body (empty when it has none).
async fn read<B: hyper::body::Body>(response: Response<B>) -> (StatusCode, String) {
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map(http_body_util::Collected::to_bytes)
        .unwrap_or_default();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let code = json["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    (status, code)
}

async fn status(service: &Svc, request: Request<Full<Bytes>>) -> StatusCode {
    outcome(service, request).await.0
}

async fn outcome(service: &Svc, request: Request<Full<Bytes>>) -> (StatusCode, String) {
    service.clone().oneshot(request).await.unwrap()
}

fn memory(clock: &ManualClock) -> Arc<dyn NonceStore> {
    Arc::new(MemoryNonceStore::new(4_096).with_clock(clock.clone()))
}

// ---------------------------------------------------------------------------------------------
// The issue's cases, one by one.

/// Defect 1: a body-only signature with an unsigned, fresh `x-timestamp` is not accepted again
/// an hour later. The guard never reads an unsigned time; it holds the claim for the retention
/// the user stated, and without one it refuses the configuration (500).
#[tokio::test]
async fn body_only_signature_is_not_accepted_again_with_a_fresh_unsigned_timestamp() {
    let clock = ManualClock::new(NOW);
    let handler = Handler::default();
    let svc = stack(Kind::OneKey, &[0], &clock, memory(&clock), handler.clone());
    let captured = sign(Kind::OneKey, &[0], NOW, "", br#"{"event":"payout"}"#);
    assert_eq!(
        status(&svc, captured.request(Kind::OneKey, None, Some(NOW))).await,
        200
    );
    assert_eq!(
        status(&svc, captured.request(Kind::OneKey, None, Some(NOW))).await,
        401
    );
    for step in [3_600, 86_400, RETENTION - 3_600 - 86_400] {
        clock.advance(step);
        let fresh = Some(clock.now_unix());
        assert_eq!(
            status(&svc, captured.request(Kind::OneKey, None, fresh)).await,
            401,
            "accepted again {step} s later"
        );
    }
    // The promise is bounded by the retention, and says so: the second after it, the same
    // signed body is accepted again.
    clock.set(NOW + RETENTION + 1);
    assert_eq!(
        status(&svc, captured.request(Kind::OneKey, None, None)).await,
        200
    );
    assert_eq!(handler.handled(&captured.body), 2);

    // Without a stated retention, a signature that signs no time is a misconfiguration.
    let svc = ServiceBuilder::new()
        .layer(Kind::OneKey.verifier(&[0], &clock))
        .layer(ReplayGuardLayer::new(MemoryNonceStore::new(64)).clock(clock.clone()))
        .service(service_fn(|_: Request<BufferedBody>| async {
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
        }));
    let response = svc
        .oneshot(captured.request(Kind::OneKey, None, Some(clock.now_unix())))
        .await
        .unwrap();
    assert_eq!(response.status(), 500);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(
        body,
        r#"{"error":{"code":"replay_guard_misconfigured","message":"replay protection is misconfigured"}}"#
    );
}

/// Defect 2: a handler that answers 500 (or 503, 429, or fails) once gets the sender's retry
/// accepted; a 4xx or 2xx keeps the claim.
#[tokio::test]
async fn a_failed_handling_can_be_retried_by_its_sender() {
    for kind in Kind::ALL {
        for failure in [
            StatusCode::INTERNAL_SERVER_ERROR,
            StatusCode::SERVICE_UNAVAILABLE,
            StatusCode::TOO_MANY_REQUESTS,
        ] {
            let clock = ManualClock::new(NOW);
            let handler = Handler::default();
            let svc = stack(kind, &[0], &clock, memory(&clock), handler.clone());
            let captured = sign(kind, &[0], NOW, "msg_1", b"{\"n\":1}");
            handler.fail_next(&captured.body, failure);
            assert_eq!(
                status(&svc, captured.request(kind, None, None)).await,
                failure
            );
            clock.advance(30);
            if !kind.releases_on_failure() {
                // Undelimited canonical: bytes can move between path and body under one
                // signature, so the claim is kept and the sender signs its retry anew.
                assert_eq!(
                    status(&svc, captured.request(kind, None, None)).await,
                    401,
                    "{kind:?} retry after {failure}"
                );
                assert_eq!(handler.handled(&captured.body), 0);
                continue;
            }
            assert_eq!(
                status(&svc, captured.request(kind, None, None)).await,
                200,
                "{kind:?} retry after {failure}"
            );
            assert_eq!(status(&svc, captured.request(kind, None, None)).await, 401);
            assert_eq!(handler.handled(&captured.body), 1);
        }
        // A 4xx from the handler is an answer: the message was handled, the claim stays.
        let clock = ManualClock::new(NOW);
        let handler = Handler::default();
        let svc = stack(kind, &[0], &clock, memory(&clock), handler.clone());
        let captured = sign(kind, &[0], NOW, "msg_1", b"{\"n\":2}");
        handler.fail_next(&captured.body, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(status(&svc, captured.request(kind, None, None)).await, 422);
        assert_eq!(status(&svc, captured.request(kind, None, None)).await, 401);
    }
}

/// Defect 2, the other half: a duplicate that arrives while the first copy is still being
/// handled is refused and never runs twice, even when the first then fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concurrent_duplicate_is_refused_while_the_first_is_handled() {
    let clock = ManualClock::new(NOW);
    let runs = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(tokio::sync::Notify::new());
    let (counter, wait) = (runs.clone(), gate.clone());
    let svc = ServiceBuilder::new()
        .layer(Kind::StandardWebhooks.verifier(&[0], &clock))
        .layer(Kind::StandardWebhooks.guard(&clock, memory(&clock)))
        .service(service_fn(move |_: Request<BufferedBody>| {
            let (counter, wait) = (counter.clone(), wait.clone());
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                wait.notified().await;
                let mut response = Response::new(Full::new(Bytes::new()));
                *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                Ok::<_, Infallible>(response)
            }
        }));
    let captured = sign(Kind::StandardWebhooks, &[0], NOW, "msg_c", b"{}");
    let first = tokio::spawn(svc.clone().oneshot(captured.request(
        Kind::StandardWebhooks,
        None,
        None,
    )));
    while runs.load(Ordering::SeqCst) == 0 {
        tokio::task::yield_now().await;
    }
    let duplicate = svc
        .clone()
        .oneshot(captured.request(Kind::StandardWebhooks, None, None))
        .await
        .unwrap();
    assert_eq!(duplicate.status(), 401);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    gate.notify_one();
    assert_eq!(first.await.unwrap().unwrap().status(), 500);
    // The first failed: now the sender's retry runs (once).
    let retry = tokio::spawn(svc.clone().oneshot(captured.request(
        Kind::StandardWebhooks,
        None,
        None,
    )));
    while runs.load(Ordering::SeqCst) == 1 {
        tokio::task::yield_now().await;
    }
    gate.notify_one();
    assert_eq!(retry.await.unwrap().unwrap().status(), 500);
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}

/// Defect 3: during a rotation the sender signs with both keys. The request with both
/// signatures is accepted; the same message with either signature stripped, the list reordered
/// or an entry repeated is a replay.
#[tokio::test]
async fn a_message_signed_under_two_keys_is_accepted_once() {
    for kind in [Kind::Stripe, Kind::StandardWebhooks] {
        let clock = ManualClock::new(NOW);
        let handler = Handler::default();
        let svc = stack(kind, &[0, 1], &clock, memory(&clock), handler.clone());
        let captured = sign(kind, &[0, 1], NOW, "msg_rot", br#"{"id":"evt_1"}"#);
        assert_eq!(status(&svc, captured.request(kind, None, None)).await, 200);
        for pick in [&[0][..], &[1], &[1, 0], &[0, 0], &[1, 1, 0]] {
            assert_eq!(
                status(&svc, captured.request(kind, Some(pick), None)).await,
                401,
                "{kind:?} with entries {pick:?}"
            );
        }
        assert_eq!(handler.handled(&captured.body), 1);
    }
}

/// The same, on real Redis shared by two instances (each its own store and connections): the
/// rotation edit on the second instance is a replay, and a failed handling on one instance is
/// retried on the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_invariants_hold_on_redis_across_instances() {
    let Some(redis) = RedisServer::start_or_skip("the_invariants_hold_on_redis_across_instances")
    else {
        return;
    };
    let clock = ManualClock::new(NOW);
    let redis_store = || -> Arc<dyn NonceStore> {
        Arc::new(
            RedisNonceStore::builder(redis.url())
                .prefix("seams:")
                .clock(clock.clone())
                .build()
                .unwrap(),
        )
    };
    for kind in Kind::ALL {
        let handler = Handler::default();
        let a = stack(kind, &[0, 1], &clock, redis_store(), handler.clone());
        let b = stack(kind, &[0, 1], &clock, redis_store(), handler.clone());
        let id = format!("msg_redis_{kind:?}");
        let body = format!("{{\"kind\":\"{kind:?}\"}}");
        let keys: &[usize] = if kind.timestamped() { &[0, 1] } else { &[1] };
        let captured = sign(kind, keys, clock.now_unix(), &id, body.as_bytes());
        handler.fail_next(&captured.body, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(status(&a, captured.request(kind, None, None)).await, 500);
        if !kind.releases_on_failure() {
            // The claim is kept (undelimited canonical): the retry is a replay on either
            // instance.
            assert_eq!(
                status(&b, captured.request(kind, None, None)).await,
                401,
                "{kind:?}"
            );
            continue;
        }
        assert_eq!(
            status(&b, captured.request(kind, None, None)).await,
            200,
            "{kind:?}"
        );
        assert_eq!(status(&a, captured.request(kind, None, None)).await, 401);
        if !captured.entries.is_empty() {
            assert_eq!(
                status(&b, captured.request(kind, Some(&[0]), None)).await,
                401
            );
            assert_eq!(
                status(&a, captured.request(kind, Some(&[1, 0]), None)).await,
                401
            );
        }
        assert_eq!(handler.handled(&captured.body), 1, "{kind:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// The model: random sequences checked against a reference.

#[derive(Debug, Clone)]
enum Op {
    /// The sender delivers message `msg` afresh (signing now, with the keys of the current
    /// ring); the handler fails that delivery when `fail`.
    Deliver { msg: usize, fail: bool },
    /// A copy of the `capture`-th request seen so far is sent again (by the attacker, or the
    /// sender retrying), with signature entries `pick` and a fresh unsigned timestamp; the
    /// handler fails it when `fail`.
    Replay {
        capture: usize,
        pick: Vec<usize>,
        fresh_timestamp: bool,
        fail: bool,
    },
    /// The clock moves.
    Advance(u64),
    /// Rotation: the new key joins the ring (and signs from now on); then the old key is
    /// revoked.
    Rotate,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..3usize, any::<bool>()).prop_map(|(msg, fail)| Op::Deliver { msg, fail }),
        6 => (
            0..16usize,
            proptest::collection::vec(0..3usize, 0..4),
            any::<bool>(),
            proptest::bool::weighted(0.2),
        )
            .prop_map(|(capture, pick, fresh_timestamp, fail)| Op::Replay {
                capture,
                pick,
                fresh_timestamp,
                fail,
            }),
        3 => prop_oneof![
            Just(1u64),
            Just(60),
            Just(299),
            Just(301),
            Just(600),
            Just(3_600),
            Just(RETENTION),
        ]
        .prop_map(Op::Advance),
        1 => Just(Op::Rotate),
    ]
}

/// What the model remembers of a message identity: when it was last handled successfully,
/// and the signed timestamp of that delivery.
#[derive(Default, Clone, Copy)]
struct Seen {
    handled: Option<(u64, u64)>,
    /// For a timestamped claim: the last second it holds (a refused replay with a later
    /// timestamp extends it to that signature's window).
    until: u64,
}

/// Runs `ops` against the real stack and the model; returns the first disagreement.
///
/// `min_retention` is the store's minimum retention: a timestamped claim is held until the later
/// of `timestamp + 300` and `claimed at + min_retention`, and a replay refused while it holds
/// extends it the same way from its own timestamp and the time it was refused; after that the window refuses the old
/// capture, and a fresh delivery reusing a Standard Webhooks id is a new message. `None`: the
/// store's own time does not move with the test's clock (Redis counts TTLs down in real time,
/// and a test lasts seconds), so a claim is held for the whole sequence.
async fn run_model(
    kind: Kind,
    ops: &[Op],
    min_retention: Option<u64>,
    store: impl Fn(&ManualClock) -> Arc<dyn NonceStore>,
) {
    let clock = ManualClock::new(NOW);
    let handler = Handler::default();
    let store = store(&clock);
    // Ring phases: [0] → [0, 1] (both verify, the sender signs with both) → [1].
    let phases: [&[usize]; 3] = [&[0], &[0, 1], &[1]];
    let mut phase = 0;
    let mut svc = stack(kind, phases[phase], &clock, store.clone(), handler.clone());
    let mut captures: Vec<(Captured, Vec<usize>)> = Vec::new();
    let mut model: HashMap<Vec<u8>, Seen> = HashMap::new();
    let mut deliveries = 0u64;
    // Successful handlings per captured request (exact bytes), the invariant itself.
    let mut accepted: HashMap<usize, u32> = HashMap::new();
    for (step, op) in ops.iter().enumerate() {
        let (index, captured, signed_with, pick, fresh, fail) = match op {
            Op::Advance(secs) => {
                clock.advance(*secs);
                continue;
            }
            Op::Rotate => {
                if phase < 2 {
                    phase += 1;
                    svc = stack(kind, phases[phase], &clock, store.clone(), handler.clone());
                }
                continue;
            }
            Op::Deliver { msg, fail } => {
                deliveries += 1;
                let keys = phases[phase];
                // A body-only sender signs with one key: the newest.
                let keys: Vec<usize> = if kind == Kind::OneKey || kind == Kind::Canonical {
                    vec![*keys.last().unwrap()]
                } else {
                    keys.to_vec()
                };
                let body = format!("{{\"msg\":{msg}}}");
                let captured = sign(
                    kind,
                    &keys,
                    clock.now_unix(),
                    &format!("msg_{msg}"),
                    body.as_bytes(),
                );
                captures.push((captured.clone(), keys.clone()));
                (captures.len() - 1, captured, keys, None, None, *fail)
            }
            Op::Replay {
                capture,
                pick,
                fresh_timestamp,
                fail,
            } => {
                if captures.is_empty() {
                    continue;
                }
                let index = capture % captures.len();
                let (captured, keys) = captures[index].clone();
                let pick: Option<Vec<usize>> = if captured.entries.is_empty() || pick.is_empty() {
                    None
                } else {
                    Some(pick.iter().map(|i| i % captured.entries.len()).collect())
                };
                let fresh = fresh_timestamp.then(|| clock.now_unix());
                (index, captured, keys, pick, fresh, *fail)
            }
        };
        // The model: which keys the request still carries, whether the ring accepts one.
        let carried: Vec<usize> = match &pick {
            Some(pick) => pick.iter().map(|&i| signed_with[i]).collect(),
            None => signed_with.clone(),
        };
        let now = clock.now_unix();
        let verifies = carried.iter().any(|k| phases[phase].contains(k));
        let in_window = !kind.timestamped() || now.abs_diff(captured.ts) <= 300;
        // The identity of the message: Standard Webhooks' id, else what the signature covers.
        let identity = match kind {
            Kind::StandardWebhooks => captured.headers[0].1.as_bytes().to_vec(),
            _ => [captured.ts.to_be_bytes().as_slice(), &captured.body].concat(),
        };
        let identity = if kind == Kind::OneKey {
            captured.body.to_vec()
        } else {
            identity
        };
        let seen = model.get(&identity).copied().unwrap_or_default();
        let claimed = match (seen.handled, kind.timestamped(), min_retention) {
            (None, _, _) => false,
            (Some(_), _, None) => true,
            (Some(_), true, Some(_)) => now <= seen.until,
            (Some((at, _)), false, Some(_)) => now <= at + RETENTION,
        };
        // A timestamped claim's hold: the later of its signature's window and the minimum
        // retention from now.
        let hold = |ts: u64| (ts + 300).max(now + min_retention.unwrap_or(0));
        // The canonical scheme signs `x-timestamp`: a second copy of it is ambiguous (400).
        let duplicated = kind == Kind::Canonical && fresh.is_some();
        // The verifier checks the signature, then the window; the guard then claims. So a
        // refusal's code says which check refused, and a replay must be `replayed`.
        let expected = if duplicated {
            (StatusCode::BAD_REQUEST, "signature_malformed")
        } else if !verifies {
            (StatusCode::UNAUTHORIZED, "signature_invalid")
        } else if !in_window {
            (StatusCode::UNAUTHORIZED, "timestamp_out_of_window")
        } else if claimed {
            // Refused as seen: a timestamped claim is kept through this signature's window.
            if kind.timestamped()
                && let Some(seen) = model.get_mut(&identity)
            {
                seen.until = seen.until.max(hold(captured.ts));
            }
            (StatusCode::UNAUTHORIZED, "replayed")
        } else if fail {
            if !kind.releases_on_failure() {
                model.insert(
                    identity.clone(),
                    Seen {
                        handled: Some((now, captured.ts)),
                        until: hold(captured.ts),
                    },
                );
            }
            (StatusCode::INTERNAL_SERVER_ERROR, "")
        } else {
            model.insert(
                identity.clone(),
                Seen {
                    handled: Some((now, captured.ts)),
                    until: hold(captured.ts),
                },
            );
            (StatusCode::OK, "")
        };
        if fail {
            handler.fail_next(&captured.body, StatusCode::INTERNAL_SERVER_ERROR);
        }
        let (got, code) = outcome(&svc, captured.request(kind, pick.as_deref(), fresh)).await;
        handler.fail_next.lock().unwrap().clear();
        assert_eq!(
            (got, code.as_str()),
            expected,
            "{kind:?} step {step} {op:?} (deliveries {deliveries}, ring {:?}, carried {carried:?})",
            phases[phase]
        );
        if got == StatusCode::OK {
            *accepted.entry(index).or_default() += 1;
        }
    }
    // The invariant itself, independent of the model: a captured request (the same signed
    // bytes) is accepted at most once when its scheme signs a time; a body-only one at most
    // once per retention (the sequences here span less than two).
    for (capture, count) in accepted {
        let limit = if kind.timestamped() {
            1
        } else {
            1 + u32::try_from(ops.len()).unwrap()
        };
        assert!(
            count <= limit,
            "{kind:?} capture {capture} accepted {count} times"
        );
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 96,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn no_signed_message_is_accepted_twice_memory(
        kind in prop_oneof![
            Just(Kind::Stripe),
            Just(Kind::StandardWebhooks),
            Just(Kind::Canonical),
            Just(Kind::OneKey)
        ],
        ops in proptest::collection::vec(op(), 1..40),
    ) {
        runtime().block_on(run_model(kind, &ops, Some(600), memory));
    }
}

/// The same model on a real Redis (fewer sequences: each is network round trips).
#[test]
fn no_signed_message_is_accepted_twice_redis() {
    let Some(redis) = RedisServer::start_or_skip("no_signed_message_is_accepted_twice_redis")
    else {
        return;
    };
    let url = redis.url();
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 16,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let counter = AtomicUsize::new(0);
    runner
        .run(
            &(
                prop_oneof![
                    Just(Kind::Stripe),
                    Just(Kind::StandardWebhooks),
                    Just(Kind::Canonical),
                    Just(Kind::OneKey)
                ],
                proptest::collection::vec(op(), 1..30),
            ),
            |(kind, ops)| {
                let run = counter.fetch_add(1, Ordering::SeqCst);
                let url = url.clone();
                runtime().block_on(run_model(kind, &ops, None, move |clock| {
                    Arc::new(
                        RedisNonceStore::builder(url.clone())
                            .prefix(format!("model:{run}:"))
                            .clock(clock.clone())
                            .build()
                            .unwrap(),
                    )
                }));
                Ok(())
            },
        )
        .unwrap();
}
