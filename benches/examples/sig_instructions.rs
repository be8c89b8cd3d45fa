//! Runs the signature bench's 1 KiB request N times, for instruction counts under valgrind:
//! `valgrind --tool=callgrind target/release/examples/sig_instructions <case> <n>`, once with N
//! and once with 0; the difference divided by N is the cost of one request.
//!
//! Cases (the same request and services as `benches/signature.rs`): `layer` (built, then
//! through `VerifySignatureLayer` over the echo service), `echo` (built, then through the echo
//! service alone: what building and dropping the request costs), `raw` (raw `hmac` + `sha2`
//! over the same body, as the bench's `raw-hmac`), `handwritten` (the same check written by
//! hand, `tollgate_benches::handwritten_verify`, over the echo service) and `allocs` (prints
//! the layer's allocations per request, outside valgrind).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::hint::black_box;

use bytes::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use http::{Request, StatusCode};
use http_body_util::Full;
use sha2::Sha256;
use tollgate_benches::alloc::{CountingAlloc, allocations_per_call_with};
use tollgate_benches::echo::Echo;
use tollgate_benches::exec::Executor;
use tollgate_benches::handwritten_verify::HandwrittenVerifyLayer;
use tollgate_core::{Key, KeyRing, Secret};
use tollgate_signature::{BodyHmac, VerifySignatureLayer};
use tower_layer::Layer;
use tower_service::Service;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

const SECRET: &str = "onekey-api-signature-secret";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let case = args[1].as_str();
    let n: usize = args[2].parse().unwrap();
    let exec = Executor::new();
    let scheme = BodyHmac::onekey();
    let ring = KeyRing::new(Key::new("2026-11", Secret::from_string(SECRET)));
    let mut verify = VerifySignatureLayer::new(scheme.clone(), ring)
        .unwrap()
        .body_limit(2 << 20)
        .layer(Echo);
    let body = Bytes::from(
        (0..1usize << 10)
            .map(|i| b"{\"amount\":\"12.50\"}"[i % 18])
            .collect::<Vec<u8>>(),
    );
    let signature = scheme.compute(&Secret::from_string(SECRET), &body);
    let tag = hex::decode(&signature).unwrap();
    let request = || {
        Request::post("https://api.example.com/cashout")
            .header("content-type", "application/json")
            .header("user-agent", "bench")
            .header("content-length", body.len())
            .header(scheme.header(), signature.as_str())
            .body(Full::new(body.clone()))
            .unwrap()
    };
    let mut call = |request| {
        exec.block_on(std::future::poll_fn(|cx| {
            Service::<Request<Full<Bytes>>>::poll_ready(&mut verify, cx)
        }))
        .unwrap();
        exec.block_on(verify.call(request)).unwrap().status()
    };
    match case {
        "layer" => {
            for _ in 0..n {
                assert_eq!(call(black_box(request())), StatusCode::OK);
            }
        }
        "echo" => {
            let mut echo = Echo;
            for _ in 0..n {
                let response = exec
                    .block_on(Service::<Request<Full<Bytes>>>::call(
                        &mut echo,
                        black_box(request()),
                    ))
                    .unwrap();
                assert_eq!(response.status(), StatusCode::OK);
            }
        }
        "raw" => {
            for _ in 0..n {
                let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
                mac.update(black_box(&body));
                assert!(mac.verify_slice(black_box(&tag)).is_ok());
            }
        }
        "handwritten" => {
            let mut handwritten =
                HandwrittenVerifyLayer::new(SECRET.as_bytes(), 2 << 20).layer(Echo);
            for _ in 0..n {
                let request = black_box(request());
                exec.block_on(std::future::poll_fn(|cx| {
                    Service::<Request<Full<Bytes>>>::poll_ready(&mut handwritten, cx)
                }))
                .unwrap();
                let response = exec.block_on(handwritten.call(request)).unwrap();
                assert_eq!(response.status(), StatusCode::OK);
            }
        }
        "size" => {
            let f = verify.call(request());
            println!("future {}", std::mem::size_of_val(&f));
            println!("parts {}", std::mem::size_of::<http::request::Parts>());
            println!(
                "vs {}",
                std::mem::size_of::<tollgate_core::VerifiedSignature>()
            );
        }
        "allocs" => {
            // Once first: the metrics series are built on the first request of the process.
            assert_eq!(call(request()), StatusCode::OK);
            let per_call = allocations_per_call_with(1000, request, &mut call);
            println!("allocations per request through the layer: {per_call}");
        }
        _ => panic!("unknown case"),
    }
}
