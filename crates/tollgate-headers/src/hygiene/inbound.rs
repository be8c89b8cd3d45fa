//! [`InboundHygieneLayer`]: strip client-supplied copies of headers the backend derives itself.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Extensions, HeaderMap, HeaderName, Request};
use tower_layer::Layer;
use tower_service::Service;

use super::names::{BACKEND_DERIVED, FORWARDING, FORWARDING_PREFIX, header_names, join};

type PeerLookup = Arc<dyn Fn(&Extensions) -> Option<SocketAddr> + Send + Sync>;
type TrustPeer = Arc<dyn Fn(SocketAddr) -> bool + Send + Sync>;

/// The rules, shared by a layer, its clones and its services (copied on write).
#[derive(Clone)]
struct Rules {
    always: Vec<HeaderName>,
    untrusted: Vec<HeaderName>,
    untrusted_prefixes: Vec<String>,
    peer: PeerLookup,
    trust: Option<TrustPeer>,
}

/// Which client-supplied headers an inbound (server) request loses before handlers see it,
/// and the layer that removes them.
///
/// A backend derives some headers itself: the end user's IP it forwards as `x-user-ip`, the
/// partner key `x-api-key` and `access-token` it adds on outbound calls. A client that sends
/// its own copies must not have them reach a handler that might trust or forward them.
/// Forwarding headers (`X-Forwarded-*`, `Forwarded`, `X-Real-IP`) are only believable from a
/// trusted proxy, so they are stripped unless the peer is
/// [trusted](InboundHygieneLayer::trust_peers).
///
/// The layer never refuses a request: it removes headers, logs their names at debug level
/// (target `tollgate`) and calls the inner service.
/// [`apply`](InboundHygieneLayer::apply) runs the same rules on a `HeaderMap`, without tower.
///
/// # Security considerations
///
/// Place it before (outside) any layer that reads forwarding headers. If a client-IP layer
/// reads `X-Forwarded-For` from your proxy, configure the same trusted peers here, or
/// [`allow`](InboundHygieneLayer::allow) those headers and let that layer judge them.
///
/// ```
/// use std::net::SocketAddr;
/// use http::{HeaderMap, HeaderValue};
/// use tollgate_headers::InboundHygieneLayer;
///
/// let hygiene = InboundHygieneLayer::backend_derived()
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
///
/// As a layer in front of a handler:
///
/// ```
/// use std::net::SocketAddr;
/// use http::{Request, header};
/// use tollgate_headers::InboundHygieneLayer;
/// use tower::{ServiceBuilder, ServiceExt, service_fn};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let app = ServiceBuilder::new()
///     .layer(InboundHygieneLayer::backend_derived())
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
#[derive(Clone)]
#[must_use]
pub struct InboundHygieneLayer {
    rules: Arc<Rules>,
}

impl InboundHygieneLayer {
    /// The same as [`backend_derived`](InboundHygieneLayer::backend_derived), the preset every
    /// backend wants.
    pub fn new() -> Self {
        Self::backend_derived()
    }

    /// Strips `x-user-ip`, `x-api-key` and `access-token` always, and `X-Forwarded-*`,
    /// `Forwarded` and `X-Real-IP` unless the peer is trusted (no peer is, until
    /// [`trust_peers`](InboundHygieneLayer::trust_peers)).
    pub fn backend_derived() -> Self {
        Self {
            rules: Arc::new(Rules {
                always: header_names(&BACKEND_DERIVED),
                untrusted: header_names(&FORWARDING),
                untrusted_prefixes: vec![FORWARDING_PREFIX.to_owned()],
                peer: Arc::new(|extensions: &Extensions| extensions.get::<SocketAddr>().copied()),
                trust: None,
            }),
        }
    }

    /// Strips nothing until told to.
    pub fn empty() -> Self {
        let mut hygiene = Self::backend_derived();
        let rules = hygiene.rules_mut();
        rules.always.clear();
        rules.untrusted.clear();
        rules.untrusted_prefixes.clear();
        hygiene
    }

    /// The rules of this layer alone: copied first if a clone or a service shares them.
    fn rules_mut(&mut self) -> &mut Rules {
        Arc::make_mut(&mut self.rules)
    }

    /// Always strips `name`.
    pub fn strip(mut self, name: HeaderName) -> Self {
        let rules = self.rules_mut();
        rules.untrusted.retain(|n| n != name);
        if !rules.always.contains(&name) {
            rules.always.push(name);
        }
        self
    }

    /// Strips `name` unless the peer is trusted.
    pub fn strip_untrusted(mut self, name: HeaderName) -> Self {
        let rules = self.rules_mut();
        rules.always.retain(|n| n != name);
        if !rules.untrusted.contains(&name) {
            rules.untrusted.push(name);
        }
        self
    }

    /// Stops stripping `name` (from either list).
    pub fn allow(mut self, name: HeaderName) -> Self {
        let rules = self.rules_mut();
        rules.always.retain(|n| n != name);
        rules.untrusted.retain(|n| n != name);
        self
    }

    /// Whether a peer is trusted to send forwarding headers, e.g. your reverse proxy's
    /// address. A request whose peer is unknown is untrusted.
    pub fn trust_peers(
        mut self,
        trust: impl Fn(SocketAddr) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.rules_mut().trust = Some(Arc::new(trust));
        self
    }

    /// Where the peer address is found in the request's extensions. By default a
    /// `SocketAddr` extension (insert it in your hyper `service_fn`); with axum, read
    /// `ConnectInfo<SocketAddr>` the same way as the wrapper type below.
    ///
    /// ```
    /// use std::net::SocketAddr;
    /// use tollgate_headers::InboundHygieneLayer;
    ///
    /// #[derive(Clone)]
    /// struct PeerAddr(SocketAddr);
    ///
    /// let hygiene = InboundHygieneLayer::backend_derived()
    ///     .peer_addr(|extensions| extensions.get::<PeerAddr>().map(|peer| peer.0))
    ///     .trust_peers(|peer| peer.ip().is_loopback());
    /// # let _ = hygiene;
    /// ```
    pub fn peer_addr(
        mut self,
        lookup: impl Fn(&Extensions) -> Option<SocketAddr> + Send + Sync + 'static,
    ) -> Self {
        self.rules_mut().peer = Arc::new(lookup);
        self
    }

    /// Strips from `headers`, given the peer's address, as the layer does to each request;
    /// returns the removed names.
    pub fn apply(&self, headers: &mut HeaderMap, peer: Option<SocketAddr>) -> Vec<HeaderName> {
        self.rules.apply(headers, peer)
    }
}

impl Default for InboundHygieneLayer {
    /// [`InboundHygieneLayer::backend_derived`].
    fn default() -> Self {
        Self::new()
    }
}

impl Rules {
    fn apply(&self, headers: &mut HeaderMap, peer: Option<SocketAddr>) -> Vec<HeaderName> {
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

impl fmt::Debug for InboundHygieneLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("InboundHygieneLayer")
            .field(&self.rules)
            .finish()
    }
}

impl fmt::Debug for Rules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InboundHygiene")
            .field("always", &self.always)
            .field("untrusted", &self.untrusted)
            .field("untrusted_prefixes", &self.untrusted_prefixes)
            .field("trust_peers", &self.trust.is_some())
            .finish_non_exhaustive()
    }
}

impl<S> Layer<S> for InboundHygieneLayer {
    type Service = InboundHygiene<S>;

    fn layer(&self, inner: S) -> Self::Service {
        InboundHygiene::new(inner, self)
    }
}

/// The service of [`InboundHygieneLayer`]: removes the client-supplied headers before the
/// inner service (the handler) sees the request. Never refuses a request.
///
/// ```
/// use http::Request;
/// use tollgate_headers::{InboundHygiene, InboundHygieneLayer};
/// use tower::{ServiceExt, service_fn};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let handler = service_fn(|request: Request<()>| async move {
///     Ok::<_, std::convert::Infallible>(request.headers().contains_key("x-user-ip"))
/// });
/// let app = InboundHygiene::new(handler, &InboundHygieneLayer::backend_derived());
/// let request = Request::builder().header("x-user-ip", "6.6.6.6").body(()).unwrap();
/// assert!(!app.oneshot(request).await.unwrap());
/// # }
/// ```
#[derive(Clone)]
#[must_use]
pub struct InboundHygiene<S> {
    inner: S,
    rules: Arc<Rules>,
}

impl<S> InboundHygiene<S> {
    /// Wraps `inner` with the rules of `layer`.
    pub fn new(inner: S, layer: &InboundHygieneLayer) -> Self {
        Self {
            inner,
            rules: Arc::clone(&layer.rules),
        }
    }

    /// An [`InboundHygieneLayer`] (same as [`InboundHygieneLayer::new`]: the
    /// [`backend_derived`](InboundHygieneLayer::backend_derived) preset).
    pub fn layer() -> InboundHygieneLayer {
        InboundHygieneLayer::new()
    }

    tollgate_core::__inner_service_accessors!();
}

impl<S: fmt::Debug> fmt::Debug for InboundHygiene<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InboundHygiene")
            .field("inner", &self.inner)
            .field("rules", &self.rules)
            .finish()
    }
}

impl<S, B> Service<Request<B>> for InboundHygiene<S>
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
        let peer = (self.rules.peer)(request.extensions());
        let removed = self.rules.apply(request.headers_mut(), peer);
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
