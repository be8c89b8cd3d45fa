//! The futures of this crate's services.
//!
//! Polling after completion returns `Poll::Pending`, as every tollgate future does (see
//! [`tollgate_core::future`]).

use tollgate_core::future::OutboundFuture;
use tollgate_replay::future::ReplayGuardFuture;

use crate::error::SignError;

/// The future of [`TranzilaSigning`](crate::TranzilaSigning): the [`SignError`] (boxed; the
/// request was not sent), or the inner call with its error boxed.
pub type TranzilaSigningFuture<F> = OutboundFuture<F, SignError>;

/// The future of [`TranzilaVerify`](crate::TranzilaVerify): the verifier's own refusal,
/// ready at once, or the built-in replay guard's claim, then the inner call. It is the guard's
/// future, which has that refusal state already.
pub type TranzilaVerifyFuture<S, ReqBody> = ReplayGuardFuture<S, ReqBody>;
