//! [`ForwardUserIpLayer`]: send the end user's IP as `x-user-ip` on outbound calls.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{HeaderName, Request};
use tollgate_core::BoxError;
use tower_layer::Layer;
use tower_service::Service;

use crate::future::ForwardUserIpFuture;
use crate::{ClientIp, MissingClientIp};

/// The header Transak requires on every backend call.
pub const X_USER_IP: HeaderName = HeaderName::from_static("x-user-ip");

/// Sets `x-user-ip` on each outbound request (for a `hyper_util` client or any
/// `Service<Request<B>>`) from the end user's [`ClientIp`].
///
/// The IP comes from the outbound request's extensions first, then (feature `task-local`, on
/// by default) from the task-local scope the inbound
/// [`ResolveClientIpLayer`](crate::ResolveClientIpLayer) opened around the handler
/// ([`ClientIp::current`]; see there what does not propagate, such
/// as spawned tasks). Without feature `task-local`, put the inbound request's [`ClientIp`]
/// into the outbound request's extensions. The header is *inserted*: any `x-user-ip` already
/// on the request (for example copied from the browser's request) is replaced. When there is
/// no client IP the call fails with [`MissingClientIp`] (boxed into [`BoxError`]) and nothing
/// is sent; the layer never falls back to any address of its own (a connection's peer may be
/// a trusted proxy).
///
/// ```
/// use std::convert::Infallible;
/// use http::{Request, Response};
/// use tollgate_client_ip::{ClientIp, ForwardUserIpLayer, IpOrigin, MissingClientIp};
/// use tower::{ServiceBuilder, ServiceExt, service_fn};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// // Stands in for a `hyper_util` client.
/// let provider = service_fn(|request: Request<()>| async move {
///     Ok::<_, Infallible>(Response::new(request.headers()["x-user-ip"].clone()))
/// });
/// let client = ServiceBuilder::new().layer(ForwardUserIpLayer::new()).service(provider);
///
/// let mut request = Request::new(());
/// request.headers_mut().insert("x-user-ip", "6.6.6.6".parse().unwrap()); // replaced
/// request.extensions_mut().insert(ClientIp::new("203.0.113.9".parse().unwrap(), IpOrigin::Other));
/// let response = client.clone().oneshot(request).await.unwrap();
/// assert_eq!(response.body(), "203.0.113.9");
///
/// let err = client.oneshot(Request::new(())).await.unwrap_err();
/// assert!(err.downcast_ref::<MissingClientIp>().is_some());
/// # });
/// ```
#[cfg_attr(
    feature = "task-local",
    doc = "[`ClientIp::current`]: crate::ClientIp::current"
)]
#[cfg_attr(
    not(feature = "task-local"),
    doc = "[`ClientIp::current`]: crate::ClientIp"
)]
#[derive(Clone)]
#[must_use]
pub struct ForwardUserIpLayer {
    header: Arc<HeaderName>,
}

impl ForwardUserIpLayer {
    /// Sets [`X_USER_IP`].
    pub fn new() -> Self {
        Self::header(X_USER_IP)
    }

    /// Sets the client IP under another header name (for providers that name it otherwise).
    pub fn header(name: HeaderName) -> Self {
        Self {
            header: Arc::new(name),
        }
    }
}

impl Default for ForwardUserIpLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for ForwardUserIpLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ForwardUserIpLayer")
            .field("header", &self.header)
            .finish()
    }
}

impl<S> Layer<S> for ForwardUserIpLayer {
    type Service = ForwardUserIp<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ForwardUserIp {
            inner,
            header: Arc::clone(&self.header),
        }
    }
}

/// The service of [`ForwardUserIpLayer`]: sets the client IP header and calls the inner
/// service, or fails with [`MissingClientIp`] without calling it.
#[derive(Clone)]
#[must_use]
pub struct ForwardUserIp<S> {
    inner: S,
    header: Arc<HeaderName>,
}

impl<S> ForwardUserIp<S> {
    /// Wraps `inner` with the layer's behaviour.
    pub fn new(inner: S, layer: &ForwardUserIpLayer) -> Self {
        layer.layer(inner)
    }

    /// A [`ForwardUserIpLayer`] setting [`X_USER_IP`] (the same as
    /// [`ForwardUserIpLayer::new`]).
    pub fn layer() -> ForwardUserIpLayer {
        ForwardUserIpLayer::new()
    }

    tollgate_core::__inner_service_accessors!();
}

impl<S: fmt::Debug> fmt::Debug for ForwardUserIp<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ForwardUserIp")
            .field("inner", &self.inner)
            .field("header", &self.header)
            .finish()
    }
}

impl<S, B> Service<Request<B>> for ForwardUserIp<S>
where
    S: Service<Request<B>>,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ForwardUserIpFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let value = request
            .extensions()
            .get::<ClientIp>()
            .map(ClientIp::to_header_value);
        #[cfg(feature = "task-local")]
        let value = value.or_else(|| ClientIp::current().map(|ip| ip.to_header_value()));
        let Some(value) = value else {
            tracing::warn!(
                target: "tollgate",
                header = %self.header,
                "outbound request refused: no client IP"
            );
            return ForwardUserIpFuture::refused(MissingClientIp);
        };
        request
            .headers_mut()
            .insert(HeaderName::clone(&self.header), value);
        // Backend-owned: header hygiene, wherever it runs, keeps this value and removes only a
        // caller's copy.
        tollgate_core::InjectedHeaders::record(
            request.extensions_mut(),
            HeaderName::clone(&self.header),
        );
        ForwardUserIpFuture::inner(self.inner.call(request))
    }
}
