//! Replay, Redis store: claims per second at concurrency 1, 16 and 64 against a local
//! `redis-server`, side by side with `redis-benchmark -t set` at the same concurrency.
//! Target: tollgate's store >= 0.7x `redis-benchmark`.
//!
//! Each store claim is `SET <prefix><sha256-hex> 1 NX PX <ttl>` on the store's one
//! multiplexed connection, from `concurrency` Tokio tasks on a two-worker runtime. Claims
//! expire after a second, so the server's memory stays small. `redis-benchmark` runs with
//! `-c <concurrency>` connections, random keys (`-r`) and its default 3-byte values, 100,000
//! requests, once just before and once just after tollgate's measurement at the same
//! concurrency; the mean of its own requests-per-second figures is recorded. Skipped (with a note) when `redis-server` or `redis-benchmark` is missing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tollgate_benches::results::record;
use tollgate_replay::{Claim, NonceStore, RedisNonceStore};
use tollgate_test_support::{RedisServer, which};

/// Requests of each `redis-benchmark` run.
const REDIS_BENCHMARK_REQUESTS: u64 = 100_000;

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Requests per second of `redis-benchmark -t set -c <concurrency> -n <requests>`, from
/// its CSV output.
fn redis_benchmark(port: u16, concurrency: u64, requests: u64) -> f64 {
    let output = Command::new("redis-benchmark")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(["-t", "set", "-r", "1000000000", "--csv"])
        .args(["-c", &concurrency.to_string()])
        .args(["-n", &requests.to_string()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let rps: f64 = stdout
        .lines()
        .find_map(|line| {
            let mut fields = line.split(',');
            (fields.next()? == "\"SET\"").then(|| fields.next())?
        })
        .and_then(|rps| rps.trim_matches('"').parse().ok())
        .unwrap_or_else(|| panic!("no SET line in redis-benchmark's output: {stdout}"));
    rps
}

fn replay_redis(c: &mut Criterion) {
    let Some(server) = RedisServer::start_or_skip("replay_redis") else {
        record("replay.redis.skipped", "redis-server not found");
        return;
    };
    if which("redis-benchmark").is_none() {
        eprintln!("skipping the redis-benchmark comparison: redis-benchmark not found");
        record("replay.redis.skipped", "redis-benchmark not found");
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let store = {
        let _guard = runtime.enter();
        Arc::new(
            RedisNonceStore::builder(server.url())
                .prefix("bench:replay:")
                .timeout(Duration::from_secs(2))
                .build()
                .unwrap(),
        )
    };
    let next = Arc::new(AtomicU64::new(0));
    // Connect, and check that a claim is a claim and a repeat is a replay.
    runtime.block_on(async {
        let key = b"bench-first-key";
        assert_eq!(
            store.claim(key, now_unix() + 5).await.unwrap(),
            Claim::Claimed
        );
        assert_eq!(
            store.claim(key, now_unix() + 5).await.unwrap(),
            Claim::AlreadySeen
        );
    });

    let mut group = c.benchmark_group("replay_redis");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .throughput(Throughput::Elements(1));
    for concurrency in [1u64, 16, 64] {
        // redis-benchmark's figure, from one run just before and one just after tollgate's
        // (so drift of the shared machine hits both), each long enough to be steady.
        let before = redis_benchmark(server.port(), concurrency, REDIS_BENCHMARK_REQUESTS);
        group.bench_function(BenchmarkId::new("tollgate", concurrency), |b| {
            b.iter_custom(|iters| {
                let per_task = iters.div_ceil(concurrency);
                runtime.block_on(async {
                    let start = Instant::now();
                    let tasks: Vec<_> = (0..concurrency)
                        .map(|_| {
                            let (store, next) = (Arc::clone(&store), Arc::clone(&next));
                            tokio::spawn(async move {
                                let first = next.fetch_add(per_task, Relaxed);
                                for n in first..first + per_task {
                                    let claim = store.claim(&n.to_le_bytes(), now_unix()).await;
                                    assert!(matches!(claim, Ok(Claim::Claimed)), "{claim:?}");
                                }
                            })
                        })
                        .collect();
                    for task in tasks {
                        task.await.unwrap();
                    }
                    start
                        .elapsed()
                        .mul_f64(iters as f64 / (per_task * concurrency) as f64)
                })
            });
        });
        let after = redis_benchmark(server.port(), concurrency, REDIS_BENCHMARK_REQUESTS);
        record(
            &format!("replay.redis.redis-benchmark.{concurrency}.rps"),
            f64::midpoint(before, after),
        );
    }
    group.finish();
}

criterion_group!(benches, replay_redis);
criterion_main!(benches);
