//! A flood of unique nonces at full speed through the replay guard on a memory store of
//! 100,000 claims: the store fills, then refuses with 503 `store_full` (never an accept it
//! cannot record), its memory stays at the bound it was built with, no unexpired claim is evicted to make
//! room, and it accepts again once claims expire.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::convert::Infallible;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use tollgate_core::{ManualClock, Rejection};
use tollgate_replay::{MemoryNonceStore, ReplayGuardLayer};
use tower::{Service, ServiceBuilder, ServiceExt, service_fn};

const NOW: u64 = 1_700_000_000;

async fn ok(_request: Request<Full<Bytes>>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from_static(b"ok"))))
}

/// The status and rejection code of one request through `service`.
async fn send<S, B>(service: &mut S, time: &str, nonce: &str) -> (StatusCode, String)
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>, Error = Infallible>,
{
    let request = common::tranzila_request("/api", time, nonce);
    let response = service.ready().await.unwrap().call(request).await.unwrap();
    let code = response
        .extensions()
        .get::<Rejection>()
        .map_or_else(String::new, |rejection| rejection.code().to_owned());
    (response.status(), code)
}

#[tokio::test]
async fn a_flood_of_unique_nonces_fills_the_store_then_is_refused_until_claims_expire() {
    let clock = ManualClock::new(NOW);
    let store = MemoryNonceStore::new(100_000).with_clock(clock.clone());
    let capacity = store.capacity();
    let memory = store.memory_bytes();
    assert!(capacity >= 100_000);
    let layer = ReplayGuardLayer::tranzila(store.clone()).clock(clock.clone());
    let mut service = ServiceBuilder::new().layer(layer).service(service_fn(ok));
    let time = NOW.to_string();

    // 10 % more unique nonces than the store can hold, one after the other.
    let total = capacity + capacity / 10;
    let mut accepted = Vec::with_capacity(capacity);
    let mut refused = Vec::new();
    let started = std::time::Instant::now();
    for n in 0..total as u64 {
        match send(&mut service, &time, &common::nonce(n)).await {
            (StatusCode::OK, _) => accepted.push(n),
            (StatusCode::SERVICE_UNAVAILABLE, code) => {
                assert_eq!(code, "store_full", "nonce {n}");
                refused.push(n);
            }
            other => panic!("nonce {n}: unexpected answer {other:?}"),
        }
    }
    let elapsed = started.elapsed();
    eprintln!(
        "nonce flood: {total} unique nonces in {elapsed:.2?} ({:.0}/s), {} accepted, {} refused \
         503 store_full; capacity {capacity}, store memory {memory} bytes",
        total as f64 / elapsed.as_secs_f64(),
        accepted.len(),
        refused.len(),
    );
    // Never more accepted than the store holds; keys spread over shards by hash, so a
    // shard may fill a little before the whole store does, never much.
    assert!(accepted.len() <= capacity, "{} accepted", accepted.len());
    assert!(
        accepted.len() >= capacity * 95 / 100,
        "only {} of {capacity} accepted before the store refused",
        accepted.len()
    );
    assert_eq!(accepted.len() + refused.len(), total);
    assert!(!refused.is_empty());
    // The store holds exactly what it accepted, in the memory it was built with.
    assert_eq!(store.len(), accepted.len());
    assert_eq!(store.memory_bytes(), memory);

    // No unexpired claim was evicted to make room: every accepted nonce is still a replay,
    // and a refused one is still refused (not accepted late, not evicting another).
    for &n in &accepted {
        assert_eq!(
            send(&mut service, &time, &common::nonce(n)).await,
            (StatusCode::UNAUTHORIZED, "replayed".to_owned()),
            "accepted nonce {n} was evicted"
        );
    }
    for &n in refused.iter().take(1_000) {
        assert_eq!(
            send(&mut service, &time, &common::nonce(n)).await.0,
            StatusCode::SERVICE_UNAVAILABLE,
            "refused nonce {n}"
        );
    }
    assert_eq!(store.len(), accepted.len());

    // Once the claims expire (the request window and the store's minimum retention), new
    // requests are accepted again, in the same memory.
    clock.advance(3_600);
    let later = (NOW + 3_600).to_string();
    for n in 0..1_000u64 {
        assert_eq!(
            send(&mut service, &later, &common::nonce(u64::MAX - n)).await,
            (StatusCode::OK, String::new()),
            "fresh nonce {n} after expiry"
        );
    }
    assert_eq!(store.memory_bytes(), memory);
}

/// The same flood from 8 tasks at once on a 2-worker runtime, each with its own clone of the
/// service (as a server's connections have): the store still never accepts more than it
/// holds, refuses the rest with 503 `store_full`, and keeps every accepted claim.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concurrent_flood_never_accepts_more_than_the_store_holds() {
    const TASKS: u64 = 8;
    let clock = ManualClock::new(NOW);
    let store = MemoryNonceStore::new(100_000).with_clock(clock.clone());
    let capacity = store.capacity() as u64;
    let memory = store.memory_bytes();
    let layer = ReplayGuardLayer::tranzila(store.clone()).clock(clock.clone());
    let service = ServiceBuilder::new().layer(layer).service(service_fn(ok));
    let time = NOW.to_string();

    let per_task = (capacity + capacity / 10) / TASKS + 1;
    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let mut service = service.clone();
        let time = time.clone();
        tasks.push(tokio::spawn(async move {
            let (mut accepted, mut refused) = (Vec::new(), 0u64);
            for i in 0..per_task {
                let n = task * per_task + i;
                match send(&mut service, &time, &common::nonce(n)).await {
                    (StatusCode::OK, _) => accepted.push(n),
                    (StatusCode::SERVICE_UNAVAILABLE, code) => {
                        assert_eq!(code, "store_full", "nonce {n}");
                        refused += 1;
                    }
                    other => panic!("nonce {n}: unexpected answer {other:?}"),
                }
            }
            (accepted, refused)
        }));
    }
    let mut accepted = Vec::new();
    let mut refused = 0;
    for task in tasks {
        let (mut a, r) = task.await.unwrap();
        accepted.append(&mut a);
        refused += r;
    }
    assert!(
        accepted.len() as u64 <= capacity,
        "{} accepted",
        accepted.len()
    );
    assert!(accepted.len() as u64 >= capacity * 95 / 100);
    assert_eq!(accepted.len() as u64 + refused, per_task * TASKS);
    assert_eq!(store.len(), accepted.len());
    assert_eq!(store.memory_bytes(), memory);

    // Every accepted claim is still held: its resend is a replay.
    let mut service = service;
    for &n in accepted.iter().step_by(7) {
        assert_eq!(
            send(&mut service, &time, &common::nonce(n)).await,
            (StatusCode::UNAUTHORIZED, "replayed".to_owned()),
            "accepted nonce {n} was evicted"
        );
    }
}
