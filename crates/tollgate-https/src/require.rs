//! [`RequireHttpsLayer`]: refuse (or redirect) requests that did not arrive over HTTPS, and
//! send `Strict-Transport-Security` on the ones that did.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::LOCATION;
use http::{Extensions, HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Uri};
use tollgate_client_ip::{IpRanges, PeerAddr};
use tollgate_core::rejection::code;
use tollgate_core::{Rejection, RejectionResponder, ResponseBody};
use tower_layer::Layer;
use tower_service::Service;

use crate::ConfigError;
use crate::future::RequireHttpsFuture;
use crate::proto::forwarded_https;

/// The marker a TLS accept loop inserts into the extensions of every request read from a TLS
/// connection: "this request arrived over HTTPS". [`RequireHttpsLayer`] believes it without
/// further checks, so insert it only for connections your server accepted over TLS.
///
/// With hyper, insert it in the `service_fn` of each TLS connection (see the
/// [crate docs](crate#serving-over-tls-with-hyper)); with axum, add
/// `.layer(Extension(HttpsConnection))` to the router you serve over TLS only (see
/// [the axum example](crate#serving-over-tls-with-axum)).
///
/// ```
/// use http::Request;
/// use tollgate_https::HttpsConnection;
///
/// let mut request = Request::new(());
/// request.extensions_mut().insert(HttpsConnection);
/// assert!(request.extensions().get::<HttpsConnection>().is_some());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct HttpsConnection;

/// The `Strict-Transport-Security` policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Hsts {
    max_age: u64,
    include_subdomains: bool,
    preload: bool,
}

impl Hsts {
    fn header(self) -> HeaderValue {
        let mut value = format!("max-age={}", self.max_age);
        if self.include_subdomains {
            value.push_str("; includeSubDomains");
        }
        if self.preload {
            value.push_str("; preload");
        }
        // Digits, letters, `=`, `;` and spaces: always a valid header value.
        HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("max-age=0"))
    }
}

#[derive(Clone)]
struct Config {
    trusted_proxies: Option<IpRanges>,
    redirect_origin: Option<String>,
    hsts: Option<Hsts>,
    include_subdomains: bool,
    preload: bool,
    hsts_header: Option<HeaderValue>,
    responder: RejectionResponder,
}

impl Config {
    fn refresh_hsts(&mut self) {
        if let Some(hsts) = &mut self.hsts {
            hsts.include_subdomains = self.include_subdomains;
            hsts.preload = self.preload;
        }
        self.hsts_header = self.hsts.map(Hsts::header);
    }

    /// Whether the request with these extensions and headers arrived over HTTPS.
    fn is_https(&self, extensions: &Extensions, headers: &HeaderMap) -> bool {
        if extensions.get::<HttpsConnection>().is_some() {
            return true;
        }
        // The request line's scheme (absolute form, HTTP/2 `:scheme`) is the client's word:
        // never read. Forwarding headers only from a trusted proxy.
        let Some(trusted) = &self.trusted_proxies else {
            return false;
        };
        match PeerAddr::find(extensions) {
            Some(peer) if trusted.contains(peer.ip()) => forwarded_https(headers),
            _ => false,
        }
    }
}

/// Refuses requests that did not arrive over HTTPS: 403 `https_required`
/// (`{"error":{"code":"https_required","message":"HTTPS is required"}}`), or, with
/// [`redirect_to`](RequireHttpsLayer::redirect_to), a 308 to the same path on your HTTPS
/// origin for `GET` and `HEAD`. With [`hsts`](RequireHttpsLayer::hsts), answers to HTTPS
/// requests get `Strict-Transport-Security`.
///
/// A request is HTTPS when
///
/// 1. its extensions hold the [`HttpsConnection`] marker (your TLS accept loop inserted it), or
/// 2. with [`trust_forwarded_proto`](RequireHttpsLayer::trust_forwarded_proto), the socket
///    peer ([`PeerAddr::find`]: tollgate's `PeerAddr`, axum's `ConnectInfo` with feature
///    `axum`, tonic's `TcpConnectInfo` with feature `tonic`) is one of your proxies and its
///    forwarding headers say `https`: the rightmost `X-Forwarded-Proto` value (across all
///    lines and comma lists: the one your nearest proxy wrote) and the `proto` of the
///    rightmost RFC 7239 `Forwarded` element. Every one of the two headers that is present
///    must say exactly `https` (ASCII case-insensitive); two that disagree, a malformed
///    value or a `Forwarded` element without `proto` mean "not HTTPS".
///
/// # Security considerations
///
/// - The scheme of the request line is never read: an absolute-form HTTP/1 request line
///   (`GET https://pay.example.com/ HTTP/1.1`) and HTTP/2's `:scheme` are written by the
///   client, over plain TCP as well.
/// - Forwarding headers from a peer outside the trusted ranges are ignored: anyone can send
///   `X-Forwarded-Proto: https`. Trust only the addresses of your own proxies, and make sure
///   they overwrite or append these headers.
/// - The redirect goes to the origin given at build time, never to a host taken from the
///   request (`Host`, `:authority`, the request line): no open redirect. Only `GET` and
///   `HEAD` are redirected; other methods get the 403 (their body has already crossed the
///   network in clear, and a client should learn that instead of resending it).
/// - `Strict-Transport-Security` is only added to answers of HTTPS requests (browsers ignore
///   it over plain HTTP, and a man in the middle could strip it anyway).
///
/// ```
/// use std::convert::Infallible;
/// use std::time::Duration;
///
/// use http::{Request, Response, StatusCode};
/// use tollgate_https::{HttpsConnection, RequireHttpsLayer};
/// use tower::{ServiceBuilder, ServiceExt, service_fn};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), tollgate_https::ConfigError> {
/// let layer = RequireHttpsLayer::new()
///     .trust_forwarded_proto("10.0.0.0/8".parse().unwrap())
///     .hsts(Duration::from_secs(31_536_000))?
///     .hsts_include_subdomains();
/// let service = ServiceBuilder::new()
///     .layer(layer)
///     .service(service_fn(|_: Request<()>| async { Ok::<_, Infallible>(Response::new(())) }));
///
/// // Plain HTTP: refused.
/// let response = service.clone().oneshot(Request::new(())).await.unwrap();
/// assert_eq!(response.status(), StatusCode::FORBIDDEN);
/// assert!(response.headers().get("strict-transport-security").is_none());
///
/// // Over TLS: passed on, with HSTS.
/// let mut request = Request::new(());
/// request.extensions_mut().insert(HttpsConnection);
/// let response = service.oneshot(request).await.unwrap();
/// assert_eq!(response.status(), StatusCode::OK);
/// assert_eq!(
///     response.headers()["strict-transport-security"],
///     "max-age=31536000; includeSubDomains"
/// );
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
#[must_use]
pub struct RequireHttpsLayer {
    config: Arc<Config>,
}

impl RequireHttpsLayer {
    /// Refuses every request without the [`HttpsConnection`] marker with 403
    /// `https_required`; trusts no proxy; sends no HSTS.
    pub fn new() -> Self {
        Self {
            config: Arc::new(Config {
                trusted_proxies: None,
                redirect_origin: None,
                hsts: None,
                include_subdomains: false,
                preload: false,
                hsts_header: None,
                responder: RejectionResponder::json(),
            }),
        }
    }

    /// Believes `X-Forwarded-Proto` and `Forwarded: proto=` from socket peers inside
    /// `proxies` (your TLS-terminating proxies or load balancers), and from nobody else.
    pub fn trust_forwarded_proto(mut self, proxies: IpRanges) -> Self {
        Arc::make_mut(&mut self.config).trusted_proxies = Some(proxies);
        self
    }

    /// Answers plain-HTTP `GET` and `HEAD` requests with `308 Permanent Redirect` to
    /// `origin` followed by the request's path and query (other methods still get the 403).
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidRedirectOrigin`] unless `origin` is `https://host[:port]`, with
    /// at most a `/` as path and no user info, query or fragment.
    ///
    /// ```
    /// use tollgate_https::{ConfigError, RequireHttpsLayer};
    ///
    /// assert!(RequireHttpsLayer::new().redirect_to("https://pay.example.com").is_ok());
    /// assert!(matches!(
    ///     RequireHttpsLayer::new().redirect_to("http://pay.example.com"),
    ///     Err(ConfigError::InvalidRedirectOrigin { .. })
    /// ));
    /// ```
    pub fn redirect_to(mut self, origin: &str) -> Result<Self, ConfigError> {
        let origin = redirect_origin(origin)?;
        Arc::make_mut(&mut self.config).redirect_origin = Some(origin);
        Ok(self)
    }

    /// Adds `Strict-Transport-Security: max-age=<seconds>` to the answers of HTTPS requests
    /// (never to plain-HTTP ones). A header the inner service set is kept.
    ///
    /// # Errors
    ///
    /// [`ConfigError::ZeroHstsMaxAge`] when `max_age` is under one second (`max-age=0` tells
    /// browsers to forget the policy).
    pub fn hsts(mut self, max_age: Duration) -> Result<Self, ConfigError> {
        let max_age = max_age.as_secs();
        if max_age == 0 {
            return Err(ConfigError::ZeroHstsMaxAge);
        }
        let config = Arc::make_mut(&mut self.config);
        config.hsts = Some(Hsts {
            max_age,
            include_subdomains: false,
            preload: false,
        });
        config.refresh_hsts();
        Ok(self)
    }

    /// Adds `includeSubDomains` to the HSTS header (only with [`hsts`](Self::hsts)).
    pub fn hsts_include_subdomains(mut self) -> Self {
        let config = Arc::make_mut(&mut self.config);
        config.include_subdomains = true;
        config.refresh_hsts();
        self
    }

    /// Adds `preload` to the HSTS header (only with [`hsts`](Self::hsts)). Browsers'
    /// preload lists also require `includeSubDomains` and a `max-age` of at least a year.
    pub fn hsts_preload(mut self) -> Self {
        let config = Arc::make_mut(&mut self.config);
        config.preload = true;
        config.refresh_hsts();
        self
    }

    /// Replace the rejection response (JSON by default): a [`RejectionResponder`] or a
    /// closure `Fn(&Rejection) -> Response<Bytes>`. Redirects are not rejections and are
    /// not passed to it.
    pub fn on_rejection(mut self, responder: impl Into<RejectionResponder>) -> Self {
        Arc::make_mut(&mut self.config).responder = responder.into();
        self
    }

    /// The proxies whose forwarding headers are believed, if any.
    pub fn trusted_proxies(&self) -> Option<&IpRanges> {
        self.config.trusted_proxies.as_ref()
    }

    /// The HTTPS origin plain-HTTP `GET`/`HEAD` requests are redirected to, if any.
    pub fn redirect_origin(&self) -> Option<&str> {
        self.config.redirect_origin.as_deref()
    }

    /// The `Strict-Transport-Security` value added to HTTPS answers, if any.
    pub fn hsts_header(&self) -> Option<&HeaderValue> {
        self.config.hsts_header.as_ref()
    }

    /// Whether this layer judges `request` to have arrived over HTTPS.
    pub fn is_https<B>(&self, request: &Request<B>) -> bool {
        self.config
            .is_https(request.extensions(), request.headers())
    }
}

impl Default for RequireHttpsLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for RequireHttpsLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequireHttpsLayer")
            .field("trusted_proxies", &self.config.trusted_proxies)
            .field("redirect_origin", &self.config.redirect_origin)
            .field("hsts", &self.config.hsts_header)
            .field("responder", &self.config.responder)
            .finish()
    }
}

impl<S> Layer<S> for RequireHttpsLayer {
    type Service = RequireHttps<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireHttps {
            inner,
            config: Arc::clone(&self.config),
        }
    }
}

/// The service of [`RequireHttpsLayer`]: calls the inner service for HTTPS requests (adding
/// HSTS to its answer when configured) and answers plain-HTTP ones itself.
#[derive(Clone)]
#[must_use]
pub struct RequireHttps<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S> RequireHttps<S> {
    /// Wraps `inner` with the layer's behaviour.
    pub fn new(inner: S, layer: &RequireHttpsLayer) -> Self {
        layer.layer(inner)
    }

    /// A [`RequireHttpsLayer`] (the same as [`RequireHttpsLayer::new`]).
    pub fn layer() -> RequireHttpsLayer {
        RequireHttpsLayer::new()
    }

    tollgate_core::__inner_service_accessors!();
}

impl<S: fmt::Debug> fmt::Debug for RequireHttps<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequireHttps")
            .field("inner", &self.inner)
            .field("trusted_proxies", &self.config.trusted_proxies)
            .field("redirect_origin", &self.config.redirect_origin)
            .field("hsts", &self.config.hsts_header)
            .finish()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RequireHttps<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = RequireHttpsFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        if self
            .config
            .is_https(request.extensions(), request.headers())
        {
            let hsts = self.config.hsts_header.clone();
            return RequireHttpsFuture::inner(self.inner.call(request), hsts);
        }
        let redirectable = request.method() == Method::GET || request.method() == Method::HEAD;
        if let Some(response) = self
            .config
            .redirect_origin
            .as_deref()
            .filter(|_| redirectable)
            .and_then(|origin| redirect(origin, request.uri()))
        {
            tracing::info!(
                target: "tollgate",
                status = 308u16,
                code = code::HTTPS_REQUIRED,
                "plain-HTTP request redirected to HTTPS"
            );
            return RequireHttpsFuture::own(response);
        }
        let rejection = Rejection::from_code(code::HTTPS_REQUIRED);
        RequireHttpsFuture::own(self.config.responder.respond(rejection))
    }
}

/// The 308 to `origin` + the request's path and query (only those: never its host).
fn redirect(origin: &str, uri: &Uri) -> Option<Response<Bytes>> {
    let path_and_query = uri
        .path_and_query()
        .map(http::uri::PathAndQuery::as_str)
        .filter(|p| p.starts_with('/'))
        .unwrap_or("/");
    let location = HeaderValue::try_from(format!("{origin}{path_and_query}")).ok()?;
    let mut response = Response::new(Bytes::new());
    *response.status_mut() = StatusCode::PERMANENT_REDIRECT;
    response.headers_mut().insert(LOCATION, location);
    Some(response)
}

/// Validates a redirect origin: `https://host[:port]`, optionally with `/`; returned without
/// the trailing slash.
fn redirect_origin(origin: &str) -> Result<String, ConfigError> {
    let invalid = |reason| ConfigError::InvalidRedirectOrigin { reason };
    if origin.contains('#') {
        return Err(invalid("a fragment is not allowed"));
    }
    let uri: Uri = origin
        .parse()
        .map_err(|_| invalid("not an absolute https:// URL"))?;
    if uri.scheme() != Some(&http::uri::Scheme::HTTPS) {
        return Err(invalid("the scheme must be https"));
    }
    let authority = uri.authority().ok_or(invalid("no host"))?;
    if authority.as_str().contains('@') {
        return Err(invalid("user info is not allowed"));
    }
    if authority.host().is_empty() {
        return Err(invalid("no host"));
    }
    if uri.query().is_some() || origin.contains('?') {
        return Err(invalid("a query is not allowed"));
    }
    if !matches!(uri.path(), "" | "/") {
        return Err(invalid("a path other than `/` is not allowed"));
    }
    Ok(format!("https://{}", authority.as_str()))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{RequireHttpsLayer, redirect_origin};
    use crate::ConfigError;

    #[test]
    fn redirect_origins() {
        assert_eq!(
            redirect_origin("https://pay.example.com").unwrap(),
            "https://pay.example.com"
        );
        assert_eq!(
            redirect_origin("https://pay.example.com/").unwrap(),
            "https://pay.example.com"
        );
        assert_eq!(
            redirect_origin("https://pay.example.com:8443").unwrap(),
            "https://pay.example.com:8443"
        );
        let reason = |origin: &str| match redirect_origin(origin) {
            Err(ConfigError::InvalidRedirectOrigin { reason }) => reason,
            other => panic!("{origin}: {other:?}"),
        };
        assert_eq!(reason("http://pay.example.com"), "the scheme must be https");
        assert_eq!(reason("pay.example.com"), "the scheme must be https");
        assert_eq!(reason("/path"), "the scheme must be https");
        assert_eq!(reason(""), "not an absolute https:// URL");
        assert_eq!(reason("https://"), "not an absolute https:// URL");
        assert_eq!(
            reason("https://user@pay.example.com"),
            "user info is not allowed"
        );
        assert_eq!(
            reason("https://pay.example.com/checkout"),
            "a path other than `/` is not allowed"
        );
        assert_eq!(
            reason("https://pay.example.com?a=b"),
            "a query is not allowed"
        );
        assert_eq!(
            reason("https://pay.example.com/?"),
            "a query is not allowed"
        );
        assert_eq!(
            reason("https://pay.example.com#x"),
            "a fragment is not allowed"
        );
        assert_eq!(
            reason("https://pay.example.com\r\nx: y"),
            "not an absolute https:// URL"
        );
    }

    #[test]
    fn hsts_headers() {
        assert!(matches!(
            RequireHttpsLayer::new().hsts(Duration::ZERO),
            Err(ConfigError::ZeroHstsMaxAge)
        ));
        assert!(matches!(
            RequireHttpsLayer::new().hsts(Duration::from_millis(999)),
            Err(ConfigError::ZeroHstsMaxAge)
        ));
        assert_eq!(RequireHttpsLayer::new().hsts_header(), None);
        // The flags alone send nothing.
        assert_eq!(
            RequireHttpsLayer::new()
                .hsts_preload()
                .hsts_include_subdomains()
                .hsts_header(),
            None
        );
        let layer = RequireHttpsLayer::new()
            .hsts(Duration::from_secs(600))
            .unwrap();
        assert_eq!(layer.hsts_header().unwrap(), "max-age=600");
        // In either order.
        let before = RequireHttpsLayer::new()
            .hsts_preload()
            .hsts_include_subdomains()
            .hsts(Duration::from_secs(63_072_000))
            .unwrap();
        let after = RequireHttpsLayer::new()
            .hsts(Duration::from_secs(63_072_000))
            .unwrap()
            .hsts_include_subdomains()
            .hsts_preload();
        for layer in [before, after] {
            assert_eq!(
                layer.hsts_header().unwrap(),
                "max-age=63072000; includeSubDomains; preload"
            );
        }
    }

    #[test]
    fn debug_shows_the_configuration() {
        let layer = RequireHttpsLayer::new()
            .redirect_to("https://pay.example.com")
            .unwrap();
        assert_eq!(
            format!("{layer:?}"),
            r#"RequireHttpsLayer { trusted_proxies: None, redirect_origin: Some("https://pay.example.com"), hsts: None, responder: RejectionResponder("json") }"#
        );
    }
}
