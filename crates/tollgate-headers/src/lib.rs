//! Server-to-server header hygiene and secret header injection, as tower layers.
//!
//! Transak's integration rules say the backend must never blindly forward browser-controlled
//! headers (`Origin`, `Referer`, cookies, ...) when it calls the provider: it strips them or
//! substitutes values it owns. Every call carries the partner key `x-api-key` (and, for some
//! endpoints, the partner `access-token`) from the backend. OneKey requires
//! `Content-Type: application/json` and a `User-Agent` on every call. This crate holds the
//! layers for those rules:
//!
//! - [`HeaderHygieneLayer`], [`only`](HeaderHygieneLayer::only) (allowlist) or
//!   [`server_to_server`](HeaderHygieneLayer::server_to_server) (denylist): removes hop-by-hop
//!   headers (`Connection` parsed first), browser-controlled and spoofable headers, and sets
//!   backend-owned values with [`substitute`](HeaderHygieneLayer::substitute).
//! - [`SecretHeaderLayer`] (`x-api-key`, `access-token`, any name) from a
//!   [`Secret`](tollgate_core::Secret), and [`TokenHeaderLayer`] for a token an async
//!   [`TokenProvider`] refreshes: inserted (never appended), marked sensitive, and refused
//!   with a typed [`HeaderError`] for any scheme or authority but the configured
//!   [`Upstream`]s (or a `Host` header that disagrees), so a redirect or a wrong base URL
//!   cannot leak the key. The upstream is a constructor argument.
//! - [`RequireHeadersLayer`] (OneKey: `Content-Type`, `User-Agent`). For a default
//!   `User-Agent`, use tower-http's `SetRequestHeaderLayer::if_not_present`.
//! - [`InboundHygieneLayer`] for servers: client-supplied copies of headers the backend
//!   derives itself (`x-user-ip`, `x-api-key`, untrusted `X-Forwarded-*`) are removed before
//!   handlers see them.
//!
//! Every layer is built the same way: `FooLayer` is the configuration (cheap to clone, named
//! constructors and chainable setters), `Foo<S>` the service (`Foo::new(inner, &layer)`), and
//! the futures of the services that can refuse a request are in [`future`]. Configuration is
//! checked when a layer is built ([`ConfigError`]), never per request: a layer that exists
//! works.
//!
//! Client-side layers fail `call` with [`tollgate_core::BoxError`] holding a [`HeaderError`]
//! (read it with `downcast_ref`) and never call the inner client for a refused request.
//! Every layer logs what it changed at debug level (target `tollgate`): header names, never
//! values.
//!
//! # Layer order
//!
//! Hygiene first, then the backend-owned headers, then signing, then the client:
//! `hygiene → x-api-key → access-token → x-user-ip → sign → client`. Secret layers record
//! what they set in [`InjectedHeaders`], and hygiene never removes those (not even when a
//! caller's `Connection: x-api-key` names them), so the secret survives either order. The
//! wrong order is still detected: a secret layer outside hygiene sees the browser's `Host`
//! header, which disagrees with the provider's URI, and refuses the call with
//! [`HeaderError::AmbiguousTarget`].
//!
//! # Metrics
//!
//! [`TokenHeaderLayer`] counts each token fetch in `tollgate_token_refreshes_total{outcome}`
//! (`success`, `error`, `timeout`, `invalid`: a blank token or one that is no header value),
//! through the `metrics` facade (`tollgate_core::metrics`). Never a label from the token or
//! the provider's error text.
//!
//! Recorded when tollgate-core's `metrics` feature is on: the `tollgate` facade's default; with
//! this crate alone, depend on `tollgate-core` with its default features (or feature
//! `metrics`).
//!
//! # Security considerations
//!
//! Each statement here is tested, in `tests/security.rs` unless said otherwise.
//!
//! - **Caller copies of backend-owned headers never leave.**
//!   [`HeaderHygieneLayer::server_to_server`] removes `Authorization`, `Proxy-Authorization`,
//!   `Cookie`, `x-api-key`, `access-token` and `x-user-ip` that came with the request, in
//!   whatever order the layers are stacked.
//! - **The backend's own values survive hygiene in any order.** A header recorded in
//!   [`InjectedHeaders`] is never removed nor substituted; [`SecretHeaderLayer`] and
//!   [`TokenHeaderLayer`] record what they set, so hygiene before, between or after them
//!   forwards exactly their values. A layer that sets `x-user-ip` inside (after) hygiene, the
//!   documented order, always gets through; one that runs outside (before) hygiene must record
//!   the name in [`InjectedHeaders`], or hygiene removes its value as a caller copy.
//! - **A token refresh runs outside the request that triggered it.** The fetch is a task of
//!   its own on the Tokio runtime, and the provider (even the synchronous part of
//!   [`TokenProvider::fetch_token`]) sees none of the triggering request's task-locals: a
//!   `ForwardUserIpLayer` on the refresh call never sends that end user's IP.
//! - **A refresh never blocks a thread.** No lock is held while a future is polled. A request
//!   that goes through a [`TokenHeaderLayer`] from inside that layer's own fetch fails at once
//!   with [`HeaderError::TokenUnavailable`] whose source is [`TokenFetchError::Reentrant`].
//! - **A refresh never waits forever.** A fetch that takes longer than
//!   [`TokenHeaderLayer::fetch_timeout`] ([`DEFAULT_FETCH_TIMEOUT`], 10 seconds, unless set)
//!   fails every call waiting for it with [`TokenFetchError::TimedOut`]; so does a refresh
//!   that reaches its own layer from another task, where re-entry cannot be seen.
//! - **No blank or unusable credential.** [`SecretHeaderLayer`] refuses a secret that is
//!   empty or whitespace-only (core's rule, `Secret::check_usable`) or that is not a valid
//!   header value when it is built ([`ConfigError`]); a token provider that answers a blank
//!   or unusable token fails the call, and nothing is sent.
//! - **No secret layer without an upstream.** [`SecretHeaderLayer`] and [`TokenHeaderLayer`]
//!   take their first [`Upstream`] in the constructor (a layer without one does not compile),
//!   so no layer exists that would refuse every call, or send its secret anywhere.
//! - **One fetch for every stale caller** (in `tests/token_cache.rs`): the provider is called
//!   once however many calls find the cache stale; a failure reaches every waiting call and
//!   is not cached; a fetch that every caller gave up on is aborted, and the next call starts
//!   a new one instead of joining it.
//!
//! # Where a secret may go
//!
//! The request URI decides: its scheme, host and effective port must match a configured
//! [`Upstream`] exactly (see [`Upstream::matches`]). A `Host` header must be absent or agree
//! with the URI. Put the secret layers inside (after) any layer that follows redirects, so
//! every hop is checked: a redirect follower between a secret layer and the client would copy
//! the key to wherever the `Location` points.
//!
//! # Example: a Transak call
//!
//! An outbound stack on a `hyper_util` client: browser headers copied from the inbound request
//! are stripped, the backend's own `Origin` and `User-Agent` are substituted, the partner key
//! and the refreshed access token are added, and the end user's IP goes out as `x-user-ip`
//! (here set by hand; `tollgate-client-ip` offers a layer for it).
//!
//! ```
//! use http::{HeaderValue, Request, header};
//! use http_body_util::Full;
//! use bytes::Bytes;
//! use hyper_util::client::legacy::Client;
//! use hyper_util::rt::TokioExecutor;
//! use tollgate_core::{BoxError, Secret};
//! use tollgate_headers::{
//!     HeaderError, HeaderHygieneLayer, SecretHeaderLayer, Token, TokenHeaderLayer, Upstream,
//! };
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), BoxError> {
//! let hygiene = HeaderHygieneLayer::server_to_server()
//!     .substitute(header::ORIGIN, HeaderValue::from_static("https://shop.example"))
//!     .substitute(header::USER_AGENT, HeaderValue::from_static("shop-backend/1.4.0"));
//!
//! // In production: Secret::from_env("TRANSAK_API_KEY")?
//! let api_key = Secret::from_string("transak-partner-api-key");
//! let refresh_access_token = || async {
//!     // Call Transak's refresh-token endpoint here; it answers the token and `expiresAt`.
//!     Ok::<_, BoxError>(Token::new(Secret::from_string("eyJ-access")).expires_at(u64::MAX))
//! };
//!
//! let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
//! let transak = ServiceBuilder::new()
//!     .layer(hygiene)
//!     .layer(SecretHeaderLayer::api_key(api_key, Upstream::transak())?)
//!     .layer(TokenHeaderLayer::access_token(refresh_access_token, Upstream::transak()))
//!     // The end user's IP as the backend saw it (tollgate-client-ip has a layer for this).
//!     .map_request(|mut request: Request<Full<Bytes>>| {
//!         request.headers_mut().insert("x-user-ip", HeaderValue::from_static("203.0.113.7"));
//!         request
//!     })
//!     .service(client);
//!
//! // A request built from the browser's headers, sent to the wrong host by mistake: refused
//! // before anything is sent or any token is fetched.
//! let wrong = Request::get("https://api-gateway.transak.com.evil.example/partners/api/v2/orders")
//!     .header(header::COOKIE, "session=browser")
//!     .body(Full::default())?;
//! let error = transak.clone().oneshot(wrong).await.unwrap_err();
//! assert!(matches!(
//!     error.downcast_ref::<HeaderError>(),
//!     Some(HeaderError::UpstreamNotAllowed { .. })
//! ));
//!
//! // The real call (https needs a TLS connector such as hyper-rustls on the client):
//! let _order = async {
//!     let request = Request::get("https://api-gateway.transak.com/partners/api/v2/orders")
//!         .header(header::ACCEPT, "application/json")
//!         .body(Full::default())?;
//!     transak.oneshot(request).await
//! };
//! # Ok(())
//! # }
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod error;
pub mod future;
mod hygiene;
mod require;
mod secret;

pub use error::{ConfigError, HeaderError};
pub use hygiene::{
    HeaderHygiene, HeaderHygieneLayer, HygieneReport, InboundHygiene, InboundHygieneLayer,
};
pub use require::{RequireHeaders, RequireHeadersLayer};
pub use secret::token::{
    DEFAULT_FETCH_TIMEOUT, DEFAULT_REFRESH_MARGIN, Token, TokenFetchError, TokenFuture,
    TokenHeader, TokenHeaderLayer, TokenProvider,
};
pub use secret::{ACCESS_TOKEN, SecretHeader, SecretHeaderLayer, X_API_KEY};
/// The request extension naming the headers the backend set itself (defined in
/// tollgate-core, so that tollgate-client-ip's `ForwardUserIpLayer` records into the same
/// type). Hygiene never removes nor substitutes a header recorded there.
pub use tollgate_core::InjectedHeaders;
pub use tollgate_core::upstream::Upstream;

/// The header-name lists behind the hygiene presets, for this crate's tests (which check them
/// against the docs). Not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::hygiene::names::{HOP_BY_HOP, SERVER_TO_SERVER, SERVER_TO_SERVER_PREFIXES};
}

/// The code blocks of `README.md`, run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
