//! tollgate: composable [tower] middleware for backends that stand between browsers and
//! payment APIs.
//!
//! Payment providers make a set of security rules mandatory for their partners: Transak
//! requires partners to restrict their APIs to their own front-end origins, to send the end
//! user's real IP as `x-user-ip` and the partner key as `x-api-key` from the backend only, and
//! never to forward browser headers such as `Origin` and `Referer`; Tranzila signs every call
//! with an app key, a time, a fresh nonce and an HMAC token; OneKey signs payloads and
//! notifications with HMAC-SHA256; all of them expect stale or replayed requests to be
//! refused and keys to rotate. tollgate turns each rule into one small `tower::Layer` that you
//! stack with [`ServiceBuilder`] on any hyper, axum or tonic client or
//! server. This crate is the facade: it re-exports every layer crate behind a feature, adds
//! [`ServiceBuilderExt`], the ready-made [`transak`] stacks, and a ready client per provider
//! ([`onekey`], [`tranzila`], [`transak`], [`hmac`]): HTTPS only, timeouts, retries that sign
//! every attempt anew, rate limits and an audit event per attempt, in a few lines.
//!
//! These docs are the whole manual: each layer crate is inlined below as a module
//! ([`core`], [`client_ip`], [`origin`], [`headers`], [`signature`], [`replay`],
//! [`tranzila`], [`https`], [`client`], and with its feature `reqwest`), with its own docs,
//! examples and "Security considerations".
//!
//! # Example
//!
//! An axum partner API that browsers call, and the `hyper_util` client it uses to call the
//! provider. The inbound stack refuses foreign origins and records the end user's IP; the
//! outbound stack strips browser headers, adds the partner key and forwards the IP as
//! `x-user-ip` (taken from the inbound request's task, no plumbing needed).
//!
//! ```
//! # #[cfg(all(feature = "origin", feature = "client-ip", feature = "headers", feature = "https"))]
//! # mod example {
//! use std::net::SocketAddr;
//!
//! use axum::{Router, http::StatusCode, routing::post};
//! use bytes::Bytes;
//! use http::Request;
//! use http_body_util::Full;
//! use tollgate::ServiceBuilderExt;
//! use tollgate::https::{HttpsConnector, TlsConfig};
//! use tollgate::core::{BoxError, Secret};
//! use tollgate::headers::{HeaderHygieneLayer, Upstream, X_API_KEY};
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! pub async fn serve(listener: tokio::net::TcpListener) -> Result<(), BoxError> {
//!     // Outbound: a hyper_util client over the HTTPS-only connector, with the provider's
//!     // rules. (The ready clients, `tollgate::transak::TransakClient` and the others, add
//!     // timeouts, retries that re-sign, rate limits and audit events to the same layers.)
//!     let https = HttpsConnector::new(&TlsConfig::new())?.client::<Full<Bytes>>();
//!     let provider = ServiceBuilder::new()
//!         .header_hygiene(HeaderHygieneLayer::server_to_server())
//!         .secret_header(X_API_KEY, Secret::from_env("PROVIDER_API_KEY")?, Upstream::transak())?
//!         .forward_user_ip()
//!         .service(https);
//!
//!     let create = move || {
//!         let provider = provider.clone();
//!         async move {
//!             let request = Request::post("https://api-gateway.transak.com/api/v2/auth/session")
//!                 .body(Full::new(Bytes::from_static(b"{}")))
//!                 .unwrap_or_default();
//!             match provider.oneshot(request).await {
//!                 Ok(response) => response.status(),
//!                 Err(_) => StatusCode::BAD_GATEWAY,
//!             }
//!         }
//!     };
//!
//!     // Inbound: origin allowlist first, then the client IP from the socket peer.
//!     let inbound = ServiceBuilder::new()
//!         .origin_allowlist(["https://app.example.com"])?
//!         .resolve_client_ip("remote-addr".parse()?);
//!     let app = Router::new()
//!         .route("/api/widget-url", post(create))
//!         .layer(inbound);
//!     axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await?;
//!     Ok(())
//! }
//! # }
//! # fn main() {}
//! ```
//!
//! # Features
//!
//! | feature | re-exports | layers |
//! |---|---|---|
//! | `client-ip` | [`client_ip`] (`tollgate-client-ip`) | `ResolveClientIpLayer`, `ForwardUserIpLayer`, `IpAllowlistLayer` |
//! | `origin` | [`origin`] (`tollgate-origin`) | `OriginAllowlistLayer` |
//! | `headers` | [`headers`] (`tollgate-headers`) | `HeaderHygieneLayer`, `SecretHeaderLayer`, `TokenHeaderLayer`, `RequireHeadersLayer`, `InboundHygieneLayer` |
//! | `signature` | [`signature`] (`tollgate-signature`) | `SignRequestLayer`, `VerifySignatureLayer` |
//! | `replay` | [`replay`] (`tollgate-replay`) | `ReplayGuardLayer`, `MemoryNonceStore` |
//! | `tranzila` | [`tranzila`] (`tollgate-tranzila`) | `TranzilaSigningLayer`, `TranzilaVerifyLayer` |
//! | `https` | [`https`] (`tollgate-https`) | `HttpsConnector` (HTTPS only, certificates always verified), `RequireHttpsLayer` |
//! | `reqwest` (opt-in) | `reqwest` (`tollgate-reqwest`) | the outbound layers as reqwest middleware; `build_reqwest()` on every ready client |
//! | `client` | [`client`] (`tollgate-client`) | `ClientBuilder`: deadline, retries that re-sign, rate and concurrency limits, audit events; with the layer crates, the ready clients [`onekey`], [`tranzila`], [`transak`], [`hmac`] |
//! | `full` (default) | all of the above | |
//! | `axum` (default) | | axum extractors and `ConnectInfo` support in the layer crates; needed to serve axum (without it the client-IP layers find no peer: 500 `client_ip_misconfigured`, and the log names this feature) |
//! | `tonic` | | tonic's `TcpConnectInfo` / `TlsConnectInfo` as the client-IP peer |
//! | `redis` | | `RedisNonceStore` (enables `replay`) |
//! | `redis-cluster` | | `RedisNonceStore::cluster` (Redis Cluster) and `RedisNonceStore::sentinel` (Sentinel failover); `wait_for_replicas` (`WAIT`) works on every topology (enables `redis`) |
//! | `metrics` (default) | | every layer records allowed and refused requests, verify latency, nonce-store claims and errors, token refreshes through the [`metrics`](https://docs.rs/metrics) facade ([`core::metrics`]: names, labels; you install the recorder). Without it the recording is compiled out; span fields are recorded either way |
//! | `serde` | | `Deserialize` for client-IP sources |
//!
//! [`core`] (`tollgate-core`: `Secret`, `KeyRing`, `KeyRingHandle`, `Clock`, rejections,
//! metric names) is always there.
//!
//! # Changing keys, ranges and origins while running
//!
//! Keys, trusted-proxy and allowlist ranges, and allowed origins can be swapped without
//! rebuilding the service: give the layer a handle and store into it (readers never lock; a
//! request sees one version). [`core::KeyRingHandle`] for `VerifySignatureLayer` and
//! `SignRequestLayer`; `client_ip::IpRangesHandle` for `ClientIpSource::header`,
//! `rightmost_trusted_range` and `IpAllowlistLayer::with_handle`; `origin::OriginsHandle`
//! from `OriginAllowlistBuilder::build_swappable`. The `key-rotation` example reloads all of
//! them on `SIGHUP`.
//!
//! # Layer order
//!
//! Inbound: HTTPS required → origin allowlist → client IP → IP allowlist → body limit and
//! signature verification → replay guard → handler. Outbound: deadline → retry → rate and
//! concurrency limits → header hygiene → secret headers → `x-user-ip` → signing (anew on
//! every attempt) → attempt timeout → HTTPS-only client. The ready provider clients build
//! the outbound order for you. The [`ServiceBuilderExt`] methods add layers in the order
//! they are called, the first outermost.
//!
//! [tower]: https://docs.rs/tower
//! [`ServiceBuilder`]: https://docs.rs/tower/0.5/tower/struct.ServiceBuilder.html
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod builder;
pub mod transak;

#[cfg(all(feature = "client", feature = "headers", feature = "signature"))]
#[cfg_attr(
    docsrs,
    doc(cfg(all(feature = "client", feature = "headers", feature = "signature")))
)]
pub mod hmac;
#[cfg(all(feature = "client", feature = "headers", feature = "signature"))]
#[cfg_attr(
    docsrs,
    doc(cfg(all(feature = "client", feature = "headers", feature = "signature")))
)]
pub mod onekey;
#[cfg(feature = "client")]
mod provider;
#[cfg(feature = "tranzila")]
#[cfg_attr(docsrs, doc(cfg(feature = "tranzila")))]
pub mod tranzila;

pub use builder::{BoxedClient, ServiceBuilderExt};
#[cfg(feature = "client")]
#[cfg_attr(docsrs, doc(cfg(feature = "client")))]
pub use provider::ProviderConfigError;

/// The provider call stack: HTTPS only, timeouts, a deadline, retries that sign each attempt
/// anew, shared rate and concurrency limits, an audit event per attempt (`tollgate-client`).
#[cfg(feature = "client")]
#[cfg_attr(docsrs, doc(cfg(feature = "client")))]
#[doc(inline)]
pub use tollgate_client as client;
/// HTTPS only, both ways: the certificate-validating rustls connector, and
/// `RequireHttpsLayer` for servers (`tollgate-https`).
#[cfg(feature = "https")]
#[cfg_attr(docsrs, doc(cfg(feature = "https")))]
#[doc(inline)]
pub use tollgate_https as https;
/// The outbound rules as reqwest middleware, and the ready clients' `build_reqwest()`
/// (`tollgate-reqwest`).
#[cfg(feature = "reqwest")]
#[cfg_attr(docsrs, doc(cfg(feature = "reqwest")))]
#[doc(inline)]
pub use tollgate_reqwest as reqwest;

/// Secrets, key rings and their handle, clocks, body buffering, rejections and metric names
/// (`tollgate-core`).
#[doc(inline)]
pub use tollgate_core as core;

/// The end user's real IP in, `x-user-ip` out, and an IP allowlist (`tollgate-client-ip`).
#[cfg(feature = "client-ip")]
#[cfg_attr(docsrs, doc(cfg(feature = "client-ip")))]
#[doc(inline)]
pub use tollgate_client_ip as client_ip;
/// Header hygiene and secret headers (`tollgate-headers`).
#[cfg(feature = "headers")]
#[cfg_attr(docsrs, doc(cfg(feature = "headers")))]
#[doc(inline)]
pub use tollgate_headers as headers;
/// The origin allowlist (`tollgate-origin`).
#[cfg(feature = "origin")]
#[cfg_attr(docsrs, doc(cfg(feature = "origin")))]
#[doc(inline)]
pub use tollgate_origin as origin;
/// Timestamp window and nonce stores (`tollgate-replay`).
#[cfg(feature = "replay")]
#[cfg_attr(docsrs, doc(cfg(feature = "replay")))]
#[doc(inline)]
pub use tollgate_replay as replay;
/// HMAC signing and verification (`tollgate-signature`).
#[cfg(feature = "signature")]
#[cfg_attr(docsrs, doc(cfg(feature = "signature")))]
#[doc(inline)]
pub use tollgate_signature as signature;
