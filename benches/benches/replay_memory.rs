//! Replay, memory store: claims per second on both cores with 1 million live entries, and the
//! bytes the store takes per live entry, counted by the allocator.
//! Targets: >= 1,000,000 claims/s; <= 64 bytes per live entry.
//!
//! The store is filled with 1,000,000 claims that stay live for the whole run. The measured
//! claims are fresh 80-character keys (Tranzila nonces' length) with a one-second expiry on a
//! `ManualClock` that moves on at every 16,384th measured key, so measured entries expire
//! and are reclaimed as in a service at steady state, while the 1,000,000 stay.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tollgate_benches::alloc::{CountingAlloc, counted};
use tollgate_benches::results::record;
use tollgate_core::{Clock, ManualClock};
use tollgate_replay::{Claim, MemoryNonceStore};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

const LIVE_ENTRIES: usize = 1_000_000;
const LIVE: u64 = LIVE_ENTRIES as u64;
const T0: u64 = 1_700_000_000;
const THREADS: u64 = 2;
/// The expiry of the 1,000,000 live claims: beyond any clock the run reaches.
const LIVE_UNTIL: u64 = T0 + 1_000_000_000_000;
/// How far the clock moves at every 16,384th measured key: past the expiry of every earlier
/// measured claim, including a store's minimum retention (well under a day).
const STEP: u64 = 100_000;

/// An 80-byte key, distinct for each `n`.
fn key(n: u64) -> [u8; 80] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut key = [b'a'; 80];
    for (i, byte) in key[64..].iter_mut().enumerate() {
        *byte = HEX[((n >> (60 - 4 * i)) & 0xf) as usize];
    }
    key
}

fn replay_memory(c: &mut Criterion) {
    let clock = ManualClock::new(T0);
    let (store, built) = counted(|| MemoryNonceStore::new(LIVE_ENTRIES).with_clock(clock.clone()));
    let ((), filled) = counted(|| {
        for n in 0..LIVE {
            let claim = store.claim_now(&key(n), LIVE_UNTIL).unwrap();
            assert_eq!(claim, Claim::Claimed);
        }
    });
    assert_eq!(store.len(), LIVE_ENTRIES);
    let bytes = built.live_bytes() + filled.live_bytes();
    record("replay.memory.bytes_total", bytes);
    record("replay.memory.bytes_per_entry", bytes as f64 / LIVE as f64);
    record("replay.memory.capacity", store.capacity());
    record("replay.memory.memory_bytes", store.memory_bytes());

    let next = AtomicU64::new(LIVE);
    let mut group = c.benchmark_group("replay_memory");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(1));
    group.bench_function("claim-2-threads-1M-live", |b| {
        b.iter_custom(|iters| {
            let per_thread = iters.div_ceil(THREADS);
            let start = Instant::now();
            std::thread::scope(|scope| {
                for _ in 0..THREADS {
                    let (store, clock, next) = (&store, &clock, &next);
                    scope.spawn(move || {
                        let first = next.fetch_add(per_thread, Relaxed);
                        // The clock moves on at every 16,384th key, whichever thread
                        // claims it, so older measured claims expire.
                        for n in first..first + per_thread {
                            if n % 16_384 == 0 {
                                clock.advance(STEP);
                            }
                            let now = clock.now_unix();
                            let claim = store.claim_now(&key(n), now + 1);
                            assert!(matches!(claim, Ok(Claim::Claimed)), "{claim:?}");
                        }
                    });
                }
            });
            start
                .elapsed()
                .mul_f64(iters as f64 / (per_thread * THREADS) as f64)
        });
    });
    group.finish();
    // The measured claims expired; the 1,000,000 are still live.
    assert!(store.len() >= LIVE_ENTRIES);
}

criterion_group!(benches, replay_memory);
criterion_main!(benches);
