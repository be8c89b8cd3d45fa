//! The shared building blocks of [tollgate](https://docs.rs/tollgate): the pieces every
//! tollgate layer stands on.
//!
//! Payment providers (Transak, Tranzila, OneKey Payments) require partners to keep API keys
//! on the backend, sign requests with HMAC secrets that rotate every 90 days, reject stale
//! requests and answer refused calls cleanly. This crate holds what those rules have in common:
//!
//! - [`Secret`]: key bytes, wiped on drop, never printed, turned into *sensitive* header values.
//! - [`KeyRing`] and [`Key`]: one signing key plus older keys still accepted until their expiry.
//! - [`KeyRingHandle`]: a ring swappable while the service runs (rotate, revoke), read
//!   without locking.
//! - [`Clock`], [`SystemClock`], [`ManualClock`]: the current Unix time, injectable for tests.
//! - [`body`]: read a body into one `Bytes` with a limit (413 vs 400), and hand the same bytes on.
//! - [`timestamp`]: the digits-only Unix-seconds parse and the inclusive ±300 s window.
//! - [`upstream`]: [`Upstream`] and [`upstream::check`], pinning a credential to the scheme,
//!   host and port it may be sent to (and to a `Host` header that agrees).
//! - [`VerifiedSignature`], [`RequestTimestamp`]: facts verifiers put into request extensions.
//! - [`Rejection`] and [`RejectionResponder`]: the one error shape of every server layer,
//!   `{"error":{"code":"...","message":"..."}}`, replaceable, logged with target `tollgate`.
//! - [`metrics`]: the metric names every layer records through the `metrics` facade (feature
//!   `metrics`, on by default), and the span fields it records for request tracing.
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
//!
//! # Security considerations
//!
//! Each statement is tested as stated (unit tests in `secret.rs` and `body.rs`).
//!
//! - **A blank secret is never used.** A secret is *blank* when it has no bytes or is UTF-8
//!   text made only of whitespace ([`Secret::is_blank`]; Unicode `White_Space`, so `" "`,
//!   `"\t\n"` and a no-break space are blank, `" s "` and non-UTF-8 key bytes are not). A MAC
//!   keyed with a blank secret is one anyone can compute (Tranzila's key is then only the time
//!   and nonce it sends in clear), and a blank API key is one anyone can send. This is the one
//!   rule every tollgate crate applies, with [`Secret::check_usable`], which fails with
//!   [`SecretError::Blank`] naming what the secret is for, never its value:
//!   - a layer that takes a secret refuses a blank one **when it is built** (its constructor
//!     returns a `Result`), never per request: tollgate-tranzila's credentials and verifier,
//!     tollgate-headers' `SecretHeaderLayer`;
//!   - a secret looked up per request (tollgate-tranzila's `AppKeySecrets`) that turns out
//!     blank is refused like an unknown key;
//!   - tollgate-signature's schemes never sign with a blank key and skip blank keys of a ring
//!     when verifying;
//!   - [`Secret::from_env`] refuses a variable that is set but blank
//!     ([`SecretError::Empty`], naming the variable), exactly as it refuses a missing one.
//! - **Key rings swap whole.** A [`KeyRingHandle`] is read with one lock-free load that
//!   returns one version of the ring; a concurrent [`KeyRingHandle::store`] is seen by the
//!   next load, never half-way through a reader's use (tested in `handle.rs`,
//!   `a_loaded_version_stays_whole_across_a_store`, and across layers in tollgate-signature's
//!   `tests/rotation.rs`). [`KeyRingHandle::store`] refuses a ring whose signing key is blank
//!   and keeps the current one (`store_refuses_a_blank_signing_key_and_keeps_the_ring`), so a
//!   swap never installs a ring a layer would refuse when built.
//! - **Body memory follows the bytes that arrived, never a declared length.** [`body::buffer`]
//!   refuses a body whose declared length (or size hint) is over the limit before reading,
//!   but never allocates from that declaration: while the body is read its buffer holds at most
//!   twice the bytes received and never more than the limit. A peer that declares
//!   `content-length: 1048576`, sends two bytes and stalls holds two bytes of buffer, so many
//!   such connections (or HTTP/2 streams) cost what they sent, not what they promised.
//! - **A slow body is cut off at a deadline, not per chunk.** [`BufferBody::timeout`] sets one
//!   deadline for the whole body when reading first has to wait; chunks that keep arriving
//!   never move it, so a peer that trickles one byte at a time fails with
//!   [`BufferError::TimedOut`] (408 `body_timeout`) no sooner than the timeout (to tokio's
//!   millisecond timer granularity) and as soon as the timer fires after it, exactly like a
//!   peer that sends nothing. A body complete at the first read starts no timer.
//!   `Duration::ZERO` fails any body that must be waited for. The timer is tokio's: outside a
//!   tokio runtime, or in one built without its time driver, the timeout does not apply (in
//!   the latter tokio's panic is caught once per thread and a warning logged, so a slow body
//!   never takes the connection down, unless the binary is built with `panic = "abort"`).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod body;
mod clock;
pub mod future;
mod handle;
pub mod header;
mod injected;
mod keyring;
#[doc(hidden)]
pub mod macros;
pub mod metrics;
pub mod rejection;
mod response;
mod secret;
pub mod timestamp;
pub mod upstream;
mod verified;

pub use body::{
    BoxError, BufferBody, BufferError, BufferedBody, DEFAULT_BODY_LIMIT, DEFAULT_BODY_TIMEOUT,
};
pub use clock::{Clock, ManualClock, SharedClock, SystemClock};
pub use handle::{KeyRingGuard, KeyRingHandle};
pub use injected::InjectedHeaders;
pub use keyring::{Key, KeyRing};
pub use rejection::{Rejection, RejectionResponder, RespondRejection};
pub use response::ResponseBody;
pub use secret::{InvalidHeaderSecret, REDACTED, Secret, SecretError};
pub use timestamp::{TimestampError, TimestampWindow};
pub use upstream::Upstream;
pub use verified::{RequestTimestamp, VerifiedSignature};
