//! [`IpRangesHandle`]: trusted proxies and allowlists that change while the service runs.

use std::cell::RefCell;
use std::fmt;
use std::net::IpAddr;
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering, fence};
use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwap;

use crate::IpRanges;
use crate::parse::canonical;

/// A shared, swappable [`IpRanges`]: refresh Cloudflare's ranges, your proxies' addresses or
/// an IP allowlist without rebuilding the service.
///
/// Accepted where ranges are: [`ClientIpSource::header`](crate::ClientIpSource::header) and
/// [`rightmost_trusted_range`](crate::ClientIpSource::rightmost_trusted_range) take
/// `impl Into<IpRangesHandle>` (an [`IpRanges`] becomes a handle nobody else holds, used as
/// fixed ranges), and [`IpAllowlistLayer::with_handle`](crate::IpAllowlistLayer::with_handle)
/// takes one.
///
/// - **Readers never lock.** [`load`](Self::load) is an [`arc_swap`] load without a
///   reference-count bump.
/// - **One version per request.** The layers load each handle once per request and decide
///   with that one value: a list header walked right to left is judged against one set of
///   trusted proxies, never half the old and half the new. A [`store`](Self::store) is seen by
///   the next request.
/// - **Cheap reads on the request path.** The handle keeps a copy of the current ranges in
///   atomic words with a sequence number that every `store` changes (a sequence lock): a
///   request's trust walk reads the words in place and checks afterwards that the sequence
///   number did not move, so it used exactly one version; if a store ran meanwhile, the walk
///   is done again on a version loaded whole. No shared write, no reference count. Sets of
///   more ranges than the copy holds (at least 32 IPv4 and 16 IPv6 ranges, twice the first
///   set's sizes if larger, at most 1,024 and 256) are read through a per-thread cache of the
///   last version read instead, which may keep an old version alive until that thread reads
///   the handle again.
/// - `Clone` shares the cell; `Debug` prints the current ranges.
///
/// [`IpRanges`] is always valid once built (parsing fails with
/// [`ConfigError`](crate::ConfigError) on bad input), so `store` cannot fail: parse first.
///
/// ```
/// use tollgate_client_ip::{IpRanges, IpRangesHandle};
///
/// let proxies = IpRangesHandle::new("10.0.0.5".parse().unwrap());
/// assert!(proxies.load().contains("10.0.0.5".parse().unwrap()));
/// proxies.store("10.0.0.6, 10.0.0.7".parse::<IpRanges>().unwrap());
/// assert!(!proxies.load().contains("10.0.0.5".parse().unwrap()));
/// assert_eq!(format!("{proxies:?}"), "IpRangesHandle([10.0.0.6/32, 10.0.0.7/32])");
/// ```
#[derive(Clone)]
pub struct IpRangesHandle {
    cell: Arc<Cell>,
}

/// What the clones of one handle share.
struct Cell {
    ranges: ArcSwap<IpRanges>,
    /// The current ranges in atomic words, for reads without a load (see [`Mirror`]).
    mirror: Mirror,
    /// A stamp no other handle or version ever had (from [`STAMPS`]): changed by every store,
    /// after the ranges, so a reader that sees a stamp sees at least that version.
    stamp: AtomicU64,
    /// This handle's slot in each thread's [`CACHE`].
    slot: usize,
    /// Serialises stores, so the last stamp written always belongs to the last ranges stored.
    store: Mutex<()>,
}

/// Stamps, unique in the process (0 marks an empty cache slot).
static STAMPS: AtomicU64 = AtomicU64::new(1);
/// Cache slots, handed out in turn.
static SLOTS: AtomicUsize = AtomicUsize::new(0);

const CACHE_SLOTS: usize = 8;

/// One thread's last read of a handle: its stamp then, and the ranges loaded after reading it.
struct Cached {
    stamp: u64,
    ranges: Option<Arc<IpRanges>>,
}

thread_local! {
    /// Per thread, the ranges last read through a handle, in the handle's slot.
    static CACHE: RefCell<[Cached; CACHE_SLOTS]> =
        const { RefCell::new([const { Cached { stamp: 0, ranges: None } }; CACHE_SLOTS]) };
}

impl Cell {
    fn new(ranges: IpRanges) -> Self {
        Self {
            mirror: Mirror::new(&ranges),
            ranges: ArcSwap::from_pointee(ranges),
            stamp: AtomicU64::new(STAMPS.fetch_add(1, Ordering::Relaxed)),
            slot: SLOTS.fetch_add(1, Ordering::Relaxed) % CACHE_SLOTS,
            store: Mutex::new(()),
        }
    }

    /// Runs `f` with the current ranges: this thread's cached version when the stamp has not
    /// changed since it was cached (no shared write at all), else a fresh load, remembered.
    #[inline]
    fn with<R>(&self, mut f: impl FnMut(&IpRanges) -> R) -> R {
        let stamp = self.stamp.load(Ordering::Acquire);
        let slot = self.slot % CACHE_SLOTS;
        let answered = CACHE.try_with(|cache| {
            if let Ok(slots) = cache.try_borrow()
                && let Cached {
                    stamp: cached,
                    ranges: Some(ranges),
                } = &slots[slot]
                && *cached == stamp
            {
                return f(ranges);
            }
            self.load_and_remember(cache, slot, stamp, &mut f)
        });
        match answered {
            Ok(answer) => answer,
            // This thread's cache is gone (the thread is ending): a plain load.
            Err(_) => f(&self.ranges.load()),
        }
    }

    /// The slow path of [`with`](Self::with): loaded after the stamp was read, so at least
    /// as new as the version the stamp stands for.
    #[cold]
    #[inline(never)]
    fn load_and_remember<R>(
        &self,
        cache: &RefCell<[Cached; CACHE_SLOTS]>,
        slot: usize,
        stamp: u64,
        f: &mut impl FnMut(&IpRanges) -> R,
    ) -> R {
        let ranges = self.ranges.load_full();
        let replaced = match cache.try_borrow_mut() {
            Ok(mut slots) => {
                let entry = &mut slots[slot];
                entry.stamp = stamp;
                entry.ranges.replace(Arc::clone(&ranges))
            }
            // Read from inside another read on this thread: not remembered.
            Err(_) => None,
        };
        // The old version is dropped outside the borrow.
        drop(replaced);
        f(&ranges)
    }

    /// Runs `f` with one version of the ranges, read in place from the mirror when it holds
    /// them and no store ran during the read, else loaded whole. `f` may run twice (the first
    /// answer, from a read a store overlapped, is dropped), so its only side effect may be
    /// to overwrite its own answer (the last run's counts).
    #[inline]
    fn trust<R>(&self, mut f: impl FnMut(Trusted<'_>) -> R) -> R {
        let mirror = &self.mirror;
        let before = mirror.seq.load(Ordering::Acquire);
        if before & (WRITING | TOO_LARGE) == 0 {
            let answer = f(Trusted::Mirror(mirror));
            // Orders the words' reads before the second read of the number.
            fence(Ordering::Acquire);
            if mirror.seq.load(Ordering::Relaxed) == before {
                return answer;
            }
        }
        self.trust_loaded(f)
    }

    /// The slow path of [`trust`](Self::trust): the ranges loaded whole.
    #[cold]
    #[inline(never)]
    fn trust_loaded<R>(&self, mut f: impl FnMut(Trusted<'_>) -> R) -> R {
        self.with(|ranges| f(Trusted::Ranges(ranges)))
    }

    fn swap(&self, ranges: IpRanges) -> Arc<IpRanges> {
        let _serialised = self.store.lock().unwrap_or_else(PoisonError::into_inner);
        let new = Arc::new(ranges);
        let old = self.ranges.swap(Arc::clone(&new));
        self.stamp
            .store(STAMPS.fetch_add(1, Ordering::Relaxed), Ordering::Release);
        // Last: a reader that sees the copy's new number also sees these ranges and stamp,
        // and a reader that falls back while the copy is rewritten loads them.
        self.mirror.write(&new);
        old
    }
}

/// A copy of one version of a handle's ranges in atomic words, guarded by a sequence number
/// (a sequence lock built from atomics only): a store sets [`WRITING`] in the number,
/// rewrites the words and writes a new number without it, all under the cell's store lock.
/// A reader reads the number (no flag set), reads the words it needs, and reads the number
/// again: unchanged means no store overlapped, so every word it read belonged to one version.
/// A reader may see a mix of two versions while a store runs (each word is atomic, so nothing
/// undefined happens), but it then sees the number change and throws its answer away.
pub(crate) struct Mirror {
    /// A multiple of 4 that every store raises, with [`WRITING`] and [`TOO_LARGE`] as flags.
    seq: AtomicU64,
    any: AtomicBool,
    v4_len: AtomicUsize,
    /// `(network, netmask)` per IPv4 range.
    v4: Box<[(AtomicU32, AtomicU32)]>,
    v6_len: AtomicUsize,
    /// The network's and the netmask's high and low halves per IPv6 range.
    v6: Box<[[AtomicU64; 4]]>,
}

/// In [`Mirror::seq`]: a store is rewriting the words.
const WRITING: u64 = 1;
/// In [`Mirror::seq`]: the current version has more ranges than the words hold.
const TOO_LARGE: u64 = 2;

/// The least number of IPv4 ranges a mirror holds (Cloudflare publishes 15).
const MIRROR_V4: usize = 32;
/// The least number of IPv6 ranges a mirror holds (Cloudflare publishes 7).
const MIRROR_V6: usize = 16;
/// The most IPv4 ranges a mirror holds, whatever the first set's size (8 KiB of words).
const MIRROR_V4_MAX: usize = 1024;
/// The most IPv6 ranges a mirror holds (8 KiB of words).
const MIRROR_V6_MAX: usize = 256;

/// `x`'s high and low halves.
fn halves(x: u128) -> (u64, u64) {
    let bytes = x.to_be_bytes();
    let (high, low) = bytes.split_at(8);
    let half = |part: &[u8]| u64::from_be_bytes(part.try_into().unwrap_or_default());
    (half(high), half(low))
}

fn whole(high: u64, low: u64) -> u128 {
    (u128::from(high) << 64) | u128::from(low)
}

impl Mirror {
    fn new(ranges: &IpRanges) -> Self {
        let v4 = (0..MIRROR_V4
            .max(2 * ranges.v4_pairs().len())
            .min(MIRROR_V4_MAX))
            .map(|_| (AtomicU32::new(0), AtomicU32::new(0)))
            .collect();
        let v6 = (0..MIRROR_V6
            .max(2 * ranges.v6_pairs().len())
            .min(MIRROR_V6_MAX))
            .map(|_| [const { AtomicU64::new(0) }; 4])
            .collect();
        let mirror = Self {
            seq: AtomicU64::new(0),
            any: AtomicBool::new(false),
            v4_len: AtomicUsize::new(0),
            v4,
            v6_len: AtomicUsize::new(0),
            v6,
        };
        mirror.write(ranges);
        mirror
    }

    /// Copies `ranges` in. Callers serialise writes (the cell's store lock).
    fn write(&self, ranges: &IpRanges) {
        let seq = self.seq.load(Ordering::Relaxed);
        self.seq.store(seq | WRITING, Ordering::Relaxed);
        // Orders the flag before the words: a reader that sees a new word sees the flag too.
        fence(Ordering::Release);
        let (v4, v6) = (ranges.v4_pairs(), ranges.v6_pairs());
        let fits = v4.len() <= self.v4.len() && v6.len() <= self.v6.len();
        if fits {
            for (slot, &(network, netmask)) in self.v4.iter().zip(v4) {
                slot.0.store(network, Ordering::Relaxed);
                slot.1.store(netmask, Ordering::Relaxed);
            }
            self.v4_len.store(v4.len(), Ordering::Relaxed);
            for (slot, &(network, netmask)) in self.v6.iter().zip(v6) {
                let (network, netmask) = (halves(network), halves(netmask));
                for (word, value) in slot
                    .iter()
                    .zip([network.0, network.1, netmask.0, netmask.1])
                {
                    word.store(value, Ordering::Relaxed);
                }
            }
            self.v6_len.store(v6.len(), Ordering::Relaxed);
            self.any.store(ranges.is_any(), Ordering::Relaxed);
        }
        let next = (seq & !(WRITING | TOO_LARGE)).wrapping_add(4);
        let flags = if fits { 0 } else { TOO_LARGE };
        self.seq.store(next | flags, Ordering::Release);
    }

    /// Whether the words hold the current version (when no store is running).
    #[cfg(test)]
    fn fits(&self) -> bool {
        self.seq.load(Ordering::Acquire) & TOO_LARGE == 0
    }

    #[inline]
    fn contains(&self, ip: IpAddr) -> bool {
        match canonical(ip) {
            IpAddr::V4(v4) => {
                let ip = u32::from(v4);
                // The length may be torn from the words during a store (then the answer is
                // thrown away); it never reaches past the copy.
                let len = self.v4_len.load(Ordering::Relaxed).min(self.v4.len());
                self.v4[..len].iter().any(|(network, netmask)| {
                    ip & netmask.load(Ordering::Relaxed) == network.load(Ordering::Relaxed)
                })
            }
            IpAddr::V6(v6) => {
                let ip = u128::from(v6);
                let len = self.v6_len.load(Ordering::Relaxed).min(self.v6.len());
                self.v6[..len].iter().any(|words| {
                    let [nh, nl, mh, ml] = words.each_ref().map(|w| w.load(Ordering::Relaxed));
                    ip & whole(mh, ml) == whole(nh, nl)
                })
            }
        }
    }
}

/// The trusted ranges one decision is made with: a set, or a handle's mirror read in place.
#[derive(Clone, Copy)]
pub(crate) enum Trusted<'a> {
    Ranges(&'a IpRanges),
    Mirror(&'a Mirror),
}

impl Trusted<'_> {
    /// Whether `ip` (canonicalised) is inside one of the ranges.
    #[inline]
    pub(crate) fn contains(self, ip: IpAddr) -> bool {
        match self {
            Self::Ranges(ranges) => ranges.contains(ip),
            Self::Mirror(mirror) => mirror.contains(ip),
        }
    }

    /// Whether the ranges cover every address.
    #[inline]
    pub(crate) fn is_any(self) -> bool {
        match self {
            Self::Ranges(ranges) => ranges.is_any(),
            Self::Mirror(mirror) => mirror.any.load(Ordering::Relaxed),
        }
    }
}

/// The ranges an [`IpRangesHandle::load`] returned: one version, held without a
/// reference-count bump. Dereferences to `Arc<IpRanges>` (and so to [`IpRanges`]).
pub struct IpRangesGuard {
    guard: arc_swap::Guard<Arc<IpRanges>>,
}

impl Deref for IpRangesGuard {
    type Target = Arc<IpRanges>;

    fn deref(&self) -> &Arc<IpRanges> {
        &self.guard
    }
}

impl fmt::Debug for IpRangesGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("IpRangesGuard").field(&**self.guard).finish()
    }
}

impl IpRangesHandle {
    /// A handle holding `ranges`.
    pub fn new(ranges: IpRanges) -> Self {
        Self {
            cell: Arc::new(Cell::new(ranges)),
        }
    }

    /// The current ranges: one version, without locking or a reference-count bump.
    pub fn load(&self) -> IpRangesGuard {
        IpRangesGuard {
            guard: self.cell.ranges.load(),
        }
    }

    /// The current ranges as an `Arc` to keep.
    pub fn load_full(&self) -> Arc<IpRanges> {
        self.cell.ranges.load_full()
    }

    /// Replaces the ranges for every clone of this handle; the next request sees them.
    pub fn store(&self, ranges: IpRanges) {
        drop(self.swap(ranges));
    }

    /// Like [`store`](Self::store), returning the ranges it replaced. Threads that read the
    /// handle keep a reference to the version they last read until they read it again, so
    /// the returned `Arc` may not be the only one (`Arc::try_unwrap` can fail).
    pub fn swap(&self, ranges: IpRanges) -> Arc<IpRanges> {
        tracing::info!(target: "tollgate", ranges = %ranges, "IP ranges replaced");
        self.cell.swap(ranges)
    }

    /// Whether `self` and `other` share one cell.
    pub fn shares_cell_with(&self, other: &IpRangesHandle) -> bool {
        Arc::ptr_eq(&self.cell, &other.cell)
    }

    /// The current ranges when no other handle shares this cell (nothing can store into it
    /// again), else the handle back. Layers and sources use such ranges as fixed ones.
    pub fn into_unshared(self) -> Result<IpRanges, Self> {
        match Arc::try_unwrap(self.cell) {
            Ok(cell) => Ok(Arc::unwrap_or_clone(cell.ranges.into_inner())),
            Err(cell) => Err(Self { cell }),
        }
    }
}

impl From<IpRanges> for IpRangesHandle {
    fn from(ranges: IpRanges) -> Self {
        Self::new(ranges)
    }
}

impl fmt::Debug for IpRangesHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("IpRangesHandle")
            .field(&**self.cell.ranges.load())
            .finish()
    }
}

/// Ranges a source or layer decides with: fixed when it was built, or a shared handle loaded
/// once per use.
#[derive(Clone)]
pub(crate) enum Ranges {
    Fixed(IpRanges),
    Live(IpRangesHandle),
}

impl Ranges {
    /// Fixed unless another handle shares the cell.
    pub(crate) fn new(handle: IpRangesHandle) -> Self {
        match handle.into_unshared() {
            Ok(ranges) => Self::Fixed(ranges),
            Err(handle) => Self::Live(handle),
        }
    }

    /// Runs `f` with one version of the ranges (a handle is read once, here).
    #[inline]
    pub(crate) fn with<R>(&self, mut f: impl FnMut(&IpRanges) -> R) -> R {
        match self {
            Self::Fixed(ranges) => f(ranges),
            Self::Live(handle) => handle.cell.with(f),
        }
    }

    /// Runs `f` with one version of the ranges for a trust decision: a handle's mirror is
    /// read in place. `f` may run twice: its only side effect may be to overwrite its own
    /// answer (see [`Cell::trust`]).
    #[inline]
    pub(crate) fn trust<R>(&self, mut f: impl FnMut(Trusted<'_>) -> R) -> R {
        match self {
            Self::Fixed(ranges) => f(Trusted::Ranges(ranges)),
            Self::Live(handle) => handle.cell.trust(f),
        }
    }
}

/// The versions of the handles one request has loaded, so that every source of a chain that
/// reads the same handle sees the same version (a chain of two sources sharing one handle
/// must never judge one header by the old ranges and the next by the new).
#[derive(Default)]
pub(crate) struct Pinned(Vec<(usize, arc_swap::Guard<Arc<IpRanges>>)>);

impl Ranges {
    /// [`trust`](Self::trust), loading a live handle at most once per `pinned` (once per
    /// request when the request's sources share `pinned`).
    pub(crate) fn trust_in<R>(
        &self,
        pinned: Option<&mut Pinned>,
        mut f: impl FnMut(Trusted<'_>) -> R,
    ) -> R {
        match (self, pinned) {
            (Self::Fixed(ranges), _) => f(Trusted::Ranges(ranges)),
            (Self::Live(handle), None) => handle.cell.trust(f),
            (Self::Live(handle), Some(pinned)) => {
                // The cell's address: the same for every clone of the handle while it lives.
                let id = Arc::as_ptr(&handle.cell) as usize;
                let at = match pinned.0.iter().position(|(cell, _)| *cell == id) {
                    Some(at) => at,
                    None => {
                        pinned.0.push((id, handle.cell.ranges.load()));
                        pinned.0.len() - 1
                    }
                };
                f(Trusted::Ranges(&pinned.0[at].1))
            }
        }
    }
}

impl PartialEq for Ranges {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Fixed(a), Self::Fixed(b)) => a == b,
            (Self::Live(a), Self::Live(b)) => a.shares_cell_with(b),
            _ => false,
        }
    }
}

impl Eq for Ranges {}

impl fmt::Display for Ranges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.with(|ranges| ranges.fmt(f))
    }
}

impl fmt::Debug for Ranges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Fixed(ranges) => ranges.fmt(f),
            Self::Live(handle) => handle.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_one_cell_and_a_loaded_version_stays_whole() {
        let handle = IpRangesHandle::new("10.0.0.0/8".parse().unwrap());
        let other = handle.clone();
        let loaded = handle.load();
        other.store("192.0.2.0/24".parse().unwrap());
        assert_eq!(loaded.to_string(), "10.0.0.0/8");
        assert_eq!(handle.load().to_string(), "192.0.2.0/24");
        assert_eq!(other.swap(IpRanges::none()).to_string(), "192.0.2.0/24");
        assert!(handle.load().is_empty());
    }

    fn live(ranges: &str) -> (IpRangesHandle, Ranges) {
        let handle = IpRangesHandle::new(ranges.parse().unwrap());
        let live = Ranges::new(handle.clone());
        assert!(matches!(live, Ranges::Live(_)));
        (handle, live)
    }

    fn trusts(ranges: &Ranges, ip: &str) -> bool {
        ranges.with(|r| r.contains(ip.parse().unwrap()))
    }

    #[test]
    fn a_store_is_seen_by_the_next_read_of_a_thread_that_cached_the_old_ranges() {
        let (handle, ranges) = live("10.0.0.0/8");
        let (to_reader, reads) = std::sync::mpsc::channel::<&str>();
        let (to_main, answers) = std::sync::mpsc::channel::<bool>();
        std::thread::scope(|scope| {
            scope.spawn(|| {
                for ip in reads {
                    // Twice: the first read may fill this thread's cache, the second hits it.
                    let first = trusts(&ranges, ip);
                    assert_eq!(first, trusts(&ranges, ip));
                    to_main.send(first).unwrap();
                }
            });
            to_reader.send("10.1.2.3").unwrap();
            assert!(answers.recv().unwrap());
            handle.store("192.0.2.0/24".parse().unwrap());
            to_reader.send("10.1.2.3").unwrap();
            assert!(
                !answers.recv().unwrap(),
                "the reader kept the replaced ranges"
            );
            to_reader.send("192.0.2.1").unwrap();
            assert!(answers.recv().unwrap());
            drop(to_reader);
        });
    }

    #[test]
    fn handles_sharing_a_cache_slot_never_answer_with_each_others_ranges() {
        // More handles than slots: some share one.
        let handles: Vec<(IpRangesHandle, Ranges)> = (0..3 * CACHE_SLOTS)
            .map(|i| live(&format!("192.0.2.{i}")))
            .collect();
        for round in 0..2 {
            for (i, (handle, ranges)) in handles.iter().enumerate() {
                let own = format!("192.0.2.{}", i + round * 100);
                assert!(trusts(ranges, &own), "handle {i}, round {round}");
                assert!(!trusts(ranges, &format!("192.0.2.{}", i + 1)));
                handle.store(
                    format!("192.0.2.{}", i + (round + 1) * 100)
                        .parse()
                        .unwrap(),
                );
            }
        }
    }

    #[test]
    fn a_read_inside_a_read_is_answered_without_panicking() {
        let (handle, outer) = live("10.0.0.0/8");
        let (_other, inner) = live("192.0.2.0/24");
        handle.store("10.0.0.0/16".parse().unwrap());
        let both = outer.with(|o| {
            // The cache is borrowed here: a miss cannot be remembered, a plain load answers.
            o.contains("10.0.1.1".parse().unwrap()) && trusts(&inner, "192.0.2.1")
        });
        assert!(both);
        assert!(!trusts(&outer, "10.1.0.1"));
    }

    fn trusted_by(ranges: &Ranges, ips: &[&str]) -> Vec<bool> {
        let ips: Vec<IpAddr> = ips.iter().map(|ip| ip.parse().unwrap()).collect();
        ranges.trust(|trusted| ips.iter().map(|&ip| trusted.contains(ip)).collect())
    }

    #[test]
    fn a_trust_decision_never_mixes_two_versions_while_stores_run() {
        // Two sets of different lengths whose first and last ranges differ: a read that mixed
        // their lengths or words would trust some of one set's probes and not all of them.
        let a: IpRanges = "10.0.0.0/8, 172.16.0.0/12, 2001:db8::/32, 198.18.0.0/15"
            .parse()
            .unwrap();
        let b: IpRanges = "192.0.2.0/24, 203.0.113.0/24, 198.51.100.0/24, 2001:db9::/32, \
                           100.64.0.0/10, 169.254.0.0/16"
            .parse()
            .unwrap();
        let probes = [
            "10.1.1.1",
            "198.19.0.1",
            "2001:db8::1",
            "::ffff:172.16.0.1",
            "192.0.2.1",
            "169.254.0.1",
            "2001:db9::1",
            "::ffff:100.64.0.1",
        ];
        let (in_a, in_b) = ([true; 4], [false; 4]);
        let handle = IpRangesHandle::new(a.clone());
        let ranges = Ranges::new(handle.clone());
        let done = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|scope| {
            let readers: Vec<_> = (0..3)
                .map(|_| {
                    scope.spawn(|| {
                        for _ in 0..100_000 {
                            let seen = trusted_by(&ranges, &probes);
                            let (first, second) = seen.split_at(4);
                            assert!(
                                (first == in_a && second == in_b)
                                    || (first == in_b && second == in_a),
                                "a read mixed two versions: {seen:?}"
                            );
                        }
                    })
                })
                .collect();
            scope.spawn(|| {
                let mut stores = 0u64;
                while !done.load(Ordering::Relaxed) {
                    handle.store(if stores & 1 == 0 {
                        b.clone()
                    } else {
                        a.clone()
                    });
                    stores += 1;
                }
                assert!(stores > 0);
            });
            // Every reader joined before the writer is told to stop, even when one failed.
            let results: Vec<_> = readers.into_iter().map(|reader| reader.join()).collect();
            done.store(true, Ordering::Relaxed);
            for result in results {
                if let Err(failure) = result {
                    std::panic::resume_unwind(failure);
                }
            }
        });
    }

    #[test]
    fn a_set_larger_than_the_mirror_is_read_whole_and_a_smaller_one_fits_again() {
        let (handle, ranges) = live("192.0.2.1");
        let many: IpRanges = (0..3 * MIRROR_V4)
            .map(|i| format!("10.0.{i}.0/24"))
            .collect::<Vec<_>>()
            .join(", ")
            .parse()
            .unwrap();
        handle.store(many);
        let Ranges::Live(live) = &ranges else {
            unreachable!()
        };
        assert!(!live.cell.mirror.fits());
        let last = format!("10.0.{}.7", 3 * MIRROR_V4 - 1);
        assert_eq!(
            trusted_by(&ranges, &["10.0.0.1", &last, "10.0.200.1", "192.0.2.1"]),
            [true, true, false, false]
        );
        handle.store("192.0.2.0/24".parse().unwrap());
        assert!(live.cell.mirror.fits());
        assert_eq!(
            trusted_by(&ranges, &["10.0.0.1", "192.0.2.1"]),
            [false, true]
        );
    }

    #[test]
    fn the_mirror_is_sized_for_the_first_set() {
        let many: IpRanges = (0..100)
            .map(|i| format!("10.{i}.0.0/16"))
            .collect::<Vec<_>>()
            .join(", ")
            .parse()
            .unwrap();
        let mirror = Mirror::new(&many);
        assert!(mirror.fits());
        assert_eq!(mirror.v4.len(), 200);
        assert_eq!(mirror.v6.len(), MIRROR_V6);
        assert!(mirror.contains("10.99.1.1".parse().unwrap()));
        assert!(!mirror.contains("10.100.1.1".parse().unwrap()));
    }

    #[test]
    fn a_huge_first_set_is_read_whole_and_its_mirror_stays_small() {
        let huge = IpRanges::new((0..2000u32).map(|i| {
            ipnet::IpNet::from(ipnet::Ipv4Net::new((0x0a00_0000 + (i << 8)).into(), 24).unwrap())
        }));
        let (handle, ranges) = live("192.0.2.1");
        let Ranges::Live(live) = &ranges else {
            unreachable!()
        };
        let mirror = Mirror::new(&huge);
        assert_eq!(mirror.v4.len(), MIRROR_V4_MAX);
        assert!(!mirror.fits());
        handle.store(huge);
        assert!(!live.cell.mirror.fits());
        assert_eq!(
            trusted_by(&ranges, &["10.0.0.1", "10.7.207.1", "10.7.208.1"]),
            [true, true, false]
        );
    }

    proptest::proptest! {
        #[test]
        fn the_mirror_agrees_with_the_ranges(
            v4 in proptest::collection::vec((proptest::prelude::any::<u32>(), 0u8..=32), 0..6),
            v6 in proptest::collection::vec((proptest::prelude::any::<u128>(), 0u8..=128), 0..6),
            probes in proptest::collection::vec(proptest::prelude::any::<u128>(), 1..16),
        ) {
            let nets: Vec<ipnet::IpNet> = v4
                .iter()
                .map(|&(addr, len)| ipnet::Ipv4Net::new(addr.into(), len).unwrap().into())
                .chain(v6.iter().map(|&(addr, len)| {
                    ipnet::Ipv6Net::new(addr.into(), len).unwrap().into()
                }))
                .collect();
            let ranges = IpRanges::new(nets);
            let mirror = Mirror::new(&ranges);
            proptest::prop_assert_eq!(mirror.any.load(Ordering::Relaxed), ranges.is_any());
            let mut addresses: Vec<IpAddr> = Vec::new();
            for probe in probes {
                let low = u32::try_from(probe & u128::from(u32::MAX)).unwrap();
                addresses.push(IpAddr::V6(probe.into()));
                addresses.push(IpAddr::V4(low.into()));
                addresses.push(IpAddr::V6(std::net::Ipv4Addr::from(low).to_ipv6_mapped()));
            }
            for net in ranges.iter() {
                addresses.push(net.network());
                addresses.push(net.broadcast());
            }
            for ip in addresses {
                proptest::prop_assert_eq!(mirror.contains(ip), ranges.contains(ip), "{}", ip);
            }
        }
    }

    #[test]
    fn unshared_ranges_are_fixed_shared_ones_live() {
        let fixed = Ranges::new(IpRanges::loopback().into());
        assert!(matches!(fixed, Ranges::Fixed(_)));
        let handle = IpRangesHandle::new(IpRanges::loopback());
        let live = Ranges::new(handle.clone());
        assert!(matches!(live, Ranges::Live(_)));
        assert!(live.with(|r| r.contains("127.0.0.1".parse().unwrap())));
        handle.store(IpRanges::none());
        assert!(!live.with(|r| r.contains("127.0.0.1".parse().unwrap())));
        assert_eq!(live, Ranges::new(handle));
        assert_ne!(live, fixed);
    }
}
