//! [`OriginAllowlist`]: the service the layer produces, and the layer's `tower::Layer`
//! implementation.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::{ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_ORIGIN};
use http::{Request, Response};
use tollgate_core::ResponseBody;
use tollgate_core::metrics::{self, LayerName};
use tower_layer::Layer;
use tower_service::Service;

use crate::config::Config;
use crate::error::ConfigError;
use crate::future::OriginAllowlistFuture;
use crate::layer::OriginAllowlistLayer;
use crate::policy::{ALLOW_PRIVATE_NETWORK, Decision, append_vary_origin};

/// Enforces an origin allowlist in front of `S`; built by [`OriginAllowlistLayer`].
///
/// `call` is synchronous: the decision reads only the request line and headers, never the
/// body. A refused request never reaches `S`. Errors of `S` pass through unchanged; refusals
/// are responses (403 with tollgate's JSON by default).
///
/// ```
/// use std::convert::Infallible;
/// use bytes::Bytes;
/// use http::{Request, Response};
/// use http_body_util::Full;
/// use tower::{ServiceExt, service_fn};
/// use tollgate_origin::{OriginAllowlist, OriginAllowlistLayer};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let layer = OriginAllowlistLayer::builder()
///     .allow_origin("https://app.example.com")
///     .build()
///     .unwrap();
/// let handler = service_fn(|_req: Request<Full<Bytes>>| async {
///     Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"{}"))))
/// });
/// let service = OriginAllowlist::new(handler, &layer);
///
/// let request = Request::post("/api/session")
///     .header("origin", "https://evil.example")
///     .body(Full::default())
///     .unwrap();
/// let response = service.oneshot(request).await.unwrap();
/// assert_eq!(response.status(), 403);
/// assert_eq!(response.headers()["vary"], "Origin");
/// # });
/// ```
#[derive(Clone)]
#[must_use]
pub struct OriginAllowlist<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S> OriginAllowlist<S> {
    /// Wraps `inner` with the configuration of `layer`.
    pub fn new(inner: S, layer: &OriginAllowlistLayer) -> Self {
        Self {
            inner,
            config: Arc::clone(&layer.config),
        }
    }

    /// An [`OriginAllowlistLayer`] that allows `origins`, defaults for the rest: the same as
    /// [`OriginAllowlistLayer::new`].
    ///
    /// ```
    /// use tollgate_origin::OriginAllowlist;
    ///
    /// let layer = OriginAllowlist::<()>::layer(["https://app.example.com"]).unwrap();
    /// assert_eq!(layer.allowed_origins().len(), 1);
    /// ```
    pub fn layer<I>(origins: I) -> Result<OriginAllowlistLayer, ConfigError>
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        OriginAllowlistLayer::new(origins)
    }

    tollgate_core::__inner_service_accessors!();
}

impl<S: fmt::Debug> fmt::Debug for OriginAllowlist<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OriginAllowlist")
            .field("inner", &self.inner)
            .field("policy", &self.config.policy)
            .field("responder", &self.config.responder)
            .finish()
    }
}

impl<S> Layer<S> for OriginAllowlistLayer {
    type Service = OriginAllowlist<S>;

    fn layer(&self, inner: S) -> Self::Service {
        OriginAllowlist::new(inner, self)
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for OriginAllowlist<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = OriginAllowlistFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let config = &self.config;
        let decision =
            config
                .policy
                .decide(request.method(), request.uri().path(), request.headers());
        if !matches!(decision, Decision::Reject(_)) {
            // Let through, or an allowed preflight answered here.
            metrics::allowed(LayerName::Origin, request.extensions_mut());
        }
        match decision {
            Decision::Reject(rejection) => {
                let mut response = config.responder.refuse(LayerName::Origin, rejection);
                // A refusal never grants anything, whatever a replaced responder wrote.
                let headers = response.headers_mut();
                headers.remove(ACCESS_CONTROL_ALLOW_ORIGIN);
                headers.remove(ACCESS_CONTROL_ALLOW_CREDENTIALS);
                headers.remove(ALLOW_PRIVATE_NETWORK);
                append_vary_origin(headers);
                OriginAllowlistFuture::own(response)
            }
            Decision::Preflight {
                origin,
                private_network,
            } => OriginAllowlistFuture::own(
                config.policy.preflight_response(origin, private_network),
            ),
            Decision::Allowed(origin) => {
                let config = Arc::clone(config);
                OriginAllowlistFuture::inner(self.inner.call(request), config, Some(origin))
            }
            Decision::NoOrigin => {
                let config = Arc::clone(config);
                OriginAllowlistFuture::inner(self.inner.call(request), config, None)
            }
            Decision::Bypass => OriginAllowlistFuture::bypass(self.inner.call(request)),
        }
    }
}
