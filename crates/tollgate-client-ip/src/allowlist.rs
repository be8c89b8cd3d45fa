//! [`IpAllowlistLayer`]: only let registered client IPs through.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Extensions, Request, Response};
use tollgate_core::rejection::code;
use tollgate_core::{Rejection, RejectionResponder, ResponseBody};
use tower_layer::Layer;
use tower_service::Service;

use crate::future::{IpAllowlistFuture, call_or_reject};
use crate::handle::Ranges;
use crate::{ClientIp, ExtractError, IpRanges, IpRangesHandle, PeerAddr};

#[derive(Clone)]
struct Config {
    allowed: Ranges,
    responder: RejectionResponder,
}

/// Lets through only requests whose client IP is inside the allowed ranges; others get 403
/// `ip_not_allowed` (`{"error":{"code":"ip_not_allowed","message":"client IP is not allowed"}}`).
///
/// The IP is the [`ClientIp`] extension (set by an outer
/// [`ResolveClientIpLayer`](crate::ResolveClientIpLayer)), else the socket peer ([`PeerAddr`],
/// axum's `ConnectInfo`, tonic's `TcpConnectInfo`) when no `ResolveClientIpLayer` ran. When
/// neither is present the server is wired wrong: 500 `client_ip_misconfigured`.
///
/// # Security considerations
///
/// When an outer `ResolveClientIpLayer` set to
/// [`continue_on_failure`](crate::ResolveClientIpLayer::continue_on_failure) found no client
/// IP (its [`ExtractError`] is in the request's extensions), the peer is not judged: it may
/// be a trusted proxy, whose address would otherwise pass an allowlist of internal networks.
/// The request is refused as the `ResolveClientIpLayer` would have refused it: 400
/// `invalid_client_ip`, or 500 `client_ip_misconfigured` when no peer address reached it.
///
/// ```
/// use std::convert::Infallible;
/// use http::{Request, Response, StatusCode};
/// use tollgate_client_ip::{IpAllowlistLayer, PeerAddr};
/// use tower::{ServiceBuilder, ServiceExt, service_fn};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let service = ServiceBuilder::new()
///     .layer(IpAllowlistLayer::new("192.0.2.0/24".parse().unwrap()))
///     .service(service_fn(|_: Request<()>| async { Ok::<_, Infallible>(Response::new(())) }));
///
/// let mut request = Request::new(());
/// request.extensions_mut().insert(PeerAddr::new("198.51.100.1:3000".parse().unwrap()));
/// let response = service.oneshot(request).await.unwrap();
/// assert_eq!(response.status(), StatusCode::FORBIDDEN);
/// # });
/// ```
#[derive(Clone)]
#[must_use]
pub struct IpAllowlistLayer {
    config: Arc<Config>,
}

impl IpAllowlistLayer {
    /// Allows only client IPs inside `allowed`.
    pub fn new(allowed: IpRanges) -> Self {
        Self::with_ranges(Ranges::Fixed(allowed))
    }

    /// Allows only client IPs inside the ranges `allowed` holds when each request arrives:
    /// [`store`](IpRangesHandle::store) new ranges to change the allowlist of a running
    /// service. Each request loads the handle once; a stored allowlist applies from the next
    /// request on.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use http::{Request, Response, StatusCode};
    /// use tollgate_client_ip::{IpAllowlistLayer, IpRangesHandle, PeerAddr};
    /// use tower::{Service, ServiceBuilder, ServiceExt, service_fn};
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let allowed = IpRangesHandle::new("192.0.2.0/24".parse().unwrap());
    /// let service = ServiceBuilder::new()
    ///     .layer(IpAllowlistLayer::with_handle(allowed.clone()))
    ///     .service(service_fn(|_: Request<()>| async { Ok::<_, Infallible>(Response::new(())) }));
    /// let from = |peer: &str| {
    ///     let mut request = Request::new(());
    ///     request.extensions_mut().insert(PeerAddr::new(peer.parse().unwrap()));
    ///     request
    /// };
    /// let status = service.clone().oneshot(from("198.51.100.1:3000")).await.unwrap().status();
    /// assert_eq!(status, StatusCode::FORBIDDEN);
    /// allowed.store("192.0.2.0/24, 198.51.100.0/24".parse().unwrap());
    /// let status = service.oneshot(from("198.51.100.1:3000")).await.unwrap().status();
    /// assert_eq!(status, StatusCode::OK);
    /// # });
    /// ```
    pub fn with_handle(allowed: IpRangesHandle) -> Self {
        Self::with_ranges(Ranges::new(allowed))
    }

    fn with_ranges(allowed: Ranges) -> Self {
        Self {
            config: Arc::new(Config {
                allowed,
                responder: RejectionResponder::json(),
            }),
        }
    }

    /// Replace the rejection response (JSON by default): a [`RejectionResponder`] or a
    /// closure `Fn(&Rejection) -> Response<Bytes>`.
    pub fn on_rejection(mut self, responder: impl Into<RejectionResponder>) -> Self {
        Arc::make_mut(&mut self.config).responder = responder.into();
        self
    }

    /// The allowed ranges now (for a handle, the version current at this call).
    pub fn allowed(&self) -> Arc<IpRanges> {
        match &self.config.allowed {
            Ranges::Fixed(ranges) => Arc::new(ranges.clone()),
            Ranges::Live(handle) => handle.load_full(),
        }
    }
}

impl fmt::Debug for IpAllowlistLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IpAllowlistLayer")
            .field("allowed", &self.config.allowed)
            .field("responder", &self.config.responder)
            .finish()
    }
}

impl<S> Layer<S> for IpAllowlistLayer {
    type Service = IpAllowlist<S>;

    fn layer(&self, inner: S) -> Self::Service {
        IpAllowlist {
            inner,
            config: Arc::clone(&self.config),
        }
    }
}

/// The service of [`IpAllowlistLayer`]: calls the inner service for allowed client IPs and
/// answers the refusal itself for the others.
#[derive(Clone)]
#[must_use]
pub struct IpAllowlist<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S> IpAllowlist<S> {
    /// Wraps `inner` with the layer's behaviour.
    pub fn new(inner: S, layer: &IpAllowlistLayer) -> Self {
        layer.layer(inner)
    }

    /// An [`IpAllowlistLayer`] allowing `allowed` (the same as [`IpAllowlistLayer::new`]).
    pub fn layer(allowed: IpRanges) -> IpAllowlistLayer {
        IpAllowlistLayer::new(allowed)
    }

    tollgate_core::__inner_service_accessors!();
}

impl<S: fmt::Debug> fmt::Debug for IpAllowlist<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IpAllowlist")
            .field("inner", &self.inner)
            .field("allowed", &self.config.allowed)
            .finish()
    }
}

impl Config {
    /// Whether the request whose extensions these are may pass: `Err` with the refusal.
    fn verdict(&self, extensions: &Extensions) -> Result<(), Rejection> {
        // The reason for a missing `ClientIp` is looked up only when there is none.
        let ip = match extensions.get::<ClientIp>() {
            Some(ip) => Some(ip.ip()),
            None => match extensions.get::<ExtractError>() {
                // A continuing ResolveClientIpLayer found no client IP: the peer may be a
                // trusted proxy, never judge it in the client's place.
                Some(err) => {
                    tracing::debug!(
                        target: "tollgate",
                        "IP allowlist refused a request without a client IP: {err}"
                    );
                    return Err(err.to_rejection());
                }
                None => PeerAddr::find(extensions).map(|addr| addr.ip()),
            },
        };
        match ip {
            Some(ip) if self.allowed.trust(|allowed| allowed.contains(ip)) => Ok(()),
            Some(_) => Err(Rejection::from_code(code::IP_NOT_ALLOWED)),
            None => {
                tracing::error!(
                    target: "tollgate",
                    "IP allowlist misconfigured: neither a ClientIp nor a peer address reached it: {}",
                    crate::error::MISSING_PEER_HINT
                );
                Err(Rejection::from_code(code::CLIENT_IP_MISCONFIGURED))
            }
        }
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for IpAllowlist<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = IpAllowlistFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let verdict = self.config.verdict(request.extensions());
        call_or_reject(
            &mut self.inner,
            request,
            verdict,
            &self.config.responder,
            tollgate_core::metrics::LayerName::IpAllowlist,
        )
    }
}
