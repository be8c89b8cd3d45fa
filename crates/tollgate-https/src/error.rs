//! The crate's errors: [`ConfigError`] when building, [`ConnectError`] when connecting.

use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::time::Duration;

use tollgate_core::BoxError;

/// A configuration that cannot work, refused when it is built.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// A PEM given as trusted roots does not parse or holds no certificate.
    InvalidRootPem,
    /// A certificate given as a trusted root is not a usable CA certificate.
    InvalidRootCertificate,
    /// Nothing is trusted: [`roots_only`](crate::TlsConfig::roots_only) without any root.
    NoRoots,
    /// The crypto provider refused the protocol versions (TLS 1.2 and 1.3).
    Provider(String),
    /// A timeout of zero would fail every connection.
    ZeroTimeout {
        /// Which timeout.
        name: &'static str,
    },
    /// An [`HttpsOrigin`](crate::HttpsOrigin) (for `RequireHttpsLayer::redirect_to`) was
    /// parsed from something other than an `https://` origin.
    InvalidRedirectOrigin {
        /// Why.
        reason: &'static str,
    },
    /// [`Hsts::new`](crate::Hsts::new) was given a `max-age` under one second: `max-age=0`
    /// tells browsers to forget the policy.
    ZeroHstsMaxAge,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidRootPem => f.write_str("the trusted-root PEM holds no valid certificate"),
            Self::InvalidRootCertificate => {
                f.write_str("a trusted root is not a usable CA certificate")
            }
            Self::NoRoots => f.write_str("no root certificate is trusted"),
            Self::Provider(reason) => {
                write!(f, "the crypto provider refused TLS 1.2/1.3: {reason}")
            }
            Self::ZeroTimeout { name } => write!(f, "the {name} must be longer than zero"),
            Self::InvalidRedirectOrigin { reason } => {
                write!(f, "invalid HTTPS redirect origin: {reason}")
            }
            Self::ZeroHstsMaxAge => f.write_str("the HSTS max-age must be longer than zero"),
        }
    }
}

impl StdError for ConfigError {}

/// Why [`HttpsConnector`](crate::HttpsConnector) opened no usable connection.
///
/// Every variant means that no byte of the request was sent: the connector fails before the
/// HTTP exchange starts. A client (hyper_util's, inside tollgate's provider clients) wraps it;
/// find it with [`ConnectError::find`].
#[derive(Debug)]
#[non_exhaustive]
pub enum ConnectError {
    /// The URI's scheme is not `https` (refused before any connection is opened).
    NotHttps {
        /// The scheme, or `"none"`.
        scheme: String,
    },
    /// The URI has no host.
    MissingHost,
    /// The TCP connection was not established within the connect timeout.
    Timeout {
        /// The connect timeout.
        after: Duration,
    },
    /// The server's certificate failed verification (unknown issuer, expired, another name,
    /// self-signed, ...). The reason is rustls's.
    Certificate {
        /// rustls's reason.
        reason: String,
    },
    /// The TLS handshake failed for another reason (protocol version, alert, ...).
    Tls {
        /// rustls's reason.
        reason: String,
    },
    /// The TCP connection failed (refused, reset, unreachable, DNS).
    Connect(BoxError),
}

impl ConnectError {
    /// The `ConnectError` anywhere in `error`'s source chain (hyper_util's client wraps it).
    pub fn find<'a>(error: &'a (dyn StdError + 'static)) -> Option<&'a ConnectError> {
        let mut current = Some(error);
        while let Some(error) = current {
            if let Some(found) = error.downcast_ref::<ConnectError>() {
                return Some(found);
            }
            current = error.source();
        }
        None
    }

    /// Whether the server's certificate was refused.
    pub fn is_certificate(&self) -> bool {
        matches!(self, Self::Certificate { .. })
    }

    /// Classifies an error of the inner (hyper-rustls) connector.
    pub(crate) fn classify(error: BoxError, timeout: Duration) -> Self {
        if let Some(tls) = find_rustls(&*error) {
            return match tls {
                rustls::Error::InvalidCertificate(reason) => Self::Certificate {
                    reason: reason.to_string(),
                },
                rustls::Error::NoCertificatesPresented => Self::Certificate {
                    reason: tls.to_string(),
                },
                other => Self::Tls {
                    reason: other.to_string(),
                },
            };
        }
        if find_io(&*error).is_some_and(|io| io.kind() == io::ErrorKind::TimedOut) {
            return Self::Timeout { after: timeout };
        }
        Self::Connect(error)
    }
}

/// The errors of `error`'s chain. An `io::Error` wrapping another error (tokio-rustls wraps
/// rustls's error, hyper-rustls wraps that again) returns the wrapped error's *source* from
/// `source()`, skipping the wrapped error itself, so `io::Error::get_ref` is followed instead.
fn chain<'a>(
    error: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(
        Some(error),
        |&error: &&'a (dyn StdError + 'static)| match error
            .downcast_ref::<io::Error>()
            .and_then(io::Error::get_ref)
        {
            Some(inner) => Some(inner as &(dyn StdError + 'static)),
            None => error.source(),
        },
    )
    // A cycle in a hand-written `source` must not hang the classification.
    .take(64)
}

/// A rustls error in the chain.
fn find_rustls<'a>(error: &'a (dyn StdError + 'static)) -> Option<&'a rustls::Error> {
    chain(error).find_map(|error| error.downcast_ref::<rustls::Error>())
}

/// The innermost `io::Error` in the chain (the one that says what happened).
fn find_io<'a>(error: &'a (dyn StdError + 'static)) -> Option<&'a io::Error> {
    chain(error)
        .filter_map(|error| error.downcast_ref::<io::Error>())
        .last()
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotHttps { scheme } => write!(
                f,
                "refused to connect over `{scheme}`: only https is allowed (nothing was sent)"
            ),
            Self::MissingHost => f.write_str("the URI has no host"),
            Self::Timeout { after } => write!(f, "no TCP connection within {after:?}"),
            Self::Certificate { reason } => {
                write!(f, "the server's certificate was refused: {reason}")
            }
            Self::Tls { reason } => write!(f, "the TLS handshake failed: {reason}"),
            Self::Connect(error) => write!(f, "the TCP connection failed: {error}"),
        }
    }
}

impl StdError for ConnectError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Self::Connect(error) => Some(&**error),
            _ => None,
        }
    }
}
