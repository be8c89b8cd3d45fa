//! The outbound call stack of tollgate's provider clients: HTTPS only, a connect timeout, an
//! attempt timeout and a deadline, retries that re-run the provider's signing layers, shared
//! rate and concurrency limits, and one audit event per attempt.
//!
//! The providers' rules for calling them are explicit: **HTTPS only, certificates always
//! validated; set request timeouts; rate-limit on the client side to stay under the API's
//! limits; log every API request for audit.** A retry placed on the wrong side of a signing
//! layer would resend the same Tranzila nonce (refused as a replay) or a stale timestamp, so
//! the provider's layers run once *per attempt*, inside the retry.
//!
//! [`ClientBuilder`] assembles the stack; [`ProviderClient`] is the result, a `tower::Service`
//! that takes any request body and fails with a typed [`CallError`].
//!
//! # The stack
//!
//! ```text
//! ProviderClient::call(Request<B>)
//!  │ map errors to CallError
//!  │ deadline             tokio::time::timeout over everything below           (default 30 s)
//!  │ prepare              relative URI joined to the base URL (absolute ones unchanged),
//!  │                      non-https refused, body buffered up to max_request_body (1 MiB),
//!  │                      Attempt(1) inserted
//!  ├─ retry               a loop with RetryPolicy; each retry is a fresh copy of the
//!  │                      buffered request with Attempt(n + 1)                  (default 3 attempts)
//!  │   concurrency limit  tower::limit::ConcurrencyLimit, shared by all clones  (none by default)
//!  │   rate limit         one sliding window shared by all clones, its slot taken after the
//!  │                      permit; waits, but never past the deadline           (none by default)
//!  │   audit              one INFO event per attempt, target `tollgate::audit`
//!  │   provider layers L  signing, API key, x-user-ip, ... : run again on every attempt
//!  │   attempt timeout    AttemptService: tokio::time::timeout                  (default 10 s)
//!  └─ transport          hyper_util's client over tollgate_https::HttpsConnector
//!                         (connect timeout, default 5 s), body BufferedBody
//! ```
//!
//! Retry, limits and audit run in one future per call; the provider's layers are cloned once
//! per attempt. Clones of a client share the whole stack (cloning allocates nothing).
//!
//! # Example
//!
//! ```no_run
//! use std::time::Duration;
//! use bytes::Bytes;
//! use http::Request;
//! use http_body_util::Full;
//! use tollgate_client::{ClientBuilder, RetryPolicy};
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! let client = ClientBuilder::new("acme")
//!     .base_url("https://api.acme.example/v2")
//!     .attempt_timeout(Duration::from_secs(5))
//!     .retry(RetryPolicy::new(3))
//!     .rate_limit(50, Duration::from_secs(1))
//!     // The provider's layers: signing, API key, ... (none here).
//!     .build(ServiceBuilder::new())?;
//!
//! // `/charges` goes to https://api.acme.example/v2/charges.
//! let request = Request::get("/charges?limit=10").body(Full::new(Bytes::new()))?;
//! let response = client.oneshot(request).await?;
//! println!("{}", response.status());
//! # Ok(())
//! # }
//! ```
//!
//! # Security considerations
//!
//! Each statement is tested over real TLS on loopback where a socket matters: in this
//! crate's `tests/*.rs`, and through the ready clients in the workspace's
//! `tests/tests/provider_clients.rs` and `attack_review_6.rs` / `attack_review_7.rs`
//! (delivery, abandoned attempts, user info, the new tick of a time-signed retry).
//!
//! - **Nothing is sent on a scheme or TLS refusal.** A non-https base URL is refused at build
//!   ([`ConfigError::NotHttps`]); a non-https absolute request URI is refused per call
//!   ([`CallError::NotHttps`]) before the body is read or a connection opened; a refused
//!   certificate ([`CallError::Certificate`]) ends the call with no request sent, and is never
//!   retried.
//! - **A retry only happens when it is safe.** A request is sent again after a response
//!   (`502`, `503`, `504`, `429`), an attempt timeout or a transport error only when its method
//!   is idempotent or it carries one non-blank value of the configured idempotency-key
//!   header; after a failure that
//!   sent nothing (connection refused, connect timeout) for any method; never after a
//!   certificate or TLS failure, and never after a refusal by one of the provider's layers
//!   ([`CallError::Refused`]). See [`RetryPolicy`].
//! - **Every attempt runs the provider's layers again**: a fresh nonce, time and signature per
//!   attempt, from the same buffered body bytes. A retried response's body is dropped before the
//!   next attempt.
//! - **The deadline bounds the whole call**, waits included: a `Retry-After` or a backoff that
//!   would end after it ends retrying (the last answer is returned); a rate-limit wait that
//!   would end after it fails the call at once with [`CallError::DeadlineExceeded`].
//! - **Audit events never hold a header value or a query.** Each holds the provider name,
//!   method, URI path, status (or error kind), attempt number and latency; an API key, an
//!   `Authorization` header or a card number in a query never reaches the log. Every attempt
//!   is logged exactly once, also one cut off by the deadline or dropped by its caller
//!   (`error="abandoned"`: it may have reached the provider).
//! - **"Nothing sent" means the whole call.** [`CallError::nothing_sent`] is true only when no
//!   attempt may have reached the provider; when an earlier attempt may have (it was answered,
//!   or failed after sending) and the last one sent nothing, the error is
//!   [`CallError::MaybeDelivered`].
//! - **A retry of a time-signed request starts in a new tick**
//!   ([`ClientBuilder::signed_time_resolution`]), before its rate-limit slot is taken: its
//!   signature never repeats the previous attempt's, and the wait does not spend the slot.
//! - **A request URI with user info is refused** unsent ([`CallError::InvalidUri`]), as a base
//!   URL with user info is at build: hyper would carry it in HTTP/2's `:authority` and log it.
//! - **The rate limit is one budget for every clone of a client** and counts retries: at most
//!   `requests` attempts start in any window of `per`. tower's `RateLimit` counts per service
//!   instance and is not `Clone`, so this crate has its own (a mutex-guarded sliding window,
//!   waits with `tokio::time::sleep_until`).
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod attempt;
mod audit;
mod builder;
mod client;
mod error;
pub mod future;
mod limit;
mod retry;
mod retry_after;

pub use attempt::{Attempt, AttemptService};
pub use audit::{AUDIT_TARGET, record_error, record_status};
pub use builder::{
    ClientBuilder, DEFAULT_ATTEMPT_TIMEOUT, DEFAULT_CONNECT_TIMEOUT, DEFAULT_DEADLINE, Settings,
    parse_base_url,
};
pub use client::ProviderClient;
pub use error::{AttemptError, CallError, ConfigError};
pub use limit::RateLimiter;
pub use retry::{
    DEFAULT_BACKOFF_BASE, DEFAULT_BACKOFF_MAX, DEFAULT_MAX_ATTEMPTS, DEFAULT_MAX_RETRY_AFTER,
    RetryPolicy, until_next_tick,
};
/// tollgate-https's TLS settings, for [`ClientBuilder::tls`].
pub use tollgate_https::TlsConfig;

type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;
