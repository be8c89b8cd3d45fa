//! [`SetPeerAddrLayer`]: a fixed socket peer for testing your stack behind Cloudflare (or
//! your own proxy), so a loopback test can come "from" a proxy or CDN address.

use std::net::SocketAddr;
use std::task::{Context, Poll};

use http::Request;
use tower_layer::Layer;
use tower_service::Service;

use crate::PeerAddr;

/// Sets the socket peer of every request to one address, for testing your stack behind
/// Cloudflare or your own proxy ([guide](crate#testing-your-stack-behind-cloudflare)).
///
/// A test over loopback always has `127.0.0.1` as its peer, so it can never show what a
/// stack does with a request that arrives through Cloudflare or your own proxy. Put this
/// layer outside [`ResolveClientIpLayer`](crate::ResolveClientIpLayer) and every request
/// looks as if it came from `peer`: it inserts [`PeerAddr`] into the request extensions,
/// replacing any there, and [`PeerAddr`] is the first place the client-IP layer looks for the
/// peer (before axum's `ConnectInfo` and tonic's `TcpConnectInfo`).
///
/// # Security considerations
///
/// **Never use it in production.** With it, every request is believed to come from `peer`:
/// if `peer` is a trusted proxy, any client can choose its own IP with a forwarding header.
/// Keep it in tests (or in `#[cfg(test)]` code).
///
/// # Example
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::convert::Infallible;
///
/// use http::{Request, Response};
/// use tollgate_client_ip::{ClientIp, ResolveClientIpLayer, SetPeerAddrLayer};
/// use tower::{ServiceBuilder, ServiceExt, service_fn};
///
/// let service = ServiceBuilder::new()
///     .layer(SetPeerAddrLayer::new("10.0.0.5:443".parse().unwrap()))
///     .layer(ResolveClientIpLayer::new("header:x-real-ip:10.0.0.5".parse().unwrap()))
///     .service(service_fn(|request: Request<()>| async move {
///         let mut response = Response::new(());
///         *response.extensions_mut() = request.extensions().clone();
///         Ok::<_, Infallible>(response)
///     }));
/// let request = Request::get("/").header("x-real-ip", "203.0.113.7").body(()).unwrap();
/// let response = service.oneshot(request).await.unwrap();
/// let ip = response.extensions().get::<ClientIp>().unwrap();
/// assert_eq!(ip.ip().to_string(), "203.0.113.7");
/// # }
/// ```
///
/// The layer holds one `SocketAddr` and is `Copy`: cheaper to clone than the `Arc` the other
/// layers keep their configuration in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct SetPeerAddrLayer {
    peer: SocketAddr,
}

impl SetPeerAddrLayer {
    /// Every request gets `peer` as its socket peer.
    pub fn new(peer: SocketAddr) -> Self {
        Self { peer }
    }

    /// The peer this layer sets.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }
}

impl<S> Layer<S> for SetPeerAddrLayer {
    type Service = SetPeerAddr<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SetPeerAddr {
            inner,
            peer: self.peer,
        }
    }
}

/// The service of [`SetPeerAddrLayer`]: inserts a fixed [`PeerAddr`] and calls `inner`.
#[derive(Debug, Clone, Copy)]
#[must_use]
pub struct SetPeerAddr<S> {
    inner: S,
    peer: SocketAddr,
}

impl<S> SetPeerAddr<S> {
    /// Wraps `inner` with the layer's behaviour.
    pub fn new(inner: S, layer: &SetPeerAddrLayer) -> Self {
        layer.layer(inner)
    }

    /// A [`SetPeerAddrLayer`] setting `peer` (the same as [`SetPeerAddrLayer::new`]).
    pub fn layer(peer: SocketAddr) -> SetPeerAddrLayer {
        SetPeerAddrLayer::new(peer)
    }

    /// The peer this service sets.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    tollgate_core::__inner_service_accessors!();
}

impl<S, B> Service<Request<B>> for SetPeerAddr<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        request.extensions_mut().insert(PeerAddr::new(self.peer));
        self.inner.call(request)
    }
}
