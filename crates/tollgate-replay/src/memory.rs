//! [`MemoryNonceStore`]: the embedded, per-process nonce store.

use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tollgate_core::metrics;
use tollgate_core::{Clock, SharedClock, SystemClock};

use crate::store::{
    Claim, ClaimFuture, ClaimId, DEFAULT_MIN_RETENTION, NonceStore, ReleaseFuture, StoreError,
    held_until,
};

/// The capacity [`MemoryNonceStore::default`] asks for: 100,000 live claims (rounded up to an
/// effective 196,608 in 6 MiB of tables; see [`MemoryNonceStore::memory_bytes`]).
pub const DEFAULT_CAPACITY: usize = 100_000;

/// The `store` label of this store's metrics.
const KIND: &str = "memory";

/// The number of shards (independent locks) unless configured otherwise.
pub const DEFAULT_SHARDS: usize = 64;

/// The largest capacity a store accepts; larger requests are clamped to it.
pub const MAX_CAPACITY: usize = 1 << 31;

/// Bytes of one table slot: a 128-bit keyed fingerprint and the expiry, as three `u64`s.
pub const SLOT_BYTES: usize = size_of::<Slot>();

/// One slot: fingerprint (high, low) and a word holding `expires_at` (low [`EXPIRY_BITS`]
/// bits) and the claim's tag (the high bits: the low 30 bits of its [`ClaimId`], 0 when it was
/// claimed without one), so a release removes only the claim it made. All zero means empty.
type Slot = [u64; 3];

/// Bits of a slot's word that hold the expiry: Unix seconds until the year 2514 (later
/// expiries are held until then).
const EXPIRY_BITS: u32 = 34;
const EXPIRY_MASK: u64 = (1 << EXPIRY_BITS) - 1;

fn expiry(word: u64) -> u64 {
    word & EXPIRY_MASK
}

fn tag(word: u64) -> u64 {
    word >> EXPIRY_BITS
}

fn pack(expires_at: u64, tag: u64) -> u64 {
    (tag << EXPIRY_BITS) | expires_at.min(EXPIRY_MASK)
}

/// The tag of a claim made with `id`: never 0.
fn tag_of(id: ClaimId) -> u64 {
    (id.get() & ((1 << (64 - EXPIRY_BITS)) - 1)).max(1)
}

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
/// resident memory of a full store). A claim is held for the longer of
/// `timestamp + tolerance − now` (at most twice the tolerance) and the minimum retention
/// (600 s by default), so with the default ±300 s window every claim lives about 600 s: a
/// service accepting `r` requests per second needs a capacity of about `600 × r`. For example
/// `MemoryNonceStore::new(600_000)` for 1,000 requests per second: an effective capacity of
/// 786,432 claims in 24 MiB of tables.
///
/// # When it is full
///
/// Expired entries are reclaimed: a new claim reuses an expired slot on its probe path, and a
/// shard that reaches its limit is rebuilt without its expired entries. An unexpired entry is
/// **never evicted** (that would reopen the replay window for its request): when a shard is
/// full of unexpired entries, `claim` returns [`StoreError::Full`], which the replay guard
/// answers with 503 `store_full`. Size the store so that this does not happen in normal
/// traffic; place the guard inside the signature verifier so forged requests cannot fill it.
///
/// # Time
///
/// "Now" comes from the injected [`Clock`] ([`SystemClock`] by default). A claim asked for
/// with `expires_at` is held through [`held_until`]`(expires_at, now, min_retention)`, the
/// later of `expires_at` and `now +` [`min_retention`](MemoryNonceStore::with_min_retention),
/// and reclaimable from the next second. The minimum retention keeps a replay refused even
/// when the verifier's clock (which computed `expires_at`) is not the store's.
///
/// ```
/// use std::time::Duration;
/// use tollgate_core::ManualClock;
/// use tollgate_replay::{Claim, MemoryNonceStore};
///
/// let clock = ManualClock::new(1_700_000_000);
/// let store = MemoryNonceStore::new(1_000).with_clock(clock.clone());
/// assert_eq!(store.min_retention(), Duration::from_secs(600));
/// assert_eq!(store.claim_now(b"nonce-1", 1_700_000_300).ok(), Some(Claim::Claimed));
/// assert_eq!(store.claim_now(b"nonce-1", 1_700_000_300).ok(), Some(Claim::AlreadySeen));
/// // Past `expires_at` but within the minimum retention: still held.
/// clock.advance(301);
/// assert_eq!(store.claim_now(b"nonce-1", 1_700_000_601).ok(), Some(Claim::AlreadySeen));
/// // Past both: free again.
/// clock.set(1_700_000_601);
/// assert_eq!(store.claim_now(b"nonce-1", 1_700_000_901).ok(), Some(Claim::Claimed));
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
    min_retention: Duration,
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
    /// How often the table was rebuilt (a test checks it stays one per second when full).
    rebuilds: u64,
}

impl MemoryNonceStore {
    /// A store for at least `capacity` live claims (rounded up, see
    /// [`capacity`](MemoryNonceStore::capacity); clamped to [`MAX_CAPACITY`]), with
    /// [`DEFAULT_SHARDS`] shards and the [`SystemClock`].
    pub fn new(capacity: usize) -> Self {
        Self::build(
            capacity,
            DEFAULT_SHARDS,
            Arc::new(SystemClock),
            DEFAULT_MIN_RETENTION,
        )
    }

    /// The same store (a new, empty table) with `shards` shards (rounded up to a power of
    /// two, 1 to 65,536). More shards mean less lock contention; each shard holds at least one
    /// entry.
    #[must_use]
    pub fn with_shards(self, shards: usize) -> Self {
        let inner = &self.inner;
        Self::build(
            inner.requested,
            shards,
            Arc::clone(&inner.clock),
            inner.min_retention,
        )
    }

    /// The same store (a new, empty table) reading "now" from `clock` (a `ManualClock` in
    /// tests).
    #[must_use]
    pub fn with_clock(self, clock: impl Clock) -> Self {
        let inner = &self.inner;
        Self::build(
            inner.requested,
            inner.shards.len(),
            Arc::new(clock),
            inner.min_retention,
        )
    }

    /// The same store (a new, empty table) holding every claim for at least `min_retention`
    /// from its own clock (default [`DEFAULT_MIN_RETENTION`], 600 s; whole seconds), whatever
    /// the `expires_at` it is asked for: see [`held_until`]. Keep it at least twice the
    /// guard's tolerance; `Duration::ZERO` trusts `expires_at` alone, which is safe only when
    /// the verifier and the store read the same clock.
    #[must_use]
    pub fn with_min_retention(self, min_retention: Duration) -> Self {
        let inner = &self.inner;
        Self::build(
            inner.requested,
            inner.shards.len(),
            Arc::clone(&inner.clock),
            min_retention,
        )
    }

    fn build(capacity: usize, shards: usize, clock: SharedClock, min_retention: Duration) -> Self {
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
                    rebuilds: 0,
                })
            })
            .collect();
        metrics::nonce_store_size(KIND, 0.0, (limit * shard_count) as f64);
        Self {
            inner: Arc::new(Inner {
                shards,
                hash_hi: RandomState::new(),
                hash_lo: RandomState::new(),
                clock,
                min_retention,
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

    /// The least time a claim is held, from the store's clock.
    pub fn min_retention(&self) -> Duration {
        self.inner.min_retention
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

    /// [`NonceStore::claim`] without a future: claims `key` until
    /// [`held_until`]`(expires_at, now, min_retention)` (Unix seconds, inclusive) or reports it
    /// as already seen, or [`StoreError::Full`].
    pub fn claim_now(&self, key: &[u8], expires_at: u64) -> Result<Claim, StoreError> {
        self.claim_tagged(key, expires_at, 0, false)
    }

    /// [`claim_now`](Self::claim_now), tagged with `id` so that
    /// [`release_now`](Self::release_now) with the same id can remove it.
    pub fn claim_now_with_id(
        &self,
        key: &[u8],
        expires_at: u64,
        id: ClaimId,
    ) -> Result<Claim, StoreError> {
        self.claim_tagged(key, expires_at, tag_of(id), false)
    }

    /// `extend`: a key already held is kept until at least `expires_at` (see
    /// [`NonceStore::claim_extending`]).
    fn claim_tagged(
        &self,
        key: &[u8],
        expires_at: u64,
        tag: u64,
        extend: bool,
    ) -> Result<Claim, StoreError> {
        let inner = &*self.inner;
        let fingerprint = inner.fingerprint(key);
        let shard_count = inner.shards.len() as u64;
        let index = usize::try_from(fingerprint[1] % shard_count).unwrap_or(0);
        let now = inner.clock.now_unix();
        let expires_at = held_until(expires_at, now, inner.min_retention);
        let mut shard = inner.shards[index]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let before = shard.len;
        // Past the year 2514 every time is that year's (see `EXPIRY_BITS`).
        let claimed = shard.claim(
            fingerprint,
            pack(expires_at, tag),
            now.min(EXPIRY_MASK - 1),
            extend,
        );
        let after = shard.len;
        drop(shard);
        if after != before {
            // The process's `tollgate_nonce_store_entries{store="memory"}`: a new entry, or
            // the expired ones a rebuild dropped.
            metrics::nonce_store_size(KIND, after as f64 - before as f64, 0.0);
        }
        claimed
    }

    /// Releases the live claim of `key` made with `id` ([`claim_now_with_id`](Self::claim_now_with_id);
    /// the replay guard's answer to a failed handling): `true` when it was removed. A claim
    /// made by another request (say after this one's claim expired during a long handling) is
    /// never removed: the slot keeps a 30-bit tag of the claim's id and the release compares it.
    pub fn release_now(&self, key: &[u8], id: ClaimId) -> bool {
        let inner = &*self.inner;
        let fingerprint = inner.fingerprint(key);
        let shard_count = inner.shards.len() as u64;
        let index = usize::try_from(fingerprint[1] % shard_count).unwrap_or(0);
        let now = inner.clock.now_unix();
        let mut shard = inner.shards[index]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        shard.release(fingerprint, now.min(EXPIRY_MASK - 1), tag_of(id))
    }
}

/// Takes this store's entries and capacity off the process's gauges.
impl Drop for Inner {
    fn drop(&mut self) {
        let entries: usize = self
            .shards
            .iter()
            .map(|shard| shard.lock().unwrap_or_else(PoisonError::into_inner).len)
            .sum();
        metrics::nonce_store_size(KIND, -(entries as f64), -(self.capacity as f64));
    }
}

impl Inner {
    fn fingerprint(&self, key: &[u8]) -> [u64; 2] {
        let mut fingerprint = [self.hash_hi.hash_one(key), self.hash_lo.hash_one(key)];
        if fingerprint == [0, 0] {
            // All-zero marks an empty slot.
            fingerprint[1] = 1;
        }
        fingerprint
    }
}

impl Shard {
    /// Marks the live slot of `fp` claimed with `tag` expired (reusable at once); `true` when
    /// there was one.
    fn release(&mut self, fp: [u64; 2], now: u64, tag: u64) -> bool {
        let mask = self.slots.len() - 1;
        let mut i = self.home(fp);
        loop {
            let slot = self.slots[i];
            if slot[0] == 0 && slot[1] == 0 {
                return false;
            }
            if slot[0] == fp[0] && slot[1] == fp[1] {
                if expiry(slot[2]) < now || self::tag(slot[2]) != tag {
                    return false;
                }
                // Expired as of `now` (`now - 1 < now`), so the probe chain stays intact and
                // the slot is reused by the next claim on it.
                self.slots[i][2] = now.saturating_sub(1);
                self.min_expiry = self.min_expiry.min(now.saturating_sub(1));
                return true;
            }
            i = (i + 1) & mask;
        }
    }

    fn home(&self, fingerprint: [u64; 2]) -> usize {
        let mask = (self.slots.len() - 1) as u64;
        usize::try_from(fingerprint[0] & mask).unwrap_or(0)
    }

    /// Claims `fp` with `word` (the packed expiry and tag); with `extend`, a live claim of
    /// `fp` is kept until at least `word`'s expiry (its tag unchanged).
    fn claim(
        &mut self,
        fp: [u64; 2],
        word: u64,
        now: u64,
        extend: bool,
    ) -> Result<Claim, StoreError> {
        let expires_at = expiry(word);
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
                if expiry(slot[2]) >= now {
                    if extend && expires_at > expiry(slot[2]) {
                        // Later only: `min_expiry` (a lower bound) stays true.
                        self.slots[i][2] = pack(expires_at, tag(slot[2]));
                    }
                    return Ok(Claim::AlreadySeen);
                }
                self.slots[i][2] = word;
                self.min_expiry = self.min_expiry.min(expires_at);
                return Ok(Claim::Claimed);
            }
            if reusable.is_none() && expiry(slot[2]) < now {
                reusable = Some(i);
            }
            i = (i + 1) & mask;
        }
        // The key is not held. Reuse an expired slot of its chain, else take the empty one.
        if let Some(slot) = reusable {
            self.slots[slot] = [fp[0], fp[1], word];
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
        self.slots[i] = [fp[0], fp[1], word];
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
        self.rebuilds += 1;
        let size = self.slots.len();
        let old = std::mem::replace(&mut self.slots, vec![[0u64; 3]; size]);
        self.len = 0;
        self.min_expiry = u64::MAX;
        for slot in old {
            if (slot[0] != 0 || slot[1] != 0) && expiry(slot[2]) >= now {
                let i = self.free_slot([slot[0], slot[1]]);
                self.slots[i] = slot;
                self.len += 1;
                self.min_expiry = self.min_expiry.min(expiry(slot[2]));
            }
        }
    }
}

impl NonceStore for MemoryNonceStore {
    fn claim<'a>(&'a self, key: &'a [u8], expires_at: u64) -> ClaimFuture<'a> {
        Box::pin(std::future::ready(self.claim_now(key, expires_at)))
    }

    fn claim_with_id<'a>(&'a self, key: &'a [u8], expires_at: u64, id: ClaimId) -> ClaimFuture<'a> {
        Box::pin(std::future::ready(
            self.claim_now_with_id(key, expires_at, id),
        ))
    }

    fn claim_extending<'a>(
        &'a self,
        key: &'a [u8],
        expires_at: u64,
        id: ClaimId,
    ) -> ClaimFuture<'a> {
        Box::pin(std::future::ready(self.claim_tagged(
            key,
            expires_at,
            tag_of(id),
            true,
        )))
    }

    fn release<'a>(&'a self, key: &'a [u8], id: ClaimId) -> ReleaseFuture<'a> {
        Box::pin(std::future::ready(Ok(self.release_now(key, id))))
    }

    /// `memory`.
    fn kind(&self) -> &'static str {
        KIND
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
            .field("min_retention", &self.inner.min_retention)
            .field("clock", &self.inner.clock)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tollgate_core::ManualClock;

    use super::*;

    const NOW: u64 = 1_700_000_000;

    fn claimed(result: Result<Claim, StoreError>) -> Claim {
        result.unwrap()
    }

    #[test]
    fn a_claim_refused_as_seen_extends_the_held_key_never_shortens_it() {
        let clock = ManualClock::new(1_000);
        let store = MemoryNonceStore::new(100)
            .with_clock(clock.clone())
            .with_min_retention(std::time::Duration::ZERO);
        // What `NonceStore::claim_extending` runs.
        let extending = |key: &[u8], expires_at| {
            claimed(store.claim_tagged(key, expires_at, tag_of(ClaimId::new()), true))
        };
        let first = ClaimId::new();
        for key in [&b"msg"[..], b"msg2"] {
            assert_eq!(
                claimed(store.claim_now_with_id(key, 1_300, first)),
                Claim::Claimed
            );
            // Seen again with a later expiry: refused, and held through it.
            assert_eq!(extending(key, 1_890), Claim::AlreadySeen);
            // An earlier expiry never shortens it; a plain claim never extends it.
            assert_eq!(extending(key, 1_010), Claim::AlreadySeen);
            assert_eq!(claimed(store.claim_now(key, 5_000)), Claim::AlreadySeen);
        }
        // Still the first claim's: another id does not release it, its own does.
        clock.set(1_500);
        assert!(!store.release_now(b"msg2", ClaimId::new()));
        assert!(store.release_now(b"msg2", first));
        assert_eq!(claimed(store.claim_now(b"msg2", 1_600)), Claim::Claimed);
        // Held through the extended second, free after it.
        clock.set(1_890);
        assert_eq!(claimed(store.claim_now(b"msg", 1_890)), Claim::AlreadySeen);
        clock.set(1_891);
        assert_eq!(claimed(store.claim_now(b"msg", 1_900)), Claim::Claimed);
    }

    #[test]
    fn a_released_claim_can_be_claimed_again_and_only_a_live_one_is_released() {
        let clock = ManualClock::new(NOW);
        let store = MemoryNonceStore::new(16).with_clock(clock.clone());
        let (mine, other) = (ClaimId::new(), ClaimId::new());
        assert!(!store.release_now(b"never", mine));
        assert_eq!(
            claimed(store.claim_now_with_id(b"k", NOW + 300, mine)),
            Claim::Claimed
        );
        assert_eq!(
            claimed(store.claim_now(b"k", NOW + 300)),
            Claim::AlreadySeen
        );
        // Another request's id never releases it.
        assert!(!store.release_now(b"k", other));
        assert!(store.release_now(b"k", mine));
        assert!(!store.release_now(b"k", mine));
        assert_eq!(
            claimed(store.claim_now_with_id(b"k", NOW + 300, other)),
            Claim::Claimed
        );
        assert_eq!(
            claimed(store.claim_now(b"k", NOW + 300)),
            Claim::AlreadySeen
        );
        // The first request, whose claim is gone, cannot release the second's.
        assert!(!store.release_now(b"k", mine));
        // An expired claim is not "released" (nothing was held).
        clock.advance(601);
        assert!(!store.release_now(b"k", other));
        // A claim without an id can never be released.
        assert_eq!(claimed(store.claim_now(b"z", NOW + 900)), Claim::Claimed);
        assert!(!store.release_now(b"z", mine));
    }

    /// A full store refuses without rebuilding a shard per claim: at most one rebuild per
    /// second, and none while nothing can have expired.
    #[test]
    fn a_full_store_rebuilds_at_most_once_a_second() {
        let clock = ManualClock::new(NOW);
        let store = MemoryNonceStore::new(6)
            .with_shards(1)
            .with_clock(clock.clone());
        let rebuilds = || store.inner.shards[0].lock().unwrap().rebuilds;
        let mut n = 0u64;
        let mut claim = |at: u64| {
            n += 1;
            store.claim_now(&n.to_be_bytes(), at)
        };
        for _ in 0..6 {
            assert_eq!(claimed(claim(NOW + 300)), Claim::Claimed);
        }
        for _ in 0..1_000 {
            assert!(matches!(claim(NOW + 300), Err(StoreError::Full)));
        }
        assert_eq!(rebuilds(), 0);
        // Time passes but nothing has expired yet: one rebuild finds nothing, then none.
        clock.advance(10);
        for _ in 0..1_000 {
            assert!(matches!(claim(NOW + 300), Err(StoreError::Full)));
        }
        assert!(rebuilds() <= 1, "{}", rebuilds());
        // Everything expires: one rebuild frees the whole shard.
        clock.advance(700);
        let before = rebuilds();
        for _ in 0..6 {
            assert_eq!(claimed(claim(NOW + 1_000)), Claim::Claimed);
        }
        // Expired slots on a probe chain are reused without a rebuild; at most one is needed.
        assert!(rebuilds() <= before + 1, "{}", rebuilds());
    }

    #[test]
    fn sizing_is_rounded_up_and_bounded() {
        let store = MemoryNonceStore::new(4).with_shards(1);
        // 4 entries need 6 slots at 3/4 load: 8 slots, 6 usable.
        assert_eq!((store.capacity(), store.shards()), (6, 1));
        assert_eq!(store.memory_bytes(), 8 * 24);
        assert_eq!(SLOT_BYTES, 24);

        for capacity in [1, 1_000, 100_000, 600_000, 1_000_000] {
            let store = MemoryNonceStore::new(capacity);
            assert!(store.capacity() >= capacity, "{capacity}");
            // Never more than 64 bytes per entry asked for, 32 per entry of the effective capacity.
            if capacity >= 1_000 {
                assert!(store.memory_bytes() <= 64 * capacity, "{capacity}");
            }
            assert_eq!(store.memory_bytes(), 32 * store.capacity(), "{capacity}");
        }
        let store = MemoryNonceStore::new(10).with_shards(usize::MAX);
        assert_eq!(store.shards(), 1 << 16);
        assert_eq!(store.capacity(), 3 << 16);
        assert!(MemoryNonceStore::default().capacity() >= DEFAULT_CAPACITY);
    }

    #[test]
    fn claim_then_already_seen_then_expiry() {
        let clock = ManualClock::new(NOW);
        let store = MemoryNonceStore::new(100)
            .with_clock(clock.clone())
            .with_min_retention(Duration::ZERO);
        assert_eq!(claimed(store.claim_now(b"a", NOW + 300)), Claim::Claimed);
        assert_eq!(
            claimed(store.claim_now(b"a", NOW + 300)),
            Claim::AlreadySeen
        );
        assert_eq!(claimed(store.claim_now(b"b", NOW + 300)), Claim::Claimed);
        // Held through its expiry second (inclusive) ...
        clock.set(NOW + 300);
        assert_eq!(
            claimed(store.claim_now(b"a", NOW + 600)),
            Claim::AlreadySeen
        );
        // ... and free from the next one.
        clock.set(NOW + 301);
        assert_eq!(claimed(store.claim_now(b"a", NOW + 601)), Claim::Claimed);
        assert_eq!(
            claimed(store.claim_now(b"a", NOW + 601)),
            Claim::AlreadySeen
        );
        assert_eq!(store.len(), 2);
        assert!(!store.is_empty());
    }

    #[test]
    fn full_refuses_without_evicting_then_reclaims_expired() {
        let clock = ManualClock::new(NOW);
        let store = MemoryNonceStore::new(4)
            .with_shards(1)
            .with_clock(clock.clone())
            .with_min_retention(Duration::ZERO);
        let capacity = store.capacity();
        for i in 0..capacity {
            let key = format!("nonce-{i}");
            // Staggered expiries: entry i expires at NOW + 10 + i.
            let expiry = NOW + 10 + i as u64;
            assert_eq!(
                claimed(store.claim_now(key.as_bytes(), expiry)),
                Claim::Claimed
            );
        }
        assert!(matches!(
            store.claim_now(b"one-too-many", NOW + 300),
            Err(StoreError::Full)
        ));
        // Nothing was evicted: every entry is still a replay.
        for i in 0..capacity {
            let key = format!("nonce-{i}");
            assert_eq!(
                claimed(store.claim_now(key.as_bytes(), NOW + 300)),
                Claim::AlreadySeen,
                "{key}"
            );
        }
        assert_eq!(store.len(), capacity);
        // The first two expire: exactly two new claims fit, then full again.
        clock.set(NOW + 12);
        assert_eq!(
            claimed(store.claim_now(b"new-1", NOW + 300)),
            Claim::Claimed
        );
        assert_eq!(
            claimed(store.claim_now(b"new-2", NOW + 300)),
            Claim::Claimed
        );
        assert!(matches!(
            store.claim_now(b"new-3", NOW + 300),
            Err(StoreError::Full)
        ));
        for i in 2..capacity {
            let key = format!("nonce-{i}");
            assert_eq!(
                claimed(store.claim_now(key.as_bytes(), NOW + 300)),
                Claim::AlreadySeen
            );
        }
        // Everything expires: the whole capacity is available again.
        clock.set(NOW + 301);
        for i in 0..capacity {
            let key = format!("later-{i}");
            assert_eq!(
                claimed(store.claim_now(key.as_bytes(), NOW + 600)),
                Claim::Claimed
            );
        }
        assert!(matches!(
            store.claim_now(b"later-x", NOW + 600),
            Err(StoreError::Full)
        ));
        assert_eq!(StoreError::Full.to_rejection().code(), "store_full");
        assert_eq!(StoreError::Full.to_rejection().status().as_u16(), 503);
    }

    #[test]
    fn many_keys_fill_a_sharded_store_to_its_capacity() {
        let clock = ManualClock::new(NOW);
        let store = MemoryNonceStore::new(10_000)
            .with_shards(4)
            .with_clock(clock.clone())
            .with_min_retention(Duration::ZERO);
        let mut accepted = 0usize;
        let mut full = 0usize;
        for i in 0..(store.capacity() + 2_000) {
            match store.claim_now(format!("k{i}").as_bytes(), NOW + 300) {
                Ok(Claim::Claimed) => accepted += 1,
                Ok(Claim::AlreadySeen) => panic!("fingerprint collision at {i}"),
                Err(StoreError::Full) => full += 1,
                Err(other) => panic!("{other}"),
            }
        }
        // Shards fill at slightly different times, never beyond the capacity.
        assert!(accepted <= store.capacity());
        assert!(accepted >= store.capacity() * 9 / 10, "{accepted}");
        assert!(full >= 2_000);
        // Expired entries are reclaimed by the rebuild of a full shard.
        clock.set(NOW + 301);
        let mut again = 0usize;
        while let Ok(claim) = store.claim_now(format!("again{again}").as_bytes(), NOW + 600) {
            assert_eq!(claim, Claim::Claimed);
            again += 1;
        }
        assert!(again >= store.capacity() * 9 / 10, "{again}");
        assert!(store.len() <= store.capacity());
    }

    #[test]
    fn default_sizes_match_the_docs() {
        let store = MemoryNonceStore::default();
        assert_eq!(store.capacity(), 196_608);
        assert_eq!(store.memory_bytes(), 6 << 20);
        let store = MemoryNonceStore::new(600_000);
        assert_eq!(store.capacity(), 786_432);
        assert_eq!(store.memory_bytes(), 24 << 20);
        assert_eq!(store.min_retention(), DEFAULT_MIN_RETENTION);
        // Every builder keeps the other settings.
        let store = MemoryNonceStore::new(1_000)
            .with_min_retention(Duration::from_secs(42))
            .with_shards(2)
            .with_clock(ManualClock::new(NOW));
        assert_eq!(store.min_retention(), Duration::from_secs(42));
        assert_eq!(store.shards(), 2);
        assert!(store.capacity() >= 1_000);
    }

    #[test]
    fn min_retention_outlives_an_expiry_computed_on_another_clock() {
        let clock = ManualClock::new(NOW);
        let store = MemoryNonceStore::new(100).with_clock(clock.clone());
        // The verifier's clock is 10 years behind: its expiry is long past by the store's.
        let stale = NOW - 315_360_000 + 300;
        assert_eq!(claimed(store.claim_now(b"k", stale)), Claim::Claimed);
        assert_eq!(claimed(store.claim_now(b"k", stale)), Claim::AlreadySeen);
        clock.set(NOW + 600);
        assert_eq!(claimed(store.claim_now(b"k", stale)), Claim::AlreadySeen);
        clock.set(NOW + 601);
        assert_eq!(claimed(store.claim_now(b"k", stale)), Claim::Claimed);
        // An expiry later than the retention is kept in full.
        assert_eq!(
            claimed(store.claim_now(b"late", NOW + 5_000)),
            Claim::Claimed
        );
        clock.set(NOW + 5_000);
        assert_eq!(
            claimed(store.claim_now(b"late", NOW + 5_000)),
            Claim::AlreadySeen
        );
        // Without a minimum retention the stale expiry is held for the current second only,
        // and reclaimable from the next: the hole the retention closes.
        let trusting = MemoryNonceStore::new(100)
            .with_clock(clock.clone())
            .with_min_retention(Duration::ZERO);
        assert_eq!(claimed(trusting.claim_now(b"k", stale)), Claim::Claimed);
        assert_eq!(claimed(trusting.claim_now(b"k", stale)), Claim::AlreadySeen);
        clock.advance(1);
        assert_eq!(claimed(trusting.claim_now(b"k", stale)), Claim::Claimed);
        // Saturating at the end of time.
        clock.set(u64::MAX - 10);
        assert_eq!(claimed(store.claim_now(b"end", 0)), Claim::Claimed);
        assert_eq!(claimed(store.claim_now(b"end", 0)), Claim::AlreadySeen);
    }

    #[test]
    fn fingerprints_are_keyed_per_store() {
        let a = MemoryNonceStore::new(10);
        let b = MemoryNonceStore::new(10);
        let fa = a.inner.hash_hi.hash_one(b"same".as_slice());
        let fb = b.inner.hash_hi.hash_one(b"same".as_slice());
        assert_ne!(fa, fb);
        let debug = format!("{a:?}");
        assert!(
            debug.starts_with("MemoryNonceStore { capacity: "),
            "{debug}"
        );
    }

    #[test]
    fn concurrent_claims_of_one_key_have_one_winner() {
        let store = MemoryNonceStore::new(1_000);
        for round in 0..20 {
            let winners = AtomicUsize::new(0);
            let key = format!("contended-{round}");
            std::thread::scope(|scope| {
                for _ in 0..16 {
                    scope.spawn(|| {
                        if store.claim_now(key.as_bytes(), u64::MAX).unwrap() == Claim::Claimed {
                            winners.fetch_add(1, Ordering::SeqCst);
                        }
                    });
                }
            });
            assert_eq!(winners.load(Ordering::SeqCst), 1);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_tasks_through_the_trait_have_one_winner() {
        let store: Arc<dyn NonceStore> = Arc::new(MemoryNonceStore::new(1_000));
        let tasks: Vec<_> = (0..64)
            .map(|_| {
                let store = Arc::clone(&store);
                tokio::spawn(async move { store.claim(b"one-nonce", u64::MAX).await.unwrap() })
            })
            .collect();
        let mut winners = 0;
        for task in tasks {
            if task.await.unwrap() == Claim::Claimed {
                winners += 1;
            }
        }
        assert_eq!(winners, 1);
    }
}
