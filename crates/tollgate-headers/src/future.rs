//! The response futures of this crate's services, one per service that can refuse a request.
//!
//! [`SecretHeaderFuture`] and [`RequireHeadersFuture`] are
//! [`tollgate_core::future::OutboundFuture`]: the refusal (a [`HeaderError`], boxed) ready at
//! once, or the inner service's future with its error boxed. [`TokenHeaderFuture`] also waits
//! for a token fetch before it calls the inner service. The hygiene services never refuse a
//! request, so they return the inner service's future as it is.
//!
//! Polling any of them again after it returned `Poll::Ready` returns `Poll::Pending`
//! (tollgate's one rule, see [`tollgate_core::future`]).

use tollgate_core::future::OutboundFuture;

use crate::HeaderError;

pub use crate::secret::token::future::TokenHeaderFuture;

/// Response future of [`SecretHeader`](crate::SecretHeader): the refusal (a [`HeaderError`])
/// or the inner service's future, with its error boxed.
pub type SecretHeaderFuture<F> = OutboundFuture<F, HeaderError>;

/// Response future of [`RequireHeaders`](crate::RequireHeaders): the refusal
/// ([`HeaderError::MissingHeader`]) or the inner service's future, with its error boxed.
pub type RequireHeadersFuture<F> = OutboundFuture<F, HeaderError>;
