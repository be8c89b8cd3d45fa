//! `TranzilaVerifyLayer` as a tower service over a `service_fn`: the eight checks in order,
//! the refusals (core's one message per code), the facts it inserts and the claim its built-in
//! replay guard makes (moved out of `src/verify.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{Empty, Full};
use tollgate_core::{
    ManualClock, Rejection, RejectionResponder, RequestTimestamp, Secret, VerifiedSignature,
};
use tollgate_replay::replay_key;
use tollgate_tranzila::{
    ACCESS_TOKEN, APP_KEY, NONCE, REQUEST_TIME, SCHEME, TranzilaCredentials, TranzilaVerify,
    TranzilaVerifyLayer,
};
use tower::{Service, ServiceBuilder, ServiceExt, service_fn};

use common::verifying::*;

#[tokio::test]
async fn accepts_the_vector_inserts_facts_and_claims_namespaced_nonce() {
    let store = Arc::new(TestStore::default());
    let layer = layer(store.clone(), 1_700_000_100);
    let outcome = send(&layer, signed().body(Full::default()).unwrap()).await;
    assert_eq!(outcome.status, StatusCode::OK);
    assert_eq!(outcome.body, "inner");
    let verified = outcome.verified.unwrap();
    assert_eq!(verified.scheme(), "tranzila");
    assert_eq!(verified.key_id(), APP);
    assert_eq!(verified.timestamp(), Some(1_700_000_000));
    assert_eq!(verified.message_id().unwrap(), NONCE_HEX.as_bytes());
    assert_eq!(verified.signature().as_ref(), hex::decode(TOKEN).unwrap());
    assert_eq!(outcome.timestamp, Some(RequestTimestamp(1_700_000_000)));
    // tollgate-replay's one key format, claimed by the built-in guard: the nonce in the
    // `tranzila` namespace (the message, not the app key).
    let claims = store.claims.lock().unwrap();
    let key = replay_key(SCHEME.as_bytes(), b"", NONCE_HEX.as_bytes());
    assert_eq!(claims.get(&key), Some(&1_700_000_300));
    assert_eq!(claims.len(), 1);
}

#[tokio::test]
async fn same_request_twice_is_replayed() {
    let store = Arc::new(TestStore::default());
    let layer = layer(store, 1_700_000_000);
    let first = send(&layer, signed().body(Full::default()).unwrap()).await;
    assert_eq!(first.status, StatusCode::OK);
    // Another body with the same headers: the token does not cover it, the nonce does.
    let second = send(
        &layer,
        signed()
            .body(Full::new(Bytes::from_static(b"{\"amount\":999}")))
            .unwrap(),
    )
    .await;
    assert_eq!(second.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        second.body,
        json("replayed", "request was already received")
    );
    assert!(second.verified.is_none());
}

#[tokio::test]
async fn malformed_headers_are_400_and_claim_nothing() {
    let store = Arc::new(TestStore::default());
    let layer = layer(store.clone(), 1_700_000_000);
    let cases: Vec<(Request<Full<Bytes>>, &str, &str)> = vec![
        (
            Request::post("/").body(Full::default()).unwrap(),
            "header_malformed",
            "a required header is missing or malformed: `x-tranzila-api-app-key` must be present once, as visible ASCII",
        ),
        (
            signed()
                .header("x-tranzila-api-nonce", NONCE_HEX)
                .body(Full::default())
                .unwrap(),
            "header_malformed",
            "a required header is missing or malformed: `x-tranzila-api-nonce` must be present once, as visible ASCII",
        ),
        (
            {
                let mut r = signed().body(Full::default()).unwrap();
                r.headers_mut().insert(
                    "x-tranzila-api-access-token",
                    http::HeaderValue::from_bytes(b"\xfftoken").unwrap(),
                );
                r
            },
            "header_malformed",
            "a required header is missing or malformed: `x-tranzila-api-access-token` must be present once, as visible ASCII",
        ),
        (
            {
                let mut r = signed().body(Full::default()).unwrap();
                r.headers_mut().insert(
                    "x-tranzila-api-nonce",
                    http::HeaderValue::from_str(&NONCE_HEX[..79]).unwrap(),
                );
                r
            },
            "nonce_malformed",
            "nonce is missing or malformed: `x-tranzila-api-nonce` must be exactly 80 hexadecimal characters",
        ),
        (
            {
                let mut r = signed().body(Full::default()).unwrap();
                r.headers_mut().insert(
                    "x-tranzila-api-nonce",
                    http::HeaderValue::from_str(&format!("{}g", &NONCE_HEX[..79])).unwrap(),
                );
                r
            },
            "nonce_malformed",
            "nonce is missing or malformed: `x-tranzila-api-nonce` must be exactly 80 hexadecimal characters",
        ),
        (
            {
                let mut r = signed().body(Full::default()).unwrap();
                r.headers_mut().insert(
                    "x-tranzila-api-request-time",
                    http::HeaderValue::from_static("1700000000000.5"),
                );
                r
            },
            "timestamp_malformed",
            "timestamp must be Unix seconds as ASCII digits",
        ),
        (
            {
                let mut r = signed().body(Full::default()).unwrap();
                r.headers_mut().insert(
                    "x-tranzila-api-access-token",
                    http::HeaderValue::from_static("zz"),
                );
                r
            },
            "header_malformed",
            "a required header is missing or malformed: `x-tranzila-api-access-token` must be 64 hexadecimal characters",
        ),
    ];
    for (request, code, message) in cases {
        let outcome = send(&layer, request).await;
        assert_eq!(outcome.status, StatusCode::BAD_REQUEST, "{code}");
        assert_eq!(outcome.body, json(code, message));
    }
    assert!(store.claims.lock().unwrap().is_empty());
}

#[tokio::test]
async fn unknown_key_bad_token_and_window_are_401_without_claiming() {
    let store = Arc::new(TestStore::default());
    let check = |now: u64, request: Request<Full<Bytes>>| {
        let layer = layer(store.clone(), now);
        async move { send(&layer, request).await }
    };

    let mut unknown = signed().body(Full::default()).unwrap();
    unknown.headers_mut().insert(
        "x-tranzila-api-app-key",
        http::HeaderValue::from_static("someone_else"),
    );
    let outcome = check(1_700_000_000, unknown).await;
    assert_eq!(outcome.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        outcome.body,
        json("tranzila_unknown_app_key", "app key is not known")
    );

    let mut forged = signed().body(Full::default()).unwrap();
    forged.headers_mut().insert(
        "x-tranzila-api-access-token",
        http::HeaderValue::from_str(&TOKEN.replace('8', "9")).unwrap(),
    );
    let outcome = check(1_700_000_000, forged).await;
    assert_eq!(outcome.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        outcome.body,
        json(
            "signature_invalid",
            "the signature does not match: `x-tranzila-api-access-token`"
        )
    );

    // Inclusive window edges, both sides.
    for (now, status) in [
        (1_700_000_300, StatusCode::OK),
        (1_699_999_700, StatusCode::OK),
    ] {
        let fresh = Arc::new(TestStore::default());
        let outcome = send(&layer(fresh, now), signed().body(Full::default()).unwrap()).await;
        assert_eq!(outcome.status, status, "now = {now}");
    }
    let outcome = check(1_700_000_301, signed().body(Full::default()).unwrap()).await;
    assert_eq!(outcome.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        outcome.body,
        json(
            "timestamp_out_of_window",
            "timestamp is outside the accepted window: too old"
        )
    );
    let outcome = check(1_699_999_699, signed().body(Full::default()).unwrap()).await;
    assert_eq!(
        outcome.body,
        json(
            "timestamp_out_of_window",
            "timestamp is outside the accepted window: too far in the future"
        )
    );
    assert!(store.claims.lock().unwrap().is_empty());
}

#[tokio::test]
async fn store_failure_is_503_and_never_reaches_inner() {
    let store = Arc::new(TestStore {
        fail: true,
        ..TestStore::default()
    });
    let outcome = send(
        &layer(store, 1_700_000_000),
        signed().body(Full::default()).unwrap(),
    )
    .await;
    assert_eq!(outcome.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        outcome.body,
        json(
            "store_unavailable",
            "replay protection is temporarily unavailable"
        )
    );
    assert!(!outcome.body.contains("connection refused"));
}

#[tokio::test]
async fn closure_lookup_rotates_and_custom_rejection_keeps_extension() {
    let current = Arc::new(Mutex::new(Some(Secret::from_string("old"))));
    let lookup = {
        let current = current.clone();
        move |app_key: &str| {
            if app_key == APP {
                current.lock().unwrap().clone()
            } else {
                None
            }
        }
    };
    let layer = TranzilaVerifyLayer::new(lookup, Arc::new(TestStore::default()))
        .unwrap()
        .clock(ManualClock::new(1_700_000_000))
        // A closure is a responder.
        .on_rejection(|r: &Rejection| {
            let mut response = Response::new(Bytes::from(format!("no: {}", r.code())));
            *response.status_mut() = r.status();
            response
        });
    let outcome = send(&layer, signed().body(Full::default()).unwrap()).await;
    assert_eq!(outcome.status, StatusCode::UNAUTHORIZED);
    assert_eq!(outcome.body, "no: signature_invalid");

    *current.lock().unwrap() = Some(Secret::from_string(SECRET));
    let outcome = send(&layer, signed().body(Full::default()).unwrap()).await;
    assert_eq!(outcome.status, StatusCode::OK);
}

#[tokio::test]
async fn rejection_is_in_response_extensions() {
    let service = ServiceBuilder::new()
        .layer(layer(Arc::new(TestStore::default()), 1_700_000_000))
        .service(service_fn(|_: Request<Empty<Bytes>>| async {
            Ok::<_, Infallible>(Response::new(Empty::<Bytes>::new()))
        }));
    let response = service.oneshot(Request::new(Empty::new())).await.unwrap();
    let rejection = response.extensions().get::<Rejection>().unwrap();
    assert_eq!(rejection.code(), "header_malformed");
    assert_eq!(response.headers()["content-type"], "application/json");
}

proptest::proptest! {
    #[test]
    fn arbitrary_headers_are_refused_never_panic(
        app_key in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..20),
        time in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..25),
        nonce in proptest::collection::vec(proptest::prelude::any::<u8>(), 78..82),
        token in proptest::collection::vec(proptest::prelude::any::<u8>(), 62..66),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let mut request = Request::post("/").body(Full::default()).unwrap();
        for (name, value) in [
            (&APP_KEY, app_key),
            (&REQUEST_TIME, time),
            (&NONCE, nonce),
            (&ACCESS_TOKEN, token),
        ] {
            if let Ok(value) = http::HeaderValue::from_bytes(&value) {
                request.headers_mut().insert(name.clone(), value);
            }
        }
        let store = Arc::new(TestStore::default());
        let outcome = runtime.block_on(send(&layer(store.clone(), 1_700_000_000), request));
        proptest::prop_assert!(
            outcome.status == StatusCode::BAD_REQUEST || outcome.status == StatusCode::UNAUTHORIZED,
            "{}", outcome.status
        );
        proptest::prop_assert!(
            outcome.body.starts_with(r#"{"error":{"code":""#),
            "{}",
            outcome.body
        );
        proptest::prop_assert!(store.claims.lock().unwrap().is_empty());
    }
}

#[tokio::test]
async fn duplicate_headers_in_any_case_are_refused_and_claim_nothing() {
    let store = Arc::new(TestStore::default());
    let layer = layer(store.clone(), 1_700_000_000);
    for (name, value) in [
        ("X-tranzila-api-app-key", APP),
        ("X-TRANZILA-API-REQUEST-TIME", TIME),
        ("X-Tranzila-Api-Nonce", NONCE_HEX),
        ("x-TRANZILA-api-ACCESS-token", TOKEN),
    ] {
        // The same value twice, under another spelling of the name: still two copies.
        let mut request = signed().body(Full::default()).unwrap();
        request.headers_mut().append(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            http::HeaderValue::from_static(value),
        );
        let lower = name.to_ascii_lowercase();
        assert_eq!(request.headers().get_all(&lower).iter().count(), 2);
        let outcome = send(&layer, request).await;
        assert_eq!(outcome.status, StatusCode::BAD_REQUEST, "{name}");
        assert_eq!(
            outcome.body,
            json(
                "header_malformed",
                &format!(
                    "a required header is missing or malformed: `{lower}` must be present once, as visible ASCII"
                )
            )
        );
    }
    assert!(store.claims.lock().unwrap().is_empty());
    // The single copies, in the PHP documentation's spelling, are accepted.
    let mut request = Request::post("/").body(Full::default()).unwrap();
    for (name, value) in [
        ("X-tranzila-api-app-key", APP),
        ("X-tranzila-api-request-time", TIME),
        ("X-tranzila-api-nonce", NONCE_HEX),
        ("X-tranzila-api-access-token", TOKEN),
    ] {
        request.headers_mut().insert(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            http::HeaderValue::from_static(value),
        );
    }
    assert_eq!(send(&layer, request).await.status, StatusCode::OK);
}

#[tokio::test]
async fn non_ascii_app_keys_are_refused_as_malformed() {
    let store = Arc::new(TestStore::default());
    let layer = layer(store.clone(), 1_700_000_000);
    for app_key in [
        "מפתח".as_bytes(),
        b"caf\xc3\xa9",
        b"\x80\xff",
        b"with space",
    ] {
        let mut request = signed().body(Full::default()).unwrap();
        request.headers_mut().insert(
            "x-tranzila-api-app-key",
            http::HeaderValue::from_bytes(app_key).unwrap(),
        );
        let outcome = send(&layer, request).await;
        assert_eq!(
            outcome.body,
            json(
                "header_malformed",
                "a required header is missing or malformed: `x-tranzila-api-app-key` must be present once, as visible ASCII"
            ),
            "{app_key:?}"
        );
    }
    assert!(store.claims.lock().unwrap().is_empty());
}

#[tokio::test]
async fn replay_refused_when_the_verifier_clock_is_far_from_the_store_clock() {
    // The verifier reads a manual clock in 2023, the memory store the system clock: the
    // claim's expiry is long past by the store's clock, and the store holds it anyway.
    let store = tollgate_replay::MemoryNonceStore::new(100);
    let layer = TranzilaVerifyLayer::new(TranzilaCredentials::new(APP, SECRET).unwrap(), store)
        .unwrap()
        .clock(ManualClock::new(1_700_000_000));
    assert_eq!(
        send(&layer, signed().body(Full::default()).unwrap())
            .await
            .status,
        StatusCode::OK
    );
    let again = send(&layer, signed().body(Full::default()).unwrap()).await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED);
    assert_eq!(again.body, json("replayed", "request was already received"));
}

#[tokio::test]
async fn skewed_verifiers_sharing_a_store_refuse_the_replay() {
    // Verifier A's clock is 200 s ahead of B's; the shared store reads A's clock. The
    // vector's time is as far ahead as A accepts, so A asks for expiry NOW + 800 (A's
    // clock); B accepts the time until its clock reads NOW + 800, when the store's reads
    // NOW + 1000.
    let now = 1_700_000_000 - 500;
    let a_clock = ManualClock::new(now + 200);
    let b_clock = ManualClock::new(now);
    let store = Arc::new(
        tollgate_replay::MemoryNonceStore::new(100)
            .with_clock(a_clock.clone())
            .with_min_retention(tollgate_replay::DEFAULT_SHARED_MIN_RETENTION),
    );
    let verifier = |clock: &ManualClock| {
        TranzilaVerifyLayer::new(
            TranzilaCredentials::new(APP, SECRET).unwrap(),
            store.clone(),
        )
        .unwrap()
        .clock(clock.clone())
    };
    let (a, b) = (verifier(&a_clock), verifier(&b_clock));
    assert_eq!(
        send(&a, signed().body(Full::default()).unwrap())
            .await
            .status,
        StatusCode::OK
    );
    for elapsed in [200, 500, 700, 800] {
        a_clock.set(now + 200 + elapsed);
        b_clock.set(now + elapsed);
        let outcome = send(&b, signed().body(Full::default()).unwrap()).await;
        assert_eq!(
            outcome.body,
            json("replayed", "request was already received"),
            "{elapsed} s later"
        );
    }
    b_clock.set(now + 801);
    let outcome = send(&b, signed().body(Full::default()).unwrap()).await;
    assert_eq!(
        outcome.body,
        json(
            "timestamp_out_of_window",
            "timestamp is outside the accepted window: too old"
        )
    );
}

#[tokio::test]
async fn clock_skew_margin_lengthens_the_requested_expiry() {
    let store = Arc::new(TestStore::default());
    let layer = layer(store.clone(), 1_700_000_000).clock_skew_margin(Duration::from_secs(90));
    assert_eq!(
        send(&layer, signed().body(Full::default()).unwrap())
            .await
            .status,
        StatusCode::OK
    );
    let claims = store.claims.lock().unwrap();
    assert_eq!(
        claims.values().copied().collect::<Vec<_>>(),
        [1_700_000_390]
    );
    assert!(format!("{layer:?}").contains("clock_skew_margin_secs: 90"));
}

#[test]
fn debug_never_shows_secrets() {
    let layer = layer(Arc::new(TestStore::default()), 0);
    let debug = format!("{layer:?}");
    assert!(!debug.contains(SECRET), "{debug}");
    assert!(debug.contains("tolerance_secs: 300"), "{debug}");
}

#[test]
fn services_are_send_sync_clone() {
    fn assert_send_sync_clone<T: Send + Sync + Clone>() {}
    assert_send_sync_clone::<TranzilaVerifyLayer>();
    assert_send_sync_clone::<TranzilaVerify<()>>();
}

/// The checks run in the documented order: the window (6) before the token (7), the token
/// before the claim (8); a refused request claims nothing.
#[tokio::test]
async fn window_then_token_then_claim() {
    let store = Arc::new(TestStore::default());
    let forged = || {
        let mut request = signed().body(Full::default()).unwrap();
        request.headers_mut().insert(
            "x-tranzila-api-access-token",
            http::HeaderValue::from_str(&TOKEN.replace('8', "9")).unwrap(),
        );
        request
    };
    // Stale and forged: the window answers.
    let outcome = send(&layer(store.clone(), 1_700_000_301), forged()).await;
    assert_eq!(outcome.status, StatusCode::UNAUTHORIZED);
    assert!(
        outcome.body.contains("timestamp_out_of_window"),
        "{}",
        outcome.body
    );
    // Fresh and forged: the token answers, and the nonce is not burnt.
    let layer = layer(store.clone(), 1_700_000_000);
    let outcome = send(&layer, forged()).await;
    assert!(
        outcome.body.contains("signature_invalid"),
        "{}",
        outcome.body
    );
    assert!(store.claims.lock().unwrap().is_empty());
    assert_eq!(
        send(&layer, signed().body(Full::default()).unwrap())
            .await
            .status,
        StatusCode::OK
    );
    // Claimed, then forged: still the token that answers (a forgery never reaches the store).
    let outcome = send(&layer, forged()).await;
    assert!(
        outcome.body.contains("signature_invalid"),
        "{}",
        outcome.body
    );
}

/// One claim per nonce, in tollgate-replay's one key format: the same nonce signed under a
/// second app key is a replay, and a `ReplayGuardLayer::new` on the same store sees the
/// Tranzila claim as its own.
#[tokio::test]
async fn a_nonce_is_claimed_once_whatever_the_app_key() {
    let store = Arc::new(tollgate_replay::MemoryNonceStore::new(100));
    let clock = ManualClock::new(1_700_000_000);
    let partners = vec![
        TranzilaCredentials::new(APP, SECRET).unwrap(),
        TranzilaCredentials::new("second_partner", "second_secret").unwrap(),
    ];
    let layer = TranzilaVerifyLayer::new(partners.clone(), store.clone())
        .unwrap()
        .clock(clock.clone());
    assert_eq!(
        send(&layer, signed().body(Full::default()).unwrap())
            .await
            .status,
        StatusCode::OK
    );
    let mut second = signed().body(Full::default()).unwrap();
    let token = partners[1].access_token(TIME, NONCE_HEX);
    second.headers_mut().insert(
        "x-tranzila-api-app-key",
        http::HeaderValue::from_static("second_partner"),
    );
    second.headers_mut().insert(
        "x-tranzila-api-access-token",
        http::HeaderValue::from_str(&token).unwrap(),
    );
    let outcome = send(&layer, second).await;
    assert_eq!(
        outcome.body,
        json("replayed", "request was already received")
    );
    assert_eq!(store.len(), 1);

    // A guard of its own on the same store, reading a Tranzila VerifiedSignature: the same key.
    let guard = tollgate_replay::ReplayGuardLayer::new(store.clone()).clock(clock);
    let mut request = Request::post("/").body(Full::<Bytes>::default()).unwrap();
    request.extensions_mut().insert(
        VerifiedSignature::from_slice(SCHEME, "anyone".into(), &[0; 32])
            .with_timestamp(1_700_000_000)
            .with_message_id(Bytes::from_static(NONCE_HEX.as_bytes())),
    );
    let response = ServiceBuilder::new()
        .layer(guard)
        .service(service_fn(|_: Request<Full<Bytes>>| async {
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
        }))
        .oneshot(request)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(store.len(), 1);
}

/// A nonce stays spent whatever the answer, 5xx and 429 included: the token does not sign
/// the body, so a released nonce would carry any other request (found by an attacker's review
/// of the move onto the replay guard, which releases claims of body-signing schemes).
#[tokio::test]
async fn a_failed_handling_keeps_the_nonce_spent() {
    let store = tollgate_replay::MemoryNonceStore::new(100);
    let layer = TranzilaVerifyLayer::new(TranzilaCredentials::new(APP, SECRET).unwrap(), store)
        .unwrap()
        .clock(ManualClock::new(1_700_000_000));
    let answers = Arc::new(Mutex::new(vec![
        StatusCode::OK,
        StatusCode::TOO_MANY_REQUESTS,
        StatusCode::SERVICE_UNAVAILABLE,
    ]));
    let service =
        ServiceBuilder::new()
            .layer(layer)
            .service(service_fn(move |_: Request<Full<Bytes>>| {
                let status = answers.lock().unwrap().pop().unwrap();
                async move {
                    let mut response = Response::new(Full::new(Bytes::new()));
                    *response.status_mut() = status;
                    Ok::<_, Infallible>(response)
                }
            }));
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let response = service
            .clone()
            .oneshot(signed().body(Full::default()).unwrap())
            .await
            .unwrap();
        statuses.push(response.status());
    }
    assert_eq!(
        statuses,
        [
            StatusCode::SERVICE_UNAVAILABLE,
            StatusCode::UNAUTHORIZED,
            StatusCode::UNAUTHORIZED,
            StatusCode::UNAUTHORIZED
        ]
    );
}

/// `on_rejection` reaches the built-in guard: its refusals use the same responder.
#[tokio::test]
async fn on_rejection_answers_the_guard_s_refusals_too() {
    let layer = layer(Arc::new(TestStore::default()), 1_700_000_000)
        .on_rejection(RejectionResponder::grpc());
    assert_eq!(
        send(&layer, signed().body(Full::default()).unwrap())
            .await
            .status,
        StatusCode::OK
    );
    let service =
        ServiceBuilder::new()
            .layer(layer)
            .service(service_fn(|_: Request<Full<Bytes>>| async {
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
            }));
    let response = service
        .oneshot(signed().body(Full::default()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.headers()["content-type"], "application/grpc");
    assert_eq!(response.headers()["grpc-status"], "16");
    assert_eq!(
        response
            .extensions()
            .get::<Rejection>()
            .map(Rejection::code),
        Some("replayed")
    );
}

#[test]
fn a_finished_future_stays_pending() {
    let layer = layer(Arc::new(TestStore::default()), 1_700_000_000);
    let mut service = TranzilaVerify::new(
        service_fn(|_: Request<Full<Bytes>>| async {
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
        }),
        &layer,
    );
    for (request, status) in [
        (
            Request::post("/").body(Full::default()).unwrap(),
            StatusCode::BAD_REQUEST,
        ),
        (signed().body(Full::default()).unwrap(), StatusCode::OK),
        (
            signed().body(Full::default()).unwrap(),
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
    let _: &mut _ = service.get_mut();
    let _: &_ = service.get_ref();
    let _inner = service.into_inner();
}
