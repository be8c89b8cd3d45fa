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
//!
//! Then the topologies, at concurrency 16 (no target): the same claims on a 3-master Redis
//! Cluster (`replay_redis_topology/cluster/16`, against `replay_redis/tollgate/16` on one
//! node), and on a master with one replica without and with `WAIT 1`
//! (`replay_redis_topology/master_replica/16`, `…/master_replica_wait1/16`). And Redis's
//! memory per claim with the default prefix and 900 s retention: `MEMORY USAGE` of one claim
//! key (`replay.redis.memory_usage_bytes`) and the `used_memory` delta over 100,000 claims
//! divided by 100,000 (`replay.redis.bytes_per_claim`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tollgate_benches::results::record;
use tollgate_replay::{Claim, NonceStore, RedisNonceStore};
use tollgate_test_support::{RedisCluster, RedisServer, redis_cli, wait_for, which};

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

/// Runs `iters` fresh claims from `concurrency` tasks; the time, scaled to `iters`.
fn claims(
    runtime: &tokio::runtime::Runtime,
    store: &Arc<RedisNonceStore>,
    next: &Arc<AtomicU64>,
    concurrency: u64,
    iters: u64,
) -> Duration {
    let per_task = iters.div_ceil(concurrency);
    runtime.block_on(async {
        let start = Instant::now();
        let tasks: Vec<_> = (0..concurrency)
            .map(|_| {
                let (store, next) = (Arc::clone(store), Arc::clone(next));
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
}

/// A store built inside `runtime`, its claims expiring after a second (so the servers'
/// memory stays small).
fn bench_store(
    runtime: &tokio::runtime::Runtime,
    builder: tollgate_replay::RedisNonceStoreBuilder,
) -> Arc<RedisNonceStore> {
    let _guard = runtime.enter();
    let store = builder
        .prefix("bench:replay:")
        .timeout(Duration::from_secs(2))
        .min_retention(Duration::ZERO)
        .build()
        .unwrap();
    runtime.block_on(store.verify()).unwrap();
    Arc::new(store)
}

/// `INFO memory`'s `used_memory`, in bytes.
fn used_memory(port: u16) -> f64 {
    redis_cli(port, &["INFO", "memory"])
        .and_then(|info| {
            info.lines()
                .find_map(|line| line.trim().strip_prefix("used_memory:"))
                .and_then(|v| v.parse().ok())
        })
        .expect("INFO memory names used_memory")
}

fn replay_redis_topology(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let next = Arc::new(AtomicU64::new(1 << 40));
    let concurrency = 16u64;
    let mut group = c.benchmark_group("replay_redis_topology");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .throughput(Throughput::Elements(1));

    if let Some(cluster) = RedisCluster::start_or_skip("replay_redis_topology") {
        let store = bench_store(&runtime, RedisNonceStore::cluster(cluster.urls()));
        group.bench_function(BenchmarkId::new("cluster", concurrency), |b| {
            b.iter_custom(|iters| claims(&runtime, &store, &next, concurrency, iters));
        });
    } else {
        record(
            "replay.redis.cluster.skipped",
            "redis-server or redis-cli not found",
        );
    }

    // A master and its replica (no Sentinels: a failover under load would spoil the figure).
    let master = RedisServer::start_with_args_or_skip(
        "replay_redis_topology",
        &["--repl-diskless-sync-delay", "0"],
    );
    if let Some(master) = master {
        let port = master.port().to_string();
        let replica = RedisServer::start_with_args_or_skip(
            "replay_redis_topology",
            &["--replicaof", "127.0.0.1", &port],
        )
        .unwrap();
        wait_for(
            Duration::from_secs(10),
            || {
                redis_cli(replica.port(), &["INFO", "replication"])
                    .is_some_and(|info| info.contains("master_link_status:up"))
            },
            "the replica to sync",
        );
        // WAIT first, so the replica is not still catching up with the other run.
        let waiting = bench_store(
            &runtime,
            RedisNonceStore::builder(master.url()).wait_for_replicas(1, Duration::from_secs(1)),
        );
        group.bench_function(BenchmarkId::new("master_replica_wait1", concurrency), |b| {
            b.iter_custom(|iters| claims(&runtime, &waiting, &next, concurrency, iters));
        });
        let plain = bench_store(&runtime, RedisNonceStore::builder(master.url()));
        group.bench_function(BenchmarkId::new("master_replica", concurrency), |b| {
            b.iter_custom(|iters| claims(&runtime, &plain, &next, concurrency, iters));
        });
    }
    group.finish();

    // Memory per claim, with the default prefix and retention.
    let Some(server) = RedisServer::start_or_skip("replay_redis_memory") else {
        return;
    };
    let store = {
        let _guard = runtime.enter();
        Arc::new(RedisNonceStore::builder(server.url()).build().unwrap())
    };
    const CLAIMS: u64 = 100_000;
    let before = used_memory(server.port());
    let _ = claims(
        &runtime,
        &store,
        &Arc::new(AtomicU64::new(0)),
        concurrency,
        CLAIMS,
    );
    let after = used_memory(server.port());
    record(
        "replay.redis.bytes_per_claim",
        (after - before) / CLAIMS as f64,
    );
    let key = store.redis_key(&0u64.to_le_bytes());
    let usage = redis_cli(server.port(), &["MEMORY", "USAGE", &key]).unwrap();
    record("replay.redis.memory_usage_bytes", usage);
}

criterion_group!(benches, replay_redis, replay_redis_topology);
criterion_main!(benches);
