//! Measures the resident memory of a full `MemoryNonceStore`: the bytes per live entry the
//! docs promise (32 at the effective capacity, never more than 64). Alone in its own test
//! binary so no other test allocates meanwhile.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use tollgate_core::ManualClock;
use tollgate_replay::{Claim, MemoryNonceStore, StoreError};

/// The process's resident set in bytes (Linux), or `None` elsewhere.
fn resident_bytes() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[test]
fn a_full_store_takes_at_most_64_bytes_per_live_entry() {
    let Some(before) = resident_bytes() else {
        println!("SKIPPED memory_footprint: /proc/self/status is not available");
        return;
    };
    const NOW: u64 = 1_700_000_000;
    let store = MemoryNonceStore::new(500_000).with_clock(ManualClock::new(NOW));
    // Keys much longer than a fingerprint: the size per entry must not depend on them.
    let mut live = 0usize;
    let mut key = [b'k'; 120];
    loop {
        key[..8].copy_from_slice(&(live as u64).to_le_bytes());
        match store.claim_now(&key, NOW + 300) {
            Ok(Claim::Claimed) => live += 1,
            Ok(Claim::AlreadySeen) => panic!("fingerprint collision"),
            Err(StoreError::Full) => break,
            Err(other) => panic!("{other}"),
        }
    }
    let after = resident_bytes().unwrap();
    let per_entry = after.saturating_sub(before) as f64 / live as f64;
    println!(
        "memory store: {live} live entries (capacity {}), {} table bytes, {per_entry:.1} resident bytes per live entry",
        store.capacity(),
        store.memory_bytes(),
    );
    assert!(live >= 500_000, "{live}");
    assert!(live * 100 >= store.capacity() * 95, "{live}");
    assert!(store.memory_bytes() / live <= 64);
    assert!(per_entry <= 64.0, "{per_entry} bytes per live entry");
    // And not suspiciously small either: the measurement sees the table.
    assert!(per_entry >= 24.0, "{per_entry} bytes per live entry");
}
