//! The crate's errors: [`ConfigError`] (build time), [`ExtractError`] (per request) and
//! [`MissingClientIp`] (outbound).

use std::borrow::Cow;
use std::fmt;

use http::HeaderName;
use tollgate_core::Rejection;
use tollgate_core::rejection::code;

/// A configuration that cannot work: a bad source string, range or hop count. Raised when
/// the configuration is built, never per request.
///
/// ```
/// use tollgate_client_ip::ClientIpSource;
///
/// let err = "rightmost-trusted-count:x-forwarded-for:0".parse::<ClientIpSource>().unwrap_err();
/// assert_eq!(err.to_string(), "`rightmost-trusted-count` needs a hop count of at least 1, got `0`");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConfigError {
    message: Cow<'static, str>,
}

impl ConfigError {
    pub(crate) fn new(message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Why no client IP could be derived from a request.
///
/// Every variant except [`MissingPeer`](ExtractError::MissingPeer) is caused by what the
/// client (or a proxy in front) sent, and maps to 400 `invalid_client_ip`;
/// `MissingPeer` means the server never told the layer who connected, a deployment error,
/// and maps to 500 `client_ip_misconfigured`. The `Display` text names the header and hop
/// but never repeats the bytes the client sent.
///
/// ```
/// use http::HeaderMap;
/// use tollgate_client_ip::{ClientIpSource, ExtractError};
///
/// let source = ClientIpSource::remote_addr();
/// let err = source.extract(&HeaderMap::new(), None).unwrap_err();
/// assert_eq!(err, ExtractError::MissingPeer);
/// assert!(err.is_misconfiguration());
/// assert_eq!(err.to_rejection().status(), 500);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExtractError {
    /// No peer (socket) address reached the extraction, and the source needs it to decide
    /// trust. Insert [`PeerAddr`](crate::PeerAddr) per connection, or enable the `axum`
    /// feature (axum's `ConnectInfo<SocketAddr>`) or the `tonic` feature (tonic's
    /// `TcpConnectInfo`): without them those are never read. The `Display` text names the
    /// features this build lacks.
    MissingPeer,
    /// The peer is trusted but the header the source reads is absent.
    MissingHeader {
        /// The header.
        header: HeaderName,
    },
    /// A single-IP header does not hold exactly one valid IP address.
    InvalidHeader {
        /// The header.
        header: HeaderName,
    },
    /// A hop of a list header is not a valid address (`unknown`, `_hidden`, empty, `0.0.0.0`,
    /// garbage); the walk stops there rather than skipping it.
    InvalidHop {
        /// The header.
        header: HeaderName,
        /// The hop's position counted from the right, starting at 0.
        hop: usize,
    },
    /// Every hop of the list header is a trusted proxy (or private, for the non-private
    /// sources): there is no client address in it.
    AllTrusted {
        /// The header.
        header: HeaderName,
    },
    /// The list header has fewer hops than the trusted hop count needs.
    TooFewHops {
        /// The header.
        header: HeaderName,
        /// Hops needed.
        needed: usize,
        /// Hops present.
        found: usize,
    },
}

/// What to do when no peer address reached a layer, naming only the adapter features this
/// build lacks (the usual cause: axum served with connect info, but the `axum` feature off, so
/// `ConnectInfo` is never read). Shared by the error text and the misconfiguration logs.
pub(crate) const MISSING_PEER_HINT: &str = missing_peer_hint();

const fn missing_peer_hint() -> &'static str {
    match (cfg!(feature = "axum"), cfg!(feature = "tonic")) {
        (false, false) => {
            "insert tollgate_client_ip::PeerAddr per connection, or enable tollgate's \
             (or tollgate-client-ip's) `axum` feature to read axum's ConnectInfo / `tonic` \
             for tonic's TcpConnectInfo"
        }
        (false, true) => {
            "insert tollgate_client_ip::PeerAddr per connection, or enable tollgate's \
             (or tollgate-client-ip's) `axum` feature to read axum's ConnectInfo"
        }
        (true, false) => {
            "insert tollgate_client_ip::PeerAddr per connection, serve axum with \
             `into_make_service_with_connect_info::<SocketAddr>()`, or enable tollgate's \
             (or tollgate-client-ip's) `tonic` feature for tonic's TcpConnectInfo"
        }
        (true, true) => {
            "insert tollgate_client_ip::PeerAddr per connection, serve axum with \
             `into_make_service_with_connect_info::<SocketAddr>()`, or serve tonic over TCP \
             (its TcpConnectInfo)"
        }
    }
}

impl ExtractError {
    /// Whether this is a deployment error (no peer address) rather than bad client input.
    pub fn is_misconfiguration(&self) -> bool {
        matches!(self, Self::MissingPeer)
    }

    /// The rejection a server answers with: 500 `client_ip_misconfigured` for
    /// [`MissingPeer`](ExtractError::MissingPeer), 400 `invalid_client_ip` otherwise.
    pub fn to_rejection(&self) -> Rejection {
        if self.is_misconfiguration() {
            Rejection::from_code(code::CLIENT_IP_MISCONFIGURED)
        } else {
            Rejection::from_code(code::INVALID_CLIENT_IP)
        }
    }
}

impl fmt::Display for ExtractError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingPeer => write!(
                f,
                "no peer address reached the client-IP extraction: {MISSING_PEER_HINT}"
            ),
            Self::MissingHeader { header } => write!(f, "header `{header}` is missing"),
            Self::InvalidHeader { header } => {
                write!(f, "header `{header}` is not exactly one valid IP address")
            }
            Self::InvalidHop { header, hop } => write!(
                f,
                "hop {hop} (counted from the right, from 0) of `{header}` is not a valid IP address"
            ),
            Self::AllTrusted { header } => {
                write!(f, "every hop of `{header}` is a trusted or private address")
            }
            Self::TooFewHops {
                header,
                needed,
                found,
            } => write!(
                f,
                "`{header}` has {found} hop(s), the trusted hop count needs {needed}"
            ),
        }
    }
}

impl std::error::Error for ExtractError {}

/// An outbound call had no client IP to send as `x-user-ip`: neither a
/// [`ClientIp`](crate::ClientIp) in the request's extensions nor (feature `task-local`) one
/// in the task-local scope. The request was not sent.
///
/// [`ForwardUserIp`](crate::ForwardUserIp) fails with this error boxed into
/// [`BoxError`](tollgate_core::BoxError); find it with `downcast_ref::<MissingClientIp>()`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MissingClientIp;

impl fmt::Display for MissingClientIp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "no client IP for the outbound request: neither a ClientIp extension nor a \
             client-IP scope is present; the request was not sent",
        )
    }
}

impl std::error::Error for MissingClientIp {}

#[cfg(test)]
mod tests {
    use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

    use super::ExtractError;
    use crate::ClientIpSource;

    #[test]
    fn error_text_names_the_header_not_the_bytes() {
        let source: ClientIpSource = "header:x-real-ip".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-real-ip",
            HeaderValue::from_static("<script>evil</script>"),
        );
        let err = source.extract(&headers, None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "header `x-real-ip` is not exactly one valid IP address"
        );
        assert_eq!(err.to_rejection().status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            err.to_rejection().to_json(),
            r#"{"error":{"code":"invalid_client_ip","message":"no valid client IP could be derived from the request"}}"#
        );
        assert_eq!(
            ExtractError::MissingPeer.to_rejection().to_json(),
            r#"{"error":{"code":"client_ip_misconfigured","message":"the server cannot determine the client IP"}}"#
        );
        assert_eq!(
            ExtractError::InvalidHop {
                header: HeaderName::from_static("x-forwarded-for"),
                hop: 2
            }
            .to_string(),
            "hop 2 (counted from the right, from 0) of `x-forwarded-for` is not a valid IP address"
        );
    }

    /// The misconfiguration text names what this build cannot read: a server that serves axum
    /// with connect info but lacks the `axum` feature must be told to enable it (every request is
    /// a 500 otherwise), and a hint never suggests a feature that is already on.
    #[test]
    fn missing_peer_names_the_features_this_build_lacks() {
        let text = ExtractError::MissingPeer.to_string();
        assert!(text.contains("tollgate_client_ip::PeerAddr"), "{text}");
        assert_eq!(
            text.contains("`axum` feature"),
            !cfg!(feature = "axum"),
            "{text}"
        );
        assert_eq!(
            text.contains("into_make_service_with_connect_info"),
            cfg!(feature = "axum"),
            "{text}"
        );
        assert_eq!(text.contains("`tonic`"), !cfg!(feature = "tonic"), "{text}");
        assert!(!text.contains("serve axum with connect info"), "{text}");
    }
}
