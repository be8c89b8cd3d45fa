//! [`ServiceBuilderExt`]: one method per tollgate layer on [`tower::ServiceBuilder`].

#[cfg(any(
    feature = "client-ip",
    feature = "headers",
    feature = "origin",
    feature = "replay",
    feature = "signature",
    feature = "tranzila"
))]
use tower::layer::util::Stack;

use tower::ServiceBuilder;

#[cfg(feature = "client-ip")]
use crate::client_ip::{ClientIpLayer, ClientIpSource, ForwardUserIpLayer, IpAllowlistLayer};
#[cfg(feature = "headers")]
use crate::headers::{
    HeaderHygiene, HeaderHygieneLayer, InboundHygiene, InboundHygieneLayer, RequireHeadersLayer,
    SecretHeaderLayer, TokenHeaderLayer,
};
#[cfg(feature = "origin")]
use crate::origin::OriginAllowlistLayer;
#[cfg(feature = "replay")]
use crate::replay::ReplayGuardLayer;
#[cfg(feature = "signature")]
use crate::signature::{SignRequestLayer, VerifySignatureLayer};
#[cfg(feature = "tranzila")]
use crate::tranzila::{TranzilaSigningLayer, TranzilaVerifyLayer};

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
/// of its crate.
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
/// use tollgate::client_ip::IpAllowlistLayer;
/// use tollgate::origin::OriginAllowlistLayer;
/// use tower::ServiceBuilder;
///
/// let inbound = ServiceBuilder::new()
///     .origin_allowlist(
///         OriginAllowlistLayer::builder()
///             .allow_origins(["https://app.example.com"])
///             .build()?,
///     )
///     .client_ip("cloudflare".parse()?)
///     .ip_allowlist(IpAllowlistLayer::new("203.0.113.0/24".parse()?));
/// # let _ = inbound;
/// # Ok(())
/// # }
/// # #[cfg(not(all(feature = "origin", feature = "client-ip")))]
/// # fn main() {}
/// ```
pub trait ServiceBuilderExt<L>: sealed::Sealed<L> + Sized {
    /// Refuses foreign origins and writes exact CORS headers
    /// ([`OriginAllowlistLayer`]). Put it outermost.
    #[cfg(feature = "origin")]
    fn origin_allowlist(
        self,
        layer: OriginAllowlistLayer,
    ) -> ServiceBuilder<Stack<OriginAllowlistLayer, L>>;

    /// Derives the end user's IP from `source` and inserts it as a `ClientIp` extension
    /// ([`ClientIpLayer`]).
    #[cfg(feature = "client-ip")]
    fn client_ip(self, source: ClientIpSource) -> ServiceBuilder<Stack<ClientIpLayer, L>>;

    /// Allows only client IPs inside the configured ranges, 403 otherwise
    /// ([`IpAllowlistLayer`]). Place it inside [`client_ip`](Self::client_ip).
    #[cfg(feature = "client-ip")]
    fn ip_allowlist(self, layer: IpAllowlistLayer) -> ServiceBuilder<Stack<IpAllowlistLayer, L>>;

    /// Sets `x-user-ip` on outbound requests from the `ClientIp` of the request or of the
    /// inbound task, failing the call when there is none ([`ForwardUserIpLayer`]).
    #[cfg(feature = "client-ip")]
    fn forward_user_ip(self) -> ServiceBuilder<Stack<ForwardUserIpLayer, L>>;

    /// Removes browser-controlled and hop-by-hop headers from outbound requests and
    /// substitutes backend-owned values ([`HeaderHygieneLayer`]).
    #[cfg(feature = "headers")]
    fn header_hygiene(self, hygiene: HeaderHygiene)
    -> ServiceBuilder<Stack<HeaderHygieneLayer, L>>;

    /// Removes client-supplied copies of headers the backend derives itself
    /// ([`InboundHygieneLayer`]).
    #[cfg(feature = "headers")]
    fn inbound_hygiene(
        self,
        hygiene: InboundHygiene,
    ) -> ServiceBuilder<Stack<InboundHygieneLayer, L>>;

    /// Inserts a secret header such as `x-api-key` on outbound requests
    /// ([`SecretHeaderLayer`]).
    #[cfg(feature = "headers")]
    fn secret_header(self, layer: SecretHeaderLayer)
    -> ServiceBuilder<Stack<SecretHeaderLayer, L>>;

    /// Inserts a refreshed token header such as `access-token` ([`TokenHeaderLayer`]).
    #[cfg(feature = "headers")]
    fn token_header(self, layer: TokenHeaderLayer) -> ServiceBuilder<Stack<TokenHeaderLayer, L>>;

    /// Fails outbound calls that miss one of `names` ([`RequireHeadersLayer`]).
    #[cfg(feature = "headers")]
    fn require_headers<I>(self, names: I) -> ServiceBuilder<Stack<RequireHeadersLayer, L>>
    where
        I: IntoIterator<Item = http::HeaderName>;

    /// Signs outbound requests ([`SignRequestLayer`]).
    #[cfg(feature = "signature")]
    fn sign_requests(self, layer: SignRequestLayer) -> ServiceBuilder<Stack<SignRequestLayer, L>>;

    /// Verifies the signature of inbound requests and webhooks ([`VerifySignatureLayer`]).
    #[cfg(feature = "signature")]
    fn verify_signature(
        self,
        layer: VerifySignatureLayer,
    ) -> ServiceBuilder<Stack<VerifySignatureLayer, L>>;

    /// Refuses stale timestamps and nonces seen before ([`ReplayGuardLayer`]). Place it inside
    /// [`verify_signature`](Self::verify_signature).
    #[cfg(feature = "replay")]
    fn replay_guard(self, layer: ReplayGuardLayer) -> ServiceBuilder<Stack<ReplayGuardLayer, L>>;

    /// Adds Tranzila's four authentication headers to outbound requests
    /// ([`TranzilaSigningLayer`]).
    #[cfg(feature = "tranzila")]
    fn tranzila_signing(
        self,
        layer: TranzilaSigningLayer,
    ) -> ServiceBuilder<Stack<TranzilaSigningLayer, L>>;

    /// Verifies Tranzila-style inbound calls ([`TranzilaVerifyLayer`]).
    #[cfg(feature = "tranzila")]
    fn tranzila_verify(
        self,
        layer: TranzilaVerifyLayer,
    ) -> ServiceBuilder<Stack<TranzilaVerifyLayer, L>>;
}

impl<L> ServiceBuilderExt<L> for ServiceBuilder<L> {
    #[cfg(feature = "origin")]
    fn origin_allowlist(
        self,
        layer: OriginAllowlistLayer,
    ) -> ServiceBuilder<Stack<OriginAllowlistLayer, L>> {
        self.layer(layer)
    }

    #[cfg(feature = "client-ip")]
    fn client_ip(self, source: ClientIpSource) -> ServiceBuilder<Stack<ClientIpLayer, L>> {
        self.layer(ClientIpLayer::new(source))
    }

    #[cfg(feature = "client-ip")]
    fn ip_allowlist(self, layer: IpAllowlistLayer) -> ServiceBuilder<Stack<IpAllowlistLayer, L>> {
        self.layer(layer)
    }

    #[cfg(feature = "client-ip")]
    fn forward_user_ip(self) -> ServiceBuilder<Stack<ForwardUserIpLayer, L>> {
        self.layer(ForwardUserIpLayer::new())
    }

    #[cfg(feature = "headers")]
    fn header_hygiene(
        self,
        hygiene: HeaderHygiene,
    ) -> ServiceBuilder<Stack<HeaderHygieneLayer, L>> {
        self.layer(HeaderHygieneLayer::new(hygiene))
    }

    #[cfg(feature = "headers")]
    fn inbound_hygiene(
        self,
        hygiene: InboundHygiene,
    ) -> ServiceBuilder<Stack<InboundHygieneLayer, L>> {
        self.layer(InboundHygieneLayer::new(hygiene))
    }

    #[cfg(feature = "headers")]
    fn secret_header(
        self,
        layer: SecretHeaderLayer,
    ) -> ServiceBuilder<Stack<SecretHeaderLayer, L>> {
        self.layer(layer)
    }

    #[cfg(feature = "headers")]
    fn token_header(self, layer: TokenHeaderLayer) -> ServiceBuilder<Stack<TokenHeaderLayer, L>> {
        self.layer(layer)
    }

    #[cfg(feature = "headers")]
    fn require_headers<I>(self, names: I) -> ServiceBuilder<Stack<RequireHeadersLayer, L>>
    where
        I: IntoIterator<Item = http::HeaderName>,
    {
        self.layer(RequireHeadersLayer::new(names))
    }

    #[cfg(feature = "signature")]
    fn sign_requests(self, layer: SignRequestLayer) -> ServiceBuilder<Stack<SignRequestLayer, L>> {
        self.layer(layer)
    }

    #[cfg(feature = "signature")]
    fn verify_signature(
        self,
        layer: VerifySignatureLayer,
    ) -> ServiceBuilder<Stack<VerifySignatureLayer, L>> {
        self.layer(layer)
    }

    #[cfg(feature = "replay")]
    fn replay_guard(self, layer: ReplayGuardLayer) -> ServiceBuilder<Stack<ReplayGuardLayer, L>> {
        self.layer(layer)
    }

    #[cfg(feature = "tranzila")]
    fn tranzila_signing(
        self,
        layer: TranzilaSigningLayer,
    ) -> ServiceBuilder<Stack<TranzilaSigningLayer, L>> {
        self.layer(layer)
    }

    #[cfg(feature = "tranzila")]
    fn tranzila_verify(
        self,
        layer: TranzilaVerifyLayer,
    ) -> ServiceBuilder<Stack<TranzilaVerifyLayer, L>> {
        self.layer(layer)
    }
}
