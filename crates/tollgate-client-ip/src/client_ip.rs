//! The facts: [`ClientIp`] (with [`IpOrigin`]), [`PeerAddr`], and the task-local scope.

use std::fmt;
use std::future::Future;
use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};

use http::{Extensions, HeaderName, HeaderValue};
use tokio::task::futures::TaskLocalFuture;

use crate::parse::canonical;

tokio::task_local! {
    static CURRENT: ClientIp;
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
/// [`ClientIpLayer`](crate::ClientIpLayer) puts it into request extensions and opens a
/// task-local scope with it ([`ClientIp::current`]);
/// [`ForwardUserIpLayer`](crate::ForwardUserIpLayer) sends it as `x-user-ip`. The address is
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
    /// [`ClientIpLayer`](crate::ClientIpLayer) opened around the request's handler, or
    /// one opened with [`scope`](ClientIp::scope).
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
    pub fn current() -> Option<ClientIp> {
        CURRENT.try_with(Clone::clone).ok()
    }

    /// Runs `future` inside a task-local scope holding this `ClientIp`, so
    /// [`ClientIp::current`] (and [`ForwardUserIpLayer`](crate::ForwardUserIpLayer)) see it.
    pub fn scope<F: Future>(self, future: F) -> TaskLocalFuture<ClientIp, F> {
        CURRENT.scope(self, future)
    }

    /// Runs `f` synchronously inside a task-local scope holding this `ClientIp`.
    pub fn sync_scope<R>(self, f: impl FnOnce() -> R) -> R {
        CURRENT.sync_scope(self, f)
    }
}

impl fmt::Display for ClientIp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.ip, f)
    }
}

/// The socket peer's address, as a request extension that a server inserts per connection.
///
/// [`ClientIpLayer`](crate::ClientIpLayer) and [`IpAllowlistLayer`](crate::IpAllowlistLayer)
/// find the peer here first, then in axum's `ConnectInfo<SocketAddr>` (feature `axum`), then
/// in tonic's `TcpConnectInfo` or `TlsConnectInfo<TcpConnectInfo>` (feature `tonic`). With a plain hyper server, insert it in the
/// per-connection service:
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
