//! [`HeaderHygieneLayer`]: what an outbound request may carry to a provider.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::Request;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use tower_layer::Layer;
use tower_service::Service;

use super::names::{
    SENSITIVE, SERVER_TO_SERVER, SERVER_TO_SERVER_PREFIXES, connection_nominated, header_names,
    is_hop_by_hop, join, te_has_trailers,
};
use crate::InjectedHeaders;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Remove what is listed, forward the rest.
    Deny,
    /// Forward only what is kept.
    Allow,
}

/// The rules, shared by a layer, its clones and its services (copied on write).
#[derive(Clone)]
struct Rules {
    mode: Mode,
    strip: Vec<HeaderName>,
    strip_prefixes: Vec<String>,
    keep: Vec<HeaderName>,
    substitutes: Vec<(HeaderName, HeaderValue)>,
    sensitive: Vec<HeaderName>,
}

/// The rules for what an outbound (server-to-server) request may carry, and the layer that
/// applies them to every request before it reaches the HTTP client.
///
/// Transak's rule: the backend never forwards browser-controlled headers (`Origin`,
/// `Referer`, ...) to the provider; it strips them or substitutes values it owns. The layer
/// applies, in this order:
///
/// 1. Hop-by-hop headers are removed (RFC 9110 section 7.6.1): every `Connection` field is
///    parsed first (names compared case-insensitively, whitespace and empty list elements
///    ignored, tokens that are not header names skipped) and every header it names is
///    removed, then `Connection`, `Keep-Alive`, `Proxy-Connection`, `TE`,
///    `Transfer-Encoding`, `Upgrade`, and, as Go's `httputil.ReverseProxy` does, `Trailer`,
///    `Proxy-Authenticate` and `Proxy-Authorization`. This happens in both modes. An
///    `Upgrade` request (`Connection: upgrade`, `Upgrade: websocket`) therefore goes out as a
///    plain request: a server-to-server call never switches protocols.
/// 2. In denylist mode ([`server_to_server`](HeaderHygieneLayer::server_to_server),
///    [`hop_by_hop`](HeaderHygieneLayer::hop_by_hop)), every
///    [stripped](HeaderHygieneLayer::strip) name and prefix is removed. In allowlist mode
///    ([`only`](HeaderHygieneLayer::only), [`new`](HeaderHygieneLayer::new)) every header
///    that is not [kept](HeaderHygieneLayer::keep) is removed.
/// 3. Every [substitute](HeaderHygieneLayer::substitute) is inserted, replacing whatever was
///    there.
///
/// A [kept](HeaderHygieneLayer::keep) header is never removed, not even a hop-by-hop one or
/// one that `Connection` names, with one exception: a kept `TE` is forwarded as exactly
/// `te: trailers` when one of its values lists the `trailers` token and removed otherwise
/// (as Go's reverse proxy does; gRPC needs `te: trailers`, and no other transfer coding
/// can be asked of the next hop on the caller's behalf). A header recorded in the request's
/// [`InjectedHeaders`] (a secret header set by [`SecretHeader`](crate::SecretHeader)) is
/// never removed nor substituted, whichever way the layers are stacked.
///
/// The layer never fails a request: it removes and sets headers, then calls the inner
/// service, and logs a debug event (target `tollgate`) with the names (never the values) of
/// the headers it removed and substituted. [`apply`](HeaderHygieneLayer::apply) runs the same
/// rules on a `HeaderMap`, without tower.
///
/// Place it outside the layers that set backend-owned headers (secret headers, `x-user-ip`,
/// signatures): hygiene first, then injection. The other order works too for headers recorded
/// in [`InjectedHeaders`], but signatures computed over headers must come after hygiene.
///
/// The rules sit behind an `Arc`: cloning the layer is cheap, and a setter called on a layer
/// that has clones (or services) changes only its own copy.
///
/// # Which mode to use
///
/// **Prefer the allowlist, [`HeaderHygieneLayer::only`]**: name the few headers the
/// provider's API needs (`Content-Type`, `Accept`, an idempotency key) and nothing else
/// leaves your backend, including headers browsers start sending next year. The denylist
/// preset, [`HeaderHygieneLayer::server_to_server`], removes the headers known to be
/// browser-controlled, spoofable or credentials and forwards everything else, among them
/// browser headers such as `Accept-Language` and `User-Agent`; its docs list exactly what it
/// removes and what it lets through. Neither mode looks at the body: `Content-Length` is
/// forwarded as it came, so a layer or handler that rebuilds the body must set it (or remove
/// it and let the HTTP client compute it).
///
/// ```
/// use http::{HeaderMap, HeaderName, HeaderValue, header};
/// use tollgate_headers::HeaderHygieneLayer;
///
/// // Recommended: say what goes out.
/// let hygiene = HeaderHygieneLayer::only([
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
/// As a layer on an HTTP client:
///
/// ```
/// use http::{HeaderValue, Request, header};
/// use tower::{ServiceBuilder, ServiceExt, service_fn};
/// use tollgate_headers::HeaderHygieneLayer;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let client = ServiceBuilder::new()
///     .layer(
///         HeaderHygieneLayer::server_to_server()
///             .substitute(header::USER_AGENT, HeaderValue::from_static("shop-backend/1.4.0")),
///     )
///     .service(service_fn(|request: Request<()>| async move {
///         Ok::<_, std::convert::Infallible>(request.headers().clone())
///     }));
///
/// let request = Request::builder()
///     .uri("https://api-gateway.transak.com/partners/api/v2/orders")
///     .header(header::REFERER, "https://shop.example/checkout")
///     .header(header::COOKIE, "session=abc")
///     .header("sec-fetch-site", "cross-site")
///     .header(header::USER_AGENT, "Mozilla/5.0")
///     .header(header::ACCEPT, "application/json")
///     .body(())
///     .unwrap();
/// let sent = client.oneshot(request).await.unwrap();
/// assert_eq!(sent.len(), 2);
/// assert_eq!(sent[header::ACCEPT], "application/json");
/// assert_eq!(sent[header::USER_AGENT], "shop-backend/1.4.0");
/// # }
/// ```
#[derive(Clone)]
#[must_use]
pub struct HeaderHygieneLayer {
    rules: Arc<Rules>,
}

impl HeaderHygieneLayer {
    /// An allowlist that keeps nothing yet: forwards only the headers later
    /// [kept](HeaderHygieneLayer::keep), the [substitutes](HeaderHygieneLayer::substitute)
    /// and the [injected](InjectedHeaders) ones. The same as `only([])`, the safest start:
    /// a header you forgot to list is not sent, rather than leaked.
    ///
    /// ```
    /// use http::{HeaderMap, HeaderValue, header};
    /// use tollgate_headers::HeaderHygieneLayer;
    ///
    /// let hygiene = HeaderHygieneLayer::new().keep(header::CONTENT_TYPE);
    /// let mut headers = HeaderMap::new();
    /// headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    /// headers.insert(header::ACCEPT_LANGUAGE, HeaderValue::from_static("he-IL"));
    /// hygiene.apply(&mut headers, None);
    /// assert_eq!(headers.keys().collect::<Vec<_>>(), [header::CONTENT_TYPE]);
    /// ```
    pub fn new() -> Self {
        Self::only([])
    }

    /// The server-to-server preset: removes the hop-by-hop headers and the browser-controlled
    /// or spoofable ones: `Origin`, `Referer`, `Cookie`, `Cookie2`, `Sec-Fetch-*`,
    /// `Sec-CH-*`, `Sec-GPC`, `DNT`, `Priority`, `Upgrade-Insecure-Requests`,
    /// `X-Forwarded-*`, `Forwarded`, `X-Real-IP`, `True-Client-IP`, `CF-Connecting-IP`,
    /// `Fastly-Client-IP`, `X-Requested-With`, `Sec-WebSocket-*` (a browser's handshake
    /// headers, meaningless once `Upgrade` is gone), `Host` (the browser's `Host` names the
    /// backend, not the provider; the HTTP client sets the right one from the URI;
    /// [keep](HeaderHygieneLayer::keep) it if you set it yourself), and the credential and
    /// backend-owned headers `Authorization`, `Proxy-Authorization`, `x-api-key`,
    /// `access-token` and `x-user-ip`.
    ///
    /// A header that a tollgate layer set and recorded in [`InjectedHeaders`] is never removed,
    /// so this preset is safe in any order: placed before the secret, token and `x-user-ip`
    /// layers it removes the caller's copies and they set their own; placed after them it
    /// keeps their values (recorded) and still removes any copy that came with the request.
    ///
    /// This is a denylist: what it does not name goes out. Prefer [`HeaderHygieneLayer::only`]
    /// (see [which mode to use](HeaderHygieneLayer#which-mode-to-use)) unless you forward
    /// headers you cannot list in advance.
    ///
    /// # What passes and why
    ///
    /// The whole preset; `*` is a prefix. (A test in `tests/server_to_server_table.rs`
    /// checks this table against the preset's lists and behaviour, both ways.)
    ///
    /// | Headers | Sent on? | Why |
    /// |---|---|---|
    /// | `connection`, `keep-alive`, `proxy-connection`, `te`, `transfer-encoding`, `upgrade`, `trailer`, `proxy-authenticate`, `proxy-authorization`, and every header `Connection` names | removed | Hop-by-hop (RFC 9110 section 7.6.1): they describe the browser's connection to you, not yours to the provider. A [kept](HeaderHygieneLayer::keep) `te` goes out as `te: trailers` (gRPC). |
    /// | `origin`, `referer`, `cookie`, `cookie2`, `sec-fetch-*`, `sec-ch-*`, `sec-gpc`, `dnt`, `priority`, `upgrade-insecure-requests`, `x-requested-with`, `sec-websocket-*` | removed | Browser-controlled: they describe the shopper's page and session, and a provider may read them as yours (Transak's rule). [Substitute](HeaderHygieneLayer::substitute) your own `origin`/`referer` if the provider wants one. |
    /// | `forwarded`, `x-forwarded-*`, `x-real-ip`, `true-client-ip`, `cf-connecting-ip`, `fastly-client-ip`, `x-client-ip`, `x-cluster-client-ip`, `x-original-forwarded-for`, `client-ip` | removed | Client-IP claims anyone can send; the end user's IP goes out as `x-user-ip`, set by tollgate-client-ip from the address your proxies vouch for. |
    /// | `host` | removed | The browser's `Host` names your backend; the HTTP client sets the provider's from the URI. [Keep](HeaderHygieneLayer::keep) it if you set it yourself. |
    /// | `authorization`, `x-api-key`, `access-token`, `x-user-ip` | removed, unless a tollgate layer set it | Credentials and backend-owned values: a caller's copy never reaches the provider; the value a tollgate layer set is recorded in [`InjectedHeaders`] and kept. |
    /// | `content-type`, `content-encoding`, `content-length`, `accept`, `accept-encoding` | passes | They describe the body and the response wanted. Hygiene never reads the body: if you rebuild or change it, set `content-length` yourself (or remove it and let the client compute it). |
    /// | `accept-language`, `user-agent`, `cache-control`, `pragma`, `if-none-match`, `if-modified-since` | passes | Browser headers that are neither credentials nor identity claims, but tell the provider about the shopper's browser (locale, version): [`strip`](HeaderHygieneLayer::strip) them, [substitute](HeaderHygieneLayer::substitute) a backend `user-agent`, or use [`only`](HeaderHygieneLayer::only). |
    /// | any other header, e.g. `idempotency-key`, `traceparent`, `x-request-id`, `x-custom-*` | passes | A denylist forwards what it does not know, including headers browsers add later. This is why [`only`](HeaderHygieneLayer::only) is the recommended mode. |
    ///
    /// ```
    /// use http::{HeaderMap, HeaderValue, header};
    /// use tollgate_headers::HeaderHygieneLayer;
    ///
    /// let hygiene = HeaderHygieneLayer::server_to_server()
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
    ///
    /// ```
    /// use http::{HeaderMap, HeaderValue, header};
    /// use tollgate_headers::HeaderHygieneLayer;
    ///
    /// let mut headers = HeaderMap::new();
    /// headers.insert("x-forwarded-for", HeaderValue::from_static("203.0.113.9"));
    /// headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
    /// HeaderHygieneLayer::server_to_server().apply(&mut headers, None);
    /// assert_eq!(headers.keys().collect::<Vec<_>>(), [header::ACCEPT]);
    /// ```
    pub fn server_to_server() -> Self {
        Self::from_rules(Rules {
            mode: Mode::Deny,
            strip: header_names(&SERVER_TO_SERVER),
            strip_prefixes: SERVER_TO_SERVER_PREFIXES
                .iter()
                .map(|prefix| (*prefix).to_owned())
                .collect(),
            keep: Vec::new(),
            substitutes: Vec::new(),
            sensitive: header_names(&SENSITIVE),
        })
    }

    /// Only hop-by-hop removal: forwards every end-to-end header. A base for a custom
    /// denylist built with [`strip`](HeaderHygieneLayer::strip).
    ///
    /// ```
    /// use http::{HeaderMap, HeaderValue, header};
    /// use tollgate_headers::HeaderHygieneLayer;
    ///
    /// let mut headers = HeaderMap::new();
    /// headers.insert(header::CONNECTION, HeaderValue::from_static("x-trace"));
    /// headers.insert("x-trace", HeaderValue::from_static("1"));
    /// headers.insert(header::ORIGIN, HeaderValue::from_static("https://shop.example"));
    /// HeaderHygieneLayer::hop_by_hop().apply(&mut headers, None);
    /// assert_eq!(headers.keys().collect::<Vec<_>>(), [header::ORIGIN]);
    /// ```
    pub fn hop_by_hop() -> Self {
        Self::from_rules(Rules {
            mode: Mode::Deny,
            strip: Vec::new(),
            strip_prefixes: Vec::new(),
            keep: Vec::new(),
            substitutes: Vec::new(),
            sensitive: header_names(&SENSITIVE),
        })
    }

    /// Allowlist mode: forwards nothing but the named headers (and the
    /// [substitutes](HeaderHygieneLayer::substitute) and [injected](InjectedHeaders) ones), so
    /// a header a browser starts sending tomorrow can never leak. The named headers are kept
    /// as by [`keep`](HeaderHygieneLayer::keep).
    ///
    /// ```
    /// use http::{HeaderMap, HeaderValue, header};
    /// use tollgate_headers::HeaderHygieneLayer;
    ///
    /// let hygiene = HeaderHygieneLayer::only([header::CONTENT_TYPE, header::ACCEPT]);
    /// let mut headers = HeaderMap::new();
    /// headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    /// headers.insert("sec-new-browser-hint", HeaderValue::from_static("?1"));
    /// hygiene.apply(&mut headers, None);
    /// assert_eq!(headers.keys().collect::<Vec<_>>(), [header::CONTENT_TYPE]);
    /// ```
    pub fn only(names: impl IntoIterator<Item = HeaderName>) -> Self {
        let mut hygiene = Self::hop_by_hop();
        hygiene.rules_mut().mode = Mode::Allow;
        for name in names {
            hygiene = hygiene.keep(name);
        }
        hygiene
    }

    fn from_rules(rules: Rules) -> Self {
        Self {
            rules: Arc::new(rules),
        }
    }

    /// The rules of this layer alone: copied first if a clone or a service shares them.
    fn rules_mut(&mut self) -> &mut Rules {
        Arc::make_mut(&mut self.rules)
    }

    /// Also removes `name` (in denylist mode; in allowlist mode, stops keeping it).
    pub fn strip(mut self, name: HeaderName) -> Self {
        let rules = self.rules_mut();
        rules.keep.retain(|kept| kept != name);
        if !rules.strip.contains(&name) {
            rules.strip.push(name);
        }
        self
    }

    /// Also removes every header whose name starts with `prefix` (compared in lowercase),
    /// e.g. `"x-amz-"`. Only used in denylist mode.
    pub fn strip_prefix(mut self, prefix: impl Into<String>) -> Self {
        let prefix = prefix.into().to_ascii_lowercase();
        let rules = self.rules_mut();
        if !rules.strip_prefixes.contains(&prefix) {
            rules.strip_prefixes.push(prefix);
        }
        self
    }

    /// Never removes `name`: it overrides the preset, [`strip`](HeaderHygieneLayer::strip),
    /// prefixes, the hop-by-hop rules and `Connection` nominations. In allowlist mode it adds
    /// `name` to the allowlist.
    ///
    /// `TE` is the exception: kept, it goes out as `te: trailers` when the request asked for
    /// trailers and not at all otherwise (what a gRPC client needs).
    ///
    /// ```
    /// use http::{HeaderMap, HeaderValue, header};
    /// use tollgate_headers::HeaderHygieneLayer;
    ///
    /// let grpc = HeaderHygieneLayer::server_to_server().keep(header::TE);
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
        let rules = self.rules_mut();
        rules.strip.retain(|stripped| stripped != name);
        if !rules.keep.contains(&name) {
            rules.keep.push(name);
        }
        self
    }

    /// Sets `name` to a value the backend owns (inserted after removal, replacing every value
    /// the request had), e.g. `Origin`/`Referer` of the backend's own site or
    /// `User-Agent: <backend>/<version>`. A later call for the same name replaces the value.
    ///
    /// A header recorded in [`InjectedHeaders`] is not substituted.
    pub fn substitute(mut self, name: HeaderName, value: HeaderValue) -> Self {
        let rules = self.rules_mut();
        rules.substitutes.retain(|(existing, _)| existing != name);
        rules.substitutes.push((name, value));
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
    /// use tollgate_headers::HeaderHygieneLayer;
    ///
    /// let hygiene = HeaderHygieneLayer::only([header::AUTHORIZATION, "x-session".parse().unwrap()])
    ///     .sensitive("x-session".parse().unwrap());
    /// let mut headers = HeaderMap::new();
    /// headers.append(header::AUTHORIZATION, HeaderValue::from_static("Bearer a"));
    /// headers.append(header::AUTHORIZATION, HeaderValue::from_static("Bearer b"));
    /// headers.insert("x-session", HeaderValue::from_static("s3ss"));
    /// hygiene.apply(&mut headers, None);
    /// assert!(headers.values().all(HeaderValue::is_sensitive));
    /// ```
    pub fn sensitive(mut self, name: HeaderName) -> Self {
        let rules = self.rules_mut();
        if !rules.sensitive.contains(&name) {
            rules.sensitive.push(name);
        }
        self
    }

    /// Applies the rules to `headers`, as the layer does to each request. Headers named in
    /// `injected` are left untouched. Returns the names that were removed and substituted.
    pub fn apply(
        &self,
        headers: &mut HeaderMap,
        injected: Option<&InjectedHeaders>,
    ) -> HygieneReport {
        self.rules.apply(headers, injected)
    }
}

impl Default for HeaderHygieneLayer {
    /// [`HeaderHygieneLayer::new`]: an allowlist that keeps nothing yet.
    fn default() -> Self {
        Self::new()
    }
}

impl Rules {
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

    fn apply(&self, headers: &mut HeaderMap, injected: Option<&InjectedHeaders>) -> HygieneReport {
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
            if let header::Entry::Occupied(mut entry) = headers.entry(name) {
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
}

impl fmt::Debug for HeaderHygieneLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("HeaderHygieneLayer")
            .field(&self.rules)
            .finish()
    }
}

impl fmt::Debug for Rules {
    /// Names only: a substitute's value may be a credential.
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

impl<S> Layer<S> for HeaderHygieneLayer {
    type Service = HeaderHygiene<S>;

    fn layer(&self, inner: S) -> Self::Service {
        HeaderHygiene::new(inner, self)
    }
}

/// The service of [`HeaderHygieneLayer`]: applies its rules to every outbound request before
/// it reaches the inner service (the HTTP client). Never fails a request.
///
/// ```
/// use http::{Request, header};
/// use tower::{ServiceExt, service_fn};
/// use tollgate_headers::{HeaderHygiene, HeaderHygieneLayer};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let client = service_fn(|request: Request<()>| async move {
///     Ok::<_, std::convert::Infallible>(request.headers().clone())
/// });
/// let client = HeaderHygiene::new(client, &HeaderHygieneLayer::only([header::ACCEPT]));
/// let request = Request::builder()
///     .header(header::ACCEPT, "application/json")
///     .header(header::COOKIE, "session=abc")
///     .body(())
///     .unwrap();
/// let sent = client.oneshot(request).await.unwrap();
/// assert_eq!(sent.keys().collect::<Vec<_>>(), [header::ACCEPT]);
/// # }
/// ```
#[derive(Clone)]
#[must_use]
pub struct HeaderHygiene<S> {
    inner: S,
    rules: Arc<Rules>,
}

impl<S> HeaderHygiene<S> {
    /// Wraps `inner` with the rules of `layer`.
    pub fn new(inner: S, layer: &HeaderHygieneLayer) -> Self {
        Self {
            inner,
            rules: Arc::clone(&layer.rules),
        }
    }

    /// A [`HeaderHygieneLayer`] (same as [`HeaderHygieneLayer::new`]: an allowlist that keeps
    /// nothing yet).
    pub fn layer() -> HeaderHygieneLayer {
        HeaderHygieneLayer::new()
    }

    tollgate_core::__inner_service_accessors!();
}

impl<S: fmt::Debug> fmt::Debug for HeaderHygiene<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HeaderHygiene")
            .field("inner", &self.inner)
            .field("rules", &self.rules)
            .finish()
    }
}

impl<S, B> Service<Request<B>> for HeaderHygiene<S>
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
        let (mut parts, body) = request.into_parts();
        let report = self.rules.apply(&mut parts.headers, parts.extensions.get());
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
        self.inner.call(Request::from_parts(parts, body))
    }
}

/// What [`HeaderHygieneLayer::apply`] changed: header names only, never values.
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
