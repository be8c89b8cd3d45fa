//! The crate's errors: [`ConfigError`] when a client is built, [`CallError`] per call, and
//! [`AttemptError`], what the transport below the provider's layers fails with.

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

use tollgate_core::BoxError;
use tollgate_https::ConnectError;

/// A client configuration that cannot work, refused by
/// [`ClientBuilder::build`](crate::ClientBuilder::build). No message repeats user info, a
/// path or a query of the base URL.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// The base URL's scheme is not `https`.
    NotHttps {
        /// The scheme that was given (`http`, ...).
        scheme: String,
    },
    /// The base URL carries user info (`https://user:password@host`): credentials belong in
    /// the provider's layers, never in a URL that ends up in logs.
    UserInfo,
    /// The base URL carries a query.
    Query,
    /// The base URL carries a fragment.
    Fragment,
    /// The base URL is not `https://host[:port][/base/path]` for another reason (no host, a
    /// path with dot or empty segments, not a URI).
    InvalidBaseUrl(tollgate_core::upstream::ConfigError),
    /// A timeout (`connect timeout`, `attempt timeout`, `deadline`) of zero would fail every
    /// call.
    ZeroTimeout {
        /// Which timeout.
        name: &'static str,
    },
    /// `RetryPolicy::new(0)`: a call needs at least one attempt.
    ZeroAttempts,
    /// `rate_limit(0, ..)` would never let a request through.
    ZeroRateLimit,
    /// `rate_limit(.., Duration::ZERO)` is no limit at all.
    ZeroRatePeriod,
    /// `concurrency_limit(0)` would never let a request through.
    ZeroConcurrency,
    /// The TLS configuration cannot be built (tollgate-https's error).
    Https(tollgate_https::ConfigError),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotHttps { scheme } => {
                write!(f, "the base URL must be https, not `{scheme}`")
            }
            Self::UserInfo => f.write_str("the base URL must not carry user info"),
            Self::Query => f.write_str("the base URL must not carry a query"),
            Self::Fragment => f.write_str("the base URL must not carry a fragment"),
            Self::InvalidBaseUrl(error) => write!(f, "invalid base URL: {error}"),
            Self::ZeroTimeout { name } => write!(f, "the {name} must be longer than zero"),
            Self::ZeroAttempts => f.write_str("the retry policy must allow at least one attempt"),
            Self::ZeroRateLimit => f.write_str("the rate limit must allow at least one request"),
            Self::ZeroRatePeriod => f.write_str("the rate limit period must be longer than zero"),
            Self::ZeroConcurrency => {
                f.write_str("the concurrency limit must allow at least one request")
            }
            Self::Https(error) => write!(f, "invalid TLS configuration: {error}"),
        }
    }
}

impl StdError for ConfigError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Self::InvalidBaseUrl(error) => Some(error),
            Self::Https(error) => Some(error),
            _ => None,
        }
    }
}

impl From<tollgate_https::ConfigError> for ConfigError {
    fn from(error: tollgate_https::ConfigError) -> Self {
        Self::Https(error)
    }
}

/// Why a call through a [`ProviderClient`](crate::ProviderClient) returned no response.
///
/// `Display` never holds a header value, a query or a body: at most a scheme, a limit, a
/// duration, and the text of the underlying error (rustls's reason, an I/O error, a layer's
/// refusal, whose own `Display` follows the same rule in tollgate's layers).
#[derive(Debug)]
#[non_exhaustive]
pub enum CallError {
    /// The request URI is not `https` (refused before anything was opened or sent).
    NotHttps {
        /// The scheme, or `"none"`.
        scheme: String,
    },
    /// The request URI is relative and the client has no base URL, or names no host.
    InvalidUri {
        /// What is wrong.
        reason: &'static str,
    },
    /// The server's certificate was refused (nothing was sent). Never retried.
    Certificate {
        /// rustls's reason.
        reason: String,
    },
    /// The TLS handshake failed for another reason (nothing was sent). Never retried.
    Tls {
        /// rustls's reason.
        reason: String,
    },
    /// No TCP connection within the connect timeout (nothing was sent), on the last attempt.
    ConnectTimeout {
        /// The connect timeout.
        after: Duration,
    },
    /// The TCP connection failed (refused, reset, unreachable, DNS; nothing was sent), on the
    /// last attempt.
    Connect(BoxError),
    /// The last attempt got no response head within the attempt timeout (the request may
    /// have been sent).
    AttemptTimeout {
        /// The attempt timeout.
        after: Duration,
    },
    /// The whole call (attempts, waits between them, rate-limit waits) did not end within
    /// the deadline.
    DeadlineExceeded {
        /// The deadline.
        after: Duration,
    },
    /// The request body is longer than the client's `max_request_body` (nothing was sent).
    BodyTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// Reading the request body failed (nothing was sent).
    Body(BoxError),
    /// One of the provider's layers refused to send the request (signing failed, upstream not
    /// pinned, missing end-user IP, ...). The layer's error is the source: `downcast_ref` it.
    /// Never retried.
    Refused(BoxError),
    /// The transport failed after the request may have been sent (connection reset, protocol
    /// error), on the last attempt.
    Transport(BoxError),
    /// The last attempt failed before sending anything (`last`), but an earlier attempt of the
    /// same call may have reached the provider (it answered, or failed after sending): whether
    /// the provider acted on the call is unknown. Never treat this as "nothing happened"
    /// ([`nothing_sent`](CallError::nothing_sent) is false); look the operation up, or retry
    /// it with the same idempotency key.
    MaybeDelivered {
        /// The last attempt's error.
        last: Box<CallError>,
    },
}

impl CallError {
    /// Whether no byte of the request reached the server in any attempt of the call: the
    /// scheme, URI, body, certificate, TLS, connect and refusal errors, unless an earlier
    /// attempt may have been delivered ([`MaybeDelivered`](CallError::MaybeDelivered)).
    pub fn nothing_sent(&self) -> bool {
        !matches!(
            self,
            Self::AttemptTimeout { .. }
                | Self::DeadlineExceeded { .. }
                | Self::Transport(_)
                | Self::MaybeDelivered { .. }
        )
    }

    /// Whether this is a timeout (connect, attempt or deadline).
    pub fn is_timeout(&self) -> bool {
        match self {
            Self::MaybeDelivered { last } => last.is_timeout(),
            _ => matches!(
                self,
                Self::ConnectTimeout { .. }
                    | Self::AttemptTimeout { .. }
                    | Self::DeadlineExceeded { .. }
            ),
        }
    }

    /// A short, stable name for logs and metrics: `not_https`, `invalid_uri`, `certificate`,
    /// `tls`, `connect_timeout`, `connect`, `attempt_timeout`, `deadline`, `body_too_large`,
    /// `body`, `refused`, `transport`, `maybe_delivered`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::NotHttps { .. } => "not_https",
            Self::InvalidUri { .. } => "invalid_uri",
            Self::Certificate { .. } => "certificate",
            Self::Tls { .. } => "tls",
            Self::ConnectTimeout { .. } => "connect_timeout",
            Self::Connect(_) => "connect",
            Self::AttemptTimeout { .. } => "attempt_timeout",
            Self::DeadlineExceeded { .. } => "deadline",
            Self::BodyTooLarge { .. } => "body_too_large",
            Self::Body(_) => "body",
            Self::Refused(_) => "refused",
            Self::Transport(_) => "transport",
            Self::MaybeDelivered { .. } => "maybe_delivered",
        }
    }

    /// Sorts an error that came out of the retry stack.
    pub(crate) fn from_stack(error: BoxError) -> Self {
        match error.downcast::<AttemptError>() {
            Ok(attempt) => Self::from_attempt(*attempt),
            Err(error) if find::<AttemptError>(&*error).is_some() => Self::Transport(error),
            Err(error) => Self::Refused(error),
        }
    }

    fn from_attempt(error: AttemptError) -> Self {
        match error {
            AttemptError::Timeout { after } => Self::AttemptTimeout { after },
            AttemptError::Transport(error) => match ConnectError::find(&*error) {
                Some(ConnectError::NotHttps { scheme }) => Self::NotHttps {
                    scheme: scheme.clone(),
                },
                Some(ConnectError::MissingHost) => Self::InvalidUri {
                    reason: "the URI has no host",
                },
                Some(ConnectError::Certificate { reason }) => Self::Certificate {
                    reason: reason.clone(),
                },
                Some(ConnectError::Tls { reason }) => Self::Tls {
                    reason: reason.clone(),
                },
                Some(ConnectError::Timeout { after }) => Self::ConnectTimeout { after: *after },
                Some(_) => Self::Connect(error),
                None => Self::Transport(error),
            },
        }
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotHttps { scheme } => write!(
                f,
                "refused to call over `{scheme}`: only https is allowed (nothing was sent)"
            ),
            Self::InvalidUri { reason } => write!(f, "invalid request URI: {reason}"),
            Self::Certificate { reason } => {
                write!(f, "the server's certificate was refused: {reason}")
            }
            Self::Tls { reason } => write!(f, "the TLS handshake failed: {reason}"),
            Self::ConnectTimeout { after } => write!(f, "no TCP connection within {after:?}"),
            Self::Connect(error) => write!(f, "the TCP connection failed: {error}"),
            Self::AttemptTimeout { after } => write!(f, "no response within {after:?}"),
            Self::DeadlineExceeded { after } => {
                write!(
                    f,
                    "the call did not complete within its deadline of {after:?}"
                )
            }
            Self::BodyTooLarge { limit } => {
                write!(
                    f,
                    "the request body is larger than {limit} bytes (nothing was sent)"
                )
            }
            Self::Body(error) => write!(f, "reading the request body failed: {error}"),
            Self::Refused(error) => write!(f, "a layer refused to send the request: {error}"),
            Self::Transport(error) => write!(f, "the transport failed: {error}"),
            Self::MaybeDelivered { last } => write!(
                f,
                "an earlier attempt may have reached the provider; the last one failed: {last}"
            ),
        }
    }
}

impl StdError for CallError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Self::Connect(error)
            | Self::Body(error)
            | Self::Refused(error)
            | Self::Transport(error) => Some(&**error),
            Self::MaybeDelivered { last } => Some(&**last),
            _ => None,
        }
    }
}

/// What the [`AttemptService`](crate::AttemptService) (the attempt timeout over the
/// transport, below the provider's layers) fails with. A layer that passes it on unchanged
/// (boxed or not) lets the client tell a transport failure from the layer's own refusal.
#[derive(Debug)]
#[non_exhaustive]
pub enum AttemptError {
    /// No response head within the attempt timeout.
    Timeout {
        /// The attempt timeout.
        after: Duration,
    },
    /// The transport failed; a [`ConnectError`] in its source chain means nothing was sent.
    Transport(BoxError),
}

impl AttemptError {
    /// Whether the transport failed before sending anything, in a way worth another attempt
    /// (connection refused/reset while connecting, or the connect timeout).
    pub fn is_connect_retryable(&self) -> bool {
        match self {
            Self::Timeout { .. } => false,
            Self::Transport(error) => matches!(
                ConnectError::find(&**error),
                Some(ConnectError::Connect(_) | ConnectError::Timeout { .. })
            ),
        }
    }
}

impl fmt::Display for AttemptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout { after } => write!(f, "no response within {after:?}"),
            Self::Transport(error) => write!(f, "the transport failed: {error}"),
        }
    }
}

impl StdError for AttemptError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Self::Timeout { .. } => None,
            Self::Transport(error) => Some(&**error),
        }
    }
}

/// The first `T` in `error`'s source chain.
pub(crate) fn find<'a, T: StdError + 'static>(
    error: &'a (dyn StdError + 'static),
) -> Option<&'a T> {
    let mut current = Some(error);
    while let Some(error) = current {
        if let Some(found) = error.downcast_ref::<T>() {
            return Some(found);
        }
        current = error.source();
    }
    None
}

/// Whether an attempt that ended in `error` may have reached the provider.
pub(crate) fn may_have_been_sent(error: &(dyn StdError + 'static)) -> bool {
    matches!(attempt_kind(error), "transport" | "attempt_timeout")
}

/// The [`CallError::kind`] an attempt's error would become, without consuming it.
pub(crate) fn attempt_kind(error: &(dyn StdError + 'static)) -> &'static str {
    let Some(attempt) = error.downcast_ref::<AttemptError>() else {
        return if find::<AttemptError>(error).is_some() {
            "transport"
        } else {
            "refused"
        };
    };
    match attempt {
        AttemptError::Timeout { .. } => "attempt_timeout",
        AttemptError::Transport(error) => match ConnectError::find(&**error) {
            Some(ConnectError::NotHttps { .. }) => "not_https",
            Some(ConnectError::MissingHost) => "invalid_uri",
            Some(ConnectError::Certificate { .. }) => "certificate",
            Some(ConnectError::Tls { .. }) => "tls",
            Some(ConnectError::Timeout { .. }) => "connect_timeout",
            Some(_) => "connect",
            None => "transport",
        },
    }
}
