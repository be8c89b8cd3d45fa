//! [`IpRangesHandle`]: trusted proxies and allowlists that change while the service runs.

use std::cell::RefCell;
use std::fmt;
use std::ops::Deref;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwap;

use crate::IpRanges;

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
/// - **Cheap reads on the request path.** Each thread remembers the version it last read of
///   a handle (a few handles per thread, with a stamp that every `store` changes), so a
///   request reads one atomic stamp and no shared reference count. A thread may keep an old
///   version's ranges alive until it reads that handle (or one sharing its slot) again.
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

    fn swap(&self, ranges: IpRanges) -> Arc<IpRanges> {
        let _serialised = self.store.lock().unwrap_or_else(PoisonError::into_inner);
        let old = self.ranges.swap(Arc::new(ranges));
        self.stamp
            .store(STAMPS.fetch_add(1, Ordering::Relaxed), Ordering::Release);
        old
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
}

/// The versions of the handles one request has loaded, so that every source of a chain that
/// reads the same handle sees the same version (a chain of two sources sharing one handle
/// must never judge one header by the old ranges and the next by the new).
#[derive(Default)]
pub(crate) struct Pinned(Vec<(usize, arc_swap::Guard<Arc<IpRanges>>)>);

impl Ranges {
    /// [`with`](Self::with), loading a live handle at most once per `pinned` (once per
    /// request when the request's sources share `pinned`).
    pub(crate) fn with_in<R>(
        &self,
        pinned: Option<&mut Pinned>,
        mut f: impl FnMut(&IpRanges) -> R,
    ) -> R {
        match (self, pinned) {
            (Self::Fixed(ranges), _) => f(ranges),
            (Self::Live(handle), None) => handle.cell.with(f),
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
                f(&pinned.0[at].1)
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
