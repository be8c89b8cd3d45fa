//! The ready Tranzila client against a local HTTPS mock, side by side with the same TLS client
//! without tollgate's layers: requests/s and p99 latency.
//!
//! Both sides use one `hyper_util` client over tollgate-https's `HttpsConnector` (rustls, the
//! local test CA added to Mozilla's roots, HTTP/2) and the same mock, which answers every
//! request with 200 without checking it, so the difference is the client-side stack:
//! hygiene, Tranzila signing (a fresh nonce and HMAC per request), retry, limits, deadline,
//! attempt timeout and the audit event. A third side, *hand-signed*, is the same TLS client with
//! Tranzila's four headers made by hand (the time, 40 bytes of OS randomness, one HMAC-SHA256,
//! as a partner without tollgate would write it): what a Tranzila call costs without tollgate.
//! The mock and the clients run on separate one-worker runtimes. Each round runs the three
//! sides in turn, the side that goes first rotating, so drift hits every side; with one call
//! in flight there are 15 rounds of 1 s, and the ratios reported are the medians of the
//! rounds' ratios (one slow second moves a mean, not a median).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full};
use tollgate::https::{HttpsConnector, TlsConfig};
use tollgate::tranzila::{TranzilaClient, TranzilaCredentials};
use tollgate_benches::alloc::{CountingAlloc, allocations_per_call_with};
use tollgate_benches::results::record;
use tollgate_test_support::tls::{HttpsServer, TestPki, handler};
use tower::ServiceExt as _;

// Counts allocations for `TLS_BENCH_STACK=1` only (one relaxed load per allocation otherwise).
#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// Calls in flight: one (the time of a call), and 16 (throughput over one HTTP/2 connection).
const CONCURRENCY: [usize; 2] = [1, 16];
const WARM_UP: Duration = Duration::from_secs(1);
const ROUND: Duration = Duration::from_secs(3);
/// With one call in flight: many short rounds (the time of a call moves with the machine).
const ROUNDS_ONE: usize = 15;
const ROUND_ONE: Duration = Duration::from_secs(1);
const BODY: &[u8] = br#"{"terminal_name":"demo","txn_type":"debit","items":[{"name":"x","unit_price":1,"units_number":1}]}"#;

const APP_KEY: &str = "pub_app_key_demo";
const SECRET: &str = "private_secret_demo";

/// Tranzila's four headers made by hand, with nothing around them: the Unix time, a nonce of
/// 40 bytes from the OS (hex), and `hex(HMAC-SHA256(secret + time + nonce, app key))`.
fn hand_signed(request: &mut Request<Full<Bytes>>) {
    use hmac::{Hmac, KeyInit as _, Mac as _};
    use http::HeaderValue;
    let time = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    let mut random = [0u8; 40];
    getrandom::fill(&mut random).unwrap();
    let nonce = hex::encode(random);
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(
        [SECRET.as_bytes(), time.as_bytes(), nonce.as_bytes()]
            .concat()
            .as_slice(),
    )
    .unwrap();
    mac.update(APP_KEY.as_bytes());
    let token = hex::encode(mac.finalize().into_bytes());
    let headers = request.headers_mut();
    headers.insert("x-tranzila-api-app-key", HeaderValue::from_static(APP_KEY));
    headers.insert("x-tranzila-api-request-time", time.parse().unwrap());
    headers.insert("x-tranzila-api-nonce", nonce.parse().unwrap());
    headers.insert("x-tranzila-api-access-token", token.parse().unwrap());
}

/// Runs `concurrency` loops of `call` for `length`; returns (requests/s, latencies in µs).
async fn round<F, Fut>(call: F, concurrency: usize, length: Duration) -> (f64, Vec<u32>)
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = StatusCode> + Send,
{
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let call = call.clone();
        let stop = Arc::clone(&stop);
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let status = call().await;
                assert_eq!(status, StatusCode::OK);
                latencies.push(u32::try_from(t.elapsed().as_micros()).unwrap_or(u32::MAX));
            }
            latencies
        }));
    }
    tokio::time::sleep(length).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    let rps = all.len() as f64 / started.elapsed().as_secs_f64();
    (rps, all)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_unstable_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

fn p99(latencies: &mut [u32]) -> u32 {
    latencies.sort_unstable();
    latencies[(latencies.len() * 99 / 100).min(latencies.len() - 1)]
}

async fn drain(response: Response<hyper::body::Incoming>) -> StatusCode {
    let status = response.status();
    let _ = response.into_body().collect().await;
    status
}

/// `TLS_BENCH_STACK=1`: the client stack alone, over an in-memory transport that answers at
/// once (no socket, no TLS): ns and allocations per call, with no provider layer and with
/// Tranzila's. The cost the stack adds to every call, without the noise of a TLS round trip.
fn stack_alone() {
    use tollgate::client::ClientBuilder;
    use tollgate::core::BufferedBody;
    use tollgate::core::upstream::Upstream;
    use tollgate::headers::HeaderHygieneLayer;
    use tollgate::tranzila::TranzilaSigningLayer;

    // `TLS_BENCH_STACK_CALLS`: fewer calls, for a profiler.
    let calls: u32 = std::env::var("TLS_BENCH_STACK_CALLS")
        .ok()
        .and_then(|calls| calls.parse().ok())
        .unwrap_or(200_000);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // Pending once, as a socket would be: the timers are then registered, as in a real call.
    let transport = tower::service_fn(|_request: Request<BufferedBody>| async {
        tokio::task::yield_now().await;
        Ok::<_, std::convert::Infallible>(Response::new(()))
    });
    let url = "https://api.example.test";
    let builder = || ClientBuilder::new("bench").base_url(url);
    let bare = builder()
        .build_over(tower::layer::util::Identity::new(), transport)
        .unwrap();
    let credentials = TranzilaCredentials::new("pub_app_key_demo", "private_secret_demo").unwrap();
    let layers = tower::ServiceBuilder::new()
        .layer(HeaderHygieneLayer::server_to_server())
        .layer(TranzilaSigningLayer::new(credentials, Upstream::parse(url).unwrap()).unwrap())
        .into_inner();
    let tranzila = builder().build_over(layers, transport).unwrap();
    let request = || {
        Request::post("/v1/transaction")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from_static(BODY)))
            .unwrap()
    };
    for _ in 0..3 {
        for (name, client) in [("stack-only", &bare), ("tranzila", &tranzila)] {
            let call = || {
                rt.block_on(client.clone().oneshot(request()))
                    .unwrap()
                    .status()
            };
            for _ in 0..calls / 10 {
                call();
            }
            let started = Instant::now();
            for _ in 0..calls {
                call();
            }
            let ns = started.elapsed().as_nanos() / u128::from(calls);
            let allocations = allocations_per_call_with(1000, request, |request| {
                rt.block_on(client.clone().oneshot(request)).unwrap()
            });
            println!("in-memory {name}: {ns} ns, {allocations:.1} allocations per call");
        }
    }
}

fn main() {
    if std::env::var_os("TLS_BENCH_STACK").is_some() {
        stack_alone();
        return;
    }
    let pki = TestPki::generate();
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let server = server_rt.block_on(HttpsServer::start(
        &pki.good,
        handler(|_request: Request<Bytes>| async { Response::new(Bytes::from_static(b"{}")) }),
    ));
    let url = server.url();

    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let tls = TlsConfig::new()
        .add_root_pem(pki.ca_pem.as_bytes())
        .unwrap();
    client_rt.block_on(async {
        let raw_client = HttpsConnector::new(&tls).unwrap().client::<Full<Bytes>>();
        let raw = {
            let url = format!("{url}/v1/transaction");
            let raw_client = raw_client.clone();
            move || {
                let client = raw_client.clone();
                let request = Request::post(url.as_str())
                    .header("content-type", "application/json")
                    .body(Full::new(Bytes::from_static(BODY)))
                    .unwrap();
                async move { drain(client.request(request).await.unwrap()).await }
            }
        };
        let signed = {
            let url = format!("{url}/v1/transaction");
            move || {
                let client = raw_client.clone();
                let mut request = Request::post(url.as_str())
                    .header("content-type", "application/json")
                    .body(Full::new(Bytes::from_static(BODY)))
                    .unwrap();
                hand_signed(&mut request);
                async move { drain(client.request(request).await.unwrap()).await }
            }
        };
        let tranzila = TranzilaClient::builder(TranzilaCredentials::new(APP_KEY, SECRET).unwrap())
            .base_url(&url)
            .configure(|client| client.tls(tls.clone()))
            .build()
            .unwrap();
        let ours = move || {
            let client = tranzila.clone();
            let request = Request::post("/v1/transaction")
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from_static(BODY)))
                .unwrap();
            async move { drain(client.oneshot(request).await.unwrap()).await }
        };
        let bare = tollgate::client::ClientBuilder::new("bare")
            .base_url(&url)
            .tls(tls.clone())
            .build(tower::layer::util::Identity::new())
            .unwrap();
        let bare_call = move || {
            let client = bare.clone();
            let request = Request::post("/v1/transaction")
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from_static(BODY)))
                .unwrap();
            async move { drain(client.oneshot(request).await.unwrap()).await }
        };
        // `TLS_BENCH_PROFILE=raw|stack-only|tranzila`: one kind of call, one in flight, for
        // 10 s, and the number of calls (for a profiler's per-call figures).
        if let Some(kind) = std::env::var_os("TLS_BENCH_PROFILE") {
            let (rps, _) = match kind.to_str() {
                Some("raw") => round(raw.clone(), 1, Duration::from_secs(10)).await,
                Some("hand-signed") => round(signed.clone(), 1, Duration::from_secs(10)).await,
                Some("stack-only") => round(bare_call.clone(), 1, Duration::from_secs(10)).await,
                _ => round(ours.clone(), 1, Duration::from_secs(10)).await,
            };
            println!(
                "{kind:?}: {:.0} calls in 10 s ({:.1} us per call)",
                rps * 10.0,
                1e6 / rps
            );
            return;
        }
        // `TLS_BENCH_BREAKDOWN=1`: the time of one call without layers, with the stack only
        // (no provider layer), and with Tranzila's layers; then the figures for the report.
        for _ in 0..usize::from(std::env::var_os("TLS_BENCH_BREAKDOWN").is_some()) * 2 {
            for (name, rps) in [
                ("raw", round(raw.clone(), 1, ROUND).await.0),
                ("hand-signed", round(signed.clone(), 1, ROUND).await.0),
                ("stack-only", round(bare_call.clone(), 1, ROUND).await.0),
                ("tranzila", round(ours.clone(), 1, ROUND).await.0),
            ] {
                println!("{name}: {:.1} us", 1e6 / rps);
            }
        }
        round(raw.clone(), 16, WARM_UP).await;
        round(signed.clone(), 16, WARM_UP).await;
        round(ours.clone(), 16, WARM_UP).await;
        for concurrency in CONCURRENCY {
            let c = concurrency;
            // Short rounds, the three sides in turn, which one goes first rotating: a drift of
            // the machine (another process, the CPU's clock) hits the three sides of a round
            // alike, and the ratios are taken round by round, then their median.
            let rounds = if c == 1 { ROUNDS_ONE } else { 2 };
            let length = if c == 1 { ROUND_ONE } else { ROUND };
            let mut calls = [0f64; 3];
            let mut seconds = [0f64; 3];
            let mut latencies: [Vec<u32>; 3] = Default::default();
            let mut ratios_signed = Vec::new();
            let mut ratios_raw = Vec::new();
            for r in 0..rounds {
                let mut rps = [0f64; 3];
                for k in 0..3 {
                    let side = (r + k) % 3;
                    let (side_rps, lat) = match side {
                        0 => round(raw.clone(), c, length).await,
                        1 => round(signed.clone(), c, length).await,
                        _ => round(ours.clone(), c, length).await,
                    };
                    rps[side] = side_rps;
                    calls[side] += side_rps * length.as_secs_f64();
                    seconds[side] += length.as_secs_f64();
                    latencies[side].extend(lat);
                }
                // Time per call is 1 / rps: ours over theirs.
                ratios_signed.push(rps[1] / rps[2]);
                ratios_raw.push(rps[0] / rps[2]);
            }
            for (side, who) in ["raw", "signed", "tranzila"].into_iter().enumerate() {
                record(
                    &format!("tls.{who}.{c}.rps"),
                    format!("{:.0}", calls[side] / seconds[side]),
                );
                record(&format!("tls.{who}.{c}.p99_us"), p99(&mut latencies[side]));
            }
            if c == 1 {
                record(
                    "tls.tranzila_vs_signed.1.median",
                    format!("{:.4}", median(&mut ratios_signed)),
                );
                record(
                    "tls.tranzila_vs_raw.1.median",
                    format!("{:.4}", median(&mut ratios_raw)),
                );
                record("tls.rounds.1", rounds);
                if std::env::var_os("TLS_BENCH_VERBOSE").is_some() {
                    println!("tranzila / hand-signed per round: {ratios_signed:.3?}");
                    println!("tranzila / raw per round: {ratios_raw:.3?}");
                }
            }
        }
    });
    drop(server);
}
