//! The rate and concurrency limits are shared by every clone of a client.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tollgate_client::{CallError, ClientBuilder};
use tollgate_test_support::tls::{HttpsServer, TestPki, handler};
use tower::ServiceExt as _;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rate_limit_is_one_budget_for_all_clones() {
    let pki = TestPki::generate();
    let arrivals = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&arrivals);
    let server = HttpsServer::start(
        &pki.good,
        handler(move |_request| {
            record.lock().unwrap().push(Instant::now());
            async { respond(200) }
        }),
    )
    .await;
    let client = ClientBuilder::new("acme")
        .base_url(&url(&server))
        .tls(trust(&pki))
        .rate_limit(5, Duration::from_secs(1))
        .build(tower::layer::util::Identity::new())
        .unwrap();

    let started = Instant::now();
    let calls: Vec<_> = (0..10)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.oneshot(get("/v1/price")).await })
        })
        .collect();
    for call in calls {
        assert_eq!(call.await.unwrap().unwrap().status(), 200);
    }
    let mut arrivals = arrivals.lock().unwrap().clone();
    arrivals.sort();
    assert_eq!(arrivals.len(), 10);
    // Never more than 5 in the first second: the 6th to 10th waited for the window.
    for late in &arrivals[5..] {
        let after = late.duration_since(started);
        assert!(after >= Duration::from_secs(1), "{after:?}");
    }
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_rate_limit_wait_past_the_deadline_fails_at_once() {
    let pki = TestPki::generate();
    let server = HttpsServer::start(&pki.good, handler(|_request| async { respond(200) })).await;
    let client = ClientBuilder::new("acme")
        .base_url(&url(&server))
        .tls(trust(&pki))
        .rate_limit(1, Duration::from_secs(60))
        .deadline(Duration::from_secs(5))
        .build(tower::layer::util::Identity::new())
        .unwrap();
    assert_eq!(
        client.clone().oneshot(get("/")).await.unwrap().status(),
        200
    );
    let started = Instant::now();
    let error = client.oneshot(get("/")).await.unwrap_err();
    assert!(
        matches!(error, CallError::DeadlineExceeded { after } if after == Duration::from_secs(5)),
        "{error:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(server.requests(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_concurrency_limit_is_shared_by_all_clones() {
    let pki = TestPki::generate();
    let in_flight = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let (now, peak) = (Arc::clone(&in_flight), Arc::clone(&most));
    let server = HttpsServer::start(
        &pki.good,
        handler(move |_request| {
            let (now, peak) = (Arc::clone(&now), Arc::clone(&peak));
            async move {
                let current = now.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(current, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(100)).await;
                now.fetch_sub(1, Ordering::SeqCst);
                respond(200)
            }
        }),
    )
    .await;
    let client = ClientBuilder::new("acme")
        .base_url(&url(&server))
        .tls(trust(&pki))
        .concurrency_limit(2)
        .build(tower::layer::util::Identity::new())
        .unwrap();

    let calls: Vec<_> = (0..6)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.oneshot(get("/v1/price")).await })
        })
        .collect();
    for call in calls {
        assert_eq!(call.await.unwrap().unwrap().status(), 200);
    }
    assert_eq!(server.requests(), 6);
    assert_eq!(most.load(Ordering::SeqCst), 2);
}
