//! Ready-made stacks for a Transak partner backend.
//!
//! Transak's integration rules, as two layers:
//!
//! - [`TransakInbound`] for the partner's own API that browsers call (the endpoint that creates
//!   widget URLs): the origin allowlist (Transak: restrict the API to your front-end domains,
//!   explicit `Access-Control-Allow-Origin`, others blocked), the end user's IP derived from a
//!   configured source (the value Transak needs as `x-user-ip`) and an optional IP allowlist.
//! - [`TransakOutbound`] for the `hyper_util` client that calls Transak: header hygiene
//!   (never forward `Origin`, `Referer`, cookies, ...), `x-api-key` and `access-token` from the
//!   backend (refused for any host but the configured upstream) and `x-user-ip` from the
//!   inbound request's `ClientIp` (the call fails when there is none).
//!
//! ```
//! # #[cfg(all(feature = "origin", feature = "client-ip", feature = "headers"))]
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use tollgate::core::Secret;
//! use tollgate::headers::Upstream;
//! use tollgate::transak::{TransakInbound, TransakOutbound};
//!
//! // The partner API: one front end, behind Cloudflare.
//! let inbound = TransakInbound::new(["https://app.example.com"], "cloudflare".parse()?)?;
//! // The client that calls Transak.
//! let outbound = TransakOutbound::new(
//!     Upstream::transak(),
//!     Secret::from_string("partner-api-key"),     // Secret::from_env("TRANSAK_API_KEY")?
//!     Secret::from_string("partner-access-token"), // Secret::from_env("TRANSAK_ACCESS_TOKEN")?
//! )?;
//! # let _ = (inbound, outbound);
//! # Ok(())
//! # }
//! # #[cfg(not(all(feature = "origin", feature = "client-ip", feature = "headers")))]
//! # fn main() {}
//! ```

#[cfg(all(feature = "headers", feature = "client-ip"))]
pub use outbound::TransakOutbound;

#[cfg(all(feature = "origin", feature = "client-ip"))]
pub use inbound::TransakInbound;

#[cfg(all(feature = "origin", feature = "client-ip"))]
mod inbound {
    use http::Method;
    use tower_layer::Layer;

    use crate::client_ip::{
        ClientIpLayer, ClientIpService, ClientIpSource, IpAllowlist, IpAllowlistLayer, IpRanges,
    };
    use crate::origin::{ConfigError, OriginAllowlist, OriginAllowlistLayer};

    /// The inbound stack of a partner API that browsers call: origin allowlist (outermost),
    /// client IP, then an optional IP allowlist.
    ///
    /// A refused origin gets 403 `origin_not_allowed` before anything else runs; a request
    /// whose client IP cannot be derived gets 400 `invalid_client_ip`; an IP outside the
    /// allowlist gets 403 `ip_not_allowed`. Handlers read the `ClientIp` extension (and the
    /// outbound [`TransakOutbound`](super::TransakOutbound) forwards it as `x-user-ip`).
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use axum::{Router, routing::post};
    /// use tollgate::client_ip::IpAllowlistLayer;
    /// use tollgate::transak::TransakInbound;
    ///
    /// let inbound = TransakInbound::new(["https://app.example.com"], "remote-addr".parse()?)?
    ///     .ip_allowlist(IpAllowlistLayer::new("203.0.113.0/24".parse()?));
    /// let app: Router = Router::new()
    ///     .route("/api/widget-url", post(|| async { "{}" }))
    ///     .layer(inbound);
    /// # let _ = app;
    /// # Ok(())
    /// # }
    /// ```
    #[derive(Debug, Clone)]
    #[must_use]
    pub struct TransakInbound {
        origin: OriginAllowlistLayer,
        client_ip: ClientIpLayer,
        allowlist: Option<IpAllowlistLayer>,
    }

    impl TransakInbound {
        /// The stack for the `https` front-end `origins`, with the client IP read from
        /// `client_ip`. Browsers may call with `GET` and `POST` and send `content-type`;
        /// preflights are cached for ten minutes. For other CORS settings (or `http://`
        /// origins in development) build the layers yourself and use
        /// [`from_layers`](Self::from_layers).
        pub fn new<I>(origins: I, client_ip: ClientIpSource) -> Result<Self, ConfigError>
        where
            I: IntoIterator,
            I::Item: Into<String>,
        {
            let origin = OriginAllowlistLayer::builder()
                .allow_origins(origins)
                .allow_methods([Method::GET, Method::POST])
                .allow_headers(["content-type"])
                .max_age(std::time::Duration::from_secs(600))
                .build()?;
            Ok(Self::from_layers(origin, ClientIpLayer::new(client_ip)))
        }

        /// The stack from layers configured by hand.
        pub fn from_layers(origin: OriginAllowlistLayer, client_ip: ClientIpLayer) -> Self {
            Self {
                origin,
                client_ip,
                allowlist: None,
            }
        }

        /// Also refuse client IPs outside `allowlist` (403 `ip_not_allowed`).
        pub fn ip_allowlist(mut self, allowlist: IpAllowlistLayer) -> Self {
            self.allowlist = Some(allowlist);
            self
        }
    }

    impl<S> Layer<S> for TransakInbound {
        type Service = OriginAllowlist<ClientIpService<IpAllowlist<S>>>;

        fn layer(&self, inner: S) -> Self::Service {
            // Without an allowlist every IP passes: the layer then only costs a range check.
            let allowlist = self
                .allowlist
                .clone()
                .unwrap_or_else(|| IpAllowlistLayer::new(IpRanges::any()));
            self.origin
                .layer(self.client_ip.layer(allowlist.layer(inner)))
        }
    }
}

#[cfg(all(feature = "headers", feature = "client-ip"))]
mod outbound {
    use tower_layer::Layer;

    use crate::client_ip::{ForwardUserIp, ForwardUserIpLayer};
    use crate::core::Secret;
    use crate::headers::{
        HeaderHygiene, HeaderHygieneLayer, HeaderHygieneService, SecretHeader, SecretHeaderLayer,
        Upstream,
    };

    /// The outbound stack of a client that calls Transak: header hygiene, then `x-api-key`,
    /// then `access-token`, then `x-user-ip`.
    ///
    /// Requests to any scheme or authority but `upstream` fail with the headers crate's
    /// `HeaderError` and nothing is sent; a request without a `ClientIp` (in its extensions
    /// or in the inbound task's scope) fails with `MissingClientIp`. Both arrive as
    /// [`BoxError`](crate::core::BoxError)s: use `downcast_ref`.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use bytes::Bytes;
    /// use http_body_util::Full;
    /// use hyper_util::client::legacy::Client;
    /// use hyper_util::rt::TokioExecutor;
    /// use tollgate::core::Secret;
    /// use tollgate::headers::Upstream;
    /// use tollgate::transak::TransakOutbound;
    /// use tower::ServiceBuilder;
    ///
    /// let transak = ServiceBuilder::new()
    ///     .layer(TransakOutbound::new(
    ///         Upstream::transak(),
    ///         Secret::from_string("partner-api-key"),
    ///         Secret::from_string("partner-access-token"),
    ///     )?)
    ///     .service(Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>());
    /// # let _ = transak;
    /// # Ok(())
    /// # }
    /// ```
    #[derive(Debug, Clone)]
    #[must_use]
    pub struct TransakOutbound {
        hygiene: HeaderHygieneLayer,
        api_key: SecretHeaderLayer,
        access_token: SecretHeaderLayer,
        user_ip: ForwardUserIpLayer,
    }

    impl TransakOutbound {
        /// The stack for `upstream` (e.g. [`Upstream::transak`]) with the partner's API key and
        /// access token, and [`HeaderHygiene::server_to_server`].
        ///
        /// # Errors
        ///
        /// [`SecretError::Blank`](crate::core::SecretError::Blank) when either secret is empty
        /// or only whitespace.
        pub fn new(
            upstream: Upstream,
            api_key: Secret,
            access_token: Secret,
        ) -> Result<Self, crate::core::SecretError> {
            Ok(Self {
                hygiene: HeaderHygieneLayer::new(HeaderHygiene::server_to_server()),
                api_key: SecretHeaderLayer::api_key(api_key)?.upstream(upstream.clone()),
                access_token: SecretHeaderLayer::access_token(access_token)?.upstream(upstream),
                user_ip: ForwardUserIpLayer::new(),
            })
        }

        /// Replaces the hygiene rules, e.g. to substitute the backend's own `User-Agent`.
        pub fn hygiene(mut self, hygiene: HeaderHygiene) -> Self {
            self.hygiene = HeaderHygieneLayer::new(hygiene);
            self
        }
    }

    impl<S> Layer<S> for TransakOutbound {
        type Service = HeaderHygieneService<SecretHeader<SecretHeader<ForwardUserIp<S>>>>;

        fn layer(&self, inner: S) -> Self::Service {
            let inner = self.user_ip.layer(inner);
            let inner = self.access_token.layer(inner);
            let inner = self.api_key.layer(inner);
            self.hygiene.layer(inner)
        }
    }
}
