//! [`ResolveClientIpLayer`]: derive the client IP of each inbound request.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use tollgate_core::{RejectionResponder, ResponseBody};
use tower_layer::Layer;
use tower_service::Service;

use crate::future::{ResolveClientIpFuture, call_or_reject};
use crate::{ClientIp, ClientIpSource, PeerAddr};

#[derive(Clone)]
struct Config {
    source: ClientIpSource,
    reject: bool,
    #[cfg(feature = "task-local")]
    task_local: bool,
    responder: RejectionResponder,
}

/// Derives the [`ClientIp`](crate::ClientIp) of each request with a [`ClientIpSource`] and
/// inserts it into the request's extensions; with feature `task-local` (on by default) the
/// inner service also runs inside a task-local scope holding it
/// ([`ClientIp::current`]).
///
/// The peer address comes from [`PeerAddr`], then axum's `ConnectInfo<SocketAddr>` (feature
/// `axum`), then tonic's `TcpConnectInfo` (feature `tonic`).
///
/// When no IP can be derived the layer rejects by default: 400 `invalid_client_ip` when the
/// request's headers are at fault, 500 `client_ip_misconfigured` (and an `ERROR` log line with
/// target `tollgate`) when no peer address reached the layer at all. A client's bytes never
/// cause a 500. With [`continue_on_failure`](ResolveClientIpLayer::continue_on_failure) the
/// request goes on without a `ClientIp` instead.
///
/// ```
/// use std::convert::Infallible;
/// use std::net::SocketAddr;
/// use http::{Request, Response, StatusCode};
/// use tollgate_client_ip::{ClientIp, ClientIpSource, PeerAddr, ResolveClientIpLayer};
/// use tower::{ServiceBuilder, ServiceExt, service_fn};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let service = ServiceBuilder::new()
///     .layer(ResolveClientIpLayer::new("rightmost-trusted-range:x-forwarded-for:10.0.0.0/8".parse().unwrap()))
///     .service(service_fn(|request: Request<String>| async move {
///         let ip = request.extensions().get::<ClientIp>().unwrap();
///         # #[cfg(feature = "task-local")]
///         assert_eq!(ClientIp::current().as_ref(), Some(ip));
///         Ok::<_, Infallible>(Response::new(ip.to_string()))
///     }));
///
/// let mut request = Request::new(String::new());
/// request.headers_mut().insert("x-forwarded-for", "203.0.113.9".parse().unwrap());
/// request.extensions_mut().insert(PeerAddr::new("10.0.0.1:4000".parse().unwrap()));
/// let response = service.clone().oneshot(request).await.unwrap();
/// assert_eq!(response.status(), StatusCode::OK);
///
/// // No peer address: the server is wired wrong.
/// let response = service.oneshot(Request::new(String::new())).await.unwrap();
/// assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
/// # });
/// ```
///
/// # Security considerations
///
/// The source decides whom you trust; see the [deployment guide](crate#deployment-guide).
/// Put this layer outside (before) anything that uses the client IP, such as
/// [`IpAllowlistLayer`](crate::IpAllowlistLayer) or rate limits.
///
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
pub struct ResolveClientIpLayer {
    config: Arc<Config>,
}

impl ResolveClientIpLayer {
    /// A layer that reads the client IP from `source` and rejects when there is none.
    pub fn new(source: ClientIpSource) -> Self {
        Self {
            config: Arc::new(Config {
                source,
                reject: true,
                #[cfg(feature = "task-local")]
                task_local: true,
                responder: RejectionResponder::json(),
            }),
        }
    }

    /// Clients connect directly: [`ClientIpSource::remote_addr`].
    pub fn remote_addr() -> Self {
        Self::new(ClientIpSource::remote_addr())
    }

    /// Behind Cloudflare: [`ClientIpSource::cloudflare`].
    pub fn cloudflare() -> Self {
        Self::new(ClientIpSource::cloudflare())
    }

    /// Let requests without a client IP through, without a `ClientIp` extension (the failure
    /// is logged at `DEBUG`, or `ERROR` when no peer address reached the layer). The reason
    /// is inserted into the request's extensions as an [`ExtractError`](crate::ExtractError),
    /// so a later extractor can still tell the client's fault (400) from the server's (500).
    ///
    /// A failure means a source trusted the peer as its proxy (or no peer was known), so the
    /// peer is not the client either: an inner [`IpAllowlistLayer`](crate::IpAllowlistLayer)
    /// refuses such a request with the same 400 or 500 instead of judging the peer, and
    /// [`ForwardUserIpLayer`](crate::ForwardUserIpLayer) fails the outbound call with
    /// [`MissingClientIp`](crate::MissingClientIp) (no scope holding a `ClientIp` is opened). Handlers
    /// that read the peer themselves must do the same.
    ///
    /// Under another `ResolveClientIpLayer` (one for the whole router, one with a proxy-aware
    /// source on a route), a failure here also takes away what the outer layer found: its
    /// `ClientIp` extension is removed and its task-local scope is hidden (`ClientIp::current()`
    /// is `None` inside), so the allowlist
    /// and `x-user-ip` never fall back to it.
    pub fn continue_on_failure(mut self) -> Self {
        Arc::make_mut(&mut self.config).reject = false;
        self
    }

    /// Reject requests without a client IP (the default).
    pub fn reject_on_failure(mut self) -> Self {
        Arc::make_mut(&mut self.config).reject = true;
        self
    }

    /// Whether the inner service runs inside a task-local scope holding the client IP
    /// ([`ClientIp::current`](crate::ClientIp::current)); on by default.
    ///
    /// The scope is what lets [`ForwardUserIpLayer`](crate::ForwardUserIpLayer) on an
    /// outbound client find the IP without the handler passing it along. Turn it off when
    /// every consumer reads the request extension instead (axum's `ClientIp` extractor,
    /// [`IpAllowlistLayer`](crate::IpAllowlistLayer), or a handler that copies the extension
    /// into its outbound requests): the scope costs a little on every poll of the inner
    /// future, and without it the inner future is not wrapped at all. A build without the
    /// `task-local` feature never opens the scope.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use http::{Request, Response, StatusCode};
    /// use tollgate_client_ip::{ClientIp, ClientIpSource, PeerAddr, ResolveClientIpLayer};
    /// use tower::{ServiceBuilder, ServiceExt, service_fn};
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let service = ServiceBuilder::new()
    ///     .layer(ResolveClientIpLayer::new(ClientIpSource::remote_addr()).task_local(false))
    ///     .service(service_fn(|request: Request<()>| async move {
    ///         assert_eq!(ClientIp::current(), None);
    ///         let ip = request.extensions().get::<ClientIp>().unwrap();
    ///         Ok::<_, Infallible>(Response::new(ip.to_string()))
    ///     }));
    ///
    /// let mut request = Request::new(());
    /// request.extensions_mut().insert(PeerAddr::new("192.0.2.1:4000".parse().unwrap()));
    /// let response = service.oneshot(request).await.unwrap();
    /// assert_eq!(response.status(), StatusCode::OK);
    /// # });
    /// ```
    #[cfg(feature = "task-local")]
    #[cfg_attr(docsrs, doc(cfg(feature = "task-local")))]
    pub fn task_local(mut self, enabled: bool) -> Self {
        Arc::make_mut(&mut self.config).task_local = enabled;
        self
    }

    /// Replace the rejection response (JSON by default): a [`RejectionResponder`] or a
    /// closure `Fn(&Rejection) -> Response<Bytes>`.
    pub fn on_rejection(mut self, responder: impl Into<RejectionResponder>) -> Self {
        Arc::make_mut(&mut self.config).responder = responder.into();
        self
    }

    /// The source.
    pub fn source(&self) -> &ClientIpSource {
        &self.config.source
    }
}

impl<S> Layer<S> for ResolveClientIpLayer {
    type Service = ResolveClientIp<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ResolveClientIp {
            inner,
            config: Arc::clone(&self.config),
        }
    }
}

impl fmt::Debug for ResolveClientIpLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResolveClientIpLayer")
            .field("source", &self.config.source)
            .field("reject", &self.config.reject)
            .field("responder", &self.config.responder)
            .finish()
    }
}

/// The service of [`ResolveClientIpLayer`]: resolves the [`ClientIp`](crate::ClientIp) of
/// each request, then calls the inner service or answers the rejection itself.
#[derive(Clone)]
#[must_use]
pub struct ResolveClientIp<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S> ResolveClientIp<S> {
    /// Wraps `inner` with the layer's behaviour.
    pub fn new(inner: S, layer: &ResolveClientIpLayer) -> Self {
        layer.layer(inner)
    }

    /// A [`ResolveClientIpLayer`] with `source` (the same as [`ResolveClientIpLayer::new`]).
    pub fn layer(source: ClientIpSource) -> ResolveClientIpLayer {
        ResolveClientIpLayer::new(source)
    }

    tollgate_core::__inner_service_accessors!();
}

impl<S: fmt::Debug> fmt::Debug for ResolveClientIp<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResolveClientIp")
            .field("inner", &self.inner)
            .field("source", &self.config.source)
            .field("reject", &self.config.reject)
            .finish()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for ResolveClientIp<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResolveClientIpFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let config = &*self.config;
        let peer = PeerAddr::find(request.extensions()).map(|addr| addr.ip());
        let verdict = match config.source.extract(request.headers(), peer) {
            Ok(ip) => {
                tollgate_core::metrics::record_client_ip(&ip);
                #[cfg(feature = "task-local")]
                if config.task_local {
                    tollgate_core::metrics::allowed(
                        tollgate_core::metrics::LayerName::ClientIp,
                        request.extensions_mut(),
                    );
                    request.extensions_mut().insert(ip.clone());
                    let inner = &mut self.inner;
                    let future = ip.clone().sync_scope(move || inner.call(request));
                    return ResolveClientIpFuture::scoped(ip.scope(future));
                }
                request.extensions_mut().insert(ip);
                Ok(())
            }
            Err(err) => {
                if err.is_misconfiguration() {
                    tracing::error!(
                        target: "tollgate",
                        source = %config.source,
                        "client IP misconfigured: {err}"
                    );
                } else {
                    tracing::debug!(
                        target: "tollgate",
                        source = %config.source,
                        "no client IP: {err}"
                    );
                }
                if config.reject {
                    Err(err.to_rejection())
                } else {
                    // No client IP: an outer layer's must not stand in for it, neither in
                    // the extensions (the IP allowlist, extractors) nor in the task-local
                    // scope (`ForwardUserIpLayer`).
                    request.extensions_mut().remove::<ClientIp>();
                    request.extensions_mut().insert(err);
                    #[cfg(feature = "task-local")]
                    if ClientIp::current().is_some() {
                        tollgate_core::metrics::allowed(
                            tollgate_core::metrics::LayerName::ClientIp,
                            request.extensions_mut(),
                        );
                        let inner = &mut self.inner;
                        let future = ClientIp::sync_scope_none(move || inner.call(request));
                        return ResolveClientIpFuture::scoped(ClientIp::scope_none(future));
                    }
                    Ok(())
                }
            }
        };
        ResolveClientIpFuture::plain(call_or_reject(
            &mut self.inner,
            request,
            verdict,
            &config.responder,
            tollgate_core::metrics::LayerName::ClientIp,
        ))
    }
}
