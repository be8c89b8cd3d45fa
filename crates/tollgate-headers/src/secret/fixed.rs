//! [`SecretHeaderLayer`]: a partner key or token from a [`Secret`], sent only upstream.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{HeaderName, HeaderValue, Request};
use tollgate_core::{BoxError, Secret, Upstream};
use tower_layer::Layer;
use tower_service::Service;

use super::{ACCESS_TOKEN, X_API_KEY, insert_secret, upstream};
use crate::ConfigError;
use crate::future::SecretHeaderFuture;

#[derive(Clone)]
struct Config {
    name: HeaderName,
    /// Built once from the secret, when the layer is built; sensitive.
    value: HeaderValue,
    /// Never empty: the constructor takes the first one.
    upstreams: Vec<Upstream>,
}

/// Sets a secret header (`x-api-key`, `access-token`, ...) on every outbound request, and
/// refuses to send it anywhere but the configured [`Upstream`]s.
///
/// Transak's rule: every call carries the partner key `x-api-key` from the backend, never
/// from the browser. The header is *inserted*: any value the caller put there is replaced,
/// never duplicated. The value is marked sensitive, so HTTP/2 sends it as a never-indexed
/// field and `Debug` of the request prints `Sensitive`. The header's name is recorded in
/// the request's [`InjectedHeaders`](crate::InjectedHeaders), so
/// [`HeaderHygiene`](crate::HeaderHygiene) never strips it, whichever way the two layers are
/// stacked.
///
/// The request URI must go to a configured upstream (scheme, host and port; see
/// [`Upstream::matches`]); otherwise the call fails with
/// [`HeaderError::UpstreamNotAllowed`](crate::HeaderError::UpstreamNotAllowed) and the inner
/// service is not called, so a redirect or a wrong base URL cannot leak the key. A `Host`
/// header that disagrees with the URI (or several `Host` headers) fails the call with
/// [`HeaderError::AmbiguousTarget`](crate::HeaderError::AmbiguousTarget).
///
/// Everything else is checked when the layer is built, so a layer that exists works: the
/// upstream is a constructor argument (there is no layer that sends its secret nowhere), and
/// a blank secret or one that is not a valid header value fails the constructor with a
/// [`ConfigError`].
///
/// For a token that is refreshed (Transak's partner access token), use
/// [`TokenHeaderLayer`](crate::TokenHeaderLayer).
///
/// # Security considerations
///
/// **A blank secret is refused when the layer is built.** [`SecretHeaderLayer::new`] (and
/// [`api_key`](SecretHeaderLayer::api_key), [`access_token`](SecretHeaderLayer::access_token))
/// fail with [`ConfigError::Secret`]`(`[`SecretError::Blank`](tollgate_core::SecretError::Blank)`)`
/// when the secret is blank (empty, all zero bytes or only invisible characters;
/// [`Secret::is_blank`], tollgate-core's one rule): a blank `x-api-key` is one anyone can
/// send, and usually means the key was never configured (`TRANSAK_API_KEY=`). No layer exists
/// that would send it, so no request ever carries it.
///
/// Put this layer *inside* (after) any layer that follows redirects, so every hop is checked.
/// The client's error type becomes [`BoxError`]; read the reason with
/// `error.downcast_ref::<HeaderError>()`.
///
/// ```
/// use http::Request;
/// use tollgate_core::{BoxError, Secret};
/// use tollgate_headers::{HeaderError, SecretHeaderLayer, Upstream};
/// use tower::{ServiceBuilder, ServiceExt, service_fn};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), tollgate_headers::ConfigError> {
/// let client = ServiceBuilder::new()
///     .layer(SecretHeaderLayer::api_key(Secret::from_string("pk_live_123"), Upstream::transak())?)
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
/// # Ok(())
/// # }
/// ```
///
/// A layer without an upstream cannot be written:
///
/// ```compile_fail,E0061
/// use tollgate_core::Secret;
/// use tollgate_headers::SecretHeaderLayer;
///
/// let layer = SecretHeaderLayer::api_key(Secret::from_string("pk_live_123"));
/// ```
#[derive(Clone)]
#[must_use]
pub struct SecretHeaderLayer {
    config: Arc<Config>,
}

impl SecretHeaderLayer {
    /// Sets the header `name` from `secret`, sent only to `upstream` (add more with
    /// [`upstream`](SecretHeaderLayer::upstream)).
    ///
    /// # Errors
    ///
    /// Naming the header, never the value:
    ///
    /// - [`ConfigError::Secret`] with [`SecretError::Blank`](tollgate_core::SecretError::Blank)
    ///   when `secret` is empty, all zero bytes or only whitespace ([`Secret::is_blank`]);
    /// - [`ConfigError::InvalidSecret`] when it holds bytes a header value cannot carry.
    ///
    /// ```
    /// use tollgate_core::{Secret, SecretError};
    /// use tollgate_headers::{ConfigError, SecretHeaderLayer, Upstream};
    ///
    /// let err = SecretHeaderLayer::api_key(Secret::from_string(" "), Upstream::transak()).unwrap_err();
    /// assert!(matches!(err, ConfigError::Secret(SecretError::Blank { .. })));
    /// assert_eq!(err.to_string(), "the secret for the `x-api-key` header is empty, all zero bytes or only whitespace");
    ///
    /// let err = SecretHeaderLayer::api_key(Secret::from_string("pk\n123"), Upstream::transak()).unwrap_err();
    /// assert!(matches!(err, ConfigError::InvalidSecret { .. }));
    /// ```
    pub fn new(name: HeaderName, secret: Secret, upstream: Upstream) -> Result<Self, ConfigError> {
        secret.check_usable(&format!("the `{name}` header"))?;
        let Ok(value) = secret.to_header_value() else {
            return Err(ConfigError::InvalidSecret { header: name });
        };
        Ok(Self {
            config: Arc::new(Config {
                name,
                value,
                upstreams: vec![upstream],
            }),
        })
    }

    /// Sets `x-api-key` (Transak's partner API key), sent only to `upstream`.
    ///
    /// # Errors
    ///
    /// As [`SecretHeaderLayer::new`]: a blank secret, or one that is not a valid header value.
    pub fn api_key(secret: Secret, upstream: Upstream) -> Result<Self, ConfigError> {
        Self::new(X_API_KEY, secret, upstream)
    }

    /// Sets `access-token` (Transak's partner access token, when it is configured as a
    /// fixed value; see [`TokenHeaderLayer`](crate::TokenHeaderLayer) for one that refreshes),
    /// sent only to `upstream`.
    ///
    /// # Errors
    ///
    /// As [`SecretHeaderLayer::new`]: a blank secret, or one that is not a valid header value.
    pub fn access_token(secret: Secret, upstream: Upstream) -> Result<Self, ConfigError> {
        Self::new(ACCESS_TOKEN, secret, upstream)
    }

    /// Also allows sending the secret to `upstream` (Transak's staging and production, for
    /// instance). Call it once per further upstream.
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

    /// The upstreams the secret may be sent to (never empty).
    pub fn upstreams(&self) -> &[Upstream] {
        &self.config.upstreams
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretHeader")
            .field("name", &self.name)
            .field("value", &tollgate_core::REDACTED)
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
        SecretHeader::new(inner, self)
    }
}

/// The service of [`SecretHeaderLayer`].
///
/// ```
/// use http::Request;
/// use tollgate_core::{BoxError, Secret};
/// use tollgate_headers::{SecretHeader, SecretHeaderLayer, Upstream};
/// use tower::{ServiceExt, service_fn};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), BoxError> {
/// let key = Secret::from_string("k3y");
/// let layer = SecretHeaderLayer::new("x-partner-key".parse()?, key, Upstream::transak())?;
/// let client = service_fn(|request: Request<()>| async move {
///     Ok::<_, BoxError>(request.headers().clone())
/// });
/// let client = SecretHeader::new(client, &layer);
/// let request = Request::get("https://api-gateway.transak.com/partners/api/v2/orders").body(())?;
/// assert_eq!(client.oneshot(request).await?["x-partner-key"], "k3y");
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
#[must_use]
pub struct SecretHeader<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S> SecretHeader<S> {
    /// Wraps `inner` with the configuration of `layer`.
    pub fn new(inner: S, layer: &SecretHeaderLayer) -> Self {
        Self {
            inner,
            config: Arc::clone(&layer.config),
        }
    }

    /// A layer setting `name` from `secret`, sent only to `upstream` (same as
    /// [`SecretHeaderLayer::new`]).
    ///
    /// # Errors
    ///
    /// As [`SecretHeaderLayer::new`]: a blank secret, or one that is not a valid header value.
    pub fn layer(
        name: HeaderName,
        secret: Secret,
        upstream: Upstream,
    ) -> Result<SecretHeaderLayer, ConfigError> {
        SecretHeaderLayer::new(name, secret, upstream)
    }

    tollgate_core::__inner_service_accessors!();
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
    type Future = SecretHeaderFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let config = &self.config;
        if let Err(error) = upstream::check(
            &config.upstreams,
            &config.name,
            request.uri(),
            request.headers(),
        ) {
            return SecretHeaderFuture::refused(error);
        }
        insert_secret(&mut request, &config.name, config.value.clone());
        SecretHeaderFuture::inner(self.inner.call(request))
    }
}

#[cfg(test)]
mod tests {
    use std::pin::pin;
    use std::task::Waker;

    use tower::service_fn;

    use super::*;
    use crate::HeaderError;

    /// A secret that is not a valid header value used to fail every call with
    /// `HeaderError::InvalidSecret`; now the layer is never built.
    #[test]
    fn an_invalid_header_value_fails_when_the_layer_is_built() {
        for bad in ["bad\nkey", "k\0ey", "tab\x7f"] {
            for (layer, header) in [
                (
                    SecretHeaderLayer::api_key(Secret::from_string(bad), Upstream::transak()),
                    "x-api-key",
                ),
                (
                    SecretHeaderLayer::access_token(Secret::from_string(bad), Upstream::transak()),
                    "access-token",
                ),
                (
                    SecretHeader::<()>::layer(
                        HeaderName::from_static("x-partner-key"),
                        Secret::from_string(bad),
                        Upstream::transak(),
                    ),
                    "x-partner-key",
                ),
            ] {
                let error = layer.unwrap_err();
                assert!(
                    matches!(&error, ConfigError::InvalidSecret { header: name } if name == header),
                    "{bad:?}: {error:?}"
                );
                assert_eq!(
                    error.to_string(),
                    format!("the secret for the `{header}` header is not a valid header value")
                );
                assert!(!format!("{error:?}").contains(bad));
            }
        }
    }

    #[test]
    fn more_upstreams_are_added_once_and_clones_are_copied_on_write() {
        let staging = Upstream::transak_staging();
        let layer = SecretHeaderLayer::api_key(Secret::from_string("k"), Upstream::transak())
            .unwrap()
            .upstream(staging.clone());
        let copy = layer.clone().upstream(staging.clone());
        assert_eq!(copy.upstreams(), [Upstream::transak(), staging]);
        let other = Upstream::parse("https://api.example").unwrap();
        let wider = layer.clone().upstream(other.clone());
        assert_eq!(layer.upstreams().len(), 2);
        assert_eq!(wider.upstreams().len(), 3);
        assert_eq!(wider.upstreams()[2], other);
        assert_eq!(layer.header_name(), "x-api-key");
    }

    /// Polled again after it refused, the future stays pending (tollgate's one rule).
    #[test]
    fn a_finished_refusal_stays_pending() {
        let layer =
            SecretHeaderLayer::api_key(Secret::from_string("k"), Upstream::transak()).unwrap();
        let mut service = SecretHeader::new(
            service_fn(|_: Request<()>| async { Ok::<_, BoxError>(()) }),
            &layer,
        );
        let mut cx = Context::from_waker(Waker::noop());
        let request = Request::get("https://attacker.example/").body(()).unwrap();
        let mut future = pin!(service.call(request));
        assert!(matches!(
            future.as_mut().poll(&mut cx),
            Poll::Ready(Err(error)) if error.downcast_ref::<HeaderError>().is_some()
        ));
        assert!(future.as_mut().poll(&mut cx).is_pending());
        let _: &mut _ = service.get_mut();
        let _: &_ = service.get_ref();
        let _inner = service.into_inner();
    }
}
