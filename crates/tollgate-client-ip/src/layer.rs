//! [`ClientIpLayer`]: derive the client IP of each inbound request.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use tollgate_core::{RejectionResponder, ResponseBody};
use tower_layer::Layer;
use tower_service::Service;

use crate::future::ResponseFuture;
use crate::{ClientIpSource, PeerAddr};

#[derive(Clone)]
struct Config {
    source: ClientIpSource,
    reject: bool,
    task_local: bool,
    responder: RejectionResponder,
}

/// Derives the [`ClientIp`](crate::ClientIp) of each request with a [`ClientIpSource`],
/// inserts it into the request's extensions and runs the inner service inside a task-local
/// scope holding it ([`ClientIp::current`](crate::ClientIp::current)).
///
/// The peer address comes from [`PeerAddr`], then axum's `ConnectInfo<SocketAddr>` (feature
/// `axum`), then tonic's `TcpConnectInfo` (feature `tonic`).
///
/// When no IP can be derived the layer rejects by default: 400 `invalid_client_ip` when the
/// request's headers are at fault, 500 `client_ip_misconfigured` (and an `ERROR` log line with
/// target `tollgate`) when no peer address reached the layer at all. A client's bytes never
/// cause a 500. With [`continue_on_failure`](ClientIpLayer::continue_on_failure) the request
/// goes on without a `ClientIp` instead.
///
/// ```
/// use std::convert::Infallible;
/// use std::net::SocketAddr;
/// use http::{Request, Response, StatusCode};
/// use tollgate_client_ip::{ClientIp, ClientIpLayer, ClientIpSource, PeerAddr};
/// use tower::{ServiceBuilder, ServiceExt, service_fn};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let service = ServiceBuilder::new()
///     .layer(ClientIpLayer::new("rightmost-trusted-range:x-forwarded-for:10.0.0.0/8".parse().unwrap()))
///     .service(service_fn(|request: Request<String>| async move {
///         let ip = request.extensions().get::<ClientIp>().unwrap();
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
#[derive(Clone)]
#[must_use]
pub struct ClientIpLayer {
    config: Arc<Config>,
}

impl ClientIpLayer {
    /// A layer that reads the client IP from `source` and rejects when there is none.
    pub fn new(source: ClientIpSource) -> Self {
        Self {
            config: Arc::new(Config {
                source,
                reject: true,
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

    fn config_mut(&mut self) -> &mut Config {
        Arc::make_mut(&mut self.config)
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
    /// [`MissingClientIp`](crate::MissingClientIp) (no task-local scope is opened). Handlers
    /// that read the peer themselves must do the same.
    pub fn continue_on_failure(mut self) -> Self {
        self.config_mut().reject = false;
        self
    }

    /// Reject requests without a client IP (the default).
    pub fn reject_on_failure(mut self) -> Self {
        self.config_mut().reject = true;
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
    /// future, and without it the inner future is not wrapped at all.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use http::{Request, Response, StatusCode};
    /// use tollgate_client_ip::{ClientIp, ClientIpLayer, ClientIpSource, PeerAddr};
    /// use tower::{ServiceBuilder, ServiceExt, service_fn};
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let service = ServiceBuilder::new()
    ///     .layer(ClientIpLayer::new(ClientIpSource::remote_addr()).task_local(false))
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
    pub fn task_local(mut self, enabled: bool) -> Self {
        self.config_mut().task_local = enabled;
        self
    }

    /// Replace the rejection response (JSON by default).
    pub fn on_rejection(mut self, responder: RejectionResponder) -> Self {
        self.config_mut().responder = responder;
        self
    }

    /// The source.
    pub fn source(&self) -> &ClientIpSource {
        &self.config.source
    }
}

impl<S> Layer<S> for ClientIpLayer {
    type Service = ClientIpService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ClientIpService {
            inner,
            config: Arc::clone(&self.config),
        }
    }
}

impl fmt::Debug for ClientIpLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientIpLayer")
            .field("source", &self.config.source)
            .field("reject", &self.config.reject)
            .field("responder", &self.config.responder)
            .finish()
    }
}

/// The service of [`ClientIpLayer`].
#[derive(Clone)]
#[must_use]
pub struct ClientIpService<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S> ClientIpService<S> {
    /// Wraps `inner` with the layer's behaviour.
    pub fn new(inner: S, layer: &ClientIpLayer) -> Self {
        layer.layer(inner)
    }

    /// A [`ClientIpLayer`] with `source`.
    pub fn layer(source: ClientIpSource) -> ClientIpLayer {
        ClientIpLayer::new(source)
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: fmt::Debug> fmt::Debug for ClientIpService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientIpService")
            .field("inner", &self.inner)
            .field("source", &self.config.source)
            .field("reject", &self.config.reject)
            .finish()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for ClientIpService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let peer = PeerAddr::find(request.extensions()).map(|addr| addr.ip());
        match self.config.source.extract(request.headers(), peer) {
            Ok(ip) if self.config.task_local => {
                request.extensions_mut().insert(ip.clone());
                let inner = &mut self.inner;
                let future = ip.clone().sync_scope(move || inner.call(request));
                ResponseFuture::scoped(ip.scope(future))
            }
            Ok(ip) => {
                request.extensions_mut().insert(ip);
                ResponseFuture::inner(self.inner.call(request))
            }
            Err(err) => {
                if err.is_misconfiguration() {
                    tracing::error!(
                        target: "tollgate",
                        source = %self.config.source,
                        "client IP misconfigured: {err}"
                    );
                } else {
                    tracing::debug!(
                        target: "tollgate",
                        source = %self.config.source,
                        "no client IP: {err}"
                    );
                }
                if self.config.reject {
                    ResponseFuture::rejected(self.config.responder.respond(err.to_rejection()))
                } else {
                    request.extensions_mut().insert(err);
                    ResponseFuture::inner(self.inner.call(request))
                }
            }
        }
    }
}
