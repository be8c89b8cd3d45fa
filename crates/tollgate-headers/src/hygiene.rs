//! [`HeaderHygiene`]: what an outbound request may carry to a provider.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::Request;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use tower_layer::Layer;
use tower_service::Service;

use crate::InjectedHeaders;
use crate::names::{connection_nominated, is_hop_by_hop, join, te_has_trailers};

/// Browser-controlled and spoofable headers removed by [`HeaderHygiene::server_to_server`].
/// The last three are backend-owned: a copy that came with the caller's request is removed,
/// the backend's own value (recorded in [`InjectedHeaders`]) never is.
const SERVER_TO_SERVER: [&str; 20] = [
    "origin",
    "referer",
    "cookie",
    "cookie2",
    "sec-gpc",
    "dnt",
    "priority",
    "upgrade-insecure-requests",
    "forwarded",
    "x-real-ip",
    "true-client-ip",
    "cf-connecting-ip",
    "fastly-client-ip",
    "x-requested-with",
    "authorization",
    "proxy-authorization",
    "host",
    "x-api-key",
    "access-token",
    "x-user-ip",
];

/// Prefixes removed by [`HeaderHygiene::server_to_server`].
const SERVER_TO_SERVER_PREFIXES: [&str; 4] =
    ["sec-fetch-", "sec-ch-", "sec-websocket-", "x-forwarded-"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Remove what is listed, forward the rest.
    Deny,
    /// Forward only what is kept.
    Allow,
}

/// The rules for what an outbound (server-to-server) request may carry.
///
/// Transak's rule: the backend never forwards browser-controlled headers (`Origin`,
/// `Referer`, ...) to the provider; it strips them or substitutes values it owns. A
/// `HeaderHygiene` applies, in this order:
///
/// 1. Hop-by-hop headers are removed (RFC 9110 section 7.6.1): every `Connection` field is
///    parsed first (names compared case-insensitively, whitespace and empty list elements
///    ignored, tokens that are not header names skipped) and every header it names is
///    removed, then `Connection`, `Keep-Alive`, `Proxy-Connection`, `TE`,
///    `Transfer-Encoding`, `Upgrade`, and, as Go's `httputil.ReverseProxy` does, `Trailer`,
///    `Proxy-Authenticate` and `Proxy-Authorization`. This happens in both modes. An
///    `Upgrade` request (`Connection: upgrade`, `Upgrade: websocket`) therefore goes out as a
///    plain request: a server-to-server call never switches protocols.
/// 2. In the default (denylist) mode, every [stripped](HeaderHygiene::strip) name and prefix
///    is removed. In allowlist mode ([`HeaderHygiene::only`]) every header that is not
///    [kept](HeaderHygiene::keep) is removed.
/// 3. Every [substitute](HeaderHygiene::substitute) is inserted, replacing whatever was there.
///
/// A [kept](HeaderHygiene::keep) header is never removed, not even a hop-by-hop one or one
/// that `Connection` names, with one exception: a kept `TE` is forwarded as exactly
/// `te: trailers` when one of its values lists the `trailers` token and removed otherwise
/// (as Go's reverse proxy does; gRPC needs `te: trailers`, and no other transfer coding
/// can be asked of the next hop on the caller's behalf). A header recorded in the request's
/// [`InjectedHeaders`] (a secret header set by [`SecretHeader`](crate::SecretHeader)) is
/// never removed nor substituted, whichever way the layers are stacked.
///
/// Use it as a layer through [`HeaderHygieneLayer`] (or directly: `HeaderHygiene` is a
/// `Layer` too), or call [`apply`](HeaderHygiene::apply) on a `HeaderMap`.
///
/// # Which mode to use
///
/// **Prefer the allowlist, [`HeaderHygiene::only`]**: name the few headers the provider's API
/// needs (`Content-Type`, `Accept`, an idempotency key) and nothing else leaves your backend,
/// including headers browsers start sending next year. The denylist preset,
/// [`HeaderHygiene::server_to_server`], removes the headers known to be browser-controlled,
/// spoofable or credentials and forwards everything else, among them browser headers such as
/// `Accept-Language` and `User-Agent`; its docs list exactly what it removes and what it lets
/// through. Neither mode looks at the body: `Content-Length` is forwarded as it came, so a
/// layer or handler that rebuilds the body must set it (or remove it and let the HTTP client
/// compute it).
///
/// ```
/// use http::{HeaderMap, HeaderName, HeaderValue, header};
/// use tollgate_headers::HeaderHygiene;
///
/// // Recommended: say what goes out.
/// let hygiene = HeaderHygiene::only([
///     header::CONTENT_TYPE,
///     header::ACCEPT,
///     HeaderName::from_static("idempotency-key"),
/// ])
/// .substitute(header::USER_AGENT, HeaderValue::from_static("shop-backend/1.4.0"));
///
/// let mut headers = HeaderMap::new();
/// headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
/// headers.insert(header::ACCEPT_LANGUAGE, HeaderValue::from_static("he-IL"));
/// headers.insert(header::USER_AGENT, HeaderValue::from_static("Mozilla/5.0"));
/// hygiene.apply(&mut headers, None);
/// assert_eq!(headers.len(), 2);
/// assert_eq!(headers[header::USER_AGENT], "shop-backend/1.4.0");
/// assert!(headers.get(header::ACCEPT_LANGUAGE).is_none());
/// ```
///
/// ```
/// use http::{HeaderMap, HeaderValue, header};
/// use tollgate_headers::HeaderHygiene;
///
/// let hygiene = HeaderHygiene::server_to_server()
///     .substitute(header::USER_AGENT, HeaderValue::from_static("shop-backend/1.4.0"));
///
/// let mut headers = HeaderMap::new();
/// headers.insert(header::ORIGIN, HeaderValue::from_static("https://evil.example"));
/// headers.insert(header::COOKIE, HeaderValue::from_static("session=abc"));
/// headers.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
/// headers.insert(header::USER_AGENT, HeaderValue::from_static("Mozilla/5.0"));
/// headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
///
/// let report = hygiene.apply(&mut headers, None);
/// assert_eq!(headers.len(), 2);
/// assert_eq!(headers[header::USER_AGENT], "shop-backend/1.4.0");
/// assert_eq!(headers[header::CONTENT_TYPE], "application/json");
/// assert_eq!(report.removed().len(), 3);
/// ```
#[derive(Clone)]
#[must_use]
pub struct HeaderHygiene {
    mode: Mode,
    strip: Vec<HeaderName>,
    strip_prefixes: Vec<String>,
    keep: Vec<HeaderName>,
    substitutes: Vec<(HeaderName, HeaderValue)>,
    sensitive: Vec<HeaderName>,
}

/// Credential headers whose every value hygiene marks sensitive, in every mode.
const SENSITIVE: [&str; 5] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "x-api-key",
    "access-token",
];

fn default_sensitive() -> Vec<HeaderName> {
    SENSITIVE
        .iter()
        .map(|name| HeaderName::from_static(name))
        .collect()
}

impl HeaderHygiene {
    /// The server-to-server preset: removes the hop-by-hop headers and the browser-controlled
    /// or spoofable ones: `Origin`, `Referer`, `Cookie`, `Cookie2`, `Sec-Fetch-*`,
    /// `Sec-CH-*`, `Sec-GPC`, `DNT`, `Priority`, `Upgrade-Insecure-Requests`,
    /// `X-Forwarded-*`, `Forwarded`, `X-Real-IP`, `True-Client-IP`, `CF-Connecting-IP`,
    /// `Fastly-Client-IP`, `X-Requested-With`, `Sec-WebSocket-*` (a browser's handshake
    /// headers, meaningless once `Upgrade` is gone), `Host` (the browser's `Host` names the
    /// backend, not the provider; the HTTP client sets the right one from the URI;
    /// [keep](HeaderHygiene::keep) it if you set it yourself), and the credential and
    /// backend-owned headers `Authorization`, `Proxy-Authorization`, `x-api-key`,
    /// `access-token` and `x-user-ip`.
    ///
    /// A header that a tollgate layer set and recorded in [`InjectedHeaders`] is never removed,
    /// so this preset is safe in any order: placed before the secret, token and `x-user-ip`
    /// layers it removes the caller's copies and they set their own; placed after them it
    /// keeps their values (recorded) and still removes any copy that came with the request.
    ///
    /// This is a denylist: what it does not name goes out. Prefer [`HeaderHygiene::only`]
    /// (see [which mode to use](HeaderHygiene#which-mode-to-use)) unless you forward headers
    /// you cannot list in advance.
    ///
    /// # What passes and why
    ///
    /// The whole preset; `*` is a prefix. (A test in `tests/server_to_server_table.rs`
    /// checks this table against the preset's lists and behaviour, both ways.)
    ///
    /// | Headers | Sent on? | Why |
    /// |---|---|---|
    /// | `connection`, `keep-alive`, `proxy-connection`, `te`, `transfer-encoding`, `upgrade`, `trailer`, `proxy-authenticate`, `proxy-authorization`, and every header `Connection` names | removed | Hop-by-hop (RFC 9110 section 7.6.1): they describe the browser's connection to you, not yours to the provider. A [kept](HeaderHygiene::keep) `te` goes out as `te: trailers` (gRPC). |
    /// | `origin`, `referer`, `cookie`, `cookie2`, `sec-fetch-*`, `sec-ch-*`, `sec-gpc`, `dnt`, `priority`, `upgrade-insecure-requests`, `x-requested-with`, `sec-websocket-*` | removed | Browser-controlled: they describe the shopper's page and session, and a provider may read them as yours (Transak's rule). [Substitute](HeaderHygiene::substitute) your own `origin`/`referer` if the provider wants one. |
    /// | `forwarded`, `x-forwarded-*`, `x-real-ip`, `true-client-ip`, `cf-connecting-ip`, `fastly-client-ip` | removed | Client-IP claims anyone can send; the end user's IP goes out as `x-user-ip`, set by tollgate-client-ip from the address your proxies vouch for. |
    /// | `host` | removed | The browser's `Host` names your backend; the HTTP client sets the provider's from the URI. [Keep](HeaderHygiene::keep) it if you set it yourself. |
    /// | `authorization`, `x-api-key`, `access-token`, `x-user-ip` | removed, unless a tollgate layer set it | Credentials and backend-owned values: a caller's copy never reaches the provider; the value a tollgate layer set is recorded in [`InjectedHeaders`] and kept. |
    /// | `content-type`, `content-encoding`, `content-length`, `accept`, `accept-encoding` | passes | They describe the body and the response wanted. Hygiene never reads the body: if you rebuild or change it, set `content-length` yourself (or remove it and let the client compute it). |
    /// | `accept-language`, `user-agent`, `cache-control`, `pragma`, `if-none-match`, `if-modified-since` | passes | Browser headers that are neither credentials nor identity claims, but tell the provider about the shopper's browser (locale, version): [`strip`](HeaderHygiene::strip) them, [substitute](HeaderHygiene::substitute) a backend `user-agent`, or use [`only`](HeaderHygiene::only). |
    /// | any other header, e.g. `idempotency-key`, `traceparent`, `x-request-id`, `x-custom-*` | passes | A denylist forwards what it does not know, including headers browsers add later. This is why [`only`](HeaderHygiene::only) is the recommended mode. |
    ///
    /// ```
    /// use http::{HeaderMap, HeaderValue, header};
    /// use tollgate_headers::HeaderHygiene;
    ///
    /// let mut headers = HeaderMap::new();
    /// headers.insert("x-forwarded-for", HeaderValue::from_static("203.0.113.9"));
    /// headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
    /// HeaderHygiene::server_to_server().apply(&mut headers, None);
    /// assert_eq!(headers.keys().collect::<Vec<_>>(), [header::ACCEPT]);
    /// ```
    pub fn server_to_server() -> Self {
        Self {
            mode: Mode::Deny,
            strip: SERVER_TO_SERVER
                .iter()
                .map(|name| HeaderName::from_static(name))
                .collect(),
            strip_prefixes: SERVER_TO_SERVER_PREFIXES
                .iter()
                .map(|prefix| (*prefix).to_owned())
                .collect(),
            keep: Vec::new(),
            substitutes: Vec::new(),
            sensitive: default_sensitive(),
        }
    }

    /// Only hop-by-hop removal: forwards every end-to-end header. A base for a custom
    /// denylist built with [`strip`](HeaderHygiene::strip).
    ///
    /// ```
    /// use http::{HeaderMap, HeaderValue, header};
    /// use tollgate_headers::HeaderHygiene;
    ///
    /// let mut headers = HeaderMap::new();
    /// headers.insert(header::CONNECTION, HeaderValue::from_static("x-trace"));
    /// headers.insert("x-trace", HeaderValue::from_static("1"));
    /// headers.insert(header::ORIGIN, HeaderValue::from_static("https://shop.example"));
    /// HeaderHygiene::hop_by_hop().apply(&mut headers, None);
    /// assert_eq!(headers.keys().collect::<Vec<_>>(), [header::ORIGIN]);
    /// ```
    pub fn hop_by_hop() -> Self {
        Self {
            mode: Mode::Deny,
            strip: Vec::new(),
            strip_prefixes: Vec::new(),
            keep: Vec::new(),
            substitutes: Vec::new(),
            sensitive: default_sensitive(),
        }
    }

    /// Allowlist mode: forwards nothing but the named headers (and the
    /// [substitutes](HeaderHygiene::substitute) and [injected](InjectedHeaders) ones), so a
    /// header a browser starts sending tomorrow can never leak. The named headers are kept
    /// as by [`keep`](HeaderHygiene::keep).
    ///
    /// ```
    /// use http::{HeaderMap, HeaderValue, header};
    /// use tollgate_headers::HeaderHygiene;
    ///
    /// let hygiene = HeaderHygiene::only([header::CONTENT_TYPE, header::ACCEPT]);
    /// let mut headers = HeaderMap::new();
    /// headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    /// headers.insert("sec-new-browser-hint", HeaderValue::from_static("?1"));
    /// hygiene.apply(&mut headers, None);
    /// assert_eq!(headers.keys().collect::<Vec<_>>(), [header::CONTENT_TYPE]);
    /// ```
    pub fn only(names: impl IntoIterator<Item = HeaderName>) -> Self {
        let mut hygiene = Self::hop_by_hop();
        hygiene.mode = Mode::Allow;
        for name in names {
            hygiene = hygiene.keep(name);
        }
        hygiene
    }

    /// Also removes `name` (in denylist mode; in allowlist mode, stops keeping it).
    pub fn strip(mut self, name: HeaderName) -> Self {
        self.keep.retain(|kept| kept != name);
        if !self.strip.contains(&name) {
            self.strip.push(name);
        }
        self
    }

    /// Also removes every header whose name starts with `prefix` (compared in lowercase),
    /// e.g. `"x-amz-"`. Only used in denylist mode.
    pub fn strip_prefix(mut self, prefix: impl Into<String>) -> Self {
        let prefix = prefix.into().to_ascii_lowercase();
        if !self.strip_prefixes.contains(&prefix) {
            self.strip_prefixes.push(prefix);
        }
        self
    }

    /// Never removes `name`: it overrides the preset, [`strip`](HeaderHygiene::strip),
    /// prefixes, the hop-by-hop rules and `Connection` nominations. In allowlist mode it adds
    /// `name` to the allowlist.
    ///
    /// `TE` is the exception: kept, it goes out as `te: trailers` when the request asked for
    /// trailers and not at all otherwise (what a gRPC client needs).
    ///
    /// ```
    /// use http::{HeaderMap, HeaderValue, header};
    /// use tollgate_headers::HeaderHygiene;
    ///
    /// let grpc = HeaderHygiene::server_to_server().keep(header::TE);
    /// let mut headers = HeaderMap::new();
    /// headers.insert(header::TE, HeaderValue::from_static("deflate;q=0.5, Trailers"));
    /// grpc.apply(&mut headers, None);
    /// assert_eq!(headers[header::TE], "trailers");
    ///
    /// let mut headers = HeaderMap::new();
    /// headers.insert(header::TE, HeaderValue::from_static("gzip"));
    /// grpc.apply(&mut headers, None);
    /// assert!(headers.get(header::TE).is_none());
    /// ```
    pub fn keep(mut self, name: HeaderName) -> Self {
        self.strip.retain(|stripped| stripped != name);
        if !self.keep.contains(&name) {
            self.keep.push(name);
        }
        self
    }

    /// Sets `name` to a value the backend owns (inserted after removal, replacing every value
    /// the request had), e.g. `Origin`/`Referer` of the backend's own site or
    /// `User-Agent: <backend>/<version>`. A later call for the same name replaces the value.
    ///
    /// A header recorded in [`InjectedHeaders`] is not substituted.
    pub fn substitute(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.substitutes.retain(|(existing, _)| existing != name);
        self.substitutes.push((name, value));
        self
    }

    /// Also marks every value of `name` that leaves hygiene as sensitive (as tower-http's
    /// `SetSensitiveRequestHeadersLayer` does, but after removal and substitution, so values
    /// set by layers outside hygiene are covered). `Authorization`, `Proxy-Authorization`,
    /// `Cookie`, `x-api-key`, `access-token` and every header in [`InjectedHeaders`] are
    /// always marked. A sensitive value prints as `Sensitive` in `Debug` and goes out over
    /// HTTP/2 as a never-indexed field.
    ///
    /// ```
    /// use http::{HeaderMap, HeaderValue, header};
    /// use tollgate_headers::HeaderHygiene;
    ///
    /// let hygiene = HeaderHygiene::only([header::AUTHORIZATION, "x-session".parse().unwrap()])
    ///     .sensitive("x-session".parse().unwrap());
    /// let mut headers = HeaderMap::new();
    /// headers.append(header::AUTHORIZATION, HeaderValue::from_static("Bearer a"));
    /// headers.append(header::AUTHORIZATION, HeaderValue::from_static("Bearer b"));
    /// headers.insert("x-session", HeaderValue::from_static("s3ss"));
    /// hygiene.apply(&mut headers, None);
    /// assert!(headers.values().all(HeaderValue::is_sensitive));
    /// ```
    pub fn sensitive(mut self, name: HeaderName) -> Self {
        if !self.sensitive.contains(&name) {
            self.sensitive.push(name);
        }
        self
    }

    /// Whether `name` would be removed (before substitution), leaving `Connection` aside.
    fn removes(&self, name: &HeaderName, nominated: &[HeaderName]) -> bool {
        if self.keep.contains(name) {
            return false;
        }
        if is_hop_by_hop(name) || nominated.contains(name) {
            return true;
        }
        match self.mode {
            Mode::Allow => true,
            Mode::Deny => {
                self.strip.contains(name)
                    || self
                        .strip_prefixes
                        .iter()
                        .any(|prefix| name.as_str().starts_with(prefix.as_str()))
            }
        }
    }

    /// Applies the rules to `headers`. Headers named in `injected` are left untouched.
    /// Returns the names that were removed and substituted.
    pub fn apply(
        &self,
        headers: &mut HeaderMap,
        injected: Option<&InjectedHeaders>,
    ) -> HygieneReport {
        let protected = |name: &HeaderName| injected.is_some_and(|i| i.contains(name));
        let nominated = connection_nominated(headers);
        let mut doomed: Vec<HeaderName> = headers
            .keys()
            .filter(|name| !protected(name) && self.removes(name, &nominated))
            .cloned()
            .collect();
        // A kept `TE` carries `trailers` only (Go's reverse proxy, gRPC), or nothing.
        if headers.contains_key(header::TE)
            && self.keep.contains(&header::TE)
            && !protected(&header::TE)
        {
            if te_has_trailers(headers) {
                headers.insert(header::TE, HeaderValue::from_static("trailers"));
            } else {
                doomed.push(header::TE);
            }
        }
        for name in &doomed {
            headers.remove(name);
        }
        let mut report = HygieneReport::default();
        for (name, value) in &self.substitutes {
            if protected(name) {
                continue;
            }
            let had_value =
                headers.insert(name.clone(), value.clone()).is_some() || doomed.contains(name);
            if had_value {
                report.replaced.push(name.clone());
            } else {
                report.added.push(name.clone());
            }
        }
        let injected_names = injected.map_or(&[][..], InjectedHeaders::names);
        for name in self.sensitive.iter().chain(injected_names) {
            if let http::header::Entry::Occupied(mut entry) = headers.entry(name) {
                for value in entry.iter_mut() {
                    value.set_sensitive(true);
                }
            }
        }
        report.removed = doomed
            .into_iter()
            .filter(|name| !report.replaced.contains(name))
            .collect();
        report
    }

    /// Applies the rules to a request, honouring its [`InjectedHeaders`], and logs a debug
    /// event (target `tollgate`) with the names of removed and substituted headers.
    fn apply_to_request<B>(&self, request: Request<B>) -> Request<B> {
        let (mut parts, body) = request.into_parts();
        let report = self.apply(&mut parts.headers, parts.extensions.get());
        if !report.is_empty() {
            tracing::debug!(
                target: "tollgate",
                layer = "header_hygiene",
                removed = %join(&report.removed),
                replaced = %join(&report.replaced),
                added = %join(&report.added),
                "outbound headers cleaned"
            );
        }
        Request::from_parts(parts, body)
    }
}

impl<S> Layer<S> for HeaderHygiene {
    type Service = HeaderHygieneService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        HeaderHygieneService::new(inner, self.clone())
    }
}

/// Applies a [`HeaderHygiene`] to every outbound request before it reaches the client.
///
/// Place it outside the layers that set backend-owned headers (secret headers, `x-user-ip`,
/// signatures): hygiene first, then injection. The other order works too for headers recorded
/// in [`InjectedHeaders`], but signatures computed over headers must come after hygiene.
///
/// ```
/// use http::{HeaderValue, Request, header};
/// use tower::{ServiceBuilder, ServiceExt, service_fn};
/// use tollgate_headers::{HeaderHygiene, HeaderHygieneLayer};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let client = ServiceBuilder::new()
///     .layer(HeaderHygieneLayer::new(HeaderHygiene::server_to_server()))
///     .service(service_fn(|request: Request<()>| async move {
///         Ok::<_, std::convert::Infallible>(request.headers().clone())
///     }));
///
/// let request = Request::builder()
///     .uri("https://api-gateway.transak.com/partners/api/v2/orders")
///     .header(header::REFERER, "https://shop.example/checkout")
///     .header(header::ACCEPT, "application/json")
///     .body(())
///     .unwrap();
/// let sent = client.oneshot(request).await.unwrap();
/// assert!(sent.get(header::REFERER).is_none());
/// assert_eq!(sent[header::ACCEPT], "application/json");
/// # }
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct HeaderHygieneLayer {
    hygiene: Arc<HeaderHygiene>,
}

impl HeaderHygieneLayer {
    /// A layer applying `hygiene`.
    pub fn new(hygiene: HeaderHygiene) -> Self {
        Self {
            hygiene: Arc::new(hygiene),
        }
    }

    /// A layer applying [`HeaderHygiene::server_to_server`].
    pub fn server_to_server() -> Self {
        Self::new(HeaderHygiene::server_to_server())
    }
}

impl From<HeaderHygiene> for HeaderHygieneLayer {
    fn from(hygiene: HeaderHygiene) -> Self {
        Self::new(hygiene)
    }
}

impl<S> Layer<S> for HeaderHygieneLayer {
    type Service = HeaderHygieneService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        HeaderHygieneService {
            inner,
            hygiene: Arc::clone(&self.hygiene),
        }
    }
}

/// The service of [`HeaderHygieneLayer`]. Never fails a request: it only removes and sets
/// headers, then calls the inner service.
#[derive(Clone, Debug)]
#[must_use]
pub struct HeaderHygieneService<S> {
    inner: S,
    hygiene: Arc<HeaderHygiene>,
}

impl<S> HeaderHygieneService<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, hygiene: HeaderHygiene) -> Self {
        Self {
            inner,
            hygiene: Arc::new(hygiene),
        }
    }

    /// A [`HeaderHygieneLayer`] (same as [`HeaderHygieneLayer::new`]).
    pub fn layer(hygiene: HeaderHygiene) -> HeaderHygieneLayer {
        HeaderHygieneLayer::new(hygiene)
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

impl<S, B> Service<Request<B>> for HeaderHygieneService<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let request = self.hygiene.apply_to_request(request);
        self.inner.call(request)
    }
}

/// What [`HeaderHygiene::apply`] changed: header names only, never values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HygieneReport {
    removed: Vec<HeaderName>,
    replaced: Vec<HeaderName>,
    added: Vec<HeaderName>,
}

impl HygieneReport {
    /// Headers removed and not substituted.
    pub fn removed(&self) -> &[HeaderName] {
        &self.removed
    }

    /// Substituted headers that had a value before (which is gone).
    pub fn replaced(&self) -> &[HeaderName] {
        &self.replaced
    }

    /// Substituted headers that were absent.
    pub fn added(&self) -> &[HeaderName] {
        &self.added
    }

    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.removed.is_empty() && self.replaced.is_empty() && self.added.is_empty()
    }
}

impl fmt::Debug for HeaderHygiene {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HeaderHygiene")
            .field("mode", &self.mode)
            .field("strip", &self.strip)
            .field("strip_prefixes", &self.strip_prefixes)
            .field("keep", &self.keep)
            .field("sensitive", &self.sensitive)
            .field(
                "substitutes",
                &self.substitutes.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use http::header;

    use super::*;

    fn map(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        headers
    }

    fn names(headers: &HeaderMap) -> Vec<&str> {
        let mut names: Vec<_> = headers.keys().map(HeaderName::as_str).collect();
        names.sort_unstable();
        names
    }

    #[test]
    fn keep_overrides_preset_and_hop_by_hop() {
        let hygiene = HeaderHygiene::server_to_server()
            .keep(header::TE)
            .keep(header::AUTHORIZATION);
        let mut headers = map(&[
            ("te", "trailers"),
            ("authorization", "Bearer backend"),
            ("transfer-encoding", "chunked"),
            ("referer", "https://a.example/"),
        ]);
        let report = hygiene.apply(&mut headers, None);
        assert_eq!(names(&headers), ["authorization", "te"]);
        assert_eq!(
            report.removed(),
            [header::TRANSFER_ENCODING, header::REFERER]
        );
        assert!(report.replaced().is_empty() && report.added().is_empty());
    }

    #[test]
    fn strip_and_keep_are_last_wins() {
        let x_foo = HeaderName::from_static("x-foo");
        let stripped = HeaderHygiene::hop_by_hop()
            .keep(x_foo.clone())
            .strip(x_foo.clone());
        let mut headers = map(&[("x-foo", "1")]);
        stripped.apply(&mut headers, None);
        assert!(headers.is_empty());

        let kept = HeaderHygiene::hop_by_hop().strip(x_foo.clone()).keep(x_foo);
        let mut headers = map(&[("x-foo", "1")]);
        kept.apply(&mut headers, None);
        assert_eq!(names(&headers), ["x-foo"]);

        let prefixed = HeaderHygiene::hop_by_hop().strip_prefix("X-Amz-");
        let mut headers = map(&[("x-amz-date", "1"), ("x-amzz", "2")]);
        prefixed.apply(&mut headers, None);
        assert_eq!(names(&headers), ["x-amzz"]);
    }

    #[test]
    fn injected_headers_are_never_removed_nor_substituted() {
        let mut extensions = http::Extensions::new();
        InjectedHeaders::record(&mut extensions, header::AUTHORIZATION);
        InjectedHeaders::record(&mut extensions, HeaderName::from_static("x-api-key"));
        let injected = extensions.get::<InjectedHeaders>();

        let hygiene = HeaderHygiene::only([header::ACCEPT])
            .substitute(header::AUTHORIZATION, HeaderValue::from_static("other"))
            .substitute(header::USER_AGENT, HeaderValue::from_static("backend/1"));
        let mut headers = map(&[
            ("connection", "x-api-key, authorization, x-foo"),
            ("x-api-key", "secret"),
            ("authorization", "Bearer backend"),
            ("x-foo", "1"),
            ("accept", "*/*"),
        ]);
        let report = hygiene.apply(&mut headers, injected);
        assert_eq!(
            names(&headers),
            ["accept", "authorization", "user-agent", "x-api-key"]
        );
        assert_eq!(headers[header::AUTHORIZATION], "Bearer backend");
        assert_eq!(
            report.removed(),
            [header::CONNECTION, HeaderName::from_static("x-foo")]
        );
        assert_eq!(report.added(), [header::USER_AGENT]);

        // Without the extension the same headers go.
        let mut headers = map(&[("connection", "x-api-key"), ("x-api-key", "from-browser")]);
        hygiene.apply(&mut headers, None);
        assert_eq!(names(&headers), ["authorization", "user-agent"]);
    }

    #[test]
    fn substitute_replaces_every_value_and_reports_it() {
        let hygiene = HeaderHygiene::server_to_server()
            .substitute(
                header::ORIGIN,
                HeaderValue::from_static("https://first.example"),
            )
            .substitute(
                header::ORIGIN,
                HeaderValue::from_static("https://shop.example"),
            );
        let mut headers = map(&[
            ("origin", "https://a.example"),
            ("origin", "https://b.example"),
        ]);
        let report = hygiene.apply(&mut headers, None);
        let values: Vec<_> = headers.get_all(header::ORIGIN).iter().collect();
        assert_eq!(values, ["https://shop.example"]);
        assert_eq!(report.replaced(), [header::ORIGIN]);
        assert!(report.removed().is_empty());
        let debug = format!("{hygiene:?}");
        assert!(debug.contains("substitutes: [\"origin\"]"), "{debug}");
    }

    /// Go's `TestReverseProxy`: the hop-by-hop headers of the request are gone, `TE:
    /// trailers` is forwarded only where it is kept (gRPC), end-to-end headers pass.
    #[test]
    fn go_reverse_proxy_hop_by_hop_headers() {
        let request = || {
            map(&[
                ("connection", "close"),
                ("keep-alive", "timeout=5, max=1000"),
                ("proxy-connection", "keep-alive"),
                ("te", "trailers"),
                ("trailer", "x-checksum"),
                ("transfer-encoding", "chunked"),
                ("upgrade", "foo"),
                ("proxy-authenticate", "Basic"),
                ("proxy-authorization", "Basic Zm9vOmJhcg=="),
                ("x-foo", "bar"),
                ("content-type", "application/grpc"),
            ])
        };
        let mut headers = request();
        let report = HeaderHygiene::hop_by_hop().apply(&mut headers, None);
        assert_eq!(names(&headers), ["content-type", "x-foo"]);
        assert_eq!(report.removed().len(), 9);

        let mut headers = request();
        HeaderHygiene::hop_by_hop()
            .keep(header::TE)
            .apply(&mut headers, None);
        assert_eq!(names(&headers), ["content-type", "te", "x-foo"]);
        assert_eq!(headers[header::TE], "trailers");
    }

    /// Go's `TestReverseProxyStripHeadersPresentInConnection` and
    /// `TestReverseProxyStripEmptyConnection`: several `Connection` fields, an empty one,
    /// tokens in any case.
    #[test]
    fn go_headers_named_in_several_connection_fields_are_stripped() {
        let mut headers = map(&[
            ("connection", ""),
            ("connection", "Upgrade, X-Fake-Connection-Token"),
            ("connection", "X-Some-Conn-Header"),
            ("x-fake-connection-token", "should be deleted"),
            ("x-some-conn-header", "should be deleted"),
            ("upgrade", "websocket"),
            ("x-end-to-end", "kept"),
        ]);
        let report = HeaderHygiene::hop_by_hop().apply(&mut headers, None);
        assert_eq!(names(&headers), ["x-end-to-end"]);
        let mut removed: Vec<_> = report.removed().iter().map(HeaderName::as_str).collect();
        removed.sort_unstable();
        assert_eq!(
            removed,
            [
                "connection",
                "upgrade",
                "x-fake-connection-token",
                "x-some-conn-header"
            ]
        );
    }

    #[test]
    fn connection_list_syntax_whitespace_case_and_empty_elements() {
        for connection in [
            "close, X-Foo",
            "X-FOO",
            "  ,x-foo ,\t, ,X-Bar,,",
            "\tx-foo\t,keep-alive",
            ",,,x-foo",
        ] {
            let mut headers = map(&[("x-foo", "1"), ("x-bar", "2"), ("accept", "*/*")]);
            headers.insert(header::CONNECTION, HeaderValue::from_static(connection));
            headers.insert("keep-alive", HeaderValue::from_static("timeout=5"));
            HeaderHygiene::hop_by_hop().apply(&mut headers, None);
            assert!(!headers.contains_key("x-foo"), "{connection:?}");
            assert!(!headers.contains_key(header::CONNECTION), "{connection:?}");
            assert!(!headers.contains_key("keep-alive"), "{connection:?}");
            assert!(headers.contains_key(header::ACCEPT), "{connection:?}");
            assert_eq!(
                headers.contains_key("x-bar"),
                !connection.contains("X-Bar"),
                "{connection:?}"
            );
        }
    }

    /// Tokens that are not header names name nothing: no panic, nothing else removed.
    #[test]
    fn invalid_tokens_in_connection_are_ignored() {
        let mut headers = map(&[
            ("x-foo", "1"),
            ("x-bar", "2"),
            ("x-baz", "3"),
            ("x-qux", "4"),
        ]);
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("\"x-foo\", x foo, x-bar;q=1, (x-baz), x-qux, :, @"),
        );
        headers.append(
            header::CONNECTION,
            HeaderValue::from_bytes(b"\xff\xfe, x-\x80").unwrap(),
        );
        HeaderHygiene::hop_by_hop().apply(&mut headers, None);
        assert_eq!(names(&headers), ["x-bar", "x-baz", "x-foo"]);
    }

    /// A kept header survives its nomination in `Connection` (the configuration is the
    /// backend's decision; the caller's `Connection` is not).
    #[test]
    fn kept_header_survives_connection_nomination() {
        let mut headers = map(&[
            ("connection", "content-type, x-foo"),
            ("content-type", "application/json"),
            ("x-foo", "1"),
        ]);
        HeaderHygiene::only([header::CONTENT_TYPE, HeaderName::from_static("x-foo")])
            .apply(&mut headers, None);
        assert_eq!(names(&headers), ["content-type", "x-foo"]);
    }

    /// A browser's WebSocket handshake and an h2c upgrade go out as plain requests.
    #[test]
    fn upgrade_requests_are_downgraded_to_plain_requests() {
        let mut websocket = map(&[
            ("connection", "keep-alive, Upgrade"),
            ("upgrade", "websocket"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("sec-websocket-version", "13"),
            ("sec-websocket-extensions", "permessage-deflate"),
            ("accept", "*/*"),
        ]);
        HeaderHygiene::server_to_server().apply(&mut websocket, None);
        assert_eq!(names(&websocket), ["accept"]);

        let mut h2c = map(&[
            ("connection", "Upgrade, HTTP2-Settings"),
            ("upgrade", "h2c"),
            ("http2-settings", "AAMAAABkAAQAAP__"),
            ("accept", "*/*"),
        ]);
        HeaderHygiene::hop_by_hop().apply(&mut h2c, None);
        assert_eq!(names(&h2c), ["accept"]);

        // Kept explicitly, the upgrade passes (a proxy that means to tunnel).
        let mut websocket = map(&[
            ("connection", "Upgrade"),
            ("upgrade", "websocket"),
            ("accept", "*/*"),
        ]);
        HeaderHygiene::hop_by_hop()
            .keep(header::CONNECTION)
            .keep(header::UPGRADE)
            .apply(&mut websocket, None);
        assert_eq!(names(&websocket), ["accept", "connection", "upgrade"]);
    }

    /// `TE` kept for gRPC: only the `trailers` token goes out; `Connection: te` (which RFC
    /// 9110 section 10.1.4 asks senders of `TE` to add) does not remove a kept `TE`.
    #[test]
    fn kept_te_is_reduced_to_trailers() {
        let grpc = HeaderHygiene::only([header::CONTENT_TYPE, header::TE]);
        for (values, expected) in [
            (&["trailers"][..], Some("trailers")),
            (&["gzip", "trailers"], Some("trailers")),
            (&["deflate;q=0.5, Trailers;q=1"], Some("trailers")),
            (&["gzip, deflate"], None),
            (&["trailers-please"], None),
        ] {
            let mut headers = map(&[("connection", "TE"), ("content-type", "application/grpc")]);
            for value in values {
                headers.append(header::TE, HeaderValue::from_str(value).unwrap());
            }
            let report = grpc.apply(&mut headers, None);
            let te: Vec<_> = headers.get_all(header::TE).iter().collect();
            match expected {
                Some(value) => assert_eq!(te, [value], "{values:?}"),
                None => {
                    assert!(te.is_empty(), "{values:?}");
                    assert!(report.removed().contains(&header::TE));
                }
            }
            assert!(!headers.contains_key(header::CONNECTION));
        }
        // Not kept: TE never goes out, trailers or not.
        let mut headers = map(&[("te", "trailers")]);
        HeaderHygiene::server_to_server().apply(&mut headers, None);
        assert!(headers.is_empty());
    }

    /// tower-http's `SetRequestHeader` modes: `substitute` overrides (every value replaced),
    /// never appends; a sensitive substitute stays sensitive.
    #[test]
    fn substitute_is_an_override_and_keeps_sensitivity() {
        let mut value = HeaderValue::from_static("Bearer backend-owned");
        value.set_sensitive(true);
        let hygiene = HeaderHygiene::server_to_server().substitute(header::AUTHORIZATION, value);
        let mut headers = map(&[
            ("authorization", "Bearer one"),
            ("authorization", "Bearer two"),
        ]);
        hygiene.apply(&mut headers, None);
        let values: Vec<_> = headers.get_all(header::AUTHORIZATION).iter().collect();
        assert_eq!(values, ["Bearer backend-owned"]);
        assert!(values[0].is_sensitive());
        assert!(!format!("{hygiene:?}").contains("backend-owned"));
    }

    /// tower-http's `SetSensitiveRequestHeadersLayer`, applied where hygiene runs: every
    /// value of a credential header, kept or injected or set by an outer layer, leaves
    /// marked sensitive; other headers are not marked.
    #[test]
    fn credential_values_leave_marked_sensitive() {
        let mut extensions = http::Extensions::new();
        InjectedHeaders::record(&mut extensions, HeaderName::from_static("x-partner"));
        let hygiene = HeaderHygiene::hop_by_hop().keep(header::AUTHORIZATION);
        let mut headers = map(&[
            ("authorization", "Bearer one"),
            ("authorization", "Bearer two"),
            ("cookie", "a=b"),
            ("x-api-key", "k"),
            ("access-token", "t"),
            ("x-partner", "p"),
            ("accept", "*/*"),
        ]);
        let report = hygiene.apply(&mut headers, extensions.get());
        assert!(report.is_empty());
        for (name, value) in &headers {
            assert_eq!(value.is_sensitive(), name != header::ACCEPT, "{name}");
        }
        assert_eq!(headers.len(), 7);
    }

    #[test]
    fn services_are_send_sync_clone() {
        fn assert_traits<T: Send + Sync + Clone>() {}
        assert_traits::<HeaderHygieneLayer>();
        assert_traits::<HeaderHygieneService<()>>();
        assert_traits::<crate::SecretHeaderLayer>();
        assert_traits::<crate::SecretHeader<()>>();
        assert_traits::<crate::TokenHeaderLayer>();
        assert_traits::<crate::TokenHeader<()>>();
        assert_traits::<crate::RequireHeadersLayer>();
        assert_traits::<crate::RequireHeaders<()>>();
        assert_traits::<crate::DefaultHeader<()>>();
        assert_traits::<crate::InboundHygieneLayer>();
        assert_traits::<crate::InboundHygieneService<()>>();
        fn assert_send<T: Send>() {}
        assert_send::<crate::OutboundFuture<std::future::Ready<Result<(), ()>>>>();
        assert_send::<crate::HeaderError>();
    }
}
