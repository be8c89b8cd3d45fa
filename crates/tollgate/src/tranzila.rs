//! Tranzila signing and verification (`tollgate-tranzila`, re-exported whole: see its
//! [crate documentation](https://docs.rs/tollgate-tranzila) for the rules and the "Security
//! considerations"), and [`TranzilaClient`], the ready client.

#[doc(inline)]
pub use tollgate_tranzila::*;

#[cfg(all(feature = "client", feature = "headers"))]
#[cfg_attr(docsrs, doc(cfg(all(feature = "client", feature = "headers"))))]
pub use client::{TranzilaClient, TranzilaClientBuilder};

#[cfg(all(feature = "client", feature = "headers"))]
mod client {
    use tower::ServiceBuilder;
    use tower::layer::util::{Identity, Stack};

    use super::{TranzilaCredentials, TranzilaSigningLayer};
    use crate::ProviderConfigError;
    use crate::client::{ClientBuilder, ProviderClient};
    use crate::core::{Clock, SharedClock};
    use crate::headers::HeaderHygieneLayer;
    use crate::provider::pinned_upstream;

    /// Tranzila's API, `https://api.tranzila.com`: the default base URL.
    const API: &str = "https://api.tranzila.com";

    /// The ready Tranzila client: every attempt carries the four headers
    /// (`X-tranzila-api-app-key`, `-request-time`, `-nonce`, `-access-token`), made anew for
    /// that attempt (a retry never resends a nonce), sent to the configured base URL only; no
    /// browser header is forwarded; HTTPS only, with timeouts, retries, limits and an audit
    /// event per attempt ([`client`](crate::client)).
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// use bytes::Bytes;
    /// use http::Request;
    /// use http_body_util::Full;
    /// use tollgate::core::Secret;
    /// use tollgate::tranzila::{TranzilaClient, TranzilaCredentials};
    /// use tower::ServiceExt;
    ///
    /// let credentials = TranzilaCredentials::new(
    ///     std::env::var("TRANZILA_APP_KEY")?,
    ///     Secret::from_env("TRANZILA_SECRET")?,
    /// )?;
    /// let tranzila = TranzilaClient::builder(credentials).build()?;
    /// let request = Request::post("/v1/transactions")
    ///     .header("content-type", "application/json")
    ///     .body(Full::new(Bytes::from_static(b"{}")))?;
    /// let response = tranzila.oneshot(request).await?;
    /// # drop(response);
    /// # Ok(())
    /// # }
    /// ```
    #[derive(Debug)]
    #[non_exhaustive]
    pub struct TranzilaClient;

    impl TranzilaClient {
        /// A builder for `https://api.tranzila.com` with these credentials.
        pub fn builder(credentials: TranzilaCredentials) -> TranzilaClientBuilder {
            TranzilaClientBuilder {
                credentials,
                clock: None,
                client: ClientBuilder::new("tranzila").base_url(API),
            }
        }
    }

    /// Builds a [`TranzilaClient`].
    #[must_use]
    pub struct TranzilaClientBuilder {
        credentials: TranzilaCredentials,
        clock: Option<SharedClock>,
        client: ClientBuilder,
    }

    /// Never shows the base URL as given (it may hold user info, refused at build): the call
    /// stack's `Debug` shows its scheme, host and port.
    impl std::fmt::Debug for TranzilaClientBuilder {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("TranzilaClientBuilder")
                .field("credentials", &self.credentials)
                .field("clock", &self.clock)
                .field("client", &self.client)
                .finish_non_exhaustive()
        }
    }

    impl TranzilaClientBuilder {
        /// Another base URL (a sandbox, or a local mock in tests). The signed headers are sent
        /// to it only.
        pub fn base_url(mut self, base_url: &str) -> Self {
            self.client = self.client.base_url(base_url);
            self
        }

        /// Changes the call stack: timeouts, retry policy, limits, TLS roots.
        pub fn configure(mut self, f: impl FnOnce(ClientBuilder) -> ClientBuilder) -> Self {
            self.client = f(self.client);
            self
        }

        /// The clock the request time is read from (the system clock by default; a test
        /// clock in tests and demos).
        pub fn clock(mut self, clock: impl Clock) -> Self {
            self.clock = Some(std::sync::Arc::new(clock));
            self
        }

        /// Builds the client.
        ///
        /// # Errors
        ///
        /// An invalid app key, a blank secret, a base URL that is not
        /// `https://host[:port][/base/path]`, or a call-stack setting that cannot work.
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
        ) -> Result<crate::reqwest::reqwest_middleware::ClientWithMiddleware, ProviderConfigError>
        {
            let (client, layers) = self.into_parts()?;
            Ok(crate::reqwest::client(client, layers)?)
        }

        /// The call-stack settings and the provider's layers, checked.
        fn into_parts(self) -> Result<(ClientBuilder, TranzilaLayers), ProviderConfigError> {
            let upstream = pinned_upstream(&self.client)?;
            let mut signing = TranzilaSigningLayer::new(self.credentials, upstream)?;
            if let Some(clock) = self.clock {
                signing = signing.clock(clock);
            }
            let layers = ServiceBuilder::new()
                .layer(HeaderHygieneLayer::server_to_server())
                .layer(signing)
                .into_inner();
            Ok((self.client, layers))
        }
    }

    /// Tranzila's layers, outermost first: hygiene, then signing.
    type TranzilaLayers = Stack<TranzilaSigningLayer, Stack<HeaderHygieneLayer, Identity>>;
}
