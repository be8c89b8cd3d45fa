//! Tranzila signing: `TranzilaSigningLayer` on a request vs the raw cost of the scheme (40
//! bytes of OS randomness, hex, one HMAC-SHA256 keyed with secret + time + nonce, hex).
//! Target: ratio (layer / raw) <= 1.5.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use bytes::Bytes;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use hmac::{Hmac, KeyInit, Mac};
use http::Request;
use http_body_util::Empty;
use sha2::Sha256;
use tollgate_benches::alloc::{CountingAlloc, allocations_per_call, allocations_per_call_with};
use tollgate_benches::echo::Passthrough;
use tollgate_benches::exec::Executor;
use tollgate_benches::results::record;
use tollgate_core::{Secret, Upstream};
use tollgate_tranzila::{TranzilaCredentials, TranzilaSigningLayer, verify_access_token};
use tower_layer::Layer;
use tower_service::Service;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

const APP_KEY: &str = "pub_app_key_demo";
const SECRET: &str = "private_secret_demo";
const TIME: &[u8; 10] = b"1700000000";

/// The scheme with nothing around it: the nonce and token in stack buffers.
fn raw_sign() -> ([u8; 80], [u8; 64]) {
    let mut random = [0u8; 40];
    getrandom::fill(&mut random).unwrap();
    let mut nonce = [0u8; 80];
    hex::encode_to_slice(random, &mut nonce).unwrap();
    let mut key = [0u8; SECRET.len() + 10 + 80];
    key[..SECRET.len()].copy_from_slice(SECRET.as_bytes());
    key[SECRET.len()..SECRET.len() + 10].copy_from_slice(TIME);
    key[SECRET.len() + 10..].copy_from_slice(&nonce);
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(APP_KEY.as_bytes());
    let mut token = [0u8; 64];
    hex::encode_to_slice(mac.finalize().into_bytes(), &mut token).unwrap();
    (nonce, token)
}

fn request() -> Request<Empty<Bytes>> {
    Request::post("https://api.tranzila.com/v1/transaction/credit_card/create")
        .header("content-type", "application/json")
        .body(Empty::new())
        .unwrap()
}

fn tranzila(c: &mut Criterion) {
    let exec = Executor::new();
    let credentials = TranzilaCredentials::new(APP_KEY, Secret::from_string(SECRET)).unwrap();
    let mut signing = TranzilaSigningLayer::new(credentials, Upstream::tranzila())
        .unwrap()
        .layer(Passthrough);
    let mut sign = |request| {
        exec.block_on(std::future::poll_fn(|cx| {
            Service::<Request<Empty<Bytes>>>::poll_ready(&mut signing, cx)
        }))
        .unwrap();
        exec.block_on(signing.call(request)).unwrap()
    };

    // The layer's headers verify; the raw token is the scheme's.
    let signed = sign(request());
    let header = |name: &str| signed.headers()[name].to_str().unwrap();
    assert!(verify_access_token(
        APP_KEY,
        &Secret::from_string(SECRET),
        header("x-tranzila-api-request-time"),
        header("x-tranzila-api-nonce"),
        header("x-tranzila-api-access-token"),
    ));
    let (nonce, token) = raw_sign();
    assert!(verify_access_token(
        APP_KEY,
        &Secret::from_string(SECRET),
        std::str::from_utf8(TIME).unwrap(),
        std::str::from_utf8(&nonce).unwrap(),
        std::str::from_utf8(&token).unwrap(),
    ));
    record(
        "tranzila.tollgate.allocs",
        allocations_per_call_with(1000, request, &mut sign),
    );
    record("tranzila.raw.allocs", allocations_per_call(1000, raw_sign));

    let mut group = c.benchmark_group("tranzila");
    group
        .sample_size(30)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    group.bench_function("tollgate", |b| {
        b.iter_batched(request, &mut sign, BATCH);
    });
    group.bench_function("raw", |b| b.iter(|| black_box(raw_sign())));
    group.finish();
}

/// Small batches: `iter_batched` keeps every output until its batch ends, and outputs here are
/// whole requests or responses, so a large batch would charge the tollgate side (only) with the
/// heap growing fresh pages for them.
const BATCH: BatchSize = BatchSize::NumIterations(64);

criterion_group!(benches, tranzila);
criterion_main!(benches);
