//! [`ConfigError`]: why a configuration was refused at build time.

use std::fmt;

/// Why [`OriginAllowlistBuilder::build`](crate::OriginAllowlistBuilder::build) or
/// [`AllowedOrigin::parse`](crate::AllowedOrigin::parse) refused a configuration.
///
/// Configuration is checked once, when the layer is built; a request never meets an invalid
/// configuration. The messages quote the offending value (configuration is not secret).
///
/// ```
/// use tollgate_origin::{ConfigError, OriginAllowlistLayer};
///
/// let err = OriginAllowlistLayer::builder()
///     .allow_origins(["https://app.example.com/"])
///     .build()
///     .unwrap_err();
/// assert!(matches!(err, ConfigError::TrailingSlash { .. }));
/// assert_eq!(
///     err.to_string(),
///     "origin `https://app.example.com/` ends with `/`: an origin has no path, write `https://app.example.com`"
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// No origin was listed: the layer would refuse every browser request.
    NoOrigins,
    /// `*` was listed. This layer always answers with one exact origin, never `*`.
    AnyOrigin,
    /// `null` was listed. Sandboxed frames, `file:` pages and redirects all send `null`, so it
    /// identifies nobody.
    NullOrigin,
    /// The origin has no `scheme://`, or a scheme other than `https` and `http`.
    InvalidScheme {
        /// The configured value.
        origin: String,
    },
    /// An `http://` origin was listed without
    /// [`allow_http_origins(true)`](crate::OriginAllowlistBuilder::allow_http_origins).
    HttpNotEnabled {
        /// The configured value.
        origin: String,
    },
    /// The origin ends with `/`.
    TrailingSlash {
        /// The configured value.
        origin: String,
    },
    /// The origin has a path.
    Path {
        /// The configured value.
        origin: String,
    },
    /// The origin has a query (`?`).
    Query {
        /// The configured value.
        origin: String,
    },
    /// The origin has a fragment (`#`).
    Fragment {
        /// The configured value.
        origin: String,
    },
    /// The origin has userinfo (`user:password@`).
    Userinfo {
        /// The configured value.
        origin: String,
    },
    /// The host is empty, has an invalid character or label, a trailing dot, is not a valid
    /// internationalised name (UTS #46) or is one a browser would rewrite into another, or is
    /// a malformed or non-canonical IP address.
    InvalidHost {
        /// The configured value.
        origin: String,
        /// What is wrong with the host.
        reason: &'static str,
    },
    /// The port is empty, not a number, or above 65535.
    InvalidPort {
        /// The configured value.
        origin: String,
    },
    /// A `*` that is not a whole left-most label (`https://*.example.com` is the only
    /// wildcard form), or a wildcard on an IP address.
    InvalidWildcard {
        /// The configured value.
        origin: String,
    },
    /// A wildcard whose base is a public suffix (`https://*.com`, `https://*.co.uk`,
    /// `https://*.github.io`), or a name whose every subdomain is one (`https://*.run.app`):
    /// it would allow every domain registered there. Checked against the whole Public Suffix
    /// List.
    WildcardOnPublicSuffix {
        /// The configured value.
        origin: String,
        /// The name the wildcard sits on (canonical ASCII), as in `co.uk`.
        suffix: String,
    },
    /// A method that is not an HTTP token, or `*`.
    InvalidMethod {
        /// The configured value.
        method: String,
    },
    /// A header name that is not valid, or `*`.
    InvalidHeader {
        /// The configured value.
        header: String,
    },
    /// A bypass path that does not start with `/`, has a query or fragment, is not valid in a
    /// request line, or has a `.` or `..` segment.
    InvalidBypassPath {
        /// The configured value.
        path: String,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoOrigins => f.write_str("no origin is allowed: list at least one origin"),
            Self::AnyOrigin => f.write_str(
                "`*` is not an origin: list each front-end origin (a `https://*.example.com` pattern at most)",
            ),
            Self::NullOrigin => f.write_str(
                "`null` is never allowed: sandboxed frames, file pages and redirects all send it",
            ),
            Self::InvalidScheme { origin } => write!(
                f,
                "origin `{origin}` must start with `https://` (or `http://` when enabled)"
            ),
            Self::HttpNotEnabled { origin } => write!(
                f,
                "origin `{origin}` is plain http: enable it explicitly with `allow_http_origins(true)`"
            ),
            Self::TrailingSlash { origin } => write!(
                f,
                "origin `{origin}` ends with `/`: an origin has no path, write `{}`",
                origin.trim_end_matches('/')
            ),
            Self::Path { origin } => write!(f, "origin `{origin}` has a path: an origin is scheme, host and port only"),
            Self::Query { origin } => write!(f, "origin `{origin}` has a query: an origin is scheme, host and port only"),
            Self::Fragment { origin } => write!(f, "origin `{origin}` has a fragment: an origin is scheme, host and port only"),
            Self::Userinfo { origin } => write!(f, "origin `{origin}` has userinfo (`user@`): an origin never does"),
            Self::InvalidHost { origin, reason } => {
                write!(f, "origin `{origin}` has an invalid host: {reason}")
            }
            Self::InvalidPort { origin } => write!(f, "origin `{origin}` has an invalid port"),
            Self::InvalidWildcard { origin } => write!(
                f,
                "origin `{origin}` has an invalid wildcard: only a whole left-most label of a domain name is allowed, as in `https://*.example.com`"
            ),
            Self::WildcardOnPublicSuffix { origin, suffix } => write!(
                f,
                "origin `{origin}` puts a wildcard on the public suffix `{suffix}`: it would allow every domain registered under it"
            ),
            Self::InvalidMethod { method } => write!(f, "`{method}` is not an allowed method: list HTTP method tokens, never `*`"),
            Self::InvalidHeader { header } => write!(f, "`{header}` is not an allowed header: list header names, never `*`"),
            Self::InvalidBypassPath { path } => write!(
                f,
                "bypass path `{path}` must be an exact request path: starting with `/`, without query, fragment, spaces or `.`/`..` segments"
            ),
        }
    }
}

impl std::error::Error for ConfigError {}
