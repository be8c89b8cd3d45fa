//! Origin check: tollgate's `OriginAllowlistLayer` vs tower-http's `CorsLayer` with
//! `AllowOrigin::list` of the same 10 origins, the same allowed request and the same echo
//! service. Target: ratio (tollgate / tower-http) <= 1.0.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::time::Duration;

use bytes::Bytes;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use http::header::{ACCESS_CONTROL_ALLOW_ORIGIN, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, StatusCode};
use http_body_util::Empty;
use tollgate_benches::alloc::{CountingAlloc, allocations_per_call_with};
use tollgate_benches::echo::Echo;
use tollgate_benches::exec::Executor;
use tollgate_benches::results::record;
use tollgate_origin::OriginAllowlistLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_layer::Layer;
use tower_service::Service;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

const ORIGINS: [&str; 10] = [
    "https://app.example.com",
    "https://shop.example.com",
    "https://checkout.example.com",
    "https://admin.example.com",
    "https://www.example.com",
    "https://app.example.org",
    "https://shop.example.org",
    "https://pay.example.net",
    "https://partner.example.net",
    "https://staging.example.com",
];

/// The allowed request: a browser's `POST` from the fifth origin of the list (the middle,
/// neither side's best or worst case).
fn request() -> Request<Empty<Bytes>> {
    Request::post("https://api.example.com/api/widget-url")
        .header("host", "api.example.com")
        .header("origin", ORIGINS[4])
        .header(CONTENT_TYPE, "application/json")
        .header("accept", "application/json")
        .header("user-agent", "Mozilla/5.0 (X11; Linux x86_64) bench")
        .header("sec-fetch-site", "same-site")
        .body(Empty::new())
        .unwrap()
}

fn call<S>(exec: &Executor, service: &mut S, request: Request<Empty<Bytes>>) -> S::Response
where
    S: Service<Request<Empty<Bytes>>>,
    S::Error: std::fmt::Debug,
{
    exec.block_on(std::future::poll_fn(|cx| service.poll_ready(cx)))
        .unwrap();
    exec.block_on(service.call(request)).unwrap()
}

fn origin(c: &mut Criterion) {
    let exec = Executor::new();
    let mut tollgate = OriginAllowlistLayer::builder()
        .allow_origins(ORIGINS)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers(["content-type"])
        .build()
        .unwrap()
        .layer(Echo);
    let mut tower_http = CorsLayer::new()
        .allow_origin(AllowOrigin::list(ORIGINS.map(HeaderValue::from_static)))
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([CONTENT_TYPE])
        .layer(Echo);

    // Both must allow the request, or the comparison means nothing.
    let response = call(&exec, &mut tollgate, request());
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[ACCESS_CONTROL_ALLOW_ORIGIN], ORIGINS[4]);
    let response = call(&exec, &mut tower_http, request());
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[ACCESS_CONTROL_ALLOW_ORIGIN], ORIGINS[4]);

    record(
        "origin.tollgate.allocs",
        allocations_per_call_with(1000, request, |r| call(&exec, &mut tollgate, r)),
    );
    record(
        "origin.tower-http.allocs",
        allocations_per_call_with(1000, request, |r| call(&exec, &mut tower_http, r)),
    );

    let mut group = c.benchmark_group("origin");
    group
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    group.bench_function("tollgate", |b| {
        b.iter_batched(
            request,
            |request| call(&exec, &mut tollgate, request),
            BatchSize::SmallInput,
        );
    });
    group.bench_function("tower-http", |b| {
        b.iter_batched(
            request,
            |request| call(&exec, &mut tower_http, request),
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

criterion_group!(benches, origin);
criterion_main!(benches);
