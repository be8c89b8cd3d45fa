//! [`IpRangesHandle`]: trusted proxies and allowlists that change while the service runs.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

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
    cell: Arc<ArcSwap<IpRanges>>,
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
            cell: Arc::new(ArcSwap::from_pointee(ranges)),
        }
    }

    /// The current ranges: one version, without locking or a reference-count bump.
    pub fn load(&self) -> IpRangesGuard {
        IpRangesGuard {
            guard: self.cell.load(),
        }
    }

    /// The current ranges as an `Arc` to keep.
    pub fn load_full(&self) -> Arc<IpRanges> {
        self.cell.load_full()
    }

    /// Replaces the ranges for every clone of this handle; the next request sees them.
    pub fn store(&self, ranges: IpRanges) {
        drop(self.swap(ranges));
    }

    /// Like [`store`](Self::store), returning the ranges it replaced.
    pub fn swap(&self, ranges: IpRanges) -> Arc<IpRanges> {
        tracing::info!(target: "tollgate", ranges = %ranges, "IP ranges replaced");
        self.cell.swap(Arc::new(ranges))
    }

    /// Whether `self` and `other` share one cell.
    pub fn shares_cell_with(&self, other: &IpRangesHandle) -> bool {
        Arc::ptr_eq(&self.cell, &other.cell)
    }

    /// The current ranges when no other handle shares this cell (nothing can store into it
    /// again), else the handle back. Layers and sources use such ranges as fixed ones.
    pub fn into_unshared(self) -> Result<IpRanges, Self> {
        match Arc::try_unwrap(self.cell) {
            Ok(cell) => Ok(Arc::unwrap_or_clone(cell.into_inner())),
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
            .field(&**self.cell.load())
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

    /// Runs `f` with one version of the ranges (a handle is loaded once, here).
    #[inline]
    pub(crate) fn with<R>(&self, f: impl FnOnce(&IpRanges) -> R) -> R {
        match self {
            Self::Fixed(ranges) => f(ranges),
            Self::Live(handle) => f(&handle.cell.load()),
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
        f: impl FnOnce(&IpRanges) -> R,
    ) -> R {
        match (self, pinned) {
            (Self::Fixed(ranges), _) => f(ranges),
            (Self::Live(handle), None) => f(&handle.cell.load()),
            (Self::Live(handle), Some(pinned)) => {
                // The cell's address: the same for every clone of the handle while it lives.
                let id = Arc::as_ptr(&handle.cell) as usize;
                let at = match pinned.0.iter().position(|(cell, _)| *cell == id) {
                    Some(at) => at,
                    None => {
                        pinned.0.push((id, handle.cell.load()));
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
