//! [`TokenHeaderLayer`]: a token fetched by an async [`TokenProvider`], cached until it
//! expires, sent only to the configured upstreams.
//!
//! - `provider`: the [`Token`] and the [`TokenProvider`] trait;
//! - `cache`: the cache and the single flight (one fetch, in a task of its own, for every
//!   call that finds the cache stale), with no tower in sight;
//! - `layer`, `service`, `future`: the tower adapter;
//! - `error`: [`TokenFetchError`].

mod cache;
mod error;
pub(crate) mod future;
mod layer;
mod provider;
mod service;

use std::time::Duration;

pub use error::TokenFetchError;
pub use layer::TokenHeaderLayer;
pub use provider::{Token, TokenFuture, TokenProvider};
pub use service::TokenHeader;

/// How many seconds before its expiry a cached token is refreshed, by default.
pub const DEFAULT_REFRESH_MARGIN: u64 = 60;

/// How long a token fetch may take, by default, before every call waiting for it fails
/// with [`TokenFetchError::TimedOut`].
pub const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(10);
