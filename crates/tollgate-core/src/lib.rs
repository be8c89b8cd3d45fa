//! The shared building blocks of [tollgate](https://docs.rs/tollgate): the pieces every
//! tollgate layer stands on.
//!
//! Payment providers (Transak, Tranzila, OneKey Payments) require partners to keep API keys
//! on the backend, sign requests with HMAC secrets that rotate every 90 days, reject stale
//! requests and answer refused calls cleanly. This crate holds what those rules have in common:
//!
//! - [`Secret`]: key bytes, wiped on drop, never printed, turned into *sensitive* header values.
//! - [`KeyRing`] and [`Key`]: one signing key plus older keys still accepted until their expiry.
//! - [`Clock`], [`SystemClock`], [`ManualClock`]: the current Unix time, injectable for tests.
//! - [`body`]: read a body into one `Bytes` with a limit (413 vs 400), and hand the same bytes on.
//! - [`timestamp`]: the digits-only Unix-seconds parse and the inclusive ±300 s window.
//! - [`upstream`]: [`Upstream`] and [`upstream::check`], pinning a credential to the scheme,
//!   host and port it may be sent to (and to a `Host` header that agrees).
//! - [`VerifiedSignature`], [`RequestTimestamp`]: facts verifiers put into request extensions.
//! - [`Rejection`] and [`RejectionResponder`]: the one error shape of every server layer,
//!   `{"error":{"code":"...","message":"..."}}`, replaceable, logged with target `tollgate`.
//!
//! # Example
//!
//! ```
//! use tollgate_core::{Clock, Key, KeyRing, ManualClock, Secret};
//!
//! // Keys: the new one signs, the old one is still accepted until its not-after time.
//! let ring = KeyRing::new(Key::new("2026-08", Secret::from_string("old")).not_after(1_790_000_000))
//!     .rotate(Key::new("2026-11", Secret::from_string("new")));
//! let clock = ManualClock::new(1_789_999_999);
//! let usable: Vec<_> = ring.verification_keys(clock.now_unix()).map(|k| k.id()).collect();
//! assert_eq!(usable, ["2026-11", "2026-08"]);
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod body;
mod clock;
mod injected;
mod keyring;
pub mod rejection;
mod secret;
pub mod timestamp;
pub mod upstream;
mod verified;

pub use body::{BoxError, BufferBody, BufferError, BufferedBody, DEFAULT_BODY_LIMIT, ResponseBody};
pub use clock::{Clock, ManualClock, SharedClock, SystemClock};
pub use injected::InjectedHeaders;
pub use keyring::{Key, KeyRing};
pub use rejection::{Rejection, RejectionResponder, RespondRejection};
pub use secret::{InvalidHeaderSecret, REDACTED, Secret, SecretError};
pub use timestamp::{TimestampError, TimestampWindow};
pub use upstream::Upstream;
pub use verified::{RequestTimestamp, VerifiedSignature};
