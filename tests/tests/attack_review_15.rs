//! Attack review 15: the signer's memory of recent signatures (`Recent`), the token cache's
//! rate-limited `invalidate_sent`, and the Transak 401 rule, attacked in-process.
//!
//! A test whose doc starts with `Was a FINDING, fixed:` asserts the secure behaviour and failed on the code
//! as reviewed; the others are regression tests of attacks the code withstood.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::borrow::Cow;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Request};
use http_body_util::Full;
use tollgate::core::{BoxError, BufferedBody, KeyRing, ManualClock, Secret, Upstream};
use tollgate::headers::{Token, TokenHeaderLayer};
use tollgate::signature::{
    Canonical, PreparedKeys, RequestParts, Scheme, SignError, SignRequestLayer, VerifiedSignature,
    VerifyError,
};
use tower::{Layer as _, ServiceExt as _};

const NOW: u64 = 1_700_000_000;
const SIGNING_KEY: &str = "attack15-canonical-signing-key";
const HOST: &str = "https://api.attack15.example";

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// `Canonical` (tolerance 300 s, so repeats go up to 150 s ahead), instrumented: counts every
/// signing and, for a body of `slow`, takes `delay` to sign a repeat (a time ahead of `NOW`),
/// as a large body would.
#[derive(Debug, Clone)]
struct Instrumented {
    inner: Canonical,
    signed: Arc<AtomicUsize>,
    delay: Duration,
}

impl Instrumented {
    fn new(delay: Duration) -> Self {
        Self {
            inner: Canonical::new(),
            signed: Arc::new(AtomicUsize::new(0)),
            delay,
        }
    }
}

impl Scheme for Instrumented {
    fn name(&self) -> Cow<'static, str> {
        self.inner.name()
    }

    fn sign(
        &self,
        key: &Secret,
        request: &RequestParts<'_>,
        now_unix: u64,
    ) -> Result<Vec<(HeaderName, HeaderValue)>, SignError> {
        self.signed.fetch_add(1, Ordering::SeqCst);
        if request.body() == b"slow" && now_unix > NOW {
            std::thread::sleep(self.delay);
        }
        self.inner.sign(key, request, now_unix)
    }

    fn verify(
        &self,
        keys: &PreparedKeys,
        request: &RequestParts<'_>,
        now_unix: u64,
    ) -> Result<VerifiedSignature, VerifyError> {
        self.inner.verify(keys, request, now_unix)
    }

    fn timestamp_tolerance(&self) -> Option<u64> {
        self.inner.timestamp_tolerance()
    }
}

type Echo = tower::util::BoxCloneSyncService<Request<Full<Bytes>>, HeaderMap, BoxError>;

/// A signer whose "network" answers the headers it was sent.
fn signer(scheme: impl Scheme, clock: &ManualClock) -> Echo {
    let wire = tower::service_fn(|request: Request<BufferedBody>| async move {
        Ok::<_, BoxError>(request.headers().clone())
    });
    tower::util::BoxCloneSyncService::new(
        SignRequestLayer::new(
            scheme,
            KeyRing::single(Secret::from_string(SIGNING_KEY)),
            Upstream::parse(HOST).unwrap(),
        )
        .unwrap()
        .clock(clock.clone())
        .layer(wire),
    )
}

fn pay(body: impl Into<Bytes>) -> Request<Full<Bytes>> {
    Request::post(format!("{HOST}/v1/pay"))
        .header("content-type", "application/json")
        .body(Full::new(body.into()))
        .unwrap()
}

/// The signature headers of one call (`x-signature` and the timestamp).
async fn sign(service: &Echo, body: impl Into<Bytes>) -> Vec<(String, Vec<u8>)> {
    let headers = service.clone().oneshot(pay(body)).await.unwrap();
    let mut signed: Vec<(String, Vec<u8>)> = headers
        .iter()
        .filter(|(name, _)| name.as_str() != "content-type")
        .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
        .collect();
    signed.sort();
    signed
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// 1. The signer's memory of recent signatures
// ---------------------------------------------------------------------------------------------

/// Was a FINDING, fixed: `SignConfig::sign` holds the layer-wide `Recent` mutex while it re-signs a repeat
/// (`sign(at + 1)` inside the `while` loop), i.e. while it HMACs the whole body, once per
/// second stepped ahead. Every other call through the layer, whatever its message, waits for
/// it: one caller sending the same large body twice stalls every signer of the process for the
/// whole re-signing. Here a repeat that takes 1.5 s to sign keeps an unrelated small message
/// from being signed for as long.
#[test]
fn a_repeat_is_re_signed_under_the_layer_wide_lock() {
    let clock = ManualClock::new(NOW);
    let service = signer(Instrumented::new(Duration::from_millis(1500)), &clock);

    let slow = {
        let service = service.clone();
        std::thread::spawn(move || {
            runtime().block_on(async {
                sign(&service, "slow").await;
                sign(&service, "slow").await; // a repeat: re-signed 1 s ahead, slowly
            });
        })
    };
    // Let the repeat take the lock.
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    runtime().block_on(sign(&service, "{\"amount\":1}"));
    let waited = started.elapsed();
    slow.join().unwrap();
    assert!(
        waited < Duration::from_millis(600),
        "an unrelated message waited {waited:?} for another message's re-signing"
    );
}

/// Was a FINDING, fixed: each repeat of one message starts probing at `now` and steps one second at a
/// time, re-signing the whole body at every step: the k-th repeat within a second costs
/// min(k, 150) extra HMACs (under the lock, see above). A burst of 300 identical calls costs
/// ~34,000 signings instead of ~600, and from the 151st on every call costs 151 signings for a
/// signature that is then repeated anyway. Remembering, per message, the last time signed at
/// (and reserving the next one under the lock, signing outside it) costs one extra signing.
#[test]
fn a_burst_of_one_message_costs_quadratic_signing() {
    let clock = ManualClock::new(NOW);
    let scheme = Instrumented::new(Duration::ZERO);
    let signed = Arc::clone(&scheme.signed);
    let service = signer(scheme, &clock);
    runtime().block_on(async {
        for _ in 0..300 {
            sign(&service, "{\"amount\":1}").await;
        }
    });
    let signed = signed.load(Ordering::SeqCst);
    assert!(
        signed <= 2 * 300,
        "300 calls of one message cost {signed} signings"
    );
}

/// Was a FINDING, fixed: `Recent` sweeps only `if now > state.swept`. After the clock steps back (an NTP
/// step, a VM restored; `ManualClock::set` here) no sweep happens until the clock is past the
/// old second again: entries pile up to `Recent::KEPT` (65,536), after which no new signature
/// is remembered, and two calls of one message in one second carry the same timestamped
/// signature again (the verifier's replay guard refuses the second) until the clock catches
/// up, here for up to an hour. With 100 distinct calls a second, 11 minutes after a one-hour
/// step back, "never the same signature twice" no longer holds. Sweep whenever the second
/// changed (`now != swept`), keeping only entries in `now..=now + ahead`.
#[test]
fn after_the_clock_steps_back_the_signer_stops_sweeping() {
    let clock = ManualClock::new(NOW);
    let service = signer(Canonical::new(), &clock);
    runtime().block_on(async {
        sign(&service, "before the step").await;
        clock.set(NOW - 3600);
        for second in 0..670 {
            for call in 0..100 {
                sign(&service, format!("{{\"second\":{second},\"call\":{call}}}")).await;
            }
            clock.advance(1);
        }
        let first = sign(&service, "{\"amount\":1}").await;
        let second = sign(&service, "{\"amount\":1}").await;
        assert_ne!(
            first, second,
            "two calls of one message in one second got the same signature"
        );
    });
}

/// Held: up to 150 calls of one message in one second (half of Canonical's 300 s tolerance)
/// all carry different signatures.
#[test]
fn repeats_within_one_second_differ() {
    let clock = ManualClock::new(NOW);
    let service = signer(Canonical::new(), &clock);
    runtime().block_on(async {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..150 {
            assert!(seen.insert(sign(&service, "{\"amount\":2}").await));
        }
    });
}

// ---------------------------------------------------------------------------------------------
// 2. The token cache's rate-limited `invalidate_sent`
// ---------------------------------------------------------------------------------------------

/// A token layer at `clock` whose provider answers `t1`, `t2`, ... (valid for a week), and
/// the service that answers the token a call carried.
fn token_stack(clock: &ManualClock) -> (TokenHeaderLayer, impl Fn() -> HeaderValue) {
    let fetched = Arc::new(AtomicUsize::new(0));
    let layer = TokenHeaderLayer::access_token(
        move || {
            let n = fetched.fetch_add(1, Ordering::SeqCst) + 1;
            async move {
                Ok::<_, BoxError>(
                    Token::new(Secret::from_string(format!("t{n}")))
                        .expires_at(NOW + 7 * 24 * 3600),
                )
            }
        },
        Upstream::parse(HOST).unwrap(),
    )
    .clock(clock.clone());
    let sent = Arc::new(Mutex::new(None));
    let wire = {
        let sent = Arc::clone(&sent);
        tower::service_fn(move |request: Request<Full<Bytes>>| {
            *sent.lock().unwrap() = request.headers().get("access-token").cloned();
            async { Ok::<_, BoxError>(()) }
        })
    };
    let service = layer.layer(wire);
    let call = move || {
        let service = service.clone();
        runtime().block_on(async { service.oneshot(pay("{}")).await.unwrap() });
        sent.lock().unwrap().clone().unwrap()
    };
    (layer, call)
}

/// Was a FINDING, fixed: `invalidate_sent` is due only when `now >= last_dropped + 10`, on the wall clock.
/// After a drop, a clock stepped back (NTP step, VM restore) leaves `last_dropped` in the
/// future: every 401 is ignored until the clock is past it again, so a revoked token keeps
/// being sent, and every call refused, for as long as the step (here an hour; Transak tokens
/// live a week, so nothing else replaces it). Treat `now < last_dropped` as due (or measure
/// the interval on a monotonic `Instant`).
#[test]
fn a_clock_stepped_back_pins_a_revoked_token() {
    let clock = ManualClock::new(NOW);
    let (layer, call) = token_stack(&clock);
    assert_eq!(call(), "t1");
    layer.invalidate_sent(&HeaderValue::from_static("t1")); // a 401, honoured
    assert_eq!(call(), "t2");

    clock.set(NOW - 3600); // the clock steps back an hour
    // The provider revokes t2: every call is answered 401 from now on.
    for _ in 0..6 {
        clock.advance(10);
        let sent = call();
        if sent != "t2" {
            return;
        }
        layer.invalidate_sent(&sent);
    }
    assert_ne!(
        call(),
        "t2",
        "a revoked token was still sent a minute after the provider started refusing it"
    );
}

/// Held: a 401 provoked just before the real revocation pins the revoked token for at most
/// the 10 s interval; the first 401 after it drops the token.
#[test]
fn a_provoked_401_pins_a_revoked_token_for_at_most_ten_seconds() {
    let clock = ManualClock::new(NOW);
    let (layer, call) = token_stack(&clock);
    assert_eq!(call(), "t1");
    layer.invalidate_sent(&HeaderValue::from_static("t1")); // provoked by a caller
    assert_eq!(call(), "t2");
    clock.advance(1);
    layer.invalidate_sent(&HeaderValue::from_static("t2")); // the real revocation: limited
    assert_eq!(call(), "t2");
    clock.advance(9);
    layer.invalidate_sent(&HeaderValue::from_static("t2"));
    assert_eq!(call(), "t3");
    // A stale 401 (of a token already replaced) drops nothing, and does not use up the slot.
    clock.advance(10);
    layer.invalidate_sent(&HeaderValue::from_static("t2"));
    assert_eq!(call(), "t3");
    layer.invalidate_sent(&HeaderValue::from_static("t3"));
    assert_eq!(call(), "t4");
}
