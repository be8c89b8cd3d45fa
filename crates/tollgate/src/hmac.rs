//! The ready client for any API signed with HMAC over Method + Path + Body + Timestamp.
//!
//! Every attempt gets a fresh timestamp and signature ([`Canonical`], ±5 minutes on the
//! server; a retry starts in a new second, so its signature never repeats the attempt before
//! it), over the exact bytes sent, to the configured base URL only; browser headers are
//! not forwarded; HTTPS only, with timeouts, retries, limits and an audit event per attempt
//! ([`client`](crate::client)).
//!
//! The scheme signs no nonce, so two *separate* calls with the same method, path and body in
//! the same second would carry the same timestamp and signature, and a server with a replay
//! guard would refuse the second as `replayed`. The signer never makes one signature twice:
//! such a call is signed one second ahead instead (for a burst of one message, up to half the
//! scheme's tolerance ahead, 150 s by default, so the verifier still accepts it).
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use bytes::Bytes;
//! use http::Request;
//! use http_body_util::Full;
//! use tollgate::core::{KeyRing, Secret};
//! use tollgate::hmac::HmacClient;
//! use tower::ServiceExt;
//!
//! let ring = KeyRing::single(Secret::from_env("PAYMENTS_SIGNING_KEY")?);
//! let payments = HmacClient::builder("payments", "https://api.payments.example", ring).build()?;
//! let request = Request::post("/v1/payments").body(Full::new(Bytes::from_static(b"{}")))?;
//! let response = payments.oneshot(request).await?;
//! # drop(response);
//! # Ok(())
//! # }
//! ```

use std::time::Duration;

use tower::ServiceBuilder;
use tower::layer::util::{Identity, Stack};

use crate::ProviderConfigError;
use crate::client::{ClientBuilder, ProviderClient};
use crate::core::KeyRing;
use crate::headers::HeaderHygieneLayer;
use crate::provider::pinned_upstream;
use crate::signature::{Canonical, SignRequestLayer};

/// The ready HMAC client. See the [module](self).
#[derive(Debug)]
#[non_exhaustive]
pub struct HmacClient;

impl HmacClient {
    /// A builder for the API named `provider` (in audit events) at `base_url`, signing with
    /// `ring`'s signing key and [`Canonical::new`].
    pub fn builder(provider: &'static str, base_url: &str, ring: KeyRing) -> HmacClientBuilder {
        HmacClientBuilder {
            ring,
            scheme: Canonical::new(),
            client: ClientBuilder::new(provider).base_url(base_url),
        }
    }
}

/// Builds an [`HmacClient`].
#[must_use]
pub struct HmacClientBuilder {
    ring: KeyRing,
    scheme: Canonical,
    client: ClientBuilder,
}

/// Never shows the base URL as given (it may hold user info, refused at build): the call
/// stack's `Debug` shows its scheme, host and port.
impl std::fmt::Debug for HmacClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HmacClientBuilder")
            .field("ring", &self.ring)
            .field("scheme", &self.scheme)
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

impl HmacClientBuilder {
    /// Another layout of the canonical scheme (headers, encoding, delimited, ...).
    pub fn scheme(mut self, scheme: Canonical) -> Self {
        self.scheme = scheme;
        self
    }

    /// Changes the call stack: timeouts, retry policy, limits, TLS roots.
    pub fn configure(mut self, f: impl FnOnce(ClientBuilder) -> ClientBuilder) -> Self {
        self.client = f(self.client);
        self
    }

    /// Builds the client.
    ///
    /// # Errors
    ///
    /// A blank signing key, a base URL that is not `https://host[:port][/base/path]`, or a
    /// call-stack setting that cannot work.
    pub fn build(self) -> Result<ProviderClient, ProviderConfigError> {
        let (client, layers) = self.into_parts()?;
        Ok(client.build(layers)?)
    }

    /// Builds the same client for reqwest: the same layers and settings, as a
    /// `reqwest_middleware::ClientWithMiddleware` ([`reqwest`](crate::reqwest)).
    ///
    /// # Errors
    ///
    /// As [`build`](Self::build).
    #[cfg(feature = "reqwest")]
    #[cfg_attr(docsrs, doc(cfg(feature = "reqwest")))]
    pub fn build_reqwest(
        self,
    ) -> Result<crate::reqwest::reqwest_middleware::ClientWithMiddleware, ProviderConfigError> {
        let (client, layers) = self.into_parts()?;
        Ok(crate::reqwest::client(client, layers)?)
    }

    /// The call-stack settings and the provider's layers, checked.
    fn into_parts(self) -> Result<(ClientBuilder, HmacLayers), ProviderConfigError> {
        let upstream = pinned_upstream(&self.client)?;
        let layers = ServiceBuilder::new()
            .layer(HeaderHygieneLayer::server_to_server())
            .layer(SignRequestLayer::new(self.scheme, self.ring, upstream)?)
            .into_inner();
        // The timestamp counts whole seconds: a retry signed in the same second would carry
        // the very signature of the attempt before it, and a server's replay guard (whose
        // undelimited canonical claims are never released) would refuse it as replayed. Set
        // after `configure`, so no setting can take it away.
        let client = self.client.signed_time_resolution(Duration::from_secs(1));
        Ok((client, layers))
    }
}

/// The HMAC client's layers, outermost first: hygiene, then signing.
type HmacLayers = Stack<SignRequestLayer, Stack<HeaderHygieneLayer, Identity>>;
