//! [`OriginAllowlistLayer`] and its [`OriginAllowlistBuilder`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, HeaderValue, Method};
use tollgate_core::RejectionResponder;

use crate::config::Config;
use crate::error::ConfigError;
use crate::handle::{Origins, OriginsHandle, parse_origins};
use crate::origin::AllowedOrigin;
use crate::policy::Policy;

/// The configuration of the origin allowlist: a [`tower::Layer`](tower_layer::Layer) that
/// wraps a service in an [`OriginAllowlist`](crate::OriginAllowlist); see the
/// [crate docs](crate) for the decisions it takes.
///
/// Built with [`OriginAllowlistLayer::new`] (a list of origins, defaults for the rest) or
/// [`OriginAllowlistLayer::builder`], which validate everything: a layer that exists is a
/// layer that works. Cheap to clone: the validated configuration sits behind an `Arc`.
///
/// ```
/// use std::time::Duration;
/// use http::Method;
/// use tollgate_origin::OriginAllowlistLayer;
///
/// let layer = OriginAllowlistLayer::builder()
///     .allow_origins(["https://app.example.com", "https://*.shop.example.com"])
///     .allow_methods([Method::GET, Method::POST])
///     .allow_headers(["content-type", "idempotency-key"])
///     .allow_credentials(true)
///     .max_age(Duration::from_secs(600))
///     .build()
///     .unwrap();
/// assert_eq!(layer.allowed_origins().len(), 2);
/// ```
#[derive(Clone)]
#[must_use]
pub struct OriginAllowlistLayer {
    pub(crate) config: Arc<Config>,
}

impl OriginAllowlistLayer {
    /// A layer that allows `origins` (exact origins or `https://*.example.com` patterns,
    /// see [`AllowedOrigin::parse`]) with the [builder](Self::builder)'s defaults for
    /// everything else; the same as `builder().allow_origins(origins).build()`.
    ///
    /// ```
    /// use tollgate_origin::{ConfigError, OriginAllowlistLayer};
    ///
    /// let layer = OriginAllowlistLayer::new(["https://app.example.com"]).unwrap();
    /// assert_eq!(layer.allowed_origins()[0].as_str(), "https://app.example.com");
    ///
    /// let err = OriginAllowlistLayer::new(["https://*.github.io"]).unwrap_err();
    /// assert!(matches!(err, ConfigError::WildcardOnPublicSuffix { .. }));
    /// ```
    pub fn new<I>(origins: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        Self::builder().allow_origins(origins).build()
    }

    /// A builder with no origin, methods `GET, HEAD, POST`, no extra request header, no
    /// credentials, no max-age, `https://` origins only, same-site requests without `Origin`
    /// refused, requests with no browser signal at all passed, JSON rejections.
    pub fn builder() -> OriginAllowlistBuilder {
        OriginAllowlistBuilder::default()
    }

    /// The allowlist in canonical form, in the order configured (duplicates removed); for
    /// a layer built with [`build_swappable`](OriginAllowlistBuilder::build_swappable), the
    /// list stored last.
    pub fn allowed_origins(&self) -> Arc<[AllowedOrigin]> {
        self.config.policy.origins.current()
    }

    /// The methods a preflight may ask for.
    pub fn allowed_methods(&self) -> &[Method] {
        &self.config.policy.methods
    }

    /// The request headers a preflight may ask for (lowercase).
    pub fn allowed_headers(&self) -> &[HeaderName] {
        &self.config.policy.headers
    }

    /// Replaces the rejection response, as
    /// [`OriginAllowlistBuilder::on_rejection`] does, on a layer already built. Takes a
    /// [`RejectionResponder`] or a closure `Fn(&Rejection) -> Response<Bytes>`.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use http::Response;
    /// use tollgate_core::Rejection;
    /// use tollgate_origin::OriginAllowlistLayer;
    ///
    /// let layer = OriginAllowlistLayer::new(["https://app.example.com"])
    ///     .unwrap()
    ///     .on_rejection(|rejection: &Rejection| {
    ///         let mut response = Response::new(Bytes::from(rejection.code().to_owned()));
    ///         *response.status_mut() = rejection.status();
    ///         response
    ///     });
    /// # let _ = layer;
    /// ```
    pub fn on_rejection(mut self, responder: impl Into<RejectionResponder>) -> Self {
        Arc::make_mut(&mut self.config).responder = responder.into();
        self
    }
}

impl fmt::Debug for OriginAllowlistLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OriginAllowlistLayer")
            .field("policy", &self.config.policy)
            .field("responder", &self.config.responder)
            .finish()
    }
}

/// Collects the configuration of an [`OriginAllowlistLayer`]; [`build`](Self::build)
/// validates all of it at once.
///
/// Setters that take lists add to what was given before (`allow_methods` replaces the default
/// `GET, HEAD, POST` the first time it is called).
#[derive(Debug, Default)]
#[must_use]
pub struct OriginAllowlistBuilder {
    origins: Vec<String>,
    methods: Option<Vec<String>>,
    headers: Vec<String>,
    expose: Vec<String>,
    http: bool,
    credentials: bool,
    max_age: Option<Duration>,
    private_network: bool,
    same_site_without_origin: bool,
    reject_server_to_server: bool,
    bypass_paths: Vec<String>,
    responder: Option<RejectionResponder>,
}

impl OriginAllowlistBuilder {
    /// Adds one origin or `https://*.example.com` pattern (validated by
    /// [`build`](Self::build), see [`AllowedOrigin::parse`]).
    pub fn allow_origin(mut self, origin: impl Into<String>) -> Self {
        self.origins.push(origin.into());
        self
    }

    /// Adds origins or patterns.
    pub fn allow_origins<I>(mut self, origins: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.origins.extend(origins.into_iter().map(Into::into));
        self
    }

    /// Permits plain `http://` origins in the list (for development and loopback). Off by
    /// default: an `http://` origin is then a [`ConfigError::HttpNotEnabled`].
    pub fn allow_http_origins(mut self, allow: bool) -> Self {
        self.http = allow;
        self
    }

    /// The methods a preflight may ask for, compared case-sensitively with
    /// `Access-Control-Request-Method`. Takes [`Method`]s or strings. Default
    /// `GET, HEAD, POST`.
    ///
    /// Browsers upper-case the six standard methods `DELETE`, `GET`, `HEAD`, `OPTIONS`,
    /// `POST` and `PUT` whatever the script wrote, so these are upper-cased here too (`"get"`
    /// means `GET`); every other method is kept as written, because a browser sends it as
    /// the script spelled it (`fetch(url, { method: "patch" })` asks for `patch`, which
    /// `PATCH` does not allow).
    pub fn allow_methods<I>(mut self, methods: I) -> Self
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        self.methods
            .get_or_insert_with(Vec::new)
            .extend(methods.into_iter().map(|m| m.as_ref().to_owned()));
        self
    }

    /// The request headers a preflight may ask for, compared case-insensitively. Takes
    /// [`HeaderName`]s or strings. A JSON API needs `content-type` here. Default none.
    pub fn allow_headers<I>(mut self, headers: I) -> Self
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        self.headers
            .extend(headers.into_iter().map(|h| h.as_ref().to_owned()));
        self
    }

    /// Response headers the page's script may read (`Access-Control-Expose-Headers`).
    pub fn expose_headers<I>(mut self, headers: I) -> Self
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        self.expose
            .extend(headers.into_iter().map(|h| h.as_ref().to_owned()));
        self
    }

    /// Sends `Access-Control-Allow-Credentials: true` to allowed origins (cookies, HTTP
    /// authentication). Never sent to other origins.
    pub fn allow_credentials(mut self, allow: bool) -> Self {
        self.credentials = allow;
        self
    }

    /// How long a browser may cache a preflight answer (`Access-Control-Max-Age`, whole
    /// seconds). Browsers cap it (Chromium at two hours).
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = Some(max_age);
        self
    }

    /// Answers `Access-Control-Request-Private-Network: true` in an allowed preflight with
    /// `Access-Control-Allow-Private-Network: true` (Private Network Access, for an API on a
    /// private address called from a public page). Off by default: the browser then refuses.
    pub fn allow_private_network(mut self, allow: bool) -> Self {
        self.private_network = allow;
        self
    }

    /// Lets a request without `Origin` marked `Sec-Fetch-Site: same-site` through (a
    /// navigation or `no-cors` load from a sibling subdomain). Off by default: a same-site
    /// page is not necessarily an allowed one.
    pub fn allow_same_site_without_origin(mut self, allow: bool) -> Self {
        self.same_site_without_origin = allow;
        self
    }

    /// Whether a request with no browser signal at all (no `Origin`, `Referer` nor
    /// `Sec-Fetch-Site`: a server-to-server call, curl) passes, without CORS headers.
    /// Default `true`; `false` refuses them with 403 `origin_not_allowed`.
    pub fn allow_server_to_server(mut self, allow: bool) -> Self {
        self.reject_server_to_server = !allow;
        self
    }

    /// Lets requests for exactly this path (e.g. `/healthz`) through unchecked: no origin
    /// check, no CORS headers (only `Vary: Origin`). Compared byte for byte with the whole
    /// URI path as sent, no prefix matching, no decoding: `/healthz/`, `/Healthz`,
    /// `/%68ealthz` and `/healthz/../api` are checked as usual. Use it only for read-only
    /// endpoints.
    ///
    /// [`build`](Self::build) refuses a path that does not start with `/`, has a query or a
    /// fragment, is not valid in a request line, or has a `.` or `..` segment.
    pub fn bypass_path(mut self, path: impl Into<String>) -> Self {
        self.bypass_paths.push(path.into());
        self
    }

    /// Replaces the rejection response (default: tollgate's JSON, see
    /// [`RejectionResponder`]). Takes a [`RejectionResponder`] or a closure
    /// `Fn(&Rejection) -> Response<Bytes>`. The response always gets `Vary: Origin` as well,
    /// and loses any `Access-Control-Allow-Origin`, `-Credentials` or `-Private-Network` the
    /// responder wrote: a refusal grants nothing.
    pub fn on_rejection(mut self, responder: impl Into<RejectionResponder>) -> Self {
        self.responder = Some(responder.into());
        self
    }

    /// Validates and canonicalises the configuration.
    ///
    /// ```
    /// use tollgate_origin::{ConfigError, OriginAllowlistLayer};
    ///
    /// let err = OriginAllowlistLayer::builder().allow_origin("*").build().unwrap_err();
    /// assert_eq!(err, ConfigError::AnyOrigin);
    ///
    /// let err = OriginAllowlistLayer::builder()
    ///     .allow_origin("http://127.0.0.1:3000")
    ///     .build()
    ///     .unwrap_err();
    /// assert!(matches!(err, ConfigError::HttpNotEnabled { .. }));
    ///
    /// let layer = OriginAllowlistLayer::builder()
    ///     .allow_origin("http://127.0.0.1:3000")
    ///     .allow_http_origins(true)
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(layer.allowed_origins()[0].as_str(), "http://127.0.0.1:3000");
    /// ```
    pub fn build(self) -> Result<OriginAllowlistLayer, ConfigError> {
        let origins = parse_origins(&self.origins, self.http)?;
        self.build_with(Origins::Fixed(Arc::from(origins)))
    }

    /// Like [`build`](Self::build), with the allowed origins in an [`OriginsHandle`] to
    /// replace them while the service runs ([`OriginsHandle::store`] validates a new list as
    /// `build` does). Each request loads the list once; the other settings stay as built.
    ///
    /// ```
    /// use tollgate_origin::OriginAllowlistLayer;
    ///
    /// let (layer, origins) = OriginAllowlistLayer::builder()
    ///     .allow_origin("https://app.example.com")
    ///     .build_swappable()
    ///     .unwrap();
    /// origins.store(["https://app2.example.com"]).unwrap();
    /// assert_eq!(layer.allowed_origins()[0].as_str(), "https://app2.example.com");
    /// ```
    pub fn build_swappable(self) -> Result<(OriginAllowlistLayer, OriginsHandle), ConfigError> {
        let handle = OriginsHandle::new(parse_origins(&self.origins, self.http)?, self.http);
        let layer = self.build_with(Origins::Live(handle.clone()))?;
        Ok((layer, handle))
    }

    fn build_with(self, origins: Origins) -> Result<OriginAllowlistLayer, ConfigError> {
        let methods = match self.methods {
            Some(methods) => {
                let mut parsed: Vec<Method> = Vec::with_capacity(methods.len());
                for method in methods {
                    let valid = Method::from_bytes(method.as_bytes())
                        .ok()
                        .filter(|_| method != "*")
                        .map(normalize_method);
                    let Some(valid) = valid else {
                        return Err(ConfigError::InvalidMethod { method });
                    };
                    if !parsed.contains(&valid) {
                        parsed.push(valid);
                    }
                }
                parsed
            }
            None => vec![Method::GET, Method::HEAD, Method::POST],
        };
        let headers = header_names(self.headers)?;
        let expose = header_names(self.expose)?;

        let allow_methods =
            join(methods.iter().map(Method::as_str)).ok_or_else(|| ConfigError::InvalidMethod {
                method: String::new(),
            })?;
        let allow_headers = if headers.is_empty() {
            None
        } else {
            join(headers.iter().map(HeaderName::as_str))
        };
        let expose_headers = if expose.is_empty() {
            None
        } else {
            join(expose.iter().map(HeaderName::as_str))
        };
        let max_age = self
            .max_age
            .map(|age| (age, HeaderValue::from(age.as_secs())));

        for path in &self.bypass_paths {
            if !valid_bypass_path(path) {
                return Err(ConfigError::InvalidBypassPath { path: path.clone() });
            }
        }

        Ok(OriginAllowlistLayer {
            config: Arc::new(Config {
                policy: Policy {
                    origins,
                    methods,
                    headers,
                    allow_methods,
                    allow_headers,
                    expose_headers,
                    credentials: self.credentials,
                    max_age,
                    private_network: self.private_network,
                    same_site_without_origin: self.same_site_without_origin,
                    server_to_server: !self.reject_server_to_server,
                    bypass_paths: self.bypass_paths,
                },
                responder: self.responder.unwrap_or_default(),
            }),
        })
    }
}

/// Parses header names (lowercased), refusing `*`, without duplicates.
fn header_names(names: Vec<String>) -> Result<Vec<HeaderName>, ConfigError> {
    let mut parsed: Vec<HeaderName> = Vec::with_capacity(names.len());
    for header in names {
        let valid = HeaderName::from_bytes(header.as_bytes())
            .ok()
            .filter(|_| header != "*");
        let Some(valid) = valid else {
            return Err(ConfigError::InvalidHeader { header });
        };
        if !parsed.contains(&valid) {
            parsed.push(valid);
        }
    }
    Ok(parsed)
}

/// The methods the Fetch standard normalises (`DELETE`, `GET`, `HEAD`, `OPTIONS`, `POST`,
/// `PUT`, matched case-insensitively) in the upper case a browser puts on the wire; any other
/// method as given, since browsers send it exactly as the script wrote it.
fn normalize_method(method: Method) -> Method {
    const NORMALISED: [Method; 6] = [
        Method::DELETE,
        Method::GET,
        Method::HEAD,
        Method::OPTIONS,
        Method::POST,
        Method::PUT,
    ];
    NORMALISED
        .into_iter()
        .find(|m| m.as_str().eq_ignore_ascii_case(method.as_str()))
        .unwrap_or(method)
}

/// A bypass path is an absolute URI path as a request carries it: it starts with `/`, is
/// valid in a request line, has no query or fragment and no `.` or `..` segment (a router
/// that resolves dot segments would otherwise serve another path under the bypass).
fn valid_bypass_path(path: &str) -> bool {
    path.starts_with('/')
        && !path.contains(['?', '#'])
        && path.parse::<http::uri::PathAndQuery>().is_ok()
        && !path
            .split('/')
            .any(|segment| segment == "." || segment == "..")
}

/// `a, b, c` as a header value.
fn join<'a>(items: impl Iterator<Item = &'a str>) -> Option<HeaderValue> {
    let joined = items.collect::<Vec<_>>().join(", ");
    HeaderValue::from_str(&joined).ok()
}
