//! What every ready provider client shares: its configuration error.

use std::error::Error as StdError;
use std::fmt;

/// Why a ready provider client ([`onekey`](crate::onekey), [`tranzila`](crate::tranzila),
/// [`transak`](crate::transak), [`hmac`](crate::hmac)) could not be built: the error of the
/// part that refused its configuration, so nothing is half-built.
#[derive(Debug)]
#[non_exhaustive]
pub enum ProviderConfigError {
    /// The call stack: base URL, TLS roots, timeouts, retry, limits.
    Client(tollgate_client::ConfigError),
    /// A secret header or an upstream.
    #[cfg(feature = "headers")]
    #[cfg_attr(docsrs, doc(cfg(feature = "headers")))]
    Headers(crate::headers::ConfigError),
    /// A signing key or scheme.
    #[cfg(feature = "signature")]
    #[cfg_attr(docsrs, doc(cfg(feature = "signature")))]
    Signature(crate::signature::ConfigError),
    /// Tranzila's credentials.
    #[cfg(feature = "tranzila")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tranzila")))]
    Tranzila(crate::tranzila::ConfigError),
    /// A secret is blank, or could not be loaded (`Secret::from_env`, through `?`).
    Secret(crate::core::SecretError),
    /// The base URL or an upstream is not of the form `https://host[:port][/base/path]`.
    Upstream(crate::core::upstream::ConfigError),
    /// The reqwest client could not be built ([`build_reqwest`](crate::onekey::OneKeyClientBuilder::build_reqwest)).
    #[cfg(feature = "reqwest")]
    #[cfg_attr(docsrs, doc(cfg(feature = "reqwest")))]
    Reqwest(crate::reqwest::ConfigError),
    /// A setting of the provider itself (a `User-Agent` that is not a header value, ...).
    Invalid {
        /// What is wrong.
        reason: &'static str,
    },
}

impl fmt::Display for ProviderConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Client(error) => error.fmt(f),
            #[cfg(feature = "headers")]
            Self::Headers(error) => error.fmt(f),
            #[cfg(feature = "signature")]
            Self::Signature(error) => error.fmt(f),
            #[cfg(feature = "tranzila")]
            Self::Tranzila(error) => error.fmt(f),
            Self::Upstream(error) => error.fmt(f),
            Self::Secret(error) => error.fmt(f),
            #[cfg(feature = "reqwest")]
            Self::Reqwest(error) => error.fmt(f),
            Self::Invalid { reason } => f.write_str(reason),
        }
    }
}

impl StdError for ProviderConfigError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Self::Client(error) => Some(error),
            #[cfg(feature = "headers")]
            Self::Headers(error) => Some(error),
            #[cfg(feature = "signature")]
            Self::Signature(error) => Some(error),
            #[cfg(feature = "tranzila")]
            Self::Tranzila(error) => Some(error),
            Self::Upstream(error) => Some(error),
            Self::Secret(error) => Some(error),
            #[cfg(feature = "reqwest")]
            Self::Reqwest(error) => Some(error),
            Self::Invalid { .. } => None,
        }
    }
}

impl From<tollgate_client::ConfigError> for ProviderConfigError {
    fn from(error: tollgate_client::ConfigError) -> Self {
        Self::Client(error)
    }
}

#[cfg(feature = "headers")]
impl From<crate::headers::ConfigError> for ProviderConfigError {
    fn from(error: crate::headers::ConfigError) -> Self {
        Self::Headers(error)
    }
}

#[cfg(feature = "signature")]
impl From<crate::signature::ConfigError> for ProviderConfigError {
    fn from(error: crate::signature::ConfigError) -> Self {
        Self::Signature(error)
    }
}

#[cfg(feature = "tranzila")]
impl From<crate::tranzila::ConfigError> for ProviderConfigError {
    fn from(error: crate::tranzila::ConfigError) -> Self {
        Self::Tranzila(error)
    }
}

impl From<crate::core::upstream::ConfigError> for ProviderConfigError {
    fn from(error: crate::core::upstream::ConfigError) -> Self {
        Self::Upstream(error)
    }
}

impl From<crate::core::SecretError> for ProviderConfigError {
    fn from(error: crate::core::SecretError) -> Self {
        Self::Secret(error)
    }
}

#[cfg(feature = "reqwest")]
impl From<crate::reqwest::ConfigError> for ProviderConfigError {
    fn from(error: crate::reqwest::ConfigError) -> Self {
        Self::Reqwest(error)
    }
}

#[cfg(all(
    feature = "headers",
    any(feature = "signature", feature = "tranzila", feature = "client-ip")
))]
/// The upstream a ready client pins its credentials to: the call stack's own base URL, checked
/// by tollgate-client's rules (one place: `configure(|c| c.base_url(..))` moves both).
pub(crate) fn pinned_upstream(
    client: &tollgate_client::ClientBuilder,
) -> Result<crate::core::upstream::Upstream, ProviderConfigError> {
    client.validate()?.ok_or(ProviderConfigError::Invalid {
        reason: "a ready client needs a base URL",
    })
}
