//! Tranzila request signing (client) and verification (server), as tower layers.
//!
//! Tranzila authenticates every API call with four headers: `X-tranzila-api-app-key` (the
//! public app key), `X-tranzila-api-request-time` (Unix time in **seconds**),
//! `X-tranzila-api-nonce` (40 random bytes as 80 hex characters, fresh for each request) and
//! `X-tranzila-api-access-token`, the lowercase hex of HMAC-SHA256 with *message = the app
//! key* and *key = secret + request time + nonce*. Its only reference is a PHP snippet,
//! `hash_hmac('sha256', $appKey, $secret . $time . $nonce)` with `bin2hex(random_bytes(40))`.
//! The secret must never reach a browser, so calls go through a server-side proxy: that proxy
//! is where [`TranzilaSigningLayer`] sits.
//!
//! - [`access_token`], [`verify_access_token`], [`generate_nonce`], [`TranzilaCredentials`]:
//!   the scheme as plain functions.
//! - [`TranzilaSigningLayer`]: for `hyper_util` (or any tower) clients; adds the four headers.
//! - [`TranzilaVerifyLayer`]: for servers that accept Tranzila-style calls (mock servers,
//!   gateways, internal APIs); checks the headers, the window and the token, and claims the
//!   nonce through tollgate-replay's `ReplayGuard`, which it builds in.
//! - [`future`]: [`TranzilaSigningFuture`](future::TranzilaSigningFuture) and
//!   [`TranzilaVerifyFuture`](future::TranzilaVerifyFuture).
//!
//! **Time is in seconds.** Some Tranzila pages say milliseconds; the PHP reference
//! (`time()`) and the published vectors use seconds, and this crate follows them. The time
//! and nonce go into the key exactly as sent: a leading zero or an upper-case nonce changes
//! the token.
//!
//! **Header names are case-insensitive** (RFC 9110, section 5.1). Tranzila's documents and PHP
//! snippet write `X-tranzila-api-app-key`; the [`http`] crate stores names in lowercase, so
//! hyper sends `x-tranzila-api-app-key` over HTTP/1 (HTTP/2 requires lowercase anyway), and the
//! verifier accepts any spelling, but each header exactly once. Only the values enter the
//! token.
//!
//! **Non-ASCII input**: a secret is used as its bytes (a `&str` secret as UTF-8, like PHP's
//! byte strings; the published vector `tranzila-hebrew-secret` proves it). The app key goes in
//! a header and is also the HMAC message, so it must be visible ASCII:
//! [`TranzilaSigningLayer::new`] refuses any other ([`ConfigError::InvalidAppKey`]) and
//! [`TranzilaVerifyLayer`] answers 400 `header_malformed`.
//!
//! # Metrics
//!
//! [`TranzilaVerifyLayer`] records through the `metrics` facade (names in
//! `tollgate_core::metrics`) with `layer="tranzila"`: `tollgate_requests_allowed_total`,
//! `tollgate_requests_refused_total` by `code`, and `tollgate_verify_duration_seconds`, the
//! time of the token check, whatever its outcome; then its built-in nonce claim counts as the
//! replay guard's (`layer="replay"`, `tollgate_nonce_claims_total` and the other store
//! metrics). The app key whose token verified goes into the span field `tollgate.key_id`.
//! [`TranzilaSigningLayer`] (client side) records nothing.
//!
//! Recorded when tollgate-core's `metrics` feature is on: the `tollgate` facade's default; with
//! this crate alone, depend on `tollgate-core` with its default features (or feature
//! `metrics`). Nothing is kept until the application installs a recorder.
//!
//! # Security considerations
//!
//! **A blank secret is refused when a layer is built.** With an empty or whitespace-only
//! secret, the HMAC key is just the time and nonce, both sent in clear, so anyone could compute
//! a valid token. tollgate-core's one rule ([`Secret::is_blank`](tollgate_core::Secret::is_blank))
//! applies everywhere this crate takes a secret:
//!
//! - [`TranzilaCredentials::new`] and [`TranzilaCredentials::from_env`] fail with
//!   [`SecretError`](tollgate_core::SecretError) (`Blank`, naming the app key; `Empty`,
//!   naming the variable), so neither [`TranzilaSigningLayer`] nor [`TranzilaVerifyLayer`]
//!   can be built with a blank secret from credentials;
//! - [`TranzilaVerifyLayer::new`] fails with [`ConfigError::Secret`] when a map of app keys
//!   to secrets holds a blank one ([`AppKeySecrets::check_secrets`]);
//! - a secret that a lookup returns blank at request time is refused with 401
//!   `tranzila_unknown_app_key`, the same answer as an unknown app key.
//!
//! Tested as stated in `tests/blank_secret.rs`, with tokens an attacker computes from the
//! time and nonce alone.
//!
//! **The access token does not cover the body**, nor the method or the path. Anyone who
//! sees one signed request can pair its headers with another payload while the time window
//! lasts. What protects the payload is TLS (call Tranzila over `https` only, never log the
//! headers) and the server refusing a nonce it has seen before: [`TranzilaVerifyLayer`]
//! requires a nonce store for that reason (share it between instances) and claims every
//! nonce itself, through the tollgate-replay `ReplayGuard` it builds in, so the claim cannot
//! be left out of a stack. The nonce is claimed with tollgate-replay's TTL semantics: held at
//! least until the request's time plus the tolerance by the verifier's clock, and at least
//! the store's minimum retention by the store's own clock, so skewed clocks cannot shorten a
//! claim. **A nonce stays spent whatever the answer**, 5xx and 429 included: the token signs
//! the app key, time and nonce but not the method, path or body, so a released nonce would let
//! anyone who saw the headers send them again with another request. A client retries with a
//! fresh nonce (`TranzilaSigningLayer` makes one per request). Tested in `tests/verify.rs` and
//! `tests/wire.rs` (two skewed instances sharing Redis).
//!
//! **The access token goes to a configured upstream only.** A token is a bearer credential
//! for one Tranzila call while its time is inside the verifier's window (±300 s), so
//! [`TranzilaSigningLayer`] cannot be built without the [`Upstream`] it signs for
//! ([`Upstream::tranzila()`] in production; more with
//! [`upstream`](TranzilaSigningLayer::upstream)), and it checks every request with
//! [`tollgate_core::upstream::check`] *before* it makes a token:
//!
//! 1. The URI's scheme, host and effective port must match a configured upstream: `http` is
//!    not `https`; `https://api.tranzila.com:443` is the same origin as
//!    `https://api.tranzila.com`; `:8443` is another.
//! 2. Hosts compare as written, ignoring ASCII case; IPv6 literals compare as addresses
//!    (`[0:0::1]` is `[::1]`). A trailing dot (`api.tranzila.com.`) is another host: refused
//!    unless that spelling is configured. Nothing is resolved.
//! 3. A relative URI, user info in the URI (`https://user:pass@...`) or a port that is not a
//!    number from 0 to 65535 is refused.
//! 4. A `Host` header must be absent or name the same host and effective port as the URI.
//!    Header names ignore case, so `Host` and `HOST` are one header, and two of them are
//!    refused.
//! 5. A refused request fails with [`SignError::UpstreamNotAllowed`] or
//!    [`SignError::AmbiguousTarget`]: no token is made, the inner service (the HTTP client) is
//!    not called, and no connection is opened.
//! 6. No error, `Debug` output or log line of the signing layer holds the secret, a token,
//!    user info, a path or a query; a refused target is named as `scheme://host:port` only.
//!
//! Put the signing layer *inside* (after) any layer that follows redirects, so every hop is
//! checked. The rules are shared with the `x-api-key` layer of tollgate-headers; they are
//! documented in [`tollgate_core::upstream`].
//!
//! # Example: a hyper client calling Tranzila
//!
//! ```no_run
//! use bytes::Bytes;
//! use http::{Request, header};
//! use http_body_util::{BodyExt, Full};
//! use hyper_util::client::legacy::Client;
//! use hyper_util::client::legacy::connect::{Connect, HttpConnector};
//! use hyper_util::rt::TokioExecutor;
//! use tollgate_core::{BoxError, Upstream};
//! use tollgate_tranzila::{TranzilaCredentials, TranzilaSigningLayer};
//! use tower::{Service, ServiceBuilder, ServiceExt};
//!
//! /// Sends one JSON call through the signing layer. `C` is the connector: Tranzila is
//! /// HTTPS-only, so in production pass a TLS connector (e.g. hyper-rustls's).
//! async fn call_tranzila<C>(
//!     client: Client<C, Full<Bytes>>,
//!     credentials: TranzilaCredentials,
//!     upstream: Upstream,
//!     path: &str,
//!     json: &'static str,
//! ) -> Result<Bytes, BoxError>
//! where
//!     C: Connect + Clone + Send + Sync + 'static,
//! {
//!     let url = format!("{upstream}{path}");
//!     // The token is made for `upstream` only: a request anywhere else fails, unsent.
//!     let mut tranzila = ServiceBuilder::new()
//!         .layer(TranzilaSigningLayer::new(credentials, upstream)?)
//!         .service(client);
//!     let request = Request::post(url)
//!         .header(header::CONTENT_TYPE, "application/json")
//!         .body(Full::new(Bytes::from_static(json.as_bytes())))?;
//!     // Every call gets the current time, a fresh nonce and its token.
//!     let response = tranzila.ready().await?.call(request).await?;
//!     Ok(response.into_body().collect().await?.to_bytes())
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), BoxError> {
//!     let credentials =
//!         TranzilaCredentials::from_env("TRANZILA_APP_KEY", "TRANZILA_SECRET")?;
//!     // Plain HTTP here for a local Tranzila mock; use an HTTPS connector for Tranzila itself.
//!     let client = Client::builder(TokioExecutor::new()).build(HttpConnector::new());
//!     // In production: Upstream::tranzila() (https://api.tranzila.com).
//!     let body = call_tranzila(
//!         client,
//!         credentials,
//!         Upstream::parse("http://127.0.0.1:8080")?,
//!         "/v1/transaction/credit_card/create",
//!         r#"{"terminal_name":"demo","txn_type":"debit"}"#,
//!     )
//!     .await?;
//!     println!("{}", String::from_utf8_lossy(&body));
//!     Ok(())
//! }
//! ```
//!
//! A failure to sign (no OS randomness, a target that is not the configured upstream) is a
//! [`SignError`] inside the call's error, and the request is not sent. The server side is [`TranzilaVerifyLayer`]; see its example.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

use http::HeaderName;

mod error;
pub mod future;
mod sign;
mod token;
mod verify;

pub use error::{ConfigError, SignError};
pub use sign::{TranzilaSigning, TranzilaSigningLayer};
pub use token::{
    ACCESS_TOKEN_LEN, NONCE_BYTES, NONCE_LEN, NonceError, TranzilaCredentials, access_token,
    generate_nonce, is_valid_nonce, verify_access_token,
};
/// The scheme, host and port a [`TranzilaSigningLayer`] signs for (`tollgate_core`'s, the one
/// type every tollgate layer pins credentials with).
pub use tollgate_core::upstream::Upstream;
pub use verify::{AppKeySecrets, SCHEME, TranzilaVerify, TranzilaVerifyLayer};

/// `X-tranzila-api-app-key`: the public app key.
pub const APP_KEY: HeaderName = HeaderName::from_static("x-tranzila-api-app-key");
/// `X-tranzila-api-request-time`: the request time, Unix seconds.
pub const REQUEST_TIME: HeaderName = HeaderName::from_static("x-tranzila-api-request-time");
/// `X-tranzila-api-nonce`: 80 hexadecimal characters, fresh for each request.
pub const NONCE: HeaderName = HeaderName::from_static("x-tranzila-api-nonce");
/// `X-tranzila-api-access-token`: the [`access_token`].
pub const ACCESS_TOKEN: HeaderName = HeaderName::from_static("x-tranzila-api-access-token");

/// The crate's README, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
