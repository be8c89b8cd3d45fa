//! [`Clock`]: where layers read the current Unix time, so tests never sleep.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A source of the current time in whole Unix seconds.
///
/// Every layer that checks or writes a timestamp takes a clock, [`SystemClock`] by default,
/// so that tests can pin time with a [`ManualClock`].
///
/// ```
/// use tollgate_core::{Clock, ManualClock, SystemClock};
///
/// assert!(SystemClock.now_unix() > 1_700_000_000);
///
/// let clock = ManualClock::new(1_700_000_000);
/// clock.advance(300);
/// assert_eq!(clock.now_unix(), 1_700_000_300);
/// ```
pub trait Clock: fmt::Debug + Send + Sync + 'static {
    /// Seconds since 1970-01-01T00:00:00Z.
    fn now_unix(&self) -> u64;
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now_unix(&self) -> u64 {
        (**self).now_unix()
    }
}

/// A clock shared between layers and tests.
pub type SharedClock = Arc<dyn Clock>;

/// The system's wall clock. A time before 1970 reads as 0.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_unix(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs())
    }
}

/// A clock that only moves when told to. Clones share the same time, so a test can keep one
/// clone and hand another to a layer.
///
/// ```
/// use tollgate_core::{Clock, ManualClock};
///
/// let clock = ManualClock::new(100);
/// let layer_clock = clock.clone();
/// clock.set(200);
/// assert_eq!(layer_clock.now_unix(), 200);
/// ```
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    now: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock standing at `now_unix` seconds.
    pub fn new(now_unix: u64) -> Self {
        Self {
            now: Arc::new(AtomicU64::new(now_unix)),
        }
    }

    /// Moves the clock to `now_unix` (backwards too).
    pub fn set(&self, now_unix: u64) {
        self.now.store(now_unix, Ordering::SeqCst);
    }

    /// Moves the clock forward by `seconds` (saturating).
    pub fn advance(&self, seconds: u64) {
        let _ = self
            .now
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |now| {
                Some(now.saturating_add(seconds))
            });
    }
}

impl Clock for ManualClock {
    fn now_unix(&self) -> u64 {
        self.now.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_clock_is_close_to_now() {
        let expected = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let read = SystemClock.now_unix();
        assert!(read.abs_diff(expected) <= 1, "{read} vs {expected}");
    }

    #[test]
    fn manual_clock_is_shared_between_clones() {
        let clock = ManualClock::new(1_700_000_000);
        let shared: SharedClock = Arc::new(clock.clone());
        clock.advance(301);
        assert_eq!(shared.now_unix(), 1_700_000_301);
        clock.set(5);
        assert_eq!(shared.now_unix(), 5);
        clock.set(u64::MAX - 1);
        clock.advance(10);
        assert_eq!(clock.now_unix(), u64::MAX);
    }
}
