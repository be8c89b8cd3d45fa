//! [`TokenFetchError`]: why a fetch produced no token, other than the provider's own error.

use std::fmt;
use std::time::Duration;

/// Why a token fetch produced no token, other than the provider's own error. It is the
/// source of [`HeaderError::TokenUnavailable`](crate::HeaderError::TokenUnavailable):
///
/// ```
/// use tollgate_core::BoxError;
/// use tollgate_headers::{HeaderError, TokenFetchError};
///
/// fn timed_out(error: &BoxError) -> bool {
///     match error.downcast_ref::<HeaderError>() {
///         Some(HeaderError::TokenUnavailable { source, .. }) => matches!(
///             source.downcast_ref::<TokenFetchError>(),
///             Some(TokenFetchError::TimedOut { .. })
///         ),
///         _ => false,
///     }
/// }
/// # let error: BoxError = "other".into();
/// # assert!(!timed_out(&error));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenFetchError {
    /// A request went through a [`TokenHeaderLayer`](crate::TokenHeaderLayer) from inside
    /// that layer's own token fetch (the provider's refresh call uses the stack it refreshes
    /// the token for). Refused at once: it would wait for the very fetch that waits for it.
    Reentrant,
    /// The provider did not answer within the layer's
    /// [`fetch_timeout`](crate::TokenHeaderLayer::fetch_timeout).
    TimedOut {
        /// The fetch timeout.
        after: Duration,
    },
    /// The fetch ended without an answer: the provider panicked, the runtime is shutting
    /// down, or its timer is disabled (build it with `enable_time` or `enable_all`).
    Aborted,
    /// There is no Tokio runtime to run the fetch on (it runs as a task of its own).
    NoRuntime,
    /// The provider answered a token whose expiry had already passed by the layer's clock:
    /// never sent (the provider would refuse it, or a stale cache served it).
    Expired {
        /// The token's expiry, Unix seconds.
        expires_at: u64,
    },
}

impl fmt::Display for TokenFetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Reentrant => f.write_str(
                "the token provider's own request went through the token layer it refreshes",
            ),
            Self::TimedOut { after } => {
                write!(f, "the token provider did not answer within {after:?}")
            }
            Self::Aborted => f.write_str("the token fetch ended without an answer"),
            Self::NoRuntime => f.write_str("no Tokio runtime to run the token fetch on"),
            Self::Expired { expires_at } => write!(
                f,
                "the token provider answered a token that expired at {expires_at} (Unix time)"
            ),
        }
    }
}

impl std::error::Error for TokenFetchError {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DEFAULT_FETCH_TIMEOUT;

    #[test]
    fn fetch_errors_name_no_secret() {
        for (error, text) in [
            (
                TokenFetchError::Reentrant,
                "the token provider's own request went through the token layer it refreshes",
            ),
            (
                TokenFetchError::TimedOut {
                    after: DEFAULT_FETCH_TIMEOUT,
                },
                "the token provider did not answer within 10s",
            ),
            (
                TokenFetchError::Aborted,
                "the token fetch ended without an answer",
            ),
            (
                TokenFetchError::NoRuntime,
                "no Tokio runtime to run the token fetch on",
            ),
        ] {
            assert_eq!(error.to_string(), text);
        }
    }
}
