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
#[cfg_attr(docsrs, doc(cfg(all(feature = "headers", feature = "client-ip"))))]
pub use outbound::TransakOutbound;

#[cfg(all(feature = "origin", feature = "client-ip"))]
#[cfg_attr(docsrs, doc(cfg(all(feature = "origin", feature = "client-ip"))))]
pub use inbound::{TransakInbound, TransakInboundBuilder};

#[cfg(all(feature = "client", feature = "headers", feature = "client-ip"))]
#[cfg_attr(
    docsrs,
    doc(cfg(all(feature = "client", feature = "headers", feature = "client-ip")))
)]
pub use client::{PRODUCTION, STAGING, TransakClient, TransakClientBuilder};

#[cfg(all(feature = "client", feature = "headers", feature = "client-ip"))]
mod client {
    use tower::ServiceBuilder;
    use tower::layer::util::{Identity, Stack};

    use crate::ProviderConfigError;
    use crate::client::{ClientBuilder, ProviderClient};
    use crate::client_ip::ForwardUserIpLayer;
    use crate::core::upstream::Upstream;
    use crate::core::{Clock, Secret, SharedClock};
    use crate::headers::{HeaderHygieneLayer, SecretHeaderLayer, TokenHeaderLayer, TokenProvider};
    use crate::provider::pinned_upstream;

    /// Transak's production API gateway.
    pub const PRODUCTION: &str = "https://api-gateway.transak.com";
    /// Transak's staging API gateway.
    pub const STAGING: &str = "https://api-gateway-stg.transak.com";

    /// The ready Transak client: browser headers stripped, `x-api-key` and an `access-token`
    /// kept fresh by a [`TokenProvider`] (refreshed before it expires, through
    /// [`TokenHeaderLayer`]), both sent to the configured gateway only, and `x-user-ip` from
    /// the inbound request's `ClientIp` (the call fails with
    /// [`MissingClientIp`](crate::client_ip::MissingClientIp) outside a request that resolved
    /// one); HTTPS only, with timeouts, retries, limits and an audit event per attempt
    /// ([`client`](crate::client)). When the gateway answers 401, the access token that call
    /// carried is dropped and the next call fetches a new one: a token revoked before its
    /// expiry (a partner key rotated after a leak) is not sent again. At most one token is
    /// dropped this way in 10 seconds, so 401s that are not about the token (a shopper's
    /// request the gateway refuses) cause at most one fetch in that time. A token that has
    /// already expired when the provider returns it is never sent.
    ///
    /// ```no_run
    /// # async fn run(provider: impl tollgate::headers::TokenProvider) -> Result<(), Box<dyn std::error::Error>> {
    /// use tollgate::core::Secret;
    /// use tollgate::transak::{self, TransakClient};
    ///
    /// let transak = TransakClient::builder(
    ///     transak::STAGING,
    ///     Secret::from_env("TRANSAK_API_KEY")?,
    ///     provider, // fetches the partner access token, e.g. from Transak's refresh-token API
    /// )
    /// .build()?;
    /// # drop(transak);
    /// # Ok(())
    /// # }
    /// ```
    #[derive(Debug)]
    #[non_exhaustive]
    pub struct TransakClient;

    impl TransakClient {
        /// A builder for the gateway at `base_url` ([`PRODUCTION`] or [`STAGING`]) with the
        /// partner's API key and the provider of its access token.
        pub fn builder(
            base_url: &str,
            api_key: Secret,
            access_token: impl TokenProvider,
        ) -> TransakClientBuilder {
            TransakClientBuilder {
                api_key,
                clock: None,
                access_token: Box::new(move |upstream| {
                    TokenHeaderLayer::access_token(access_token, upstream)
                }),
                client: ClientBuilder::new("transak").base_url(base_url),
            }
        }
    }

    /// Builds a [`TransakClient`].
    #[must_use]
    pub struct TransakClientBuilder {
        api_key: Secret,
        access_token: Box<dyn FnOnce(Upstream) -> TokenHeaderLayer + Send>,
        clock: Option<SharedClock>,
        client: ClientBuilder,
    }

    impl std::fmt::Debug for TransakClientBuilder {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            // Not the base URL as given (it may hold user info, refused at build): the call
            // stack's `Debug` shows its scheme, host and port.
            f.debug_struct("TransakClientBuilder")
                .field("api_key", &self.api_key)
                .field("client", &self.client)
                .finish_non_exhaustive()
        }
    }

    impl TransakClientBuilder {
        /// Changes the call stack: timeouts, retry policy, limits, TLS roots.
        pub fn configure(mut self, f: impl FnOnce(ClientBuilder) -> ClientBuilder) -> Self {
            self.client = f(self.client);
            self
        }

        /// The clock the access token's expiry is read from (the system clock by default; a
        /// test clock in tests and demos).
        pub fn clock(mut self, clock: impl Clock) -> Self {
            self.clock = Some(std::sync::Arc::new(clock));
            self
        }

        /// Builds the client.
        ///
        /// # Errors
        ///
        /// A blank API key, a base URL that is not `https://host[:port][/base/path]`, or a
        /// call-stack setting that cannot work.
        pub fn build(self) -> Result<ProviderClient, ProviderConfigError> {
            let (client, layers, _) = self.into_parts()?;
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
            let (client, layers, token) = self.into_parts()?;
            // The layers run before the request is sent: the 401 is seen closest to the
            // network.
            Ok(crate::reqwest::client_with(
                client,
                layers,
                RefetchOnUnauthorizedMiddleware { token },
            )?)
        }

        /// The call-stack settings and the provider's layers, checked.
        fn into_parts(
            self,
        ) -> Result<(ClientBuilder, TransakLayers, TokenHeaderLayer), ProviderConfigError> {
            let upstream = pinned_upstream(&self.client)?;
            let token = match self.clock {
                Some(clock) => (self.access_token)(upstream.clone()).clock(clock),
                None => (self.access_token)(upstream.clone()),
            };
            let layers = ServiceBuilder::new()
                .layer(HeaderHygieneLayer::server_to_server())
                .layer(SecretHeaderLayer::api_key(self.api_key, upstream)?)
                .layer(token.clone())
                .layer(RefetchOnUnauthorizedLayer {
                    token: token.clone(),
                })
                .layer(ForwardUserIpLayer::new())
                .into_inner();
            Ok((self.client, layers, token))
        }
    }

    /// Transak's layers, outermost first: hygiene, `x-api-key`, `access-token`, the 401
    /// check, `x-user-ip`.
    type TransakLayers = Stack<
        ForwardUserIpLayer,
        Stack<
            RefetchOnUnauthorizedLayer,
            Stack<TokenHeaderLayer, Stack<SecretHeaderLayer, Stack<HeaderHygieneLayer, Identity>>>,
        >,
    >;

    /// Under the token layer: when the gateway answers 401 to a call, the access token that
    /// call carried is dropped from the cache, so the next call fetches a new one (a token
    /// revoked before its expiry, after a partner key rotation, is not sent until it
    /// expires). A newer token cached meanwhile stays.
    #[derive(Clone)]
    struct RefetchOnUnauthorizedLayer {
        token: TokenHeaderLayer,
    }

    impl<S> tower_layer::Layer<S> for RefetchOnUnauthorizedLayer {
        type Service = RefetchOnUnauthorized<S>;

        fn layer(&self, inner: S) -> Self::Service {
            RefetchOnUnauthorized {
                inner,
                token: self.token.clone(),
            }
        }
    }

    /// [`RefetchOnUnauthorizedLayer`] for reqwest: the tower layers run before the request
    /// is sent there (they never see the response), so the 401 is read by a middleware
    /// closest to the network, from the attempt as sent.
    #[cfg(feature = "reqwest")]
    struct RefetchOnUnauthorizedMiddleware {
        token: TokenHeaderLayer,
    }

    #[cfg(feature = "reqwest")]
    #[async_trait::async_trait]
    impl crate::reqwest::reqwest_middleware::Middleware for RefetchOnUnauthorizedMiddleware {
        async fn handle(
            &self,
            request: crate::reqwest::reqwest_middleware::reqwest::Request,
            extensions: &mut http::Extensions,
            next: crate::reqwest::reqwest_middleware::Next<'_>,
        ) -> crate::reqwest::reqwest_middleware::Result<
            crate::reqwest::reqwest_middleware::reqwest::Response,
        > {
            let sent = request.headers().get(self.token.header_name()).cloned();
            let response = next.run(request, extensions).await?;
            if response.status() == http::StatusCode::UNAUTHORIZED
                && let Some(sent) = &sent
            {
                self.token.invalidate_sent(sent);
            }
            Ok(response)
        }
    }

    #[derive(Clone)]
    struct RefetchOnUnauthorized<S> {
        inner: S,
        token: TokenHeaderLayer,
    }

    impl<S, B, R> tower::Service<http::Request<B>> for RefetchOnUnauthorized<S>
    where
        S: tower::Service<http::Request<B>, Response = http::Response<R>>,
        S::Future: Send + 'static,
        R: Send + 'static,
    {
        type Response = http::Response<R>;
        type Error = S::Error;
        type Future = std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<http::Response<R>, S::Error>> + Send>,
        >;

        fn poll_ready(
            &mut self,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Result<(), Self::Error>> {
            self.inner.poll_ready(cx)
        }

        fn call(&mut self, request: http::Request<B>) -> Self::Future {
            let sent = request.headers().get(self.token.header_name()).cloned();
            let future = self.inner.call(request);
            let token = self.token.clone();
            Box::pin(async move {
                let response = future.await?;
                if response.status() == http::StatusCode::UNAUTHORIZED
                    && let Some(sent) = &sent
                {
                    token.invalidate_sent(sent);
                }
                Ok(response)
            })
        }
    }
}

#[cfg(all(feature = "origin", feature = "client-ip"))]
mod inbound {
    use std::time::Duration;

    use http::Method;
    use tower_layer::Layer;

    use crate::client_ip::{
        ClientIpSource, IpAllowlist, IpAllowlistLayer, IpRanges, ResolveClientIp,
        ResolveClientIpLayer,
    };
    use crate::origin::{
        ConfigError, OriginAllowlist, OriginAllowlistBuilder, OriginAllowlistLayer,
    };

    /// The preflight cache time of the preset: ten minutes.
    const MAX_AGE: Duration = Duration::from_secs(600);

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
        client_ip: ResolveClientIpLayer,
        allowlist: Option<IpAllowlistLayer>,
    }

    impl TransakInbound {
        /// The stack for the `https` front-end `origins`, with the client IP read from
        /// `client_ip`. Browsers may call with `GET` and `POST` and send `content-type`;
        /// preflights are cached for ten minutes. To change the methods (a `POST`-only route
        /// should not advertise `GET`) or any other CORS setting, start from
        /// [`builder`](Self::builder); to configure every layer by hand, use
        /// [`from_layers`](Self::from_layers).
        ///
        /// # Errors
        ///
        /// The origin allowlist's [`ConfigError`]: no origins, `*`, an `http://` origin, ...
        pub fn new<I>(origins: I, client_ip: ClientIpSource) -> Result<Self, ConfigError>
        where
            I: IntoIterator,
            I::Item: Into<String>,
        {
            Self::builder(origins, client_ip).build()
        }

        /// The settings of [`new`](Self::new), to change before [`build`](
        /// TransakInboundBuilder::build): the methods and headers a preflight may ask for,
        /// the preflight cache time, `http://` origins, the rest of the origin allowlist and
        /// the IP allowlist.
        ///
        /// ```
        /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
        /// use http::Method;
        /// use tollgate::transak::TransakInbound;
        ///
        /// // A POST-only route: the preflight advertises `POST` alone.
        /// let inbound = TransakInbound::builder(["https://app.example.com"], "cloudflare".parse()?)
        ///     .methods([Method::POST])
        ///     .origin_policy(|origin| origin.bypass_path("/healthz"))
        ///     .build()?;
        /// # let _ = inbound;
        /// # Ok(())
        /// # }
        /// ```
        pub fn builder<I>(origins: I, client_ip: ClientIpSource) -> TransakInboundBuilder
        where
            I: IntoIterator,
            I::Item: Into<String>,
        {
            TransakInboundBuilder {
                origin: OriginAllowlistLayer::builder()
                    .allow_origins(origins)
                    .max_age(MAX_AGE),
                methods: vec![Method::GET.to_string(), Method::POST.to_string()],
                headers: vec!["content-type".to_owned()],
                client_ip: ResolveClientIpLayer::new(client_ip),
                allowlist: None,
            }
        }

        /// The stack from layers configured by hand.
        pub fn from_layers(origin: OriginAllowlistLayer, client_ip: ResolveClientIpLayer) -> Self {
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

    /// The configuration of a [`TransakInbound`], from [`TransakInbound::builder`]; the
    /// defaults are those of [`TransakInbound::new`].
    ///
    /// [`methods`](Self::methods) and [`headers`](Self::headers) replace the preset's lists;
    /// [`origin_policy`](Self::origin_policy) reaches every other
    /// [`OriginAllowlistBuilder`] setting. Everything is validated by
    /// [`build`](Self::build).
    #[derive(Debug)]
    #[must_use]
    pub struct TransakInboundBuilder {
        origin: OriginAllowlistBuilder,
        methods: Vec<String>,
        headers: Vec<String>,
        client_ip: ResolveClientIpLayer,
        allowlist: Option<IpAllowlistLayer>,
    }

    impl TransakInboundBuilder {
        /// The methods a preflight may ask for, replacing the default `GET, POST`. Takes
        /// [`Method`]s or strings, with the rules of
        /// [`OriginAllowlistBuilder::allow_methods`].
        pub fn methods<I>(mut self, methods: I) -> Self
        where
            I: IntoIterator,
            I::Item: AsRef<str>,
        {
            self.methods = methods.into_iter().map(|m| m.as_ref().to_owned()).collect();
            self
        }

        /// The request headers a preflight may ask for, replacing the default
        /// `content-type`. Takes [`HeaderName`](https://docs.rs/http/1/http/header/struct.HeaderName.html)s or strings.
        pub fn headers<I>(mut self, headers: I) -> Self
        where
            I: IntoIterator,
            I::Item: AsRef<str>,
        {
            self.headers = headers.into_iter().map(|h| h.as_ref().to_owned()).collect();
            self
        }

        /// How long a browser may cache a preflight answer, default ten minutes.
        pub fn max_age(mut self, max_age: Duration) -> Self {
            self.origin = self.origin.max_age(max_age);
            self
        }

        /// Permits `http://` origins (loopback development), see
        /// [`OriginAllowlistBuilder::allow_http_origins`]. Off by default.
        pub fn allow_http_origins(mut self, allow: bool) -> Self {
            self.origin = self.origin.allow_http_origins(allow);
            self
        }

        /// Any other origin allowlist setting: `configure` gets the preset's
        /// [`OriginAllowlistBuilder`] (origins and cache time set) and returns it, e.g.
        /// `|origin| origin.expose_headers(["x-request-id"]).bypass_path("/healthz")`.
        /// Methods and headers given there add to [`methods`](Self::methods) and
        /// [`headers`](Self::headers), which are applied at [`build`](Self::build).
        pub fn origin_policy(
            mut self,
            configure: impl FnOnce(OriginAllowlistBuilder) -> OriginAllowlistBuilder,
        ) -> Self {
            self.origin = configure(self.origin);
            self
        }

        /// Also refuse client IPs outside `allowlist` (403 `ip_not_allowed`).
        pub fn ip_allowlist(mut self, allowlist: IpAllowlistLayer) -> Self {
            self.allowlist = Some(allowlist);
            self
        }

        /// Validates the origin configuration and builds the stack.
        ///
        /// # Errors
        ///
        /// The origin allowlist's [`ConfigError`]: no origins, `*`, an `http://` origin
        /// without [`allow_http_origins`](Self::allow_http_origins), an invalid
        /// method, an invalid header name, ...
        pub fn build(self) -> Result<TransakInbound, ConfigError> {
            let origin = self
                .origin
                .allow_methods(self.methods)
                .allow_headers(self.headers)
                .build()?;
            Ok(TransakInbound {
                origin,
                client_ip: self.client_ip,
                allowlist: self.allowlist,
            })
        }
    }

    impl<S> Layer<S> for TransakInbound {
        type Service = OriginAllowlist<ResolveClientIp<IpAllowlist<S>>>;

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
        ConfigError, HeaderHygiene, HeaderHygieneLayer, SecretHeader, SecretHeaderLayer, Upstream,
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
        /// access token, and [`HeaderHygieneLayer::server_to_server`].
        ///
        /// # Errors
        ///
        /// [`ConfigError::Secret`] when either secret is empty or only whitespace,
        /// [`ConfigError::InvalidSecret`] when one is not a valid header value.
        pub fn new(
            upstream: Upstream,
            api_key: Secret,
            access_token: Secret,
        ) -> Result<Self, ConfigError> {
            Ok(Self {
                hygiene: HeaderHygieneLayer::server_to_server(),
                api_key: SecretHeaderLayer::api_key(api_key, upstream.clone())?,
                access_token: SecretHeaderLayer::access_token(access_token, upstream)?,
                user_ip: ForwardUserIpLayer::new(),
            })
        }

        /// Replaces the hygiene rules, e.g. to substitute the backend's own `User-Agent`.
        pub fn hygiene(mut self, rules: HeaderHygieneLayer) -> Self {
            self.hygiene = rules;
            self
        }
    }

    impl<S> Layer<S> for TransakOutbound {
        type Service = HeaderHygiene<SecretHeader<SecretHeader<ForwardUserIp<S>>>>;

        fn layer(&self, inner: S) -> Self::Service {
            let inner = self.user_ip.layer(inner);
            let inner = self.access_token.layer(inner);
            let inner = self.api_key.layer(inner);
            self.hygiene.layer(inner)
        }
    }
}
