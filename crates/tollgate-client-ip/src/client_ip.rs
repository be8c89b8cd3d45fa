//! The facts: [`ClientIp`] (with [`IpOrigin`]), [`PeerAddr`], and the task-local scope
//! (feature `task-local`).

use std::fmt;
use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};

use http::{Extensions, HeaderName, HeaderValue};

use crate::parse::canonical;

#[cfg(feature = "task-local")]
tokio::task_local! {
    /// `None` inside a scope that hides an outer one: a `ResolveClientIpLayer` that found no
    /// client IP (and continues) must not leave an outer layer's IP visible.
    static CURRENT: Option<ClientIp>;
}

/// Where a [`ClientIp`] was read from.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IpOrigin {
    /// The socket peer (no proxy, or the peer was not a trusted proxy).
    Peer,
    /// A single-IP header such as `cf-connecting-ip`.
    Header(HeaderName),
    /// One hop of a list header (`x-forwarded-for`, `forwarded`).
    ListHop {
        /// The header.
        header: HeaderName,
        /// The hop's position counted from the right, starting at 0 (the entry the closest
        /// proxy appended).
        hop: usize,
    },
    /// Set by the application with [`ClientIp::new`] and [`IpOrigin::Other`].
    Other,
}

/// The end user's IP address as the server sees it, and where it came from.
///
/// [`ResolveClientIpLayer`](crate::ResolveClientIpLayer) puts it into request extensions and
/// (feature `task-local`) opens a task-local scope with it (`ClientIp::current`);
/// [`ForwardUserIpLayer`](crate::ForwardUserIpLayer) sends it as `x-user-ip`. With feature
/// `axum` it is a handler argument (`ClientIp` or `Option<ClientIp>`). The address is
/// canonical (IPv4-mapped IPv6 folded to IPv4).
///
/// ```
/// use std::net::IpAddr;
/// use tollgate_client_ip::{ClientIp, IpOrigin};
///
/// let ip = ClientIp::new("::ffff:203.0.113.7".parse().unwrap(), IpOrigin::Other);
/// assert_eq!(ip.ip(), "203.0.113.7".parse::<IpAddr>().unwrap());
/// assert_eq!(ip.to_header_value(), "203.0.113.7");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClientIp {
    ip: IpAddr,
    origin: IpOrigin,
}

impl ClientIp {
    /// A client IP (canonicalised) with its origin.
    pub fn new(ip: IpAddr, origin: IpOrigin) -> Self {
        Self {
            ip: canonical(ip),
            origin,
        }
    }

    /// A client IP already in canonical form (every address the sources produce is).
    pub(crate) fn from_canonical(ip: IpAddr, origin: IpOrigin) -> Self {
        debug_assert_eq!(ip, canonical(ip));
        Self { ip, origin }
    }

    /// The address.
    pub fn ip(&self) -> IpAddr {
        self.ip
    }

    /// Where it came from.
    pub fn origin(&self) -> &IpOrigin {
        &self.origin
    }

    /// Whether it is the socket peer's address.
    pub fn is_from_peer(&self) -> bool {
        matches!(self.origin, IpOrigin::Peer)
    }

    /// The header it was read from, if any.
    pub fn header(&self) -> Option<&HeaderName> {
        match &self.origin {
            IpOrigin::Header(name) | IpOrigin::ListHop { header: name, .. } => Some(name),
            IpOrigin::Peer | IpOrigin::Other => None,
        }
    }

    /// The address as a header value (`203.0.113.7`, `2001:db8::1`).
    pub fn to_header_value(&self) -> HeaderValue {
        // Formatted on the stack (an address is at most 45 bytes of text), so the header
        // value's own copy is the only allocation.
        let mut buffer = [0u8; 48];
        let mut cursor = std::io::Cursor::new(&mut buffer[..]);
        let text = match write!(cursor, "{}", self.ip) {
            Ok(()) => usize::try_from(cursor.position())
                .ok()
                .and_then(|written| buffer.get(..written)),
            Err(_) => None,
        };
        // An address's text is always a valid header value.
        match text {
            Some(text) => HeaderValue::from_bytes(text),
            None => HeaderValue::from_str(&self.ip.to_string()),
        }
        .unwrap_or_else(|_| HeaderValue::from_static("invalid"))
    }

    /// The `ClientIp` of the current task-local scope: the one the inbound
    /// [`ResolveClientIpLayer`](crate::ResolveClientIpLayer) opened around the request's
    /// handler, or one opened with [`scope`](ClientIp::scope).
    ///
    /// # What does not propagate
    ///
    /// A task-local belongs to one task. Work moved off the request's task does not see it:
    /// `tokio::spawn`, `spawn_blocking`, `JoinSet::spawn`, other threads, and futures stored
    /// and polled later by another task (a connection pool's background task, a channel
    /// consumer). Carry the IP there explicitly: `tokio::spawn(ip.clone().scope(fut))`, or
    /// insert it into the outbound request's extensions.
    ///
    /// ```
    /// use tollgate_client_ip::{ClientIp, IpOrigin};
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// assert_eq!(ClientIp::current(), None);
    /// let ip = ClientIp::new("192.0.2.1".parse().unwrap(), IpOrigin::Other);
    /// let seen = ip.clone().scope(async { ClientIp::current() }).await;
    /// assert_eq!(seen, Some(ip));
    /// # });
    /// ```
    #[cfg(feature = "task-local")]
    #[cfg_attr(docsrs, doc(cfg(feature = "task-local")))]
    pub fn current() -> Option<ClientIp> {
        CURRENT.try_with(Clone::clone).ok().flatten()
    }

    /// Runs `future` inside a task-local scope holding this `ClientIp`, so
    /// [`ClientIp::current`] (and [`ForwardUserIpLayer`](crate::ForwardUserIpLayer)) see it.
    #[cfg(feature = "task-local")]
    #[cfg_attr(docsrs, doc(cfg(feature = "task-local")))]
    pub fn scope<F: std::future::Future>(
        self,
        future: F,
    ) -> tokio::task::futures::TaskLocalFuture<Option<ClientIp>, F> {
        CURRENT.scope(Some(self), future)
    }

    /// Runs `f` synchronously inside a task-local scope holding this `ClientIp`.
    #[cfg(feature = "task-local")]
    #[cfg_attr(docsrs, doc(cfg(feature = "task-local")))]
    pub fn sync_scope<R>(self, f: impl FnOnce() -> R) -> R {
        CURRENT.sync_scope(Some(self), f)
    }

    /// Runs `future` in a scope where [`ClientIp::current`] is `None`, whatever an outer
    /// scope holds.
    #[cfg(feature = "task-local")]
    pub(crate) fn scope_none<F: std::future::Future>(
        future: F,
    ) -> tokio::task::futures::TaskLocalFuture<Option<ClientIp>, F> {
        CURRENT.scope(None, future)
    }

    /// [`scope_none`](Self::scope_none), synchronously.
    #[cfg(feature = "task-local")]
    pub(crate) fn sync_scope_none<R>(f: impl FnOnce() -> R) -> R {
        CURRENT.sync_scope(None, f)
    }
}

impl fmt::Display for ClientIp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.ip, f)
    }
}

/// The socket peer's address, as a request extension that a server inserts per connection.
///
/// [`ResolveClientIpLayer`](crate::ResolveClientIpLayer) and
/// [`IpAllowlistLayer`](crate::IpAllowlistLayer) find the peer here first, then in axum's
/// `ConnectInfo<SocketAddr>` (feature `axum`), then in tonic's `TcpConnectInfo` or
/// `TlsConnectInfo<TcpConnectInfo>` (feature `tonic`). With a plain hyper server, insert it
/// in the per-connection service:
///
/// ```
/// use std::net::SocketAddr;
/// use http::Request;
/// use tollgate_client_ip::PeerAddr;
///
/// let peer: SocketAddr = "192.0.2.10:51000".parse().unwrap();
/// // In `hyper::service::service_fn(move |mut request| { ... })` for this connection:
/// let mut request = Request::new(());
/// request.extensions_mut().insert(PeerAddr::new(peer));
/// assert_eq!(PeerAddr::find(request.extensions()), Some(peer));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PeerAddr(SocketAddr);

impl PeerAddr {
    /// The peer address of a connection.
    pub fn new(addr: SocketAddr) -> Self {
        Self(addr)
    }

    /// The socket address.
    pub fn addr(&self) -> SocketAddr {
        self.0
    }

    /// The IP address.
    pub fn ip(&self) -> IpAddr {
        self.0.ip()
    }

    /// The peer found in `extensions`: [`PeerAddr`], then axum's `ConnectInfo<SocketAddr>`
    /// (feature `axum`), then tonic's `TcpConnectInfo` or `TlsConnectInfo<TcpConnectInfo>`
    /// (feature `tonic`; the latter when TLS is served over `serve_with_incoming`).
    pub fn find(extensions: &Extensions) -> Option<SocketAddr> {
        if let Some(peer) = extensions.get::<PeerAddr>() {
            return Some(peer.0);
        }
        #[cfg(feature = "axum")]
        if let Some(info) = extensions.get::<axum::extract::ConnectInfo<SocketAddr>>() {
            return Some(info.0);
        }
        #[cfg(feature = "tonic")]
        {
            use tonic::transport::server::TcpConnectInfo;
            if let Some(addr) = extensions
                .get::<TcpConnectInfo>()
                .and_then(TcpConnectInfo::remote_addr)
            {
                return Some(addr);
            }
            // TLS accepted by the application and served with `serve_with_incoming`: tonic
            // inserts only `TlsConnectInfo<TcpConnectInfo>`, a type it exports only with its
            // TLS features. Its own `Request::remote_addr` reads it whenever those features are
            // on in the build, so ask it (on a copy of the extensions; this path only).
            let mut request = http::Request::new(());
            *request.extensions_mut() = extensions.clone();
            if let Some(addr) = tonic::Request::from_http(request).remote_addr() {
                return Some(addr);
            }
        }
        None
    }
}

impl From<SocketAddr> for PeerAddr {
    fn from(addr: SocketAddr) -> Self {
        Self(addr)
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::{ClientIp, IpOrigin, PeerAddr};
    #[cfg(feature = "tonic")]
    use crate::ClientIpSource;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[cfg(feature = "axum")]
    #[test]
    fn peer_lookup_order_peer_addr_then_connect_info() {
        let mut extensions = http::Extensions::new();
        assert_eq!(PeerAddr::find(&extensions), None);
        let connect: std::net::SocketAddr = "192.0.2.3:5".parse().unwrap();
        extensions.insert(::axum::extract::ConnectInfo(connect));
        assert_eq!(PeerAddr::find(&extensions), Some(connect));
        let own: std::net::SocketAddr = "198.51.100.1:1".parse().unwrap();
        extensions.insert(PeerAddr::new(own));
        assert_eq!(PeerAddr::find(&extensions), Some(own));
    }

    #[cfg(feature = "tonic")]
    #[test]
    fn peer_from_tonic_connect_info() {
        let mut extensions = http::Extensions::new();
        let remote: std::net::SocketAddr = "[2001:db8::3]:5".parse().unwrap();
        extensions.insert(tonic::transport::server::TcpConnectInfo {
            local_addr: None,
            remote_addr: Some(remote),
        });
        assert_eq!(PeerAddr::find(&extensions), Some(remote));
        let got = ClientIpSource::remote_addr()
            .extract(
                &http::HeaderMap::new(),
                PeerAddr::find(&extensions).map(|a| a.ip()),
            )
            .unwrap();
        assert_eq!(got.ip(), ip("2001:db8::3"));
    }

    #[test]
    fn header_value_is_the_canonical_text() {
        for (given, want) in [
            ("192.0.2.1", "192.0.2.1"),
            ("::ffff:192.0.2.1", "192.0.2.1"),
            (
                "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe",
                "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe",
            ),
            ("2001:DB8:0:0:0:0:0:1", "2001:db8::1"),
            ("255.255.255.255", "255.255.255.255"),
        ] {
            let value = ClientIp::new(ip(given), IpOrigin::Other).to_header_value();
            assert_eq!(value, want);
        }
    }
}
