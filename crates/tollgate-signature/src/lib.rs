//! HMAC payload signing and webhook signature verification, as tower layers.
//!
//! Payment providers sign what travels between you and them. OneKey Payments requires each
//! cashout request to carry `Payload-Signature`, the lowercase hex HMAC-SHA256 of the *exact*
//! JSON payload bytes keyed with the "API Signature" secret, and signs its notifications the
//! same way; a common generic rule signs Method + Path + Body + Timestamp with a Unix-seconds
//! timestamp accepted within ±5 minutes; webhooks carry `X-Webhook-Signature`, Standard
//! Webhooks, Stripe-style or GitHub signatures that the receiver must verify and reject when
//! invalid. Keys rotate (every 90 days, with a period where old and new both verify).
//!
//! The usual approach, a function over `&[u8]`, leaves the hard parts to every caller:
//! buffering the body, keeping the bytes after verifying, not re-serialising JSON, limiting the
//! body size, trying every key that is still valid. Here each is done once:
//!
//! - [`VerifySignatureLayer`] (server): reads the body with a limit (413), verifies it against a
//!   [`KeyRing`] in constant time, hands the **same** bytes on and records a
//!   [`VerifiedSignature`] (scheme, key id, timestamp, signature) for handlers and for a
//!   replay guard. Refusals are tollgate's JSON rejections (401/400/413).
//! - [`SignRequestLayer`] (client): pinned to the [`Upstream`]s it is built with, reads the
//!   outbound body, signs it with the ring's signing key at the
//!   [`Clock`](tollgate_core::Clock)'s time, and sends exactly the signed bytes; it fails with a
//!   typed [`SignError`] rather than send an unsigned request or a signature elsewhere.
//! - [Schemes](Scheme), usable without tower: [`BodyHmac`] (OneKey, `X-Webhook-Signature`,
//!   GitHub, or your own header), [`Canonical`] (Method + Path + Body + Timestamp),
//!   [`StandardWebhooks`], [`Stripe`].
//! - With feature `axum`: the extractors `SignedBody` and `SignedJson` give handlers the verified
//!   raw bytes and JSON parsed from them (never re-encode the JSON; see the `extract` module).
//!
//! # Example
//!
//! A webhook receiver (axum) and a sender (a `hyper_util` client) on loopback:
//!
//! ```
//! use axum::{Extension, Router, routing::post};
//! use bytes::Bytes;
//! use http::{Request, StatusCode};
//! use http_body_util::{BodyExt, Full};
//! use hyper_util::{client::legacy::Client, rt::TokioExecutor};
//! use tollgate_core::{BufferedBody, Key, KeyRing, Secret, VerifiedSignature};
//! use tollgate_signature::{BodyHmac, SignRequestLayer, Upstream, VerifySignatureLayer};
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! // The receiver accepts the new key and, until its expiry, the old one.
//! let ring = KeyRing::new(Key::new("2026-08", Secret::from_string("old-secret")).not_after(4_000_000_000))
//!     .rotate(Key::new("2026-11", Secret::from_string("new-secret")));
//!
//! async fn notify(Extension(verified): Extension<VerifiedSignature>, body: Bytes) -> String {
//!     format!("{} bytes, key {}", body.len(), verified.key_id())
//! }
//! let app = Router::new()
//!     .route("/webhooks", post(notify))
//!     .layer(VerifySignatureLayer::new(BodyHmac::x_webhook_signature(), ring.clone())?);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let addr = listener.local_addr()?;
//! tokio::spawn(async move { axum::serve(listener, app).await });
//!
//! // The sender signs with the ring's signing key, for this receiver only.
//! let receiver = Upstream::parse(&format!("http://{addr}"))?;
//! let client = ServiceBuilder::new()
//!     .layer(SignRequestLayer::new(BodyHmac::x_webhook_signature(), ring, receiver)?)
//!     .service(Client::builder(TokioExecutor::new()).build_http::<BufferedBody>());
//! let request = Request::post(format!("http://{addr}/webhooks"))
//!     .header("content-type", "application/json")
//!     .body(Full::new(Bytes::from_static(br#"{"event":"paid"}"#)))?;
//! let response = client.oneshot(request).await?;
//! assert_eq!(response.status(), StatusCode::OK);
//! assert_eq!(response.into_body().collect().await?.to_bytes(), "16 bytes, key 2026-11");
//! # Ok(())
//! # }
//! ```
//!
//! # Metrics
//!
//! [`VerifySignatureLayer`] records through the `metrics` facade (names in
//! `tollgate_core::metrics`) with `layer="signature"`: `tollgate_requests_allowed_total`,
//! `tollgate_requests_refused_total` by `code` (`signature_missing`, `signature_invalid`,
//! `timestamp_out_of_window`, `payload_too_large`, …), and `tollgate_verify_duration_seconds`, the
//! time of the check once the body has arrived, whatever its outcome. It records the id of the
//! key that verified into the span field `tollgate.key_id` when the current span declares it.
//! [`SignRequestLayer`] (client side) records nothing.
//!
//! Recorded when tollgate-core's `metrics` feature is on: the `tollgate` facade's default; with
//! this crate alone, depend on `tollgate-core` with its default features (or feature
//! `metrics`). Nothing is kept until the application installs a recorder.
//!
//! # Security considerations
//!
//! - **Signatures are pinned to their upstreams.** A payload or canonical signature is a
//!   credential for that exact request at the real provider (within the timestamp window; for
//!   body-only schemes such as OneKey's, as long as the replay guard lets it), so a signature
//!   sent to the wrong host can be replayed there. [`SignRequestLayer::new`] therefore takes
//!   the [`Upstream`] it may sign for (more with [`SignRequestLayer::upstream`]); an
//!   `Upstream` is parsed when the configuration is built, never per request. The rules are
//!   [`tollgate_core::upstream::check`]'s, and each is tested under these words in
//!   `tests/pinning.rs`:
//!   1. A request to a scheme, host or port that is not a configured upstream (or with a
//!      relative URI, or user info) fails with [`SignError::UpstreamNotAllowed`]; nothing is
//!      signed and the inner service is never called. The port is the effective port and the
//!      scheme must match: `:8443` is another upstream, and so is `http`.
//!   2. A `Host` header must be absent or exactly one that names the same host and effective
//!      port as the URI; otherwise `call` fails with [`SignError::AmbiguousTarget`].
//!   3. The check runs in `call`, before the body is read, the signing key is looked up or
//!      anything is signed.
//!   4. A refused request never reaches the inner service, so a `hyper_util` client below the
//!      layer never opens a connection for it.
//!   5. No error names user info, a path or a query: a refusal names at most
//!      `scheme://host[:port]`.
//!
//!   Put the layer *inside* (after) any layer that follows redirects, so every hop is checked.
//! - **The canonical path is the path sent.** With [`Canonical`], a URI with an empty path is
//!   signed with the path `/`, as HTTP sends it: `http://h?x=1` signs `/?x=1` and `http://h`
//!   signs `/`, so the verifier (which sees the request line) accepts it. Tested under these
//!   words in `tests/canonical_path.rs`, signer and verifier together over TCP.
//! - **Blank keys.** Anyone can compute a MAC under an empty, all-zero or whitespace-only key
//!   ([`Secret::is_blank`](tollgate_core::Secret::is_blank)). [`SignRequestLayer::new`] refuses
//!   a ring whose signing key is blank ([`ConfigError::BlankSigningKey`]) and
//!   [`VerifySignatureLayer::new`] a ring with no other key ([`ConfigError::NoUsableKey`]),
//!   when the layer is built; the schemes never verify with a blank key of a ring and refuse
//!   to sign with one ([`SignError::InvalidKey`]). Tested in `tests/layers.rs`
//!   (`blank_keys_fail_when_the_layer_is_built`) and `tests/anchors.rs`.
//! - **Rotating keys while running.** Give either layer a [`KeyRingHandle`] (kept by you) in
//!   place of a [`KeyRing`], and [`store`](KeyRingHandle::store) new rings into it: new key,
//!   deploy, verify, revoke old, without rebuilding the service. Each statement is tested in
//!   `tests/rotation.rs`:
//!   1. A request is verified by exactly one version of the ring: the verifier loads the
//!      handle once, when the body has arrived, and a request whose body is still arriving
//!      during a swap is judged wholly by the new version (its key id names it).
//!   2. Revocation takes effect on the very next request: a key removed from the stored ring
//!      fails its next use with 401 `signature_invalid`.
//!   3. The handle refuses what a layer refuses when built: a ring whose signing key is blank
//!      is never installed (the ring in place stays).
//!   4. Many clients verifying over real sockets while another task swaps rings in a loop:
//!      every request is answered, and every accepted one names a key of one version holding
//!      exactly the secret it was signed with.
//!
//!   The signer loads its handle once in `call` and signs that request with that version.
//! - **Clock skew.** Timestamped schemes accept `|now - ts| <= 300 s` by default, inclusive;
//!   keep servers on NTP and change the window per scheme with `tolerance`.
//! - **Replays.** A valid request can be captured and sent again inside the window (and forever
//!   for body-only schemes, which sign no time). Put a replay guard inside this layer; it reads
//!   [`VerifiedSignature::replay_key`], which names the *message* (its signed id, else the
//!   SHA-256 of the exact bytes the signature covers), never the key that verified it: a
//!   message signed under an old and a new key during a rotation has one identity, whichever
//!   signatures of its list an attacker strips or reorders (tested in
//!   `tests/message_identity.rs`). A body-only scheme can promise only "not again within the
//!   retention you choose" (`ReplayGuardLayer::untimed_retention` in tollgate-replay).
//! - **Layer order.** Verify before anything changes the body, path or signed headers.
//! - **Body limits.** Bodies are buffered in memory up to the limit (1 MiB by default).
//! - **Slow bodies.** [`VerifySignatureLayer`] waits at most its
//!   [`body_timeout`](VerifySignatureLayer::body_timeout) (10 s by default) for the whole
//!   body, counted from when it starts reading and never reset by bytes that keep arriving:
//!   a client that trickles its body, or declares a `Content-Length` and sends nothing, is
//!   answered 408 `body_timeout` no sooner than the timeout (to tokio's millisecond timer
//!   granularity) and, in the tests, within 1.5 s after it on a loaded machine; the inner
//!   service is not called, and hyper then closes the connection. A declared `Content-Length` over the limit is answered 413 at once, without
//!   waiting. Memory held meanwhile follows the bytes that arrived, not the declared length.
//!   Tested over TCP in the workspace's `tests/tests/hostile_clients.rs` (Content-Length and
//!   chunked trickles, a declared body that never comes, `Content-Length: 10000000000`, the
//!   webhook-receiver example cutting off one byte a second after the default 10 s, and 200
//!   such clients at once).
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod config;
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub mod extract;
pub mod future;
mod scheme;
mod sign;
mod verify;

#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use extract::{SignedBody, SignedBodyRejection, SignedJson};
pub use scheme::{
    BodyHmac, Canonical, ConfigError, Encoding, MethodCase, PreparedKeys, RequestParts, Scheme,
    SignError, StandardWebhooks, Stripe, VerifyError,
};
pub use sign::{SignRequest, SignRequestLayer};
pub use tollgate_core::upstream::Upstream;
pub use tollgate_core::{KeyRing, KeyRingHandle, VerifiedSignature};
pub use verify::{VerifiedBody, VerifySignature, VerifySignatureLayer};

/// The README's example, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
