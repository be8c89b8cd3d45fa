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
//! The mock and the clients run on separate one-worker runtimes; rounds alternate (raw,
//! hand-signed, tollgate, and again) so drift hits every side.

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

    const CALLS: u32 = 200_000;
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
            for _ in 0..CALLS / 10 {
                call();
            }
            let started = Instant::now();
            for _ in 0..CALLS {
                call();
            }
            let ns = started.elapsed().as_nanos() / u128::from(CALLS);
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
            let (mut raw_rps, mut signed_rps, mut ours_rps) = (Vec::new(), Vec::new(), Vec::new());
            let (mut raw_lat, mut signed_lat, mut ours_lat) = (Vec::new(), Vec::new(), Vec::new());
            for _ in 0..2 {
                let (rps, lat) = round(raw.clone(), concurrency, ROUND).await;
                raw_rps.push(rps);
                raw_lat.extend(lat);
                let (rps, lat) = round(signed.clone(), concurrency, ROUND).await;
                signed_rps.push(rps);
                signed_lat.extend(lat);
                let (rps, lat) = round(ours.clone(), concurrency, ROUND).await;
                ours_rps.push(rps);
                ours_lat.extend(lat);
            }
            let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
            let c = concurrency;
            record(
                &format!("tls.raw.{c}.rps"),
                format!("{:.0}", mean(&raw_rps)),
            );
            record(
                &format!("tls.signed.{c}.rps"),
                format!("{:.0}", mean(&signed_rps)),
            );
            record(&format!("tls.signed.{c}.p99_us"), p99(&mut signed_lat));
            record(
                &format!("tls.tranzila.{c}.rps"),
                format!("{:.0}", mean(&ours_rps)),
            );
            record(&format!("tls.raw.{c}.p99_us"), p99(&mut raw_lat));
            record(&format!("tls.tranzila.{c}.p99_us"), p99(&mut ours_lat));
        }
    });
    drop(server);
}
