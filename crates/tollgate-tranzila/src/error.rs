//! [`ConfigError`] (a layer that cannot be built) and [`SignError`] (a request that cannot be
//! signed, hence not sent).

use std::fmt;

use tollgate_core::SecretError;
use tollgate_core::upstream::{self, TargetError};

#[cfg(doc)]
use crate::{TranzilaSigningLayer, TranzilaVerifyLayer};

/// Why a layer of this crate could not be built: [`TranzilaSigningLayer::new`] or
/// [`TranzilaVerifyLayer::new`]. A layer that exists is a layer that works.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// The app key is empty or holds characters other than visible ASCII.
    InvalidAppKey,
    /// A secret the verifier can see at build time is unusable: [`SecretError::Blank`], naming
    /// the app key ([`AppKeySecrets::check_secrets`](crate::AppKeySecrets::check_secrets)).
    /// Displays as the [`SecretError`] does.
    Secret(SecretError),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidAppKey => {
                f.write_str("the Tranzila app key must be non-empty visible ASCII")
            }
            Self::Secret(err) => err.fmt(f),
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::InvalidAppKey => None,
            Self::Secret(err) => Some(err),
        }
    }
}

impl From<SecretError> for ConfigError {
    fn from(err: SecretError) -> Self {
        Self::Secret(err)
    }
}

/// Why a request could not be signed (and was therefore not sent). It reaches the caller
/// inside the service's [`BoxError`](tollgate_core::BoxError): `error.downcast_ref::<SignError>()`.
///
/// No variant holds a secret, a token, user info, a path or a query.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignError {
    /// The request goes to a scheme, host or port that is not a configured upstream (or its
    /// URI is relative or has user info). No token was made; nothing was sent.
    UpstreamNotAllowed {
        /// Where the request was going: `scheme://host[:port]` or `a relative URI`
        /// ([`tollgate_core::upstream::describe_target`]).
        target: String,
    },
    /// The request does not say unambiguously where it goes: its `Host` header disagrees
    /// with its URI, it has several `Host` headers, or its URI's port is not a valid port.
    /// No token was made; nothing was sent.
    AmbiguousTarget {
        /// What is ambiguous (a fixed text, never a header value).
        reason: &'static str,
    },
    /// The operating system could not provide randomness for the nonce.
    Randomness,
    /// The nonce source gave something other than 80 hexadecimal characters.
    InvalidNonce,
    /// A header value could not be built.
    InvalidHeader,
}

impl SignError {
    pub(crate) fn refused(error: TargetError, uri: &http::Uri) -> Self {
        match error {
            TargetError::Ambiguous { reason } => Self::AmbiguousTarget { reason },
            TargetError::NotAllowed { target } => Self::UpstreamNotAllowed { target },
            TargetError::OutsideBasePath { target } => Self::UpstreamNotAllowed {
                target: format!("{target} (outside the configured base path)"),
            },
            // Not reachable (the layer always has an upstream); fail closed if it grows.
            _ => Self::UpstreamNotAllowed {
                target: upstream::describe_target(uri),
            },
        }
    }
}

impl fmt::Display for SignError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UpstreamNotAllowed { target } => write!(
                f,
                "refusing to sign a Tranzila request to {target}: not a configured upstream; \
                 the request was not sent"
            ),
            Self::AmbiguousTarget { reason } => write!(
                f,
                "refusing to sign a Tranzila request: {reason}; the request was not sent"
            ),
            Self::Randomness => f.write_str("no randomness available for the Tranzila nonce"),
            Self::InvalidNonce => {
                f.write_str("the Tranzila nonce is not 80 hexadecimal characters")
            }
            Self::InvalidHeader => f.write_str("a Tranzila header value could not be built"),
        }
    }
}

impl std::error::Error for SignError {}
