//! The [`NonceStore`] trait: claim a key once, until it expires.

use std::fmt;
use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tollgate_core::{BoxError, Rejection, rejection::code};

/// The least time [`MemoryNonceStore`](crate::MemoryNonceStore) holds a claim, from its own
/// clock: 600 s, twice the default tolerance, the longest a request can stay inside a ±300 s
/// window. See [`held_until`].
pub const DEFAULT_MIN_RETENTION: Duration = Duration::from_secs(600);

/// The least time a store shared by several instances (`RedisNonceStore`) holds a claim: 900 s,
/// twice the default tolerance plus 300 s of clock skew between the instances. See
/// [`held_until`].
pub const DEFAULT_SHARED_MIN_RETENTION: Duration = Duration::from_secs(900);

/// Until when (Unix seconds of the **store's** clock, inclusive) a store holds a claim asked
/// for with `expires_at`: the later of `expires_at` and `now + min_retention`.
///
/// `expires_at` was computed by the verifying layer with *its* clock (`timestamp + tolerance`),
/// while the store decides expiry with its own. When the two disagree (a test clock, or
/// several instances with skewed clocks sharing one store), a claim held only until
/// `expires_at` could expire while the request is still inside some verifier's window, and a
/// replay would pass. Holding every claim for at least `min_retention` from the store's own
/// "now" closes that: a request can be accepted for at most `2 × tolerance` (stamped
/// `tolerance` ahead of one clock, replayed `tolerance` after it by another), plus the skew
/// between the verifiers' clocks. So `min_retention ≥ 2 × tolerance + skew` keeps every replay
/// refused **whatever the store's clock says**.
///
/// Logs a `debug` event when `expires_at` is already past by the store's clock (the clocks
/// disagree). Stores of your own should use this too.
///
/// ```
/// use std::time::Duration;
/// use tollgate_replay::held_until;
///
/// // The clocks agree: the request's own expiry is later than the minimum retention.
/// assert_eq!(held_until(1_700_000_900, 1_700_000_000, Duration::from_secs(600)), 1_700_000_900);
/// // The verifier's clock is behind the store's: held 600 s from the store's now anyway.
/// assert_eq!(held_until(1_600_000_300, 1_700_000_000, Duration::from_secs(600)), 1_700_000_600);
/// ```
pub fn held_until(expires_at: u64, now: u64, min_retention: Duration) -> u64 {
    if expires_at < now {
        tracing::debug!(
            target: "tollgate",
            expires_at,
            store_now = now,
            "nonce claim's expiry is already past by the store's clock: the verifier's and the \
             store's clocks disagree; the claim is held for the minimum retention"
        );
    }
    expires_at.max(now.saturating_add(min_retention.as_secs()))
}

/// The future a [`NonceStore`] returns (boxed, so stores can be used as `dyn NonceStore`).
pub type ClaimFuture<'a> = Pin<Box<dyn Future<Output = Result<Claim, StoreError>> + Send + 'a>>;

/// The future of [`NonceStore::release`]: `true` when the claim was removed.
pub type ReleaseFuture<'a> = Pin<Box<dyn Future<Output = Result<bool, StoreError>> + Send + 'a>>;

/// Tags one claim, so that [`NonceStore::release`] removes that claim and never another
/// request's claim of the same key.
///
/// Ids are unique per process (a counter) and drawn from a per-process random start, so two
/// instances sharing a store do not pick the same id in practice. They are not secrets.
///
/// ```
/// use tollgate_replay::ClaimId;
///
/// assert_ne!(ClaimId::new(), ClaimId::new());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClaimId(u64);

impl ClaimId {
    /// A fresh id.
    pub fn new() -> Self {
        static START: OnceLock<u64> = OnceLock::new();
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let start = *START.get_or_init(|| RandomState::new().hash_one(std::process::id()));
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        // Non-zero, so a store can keep 0 for "no id".
        Self(start.wrapping_add(n).max(1))
    }

    /// The id as a number (what `RedisNonceStore` stores as the key's value).
    pub fn get(self) -> u64 {
        self.0
    }
}

impl Default for ClaimId {
    fn default() -> Self {
        Self::new()
    }
}

/// The outcome of [`NonceStore::claim`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Claim {
    /// The key was not held: it is now claimed until its expiry. Accept the request.
    Claimed,
    /// The key is already claimed and not expired: the request is a replay.
    AlreadySeen,
}

/// Why a store could not answer. Every error means *fail closed*: refuse the request.
#[derive(Debug)]
#[non_exhaustive]
pub enum StoreError {
    /// The store is full of unexpired entries and refuses new claims (it never evicts an
    /// unexpired one, since that would reopen the replay window).
    Full,
    /// The store did not answer within its timeout.
    Timeout,
    /// The store could not be reached or answered with an error.
    Unavailable(BoxError),
}

impl StoreError {
    /// 503 `store_full` when the store is full of unexpired claims, 503 `store_unavailable`
    /// for any other cause (timeout, unreachable, an error answer); the cause is logged, not
    /// sent.
    pub fn to_rejection(&self) -> Rejection {
        match self {
            Self::Full => Rejection::from_code(code::STORE_FULL),
            Self::Timeout | Self::Unavailable(_) => Rejection::from_code(code::STORE_UNAVAILABLE),
        }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full => f.write_str("nonce store is full of unexpired entries"),
            Self::Timeout => f.write_str("nonce store did not answer in time"),
            Self::Unavailable(err) => write!(f, "nonce store unavailable: {err}"),
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Unavailable(err) => Some(&**err),
            _ => None,
        }
    }
}

/// A set of claimed keys, each held until an expiry: the memory of which nonces (or
/// signatures) were already accepted.
///
/// `claim` must be atomic: when many tasks (or many server instances sharing the store) claim
/// the same key at once, exactly one gets [`Claim::Claimed`].
///
/// `expires_at` comes from the verifier's clock, which need not be the store's: a store
/// should hold each claim until [`held_until`]`(expires_at, its now, a minimum retention)`, as
/// both stores of this crate do.
///
/// # Releasing a claim
///
/// The replay guard releases a claim when the handling it admitted failed (the inner service
/// returned an error or answered 5xx / 429), so that the sender's retry is accepted. It claims
/// with [`claim_with_id`](NonceStore::claim_with_id) and releases with the same id:
/// [`release`](NonceStore::release) must remove the key only while it is held by *that* claim
/// (a compare-and-delete), never another request's claim of the same key. The default
/// implementations claim without an id and never release, which is safe (a failed delivery
/// stays claimed, so the sender's retry is refused until the claim expires) but loses that
/// retry: implement both for a store of your own.
pub trait NonceStore: fmt::Debug + Send + Sync + 'static {
    /// Claims `key` until at least `expires_at` (Unix seconds, inclusive: the key is held
    /// through that second). Returns [`Claim::AlreadySeen`] when the key is held and not
    /// expired.
    fn claim<'a>(&'a self, key: &'a [u8], expires_at: u64) -> ClaimFuture<'a>;

    /// [`claim`](NonceStore::claim), tagging the claim with `id` for a later
    /// [`release`](NonceStore::release). The default ignores `id`.
    ///
    /// Give every claim a fresh id ([`ClaimId::new`], as the replay guard does): a store may
    /// take a claim carrying the id that already holds the key for that same claim resent
    /// (`RedisNonceStore` does, so a round trip its client resent is not read as a replay).
    fn claim_with_id<'a>(&'a self, key: &'a [u8], expires_at: u64, id: ClaimId) -> ClaimFuture<'a> {
        let _ = id;
        self.claim(key, expires_at)
    }

    /// [`claim_with_id`](NonceStore::claim_with_id) for a message its sender can sign again
    /// with a later timestamp (a Standard Webhooks id, resent): when `key` is already held,
    /// the store also keeps it until at least `expires_at` (never shortening it), in the same
    /// atomic step, and answers [`Claim::AlreadySeen`]. The message then stays refused while
    /// any signature of it seen so far is inside its window: a later delivery refused as a
    /// replay is not accepted once the first claim lapses.
    ///
    /// The replay guard claims every timestamped message with it (and body-only messages with
    /// `claim_with_id`, so their retention counts from the acceptance). The default is
    /// `claim_with_id`, without the extension: implement it for a store of your own.
    fn claim_extending<'a>(
        &'a self,
        key: &'a [u8],
        expires_at: u64,
        id: ClaimId,
    ) -> ClaimFuture<'a> {
        self.claim_with_id(key, expires_at, id)
    }

    /// Removes the claim of `key` made with `id`, if it is still held by that claim; answers
    /// whether it removed it. The default removes nothing (`Ok(false)`).
    fn release<'a>(&'a self, key: &'a [u8], id: ClaimId) -> ReleaseFuture<'a> {
        let _ = (key, id);
        Box::pin(std::future::ready(Ok(false)))
    }

    /// The store's kind, the `store` label of the nonce-store metrics
    /// (`tollgate_nonce_claims_total{store,outcome}` and the others: see the crate docs'
    /// "Metrics"): `memory`, `redis`, … The default is `custom`. A fixed name, never
    /// anything from a request or an address, so the label set stays bounded.
    fn kind(&self) -> &'static str {
        "custom"
    }
}

impl<S: NonceStore + ?Sized> NonceStore for Arc<S> {
    fn claim<'a>(&'a self, key: &'a [u8], expires_at: u64) -> ClaimFuture<'a> {
        (**self).claim(key, expires_at)
    }

    fn claim_with_id<'a>(&'a self, key: &'a [u8], expires_at: u64, id: ClaimId) -> ClaimFuture<'a> {
        (**self).claim_with_id(key, expires_at, id)
    }

    fn claim_extending<'a>(
        &'a self,
        key: &'a [u8],
        expires_at: u64,
        id: ClaimId,
    ) -> ClaimFuture<'a> {
        (**self).claim_extending(key, expires_at, id)
    }

    fn release<'a>(&'a self, key: &'a [u8], id: ClaimId) -> ReleaseFuture<'a> {
        (**self).release(key, id)
    }

    fn kind(&self) -> &'static str {
        (**self).kind()
    }
}
