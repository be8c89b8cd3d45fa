//! The crate's two error types: [`ConfigError`] when a layer is built, [`HeaderError`] when an
//! outbound request is refused.

use std::fmt;

use http::HeaderName;
use tollgate_core::{BoxError, SecretError};

/// Why a layer could not be built. A layer that exists works: nothing a layer is configured
/// with can fail a request later.
///
/// No variant holds a secret: errors name headers and upstreams, never values.
///
/// `?` turns the errors met while gathering a layer's configuration into this one: a
/// [`SecretError`] from [`Secret::from_env`](tollgate_core::Secret::from_env) and an
/// upstream that does not parse ([`Upstream::parse`](crate::Upstream::parse)).
///
/// ```
/// use tollgate_core::Secret;
/// use tollgate_headers::{ConfigError, SecretHeaderLayer, Upstream};
///
/// fn partner_key(key: &str, upstream: &str) -> Result<SecretHeaderLayer, ConfigError> {
///     SecretHeaderLayer::api_key(Secret::from_string(key), Upstream::parse(upstream)?)
/// }
///
/// assert!(partner_key("pk_live_123", "https://api-gateway.transak.com").is_ok());
/// assert!(matches!(
///     partner_key("pk_live_123", "api-gateway.transak.com"),
///     Err(ConfigError::Upstream(_))
/// ));
/// assert_eq!(
///     partner_key("bad\nkey", "https://api-gateway.transak.com").unwrap_err().to_string(),
///     "the secret for the `x-api-key` header is not a valid header value"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// The secret cannot be used: it is blank ([`SecretError::Blank`], checked when the layer
    /// is built), or it could not be loaded (from `Secret::from_env`, through `?`).
    Secret(SecretError),
    /// The secret holds bytes a header value cannot carry (a control character, `DEL`).
    InvalidSecret {
        /// The secret header's name.
        header: HeaderName,
    },
    /// An upstream is not of the form `scheme://host[:port][/base/path]` (through `?` from
    /// [`Upstream::parse`](crate::Upstream::parse)). Its text names at most a scheme, a host
    /// and a port, never user info.
    Upstream(tollgate_core::upstream::ConfigError),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Secret(error) => error.fmt(f),
            Self::InvalidSecret { header } => write!(
                f,
                "the secret for the `{header}` header is not a valid header value"
            ),
            Self::Upstream(error) => error.fmt(f),
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        // The wrapped errors are shown as this one (their `Display` is this error's); their
        // own sources, if any, follow.
        match self {
            Self::Secret(error) => error.source(),
            Self::Upstream(error) => error.source(),
            Self::InvalidSecret { .. } => None,
        }
    }
}

impl From<SecretError> for ConfigError {
    fn from(error: SecretError) -> Self {
        Self::Secret(error)
    }
}

impl From<tollgate_core::upstream::ConfigError> for ConfigError {
    fn from(error: tollgate_core::upstream::ConfigError) -> Self {
        Self::Upstream(error)
    }
}

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
    /// A token the [`TokenProvider`](crate::TokenProvider) fetched holds bytes a header value
    /// cannot carry, or is blank. (A fixed secret is checked when its layer is built:
    /// [`ConfigError::InvalidSecret`].)
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
    use tollgate_core::Upstream;

    use super::*;

    #[test]
    fn messages_name_headers_never_values() {
        let key = HeaderName::from_static("x-api-key");
        let cases = [
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

    #[test]
    fn config_errors_show_the_wrapped_error_and_never_a_value() {
        let blank = ConfigError::from(SecretError::Blank {
            name: "the `x-api-key` header".to_owned(),
        });
        assert_eq!(
            blank.to_string(),
            "the secret for the `x-api-key` header is empty, all zero bytes or only whitespace"
        );
        let invalid = ConfigError::InvalidSecret {
            header: HeaderName::from_static("access-token"),
        };
        assert_eq!(
            invalid.to_string(),
            "the secret for the `access-token` header is not a valid header value"
        );
        let upstream =
            ConfigError::from(Upstream::parse("https://partner:hunter2@api.example").unwrap_err());
        assert_eq!(
            upstream.to_string(),
            "invalid upstream `https://api.example`: user info is not allowed"
        );
        assert_eq!(
            format!("{upstream:?}"),
            "Upstream(InvalidUpstream { upstream: \"https://api.example\", reason: \"user info is not allowed\" })"
        );
        for error in [blank, invalid, upstream] {
            assert!(std::error::Error::source(&error).is_none());
            for text in [error.to_string(), format!("{error:?}")] {
                assert!(
                    !text.contains("hunter2") && !text.contains("partner:"),
                    "{text}"
                );
            }
        }
    }
}
