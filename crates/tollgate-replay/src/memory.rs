//! [`MemoryNonceStore`]: the embedded, per-process nonce store.

use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex, PoisonError};

use tollgate_core::{Clock, SharedClock, SystemClock};

use crate::store::{Claim, ClaimFuture, NonceStore, StoreError};

/// The capacity [`MemoryNonceStore::default`] asks for: 100,000 live claims (the table then
/// takes about 4 MiB; see [`MemoryNonceStore::memory_bytes`]).
pub const DEFAULT_CAPACITY: usize = 100_000;

/// The number of shards (independent locks) unless configured otherwise.
pub const DEFAULT_SHARDS: usize = 64;

/// The largest capacity a store accepts; larger requests are clamped to it.
pub const MAX_CAPACITY: usize = 1 << 31;

/// Bytes of one table slot: a 128-bit keyed fingerprint and the expiry, as three `u64`s.
pub const SLOT_BYTES: usize = size_of::<Slot>();

/// One slot: fingerprint (high, low) and `expires_at`. All zero means empty.
type Slot = [u64; 3];

/// A bounded, sharded set of claimed keys held in this process's memory.
///
/// It protects one process: when a service runs as several instances behind a load
/// balancer, a request refused by one instance can be replayed to another, so use a shared
/// store (`RedisNonceStore`, feature `redis`) there.
///
/// # How it stores keys
///
/// A key is never stored. The store keeps a keyed 128-bit fingerprint of it (two SipHash-1-3
/// hashes with independent random keys drawn when the store is created, from
/// [`std::hash::RandomState`]) and the expiry: [`SLOT_BYTES`] = 24 bytes per slot, whatever the
/// length of the key. Keys are spread over [`DEFAULT_SHARDS`] shards, each an open-addressing
/// table behind its own `Mutex`, so concurrent claims of different keys rarely contend, and
/// claims of one key are atomic (exactly one caller gets [`Claim::Claimed`]).
///
/// # Sizing
///
/// Each shard's table has a power-of-two number of slots and holds at most three quarters of
/// them, so the requested capacity is rounded up: [`capacity`](MemoryNonceStore::capacity) is
/// the effective limit and [`memory_bytes`](MemoryNonceStore::memory_bytes) the size of the
/// tables, allocated once when the store is created (zeroed memory, which the operating system
/// maps lazily). At the effective capacity that is **32 bytes per live entry**, and at most
/// 64 bytes per entry of the capacity asked for (the `memory_footprint` test measures the
/// resident memory of a full store). A claim is held for `timestamp + tolerance − now` seconds,
/// at most twice the tolerance; with the default ±300 s window a service accepting `r`
/// requests per second needs a capacity of about `600 × r` (for example 600,000 claims, about
/// 19 MiB, for 1,000 requests per second).
///
/// # When it is full
///
/// Expired entries are reclaimed: a new claim reuses an expired slot on its probe path, and a
/// shard that reaches its limit is rebuilt without its expired entries. An unexpired entry is
/// **never evicted** (that would reopen the replay window for its request): when a shard is
/// full of unexpired entries, `claim` returns [`StoreError::Full`], which the replay guard
/// answers with 503 `store_unavailable`. Size the store so that this does not happen in normal
/// traffic; place the guard inside the signature verifier so forged requests cannot fill it.
///
/// # Time
///
/// "Now" comes from the injected [`Clock`] ([`SystemClock`] by default). An entry is held
/// through its `expires_at` second and reclaimable from the next one.
///
/// ```
/// use tollgate_core::ManualClock;
/// use tollgate_replay::{Claim, MemoryNonceStore};
///
/// let clock = ManualClock::new(1_700_000_000);
/// let store = MemoryNonceStore::new(1_000).with_clock(clock.clone());
/// assert_eq!(store.claim_now(b"nonce-1", 1_700_000_300).ok(), Some(Claim::Claimed));
/// assert_eq!(store.claim_now(b"nonce-1", 1_700_000_300).ok(), Some(Claim::AlreadySeen));
/// clock.advance(301);
/// assert_eq!(store.claim_now(b"nonce-1", 1_700_000_601).ok(), Some(Claim::Claimed));
/// ```
#[derive(Clone)]
pub struct MemoryNonceStore {
    inner: Arc<Inner>,
}

struct Inner {
    shards: Box<[Mutex<Shard>]>,
    hash_hi: RandomState,
    hash_lo: RandomState,
    clock: SharedClock,
    capacity: usize,
    requested: usize,
    slots: usize,
}

struct Shard {
    /// Power-of-two length.
    slots: Vec<Slot>,
    /// Occupied slots (live or expired).
    len: usize,
    /// Most occupied slots allowed: three quarters of the slots.
    limit: usize,
    /// A lower bound of the expiries of occupied slots (`u64::MAX` when empty).
    min_expiry: u64,
}

impl MemoryNonceStore {
    /// A store for at least `capacity` live claims (rounded up, see
    /// [`capacity`](MemoryNonceStore::capacity); clamped to [`MAX_CAPACITY`]), with
    /// [`DEFAULT_SHARDS`] shards and the [`SystemClock`].
    pub fn new(capacity: usize) -> Self {
        Self::build(capacity, DEFAULT_SHARDS, Arc::new(SystemClock))
    }

    /// The same store with `shards` shards (rounded up to a power of two, 1 to 65,536).
    /// More shards mean less lock contention; each shard holds at least one entry.
    #[must_use]
    pub fn with_shards(self, shards: usize) -> Self {
        let clock = Arc::clone(&self.inner.clock);
        Self::build(self.inner.requested, shards, clock)
    }

    /// The same store reading "now" from `clock` (a `ManualClock` in tests).
    #[must_use]
    pub fn with_clock(self, clock: impl Clock) -> Self {
        Self::build(
            self.inner.requested,
            self.inner.shards.len(),
            Arc::new(clock),
        )
    }

    fn build(capacity: usize, shards: usize, clock: SharedClock) -> Self {
        let requested = capacity.clamp(1, MAX_CAPACITY);
        let shard_count = shards.clamp(1, 1 << 16).next_power_of_two();
        let per_shard = requested.div_ceil(shard_count);
        // Enough slots that three quarters of them hold `per_shard` entries.
        let slots = (per_shard * 4).div_ceil(3).next_power_of_two().max(4);
        let limit = slots / 4 * 3;
        let shards: Box<[Mutex<Shard>]> = (0..shard_count)
            .map(|_| {
                Mutex::new(Shard {
                    slots: vec![[0u64; 3]; slots],
                    len: 0,
                    limit,
                    min_expiry: u64::MAX,
                })
            })
            .collect();
        Self {
            inner: Arc::new(Inner {
                shards,
                hash_hi: RandomState::new(),
                hash_lo: RandomState::new(),
                clock,
                capacity: limit * shard_count,
                requested,
                slots: slots * shard_count,
            }),
        }
    }

    /// The effective capacity: how many unexpired claims the store holds at most (at least
    /// the capacity asked for). Because keys spread over shards by hash, a shard can fill a
    /// little before the whole store does.
    pub fn capacity(&self) -> usize {
        self.inner.capacity
    }

    /// The number of shards.
    pub fn shards(&self) -> usize {
        self.inner.shards.len()
    }

    /// The bytes of the store's tables: slots × [`SLOT_BYTES`]. This is the store's memory
    /// bound; it does not grow with traffic.
    pub fn memory_bytes(&self) -> usize {
        self.inner.slots * SLOT_BYTES
    }

    /// The number of occupied entries, including expired ones not reclaimed yet.
    pub fn len(&self) -> usize {
        self.inner
            .shards
            .iter()
            .map(|shard| shard.lock().unwrap_or_else(PoisonError::into_inner).len)
            .sum()
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// [`NonceStore::claim`] without a future: claims `key` until `expires_at` (Unix seconds,
    /// inclusive) or reports it as already seen, or [`StoreError::Full`].
    pub fn claim_now(&self, key: &[u8], expires_at: u64) -> Result<Claim, StoreError> {
        let inner = &*self.inner;
        let mut fingerprint = [inner.hash_hi.hash_one(key), inner.hash_lo.hash_one(key)];
        if fingerprint == [0, 0] {
            // All-zero marks an empty slot.
            fingerprint[1] = 1;
        }
        let shard_count = inner.shards.len() as u64;
        let index = usize::try_from(fingerprint[1] % shard_count).unwrap_or(0);
        let now = inner.clock.now_unix();
        let mut shard = inner.shards[index]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        shard.claim(fingerprint, expires_at, now)
    }
}

impl Shard {
    fn home(&self, fingerprint: [u64; 2]) -> usize {
        let mask = (self.slots.len() - 1) as u64;
        usize::try_from(fingerprint[0] & mask).unwrap_or(0)
    }

    fn claim(&mut self, fp: [u64; 2], expires_at: u64, now: u64) -> Result<Claim, StoreError> {
        let mask = self.slots.len() - 1;
        let mut i = self.home(fp);
        let mut reusable = None;
        // Ends: fewer than all slots are ever occupied, so an empty slot closes every chain.
        loop {
            let slot = self.slots[i];
            if slot[0] == 0 && slot[1] == 0 {
                break;
            }
            if slot[0] == fp[0] && slot[1] == fp[1] {
                if slot[2] >= now {
                    return Ok(Claim::AlreadySeen);
                }
                self.slots[i][2] = expires_at;
                self.min_expiry = self.min_expiry.min(expires_at);
                return Ok(Claim::Claimed);
            }
            if reusable.is_none() && slot[2] < now {
                reusable = Some(i);
            }
            i = (i + 1) & mask;
        }
        // The key is not held. Reuse an expired slot of its chain, else take the empty one.
        if let Some(slot) = reusable {
            self.slots[slot] = [fp[0], fp[1], expires_at];
            self.min_expiry = self.min_expiry.min(expires_at);
            return Ok(Claim::Claimed);
        }
        if self.len >= self.limit {
            if self.min_expiry >= now {
                // Full of unexpired entries: refuse, never evict.
                return Err(StoreError::Full);
            }
            self.rebuild(now);
            if self.len >= self.limit {
                return Err(StoreError::Full);
            }
            i = self.free_slot(fp);
        }
        self.slots[i] = [fp[0], fp[1], expires_at];
        self.len += 1;
        self.min_expiry = self.min_expiry.min(expires_at);
        Ok(Claim::Claimed)
    }

    /// The first empty slot of `fp`'s chain.
    fn free_slot(&self, fp: [u64; 2]) -> usize {
        let mask = self.slots.len() - 1;
        let mut i = self.home(fp);
        while self.slots[i][0] != 0 || self.slots[i][1] != 0 {
            i = (i + 1) & mask;
        }
        i
    }

    /// Rebuilds the table without its expired entries (same size, so the memory bound holds).
    fn rebuild(&mut self, now: u64) {
        let size = self.slots.len();
        let old = std::mem::replace(&mut self.slots, vec![[0u64; 3]; size]);
        self.len = 0;
        self.min_expiry = u64::MAX;
        for slot in old {
            if (slot[0] != 0 || slot[1] != 0) && slot[2] >= now {
                let i = self.free_slot([slot[0], slot[1]]);
                self.slots[i] = slot;
                self.len += 1;
                self.min_expiry = self.min_expiry.min(slot[2]);
            }
        }
    }
}

impl NonceStore for MemoryNonceStore {
    fn claim<'a>(&'a self, key: &'a [u8], expires_at: u64) -> ClaimFuture<'a> {
        Box::pin(std::future::ready(self.claim_now(key, expires_at)))
    }
}

impl Default for MemoryNonceStore {
    /// [`MemoryNonceStore::new`] with [`DEFAULT_CAPACITY`].
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY)
    }
}

impl fmt::Debug for MemoryNonceStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryNonceStore")
            .field("capacity", &self.inner.capacity)
            .field("shards", &self.inner.shards.len())
            .field("memory_bytes", &self.memory_bytes())
            .field("clock", &self.inner.clock)
            .finish_non_exhaustive()
    }
}
