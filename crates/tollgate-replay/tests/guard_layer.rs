//! The guard as a tower service: [`ReplayGuardLayer`] over a `service_fn` echo, with a
//! `ManualClock` and the memory store (moved out of `src/layer.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use tollgate_core::{
    ManualClock, Rejection, RejectionResponder, RequestTimestamp, VerifiedSignature,
};
use tollgate_replay::{
    MemoryNonceStore, NonceShape, NonceStore, ReplayGuard, ReplayGuardLayer, StoreError,
};
use tower::{Service, ServiceBuilder, ServiceExt, service_fn};

use common::json;

const NOW: u64 = 1_700_000_000;
const NONCE: &str =
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f2021222324252627";

/// An echo handler that reports the RequestTimestamp it saw.
async fn echo(request: Request<Full<Bytes>>) -> Result<Response<Full<Bytes>>, Infallible> {
    let ts = request
        .extensions()
        .get::<RequestTimestamp>()
        .map_or(0, RequestTimestamp::unix_seconds);
    Ok(Response::new(Full::new(Bytes::from(format!("ok {ts}")))))
}

struct Fixture {
    clock: ManualClock,
    layer: ReplayGuardLayer,
}

/// A guard made by `make` on a memory store, both reading one manual clock at `NOW`.
fn fixture(make: impl FnOnce(MemoryNonceStore) -> ReplayGuardLayer) -> Fixture {
    let clock = ManualClock::new(NOW);
    let store = MemoryNonceStore::new(1_000).with_clock(clock.clone());
    let layer = make(store).clock(clock.clone());
    Fixture { clock, layer }
}

fn tranzila_request(time: &str, nonce: &str) -> Request<Full<Bytes>> {
    common::tranzila_request("/api", time, nonce)
}

async fn send(layer: &ReplayGuardLayer, request: Request<Full<Bytes>>) -> (StatusCode, String) {
    let service = ServiceBuilder::new()
        .layer(layer.clone())
        .service(service_fn(echo));
    let response = service.oneshot(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn tranzila_vector_accepted_once_then_replayed() {
    let f = fixture(ReplayGuardLayer::tranzila);
    let (time, nonce) =
        match tollgate_test_support::signing_vectors("tranzila_vector_accepted_once_then_replayed")
        {
            Some(v) => {
                let case = &v["tranzila"][0]["headers"];
                (
                    case["X-tranzila-api-request-time"]
                        .as_str()
                        .unwrap()
                        .to_owned(),
                    case["X-tranzila-api-nonce"].as_str().unwrap().to_owned(),
                )
            }
            None => ("1700000000".to_owned(), NONCE.to_owned()),
        };
    assert_eq!(
        send(&f.layer, tranzila_request(&time, &nonce)).await,
        (StatusCode::OK, "ok 1700000000".to_owned())
    );
    assert_eq!(
        send(&f.layer, tranzila_request(&time, &nonce)).await,
        (
            StatusCode::UNAUTHORIZED,
            json("replayed", "request was already received")
        )
    );
    // The upper-case nonce is a different nonce (used exactly as sent).
    let upper = nonce.to_uppercase();
    assert_eq!(
        send(&f.layer, tranzila_request(&time, &upper)).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn window_edges_from_the_vectors() {
    let cases: Vec<(u64, String, &str)> =
        match tollgate_test_support::signing_vectors("window_edges_from_the_vectors") {
            Some(v) => v["timestamp_window"]["cases"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| {
                    let expect = match c["expect"].as_str().unwrap() {
                        "accept" => "accept",
                        "reject_too_old" | "reject_in_future" => "window",
                        "reject_malformed" => "malformed",
                        other => panic!("unknown expectation {other}"),
                    };
                    (
                        c["now"].as_u64().unwrap(),
                        c["ts"].as_str().unwrap().to_owned(),
                        expect,
                    )
                })
                .collect(),
            None => vec![],
        };
    let mut all = cases;
    all.extend([
        (NOW + 300, NOW.to_string(), "accept"),
        (NOW + 301, NOW.to_string(), "window"),
        (NOW - 300, NOW.to_string(), "accept"),
        (NOW - 301, NOW.to_string(), "window"),
        // Milliseconds where seconds are expected: out of window, not malformed.
        (NOW, "1700000000000".to_owned(), "window"),
    ]);
    for bad in [
        "+1700000000",
        " 1700000000",
        "1700000000.0",
        "-1",
        "99999999999999999999",
        "",
        "1.7e9",
    ] {
        all.push((NOW, bad.to_owned(), "malformed"));
    }
    for (i, (now, ts, expect)) in all.into_iter().enumerate() {
        let f = fixture(ReplayGuardLayer::tranzila);
        f.clock.set(now);
        let nonce = format!("{i:080x}");
        let request = tranzila_request(&ts, &nonce);
        let (status, body) = send(&f.layer, request).await;
        match expect {
            "accept" => assert_eq!(status, StatusCode::OK, "{ts} at {now}"),
            "window" => {
                assert_eq!(status, StatusCode::UNAUTHORIZED, "{ts} at {now}");
                assert!(
                    body.contains(r#""code":"timestamp_out_of_window""#),
                    "{body}"
                );
            }
            _ => assert_eq!(
                (status, body),
                (
                    StatusCode::BAD_REQUEST,
                    json(
                        "timestamp_malformed",
                        "timestamp must be Unix seconds as ASCII digits"
                    )
                ),
                "{ts:?}"
            ),
        }
    }
}

#[tokio::test]
async fn exact_window_rejection_bodies() {
    let f = fixture(ReplayGuardLayer::tranzila);
    assert_eq!(
        send(&f.layer, tranzila_request("1699999699", NONCE)).await,
        (
            StatusCode::UNAUTHORIZED,
            json(
                "timestamp_out_of_window",
                "timestamp is outside the accepted window: too old"
            )
        )
    );
    assert_eq!(
        send(&f.layer, tranzila_request("1700000301", NONCE)).await,
        (
            StatusCode::UNAUTHORIZED,
            json(
                "timestamp_out_of_window",
                "timestamp is outside the accepted window: too far in the future"
            )
        )
    );
}

#[tokio::test]
async fn nonce_shape_is_checked() {
    let f = fixture(ReplayGuardLayer::tranzila);
    let malformed = (
        StatusCode::BAD_REQUEST,
        json("nonce_malformed", "nonce is missing or malformed"),
    );
    for nonce in [
        &NONCE[..79],
        &format!("{NONCE}0"),
        &format!("{}g", &NONCE[..79]),
        &format!("{} ", &NONCE[..79]),
        "",
    ] {
        assert_eq!(
            send(&f.layer, tranzila_request("1700000000", nonce)).await,
            malformed,
            "{nonce:?}"
        );
    }
    // Missing and repeated nonce headers.
    let mut request = tranzila_request("1700000000", NONCE);
    request.headers_mut().remove("x-tranzila-api-nonce");
    assert_eq!(send(&f.layer, request).await, malformed);
    let mut request = tranzila_request("1700000000", NONCE);
    request
        .headers_mut()
        .append("x-tranzila-api-nonce", NONCE.parse().unwrap());
    assert_eq!(send(&f.layer, request).await, malformed);
    // Missing timestamp.
    let mut request = tranzila_request("1700000000", NONCE);
    request.headers_mut().remove("x-tranzila-api-request-time");
    assert_eq!(send(&f.layer, request).await.0, StatusCode::BAD_REQUEST);
    // None of these claimed the nonce.
    assert_eq!(
        send(&f.layer, tranzila_request("1700000000", NONCE))
            .await
            .0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn expired_claim_is_refused_by_the_window_not_accepted_again() {
    let f = fixture(ReplayGuardLayer::tranzila);
    let ahead = (NOW + 300).to_string();
    assert_eq!(
        send(&f.layer, tranzila_request(&ahead, NONCE)).await.0,
        StatusCode::OK
    );
    // A future-dated request's claim lasts until timestamp + tolerance: 600 s from now.
    f.clock.set(NOW + 600);
    assert_eq!(
        send(&f.layer, tranzila_request(&ahead, NONCE)).await.1,
        json("replayed", "request was already received")
    );
    // Past it the claim is gone, and the window refuses the request.
    f.clock.set(NOW + 601);
    assert_eq!(
        send(&f.layer, tranzila_request(&ahead, NONCE)).await,
        (
            StatusCode::UNAUTHORIZED,
            json(
                "timestamp_out_of_window",
                "timestamp is outside the accepted window: too old"
            )
        )
    );
}

#[tokio::test]
async fn namespaces_keep_app_keys_and_schemes_apart() {
    let clock = ManualClock::new(NOW);
    let store = Arc::new(MemoryNonceStore::new(1_000).with_clock(clock.clone()));
    let tranzila = ReplayGuardLayer::tranzila(Arc::clone(&store)).clock(clock.clone());
    let other_scheme = ReplayGuardLayer::headers(
        "other",
        http::HeaderName::from_static("x-tranzila-api-request-time"),
        http::HeaderName::from_static("x-tranzila-api-nonce"),
        Arc::clone(&store),
    )
    .clock(clock.clone());
    assert_eq!(
        send(&tranzila, tranzila_request("1700000000", NONCE))
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        send(&other_scheme, tranzila_request("1700000000", NONCE))
            .await
            .0,
        StatusCode::OK
    );
    let mut second_partner = tranzila_request("1700000000", NONCE);
    second_partner
        .headers_mut()
        .insert("x-tranzila-api-app-key", "another_app".parse().unwrap());
    assert_eq!(send(&tranzila, second_partner).await.0, StatusCode::OK);
    assert_eq!(
        send(&tranzila, tranzila_request("1700000000", NONCE))
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(store.len(), 3);
}

#[tokio::test]
async fn standard_webhooks_and_canonical_presets() {
    let f = fixture(ReplayGuardLayer::standard_webhooks);
    let request = || {
        Request::post("/hook")
            .header("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek")
            .header("webhook-timestamp", "1700000000")
            .body(Full::new(Bytes::new()))
            .unwrap()
    };
    assert_eq!(send(&f.layer, request()).await.0, StatusCode::OK);
    assert_eq!(send(&f.layer, request()).await.0, StatusCode::UNAUTHORIZED);

    // The canonical preset reads the verifier's VerifiedSignature: its signed timestamp
    // and the digest of what the signature covers.
    let f = fixture(ReplayGuardLayer::new);
    let request = || {
        let mut request = Request::post("/v1/payments")
            .body(Full::new(Bytes::new()))
            .unwrap();
        request.extensions_mut().insert(
            VerifiedSignature::from_slice("canonical", "k".into(), &[7; 32])
                .with_timestamp(NOW)
                .with_signed_content(
                    Bytes::from_static(b"POST/v1/payments"),
                    Bytes::new(),
                    Bytes::from_static(b"1700000000"),
                ),
        );
        request
    };
    assert_eq!(send(&f.layer, request()).await.0, StatusCode::OK);
    assert_eq!(send(&f.layer, request()).await.0, StatusCode::UNAUTHORIZED);
}

fn verified(scheme: &'static str, key_id: &str, ts: Option<u64>) -> VerifiedSignature {
    let v = VerifiedSignature::new(scheme, key_id.into(), Bytes::from_static(b"\x01\x02\x03"));
    match ts {
        Some(ts) => v.with_timestamp(ts),
        None => v,
    }
}

#[tokio::test]
async fn new_reads_the_verified_signature() {
    let f = fixture(ReplayGuardLayer::new);
    let request = |v: Option<VerifiedSignature>| {
        let mut request = Request::post("/hook")
            .body(Full::new(Bytes::new()))
            .unwrap();
        if let Some(v) = v {
            request.extensions_mut().insert(v);
        }
        request
    };
    let sig = || Some(verified("stripe", "2026-11", Some(NOW - 10)));
    assert_eq!(
        send(&f.layer, request(sig())).await,
        (StatusCode::OK, format!("ok {}", NOW - 10))
    );
    assert_eq!(
        send(&f.layer, request(sig())).await.0,
        StatusCode::UNAUTHORIZED
    );
    // The claim names the message, not the key: the same message verified under another
    // key id is the same claim. Another scheme is another namespace.
    assert_eq!(
        send(
            &f.layer,
            request(Some(verified("stripe", "2026-08", Some(NOW - 10))))
        )
        .await
        .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        send(
            &f.layer,
            request(Some(verified("onekey", "2026-11", Some(NOW))))
        )
        .await
        .0,
        StatusCode::OK
    );
    // Window applies to the verified timestamp.
    assert_eq!(
        send(&f.layer, request(Some(verified("x", "k", Some(NOW - 301)))))
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    // Without the extension, or without any timestamp: a deployment error.
    let misconfigured = (
        StatusCode::INTERNAL_SERVER_ERROR,
        json(
            "replay_guard_misconfigured",
            "replay protection is misconfigured",
        ),
    );
    assert_eq!(send(&f.layer, request(None)).await, misconfigured);
    assert_eq!(
        send(&f.layer, request(Some(verified("onekey", "k", None)))).await,
        misconfigured
    );

    // A body-only scheme: an unsigned timestamp header is never read; the retention the
    // user stated bounds the claim instead.
    let f = fixture(|store| {
        ReplayGuardLayer::new(store).untimed_retention(Duration::from_secs(86_400))
    });
    let mut r = request(Some(verified("onekey", "k", None)));
    r.headers_mut()
        .insert("x-timestamp", "1700000000".parse().unwrap());
    assert_eq!(send(&f.layer, r).await.0, StatusCode::OK);
    let mut r = request(Some(verified("onekey", "k", None)));
    r.headers_mut()
        .insert("x-timestamp", "1700009999".parse().unwrap());
    assert_eq!(send(&f.layer, r).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_with_one_nonce_have_one_winner() {
    let f = fixture(ReplayGuardLayer::tranzila);
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let layer = f.layer.clone();
            tokio::spawn(async move { send(&layer, tranzila_request("1700000000", NONCE)).await.0 })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::OK).count(), 1);
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::UNAUTHORIZED)
            .count(),
        63
    );
}

#[derive(Debug)]
struct FailingStore(Mutex<u32>);

impl NonceStore for FailingStore {
    fn claim<'a>(&'a self, _key: &'a [u8], _expires_at: u64) -> tollgate_replay::ClaimFuture<'a> {
        *self.0.lock().unwrap() += 1;
        Box::pin(async { Err(StoreError::Unavailable("connection refused".into())) })
    }
}

#[tokio::test]
async fn store_failure_fails_closed_and_custom_responder() {
    let clock = ManualClock::new(NOW);
    let store = Arc::new(FailingStore(Mutex::new(0)));
    let layer = ReplayGuardLayer::tranzila(Arc::clone(&store)).clock(clock.clone());
    assert_eq!(
        send(&layer, tranzila_request("1700000000", NONCE)).await,
        (
            StatusCode::SERVICE_UNAVAILABLE,
            json(
                "store_unavailable",
                "replay protection is temporarily unavailable"
            )
        )
    );
    assert_eq!(*store.0.lock().unwrap(), 1);

    // A closure is a responder.
    let layer = layer.on_rejection(|r: &Rejection| {
        let mut response = Response::new(Bytes::from(r.code().to_owned()));
        *response.status_mut() = StatusCode::IM_A_TEAPOT;
        response
    });
    let service = ServiceBuilder::new().layer(layer).service(service_fn(echo));
    let response = service
        .oneshot(tranzila_request("1700000000", NONCE))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::IM_A_TEAPOT);
    assert_eq!(
        response
            .extensions()
            .get::<Rejection>()
            .map(Rejection::code),
        Some("store_unavailable")
    );
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "store_unavailable");
}

#[tokio::test]
async fn custom_shape_and_tolerance() {
    let f = fixture(|store| {
        ReplayGuardLayer::standard_webhooks(store)
            .tolerance(std::time::Duration::from_secs(60))
            .nonce_shape(NonceShape::Hex(8))
    });
    let request = |id: &str, ts: u64| {
        Request::post("/hook")
            .header("webhook-id", id)
            .header("webhook-timestamp", ts.to_string())
            .body(Full::new(Bytes::new()))
            .unwrap()
    };
    assert_eq!(
        send(&f.layer, request("0011aaff", NOW - 60)).await.0,
        StatusCode::OK
    );
    assert_eq!(
        send(&f.layer, request("0011aafe", NOW - 61)).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        send(&f.layer, request("msg_1", NOW)).await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(f.layer.window().tolerance_secs(), 60);
}

/// Sends `request` to `layer` twice: the second must be refused as a replay.
async fn assert_replay_refused(layer: &ReplayGuardLayer, time: &str, nonce: &str) {
    assert_eq!(
        send(layer, tranzila_request(time, nonce)).await,
        (StatusCode::OK, format!("ok {time}"))
    );
    assert_eq!(
        send(layer, tranzila_request(time, nonce)).await,
        (
            StatusCode::UNAUTHORIZED,
            json("replayed", "request was already received")
        )
    );
}

#[tokio::test]
async fn replay_refused_when_the_verifier_clock_is_far_from_the_store_clock() {
    // The guard reads a manual clock in 2023, the store the real system clock: every
    // `expires_at` is long past by the store's clock.
    let store = MemoryNonceStore::new(1_000);
    let layer = ReplayGuardLayer::tranzila(store).clock(ManualClock::new(NOW));
    assert_replay_refused(&layer, "1700000000", NONCE).await;

    // The guard's clock far ahead of the store's: claims outlive the window, never less.
    let store = MemoryNonceStore::new(1_000);
    let far = 4_000_000_000u64;
    let layer = ReplayGuardLayer::tranzila(store).clock(ManualClock::new(far));
    assert_replay_refused(&layer, &far.to_string(), NONCE).await;

    // Both manual, the store 250 s ahead, the replay 100 s later: without the minimum
    // retention the claim (until ts + 300 by the guard) would already be gone by the store's
    // clock while the guard's window still accepts the request.
    for (retention, replay_status) in [
        (None, StatusCode::UNAUTHORIZED),
        (Some(std::time::Duration::ZERO), StatusCode::OK),
    ] {
        let guard_clock = ManualClock::new(NOW);
        let store_clock = ManualClock::new(NOW + 250);
        let mut store = MemoryNonceStore::new(1_000).with_clock(store_clock.clone());
        if let Some(retention) = retention {
            store = store.with_min_retention(retention);
        }
        let layer = ReplayGuardLayer::tranzila(store).clock(guard_clock.clone());
        assert_eq!(
            send(&layer, tranzila_request("1700000000", NONCE)).await.0,
            StatusCode::OK
        );
        guard_clock.advance(100);
        store_clock.advance(100);
        assert_eq!(
            send(&layer, tranzila_request("1700000000", NONCE)).await.0,
            replay_status,
            "retention {retention:?}"
        );
    }
}

#[tokio::test]
async fn skewed_instances_sharing_a_store_refuse_the_replay() {
    // Instance A's clock is 200 s ahead of B's; the store reads A's clock (the worst case:
    // the claim is written by the instance whose clock is ahead). A retention of
    // 2 × tolerance + skew (the shared-store default, 900 s) refuses every replay; the
    // single-process default of 2 × tolerance does not cover the skew, as documented.
    for (retention, at_700) in [
        (
            tollgate_replay::DEFAULT_SHARED_MIN_RETENTION,
            StatusCode::UNAUTHORIZED,
        ),
        (tollgate_replay::DEFAULT_MIN_RETENTION, StatusCode::OK),
    ] {
        let a_clock = ManualClock::new(NOW + 200);
        let b_clock = ManualClock::new(NOW);
        let store = Arc::new(
            MemoryNonceStore::new(1_000)
                .with_clock(a_clock.clone())
                .with_min_retention(retention),
        );
        let a = ReplayGuardLayer::tranzila(Arc::clone(&store)).clock(a_clock.clone());
        let b = ReplayGuardLayer::tranzila(Arc::clone(&store)).clock(b_clock.clone());
        // Stamped as far ahead as A accepts: A asks for expires_at = ts + 300 = NOW + 800.
        let ts = (NOW + 500).to_string();
        assert_eq!(
            send(&a, tranzila_request(&ts, NONCE)).await.0,
            StatusCode::OK
        );
        // B accepts that timestamp from when its clock reads NOW + 200 until NOW + 800,
        // 800 s after A's claim; by then the store's clock reads NOW + 1000, past the
        // requested expiry. A replay refused on the way extends the claim to its own window
        // (the store's minimum retention from then), so the short retention shows its gap
        // only to a replay that comes first after the claim lapsed.
        let probes: &[u64] = if at_700 == StatusCode::OK {
            &[700]
        } else {
            &[200, 400, 600, 700, 800]
        };
        for &elapsed in probes {
            a_clock.set(NOW + 200 + elapsed);
            b_clock.set(NOW + elapsed);
            let expected = if elapsed >= 700 {
                at_700
            } else {
                StatusCode::UNAUTHORIZED
            };
            let (status, body) = send(&b, tranzila_request(&ts, NONCE)).await;
            assert_eq!(status, expected, "{retention:?}, {elapsed} s later: {body}");
            if status == StatusCode::OK {
                break;
            }
            assert_eq!(body, json("replayed", "request was already received"));
        }
        // Once B's window has closed the request is stale, not accepted again.
        a_clock.set(NOW + 200 + 801);
        b_clock.set(NOW + 801);
        assert_eq!(
            send(&b, tranzila_request(&ts, NONCE)).await.1,
            json(
                "timestamp_out_of_window",
                "timestamp is outside the accepted window: too old"
            )
        );
    }
}

#[tokio::test]
async fn clock_skew_margin_lengthens_the_requested_expiry() {
    let guard = ReplayGuardLayer::tranzila(MemoryNonceStore::new(10))
        .clock(ManualClock::new(NOW))
        .clock_skew_margin(std::time::Duration::from_secs(120));
    let ticket = guard
        .check(
            tranzila_request("1700000000", NONCE).headers(),
            &http::Extensions::new(),
        )
        .unwrap();
    assert_eq!(ticket.expires_at(), NOW + 300 + 120);
    assert!(format!("{guard:?}").contains("clock_skew_margin_secs: 120"));
}

#[tokio::test]
async fn the_key_id_header_must_be_present_once() {
    let f = fixture(ReplayGuardLayer::tranzila);
    let refused = (
        StatusCode::BAD_REQUEST,
        json(
            "header_malformed",
            "a required header is missing or malformed: `x-tranzila-api-app-key` must be present once, not empty",
        ),
    );
    let mut missing = tranzila_request("1700000000", NONCE);
    missing.headers_mut().remove("x-tranzila-api-app-key");
    assert_eq!(send(&f.layer, missing).await, refused);
    let mut twice = tranzila_request("1700000000", NONCE);
    twice
        .headers_mut()
        .append("x-tranzila-api-app-key", "another_app".parse().unwrap());
    assert_eq!(send(&f.layer, twice).await, refused);
    let mut empty = tranzila_request("1700000000", NONCE);
    empty
        .headers_mut()
        .insert("x-tranzila-api-app-key", "".parse().unwrap());
    assert_eq!(send(&f.layer, empty).await, refused);
    // None of them claimed the nonce.
    assert_eq!(
        send(&f.layer, tranzila_request("1700000000", NONCE))
            .await
            .0,
        StatusCode::OK
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

    /// Any bytes, any number of times, in the three headers: a refusal with a JSON body or
    /// an acceptance, never a panic; only accepted requests claim.
    #[test]
    fn hostile_headers_never_panic(
        values in proptest::collection::vec(
            (0usize..3, proptest::collection::vec(proptest::prelude::any::<u8>(), 0..90)),
            0..6,
        ),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let clock = ManualClock::new(NOW);
        let store = Arc::new(MemoryNonceStore::new(100).with_clock(clock.clone()));
        let layer = ReplayGuardLayer::tranzila(Arc::clone(&store)).clock(clock);
        let names = ["x-tranzila-api-app-key", "x-tranzila-api-request-time", "x-tranzila-api-nonce"];
        let mut request = Request::post("/").body(Full::new(Bytes::new())).unwrap();
        for (name, value) in values {
            if let Ok(value) = http::HeaderValue::from_bytes(&value) {
                request.headers_mut().append(names[name], value);
            }
        }
        let (status, body) = runtime.block_on(send(&layer, request));
        match status.as_u16() {
            200 => proptest::prop_assert_eq!(store.len(), 1),
            400 | 401 => {
                proptest::prop_assert!(body.starts_with(r#"{"error":{"code":""#), "{}", body);
                proptest::prop_assert_eq!(store.len(), 0);
            }
            other => proptest::prop_assert!(false, "status {}", other),
        }
    }
}

#[test]
fn services_are_send_clone_and_debug_hides_nothing_secret() {
    fn assert_send_clone<T: Send + Sync + Clone>() {}
    assert_send_clone::<ReplayGuardLayer>();
    type Svc = ReplayGuard<
        tower::util::ServiceFn<
            fn(
                Request<Full<Bytes>>,
            ) -> std::future::Ready<Result<Response<Full<Bytes>>, Infallible>>,
        >,
    >;
    assert_send_clone::<Svc>();
    let f = fixture(ReplayGuardLayer::tranzila);
    let debug = format!("{:?}", f.layer);
    assert!(debug.contains("scheme: \"tranzila\""), "{debug}");
    assert!(debug.contains("nonce_shape: Hex(80)"), "{debug}");
}

#[test]
fn a_finished_future_stays_pending() {
    let f = fixture(ReplayGuardLayer::tranzila);
    let mut service = ReplayGuard::new(service_fn(echo), &f.layer);
    // Refused before the claim, refused by the claim, accepted: each answers once.
    for (request, status) in [
        (tranzila_request("x", NONCE), StatusCode::BAD_REQUEST),
        (tranzila_request("1700000000", NONCE), StatusCode::OK),
        (
            tranzila_request("1700000000", NONCE),
            StatusCode::UNAUTHORIZED,
        ),
    ] {
        let future = service.call(request);
        assert!(format!("{future:?}").starts_with("ReplayGuardFuture("));
        assert_eq!(
            tollgate_test_support::poll_to_completion_then_pending(future)
                .unwrap()
                .status(),
            status
        );
    }
    // A failed handling: the claim is released, then the future is done.
    let mut failing = ReplayGuard::new(
        service_fn(|_: Request<Full<Bytes>>| async {
            let mut response = Response::new(Full::new(Bytes::new()));
            *response.status_mut() = StatusCode::BAD_GATEWAY;
            Ok::<_, Infallible>(response)
        }),
        &f.layer,
    );
    let nonce = common::nonce(7);
    let response = tollgate_test_support::poll_to_completion_then_pending(
        failing.call(tranzila_request("1700000000", &nonce)),
    )
    .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
}

#[tokio::test]
async fn on_rejection_takes_a_responder_or_a_closure() {
    let f =
        fixture(|store| ReplayGuardLayer::tranzila(store).on_rejection(RejectionResponder::grpc()));
    let service = ServiceBuilder::new()
        .layer(f.layer)
        .service(service_fn(echo));
    let response = service
        .oneshot(tranzila_request("1700000000", "short"))
        .await
        .unwrap();
    assert_eq!(response.headers()["content-type"], "application/grpc");
    assert_eq!(response.headers()["grpc-status"], "3");
    assert_eq!(
        response
            .extensions()
            .get::<Rejection>()
            .map(Rejection::code),
        Some("nonce_malformed")
    );
}

#[test]
fn the_service_is_made_from_the_layer() {
    let layer = ReplayGuardLayer::tranzila(MemoryNonceStore::new(10));
    let mut service = ReplayGuard::new(service_fn(echo), &layer);
    let _: &mut _ = service.get_mut();
    let _: &_ = service.get_ref();
    let _inner = service.into_inner();
    let verified = ReplayGuard::<()>::layer(MemoryNonceStore::new(10));
    assert!(format!("{verified:?}").contains("source: \"VerifiedSignature\""));
}
