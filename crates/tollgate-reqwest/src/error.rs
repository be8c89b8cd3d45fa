//! [`Error`], why a request was not sent, and [`ConfigError`], why a client was not built.

use std::error::Error as StdError;
use std::fmt;

use tollgate_core::BoxError;

/// Why a request was refused before it was sent. It reaches the caller as
/// [`reqwest_middleware::Error::Middleware`], whose `anyhow` chain holds this error and, for
/// [`Error::Refused`], the layer's own typed error after it: find either with [`find_error`].
///
/// No variant holds a secret, a header value, a path or a query.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The request's body is a stream: a signature (and every rule that reads the body)
    /// needs its bytes, so the request was not sent rather than sent unsigned. Build the
    /// body from bytes (`.body(bytes)`, `.json(..)`, `.form(..)`).
    StreamingBody,
    /// One of the tollgate layers refused the request (an upstream that is not pinned, a
    /// missing client IP, a request that cannot be signed, ...). Its typed error is the
    /// [`source`](StdError::source).
    Refused(BoxError),
    /// A layer answered without passing the request on (no tollgate layer does), so there is
    /// nothing to send.
    NotForwarded,
    /// The request the layers produced cannot be turned back into a `reqwest::Request` (its
    /// URI is not a URL reqwest accepts).
    InvalidRequest,
    /// The request goes somewhere other than the client's base URL
    /// ([`ClientBuilder`](crate::ClientBuilder) pins every request to it).
    NotBaseUrl {
        /// Where the request was going: `scheme://host[:port]`
        /// ([`tollgate_core::upstream::describe_target`]).
        target: String,
    },
    /// The request's body is longer than the client's `max_request_body`: it was not sent.
    BodyTooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The call's deadline passed (attempts, backoff, `Retry-After` and rate-limit waits
    /// included) before a response came: an attempt in flight was abandoned (it may have
    /// reached the provider).
    DeadlineExceeded {
        /// The deadline.
        after: std::time::Duration,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::StreamingBody => f.write_str(
                "the request body is a stream: tollgate needs its bytes (to sign it); \
                 the request was not sent",
            ),
            Self::Refused(_) => {
                f.write_str("a tollgate layer refused the request; it was not sent")
            }
            Self::NotForwarded => {
                f.write_str("a tollgate layer did not pass the request on; it was not sent")
            }
            Self::InvalidRequest => f.write_str(
                "the request cannot be turned back into a reqwest request; it was not sent",
            ),
            Self::NotBaseUrl { target } => write!(
                f,
                "the request goes to {target}, not to the client's base URL; it was not sent"
            ),
            Self::BodyTooLarge { limit } => write!(
                f,
                "the request body is longer than {limit} bytes; it was not sent"
            ),
            Self::DeadlineExceeded { after } => {
                write!(f, "the call's deadline of {after:?} passed")
            }
        }
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Self::Refused(error) => Some(&**error),
            _ => None,
        }
    }
}

impl From<Error> for reqwest_middleware::Error {
    fn from(error: Error) -> Self {
        reqwest_middleware::Error::Middleware(anyhow::Error::new(error))
    }
}

/// The first error of type `E` in `error`'s chain: this crate's [`Error`], or a layer's own
/// typed error (`tollgate_headers::HeaderError`, `tollgate_signature::SignError`,
/// `tollgate_client_ip::MissingClientIp`, `tollgate_tranzila::SignError`, ...).
///
/// ```
/// use tollgate_reqwest::{Error, find_error};
///
/// let error = reqwest_middleware::Error::from(Error::StreamingBody);
/// assert!(matches!(find_error::<Error>(&error), Some(Error::StreamingBody)));
/// ```
pub fn find_error<E: StdError + 'static>(error: &reqwest_middleware::Error) -> Option<&E> {
    match error {
        reqwest_middleware::Error::Middleware(error) => {
            error.chain().find_map(|cause| cause.downcast_ref::<E>())
        }
        reqwest_middleware::Error::Reqwest(error) => {
            let mut current: Option<&(dyn StdError + 'static)> = Some(error);
            while let Some(cause) = current {
                if let Some(found) = cause.downcast_ref::<E>() {
                    return Some(found);
                }
                current = cause.source();
            }
            None
        }
    }
}

/// Why [`ClientBuilder::build`](crate::ClientBuilder::build) refused to build a client.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConfigError {
    /// The base URL, a timeout or the retry policy is wrong: the same rules, and the same
    /// error, as tollgate's own provider clients (`NotHttps`, `UserInfo`, `InvalidBaseUrl`,
    /// `ZeroTimeout`, `ZeroAttempts`, ...).
    Client(tollgate_client::ConfigError),
    /// The TLS settings do not make a configuration (no root, an unusable root).
    Tls(tollgate_https::ConfigError),
    /// reqwest refused to build its client (its message).
    Reqwest(String),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Client(error) => fmt::Display::fmt(error, f),
            Self::Tls(error) => write!(f, "TLS: {error}"),
            Self::Reqwest(message) => write!(f, "reqwest: {message}"),
        }
    }
}

impl StdError for ConfigError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Self::Client(error) => Some(error),
            Self::Tls(error) => Some(error),
            Self::Reqwest(_) => None,
        }
    }
}

impl From<tollgate_client::ConfigError> for ConfigError {
    fn from(error: tollgate_client::ConfigError) -> Self {
        Self::Client(error)
    }
}

impl From<tollgate_https::ConfigError> for ConfigError {
    fn from(error: tollgate_https::ConfigError) -> Self {
        Self::Tls(error)
    }
}
