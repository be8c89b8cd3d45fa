//! Runs one client-IP operation N times, for instruction counts under valgrind:
//! `valgrind --tool=cachegrind --cache-sim=no target/release/examples/ip_instructions <case> <hops> <n>`,
//! once with N and once with 0; the difference divided by N is the cost of one call.
//!
//! Cases: `count1`, `axum`, `range`, `range-handle` (one extraction on a prepared header
//! map), `stack` and `bare` (a whole request through origin + client IP + IP allowlist over an
//! echo service, or the echo service alone; the request is built in both), `handwritten` (the
//! same rules written by hand, `tollgate_benches::handwritten`) and `cip`, `origin`, `allow`
//! (one layer of the stack alone).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::hint::black_box;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroUsize;

use axum::extract::FromRequestParts;
use axum_client_ip::RightmostXForwardedFor;
use http::Request;
use http::request::Parts;
use tollgate_benches::echo::Echo;
use tollgate_benches::exec::Executor;
use tollgate_client_ip::{
    ClientIpSource, IpAllowlistLayer, IpRanges, IpRangesHandle, ListHeader, PeerAddr,
    ResolveClientIpLayer,
};
use tollgate_origin::OriginAllowlistLayer;
use tower::{Layer, Service};

fn parts(hops: usize) -> Parts {
    let mut list = vec!["203.0.113.7".to_owned()];
    list.extend((1..hops).map(|i| format!("10.0.{}.{}", i / 200, 1 + i % 200)));
    let (parts, ()) = Request::get("/api/quote")
        .header("host", "api.example.com")
        .header("user-agent", "Mozilla/5.0 bench")
        .header("x-forwarded-for", list.join(", "))
        .body(())
        .unwrap()
        .into_parts();
    parts
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let case = args[1].as_str();
    let hops: usize = args[2].parse().unwrap();
    let n: usize = args[3].parse().unwrap();
    let exec = Executor::new();
    let peer: IpAddr = "10.0.0.250".parse().unwrap();
    let mut parts = parts(hops);
    let count = ClientIpSource::rightmost_trusted_count(
        ListHeader::XForwardedFor,
        NonZeroUsize::new(1).unwrap(),
    );
    let range = ClientIpSource::rightmost_trusted_range(
        ListHeader::XForwardedFor,
        "10.0.0.0/8".parse::<IpRanges>().unwrap(),
    );
    let proxies = IpRangesHandle::new("10.0.0.0/8".parse::<IpRanges>().unwrap());
    let range_handle =
        ClientIpSource::rightmost_trusted_range(ListHeader::XForwardedFor, proxies.clone());
    match case {
        "count1" => {
            for _ in 0..n {
                black_box(
                    count
                        .extract(black_box(&parts.headers), Some(peer))
                        .unwrap(),
                );
            }
        }
        "range" => {
            for _ in 0..n {
                black_box(
                    range
                        .extract(black_box(&parts.headers), Some(peer))
                        .unwrap(),
                );
            }
        }
        "range-handle" => {
            for _ in 0..n {
                black_box(
                    range_handle
                        .extract(black_box(&parts.headers), Some(peer))
                        .unwrap(),
                );
            }
        }
        // Wall-clock, min of 15 rounds each, interleaved: fixed ranges, the handle, and the
        // fixed ranges plus one arc-swap load (what a handle read cost before its cache).
        "time" => {
            let time = |f: &dyn Fn()| {
                let start = std::time::Instant::now();
                for _ in 0..n {
                    f();
                }
                start.elapsed().as_secs_f64() * 1e9 / n as f64
            };
            let mut best = [f64::MAX; 3];
            for _ in 0..15 {
                let runs = [
                    time(&|| {
                        black_box(
                            range
                                .extract(black_box(&parts.headers), Some(peer))
                                .unwrap(),
                        );
                    }),
                    time(&|| {
                        black_box(
                            range_handle
                                .extract(black_box(&parts.headers), Some(peer))
                                .unwrap(),
                        );
                    }),
                    time(&|| {
                        let guard = black_box(proxies.load());
                        black_box(
                            range
                                .extract(black_box(&parts.headers), Some(peer))
                                .unwrap(),
                        );
                        drop(guard);
                    }),
                ];
                for (best, run) in best.iter_mut().zip(runs) {
                    *best = best.min(run);
                }
            }
            println!(
                "fixed {:.2} ns, handle {:.2} ns, fixed + arc-swap load {:.2} ns",
                best[0], best[1], best[2]
            );
        }
        "axum" => {
            for _ in 0..n {
                black_box(
                    exec.block_on(RightmostXForwardedFor::from_request_parts(
                        black_box(&mut parts),
                        &(),
                    ))
                    .unwrap()
                    .0,
                );
            }
        }
        "stack" | "bare" | "cip" | "origin" | "allow" | "handwritten" => {
            let origins = OriginAllowlistLayer::builder()
                .allow_origins(["https://app.example.com".to_owned()])
                .allow_methods([http::Method::POST])
                .allow_headers(["content-type"])
                .max_age(std::time::Duration::from_secs(600))
                .build()
                .unwrap();
            let cip = ResolveClientIpLayer::new(
                "rightmost-trusted-range:x-forwarded-for:loopback"
                    .parse()
                    .unwrap(),
            );
            let allow = IpAllowlistLayer::new("203.0.113.0/24".parse().unwrap());
            let mut service: Box<dyn FnMut(Request<()>) -> http::StatusCode> = match case {
                "stack" => {
                    let mut s = origins.layer(cip.layer(allow.layer(Echo)));
                    Box::new(move |r| exec.block_on(s.call(r)).unwrap().status())
                }
                "cip" => {
                    let mut s = cip.layer(Echo);
                    Box::new(move |r| exec.block_on(s.call(r)).unwrap().status())
                }
                "origin" => {
                    let mut s = origins.layer(Echo);
                    Box::new(move |r| exec.block_on(s.call(r)).unwrap().status())
                }
                "allow" => {
                    let mut s = allow.layer(Echo);
                    Box::new(move |r| exec.block_on(s.call(r)).unwrap().status())
                }
                "handwritten" => {
                    let mut s = tollgate_benches::handwritten::HandwrittenLayer.layer(Echo);
                    Box::new(move |r| exec.block_on(s.call(r)).unwrap().status())
                }
                _ => {
                    let mut s = Echo;
                    Box::new(move |r| exec.block_on(s.call(r)).unwrap().status())
                }
            };
            let addr: SocketAddr = "127.0.0.1:40000".parse().unwrap();
            for _ in 0..n {
                let mut request = Request::post("/api/ping")
                    .header("host", "127.0.0.1:8080")
                    .header("origin", "https://app.example.com")
                    .header("x-forwarded-for", "203.0.113.9")
                    .body(())
                    .unwrap();
                if case == "handwritten" {
                    request
                        .extensions_mut()
                        .insert(axum::extract::ConnectInfo(addr));
                } else {
                    request.extensions_mut().insert(PeerAddr::new(addr));
                }
                assert_eq!(service(request), http::StatusCode::OK);
            }
        }
        _ => panic!("unknown case"),
    }
    drop(proxies);
}
