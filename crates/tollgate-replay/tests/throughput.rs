//! A rough throughput check of `MemoryNonceStore` on two threads. Ignored by default (it means
//! something only in release builds): `cargo test -p tollgate-replay --release --test
//! throughput -- --ignored --nocapture`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Instant;

use tollgate_core::ManualClock;
use tollgate_replay::{Claim, MemoryNonceStore};

#[test]
#[ignore = "a measurement; run in release"]
fn memory_store_claims_per_second_on_two_threads() {
    const NOW: u64 = 1_700_000_000;
    const PER_THREAD: u64 = 1_000_000;
    let store = MemoryNonceStore::new(2_500_000).with_clock(ManualClock::new(NOW));
    let started = Instant::now();
    std::thread::scope(|scope| {
        for thread in 0..2u64 {
            let store = &store;
            scope.spawn(move || {
                // An 80-hex-character nonce, namespaced like the guard does.
                let mut key = *b"\0\0\0\x08tranzila\0\0\0\x10pub_app_key_demo0000000000000000000000000000000000000000000000000000000000000000";
                for i in 0..PER_THREAD {
                    let n = thread * PER_THREAD + i;
                    key[32..48].copy_from_slice(format!("{n:016x}").as_bytes());
                    assert_eq!(store.claim_now(&key, NOW + 300).unwrap(), Claim::Claimed);
                }
            });
        }
    });
    let elapsed = started.elapsed();
    let rate = (2 * PER_THREAD) as f64 / elapsed.as_secs_f64();
    println!("memory store: {rate:.0} claims/s on 2 threads ({elapsed:?} for 2M claims)");
}
