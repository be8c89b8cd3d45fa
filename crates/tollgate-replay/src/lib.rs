//! Timestamp window and nonce store against replayed requests, as a tower layer.
//!
//! The providers' rule: a signed request carries its creation time in Unix seconds and is
//! accepted only within ±5 minutes of the server's clock, and the same signature or nonce is
//! never accepted twice. Tranzila sends a fresh 80-hex-character nonce with every call, and its
//! access token covers only the app key, the time and the nonce (not the method, path or
//! body), so the nonce check is the only thing that stops a captured set of headers from being
//! replayed on another request. [`ReplayGuardLayer`] enforces both halves: the inclusive
//! two-sided window (digits-only parse, from an injected [`Clock`](tollgate_core::Clock)) and
//! a claim of the nonce in a [`NonceStore`] that lasts exactly as long as the window could
//! still accept the request.
//!
//! # Example
//!
//! An axum server accepting Tranzila-style calls, with the signature verifier outside the
//! guard (here a stand-in that marks every request verified) and the memory store:
//!
//! ```
//! use axum::{Router, routing::post};
//! use tollgate_replay::{MemoryNonceStore, ReplayGuard, ReplayGuardLayer};
//! use tower::ServiceBuilder;
//!
//! # let verify_tranzila_token = tower::layer::util::Identity::new();
//! let store = MemoryNonceStore::new(600_000); // about 19 MiB, see "Sizing"
//! let app: Router = Router::new()
//!     .route("/api/charge", post(|| async { "charged" }))
//!     .layer(
//!         ServiceBuilder::new()
//!             .layer(verify_tranzila_token) // outer: e.g. tollgate-tranzila's verifier
//!             .layer(ReplayGuardLayer::new(ReplayGuard::tranzila(), store)),
//!     );
//! # async {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
//! # drop(listener); return;
//! axum::serve(listener, app).await.unwrap();
//! # };
//! ```
//!
//! Refusals are JSON (`{"error":{"code":"...","message":"..."}}`, replaceable with
//! [`ReplayGuardLayer::on_rejection`]):
//!
//! | status | code | when |
//! |---|---|---|
//! | 400 | `timestamp_malformed` | the timestamp is missing, repeated or not ASCII digits (`+1`, ` 1`, `1.0`, `-1`, overflow) |
//! | 401 | `timestamp_out_of_window` | more than the tolerance (300 s) before or after now; milliseconds land here |
//! | 400 | `nonce_malformed` | the nonce is missing, repeated or not of its [`NonceShape`] (Tranzila: exactly 80 hex digits) |
//! | 401 | `replayed` | the nonce was claimed before and its claim has not expired |
//! | 503 | `store_unavailable` | the store failed: full, timed out or unreachable (fail closed) |
//! | 500 | `replay_guard_misconfigured` | [`ReplayGuard::from_verified_signature`] found no verified signature |
//!
//! # Choosing a store
//!
//! - [`MemoryNonceStore`], the embedded default, protects **one process**. Use it when the
//!   service runs as a single instance (or each partner is pinned to one instance).
//! - `RedisNonceStore` (feature `redis`) is **shared** by every instance behind a load
//!   balancer: a request accepted by one instance is `replayed` on all others. Each claim is one
//!   atomic `SET key 1 NX PX ttl` with a per-call timeout; any error is a 503, never a pass.
//!   The connection is re-established after an outage without a restart. Redis without
//!   persistence forgets claims when it restarts: requests captured less than the window before
//!   the restart could be replayed once after it. Enable AOF or RDB persistence (or accept that
//!   window) as your risk requires.
//! - Your own: implement [`NonceStore`] (atomic claim, fail with a [`StoreError`]).
//!
//! # Sizing the memory store
//!
//! The store keeps a keyed 128-bit fingerprint of each key and its expiry, 24 bytes per slot,
//! at most three quarters of the slots in use: **32 bytes per live entry** at its effective
//! capacity (the `memory_footprint` test measures the resident memory of a full store of
//! 786,432 entries: about 33 bytes per entry, whatever the key's length). The tables are
//! allocated when the store is created; [`MemoryNonceStore::memory_bytes`] says how large.
//! A claim lives for at most twice the tolerance (a request stamped `tolerance` seconds in the
//! future), so with the default window a capacity of `600 × requests per second` never fills;
//! `300 ×` is enough when clocks agree. When the store is full of unexpired claims it refuses
//! new ones (503 `store_unavailable`) rather than evict one, since an eviction would reopen the
//! replay window for that request.
//!
//! # TTL semantics
//!
//! A nonce is claimed until `timestamp + tolerance` (inclusive), the last second at which the
//! window accepts the request: a TTL of `timestamp + tolerance − now`. A future-dated request
//! cannot outlive its claim, and no claim is kept longer than needed. After the claim expires
//! the same request is refused by the window (`timestamp_out_of_window`), never accepted again.
//! The guard and the store should read the same clock (both default to the system clock).
//!
//! # Security considerations: layer order
//!
//! Place the guard **inside** the signature verifier (after it in `ServiceBuilder` order). The
//! verifier then refuses forged requests before they reach the guard, so they can neither fill
//! the store nor burn the nonce of a genuine request that is still on its way; only requests
//! whose signature verified claim a nonce. With [`ReplayGuard::from_verified_signature`] the
//! guard reads the verifier's `VerifiedSignature` and refuses (500) when no verifier ran.
//!
//! ```text
//! provider ──► [body limit] ► [signature verifier] ► [replay guard] ► handler
//! ```
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
