//! Regression tests from the attacker's review of the seams fixes: each failed before its fix.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, Request, Response, StatusCode};
use http_body_util::Full;
use tokio::sync::Notify;
use tollgate::core::{BufferedBody, Key, KeyRing, ManualClock, Secret};
use tollgate::replay::{MemoryNonceStore, ReplayGuardLayer};
use tollgate::signature::{BodyHmac, Stripe, VerifySignatureLayer};
use tower::util::BoxCloneService;
use tower::{ServiceBuilder, ServiceExt, service_fn};

const NOW: u64 = 1_700_000_000;

type Svc = BoxCloneService<Request<Full<Bytes>>, Response<()>, Infallible>;

async fn status(svc: &Svc, request: Request<Full<Bytes>>) -> StatusCode {
    svc.clone().oneshot(request).await.unwrap().status()
}

/// MemoryNonceStore::release ignored the ClaimId (fixed: slots keep a tag of it). A handling that outlives its own claim
/// (slow handler, > max(retention, min_retention)) and then answers 5xx releases the claim of
/// ANOTHER request that was accepted and handled (2xx) in the meantime: the same signed body is
/// then accepted a third time, well inside the retention of the second acceptance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_release_without_id_frees_another_requests_claim() {
    let clock = ManualClock::new(NOW);
    let secret = Secret::from_string("onekey-secret");
    let ring = KeyRing::new(Key::new("k0", secret.clone()));
    let calls = Arc::new(AtomicUsize::new(0));
    let handled_ok = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(Notify::new());
    let entered = Arc::new(Notify::new());
    let (c, h, g, e) = (
        calls.clone(),
        handled_ok.clone(),
        gate.clone(),
        entered.clone(),
    );
    let service = ServiceBuilder::new()
        .layer(
            VerifySignatureLayer::new(BodyHmac::onekey(), ring)
                .unwrap()
                .clock(clock.clone()),
        )
        .layer(
            ReplayGuardLayer::new(MemoryNonceStore::new(1_024).with_clock(clock.clone()))
                .untimed_retention(Duration::from_secs(3600))
                .clock(clock.clone()),
        )
        .service(service_fn(move |_r: Request<BufferedBody>| {
            let (c, h, g, e) = (c.clone(), h.clone(), g.clone(), e.clone());
            async move {
                let mut response = Response::new(Full::new(Bytes::new()));
                if c.fetch_add(1, Ordering::SeqCst) == 0 {
                    // First handling: stuck on a slow dependency, then fails with no effect.
                    e.notify_one();
                    g.notified().await;
                    *response.status_mut() = StatusCode::BAD_GATEWAY;
                } else {
                    h.fetch_add(1, Ordering::SeqCst);
                }
                Ok::<_, Infallible>(response)
            }
        }));
    let svc: Svc = BoxCloneService::new(ServiceExt::<Request<Full<Bytes>>>::map_response(
        service,
        |r| r.map(|_| ()),
    ));
    let body = br#"{"event":"payout","id":"evt_1"}"#;
    let sig = BodyHmac::onekey().compute(&secret, body);
    let request = || {
        Request::post("/webhooks")
            .header("payload-signature", sig.clone())
            .body(Full::new(Bytes::from_static(body)))
            .unwrap()
    };

    // A: accepted, handler hangs.
    let a = {
        let svc = svc.clone();
        let r = request();
        tokio::spawn(async move { svc.oneshot(r).await.unwrap().status() })
    };
    entered.notified().await;
    // The claim's life ends (retention 3600 s) while A is still running.
    clock.advance(3_601);
    // B: the sender's (or attacker's) copy after the retention: accepted and handled (200).
    assert_eq!(status(&svc, request()).await, StatusCode::OK);
    // A finally fails with 502: the guard releases "its" claim -- the store has no ids, so it
    // removes B's live claim.
    gate.notify_one();
    assert_eq!(a.await.unwrap(), StatusCode::BAD_GATEWAY);
    // C, one second after B was accepted: must be refused (B's retention runs for an hour).
    clock.advance(1);
    let c_status = status(&svc, request()).await;
    assert_eq!(
        c_status,
        StatusCode::UNAUTHORIZED,
        "same signed body accepted again 1 s after a 2xx handling: handled {} times",
        handled_ok.load(Ordering::SeqCst)
    );
}

/// Stripe's replay identity was sha256(t[..20] || '.' || body) (fixed: the whole `t`): two
/// different signed messages (t texts differing after 20 characters) get one identity. Only a
/// sender can produce them, so this is a correctness (false `replayed`) issue, not a replay.
/// Since timestamps are read in their one decimal spelling, such zero-padded `t` texts are
/// refused outright (400 `timestamp_malformed`), so neither is accepted.
#[tokio::test]
async fn stripe_identity_truncates_the_signed_timestamp() {
    let clock = ManualClock::new(NOW);
    let secret = Secret::from_string("whsec_stripe");
    let ring = KeyRing::new(Key::new("k0", secret.clone()));
    let service = ServiceBuilder::new()
        .layer(
            VerifySignatureLayer::new(Stripe::new(), ring)
                .unwrap()
                .clock(clock.clone()),
        )
        .layer(
            ReplayGuardLayer::new(MemoryNonceStore::new(64).with_clock(clock.clone()))
                .clock(clock.clone()),
        )
        .service(service_fn(|_r: Request<BufferedBody>| async {
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
        }));
    let svc: Svc = BoxCloneService::new(ServiceExt::<Request<Full<Bytes>>>::map_response(
        service,
        |r| r.map(|_| ()),
    ));
    let body = b"{}";
    let signed = |t: &str| {
        // HMAC-SHA256(secret, t "." body) in hex, through the body scheme's plain HMAC.
        let mut payload = t.as_bytes().to_vec();
        payload.push(b'.');
        payload.extend_from_slice(body);
        let mac = BodyHmac::new(HeaderName::from_static("x")).compute(&secret, &payload);
        Request::post("/webhooks")
            .header("stripe-signature", format!("t={t},v1={mac}"))
            .body(Full::new(Bytes::from_static(body)))
            .unwrap()
    };
    let zeros = "0".repeat(20);
    assert_eq!(
        status(&svc, signed(&format!("{zeros}1700000000"))).await,
        400
    );
    assert_eq!(
        status(&svc, signed(&format!("{zeros}1700000001"))).await,
        400
    );
    // Distinct messages in the one spelling keep distinct identities.
    assert_eq!(status(&svc, signed("1700000000")).await, 200);
    assert_eq!(
        status(&svc, signed("1700000001")).await,
        200,
        "a distinct signed message was refused as a replay of another"
    );
}
