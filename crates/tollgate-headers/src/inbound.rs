//! [`InboundHygiene`]: strip client-supplied copies of headers the backend derives itself.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Extensions, HeaderMap, HeaderName, Request};
use tower_layer::Layer;
use tower_service::Service;

use crate::names::join;

type PeerLookup = Arc<dyn Fn(&Extensions) -> Option<SocketAddr> + Send + Sync>;
type TrustPeer = Arc<dyn Fn(SocketAddr) -> bool + Send + Sync>;

/// Which client-supplied headers an inbound (server) request loses before handlers see it.
///
/// A backend derives some headers itself: the end user's IP it forwards as `x-user-ip`, the
/// partner key `x-api-key` and `access-token` it adds on outbound calls. A client that sends
/// its own copies must not have them reach a handler that might trust or forward them.
/// Forwarding headers (`X-Forwarded-*`, `Forwarded`, `X-Real-IP`) are only believable from a
/// trusted proxy, so they are stripped unless the peer is [trusted](InboundHygiene::trust_peers).
///
/// The layer never refuses a request: it removes headers and calls the inner service.
///
/// # Security considerations
///
/// Place it before (outside) any layer that reads forwarding headers. If a client-IP layer
/// reads `X-Forwarded-For` from your proxy, configure the same trusted peers here, or
/// [`allow`](InboundHygiene::allow) those headers and let that layer judge them.
///
/// ```
/// use std::net::SocketAddr;
/// use http::{HeaderMap, HeaderValue};
/// use tollgate_headers::InboundHygiene;
///
/// let hygiene = InboundHygiene::backend_derived()
///     .trust_peers(|peer: SocketAddr| peer.ip().is_loopback());
///
/// let mut headers = HeaderMap::new();
/// headers.insert("x-user-ip", HeaderValue::from_static("1.2.3.4"));
/// headers.insert("x-forwarded-for", HeaderValue::from_static("1.2.3.4"));
/// let from_proxy: SocketAddr = "127.0.0.1:50000".parse().unwrap();
/// hygiene.apply(&mut headers, Some(from_proxy));
/// assert!(headers.get("x-user-ip").is_none());
/// assert_eq!(headers["x-forwarded-for"], "1.2.3.4");
/// ```
#[derive(Clone)]
#[must_use]
pub struct InboundHygiene {
    always: Vec<HeaderName>,
    untrusted: Vec<HeaderName>,
    untrusted_prefixes: Vec<String>,
    peer: PeerLookup,
    trust: Option<TrustPeer>,
}

impl InboundHygiene {
    /// Strips `x-user-ip`, `x-api-key` and `access-token` always, and `X-Forwarded-*`,
    /// `Forwarded` and `X-Real-IP` unless the peer is trusted (no peer is, until
    /// [`trust_peers`](InboundHygiene::trust_peers)).
    pub fn backend_derived() -> Self {
        Self {
            always: ["x-user-ip", "x-api-key", "access-token"]
                .into_iter()
                .map(HeaderName::from_static)
                .collect(),
            untrusted: ["forwarded", "x-real-ip"]
                .into_iter()
                .map(HeaderName::from_static)
                .collect(),
            untrusted_prefixes: vec!["x-forwarded-".to_owned()],
            peer: Arc::new(|extensions: &Extensions| extensions.get::<SocketAddr>().copied()),
            trust: None,
        }
    }

    /// Strips nothing until told to.
    pub fn empty() -> Self {
        Self {
            always: Vec::new(),
            untrusted: Vec::new(),
            untrusted_prefixes: Vec::new(),
            ..Self::backend_derived()
        }
    }

    /// Always strips `name`.
    pub fn strip(mut self, name: HeaderName) -> Self {
        self.untrusted.retain(|n| n != name);
        if !self.always.contains(&name) {
            self.always.push(name);
        }
        self
    }

    /// Strips `name` unless the peer is trusted.
    pub fn strip_untrusted(mut self, name: HeaderName) -> Self {
        self.always.retain(|n| n != name);
        if !self.untrusted.contains(&name) {
            self.untrusted.push(name);
        }
        self
    }

    /// Stops stripping `name` (from either list).
    pub fn allow(mut self, name: HeaderName) -> Self {
        self.always.retain(|n| n != name);
        self.untrusted.retain(|n| n != name);
        self
    }

    /// Whether a peer is trusted to send forwarding headers, e.g. your reverse proxy's
    /// address. A request whose peer is unknown is untrusted.
    pub fn trust_peers(
        mut self,
        trust: impl Fn(SocketAddr) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.trust = Some(Arc::new(trust));
        self
    }

    /// Where the peer address is found in the request's extensions. By default a
    /// `SocketAddr` extension (insert it in your hyper `service_fn`); with axum, read
    /// `ConnectInfo<SocketAddr>` the same way as the wrapper type below.
    ///
    /// ```
    /// use std::net::SocketAddr;
    /// use tollgate_headers::InboundHygiene;
    ///
    /// #[derive(Clone)]
    /// struct PeerAddr(SocketAddr);
    ///
    /// let hygiene = InboundHygiene::backend_derived()
    ///     .peer_addr(|extensions| extensions.get::<PeerAddr>().map(|peer| peer.0))
    ///     .trust_peers(|peer| peer.ip().is_loopback());
    /// # let _ = hygiene;
    /// ```
    pub fn peer_addr(
        mut self,
        lookup: impl Fn(&Extensions) -> Option<SocketAddr> + Send + Sync + 'static,
    ) -> Self {
        self.peer = Arc::new(lookup);
        self
    }

    /// Strips from `headers`, given the peer's address; returns the removed names.
    pub fn apply(&self, headers: &mut HeaderMap, peer: Option<SocketAddr>) -> Vec<HeaderName> {
        let trusted = match (&self.trust, peer) {
            (Some(trust), Some(peer)) => trust(peer),
            _ => false,
        };
        let doomed: Vec<HeaderName> = headers
            .keys()
            .filter(|name| {
                self.always.contains(name)
                    || (!trusted
                        && (self.untrusted.contains(name)
                            || self
                                .untrusted_prefixes
                                .iter()
                                .any(|prefix| name.as_str().starts_with(prefix.as_str()))))
            })
            .cloned()
            .collect();
        for name in &doomed {
            headers.remove(name);
        }
        doomed
    }
}

impl fmt::Debug for InboundHygiene {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InboundHygiene")
            .field("always", &self.always)
            .field("untrusted", &self.untrusted)
            .field("untrusted_prefixes", &self.untrusted_prefixes)
            .field("trust_peers", &self.trust.is_some())
            .finish_non_exhaustive()
    }
}

impl<S> Layer<S> for InboundHygiene {
    type Service = InboundHygieneService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        InboundHygieneService::new(inner, self.clone())
    }
}

/// Applies an [`InboundHygiene`] to every inbound request before the handler sees it.
///
/// ```
/// use std::net::SocketAddr;
/// use http::{Request, header};
/// use tollgate_headers::{InboundHygiene, InboundHygieneLayer};
/// use tower::{ServiceBuilder, ServiceExt, service_fn};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let app = ServiceBuilder::new()
///     .layer(InboundHygieneLayer::new(InboundHygiene::backend_derived()))
///     .service(service_fn(|request: Request<()>| async move {
///         Ok::<_, std::convert::Infallible>(request.headers().clone())
///     }));
/// let request = Request::builder()
///     .header("x-api-key", "guess")
///     .header("x-forwarded-for", "10.0.0.1")
///     .header(header::ACCEPT, "*/*")
///     .extension("203.0.113.7:4711".parse::<SocketAddr>().unwrap())
///     .body(())
///     .unwrap();
/// let seen = app.oneshot(request).await.unwrap();
/// assert_eq!(seen.len(), 1);
/// # }
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct InboundHygieneLayer {
    hygiene: Arc<InboundHygiene>,
}

impl InboundHygieneLayer {
    /// A layer applying `hygiene`.
    pub fn new(hygiene: InboundHygiene) -> Self {
        Self {
            hygiene: Arc::new(hygiene),
        }
    }
}

impl<S> Layer<S> for InboundHygieneLayer {
    type Service = InboundHygieneService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        InboundHygieneService {
            inner,
            hygiene: Arc::clone(&self.hygiene),
        }
    }
}

/// The service of [`InboundHygieneLayer`].
#[derive(Clone, Debug)]
#[must_use]
pub struct InboundHygieneService<S> {
    inner: S,
    hygiene: Arc<InboundHygiene>,
}

impl<S> InboundHygieneService<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, hygiene: InboundHygiene) -> Self {
        Self {
            inner,
            hygiene: Arc::new(hygiene),
        }
    }

    /// A layer applying `hygiene` (same as [`InboundHygieneLayer::new`]).
    pub fn layer(hygiene: InboundHygiene) -> InboundHygieneLayer {
        InboundHygieneLayer::new(hygiene)
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

impl<S, B> Service<Request<B>> for InboundHygieneService<S>
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
        let peer = (self.hygiene.peer)(request.extensions());
        let removed = self.hygiene.apply(request.headers_mut(), peer);
        if !removed.is_empty() {
            tracing::debug!(
                target: "tollgate",
                layer = "inbound_hygiene",
                removed = %join(&removed),
                "client-supplied headers removed"
            );
        }
        self.inner.call(request)
    }
}
