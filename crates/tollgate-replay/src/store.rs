//! The [`NonceStore`] trait: claim a key once, until it expires.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use http::StatusCode;
use tollgate_core::{BoxError, Rejection, rejection::code};

/// The future a [`NonceStore`] returns (boxed, so stores can be used as `dyn NonceStore`).
pub type ClaimFuture<'a> = Pin<Box<dyn Future<Output = Result<Claim, StoreError>> + Send + 'a>>;

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
    /// 503 `store_unavailable`, whatever the cause; the cause is logged, not sent.
    pub fn to_rejection(&self) -> Rejection {
        Rejection::new(
            StatusCode::SERVICE_UNAVAILABLE,
            code::STORE_UNAVAILABLE,
            "replay protection is temporarily unavailable",
        )
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
pub trait NonceStore: fmt::Debug + Send + Sync + 'static {
    /// Claims `key` until `expires_at` (Unix seconds, inclusive: the key is held through that
    /// second). Returns [`Claim::AlreadySeen`] when the key is held and not expired.
    fn claim<'a>(&'a self, key: &'a [u8], expires_at: u64) -> ClaimFuture<'a>;
}

impl<S: NonceStore + ?Sized> NonceStore for Arc<S> {
    fn claim<'a>(&'a self, key: &'a [u8], expires_at: u64) -> ClaimFuture<'a> {
        (**self).claim(key, expires_at)
    }
}
