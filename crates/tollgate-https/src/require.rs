//! [`RequireHttpsLayer`]: refuse (or redirect) requests that did not arrive over HTTPS, and
//! send `Strict-Transport-Security` on the ones that did.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::LOCATION;
use http::{Extensions, HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Uri};
use tollgate_client_ip::{IpRanges, PeerAddr};
use tollgate_core::metrics::{self, LayerName};
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

/// The origin plain-HTTP `GET` and `HEAD` requests are redirected to, for
/// [`RequireHttpsLayer::redirect_to`]: `https://host[:port]`, validated when parsed.
///
/// Parsed with [`str::parse`]: the scheme must be `https`, there must be a host, the path may
/// be at most `/`, and user info, a query or a fragment are refused with
/// [`ConfigError::InvalidRedirectOrigin`]. A trailing `/` is dropped, so
/// [`as_str`](Self::as_str) (and [`Display`](fmt::Display)) is the bare origin, to which the
/// request's path and query are appended.
///
/// ```
/// use tollgate_https::{ConfigError, HttpsOrigin};
///
/// # fn main() -> Result<(), ConfigError> {
/// let origin: HttpsOrigin = "https://pay.example.com:8443/".parse()?;
/// assert_eq!(origin.as_str(), "https://pay.example.com:8443");
/// assert_eq!(origin.to_string(), "https://pay.example.com:8443");
///
/// assert!(matches!(
///     "http://pay.example.com".parse::<HttpsOrigin>(),
///     Err(ConfigError::InvalidRedirectOrigin { reason: "the scheme must be https" })
/// ));
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HttpsOrigin(String);

impl HttpsOrigin {
    /// The origin, `https://host[:port]`, without a trailing slash.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for HttpsOrigin {
    type Err = ConfigError;

    /// Validates `origin`: `https://host[:port]`, optionally followed by `/`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidRedirectOrigin`] unless `origin` is `https://host[:port]`, with
    /// at most a `/` as path and no user info, query or fragment.
    fn from_str(origin: &str) -> Result<Self, Self::Err> {
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
        // `Authority` keeps any digits after the colon; a browser cannot follow a port
        // outside 1..=65535. (An empty port, `host:`, is the default one.)
        let port = authority
            .as_str()
            .get(authority.host().len()..)
            .and_then(|rest| rest.strip_prefix(':'))
            .unwrap_or("");
        if !port.is_empty() && !port.parse::<u16>().is_ok_and(|port| port != 0) {
            return Err(invalid("the port is not a number from 1 to 65535"));
        }
        if uri.query().is_some() || origin.contains('?') {
            return Err(invalid("a query is not allowed"));
        }
        if !matches!(uri.path(), "" | "/") {
            return Err(invalid("a path other than `/` is not allowed"));
        }
        Ok(Self(format!("https://{}", authority.as_str())))
    }
}

impl fmt::Display for HttpsOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A `Strict-Transport-Security` policy, for [`RequireHttpsLayer::hsts`]: a `max-age` of at
/// least one second, optionally `includeSubDomains` and `preload`.
///
/// The `max-age` is sent in whole seconds (a fraction of a second is dropped).
/// [`Hsts::new`] refuses a `max-age` under one second: `max-age=0` tells browsers to
/// forget the policy. [`Hsts::one_year`] cannot fail.
///
/// ```
/// use std::time::Duration;
///
/// use tollgate_https::{ConfigError, Hsts};
///
/// # fn main() -> Result<(), ConfigError> {
/// let hsts = Hsts::new(Duration::from_secs(600))?;
/// assert_eq!(hsts.header_value(), "max-age=600");
///
/// let hsts = Hsts::one_year().include_subdomains().preload();
/// assert_eq!(hsts.max_age(), Duration::from_secs(31_536_000));
/// assert_eq!(
///     hsts.header_value(),
///     "max-age=31536000; includeSubDomains; preload"
/// );
///
/// assert_eq!(Hsts::new(Duration::ZERO), Err(ConfigError::ZeroHstsMaxAge));
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Hsts {
    max_age: u64,
    include_subdomains: bool,
    preload: bool,
}

impl Hsts {
    /// One year in seconds: the `max-age` browsers' preload lists ask for.
    const ONE_YEAR: u64 = 31_536_000;

    /// `max-age=<seconds>`, without `includeSubDomains` or `preload`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::ZeroHstsMaxAge`] when `max_age` is under one second (`max-age=0` tells
    /// browsers to forget the policy).
    pub fn new(max_age: Duration) -> Result<Self, ConfigError> {
        let max_age = max_age.as_secs();
        if max_age == 0 {
            return Err(ConfigError::ZeroHstsMaxAge);
        }
        Ok(Self {
            max_age,
            include_subdomains: false,
            preload: false,
        })
    }

    /// `max-age=31536000` (one year), without `includeSubDomains` or `preload`.
    pub fn one_year() -> Self {
        Self {
            max_age: Self::ONE_YEAR,
            include_subdomains: false,
            preload: false,
        }
    }

    /// Adds `includeSubDomains`: the policy also covers every subdomain of the host.
    pub fn include_subdomains(mut self) -> Self {
        self.include_subdomains = true;
        self
    }

    /// Adds `preload`. Browsers' preload lists also require `includeSubDomains` and a
    /// `max-age` of at least a year, and leaving a preload list takes months: add it only
    /// when every subdomain serves HTTPS.
    pub fn preload(mut self) -> Self {
        self.preload = true;
        self
    }

    /// The `max-age`, in whole seconds.
    pub fn max_age(&self) -> Duration {
        Duration::from_secs(self.max_age)
    }

    /// The `Strict-Transport-Security` header value:
    /// `max-age=<seconds>[; includeSubDomains][; preload]`.
    pub fn header_value(&self) -> HeaderValue {
        let mut value = format!("max-age={}", self.max_age);
        if self.include_subdomains {
            value.push_str("; includeSubDomains");
        }
        if self.preload {
            value.push_str("; preload");
        }
        // Digits, letters, `=`, `;` and spaces: always a valid header value.
        HeaderValue::try_from(value)
            .unwrap_or_else(|_| HeaderValue::from_static("max-age=31536000"))
    }
}

#[derive(Clone)]
struct Config {
    trusted_proxies: Option<IpRanges>,
    redirect_origin: Option<HttpsOrigin>,
    hsts: Option<Hsts>,
    hsts_header: Option<HeaderValue>,
    responder: RejectionResponder,
}

impl Config {
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
/// - The redirect goes to the [`HttpsOrigin`] given at build time, never to a host taken from the
///   request (`Host`, `:authority`, the request line): no open redirect. Only `GET` and
///   `HEAD` are redirected; other methods get the 403 (their body has already crossed the
///   network in clear, and a client should learn that instead of resending it).
/// - `Strict-Transport-Security` is only added to answers of HTTPS requests (browsers ignore
///   it over plain HTTP, and a man in the middle could strip it anyway).
///
/// ```
/// use std::convert::Infallible;
///
/// use http::{Request, Response, StatusCode};
/// use tollgate_https::{Hsts, HttpsConnection, RequireHttpsLayer};
/// use tower::{ServiceBuilder, ServiceExt, service_fn};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let layer = RequireHttpsLayer::new()
///     .trust_forwarded_proto("10.0.0.0/8".parse()?)
///     .hsts(Hsts::one_year().include_subdomains());
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
    /// The origin is validated when it is parsed into an [`HttpsOrigin`].
    ///
    /// ```
    /// use tollgate_https::{ConfigError, RequireHttpsLayer};
    ///
    /// # fn main() -> Result<(), ConfigError> {
    /// let layer = RequireHttpsLayer::new().redirect_to("https://pay.example.com".parse()?);
    /// assert_eq!(
    ///     layer.redirect_origin().map(|origin| origin.as_str()),
    ///     Some("https://pay.example.com")
    /// );
    /// # Ok(())
    /// # }
    /// ```
    pub fn redirect_to(mut self, origin: HttpsOrigin) -> Self {
        Arc::make_mut(&mut self.config).redirect_origin = Some(origin);
        self
    }

    /// Adds `Strict-Transport-Security` ([`Hsts::header_value`]) to the answers of HTTPS
    /// requests (never to plain-HTTP ones). A header the inner service set is kept.
    ///
    /// ```
    /// use tollgate_https::{Hsts, RequireHttpsLayer};
    ///
    /// let layer = RequireHttpsLayer::new().hsts(Hsts::one_year().include_subdomains());
    /// assert_eq!(
    ///     layer.hsts_header().unwrap(),
    ///     "max-age=31536000; includeSubDomains"
    /// );
    /// ```
    pub fn hsts(mut self, hsts: Hsts) -> Self {
        let config = Arc::make_mut(&mut self.config);
        config.hsts_header = Some(hsts.header_value());
        config.hsts = Some(hsts);
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
    pub fn redirect_origin(&self) -> Option<&HttpsOrigin> {
        self.config.redirect_origin.as_ref()
    }

    /// The `Strict-Transport-Security` policy of HTTPS answers, if any (named apart from
    /// the [`hsts`](Self::hsts) setter, which takes the same name).
    pub fn hsts_policy(&self) -> Option<&Hsts> {
        self.config.hsts.as_ref()
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
            .field(
                "redirect_origin",
                &self
                    .config
                    .redirect_origin
                    .as_ref()
                    .map(HttpsOrigin::as_str),
            )
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
            .field(
                "redirect_origin",
                &self
                    .config
                    .redirect_origin
                    .as_ref()
                    .map(HttpsOrigin::as_str),
            )
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

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        if self
            .config
            .is_https(request.extensions(), request.headers())
        {
            metrics::allowed(LayerName::Https, request.extensions_mut());
            let hsts = self.config.hsts_header.clone();
            return RequireHttpsFuture::inner(self.inner.call(request), hsts);
        }
        let redirectable = request.method() == Method::GET || request.method() == Method::HEAD;
        if let Some(response) = self
            .config
            .redirect_origin
            .as_ref()
            .map(HttpsOrigin::as_str)
            .filter(|_| redirectable)
            .and_then(|origin| redirect(origin, request.uri()))
        {
            // DEBUG, as every refusal's own event: a scan of port 80 must not write one INFO
            // line per request.
            tracing::debug!(
                target: "tollgate",
                status = 308u16,
                code = code::HTTPS_REQUIRED,
                "plain-HTTP request redirected to HTTPS"
            );
            // A refusal too (the request does not go on), answered without the responder.
            metrics::refused(LayerName::Https, code::HTTPS_REQUIRED);
            return RequireHttpsFuture::own(response);
        }
        let rejection = Rejection::from_code(code::HTTPS_REQUIRED);
        RequireHttpsFuture::own(self.config.responder.refuse(LayerName::Https, rejection))
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{Hsts, HttpsOrigin, RequireHttpsLayer};
    use crate::ConfigError;

    fn origin(text: &str) -> Result<String, ConfigError> {
        text.parse::<HttpsOrigin>().map(|origin| origin.to_string())
    }

    #[test]
    fn redirect_origins() {
        assert_eq!(
            origin("https://pay.example.com").unwrap(),
            "https://pay.example.com"
        );
        assert_eq!(
            origin("https://pay.example.com/").unwrap(),
            "https://pay.example.com"
        );
        assert_eq!(
            origin("https://pay.example.com:8443").unwrap(),
            "https://pay.example.com:8443"
        );
        let parsed: HttpsOrigin = "https://pay.example.com/".parse().unwrap();
        assert_eq!(parsed.as_str(), "https://pay.example.com");
        assert_eq!(parsed, "https://pay.example.com".parse().unwrap());
        assert_eq!(
            format!("{parsed:?}"),
            r#"HttpsOrigin("https://pay.example.com")"#
        );
        let reason = |text: &str| match origin(text) {
            Err(ConfigError::InvalidRedirectOrigin { reason }) => reason,
            other => panic!("{text}: {other:?}"),
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
    fn redirect_to_sets_the_origin() {
        assert_eq!(RequireHttpsLayer::new().redirect_origin(), None);
        let origin: HttpsOrigin = "https://pay.example.com:8443/".parse().unwrap();
        let layer = RequireHttpsLayer::new().redirect_to(origin.clone());
        assert_eq!(layer.redirect_origin(), Some(&origin));
        // The last origin given wins.
        let other: HttpsOrigin = "https://other.example.com".parse().unwrap();
        let layer = layer.redirect_to(other.clone());
        assert_eq!(layer.redirect_origin(), Some(&other));
    }

    #[test]
    fn hsts_headers() {
        assert_eq!(Hsts::new(Duration::ZERO), Err(ConfigError::ZeroHstsMaxAge));
        assert_eq!(
            Hsts::new(Duration::from_millis(999)),
            Err(ConfigError::ZeroHstsMaxAge)
        );
        // Whole seconds: a fraction is dropped.
        let hsts = Hsts::new(Duration::from_millis(600_999)).unwrap();
        assert_eq!(hsts.max_age(), Duration::from_secs(600));
        assert_eq!(hsts.header_value(), "max-age=600");
        assert_eq!(
            Hsts::one_year(),
            Hsts::new(Duration::from_secs(31_536_000)).unwrap()
        );
        assert_eq!(Hsts::one_year().header_value(), "max-age=31536000");
        assert_eq!(
            Hsts::one_year().include_subdomains().header_value(),
            "max-age=31536000; includeSubDomains"
        );
        assert_eq!(
            Hsts::one_year().preload().header_value(),
            "max-age=31536000; preload"
        );
        // In either order.
        let two_years = Hsts::new(Duration::from_secs(63_072_000)).unwrap();
        let one = two_years.clone().preload().include_subdomains();
        let other = two_years.include_subdomains().preload();
        assert_eq!(one, other);
        assert_eq!(
            one.header_value(),
            "max-age=63072000; includeSubDomains; preload"
        );
        assert_eq!(
            format!("{one:?}"),
            "Hsts { max_age: 63072000, include_subdomains: true, preload: true }"
        );
    }

    #[test]
    fn the_layer_sends_the_hsts_it_was_given() {
        let layer = RequireHttpsLayer::new();
        assert_eq!(layer.hsts_policy(), None);
        assert_eq!(layer.hsts_header(), None);
        let policy = Hsts::new(Duration::from_secs(600)).unwrap();
        let layer = layer.hsts(policy.clone());
        assert_eq!(layer.hsts_policy(), Some(&policy));
        assert_eq!(layer.hsts_header().unwrap(), "max-age=600");
        // The last policy given wins, flags and all.
        let layer = layer.hsts(Hsts::one_year().include_subdomains().preload());
        assert_eq!(
            layer.hsts_header().unwrap(),
            "max-age=31536000; includeSubDomains; preload"
        );
        assert_eq!(
            layer.hsts_policy().unwrap().max_age(),
            Duration::from_secs(31_536_000)
        );
    }

    #[test]
    fn debug_shows_the_configuration() {
        let layer =
            RequireHttpsLayer::new().redirect_to("https://pay.example.com".parse().unwrap());
        assert_eq!(
            format!("{layer:?}"),
            r#"RequireHttpsLayer { trusted_proxies: None, redirect_origin: Some("https://pay.example.com"), hsts: None, responder: RejectionResponder("json") }"#
        );
        let layer = layer.hsts(Hsts::one_year());
        assert_eq!(
            format!("{layer:?}"),
            r#"RequireHttpsLayer { trusted_proxies: None, redirect_origin: Some("https://pay.example.com"), hsts: Some("max-age=31536000"), responder: RejectionResponder("json") }"#
        );
    }
}
