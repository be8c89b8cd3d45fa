//! Timestamp window and nonce store against replayed requests, as a tower layer.
//!
//! The providers' rule: a signed request carries its creation time in Unix seconds and is
//! accepted only within ±5 minutes of the server's clock, and the same signature or nonce is
//! never accepted twice. Tranzila sends a fresh 80-hex-character nonce with every call, and its
//! access token covers only the app key, the time and the nonce (not the method, path or
//! body), so the nonce check is the only thing that stops a captured set of headers from being
//! replayed on another request. [`ReplayGuardLayer`] (its service: [`ReplayGuard`]) enforces
//! both halves: the inclusive two-sided window (digits-only parse, from an injected
//! [`Clock`](tollgate_core::Clock)) and a claim of the nonce in a [`NonceStore`] that lasts at
//! least as long as any verifier's window could still accept the request.
//!
//! # Example
//!
//! An axum server with the signature verifier outside the guard (here a stand-in; the guard
//! reads the `VerifiedSignature` it inserts) and the memory store. tollgate-tranzila's
//! `TranzilaVerifyLayer` builds this guard in, so a Tranzila server needs no second layer:
//!
//! ```
//! use axum::{Router, routing::post};
//! use tollgate_replay::{MemoryNonceStore, ReplayGuardLayer};
//! use tower::ServiceBuilder;
//!
//! # let verify_signature = tower::layer::util::Identity::new();
//! let store = MemoryNonceStore::new(600_000); // 24 MiB of tables, see "Sizing"
//! let app: Router = Router::new()
//!     .route("/api/charge", post(|| async { "charged" }))
//!     .layer(
//!         ServiceBuilder::new()
//!             .layer(verify_signature) // outer: e.g. tollgate-signature's verifier
//!             .layer(ReplayGuardLayer::new(store)), // inner: claims what it verified
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
//! | 400 | `header_malformed` | the [`key_id_header`](ReplayGuardLayer::key_id_header) (Tranzila's app key) is missing, empty or repeated |
//! | 401 | `replayed` | the nonce was claimed before and its claim has not expired |
//! | 503 | `store_full` | the store is full of unexpired claims (fail closed; nothing unexpired is evicted) |
//! | 503 | `store_unavailable` | the store failed: timed out, unreachable or an error answer (fail closed) |
//! | 500 | `replay_guard_misconfigured` | [`ReplayGuardLayer::new`] found no verified signature, or one that signs no timestamp without [`ReplayGuardLayer::untimed_retention`] |
//!
//! Each is [`Rejection::from_code`](tollgate_core::Rejection::from_code): one status and one
//! message per code, the same in every tollgate layer.
//!
//! # Choosing a store
//!
//! - [`MemoryNonceStore`], the embedded default, protects **one process**. Use it when the
//!   service runs as a single instance (or each partner is pinned to one instance).
//! - `RedisNonceStore` (feature `redis`) is **shared** by every instance behind a load
//!   balancer: a request accepted by one instance is `replayed` on all others. Each claim is one
//!   atomic `SET key <claim id> NX PX ttl` with a per-call timeout; any error is a 503, never a
//!   pass. The connection is re-established after an outage without a restart. A claim
//!   protects only while Redis keeps it, so Redis must:
//!   - **never evict** (`maxmemory-policy noeviction`, checked): build it with
//!     `RedisNonceStoreBuilder::connect`, which refuses to start with
//!     `ConfigError::EvictionPolicy` on any other policy (`allkeys-*` evicts claims under
//!     memory pressure, `volatile-*` evicts exactly the keys with a TTL: the claims). A running
//!     store re-reads the policy at least every 5 s (`DEFAULT_POLICY_CHECK_INTERVAL`, inside a
//!     claim's own round trip) and after a dropped connection, and answers 503 while it is
//!     anything else. Where `CONFIG` is disabled (managed Redis), make sure of `noeviction` in
//!     the provider's settings and opt out with `trust_eviction_policy_unchecked()`;
//!   - **persist** (not checked): without AOF or RDB a restarted Redis is empty, and requests
//!     captured up to the retention before the restart can be replayed once after it. AOF with
//!     `appendfsync always` loses no acknowledged claim; `everysec` up to a second of them;
//!   - **survive failover** (not checked): replication is asynchronous, so a claim acknowledged
//!     by a master that dies before replicating it is lost on the promoted replica, and that
//!     request can be replayed once. `RedisNonceStoreBuilder::wait_for_replicas(1, t)` (off
//!     by default) lets a request proceed only once its claim is on a replica (`WAIT 1 t`),
//!     and refuses it (503) otherwise; or narrow the window with `min-replicas-to-write` /
//!     `min-replicas-max-lag`, or accept it.
//!
//!   With feature `redis-cluster`, the same store runs on a Redis Cluster
//!   (`RedisNonceStore::cluster(nodes)`: each claim is one key, on the master of its hash
//!   slot) or behind Redis Sentinel (`RedisNonceStore::sentinel(sentinels, service)`: the
//!   master the Sentinels name, asked again after a failed claim, so a failover heals
//!   without a restart and is 503 until then).
//!
//!   The `RedisNonceStore` docs ("what Redis must guarantee") give the details.
//! - Your own: implement [`NonceStore`] (atomic claim, fail with a [`StoreError`]).
//!
//! # Sizing the memory store
//!
//! The store keeps a keyed 128-bit fingerprint of each key and its expiry, 24 bytes per slot,
//! at most three quarters of the slots in use: **32 bytes per live entry** at its effective
//! capacity (the `memory_footprint` test measures the resident memory of a full store of
//! 786,432 entries: about 33 bytes per entry, whatever the key's length). The capacity asked
//! for is rounded up (`MemoryNonceStore::new(600_000)` holds 786,432 claims in 24 MiB); the
//! tables are allocated when the store is created; [`MemoryNonceStore::memory_bytes`] says
//! how large. With the default ±300 s window and 600 s minimum retention every claim lives
//! about 600 s, so a capacity of `600 × requests per second` is what a steady load needs.
//! When the store is full of unexpired claims it refuses new ones (503 `store_full`)
//! rather than evict one, since an eviction would reopen the replay window for that request.
//!
//! # TTL semantics
//!
//! The guard (also the one inside `TranzilaVerifyLayer`) accepts a request stamped `ts` while
//! its own clock reads within `ts ± tolerance`, and asks the store to claim the nonce until
//! `expires_at = ts + tolerance` (inclusive), computed **with the verifier's clock**. The
//! store decides expiry with **its own clock**, and holds the claim until
//! [`held_until`]`(expires_at, now, min_retention)`: the later of `expires_at` and the store's
//! `now + min_retention`.
//!
//! Why both: a request can be accepted for at most `2 × tolerance` (stamped `tolerance` ahead
//! of the first verifier's clock, replayed `tolerance` after the stamp), plus the skew between
//! two verifiers' clocks when several instances share the store. If the store held a claim
//! only until `expires_at` by its own clock, a store clock ahead of a verifier's (a test's
//! `ManualClock` against the store's `SystemClock`, or instances whose clocks drift apart
//! sharing one Redis) would drop the claim while that verifier still accepts the request, and
//! a replay would pass. The minimum retention makes the refusal independent of the store's
//! clock:
//!
//! | store | default minimum retention | refuses every replay while |
//! |---|---|---|
//! | [`MemoryNonceStore`] | [`DEFAULT_MIN_RETENTION`], 600 s (`2 × 300`) | tolerance ≤ 300 s, whatever the store's clock, while the verifiers sharing it read one clock |
//! | `RedisNonceStore` | [`DEFAULT_SHARED_MIN_RETENTION`], 900 s (`2 × 300 + 300`) | tolerance ≤ 300 s and the instances' clocks within 300 s of each other |
//!
//! With a larger tolerance or skew, set the store's minimum retention to at least
//! `2 × tolerance + skew`. A store of your own should use [`held_until`] too; if it cannot,
//! [`ReplayGuardLayer::clock_skew_margin`] lengthens `expires_at` itself. A claim is never dropped
//! early: a verifier clock ahead of the store's makes claims live longer (which costs capacity,
//! never safety). After a claim expires the same request is refused by the window
//! (`timestamp_out_of_window`), never accepted again. When `expires_at` is already past by the
//! store's clock, the store logs a `debug` event (target `tollgate`): the clocks disagree.
//!
//! # Metrics
//!
//! Through the `metrics` facade (names in `tollgate_core::metrics`; nothing is kept until the
//! application installs a recorder). The guard records around **every** store's claim, so a
//! store of your own is covered too; its `store` label is [`NonceStore::kind`] (`memory`,
//! `redis`, …; `custom` unless the store names itself):
//!
//! | name | type | labels |
//! |---|---|---|
//! | `tollgate_requests_allowed_total` | counter | `layer="replay"` |
//! | `tollgate_requests_refused_total` | counter | `layer="replay"`, `code` (`replayed`, `store_unavailable`, `timestamp_*`, …) |
//! | `tollgate_nonce_claims_total` | counter | `store`, `outcome` = `claimed` / `replayed` / `full` / `error` |
//! | `tollgate_nonce_store_errors_total` | counter | `store` (claims answered `full` or `error`, failed releases) |
//! | `tollgate_nonce_claim_duration_seconds` | histogram | `store` |
//! | `tollgate_nonce_store_entries`, `tollgate_nonce_store_capacity` | gauges | `store="memory"`: the process's [`MemoryNonceStore`]s, summed; alert on `entries / capacity` |
//!
//! No label comes from a request: not the nonce, not the key id, not the client's address.
//!
//! Recorded when tollgate-core's `metrics` feature is on: the `tollgate` facade's default; with
//! this crate alone, depend on `tollgate-core` with its default features (or feature
//! `metrics`).
//!
//! # Security considerations
//!
//! What the guard promises, each statement tested in `tests/tests/seams.rs` of the workspace
//! and the tests of this crate:
//!
//! - **A message is claimed, not a key.** With [`ReplayGuardLayer::new`] the claim names the
//!   message ([`VerifiedSignature::replay_key`](tollgate_core::VerifiedSignature::replay_key):
//!   its signed id, else the digest of the signed bytes), never the key that verified it. A
//!   message signed under two keys during a rotation (Stripe's several `v1=`, Standard
//!   Webhooks' signature list) is accepted once, whichever signatures the attacker strips,
//!   reorders or duplicates.
//! - **Timestamped schemes: never accepted twice.** A claim is held at least until the signed
//!   timestamp leaves the window (and for the store's minimum retention); after that the
//!   window refuses the request. So a signed request is never accepted twice, however far the
//!   clock moves forward, while the stores' requirements below hold. A message claimed by its
//!   signed id (Standard Webhooks' `webhook-id`) that comes again signed with a later
//!   timestamp, as a sender's resend does, is refused and extends the claim to that later
//!   signature's window ([`NonceStore::claim_extending`], atomic with the claim in both
//!   stores): bytes once refused as a replay stay refused while they can verify (unless the
//!   first handling fails and its claim is released for the retry). With
//!   `wait_for_replicas`, `WAIT` confirms new claims, not extensions: a failover can lose an
//!   extension, and then the later signature is accepted once after the first claim lapses.
//!   `RedisNonceStore`'s TTLs
//!   run on Redis's real time: a verifier clock stepped *back* by more than the minimum
//!   retention minus twice the tolerance (300 s with the defaults) could re-open a captured
//!   request's window after its claim expired. Keep clocks slewed by NTP, never stepped back.
//! - **Body-only schemes: refused for the retention you state.** A signature that signs no
//!   timestamp never expires, and a time it does not cover bounds nothing: the guard never
//!   reads an unsigned timestamp header. It refuses (500) such a signature unless
//!   [`ReplayGuardLayer::untimed_retention`] says how long to remember it, and then refuses
//!   the same signed body for that long after its acceptance — not longer. Size it in days,
//!   on Redis.
//! - **A failed handling can be retried, when the signature covers the body.** When the inner
//!   service fails or answers 5xx / 429 and the verified signature covers the body
//!   ([`VerifiedSignature::covers_content`](tollgate_core::VerifiedSignature::covers_content):
//!   tollgate-signature's schemes but the undelimited `Canonical` layout and one that leaves the
//!   query out), the claim is released before the response goes out, so the
//!   sender's retry — the same message — is accepted. A nonce whose signature leaves the body
//!   out (Tranzila's token; the header-based guards `tranzila`, `headers`) is never released:
//!   the same headers would authorise another body. A concurrent duplicate of a request still being handled is refused, never run twice. A
//!   Redis claim that timed out or failed (503) is undone when Redis resumes, so its retry is
//!   accepted too (a retry that reaches another instance before the undo can still be
//!   refused). See [`ReplayGuardLayer`] ("Failed handling releases the claim").
//! - **Fail closed.** Any store error is 503, never a pass: `store_full` when a memory store
//!   is full of unexpired claims (none is evicted to make room; tested by a flood of unique
//!   nonces in `tests/nonce_flood.rs`), `store_unavailable` for anything else.
//! - **Redis faults under load** (tested in `tests/tests/redis_faults.rs` of the workspace,
//!   with a real `redis-server` paused, killed and restarted while eight clients send):
//!   every request sent from 100 ms after Redis is paused and answered before it resumes is
//!   503 `store_unavailable`, never 200, and every answer of the run arrives within the store's
//!   timeout (500 ms by default) plus 500 ms (asserted; 534 ms at most measured): never a
//!   hang. While Redis is down, the same. A claim answered 200 just before a pause was recorded (its resend is `replayed`); one that
//!   timed out is undone when Redis resumes, so its retry is accepted. When Redis answers
//!   again — resumed, or restarted on the same address — the next claim succeeds without
//!   restarting the service (within 1 s, asserted). Without persistence a restarted Redis
//!   has forgotten every claim: a request accepted before the restart can be accepted once
//!   more, for timestamped schemes only while its timestamp is inside the window. Run Redis
//!   with an append-only file (`appendfsync always`; tested: the claim survives `SIGKILL`) or
//!   wait out the window before serving after a restart.
//! - **Redis never evicts a claim unnoticed.** `RedisNonceStore` refuses to start
//!   (`RedisNonceStoreBuilder::connect`: `ConfigError::EvictionPolicy`) unless Redis's
//!   `maxmemory-policy` is `noeviction`, and fails claims closed (503) within 5 s (its policy
//!   check interval, by its clock) of the policy changing at run time, or on the next claim
//!   after a dropped connection. The opt-out, `trust_eviction_policy_unchecked()`, hands that
//!   guarantee to you.
//!
//! Left to you: the stores' requirements (one process for [`MemoryNonceStore`]; for Redis,
//! persistence so a restart does not forget claims, a failover that loses no acknowledged
//! claim or the acceptance that it can, `noeviction` when you opted out of its check, and
//! clocks within the minimum retention's skew), deduplicating body-only events on their event
//! id beyond the retention, and handlers that answer 5xx only when they left no effect.
//!
//! # Security considerations: layer order
//!
//! Place the guard **inside** the signature verifier (after it in `ServiceBuilder` order). The
//! verifier then refuses forged requests before they reach the guard, so they can neither fill
//! the store nor burn the nonce of a genuine request that is still on its way; only requests
//! whose signature verified claim a nonce. With [`ReplayGuardLayer::new`] the guard reads the
//! verifier's `VerifiedSignature` and refuses (500) when no verifier ran.
//!
//! ```text
//! provider ──► [body limit] ► [signature verifier] ► [replay guard] ► handler
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod future;
mod guard;
mod layer;
mod memory;
#[cfg(feature = "redis")]
mod redis;
mod service;
mod store;

pub use guard::{NonceShape, ReplayError, ReplayTicket, replay_key};
pub use layer::ReplayGuardLayer;
pub use memory::{DEFAULT_CAPACITY, DEFAULT_SHARDS, MAX_CAPACITY, MemoryNonceStore, SLOT_BYTES};
#[cfg(feature = "redis")]
pub use redis::{
    ConfigError, DEFAULT_POLICY_CHECK_INTERVAL, DEFAULT_PREFIX, DEFAULT_TIMEOUT, RedisNonceStore,
    RedisNonceStoreBuilder,
};
pub use service::ReplayGuard;
pub use store::{
    Claim, ClaimFuture, ClaimId, DEFAULT_MIN_RETENTION, DEFAULT_SHARED_MIN_RETENTION, NonceStore,
    ReleaseFuture, StoreError, held_until,
};

/// The crate's README, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
