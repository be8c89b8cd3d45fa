//! [`KeyRingHandle`]: a key ring that can be replaced while the service runs.

use std::fmt;
use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwap;

use crate::{KeyRing, SecretError};

/// A shared, swappable [`KeyRing`]: rotate or revoke keys without rebuilding the service.
///
/// The providers' rotation rule is "new key, deploy, verify, revoke old", and *immediately*
/// when a key leaks. A layer built with a handle (tollgate-signature's
/// `VerifySignatureLayer` and `SignRequestLayer` take `impl Into<KeyRingHandle>`) reads the
/// ring through it; [`store`](Self::store) replaces the ring for every layer holding a clone of
/// the handle.
///
/// - **Readers never lock.** [`load`](Self::load) is an [`arc_swap`] load: no mutex, no
///   reference-count bump, so a swap never stalls requests and requests never stall a swap.
/// - **One version per use.** A reader loads the ring once and uses that one value; a
///   concurrent [`store`](Self::store) is seen by the *next* load. The layers load once per
///   request, so a request is checked against exactly one version, never half of each.
/// - **Store refuses what a layer refuses.** [`store`](Self::store) and [`swap`](Self::swap)
///   check the ring ([`KeyRing::check_signing_key`]: the signing key must not be blank) and
///   leave the current ring in place when it fails; a swap can never install a ring a layer
///   would have refused when built.
/// - `Clone` shares the cell (every clone sees every store); `Debug` prints the current ring,
///   whose secrets are redacted.
///
/// A [`KeyRing`] (or a [`Secret`](crate::Secret)) converts into a handle nobody else holds:
/// existing call sites keep working, and a layer given such a handle treats the ring as fixed
/// (see [`into_unshared`](Self::into_unshared)).
///
/// ```
/// use tollgate_core::{Key, KeyRing, KeyRingHandle, Secret};
///
/// let handle = KeyRingHandle::new(KeyRing::new(Key::new("2026-08", Secret::from_string("old"))));
/// let layer_side = handle.clone(); // what a layer holds
///
/// // New key, deployed: it signs; the old one still verifies. (`update` reads and stores in
/// // one step: a change made at the same time elsewhere is never lost.)
/// handle.update(|ring| {
///     Ok::<_, tollgate_core::SecretError>(ring.clone().rotate(Key::new("2026-11", Secret::from_string("new"))))
/// })?;
/// assert_eq!(layer_side.load().signing_key().id(), "2026-11");
///
/// // Revoke the old key: the very next load no longer has it.
/// handle.update(|ring| Ok::<_, tollgate_core::SecretError>(ring.without("2026-08").unwrap()))?;
/// assert_eq!(layer_side.load().keys().len(), 1);
///
/// // A blank signing key is refused; the ring in place stays.
/// assert!(handle.store(KeyRing::single(Secret::from_string(" "))).is_err());
/// assert_eq!(layer_side.load().signing_key().id(), "2026-11");
/// assert!(!format!("{handle:?}").contains("new"));
/// # Ok::<(), tollgate_core::SecretError>(())
/// ```
#[derive(Clone)]
pub struct KeyRingHandle {
    cell: Arc<Cell>,
}

/// The ring, and a count of the stores into it.
struct Cell {
    ring: ArcSwap<KeyRing>,
    version: AtomicU64,
    /// Taken by writers only (`store`, `swap`, `update`), so an `update`'s read and write
    /// are one step; readers never touch it.
    writer: Mutex<()>,
}

/// The ring a [`KeyRingHandle::load`] returned: one version, held without a reference-count
/// bump. Dereferences to `Arc<KeyRing>` (and so to [`KeyRing`]).
///
/// Keep it for one use (a request's check), not across awaits: a long-lived guard pins the
/// version it loaded. To keep a version, use [`KeyRingHandle::load_full`].
pub struct KeyRingGuard {
    guard: arc_swap::Guard<Arc<KeyRing>>,
}

impl Deref for KeyRingGuard {
    type Target = Arc<KeyRing>;

    fn deref(&self) -> &Arc<KeyRing> {
        &self.guard
    }
}

impl fmt::Debug for KeyRingGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("KeyRingGuard").field(&**self.guard).finish()
    }
}

impl KeyRingHandle {
    /// A handle holding `ring`.
    ///
    /// Not checked here: a layer built with the handle checks the ring as it checks a plain
    /// ring, and every later [`store`](Self::store) is checked.
    pub fn new(ring: KeyRing) -> Self {
        Self {
            cell: Arc::new(Cell {
                ring: ArcSwap::from_pointee(ring),
                version: AtomicU64::new(0),
                writer: Mutex::new(()),
            }),
        }
    }

    /// The current ring: one version, without locking or a reference-count bump.
    pub fn load(&self) -> KeyRingGuard {
        KeyRingGuard {
            guard: self.cell.ring.load(),
        }
    }

    /// The current ring as an `Arc` to keep (one reference-count bump).
    pub fn load_full(&self) -> Arc<KeyRing> {
        self.cell.ring.load_full()
    }

    /// How many rings were stored into this cell: a reading of it taken before a
    /// [`load`](Self::load) is never newer than the ring that load returns. One atomic read,
    /// cheaper than a load: layers that derive state from the ring (keyed MAC states) keep it
    /// with the version it came from and reload only when the version moved.
    ///
    /// ```
    /// use tollgate_core::{KeyRing, KeyRingHandle, Secret};
    ///
    /// let handle = KeyRingHandle::new(KeyRing::single(Secret::from_string("a")));
    /// let before = handle.version();
    /// handle.store(KeyRing::single(Secret::from_string("b")))?;
    /// assert!(handle.version() > before);
    /// # Ok::<(), tollgate_core::SecretError>(())
    /// ```
    pub fn version(&self) -> u64 {
        self.cell.version.load(Ordering::Acquire)
    }

    /// Replaces the ring for every clone of this handle; the next load sees it.
    ///
    /// Fails with [`SecretError::Blank`] (naming the key id) when `ring`'s signing key is
    /// blank ([`KeyRing::check_signing_key`]); the current ring then stays.
    pub fn store(&self, ring: KeyRing) -> Result<(), SecretError> {
        self.swap(ring).map(drop)
    }

    /// Like [`store`](Self::store), returning the ring it replaced.
    pub fn swap(&self, ring: KeyRing) -> Result<Arc<KeyRing>, SecretError> {
        let _writer = self
            .cell
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        self.swap_locked(ring)
    }

    /// Replaces the ring with what `f` makes of the current one, in one step: `update`,
    /// [`store`](Self::store) and [`swap`](Self::swap) on this handle's cell run one at a
    /// time, so two changes made at once (a deploy and a revoke) both take effect, where a
    /// [`load`](Self::load) followed by a `store` can lose the other one's change. Returns the
    /// ring it replaced.
    ///
    /// `f` runs once. Readers are not held up (they keep loading the ring in place until
    /// the new one is stored), but other writers wait for it: keep it short, and never store
    /// into the same handle from inside it (that waits for itself). Fails with `f`'s error
    /// (nothing is stored), or with [`SecretError::Blank`] (converted into `E`) when the new
    /// ring's signing key is blank, as [`store`](Self::store) does; the current ring then stays.
    ///
    /// ```
    /// use tollgate_core::{BoxError, Key, KeyRing, KeyRingHandle, Secret};
    ///
    /// let keys = KeyRingHandle::new(KeyRing::new(Key::new("2026-08", Secret::from_string("old"))));
    /// // Deploy a new key and revoke the old one, from two threads at once: both happen.
    /// std::thread::scope(|scope| {
    ///     scope.spawn(|| {
    ///         keys.update(|ring| {
    ///             Ok::<_, BoxError>(ring.clone().rotate(Key::new("2026-11", Secret::from_string("new"))))
    ///         })
    ///     });
    ///     scope.spawn(|| {
    ///         keys.update(|ring| ring.without("2026-08").ok_or_else(|| BoxError::from("last key")))
    ///     });
    /// });
    /// let ring = keys.load();
    /// // Whichever ran first, the new key was added; the old one is gone unless it was the
    /// // last key when the revoke ran (then the revoke failed and changed nothing).
    /// assert_eq!(ring.signing_key().id(), "2026-11");
    /// # Ok::<(), BoxError>(())
    /// ```
    pub fn update<E>(
        &self,
        f: impl FnOnce(&KeyRing) -> Result<KeyRing, E>,
    ) -> Result<Arc<KeyRing>, E>
    where
        E: From<SecretError>,
    {
        let _writer = self
            .cell
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let current = self.cell.ring.load_full();
        let ring = f(&current)?;
        Ok(self.swap_locked(ring)?)
    }

    /// [`swap`](Self::swap), with the writer lock held.
    fn swap_locked(&self, ring: KeyRing) -> Result<Arc<KeyRing>, SecretError> {
        ring.check_signing_key()?;
        let signing_key = ring.signing_key().shared_id();
        let previous = self.cell.ring.swap(Arc::new(ring));
        // After the swap: whoever reads the new count loads the new ring (or a later one).
        self.cell.version.fetch_add(1, Ordering::Release);
        tracing::info!(
            target: "tollgate",
            signing_key = &*signing_key,
            "key ring replaced"
        );
        Ok(previous)
    }

    /// Whether `self` and `other` share one cell (a store through one is seen by the other).
    pub fn shares_cell_with(&self, other: &KeyRingHandle) -> bool {
        Arc::ptr_eq(&self.cell, &other.cell)
    }

    /// The current ring when no other handle shares this cell, so nothing can ever store
    /// into it again; else the handle back.
    ///
    /// Layers call this when they are built: a ring passed as a plain [`KeyRing`] becomes a
    /// handle nobody else holds, and is then used as a fixed ring at no per-request cost.
    ///
    /// ```
    /// use tollgate_core::{KeyRing, KeyRingHandle, Secret};
    ///
    /// let fixed = KeyRingHandle::from(Secret::from_string("s3cr3t"));
    /// assert!(fixed.into_unshared().is_ok());
    ///
    /// let shared = KeyRingHandle::new(KeyRing::single(Secret::from_string("s3cr3t")));
    /// let kept = shared.clone();
    /// assert!(shared.into_unshared().is_err());
    /// # drop(kept);
    /// ```
    pub fn into_unshared(self) -> Result<Arc<KeyRing>, Self> {
        match Arc::try_unwrap(self.cell) {
            Ok(cell) => Ok(cell.ring.into_inner()),
            Err(cell) => Err(Self { cell }),
        }
    }
}

impl<T: Into<KeyRing>> From<T> for KeyRingHandle {
    fn from(ring: T) -> Self {
        Self::new(ring.into())
    }
}

impl fmt::Debug for KeyRingHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRingHandle")
            .field("ring", &**self.cell.ring.load())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Key, Secret};

    fn ring(id: &str, secret: &str) -> KeyRing {
        KeyRing::new(Key::new(id, Secret::from_string(secret)))
    }

    #[test]
    fn concurrent_updates_never_lose_one() {
        // A deploy and a revoke released together, many times: both always take effect.
        for _ in 0..2_000 {
            let keys = KeyRingHandle::new(
                ring("a", "old").rotate(Key::new("b", Secret::from_string("current"))),
            );
            let barrier = std::sync::Barrier::new(2);
            std::thread::scope(|scope| {
                scope.spawn(|| {
                    barrier.wait();
                    keys.update(|ring| {
                        Ok::<_, SecretError>(
                            ring.clone()
                                .rotate(Key::new("c", Secret::from_string("new"))),
                        )
                    })
                    .unwrap();
                });
                scope.spawn(|| {
                    barrier.wait();
                    keys.update(|ring| Ok::<_, SecretError>(ring.without("a").unwrap()))
                        .unwrap();
                });
            });
            let mut ids: Vec<String> = keys
                .load()
                .keys()
                .iter()
                .map(|key| key.id().to_owned())
                .collect();
            ids.sort();
            assert_eq!(ids, ["b", "c"]);
        }
    }

    #[test]
    fn a_failed_update_stores_nothing() {
        let keys = KeyRingHandle::new(ring("a", "secret"));
        let version = keys.version();
        let failed: Result<_, crate::BoxError> = keys.update(|_| Err("no".into()));
        assert_eq!(failed.unwrap_err().to_string(), "no");
        let blank = keys.update(|_| Ok::<_, SecretError>(ring("z", " ")));
        assert!(matches!(blank, Err(SecretError::Blank { .. })), "{blank:?}");
        assert_eq!(keys.version(), version);
        assert_eq!(keys.load().signing_key().id(), "a");
        let old = keys
            .update(|current| {
                Ok::<_, SecretError>(
                    current
                        .clone()
                        .rotate(Key::new("b", Secret::from_string("s2"))),
                )
            })
            .unwrap();
        assert_eq!(old.signing_key().id(), "a");
        assert_eq!(keys.version(), version + 1);
    }

    #[test]
    fn clones_share_one_cell_and_see_every_store() {
        let handle = KeyRingHandle::new(ring("a", "secret-a"));
        let other = handle.clone();
        assert!(handle.shares_cell_with(&other));
        handle.store(ring("b", "secret-b")).unwrap();
        assert_eq!(other.load().signing_key().id(), "b");
        let previous = other.swap(ring("c", "secret-c")).unwrap();
        assert_eq!(previous.signing_key().id(), "b");
        assert_eq!(handle.load_full().signing_key().id(), "c");
        assert!(!handle.shares_cell_with(&KeyRingHandle::new(ring("c", "secret-c"))));
    }

    #[test]
    fn a_loaded_version_stays_whole_across_a_store() {
        let handle = KeyRingHandle::new(
            ring("a", "secret-a").rotate(Key::new("a2", Secret::from_string("secret-a2"))),
        );
        let loaded = handle.load();
        handle.store(ring("b", "secret-b")).unwrap();
        let ids: Vec<_> = loaded.keys().iter().map(Key::id).collect();
        assert_eq!(ids, ["a2", "a"]);
        assert_eq!(handle.load().keys().len(), 1);
    }

    #[test]
    fn store_refuses_a_blank_signing_key_and_keeps_the_ring() {
        let handle = KeyRingHandle::new(ring("a", "secret-a"));
        for blank in ["", " ", "\t\n", "\u{3000}"] {
            let err = handle.store(ring("bad", blank)).unwrap_err();
            assert_eq!(
                err,
                SecretError::Blank {
                    name: "signing key `bad`".into()
                }
            );
            assert!(handle.swap(ring("bad", blank)).is_err());
            assert_eq!(handle.load().signing_key().id(), "a");
        }
        // A blank verification-only key next to a usable signing key is the layers' rule too.
        let mixed =
            ring("ok", "secret").with_verification_key(Key::new("old", Secret::from_string("")));
        assert!(handle.store(mixed).is_ok());
    }

    #[test]
    fn debug_redacts_secrets() {
        let handle = KeyRingHandle::new(ring("k1", "very-secret-value"));
        let debug = format!("{handle:?}");
        assert!(
            debug.starts_with("KeyRingHandle { ring: KeyRing"),
            "{debug}"
        );
        assert!(
            debug.contains("k1") && debug.contains("Secret([REDACTED])"),
            "{debug}"
        );
        assert!(!debug.contains("very-secret-value"), "{debug}");
        let guard = format!("{:?}", handle.load());
        assert!(!guard.contains("very-secret-value"), "{guard}");
    }

    #[test]
    fn a_converted_ring_is_unshared_a_kept_handle_is_not() {
        let fixed: KeyRingHandle = ring("a", "secret-a").into();
        assert_eq!(fixed.into_unshared().unwrap().signing_key().id(), "a");
        let handle = KeyRingHandle::new(ring("a", "secret-a"));
        let _kept = handle.clone();
        let back = handle.into_unshared().unwrap_err();
        assert_eq!(back.load().signing_key().id(), "a");
    }
}
