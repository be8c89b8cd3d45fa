//! Timestamp window and nonce store against replayed requests.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod guard;
mod layer;
mod memory;
#[cfg(feature = "redis")]
mod redis;
mod store;

pub use guard::{
    NonceShape, REPLAY_GUARD_MISCONFIGURED, ReplayError, ReplayGuard, ReplayTicket, replay_key,
};
pub use layer::{ReplayGuardLayer, ReplayGuardService, ResponseFuture};
pub use memory::{DEFAULT_CAPACITY, DEFAULT_SHARDS, MAX_CAPACITY, MemoryNonceStore, SLOT_BYTES};
#[cfg(feature = "redis")]
pub use redis::{
    ConfigError, DEFAULT_PREFIX, DEFAULT_TIMEOUT, RedisNonceStore, RedisNonceStoreBuilder,
};
pub use store::{Claim, ClaimFuture, NonceStore, StoreError};
