//! [`ServiceBuilderExt`]: one method per tollgate layer on [`tower::ServiceBuilder`].

#[cfg(any(
    feature = "client-ip",
    feature = "https",
    feature = "headers",
    feature = "origin",
    feature = "replay",
    feature = "signature",
    feature = "tranzila"
))]
use tower::layer::util::Stack;

use tower::ServiceBuilder;

#[cfg(feature = "client-ip")]
use crate::client_ip::{
    ClientIpSource, ForwardUserIpLayer, IpAllowlistLayer, IpRanges, ResolveClientIpLayer,
};
#[cfg(feature = "signature")]
use crate::core::KeyRing;
#[cfg(any(feature = "headers", feature = "signature", feature = "tranzila"))]
use crate::core::Upstream;
#[cfg(feature = "headers")]
use crate::headers::{
    HeaderHygieneLayer, InboundHygieneLayer, RequireHeadersLayer, SecretHeaderLayer,
    TokenHeaderLayer, TokenProvider,
};
#[cfg(feature = "https")]
use crate::https::RequireHttpsLayer;
#[cfg(feature = "origin")]
use crate::origin::OriginAllowlistLayer;
#[cfg(feature = "replay")]
use crate::replay::{NonceStore, ReplayGuardLayer};
#[cfg(feature = "signature")]
use crate::signature::{Scheme, SignRequestLayer, VerifySignatureLayer};
#[cfg(feature = "tranzila")]
use crate::tranzila::{
    AppKeySecrets, TranzilaCredentials, TranzilaSigningLayer, TranzilaVerifyLayer,
};

/// A stacked outbound client with its type erased: a name to store it under (in axum state,
/// a struct field, a `static`), whatever layers it has.
///
/// The type of a stacked client spells every layer (`<TransakOutbound as
/// Layer<Client<HttpConnector, Full<Bytes>>>>::Service`); tower's `BoxCloneService` hides it
/// but is not `Sync`, which axum state must be. This alias is tower's
/// [`BoxCloneSyncService`](https://docs.rs/tower/0.5/tower/util/struct.BoxCloneSyncService.html): `Clone + Send + Sync`, one
/// allocation per call. `ReqBody` is the request body the client takes (`Full<Bytes>`),
/// `ResBody` the response body (`hyper::body::Incoming` for a `hyper_util` client). Make one
/// with `BoxedClient::new(stack)`; the stack must be `Clone + Send + Sync + 'static` with
/// `Error = BoxError` (the tollgate outbound layers' error; after a bare client, add
/// `.map_err(BoxError::from)`).
///
/// # Example
///
/// The Transak client in axum state, called from a handler:
///
/// ```
/// # #[cfg(all(feature = "headers", feature = "client-ip"))]
/// # mod example {
/// use axum::extract::State;
/// use axum::{Router, http::StatusCode, routing::post};
/// use bytes::Bytes;
/// use http::Request;
/// use http_body_util::Full;
/// use hyper::body::Incoming;
/// use hyper_util::client::legacy::Client;
/// use hyper_util::rt::TokioExecutor;
/// use tollgate::BoxedClient;
/// use tollgate::core::{BoxError, Secret};
/// use tollgate::headers::Upstream;
/// use tollgate::transak::TransakOutbound;
/// use tower::{ServiceBuilder, ServiceExt};
///
/// #[derive(Clone)]
/// struct AppState {
///     transak: BoxedClient<Full<Bytes>, Incoming>,
/// }
///
/// async fn create_widget_url(State(state): State<AppState>) -> StatusCode {
///     let request = Request::post("https://api-gateway.transak.com/api/v2/auth/session")
///         .body(Full::new(Bytes::from_static(b"{}")))
///         .unwrap_or_default();
///     // Cheap: the layers and the client share their state through `Arc`s.
///     match state.transak.clone().oneshot(request).await {
///         Ok(response) => response.status(),
///         Err(_) => StatusCode::BAD_GATEWAY,
///     }
/// }
///
/// pub fn app() -> Result<Router, BoxError> {
///     let transak = BoxedClient::new(
///         ServiceBuilder::new()
///             .layer(TransakOutbound::new(
///                 Upstream::transak(),
///                 Secret::from_env("TRANSAK_API_KEY")?,
///                 Secret::from_env("TRANSAK_ACCESS_TOKEN")?,
///             )?)
///             .service(Client::builder(TokioExecutor::new()).build_http()),
///     );
///     Ok(Router::new()
///         .route("/api/widget-url", post(create_widget_url))
///         .with_state(AppState { transak }))
/// }
/// # }
/// # fn main() {}
/// ```
pub type BoxedClient<ReqBody, ResBody> = tower::util::BoxCloneSyncService<
    http::Request<ReqBody>,
    http::Response<ResBody>,
    tollgate_core::BoxError,
>;

mod sealed {
    pub trait Sealed<T> {}
    impl<L> Sealed<L> for tower::ServiceBuilder<L> {}
}

/// Extension methods for [`ServiceBuilder`]: one per tollgate layer, each behind the feature
/// of its crate, each taking that layer's configuration as tower-http's do.
///
/// A method takes what the layer's constructor takes (`resolve_client_ip(source)` is
/// `.layer(ResolveClientIpLayer::new(source))`) and, where that constructor can meet wrong
/// configuration, returns its `Result`, so a stack that builds is a stack that works. The
/// hygiene methods take their rule set (`HeaderHygieneLayer::server_to_server()`,
/// `HeaderHygieneLayer::only(..)`). For a layer with more settings than its constructor
/// takes, build it and add it with [`ServiceBuilder::layer`].
///
/// The methods add the layer exactly as [`ServiceBuilder::layer`] would: the first one called
/// is the outermost. This trait is sealed: it is implemented for `ServiceBuilder` only.
///
/// # Example
///
/// ```
/// # #[cfg(all(feature = "origin", feature = "client-ip"))]
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use tollgate::ServiceBuilderExt;
/// use tollgate::client_ip::ClientIpSource;
/// use tower::ServiceBuilder;
///
/// let inbound = ServiceBuilder::new()
///     .origin_allowlist(["https://app.example.com"])?
///     .resolve_client_ip(ClientIpSource::cloudflare())
///     .ip_allowlist("203.0.113.0/24".parse()?);
/// # let _ = inbound;
/// # Ok(())
/// # }
/// # #[cfg(not(all(feature = "origin", feature = "client-ip")))]
/// # fn main() {}
/// ```
pub trait ServiceBuilderExt<L>: sealed::Sealed<L> + Sized {
    /// Refuses foreign origins and writes exact CORS headers for `origins`
    /// ([`OriginAllowlistLayer::new`]). Put it outermost.
    #[cfg(feature = "origin")]
    #[cfg_attr(docsrs, doc(cfg(feature = "origin")))]
    fn origin_allowlist<I>(
        self,
        origins: I,
    ) -> Result<ServiceBuilder<Stack<OriginAllowlistLayer, L>>, crate::origin::ConfigError>
    where
        I: IntoIterator,
        I::Item: Into<String>;

    /// Derives the end user's IP from `source` and inserts it as a `ClientIp` extension
    /// ([`ResolveClientIpLayer::new`]).
    #[cfg(feature = "client-ip")]
    #[cfg_attr(docsrs, doc(cfg(feature = "client-ip")))]
    fn resolve_client_ip(
        self,
        source: ClientIpSource,
    ) -> ServiceBuilder<Stack<ResolveClientIpLayer, L>>;

    /// Refuses requests that did not arrive over HTTPS: 403 `https_required`
    /// ([`RequireHttpsLayer::new`]; HTTPS is known from the `HttpsConnection` marker a TLS
    /// accept loop inserts). To trust a proxy's `X-Forwarded-Proto`, redirect or add HSTS,
    /// build the layer and add it with `ServiceBuilder::layer`. Place it outermost.
    #[cfg(feature = "https")]
    #[cfg_attr(docsrs, doc(cfg(feature = "https")))]
    fn require_https(self) -> ServiceBuilder<Stack<RequireHttpsLayer, L>>;

    /// Allows only client IPs inside `allowed`, 403 otherwise ([`IpAllowlistLayer::new`]).
    /// Place it inside [`resolve_client_ip`](Self::resolve_client_ip).
    #[cfg(feature = "client-ip")]
    #[cfg_attr(docsrs, doc(cfg(feature = "client-ip")))]
    fn ip_allowlist(self, allowed: IpRanges) -> ServiceBuilder<Stack<IpAllowlistLayer, L>>;

    /// Sets `x-user-ip` on outbound requests from the `ClientIp` of the request or of the
    /// inbound task, failing the call when there is none ([`ForwardUserIpLayer::new`]).
    #[cfg(feature = "client-ip")]
    #[cfg_attr(docsrs, doc(cfg(feature = "client-ip")))]
    fn forward_user_ip(self) -> ServiceBuilder<Stack<ForwardUserIpLayer, L>>;

    /// Removes browser-controlled and hop-by-hop headers from outbound requests by the rule
    /// set `rules` ([`HeaderHygieneLayer`]).
    #[cfg(feature = "headers")]
    #[cfg_attr(docsrs, doc(cfg(feature = "headers")))]
    fn header_hygiene(
        self,
        rules: HeaderHygieneLayer,
    ) -> ServiceBuilder<Stack<HeaderHygieneLayer, L>>;

    /// Removes client-supplied copies of headers the backend derives itself, by the rule set
    /// `rules` ([`InboundHygieneLayer`]).
    #[cfg(feature = "headers")]
    #[cfg_attr(docsrs, doc(cfg(feature = "headers")))]
    fn inbound_hygiene(
        self,
        rules: InboundHygieneLayer,
    ) -> ServiceBuilder<Stack<InboundHygieneLayer, L>>;

    /// Sets header `name` to `secret` on outbound requests to `upstream` only
    /// ([`SecretHeaderLayer::new`]).
    #[cfg(feature = "headers")]
    #[cfg_attr(docsrs, doc(cfg(feature = "headers")))]
    fn secret_header(
        self,
        name: http::HeaderName,
        secret: crate::core::Secret,
        upstream: Upstream,
    ) -> Result<ServiceBuilder<Stack<SecretHeaderLayer, L>>, crate::headers::ConfigError>;

    /// Sets header `name` to the token `provider` fetches, on outbound requests to `upstream`
    /// only ([`TokenHeaderLayer::new`]).
    #[cfg(feature = "headers")]
    #[cfg_attr(docsrs, doc(cfg(feature = "headers")))]
    fn token_header(
        self,
        name: http::HeaderName,
        provider: impl TokenProvider,
        upstream: Upstream,
    ) -> ServiceBuilder<Stack<TokenHeaderLayer, L>>;

    /// Fails outbound calls that miss one of `names` ([`RequireHeadersLayer::new`]).
    #[cfg(feature = "headers")]
    #[cfg_attr(docsrs, doc(cfg(feature = "headers")))]
    fn require_headers<I>(self, names: I) -> ServiceBuilder<Stack<RequireHeadersLayer, L>>
    where
        I: IntoIterator<Item = http::HeaderName>;

    /// Signs outbound requests to `upstream` with `scheme` and the signing key of `ring`
    /// ([`SignRequestLayer::new`]).
    #[cfg(feature = "signature")]
    #[cfg_attr(docsrs, doc(cfg(feature = "signature")))]
    fn sign_requests(
        self,
        scheme: impl Scheme,
        ring: impl Into<KeyRing>,
        upstream: Upstream,
    ) -> Result<ServiceBuilder<Stack<SignRequestLayer, L>>, crate::signature::ConfigError>;

    /// Verifies the signature of inbound requests and webhooks with `scheme` against the keys
    /// of `ring` ([`VerifySignatureLayer::new`]).
    #[cfg(feature = "signature")]
    #[cfg_attr(docsrs, doc(cfg(feature = "signature")))]
    fn verify_signature(
        self,
        scheme: impl Scheme,
        ring: impl Into<KeyRing>,
    ) -> Result<ServiceBuilder<Stack<VerifySignatureLayer, L>>, crate::signature::ConfigError>;

    /// Claims each verified message once in `store` ([`ReplayGuardLayer::new`]). Place it
    /// inside [`verify_signature`](Self::verify_signature).
    #[cfg(feature = "replay")]
    #[cfg_attr(docsrs, doc(cfg(feature = "replay")))]
    fn replay_guard(self, store: impl NonceStore) -> ServiceBuilder<Stack<ReplayGuardLayer, L>>;

    /// Adds Tranzila's four authentication headers to outbound requests to `upstream`
    /// ([`TranzilaSigningLayer::new`]).
    #[cfg(feature = "tranzila")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tranzila")))]
    fn tranzila_signing(
        self,
        credentials: TranzilaCredentials,
        upstream: Upstream,
    ) -> Result<ServiceBuilder<Stack<TranzilaSigningLayer, L>>, crate::tranzila::ConfigError>;

    /// Verifies Tranzila-style inbound calls against `secrets`, claiming each nonce once in
    /// `store` ([`TranzilaVerifyLayer::new`]).
    #[cfg(feature = "tranzila")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tranzila")))]
    fn tranzila_verify(
        self,
        secrets: impl AppKeySecrets,
        store: impl NonceStore,
    ) -> Result<ServiceBuilder<Stack<TranzilaVerifyLayer, L>>, crate::tranzila::ConfigError>;
}

impl<L> ServiceBuilderExt<L> for ServiceBuilder<L> {
    #[cfg(feature = "origin")]
    fn origin_allowlist<I>(
        self,
        origins: I,
    ) -> Result<ServiceBuilder<Stack<OriginAllowlistLayer, L>>, crate::origin::ConfigError>
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        Ok(self.layer(OriginAllowlistLayer::new(origins)?))
    }

    #[cfg(feature = "client-ip")]
    fn resolve_client_ip(
        self,
        source: ClientIpSource,
    ) -> ServiceBuilder<Stack<ResolveClientIpLayer, L>> {
        self.layer(ResolveClientIpLayer::new(source))
    }

    #[cfg(feature = "https")]
    fn require_https(self) -> ServiceBuilder<Stack<RequireHttpsLayer, L>> {
        self.layer(RequireHttpsLayer::new())
    }

    #[cfg(feature = "client-ip")]
    fn ip_allowlist(self, allowed: IpRanges) -> ServiceBuilder<Stack<IpAllowlistLayer, L>> {
        self.layer(IpAllowlistLayer::new(allowed))
    }

    #[cfg(feature = "client-ip")]
    fn forward_user_ip(self) -> ServiceBuilder<Stack<ForwardUserIpLayer, L>> {
        self.layer(ForwardUserIpLayer::new())
    }

    #[cfg(feature = "headers")]
    fn header_hygiene(
        self,
        rules: HeaderHygieneLayer,
    ) -> ServiceBuilder<Stack<HeaderHygieneLayer, L>> {
        self.layer(rules)
    }

    #[cfg(feature = "headers")]
    fn inbound_hygiene(
        self,
        rules: InboundHygieneLayer,
    ) -> ServiceBuilder<Stack<InboundHygieneLayer, L>> {
        self.layer(rules)
    }

    #[cfg(feature = "headers")]
    fn secret_header(
        self,
        name: http::HeaderName,
        secret: crate::core::Secret,
        upstream: Upstream,
    ) -> Result<ServiceBuilder<Stack<SecretHeaderLayer, L>>, crate::headers::ConfigError> {
        Ok(self.layer(SecretHeaderLayer::new(name, secret, upstream)?))
    }

    #[cfg(feature = "headers")]
    fn token_header(
        self,
        name: http::HeaderName,
        provider: impl TokenProvider,
        upstream: Upstream,
    ) -> ServiceBuilder<Stack<TokenHeaderLayer, L>> {
        self.layer(TokenHeaderLayer::new(name, provider, upstream))
    }

    #[cfg(feature = "headers")]
    fn require_headers<I>(self, names: I) -> ServiceBuilder<Stack<RequireHeadersLayer, L>>
    where
        I: IntoIterator<Item = http::HeaderName>,
    {
        self.layer(RequireHeadersLayer::new(names))
    }

    #[cfg(feature = "signature")]
    fn sign_requests(
        self,
        scheme: impl Scheme,
        ring: impl Into<KeyRing>,
        upstream: Upstream,
    ) -> Result<ServiceBuilder<Stack<SignRequestLayer, L>>, crate::signature::ConfigError> {
        Ok(self.layer(SignRequestLayer::new(scheme, ring, upstream)?))
    }

    #[cfg(feature = "signature")]
    fn verify_signature(
        self,
        scheme: impl Scheme,
        ring: impl Into<KeyRing>,
    ) -> Result<ServiceBuilder<Stack<VerifySignatureLayer, L>>, crate::signature::ConfigError> {
        Ok(self.layer(VerifySignatureLayer::new(scheme, ring)?))
    }

    #[cfg(feature = "replay")]
    fn replay_guard(self, store: impl NonceStore) -> ServiceBuilder<Stack<ReplayGuardLayer, L>> {
        self.layer(ReplayGuardLayer::new(store))
    }

    #[cfg(feature = "tranzila")]
    fn tranzila_signing(
        self,
        credentials: TranzilaCredentials,
        upstream: Upstream,
    ) -> Result<ServiceBuilder<Stack<TranzilaSigningLayer, L>>, crate::tranzila::ConfigError> {
        Ok(self.layer(TranzilaSigningLayer::new(credentials, upstream)?))
    }

    #[cfg(feature = "tranzila")]
    fn tranzila_verify(
        self,
        secrets: impl AppKeySecrets,
        store: impl NonceStore,
    ) -> Result<ServiceBuilder<Stack<TranzilaVerifyLayer, L>>, crate::tranzila::ConfigError> {
        Ok(self.layer(TranzilaVerifyLayer::new(secrets, store)?))
    }
}
