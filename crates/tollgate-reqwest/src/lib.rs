//! tollgate's outbound rules for reqwest users, as
//! [`reqwest-middleware`](reqwest_middleware): header hygiene, secret headers pinned to their
//! upstream, `x-user-ip`, payload signing and Tranzila signing — each of them tollgate's own
//! tower layer, run inside one reqwest middleware ([`TowerMiddleware`]), so no rule is
//! implemented twice.
//!
//! ```text
//! ClientWithMiddleware (ClientBuilder::build)
//!  ├─ PinMiddleware      every request goes to the base URL's scheme, host, port and path
//!  ├─ RetryMiddleware    tollgate-client's RetryPolicy; each attempt is a fresh clone
//!  ├─ TowerMiddleware    the layers, run again on every attempt (new nonce, time, signature)
//!  └─ reqwest::Client    https_only, no redirects, rustls (ring) with verified certificates
//! ```
//!
//! ```no_run
//! use std::time::Duration;
//! use tollgate_core::{Secret, Upstream};
//! use tollgate_headers::{HeaderHygieneLayer, SecretHeaderLayer};
//! use tollgate_reqwest::ClientBuilder;
//! use tower::ServiceBuilder;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let upstream = Upstream::parse("https://api.provider.example")?;
//! let client = ClientBuilder::new("https://api.provider.example")
//!     .timeout(Duration::from_secs(10))
//!     .build(
//!         ServiceBuilder::new()
//!             .layer(HeaderHygieneLayer::server_to_server())
//!             .layer(SecretHeaderLayer::api_key(Secret::from_string("sk_live_example"), upstream)?)
//!             .into_inner(),
//!     )?;
//! let response = client
//!     .post("https://api.provider.example/v1/orders")
//!     .body(r#"{"amount":100}"#)
//!     .send()
//!     .await?;
//! # let _ = response;
//! # Ok(())
//! # }
//! ```
//!
//! # Security considerations
//!
//! - **A secret goes to its upstream only.** `x-api-key`, `access-token`, Tranzila's headers
//!   and signatures are added by the layers that pin them; a request elsewhere is refused
//!   with the layer's typed error ([`Error::Refused`]) and nothing is sent.
//! - **Redirects are never followed** by clients of [`ClientBuilder`]: a `302` to another host
//!   comes back as the answer, so no credential is carried there.
//! - **Verified HTTPS only.** [`ClientBuilder`] builds the reqwest client itself: `https_only`,
//!   TLS from `tollgate_https::TlsConfig` (certificates always verified); an `http` base URL is
//!   refused at build, and a bad certificate fails the request.
//! - **Streaming bodies are refused** ([`Error::StreamingBody`]) rather than sent unsigned.
//! - **No proxy from the environment.** The clients this crate builds call `no_proxy()`:
//!   `HTTPS_PROXY` and friends are ignored, and the provider is reached directly.
//! - **Errors never show a query.** reqwest's errors print the request URL; the middlewares
//!   return them `without_url()`, so a card number or token in a query string stays out.
//! - **An idempotency key counts only if it was sent.** When a layer strips the retry
//!   policy's idempotency-key header (an allowlist of headers), a non-idempotent request is
//!   not retried on it.
//! - **One header reqwest adds itself**: `accept: */*` when the request has no `accept`,
//!   after the middleware; an allowlist of headers cannot remove it.
//! - **Every retry is signed anew**: the retry is outside the layers.
//! - **Typed errors, no secret in them**: [`find_error`] finds the layer's error in the chain.
//! - **One settings type for both transports**: [`client()`] builds from a
//!   `tollgate_client::ClientBuilder` and honours every setting (deadline, limits shared by
//!   clones, body limit, signed time resolution, one audit event per attempt with
//!   tollgate-client's fields and never a header value or query); none is silently ignored.

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod adapter;
mod builder;
mod error;
mod layers;
mod pin;
mod retry;

pub use adapter::{Capture, TowerMiddleware};
pub use builder::{ClientBuilder, client, client_with};
pub use error::{ConfigError, Error, find_error};
pub use pin::PinMiddleware;
pub use reqwest_middleware;
pub use retry::RetryMiddleware;
/// tollgate-client's retry rules, for [`ClientBuilder::retry`] and [`RetryMiddleware::new`].
pub use tollgate_client::RetryPolicy;
/// tollgate-https's TLS settings, for [`ClientBuilder::tls`].
pub use tollgate_https::TlsConfig;

/// The README's example, compiled as a doctest.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
