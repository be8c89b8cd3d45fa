//! [`SecretHeaderLayer`]: a partner key or token from a [`Secret`], sent only upstream.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{HeaderName, HeaderValue, Request};
use tollgate_core::{BoxError, Secret, SecretError};
use tower_layer::Layer;
use tower_service::Service;

use crate::future::OutboundFuture;
use crate::upstream::{self, Upstream};
use crate::{HeaderError, InjectedHeaders};

/// Transak's partner API key header.
pub const X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");

/// Transak's partner access token header.
pub const ACCESS_TOKEN: HeaderName = HeaderName::from_static("access-token");

#[derive(Clone)]
struct Config {
    name: HeaderName,
    /// Built once from the secret; `None` when the secret is not a valid header value.
    value: Option<HeaderValue>,
    upstreams: Vec<Upstream>,
}

/// Sets a secret header (`x-api-key`, `access-token`, ...) on every outbound request, and
/// refuses to send it anywhere but the configured [`Upstream`]s.
///
/// Transak's rule: every call carries the partner key `x-api-key` from the backend, never
/// from the browser. The header is *inserted*: any value the caller put there is replaced,
/// never duplicated. The value is marked sensitive, so HTTP/2 sends it as a never-indexed
/// field and `Debug` of the request prints `Sensitive`. The header's name is recorded in
/// the request's [`InjectedHeaders`], so [`HeaderHygiene`](crate::HeaderHygiene) never strips
/// it, whichever way the two layers are stacked.
///
/// The request URI must go to a configured upstream (scheme, host and port; see
/// [`Upstream::matches`]); otherwise the call fails with
/// [`HeaderError::UpstreamNotAllowed`] and the inner service is not called, so a redirect or
/// a wrong base URL cannot leak the key. A `Host` header that disagrees with the URI (or
/// several `Host` headers) fails the call with [`HeaderError::AmbiguousTarget`]. With no upstream configured every call fails with
/// [`HeaderError::UpstreamNotConfigured`]. A secret that is not a valid header value fails
/// every call with [`HeaderError::InvalidSecret`]. A blank secret (empty or only whitespace)
/// is refused when the layer is built.
///
/// For a token that is refreshed (Transak's partner access token), use
/// [`TokenHeaderLayer`](crate::TokenHeaderLayer).
///
/// # Security considerations
///
/// **A blank secret is refused when the layer is built.** [`SecretHeaderLayer::new`] (and
/// [`api_key`](SecretHeaderLayer::api_key), [`access_token`](SecretHeaderLayer::access_token))
/// fail with [`SecretError::Blank`] when the secret is blank (empty, all zero bytes or only invisible characters)
/// ([`Secret::is_blank`], tollgate-core's one rule): a blank `x-api-key` is one anyone can
/// send, and usually means the key was never configured (`TRANSAK_API_KEY=`). No layer exists
/// that would send it, so no request ever carries it.
///
/// Put this layer *inside* (after) any layer that follows redirects, so every hop is checked.
/// The client's error type becomes [`BoxError`]; read the reason with
/// `error.downcast_ref::<HeaderError>()`.
///
/// ```
/// use http::Request;
/// use tollgate_core::{BoxError, Secret, SecretError};
/// use tollgate_headers::{HeaderError, SecretHeaderLayer, Upstream};
/// use tower::{ServiceBuilder, ServiceExt, service_fn};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let client = ServiceBuilder::new()
///     .layer(SecretHeaderLayer::api_key(Secret::from_string("pk_live_123")).unwrap().upstream(Upstream::transak()))
///     .service(service_fn(|request: Request<()>| async move {
///         Ok::<_, BoxError>(request.headers().clone())
///     }));
///
/// let ok = Request::get("https://api-gateway.transak.com/partners/api/v2/orders").body(()).unwrap();
/// let sent = client.clone().oneshot(ok).await.unwrap();
/// assert_eq!(sent["x-api-key"], "pk_live_123");
/// assert!(sent["x-api-key"].is_sensitive());
///
/// let wrong = Request::get("https://attacker.example/").body(()).unwrap();
/// let error = client.oneshot(wrong).await.unwrap_err();
/// assert!(matches!(
///     error.downcast_ref::<HeaderError>(),
///     Some(HeaderError::UpstreamNotAllowed { .. })
/// ));
/// # }
/// ```
#[derive(Clone)]
#[must_use]
pub struct SecretHeaderLayer {
    config: Arc<Config>,
}

impl SecretHeaderLayer {
    /// Sets the header `name` from `secret`. Add the upstream with
    /// [`upstream`](SecretHeaderLayer::upstream).
    ///
    /// # Errors
    ///
    /// [`SecretError::Blank`] (naming the header, never the value) when `secret` is empty or
    /// only whitespace ([`Secret::is_blank`]).
    ///
    /// ```
    /// use tollgate_core::{Secret, SecretError};
    /// use tollgate_headers::SecretHeaderLayer;
    ///
    /// let err = SecretHeaderLayer::api_key(Secret::from_string(" ")).unwrap_err();
    /// assert!(matches!(err, SecretError::Blank { .. }));
    /// assert_eq!(err.to_string(), "the secret for the `x-api-key` header is empty, all zero bytes or only whitespace");
    /// ```
    pub fn new(name: HeaderName, secret: Secret) -> Result<Self, SecretError> {
        secret.check_usable(&format!("the `{name}` header"))?;
        Ok(Self {
            config: Arc::new(Config {
                name,
                value: secret.to_header_value().ok(),
                upstreams: Vec::new(),
            }),
        })
    }

    /// Sets `x-api-key` (Transak's partner API key).
    ///
    /// # Errors
    ///
    /// As [`SecretHeaderLayer::new`]: a blank secret.
    pub fn api_key(secret: Secret) -> Result<Self, SecretError> {
        Self::new(X_API_KEY, secret)
    }

    /// Sets `access-token` (Transak's partner access token, when it is configured as a
    /// fixed value; see [`TokenHeaderLayer`](crate::TokenHeaderLayer) for one that refreshes).
    ///
    /// # Errors
    ///
    /// As [`SecretHeaderLayer::new`]: a blank secret.
    pub fn access_token(secret: Secret) -> Result<Self, SecretError> {
        Self::new(ACCESS_TOKEN, secret)
    }

    /// Allows sending the secret to `upstream`. Call it once per allowed upstream.
    pub fn upstream(mut self, upstream: Upstream) -> Self {
        let config = Arc::make_mut(&mut self.config);
        if !config.upstreams.contains(&upstream) {
            config.upstreams.push(upstream);
        }
        self
    }

    /// The header this layer sets.
    pub fn header_name(&self) -> &HeaderName {
        &self.config.name
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretHeader")
            .field("name", &self.name)
            .field(
                "value",
                &if self.value.is_some() {
                    tollgate_core::REDACTED
                } else {
                    "invalid"
                },
            )
            .field("upstreams", &self.upstreams)
            .finish()
    }
}

impl fmt::Debug for SecretHeaderLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SecretHeaderLayer")
            .field(&self.config)
            .finish()
    }
}

impl<S> Layer<S> for SecretHeaderLayer {
    type Service = SecretHeader<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SecretHeader {
            inner,
            config: Arc::clone(&self.config),
        }
    }
}

/// The service of [`SecretHeaderLayer`].
#[derive(Clone)]
#[must_use]
pub struct SecretHeader<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S> SecretHeader<S> {
    /// Wraps `inner` with the layer's configuration.
    pub fn new(inner: S, layer: &SecretHeaderLayer) -> Self {
        layer.layer(inner)
    }

    /// A layer setting `name` from `secret` (same as [`SecretHeaderLayer::new`]).
    ///
    /// # Errors
    ///
    /// As [`SecretHeaderLayer::new`]: a blank secret.
    pub fn layer(name: HeaderName, secret: Secret) -> Result<SecretHeaderLayer, SecretError> {
        SecretHeaderLayer::new(name, secret)
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: fmt::Debug> fmt::Debug for SecretHeader<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretHeader")
            .field("inner", &self.inner)
            .field("config", &self.config)
            .finish()
    }
}

impl<S, B> Service<Request<B>> for SecretHeader<S>
where
    S: Service<Request<B>>,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = OutboundFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let name = &self.config.name;
        if let Err(error) = upstream::check(
            &self.config.upstreams,
            name,
            request.uri(),
            request.headers(),
        ) {
            return OutboundFuture::refused(error);
        }
        let Some(value) = self.config.value.clone() else {
            return OutboundFuture::refused(HeaderError::InvalidSecret {
                header: name.clone(),
            });
        };
        insert_secret(&mut request, name, value);
        OutboundFuture::inner(self.inner.call(request))
    }
}

/// Inserts `value` (sensitive) under `name`, records it, and logs the header's name.
pub(crate) fn insert_secret<B>(
    request: &mut Request<B>,
    name: &HeaderName,
    mut value: HeaderValue,
) {
    value.set_sensitive(true);
    let replaced = request.headers_mut().insert(name.clone(), value).is_some();
    InjectedHeaders::record(request.extensions_mut(), name.clone());
    tracing::debug!(
        target: "tollgate",
        layer = "secret_header",
        header = %name,
        replaced,
        "secret header set"
    );
}
