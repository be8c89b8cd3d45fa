//! Helpers shared by this crate's integration tests (each test binary uses some of them).
#![allow(dead_code, unreachable_pub)]

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};

use http::{HeaderMap, HeaderName, HeaderValue, Request, Response};
use http_body_util::BodyExt;
use tollgate_client_ip::{ClientIp, ClientIpSource, PeerAddr, ResolveClientIpLayer};
use tower::service_fn;

/// The answer to a request whose headers hold no valid client IP.
pub const INVALID_CLIENT_IP: &str = r#"{"error":{"code":"invalid_client_ip","message":"no valid client IP could be derived from the request"}}"#;

/// The answer when no peer address reached the layer.
pub const CLIENT_IP_MISCONFIGURED: &str = r#"{"error":{"code":"client_ip_misconfigured","message":"the server cannot determine the client IP"}}"#;

/// The answer of the allowlist to a client IP outside it.
pub const IP_NOT_ALLOWED: &str =
    r#"{"error":{"code":"ip_not_allowed","message":"client IP is not allowed"}}"#;

/// Whether the inner service runs inside the client-IP scope in this build.
pub const SCOPED: bool = cfg!(feature = "task-local");

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

pub fn peer(s: &str) -> Option<IpAddr> {
    Some(ip(s))
}

pub fn src(text: &str) -> ClientIpSource {
    text.parse().unwrap()
}

/// A header map of `(name, value)` lines, in order (repeated names append).
pub fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_bytes(value.as_bytes()).unwrap(),
        );
    }
    map
}

/// A request with `pairs` as headers, from the socket address `peer` (`"10.0.0.1:1"`) if any.
pub fn request(peer: Option<&str>, pairs: &[(&str, &str)]) -> Request<()> {
    let mut request = Request::new(());
    *request.headers_mut() = headers(pairs);
    if let Some(peer) = peer {
        request
            .extensions_mut()
            .insert(PeerAddr::new(peer.parse().unwrap()));
    }
    request
}

/// The layer behind proxies in `10.0.0.0/8` that append to `X-Forwarded-For`.
pub fn behind_proxy() -> ResolveClientIpLayer {
    ResolveClientIpLayer::new(src("rightmost-trusted-range:x-forwarded-for:10.0.0.0/8"))
}

/// A request from the proxy `10.0.0.1` with `X-Forwarded-For: <xff>`.
pub fn from_proxy(xff: &str) -> Request<()> {
    request(Some("10.0.0.1:1"), &[("x-forwarded-for", xff)])
}

/// A request with `pairs` as headers, from the IP address `peer` (any port).
pub fn request_from(peer: &str, pairs: &[(&str, &str)]) -> Request<()> {
    let mut request = Request::new(());
    *request.headers_mut() = headers(pairs);
    let addr = SocketAddr::new(ip(peer), 41000);
    request.extensions_mut().insert(PeerAddr::new(addr));
    request
}

pub async fn body_string<B>(response: Response<B>) -> String
where
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// The handler behind the inbound layers: echoes the client IP it was given, or `none`.
pub fn echo() -> impl tower::Service<
    Request<()>,
    Response = Response<String>,
    Error = Infallible,
    Future = impl Future<Output = Result<Response<String>, Infallible>> + Send,
> + Clone {
    service_fn(|request: Request<()>| async move {
        let ip = request
            .extensions()
            .get::<ClientIp>()
            .map_or_else(|| "none".to_owned(), ToString::to_string);
        Ok::<_, Infallible>(Response::new(ip))
    })
}

/// The client IP in this task's scope (always `None` without feature `task-local`).
pub fn current() -> Option<ClientIp> {
    #[cfg(feature = "task-local")]
    return ClientIp::current();
    #[cfg(not(feature = "task-local"))]
    return None;
}

/// Echoes the client IP with its origin and whether the handler ran inside its scope
/// (`"192.0.2.1 Peer scoped=true"`), or `none`.
pub fn echo_ip() -> impl tower::Service<
    Request<()>,
    Response = Response<String>,
    Error = Infallible,
    Future = impl Future<Output = Result<Response<String>, Infallible>> + Send,
> + Clone {
    service_fn(|request: Request<()>| async move {
        let ext = request.extensions().get::<ClientIp>().cloned();
        // Behind ResolveClientIpLayer the scope and the extension agree.
        let current = current();
        if let Some(current) = &current {
            assert_eq!(ext.as_ref(), Some(current));
        }
        let text = match ext {
            Some(ip) => format!("{ip} {:?} scoped={}", ip.origin(), current.is_some()),
            None => "none".to_owned(),
        };
        Ok::<_, Infallible>(Response::new(text))
    })
}
