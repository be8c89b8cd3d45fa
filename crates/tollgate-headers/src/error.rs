//! The typed errors of the outbound layers. (`ConfigError` is `tollgate_core`'s, re-exported.)

use std::fmt;

use http::HeaderName;
use tollgate_core::BoxError;

/// Why an outbound layer refused to send a request.
///
/// Client-side layers of this crate fail their `call` with a [`BoxError`] that holds a
/// `HeaderError`; read it back with `downcast_ref`. The inner service (the HTTP client) is
/// never called for a refused request, so nothing reaches the network.
///
/// No variant holds a secret: errors name headers and targets, never values.
///
/// ```
/// use tollgate_core::BoxError;
/// use tollgate_headers::HeaderError;
///
/// fn is_wrong_upstream(error: &BoxError) -> bool {
///     matches!(
///         error.downcast_ref::<HeaderError>(),
///         Some(HeaderError::UpstreamNotAllowed { .. })
///     )
/// }
/// # let error: BoxError = "other".into();
/// # assert!(!is_wrong_upstream(&error));
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum HeaderError {
    /// A secret header layer has no upstream configured, so it sends its secret nowhere.
    UpstreamNotConfigured {
        /// The secret header's name.
        header: HeaderName,
    },
    /// The request goes to a scheme or authority other than the configured upstream(s).
    UpstreamNotAllowed {
        /// The secret header's name.
        header: HeaderName,
        /// Where the request was going: `scheme://host:port`, or `relative URI` when the
        /// request URI had no scheme or authority. User info is never included.
        target: String,
    },
    /// The request does not say unambiguously where it goes: its `Host` header disagrees
    /// with its URI, it has several `Host` headers, or its URI's port is not a valid port.
    /// Nothing was sent.
    AmbiguousTarget {
        /// The secret header's name.
        header: HeaderName,
        /// What is ambiguous (a fixed text, never a header value).
        reason: &'static str,
    },
    /// The secret (or a fetched token) holds bytes a header value cannot carry.
    InvalidSecret {
        /// The secret header's name.
        header: HeaderName,
    },
    /// The token provider failed to produce a token.
    TokenUnavailable {
        /// The token header's name.
        header: HeaderName,
        /// The provider's error.
        source: BoxError,
    },
    /// A required outbound header is missing or empty.
    MissingHeader {
        /// The missing header's name.
        name: HeaderName,
    },
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UpstreamNotConfigured { header } => write!(
                f,
                "no upstream is configured for the `{header}` header; the request was not sent"
            ),
            Self::UpstreamNotAllowed { header, target } => write!(
                f,
                "refusing to send the `{header}` header to {target}: not a configured upstream"
            ),
            Self::AmbiguousTarget { header, reason } => write!(
                f,
                "refusing to send the `{header}` header: {reason}; the request was not sent"
            ),
            Self::InvalidSecret { header } => write!(
                f,
                "the secret for the `{header}` header is not a valid header value"
            ),
            Self::TokenUnavailable { header, .. } => {
                write!(f, "no token could be fetched for the `{header}` header")
            }
            Self::MissingHeader { name } => {
                write!(f, "the required header `{name}` is missing")
            }
        }
    }
}

impl std::error::Error for HeaderError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::TokenUnavailable { source, .. } => Some(&**source),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_headers_never_values() {
        let key = HeaderName::from_static("x-api-key");
        let cases = [
            (
                HeaderError::UpstreamNotConfigured {
                    header: key.clone(),
                },
                "no upstream is configured for the `x-api-key` header; the request was not sent",
            ),
            (
                HeaderError::UpstreamNotAllowed {
                    header: key.clone(),
                    target: "https://evil.example".to_owned(),
                },
                "refusing to send the `x-api-key` header to https://evil.example: not a configured upstream",
            ),
            (
                HeaderError::AmbiguousTarget {
                    header: key.clone(),
                    reason: "the Host header disagrees with the request URI",
                },
                "refusing to send the `x-api-key` header: the Host header disagrees with the request URI; the request was not sent",
            ),
            (
                HeaderError::InvalidSecret { header: key },
                "the secret for the `x-api-key` header is not a valid header value",
            ),
            (
                HeaderError::MissingHeader {
                    name: http::header::USER_AGENT,
                },
                "the required header `user-agent` is missing",
            ),
        ];
        for (error, message) in cases {
            assert_eq!(error.to_string(), message);
            assert!(std::error::Error::source(&error).is_none());
        }
    }
}
