//! The errors of signing, verifying and configuring.

use std::fmt;
use std::sync::Arc;

use http::HeaderName;
use tollgate_core::header::RepeatedHeader;
use tollgate_core::rejection::code;
use tollgate_core::{BufferError, Rejection, TimestampError};

/// Why a received signature was refused. Never carries the expected signature.
///
/// [`VerifyError::to_rejection`] gives the response a server sends, with core's one status and
/// one message per code ([`Rejection::from_code`]):
///
/// | error | status | code | detail |
/// |---|---|---|---|
/// | [`Missing`](VerifyError::Missing) | 401 | `signature_missing` | the header's name |
/// | [`Malformed`](VerifyError::Malformed) | 400 | `signature_malformed` | the reason |
/// | [`Invalid`](VerifyError::Invalid) | 401 | `signature_invalid` | |
/// | [`Timestamp`](VerifyError::Timestamp), out of window | 401 | `timestamp_out_of_window` | too old / too far in the future |
/// | [`Timestamp`](VerifyError::Timestamp), missing or not digits | 400 | `timestamp_malformed` | |
///
/// ```
/// use http::HeaderName;
/// use tollgate_signature::VerifyError;
///
/// let rejection = VerifyError::Invalid.to_rejection();
/// assert_eq!(rejection.status().as_u16(), 401);
/// assert_eq!(rejection.code(), "signature_invalid");
/// assert_eq!(rejection.message(), "the signature does not match");
///
/// let missing = VerifyError::Missing { header: HeaderName::from_static("x-signature") };
/// assert_eq!(missing.to_rejection().message(), "the signature is missing: `x-signature`");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum VerifyError {
    /// The signature header is absent.
    Missing {
        /// The header that was expected.
        header: HeaderName,
    },
    /// A signature header (or a header the signature covers, like `webhook-id`) cannot be
    /// parsed.
    Malformed {
        /// What was wrong, in general terms.
        reason: &'static str,
    },
    /// No usable key produces any of the received signatures of a supported version.
    Invalid,
    /// The timestamp is missing, not Unix seconds, or outside the window.
    Timestamp(TimestampError),
}

impl VerifyError {
    /// The rejection a server answers with (see the table above).
    pub fn to_rejection(&self) -> Rejection {
        match self {
            Self::Missing { header } => Rejection::from_code(code::SIGNATURE_MISSING)
                .with_detail(format_args!("`{header}`")),
            Self::Malformed { reason } => {
                Rejection::from_code(code::SIGNATURE_MALFORMED).with_detail(reason)
            }
            Self::Invalid => Rejection::from_code(code::SIGNATURE_INVALID),
            Self::Timestamp(err) => err.to_rejection(),
        }
    }
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing { header } => write!(f, "the `{header}` header is missing"),
            Self::Malformed { reason } => write!(f, "malformed signature: {reason}"),
            Self::Invalid => f.write_str("the signature does not match any usable key"),
            Self::Timestamp(err) => write!(f, "{err}"),
        }
    }
}

impl std::error::Error for VerifyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Timestamp(err) => Some(err),
            _ => None,
        }
    }
}

impl From<TimestampError> for VerifyError {
    fn from(err: TimestampError) -> Self {
        Self::Timestamp(err)
    }
}

/// A header the signature depends on (the signature, its timestamp, Standard Webhooks'
/// `webhook-id`) was sent more than once: [`VerifyError::Malformed`], since two values leave
/// it ambiguous which one was signed.
impl From<RepeatedHeader> for VerifyError {
    fn from(_: RepeatedHeader) -> Self {
        Self::Malformed {
            reason: "a signature header is sent more than once",
        }
    }
}

/// Why a request could not be signed. The request was not sent.
///
/// [`SignRequest`](crate::SignRequest) returns it boxed in a
/// [`BoxError`](tollgate_core::BoxError); find it with `downcast_ref::<SignError>()`.
///
/// ```
/// use tollgate_signature::SignError;
///
/// let err = SignError::KeyExpired { key_id: "2026-08".into() };
/// assert_eq!(err.to_string(), "the signing key `2026-08` has expired; refusing to sign");
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum SignError {
    /// The ring's signing key is past its `not_after`: rotate in a new key.
    KeyExpired {
        /// The expired key's id.
        key_id: Arc<str>,
    },
    /// The outbound body could not be buffered (larger than the limit, or reading failed).
    Body(BufferError),
    /// A header the scheme signs is absent or not visible ASCII (Standard Webhooks'
    /// `webhook-id`, which the sender chooses and keeps across retries).
    MissingHeader {
        /// The header that is needed.
        header: HeaderName,
    },
    /// The signature could not be written as a header value (a configured prefix with
    /// characters a header cannot carry).
    InvalidHeaderValue,
    /// The signing key is blank (anyone could compute its MACs, so nothing is signed with
    /// it) or cannot be used as an HMAC key. Returned by [`Scheme::sign`](crate::Scheme::sign);
    /// a [`SignRequestLayer`](crate::SignRequestLayer) refuses such a key when it is built
    /// ([`ConfigError::BlankSigningKey`]).
    InvalidKey,
    /// The request goes to a scheme, host or port that is not a configured upstream of the
    /// [`SignRequestLayer`](crate::SignRequestLayer) (or its URI is relative or has user
    /// info). Nothing was read, signed or sent.
    UpstreamNotAllowed {
        /// Where the request was going: `scheme://host[:port]` or `a relative URI`
        /// ([`tollgate_core::upstream::describe_target`]); never user info, a path or a query.
        target: String,
    },
    /// The request does not say unambiguously where it goes: its `Host` header disagrees
    /// with its URI, it has several `Host` headers, or its URI's port is not a valid port.
    /// Nothing was read, signed or sent.
    AmbiguousTarget {
        /// What is ambiguous (a fixed text, never a header value).
        reason: &'static str,
    },
}

impl fmt::Display for SignError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::KeyExpired { key_id } => {
                write!(
                    f,
                    "the signing key `{key_id}` has expired; refusing to sign"
                )
            }
            Self::Body(err) => write!(f, "the request body could not be signed: {err}"),
            Self::MissingHeader { header } => {
                write!(
                    f,
                    "the `{header}` header needed for signing is missing or invalid"
                )
            }
            Self::InvalidHeaderValue => {
                f.write_str("the signature cannot be written as a header value")
            }
            Self::InvalidKey => {
                f.write_str("the signing key is empty or cannot be used for HMAC-SHA256")
            }
            Self::UpstreamNotAllowed { target } => write!(
                f,
                "refusing to sign a request to {target}: not a configured upstream; \
                 the request was not sent"
            ),
            Self::AmbiguousTarget { reason } => write!(
                f,
                "refusing to sign a request: {reason}; the request was not sent"
            ),
        }
    }
}

impl std::error::Error for SignError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Body(err) => Some(err),
            _ => None,
        }
    }
}

/// A scheme, secret or layer could not be configured. Carries no secret bytes.
///
/// Every configuration error surfaces when the configuration is built, never per request.
///
/// ```
/// use tollgate_signature::{ConfigError, StandardWebhooks};
///
/// // The `whsec_` prefix is required by this constructor, never guessed.
/// let err = StandardWebhooks::secret_from_whsec("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap_err();
/// assert_eq!(err, ConfigError::MissingWhsecPrefix);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// A signature prefix holds characters a header value cannot carry.
    InvalidPrefix,
    /// A Standard Webhooks secret does not start with `whsec_`.
    MissingWhsecPrefix,
    /// A secret that must be base64 is not valid standard base64.
    InvalidBase64Secret,
    /// A secret is empty.
    EmptySecret,
    /// The ring's signing key is blank (empty, all zero bytes or only whitespace:
    /// [`Secret::is_blank`](tollgate_core::Secret::is_blank)): anyone could compute its
    /// signatures, so a [`SignRequestLayer`](crate::SignRequestLayer) is not built with it.
    BlankSigningKey {
        /// The signing key's id.
        key_id: Arc<str>,
    },
    /// Every key of the ring is blank, so a
    /// [`VerifySignatureLayer`](crate::VerifySignatureLayer) could verify nothing (a MAC under
    /// a blank key proves nothing).
    NoUsableKey,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidPrefix => f.write_str("the signature prefix is not a valid header value"),
            Self::MissingWhsecPrefix => f.write_str("the secret does not start with `whsec_`"),
            Self::InvalidBase64Secret => f.write_str("the secret is not valid standard base64"),
            Self::EmptySecret => f.write_str("the secret is empty"),
            Self::BlankSigningKey { key_id } => write!(
                f,
                "the signing key `{key_id}` is empty, all zero bytes or only whitespace; \
                 refusing to sign with it"
            ),
            Self::NoUsableKey => f.write_str(
                "every key of the ring is empty, all zero bytes or only whitespace; \
                 nothing could verify",
            ),
        }
    }
}

impl std::error::Error for ConfigError {}
