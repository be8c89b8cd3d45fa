//! Pinning a credential to its upstream: [`Upstream`] (a scheme, host and port a credential may
//! be sent to, optionally with a base path requests must stay under) and [`check`], the one request check every outbound layer that attaches a
//! credential runs before anything is sent.
//!
//! A partner key, a signed token or a signature is a bearer credential for whoever receives
//! it. An outbound layer that adds one to *any* request hands it to whatever host a wrong base
//! URL, a user-controlled path joined into a URL, or a redirect names. The layers of
//! tollgate-headers (`x-api-key`, `access-token`) and tollgate-tranzila (the Tranzila access
//! token) therefore take the upstreams they may talk to and call [`check`] first; the logic
//! lives here once, as plain functions over `http` types, so every layer pins the same way.
//!
//! ```
//! use http::{HeaderMap, HeaderValue, Uri, header};
//! use tollgate_core::upstream::{self, TargetError, Upstream};
//!
//! let upstreams = [Upstream::tranzila()];
//! let uri: Uri = "https://api.tranzila.com/v1/transaction/credit_card/create".parse().unwrap();
//! assert_eq!(upstream::check(&upstreams, &uri, &HeaderMap::new()), Ok(()));
//!
//! let elsewhere: Uri = "https://attacker.example/collect".parse().unwrap();
//! assert_eq!(
//!     upstream::check(&upstreams, &elsewhere, &HeaderMap::new()),
//!     Err(TargetError::NotAllowed { target: "https://attacker.example".to_owned() })
//! );
//!
//! let mut headers = HeaderMap::new();
//! headers.insert(header::HOST, HeaderValue::from_static("attacker.example"));
//! assert!(matches!(
//!     upstream::check(&upstreams, &uri, &headers),
//!     Err(TargetError::Ambiguous { .. })
//! ));
//! ```
//!
//! # Security considerations
//!
//! These are the guarantees of [`check`]; each one is tested under the same words.
//!
//! 1. **Scheme, host and port must all match a configured upstream.** `http` is not `https`;
//!    hosts compare case-insensitively; the port is the effective port, so an explicit `:443`
//!    on `https` (or `:80` on `http`) is the same origin as no port, and `:8443` is another.
//! 2. **A host is compared as written, never resolved or normalised** (except IPv6 literals,
//!    compared as addresses: `[0:0::1]` is `[::1]`). `127.1` is not `127.0.0.1`,
//!    `[::ffff:127.0.0.1]` is not `127.0.0.1`, and a trailing dot (`api.tranzila.com.`, the
//!    fully qualified spelling) is another host: refused unless that exact spelling is
//!    configured.
//! 3. **A request that does not say where it goes is refused**: a relative URI (no scheme or
//!    authority), user info in the authority, or a port that is not a number from 0 to 65535.
//! 4. **The `Host` header must agree with the URI**: absent, or exactly one that names the same
//!    host and effective port. Header names are case-insensitive, so `Host` and `HOST` are the
//!    same header and two of them are refused. The URI decides where the connection goes, the
//!    `Host` header where the server (or a CDN fronting several sites) routes the request: a
//!    credential must not go where the two part ways.
//! 5. **No error, `Debug` output or description holds user info, a path or a query**: a
//!    [`ConfigError`] and a [`TargetError`] name at most a scheme, a host and a port, so a
//!    password in a configured URL (`https://partner:hunter2@...`) never reaches a log.
//! 6. **Configuration fails when it is built**: [`Upstream::parse`] refuses anything but
//!    `scheme://host[:port][/base/path]`; a layer then checks requests against parsed
//!    upstreams only.
//! 7. **A base path pins the path too, on a segment boundary, and ambiguity is refused.** With
//!    `https://host/api/v1` configured, `/api/v1`, `/api/v1/` and `/api/v1/x` may go;
//!    `/api/v10`, `/api`, `/API/v1` (paths are case-sensitive) and `/other` may not
//!    ([`TargetError::OutsideBasePath`]). The path is compared as sent, never decoded or
//!    normalised first; a path a server could read as another one is refused as
//!    [`TargetError::Ambiguous`] rather than guessed at: a dot segment anywhere (`/api/v1/../admin`,
//!    `%2e%2e`, `..%2F`, `..\`, Tomcat's `..;`, Windows' `...`, `..%20`, `..::$DATA`),
//!    anything a server might decode again or map onto a dot or a slash (`%25`, so
//!    `%252e%252e`; IIS's `%u002e`; a NUL; non-ASCII bytes, raw or encoded: overlong UTF-8
//!    `%c0%ae`, fullwidth `．`), and an empty segment (`/api//v1`) or one with `%`, `;` or
//!    `\` (`/api%2Fv1`) where the base path is compared. The base path
//!    itself must be plain segments (no `%`, `;`, `\`, dot or empty segments). Without a
//!    base path, paths are not looked at.
//!
//! Put a pinned layer *inside* (after) any layer that follows redirects, so every hop is
//! checked.

use std::borrow::Cow;
use std::fmt;
use std::net::Ipv6Addr;
use std::str::FromStr;

use http::Uri;
use http::header::{self, HeaderMap};
use http::uri::Authority;

/// A scheme, host and port that a credential may be sent to, e.g.
/// `https://api-gateway.transak.com` (port 443 implied), optionally with a base path the
/// request's path must stay under (`https://api.example/api/v1`).
///
/// A request matches when its URI has the same scheme and host (both compared
/// case-insensitively) and the same port (`80` for `http` and `443` for `https` when absent
/// or empty), carries no user info, and, with a base path, its path is the base path or
/// below it on a segment boundary (rule 7 of the [module docs](self)). The comparison is
/// exact otherwise, and fails closed:
///
/// - IPv6 literals compare as addresses (`[::1]` is `[0:0:0:0:0:0:0:1]`); any other
///   spelling of a host is another host: `127.1` is not `127.0.0.1`, `[::ffff:127.0.0.1]` is
///   not `127.0.0.1`, and `api.example.` (trailing dot) is not `api.example`.
/// - A port that is not a number from 0 to 65535 (`:99999`) never matches: clients read it
///   differently (some fall back to the default port).
/// - A relative URI (`/path`, origin form) never matches: it does not say where the
///   connection goes.
///
/// [`check`] also refuses a request whose `Host` header disagrees with its URI, or that has
/// several `Host` headers (see the [module docs](self)).
///
/// ```
/// use tollgate_core::upstream::Upstream;
///
/// let upstream = Upstream::parse("https://api-gateway.transak.com").unwrap();
/// assert!(upstream.matches(&"https://API-Gateway.transak.com:443/partners/api/v2/orders".parse().unwrap()));
/// assert!(!upstream.matches(&"http://api-gateway.transak.com/".parse().unwrap()));
/// assert!(!upstream.matches(&"https://api-gateway.transak.com.evil.example/".parse().unwrap()));
/// assert!(!upstream.matches(&"/relative/path".parse().unwrap()));
/// assert_eq!(upstream.to_string(), "https://api-gateway.transak.com:443");
///
/// let api = Upstream::parse("https://api.example/api/v1").unwrap();
/// assert!(api.matches(&"https://api.example/api/v1/charges?limit=1".parse().unwrap()));
/// assert!(api.matches(&"https://api.example/api/v1".parse().unwrap()));
/// assert!(!api.matches(&"https://api.example/api/v10/charges".parse().unwrap()));
/// assert!(!api.matches(&"https://api.example/api/v1/../admin".parse().unwrap()));
/// assert!(!api.matches(&"https://api.example/api/v1/..%2Fadmin".parse().unwrap()));
/// assert_eq!(api.to_string(), "https://api.example:443/api/v1");
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Upstream {
    scheme: String,
    host: String,
    port: u16,
    /// `""` (any path), or `/seg[/seg...]` without a trailing `/`: plain segments only.
    base_path: String,
}

impl Upstream {
    fn https(host: &str) -> Self {
        Self {
            scheme: "https".to_owned(),
            host: host.to_owned(),
            port: 443,
            base_path: String::new(),
        }
    }

    /// Transak's production API gateway, `https://api-gateway.transak.com`.
    pub fn transak() -> Self {
        Self::https("api-gateway.transak.com")
    }

    /// Transak's staging API gateway, `https://api-gateway-stg.transak.com`.
    pub fn transak_staging() -> Self {
        Self::https("api-gateway-stg.transak.com")
    }

    /// Tranzila's API, `https://api.tranzila.com`.
    ///
    /// ```
    /// use tollgate_core::upstream::Upstream;
    ///
    /// assert_eq!(Upstream::tranzila(), Upstream::parse("https://api.tranzila.com").unwrap());
    /// ```
    pub fn tranzila() -> Self {
        Self::https("api.tranzila.com")
    }

    /// Parses `scheme://host[:port][/base/path]` (a trailing `/` is allowed and dropped). A
    /// path other than `/` becomes the [base path](Upstream::base_path) requests must stay
    /// under. Fails when the scheme or host is missing, user info or a query is present, the
    /// path is not plain segments (an empty or dot segment, `%`, `;` or `\`), or a scheme
    /// other than `http`/`https` has no explicit port. The error never repeats user info, a
    /// path or a query (see [`ConfigError`]).
    ///
    /// ```
    /// use tollgate_core::upstream::Upstream;
    ///
    /// assert!(Upstream::parse("http://127.0.0.1:8080").is_ok());
    /// assert!(Upstream::parse("https://user@api.example").is_err());
    /// assert_eq!(Upstream::parse("https://api.example/v2/").unwrap().base_path(), Some("/v2"));
    /// assert!(Upstream::parse("https://api.example/v2?x=1").is_err());
    /// assert!(Upstream::parse("https://api.example/v2/../admin").is_err());
    /// ```
    pub fn parse(upstream: &str) -> Result<Self, ConfigError> {
        let uri: Uri = upstream
            .parse()
            .map_err(|_| ConfigError::invalid(None, "not a valid URI"))?;
        let invalid = |reason| ConfigError::invalid(Some(&uri), reason);
        let scheme = uri
            .scheme_str()
            .ok_or_else(|| invalid("the scheme is missing"))?
            .to_ascii_lowercase();
        let authority = uri
            .authority()
            .ok_or_else(|| invalid("the host is missing"))?;
        if authority.as_str().contains('@') {
            return Err(invalid("user info is not allowed"));
        }
        if uri.query().is_some() {
            return Err(invalid("a query is not allowed"));
        }
        if upstream.contains('#') {
            return Err(invalid("a fragment is not allowed"));
        }
        let base_path = base_path(uri.path()).map_err(invalid)?;
        if authority.host().is_empty() {
            return Err(invalid("the host is missing"));
        }
        let port = match explicit_port(authority, authority.host()) {
            Err(()) => return Err(invalid("the port is not a number from 0 to 65535")),
            Ok(Some(port)) => port,
            Ok(None) => default_port(&scheme).ok_or_else(|| invalid("the port is missing"))?,
        };
        Ok(Self {
            host: canonical_host(authority.host()).into_owned(),
            scheme,
            port,
            base_path,
        })
    }

    /// Like [`parse`](Upstream::parse) for a literal known to be valid.
    ///
    /// # Panics
    ///
    /// When `upstream` does not parse, like `HeaderValue::from_static` does for an invalid
    /// literal. Use [`parse`](Upstream::parse) for values read at run time.
    ///
    /// ```
    /// use tollgate_core::upstream::Upstream;
    ///
    /// let upstream = Upstream::from_static("https://api-gateway.transak.com");
    /// assert_eq!(upstream, Upstream::transak());
    /// ```
    #[allow(clippy::panic)]
    pub fn from_static(upstream: &'static str) -> Self {
        match Self::parse(upstream) {
            Ok(upstream) => upstream,
            Err(error) => panic!("{error}"),
        }
    }

    /// The scheme, lowercase (`https`).
    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    /// The host, lowercase; an IPv6 literal in brackets and canonical form (`[::1]`).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port, explicit or the scheme's default.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The base path requests must stay under (`/api/v1`, never with a trailing `/`), or
    /// `None` when any path is allowed.
    ///
    /// ```
    /// use tollgate_core::upstream::Upstream;
    ///
    /// assert_eq!(Upstream::parse("https://api.example/api/v1/").unwrap().base_path(), Some("/api/v1"));
    /// assert_eq!(Upstream::parse("https://api.example/").unwrap().base_path(), None);
    /// ```
    pub fn base_path(&self) -> Option<&str> {
        (!self.base_path.is_empty()).then_some(self.base_path.as_str())
    }

    /// Whether `uri` goes to this upstream, and under its base path if it has one (see the
    /// type's docs for the exact rules). This looks at the URI only; [`check`] also compares
    /// the `Host` header.
    pub fn matches(&self, uri: &Uri) -> bool {
        matches!(Target::of_uri(uri), Ok(target) if self.is(&target))
            && self.fit(uri.path()) == Fit::Inside
    }

    /// Where `path` (a request URI's path, still percent-encoded) lies relative to the base
    /// path. Ambiguous when a server could read it as another path than the one compared
    /// ([`could_be_read_otherwise`]), or when a compared segment is empty or holds `%`, `;`
    /// or `\`.
    fn fit(&self, path: &str) -> Fit {
        if self.base_path.is_empty() {
            return Fit::Inside;
        }
        if could_be_read_otherwise(path) {
            return Fit::Ambiguous;
        }
        let mut segments = path.split('/');
        if segments.next() != Some("") {
            // Not `/`-rooted (`*`, the asterisk form): not under any base path.
            return Fit::Outside;
        }
        for base in self.base_path.split('/').skip(1) {
            match segments.next() {
                Some(segment) if segment == base => {}
                // `/api//v1`: a server that merges slashes reads the base path, one that
                // does not reads another path. A trailing `/` (`/api/`) is just short.
                Some("") if segments.clone().next().is_some() => return Fit::Ambiguous,
                Some(segment) if segment.contains(['%', ';', '\\']) => return Fit::Ambiguous,
                _ => return Fit::Outside,
            }
        }
        Fit::Inside
    }

    fn is(&self, target: &Target<'_>) -> bool {
        target.scheme == self.scheme && target.host == self.host && target.port == self.port
    }
}

/// Where a request path lies relative to an upstream's base path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Fit {
    Outside,
    Ambiguous,
    Inside,
}

/// The base path of a configured URI's path: `""` for none (`""` or `/`), else the path
/// without its trailing `/`, made of plain segments only.
fn base_path(path: &str) -> Result<String, &'static str> {
    let trimmed = path.strip_suffix('/').unwrap_or(path);
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    let plain = trimmed.split('/').skip(1).all(|segment| {
        !segment.is_empty()
            && segment != "."
            && segment != ".."
            && !segment.contains(['%', ';', '\\'])
    });
    if trimmed.starts_with('/') && plain {
        Ok(trimmed.to_owned())
    } else {
        Err("the base path must be plain segments: no empty or dot segments, `%`, `;` or `\\`")
    }
}

/// Whether some server could read `path` as another path than the one compared, whatever
/// the server: a dot segment it could resolve, read the ways servers read paths (after
/// percent-decoding, `%2e%2e`; with `/`, `\\` and their encodings as separators; ignoring `;`
/// parameters, `..;` as Tomcat does; trimming trailing dots and spaces and cutting at `:`, as
/// Windows does, so `...`, `..%20` and `..::$DATA`), or anything a server might decode a
/// second time or map onto one: `%25` (double encoding, `%252e%252e`), IIS's `%u` escapes, a
/// NUL, and non-ASCII bytes raw or encoded (overlong UTF-8 `%c0%ae`, fullwidth `．．`).
fn could_be_read_otherwise(path: &str) -> bool {
    let raw = path.as_bytes();
    if !raw.is_ascii()
        || raw
            .windows(3)
            .any(|w| w[0] == b'%' && w[1] == b'2' && w[2] == b'5')
        || raw
            .windows(2)
            .any(|w| w[0] == b'%' && matches!(w[1], b'u' | b'U'))
    {
        return true;
    }
    let decoded = percent_decode(raw);
    if !decoded.is_ascii() || decoded.contains(&0) {
        return true;
    }
    decoded
        .split(|byte| matches!(byte, b'/' | b'\\'))
        .any(|segment| {
            let name = segment
                .split(|byte| matches!(byte, b';' | b':'))
                .next()
                .unwrap_or_default();
            let trimmed = name
                .iter()
                .rposition(|byte| !matches!(byte, b'.' | b' '))
                .map_or(&name[..0], |last| &name[..=last]);
            (!name.is_empty() && trimmed.is_empty()) || name.starts_with(b"..")
        })
}

/// `bytes` with every valid `%XX` decoded once; anything else kept as it is.
fn percent_decode(bytes: &[u8]) -> Vec<u8> {
    let hex = |byte: u8| char::from(byte).to_digit(16);
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while let Some(&byte) = bytes.get(index) {
        if byte == b'%'
            && let (Some(high), Some(low)) = (
                bytes.get(index + 1).copied().and_then(hex),
                bytes.get(index + 2).copied().and_then(hex),
            )
        {
            decoded.push(u8::try_from(high * 16 + low).unwrap_or(byte));
            index += 3;
        } else {
            decoded.push(byte);
            index += 1;
        }
    }
    decoded
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

/// The port written in `authority`, whose host is `host` (`authority.host()`, read once by
/// the caller): `Ok(None)` when there is none (or it is empty, which RFC 3986 section 3.2.3
/// reads as the default), `Err` when it is not a `u16` in digits.
fn explicit_port(authority: &Authority, host: &str) -> Result<Option<u16>, ()> {
    let text = authority.as_str();
    let after_host = text.rsplit_once('@').map_or(text, |(_, rest)| rest);
    let Some(port) = after_host
        .strip_prefix(host)
        .and_then(|rest| rest.strip_prefix(':'))
    else {
        return Ok(None);
    };
    if port.is_empty() {
        return Ok(None);
    }
    if !port.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(());
    }
    port.parse().map(Some).map_err(|_| ())
}

/// A host in the form hosts are compared in: lowercase, IPv6 literals in their canonical
/// text (`[0:0::1]` becomes `[::1]`). Borrowed when `host` is in that form already (the
/// common case: no allocation per request).
fn canonical_host(host: &str) -> Cow<'_, str> {
    if let Some(literal) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']'))
        && let Ok(address) = literal.parse::<Ipv6Addr>()
    {
        return Cow::Owned(format!("[{address}]"));
    }
    lowercase(host)
}

/// `text` in ASCII lowercase, borrowed when it has no uppercase letter.
fn lowercase(text: &str) -> Cow<'_, str> {
    if text.bytes().any(|byte| byte.is_ascii_uppercase()) {
        Cow::Owned(text.to_ascii_lowercase())
    } else {
        Cow::Borrowed(text)
    }
}

/// Where a request goes: scheme, canonical host, effective port (borrowed from the URI where
/// it is in canonical form already).
#[derive(Debug, PartialEq, Eq)]
struct Target<'a> {
    scheme: Cow<'a, str>,
    host: Cow<'a, str>,
    port: u16,
}

/// Why a request's target cannot be compared with an upstream.
enum Unclear {
    /// No scheme or no authority.
    Relative,
    /// User info in the authority.
    UserInfo,
    /// A port that is not a `u16`.
    Port,
    /// No port, and a scheme without a known default port.
    NoDefaultPort,
}

impl<'a> Target<'a> {
    fn of_uri(uri: &'a Uri) -> Result<Self, Unclear> {
        let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
            return Err(Unclear::Relative);
        };
        Self::of_authority(lowercase(scheme), authority)
    }

    fn of_authority(scheme: Cow<'a, str>, authority: &'a Authority) -> Result<Self, Unclear> {
        if authority.as_str().contains('@') {
            return Err(Unclear::UserInfo);
        }
        let host = authority.host();
        if host.is_empty() {
            return Err(Unclear::Relative);
        }
        let port = match explicit_port(authority, host) {
            Ok(Some(port)) => port,
            Ok(None) => default_port(&scheme).ok_or(Unclear::NoDefaultPort)?,
            Err(()) => return Err(Unclear::Port),
        };
        Ok(Self {
            host: canonical_host(host),
            scheme,
            port,
        })
    }
}

impl FromStr for Upstream {
    type Err = ConfigError;

    fn from_str(upstream: &str) -> Result<Self, Self::Err> {
        Self::parse(upstream)
    }
}

impl fmt::Display for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}://{}:{}{}",
            self.scheme, self.host, self.port, self.base_path
        )
    }
}

impl fmt::Debug for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Upstream({self})")
    }
}

/// Where a request URI goes, for errors and logs: `scheme://host[:port]`, or
/// `a relative URI`. User info, the path and the query are never included.
///
/// ```
/// use tollgate_core::upstream::describe_target;
///
/// let uri = "https://partner:hunter2@attacker.example:8443/collect?key=1".parse().unwrap();
/// assert_eq!(describe_target(&uri), "https://attacker.example:8443");
/// assert_eq!(describe_target(&"/v1/charge".parse().unwrap()), "a relative URI");
/// ```
pub fn describe_target(uri: &Uri) -> String {
    match (uri.scheme_str(), uri.authority()) {
        (Some(scheme), Some(authority)) => match authority.port_u16() {
            Some(port) => format!("{scheme}://{}:{port}", authority.host()),
            None => format!("{scheme}://{}", authority.host()),
        },
        _ => "a relative URI".to_owned(),
    }
}

/// Checks where a request goes against the configured `upstreams`, before a credential is
/// attached to it. Pure: no I/O, no logging (the calling layer logs, naming its credential).
///
/// The URI decides: its scheme, host and effective port must match one of `upstreams`, and
/// its path be under that upstream's base path if it has one ([`Upstream::matches`]). A `Host` header may be absent (the client derives it from the
/// URI) or name the same host and effective port; anything else (another host, several
/// `Host` headers, one that does not parse) is refused as ambiguous. An empty `upstreams`
/// refuses every request ([`TargetError::NotConfigured`]). The rules are listed under
/// "Security considerations" in the [module docs](self).
///
/// ```
/// use http::{HeaderMap, HeaderValue, header};
/// use tollgate_core::upstream::{self, TargetError, Upstream};
///
/// let upstreams = [Upstream::parse("http://[::1]:8080").unwrap()];
/// let mut headers = HeaderMap::new();
/// headers.insert(header::HOST, HeaderValue::from_static("[0:0::1]:8080"));
/// let uri = "http://[::1]:8080/v1/charge".parse().unwrap();
/// assert_eq!(upstream::check(&upstreams, &uri, &headers), Ok(()));
/// assert_eq!(upstream::check(&[], &uri, &headers), Err(TargetError::NotConfigured));
/// ```
pub fn check(upstreams: &[Upstream], uri: &Uri, headers: &HeaderMap) -> Result<(), TargetError> {
    if upstreams.is_empty() {
        return Err(TargetError::NotConfigured);
    }
    let target = match Target::of_uri(uri) {
        Ok(target) => target,
        Err(Unclear::Relative | Unclear::UserInfo | Unclear::NoDefaultPort) => {
            return Err(TargetError::NotAllowed {
                target: describe_target(uri),
            });
        }
        Err(Unclear::Port) => {
            return Err(TargetError::Ambiguous {
                reason: "the request URI's port is not a valid port",
            });
        }
    };
    // The best fit among the upstreams at this origin: inside one base path is enough.
    let fit = upstreams
        .iter()
        .filter(|upstream| upstream.is(&target))
        .map(|upstream| upstream.fit(uri.path()))
        .max();
    match fit {
        Some(Fit::Inside) => {}
        Some(Fit::Ambiguous) => {
            return Err(TargetError::Ambiguous {
                reason: "the request path has a dot segment, or an empty or encoded segment where the base path is compared",
            });
        }
        Some(Fit::Outside) => {
            return Err(TargetError::OutsideBasePath {
                target: describe_target(uri),
            });
        }
        None => {
            return Err(TargetError::NotAllowed {
                target: describe_target(uri),
            });
        }
    }
    let mut hosts = headers.get_all(header::HOST).iter();
    let Some(host) = hosts.next() else {
        return Ok(());
    };
    if hosts.next().is_some() {
        return Err(TargetError::Ambiguous {
            reason: "the request has several Host headers",
        });
    }
    let agrees = match Authority::try_from(host.as_bytes()) {
        Ok(authority) => {
            Target::of_authority(target.scheme.clone(), &authority).is_ok_and(|host| host == target)
        }
        Err(_) => false,
    };
    if agrees {
        Ok(())
    } else {
        Err(TargetError::Ambiguous {
            reason: "the Host header disagrees with the request URI",
        })
    }
}

/// Why [`check`] refused a request. Nothing was sent.
///
/// No variant holds user info, a path, a query or a header value: a target is
/// `scheme://host[:port]` ([`describe_target`]) and a reason is a fixed text.
///
/// ```
/// use tollgate_core::upstream::TargetError;
///
/// let error = TargetError::NotAllowed { target: "https://attacker.example".to_owned() };
/// assert_eq!(error.to_string(), "https://attacker.example is not a configured upstream");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TargetError {
    /// No upstream is configured, so nothing may be sent anywhere.
    NotConfigured,
    /// The request goes to a scheme, host or port that is not a configured upstream (or its
    /// URI is relative, or has user info).
    NotAllowed {
        /// Where the request was going ([`describe_target`]).
        target: String,
    },
    /// The request goes to a configured scheme, host and port, but its path is not the base
    /// path of any upstream there, nor below it on a segment boundary.
    OutsideBasePath {
        /// Where the request was going ([`describe_target`]): never the path.
        target: String,
    },
    /// The request does not say unambiguously where it goes: its `Host` header disagrees
    /// with its URI, it has several `Host` headers, its URI's port is not a valid port, or
    /// (for an upstream with a base path) its path could be read as another path: a dot
    /// segment, or an empty or encoded segment where the base path is compared.
    Ambiguous {
        /// What is ambiguous (a fixed text, never a header value).
        reason: &'static str,
    },
}

impl fmt::Display for TargetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotConfigured => f.write_str("no upstream is configured"),
            Self::NotAllowed { target } => write!(f, "{target} is not a configured upstream"),
            Self::OutsideBasePath { target } => write!(
                f,
                "the request path is outside the base paths configured for {target}"
            ),
            Self::Ambiguous { reason } => {
                write!(f, "the request's target is ambiguous: {reason}")
            }
        }
    }
}

impl std::error::Error for TargetError {}

/// A configured upstream that cannot be used. Returned when the configuration is built,
/// never per request.
///
/// The error names what was given only as far as it is safe to log: its scheme, host and
/// port. User info (`partner:password@`), a path, a query and text that is not a URI at all
/// are never kept, in `Display` or in `Debug`.
///
/// ```
/// use tollgate_core::upstream::{ConfigError, Upstream};
///
/// let err = Upstream::parse("https://partner:hunter2@api.example").unwrap_err();
/// assert!(matches!(err, ConfigError::InvalidUpstream { .. }));
/// assert_eq!(err.to_string(), "invalid upstream `https://api.example`: user info is not allowed");
/// assert!(!format!("{err:?}").contains("hunter2"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// The upstream is not of the form `scheme://host[:port][/base/path]`.
    InvalidUpstream {
        /// What was given, reduced to `scheme://host[:port]` (what of it there is), or empty
        /// when it is not a URI. Never user info, a path or a query.
        upstream: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

impl ConfigError {
    fn invalid(uri: Option<&Uri>, reason: &'static str) -> Self {
        Self::InvalidUpstream {
            upstream: uri.map(redacted).unwrap_or_default(),
            reason,
        }
    }
}

/// The parts of a configured URI that are safe to log: scheme, host and a valid port.
fn redacted(uri: &Uri) -> String {
    let Some(authority) = uri.authority() else {
        return uri
            .scheme_str()
            .map(|scheme| format!("{scheme}://"))
            .unwrap_or_default();
    };
    let mut text = String::new();
    if let Some(scheme) = uri.scheme_str() {
        text.push_str(scheme);
        text.push_str("://");
    }
    text.push_str(authority.host());
    if let Some(port) = authority.port_u16() {
        text.push(':');
        text.push_str(&port.to_string());
    }
    text
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidUpstream { upstream, reason } if upstream.is_empty() => {
                write!(f, "invalid upstream: {reason}")
            }
            Self::InvalidUpstream { upstream, reason } => {
                write!(f, "invalid upstream `{upstream}`: {reason}")
            }
        }
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use http::HeaderValue;

    use super::*;

    const PLAIN: &str =
        "the base path must be plain segments: no empty or dot segments, `%`, `;` or `\\`";

    fn uri(text: &str) -> Uri {
        text.parse().unwrap()
    }

    #[test]
    fn parse_rules() {
        let local = Upstream::parse("http://127.0.0.1:8080/").unwrap();
        assert_eq!(local.to_string(), "http://127.0.0.1:8080");
        assert_eq!(
            (local.scheme(), local.host(), local.port()),
            ("http", "127.0.0.1", 8080)
        );
        assert!(local.matches(&uri("http://127.0.0.1:8080/x?y=1")));
        assert!(!local.matches(&uri("http://127.0.0.1:8081/")));
        assert!(!local.matches(&uri("http://localhost:8080/")));
        assert!(!local.matches(&uri("http://u:p@127.0.0.1:8080/")));

        let https = Upstream::parse("HTTPS://API-Gateway.Transak.com:443").unwrap();
        assert_eq!(https, Upstream::transak());
        assert!(https.matches(&uri("https://api-gateway.transak.com/")));
        assert!(!https.matches(&uri("https://api-gateway.transak.com:8443/")));
        assert_eq!(
            Upstream::parse("https://api-gateway-stg.transak.com").unwrap(),
            Upstream::transak_staging()
        );
        assert_eq!(
            "https://api.tranzila.com".parse::<Upstream>().unwrap(),
            Upstream::tranzila()
        );

        let v6 = Upstream::parse("http://[::1]:9000").unwrap();
        assert!(v6.matches(&uri("http://[::1]:9000/")));

        for (bad, upstream, reason) in [
            (
                "api-gateway.transak.com",
                "api-gateway.transak.com",
                "the scheme is missing",
            ),
            ("/path", "", "the scheme is missing"),
            (
                "https://u:p@host.example",
                "https://host.example",
                "user info is not allowed",
            ),
            (
                "https://host.example/v2?a=b",
                "https://host.example",
                "a query is not allowed",
            ),
            (
                "https://host.example/?a=b",
                "https://host.example",
                "a query is not allowed",
            ),
            (
                "https://host.example/api/v1#frag",
                "https://host.example",
                "a fragment is not allowed",
            ),
            (
                "https://host.example/v2/../admin",
                "https://host.example",
                PLAIN,
            ),
            (
                "ftp://host.example",
                "ftp://host.example",
                "the port is missing",
            ),
            ("not a uri", "", "not a valid URI"),
            (
                "https://api.example:99999",
                "https://api.example",
                "the port is not a number from 0 to 65535",
            ),
        ] {
            assert_eq!(
                Upstream::parse(bad),
                Err(ConfigError::InvalidUpstream {
                    upstream: upstream.to_owned(),
                    reason
                }),
                "{bad}"
            );
        }
    }

    /// Security consideration 5: no error, `Debug` output or description holds user info, a
    /// path or a query, so a password in a configured URL never reaches a log.
    #[test]
    fn errors_never_hold_user_info_a_path_or_a_query() {
        let cases = [
            (
                "https://partner:hunter2@api.example",
                "invalid upstream `https://api.example`: user info is not allowed",
            ),
            (
                "https://partner:hunter2@api.example:8443/",
                "invalid upstream `https://api.example:8443`: user info is not allowed",
            ),
            (
                "https://partner:hunter2@api.example:99999",
                "invalid upstream `https://api.example`: user info is not allowed",
            ),
            (
                "partner:hunter2@api.example",
                "invalid upstream `api.example`: the scheme is missing",
            ),
            (
                "https://partner:hunter2@",
                "invalid upstream: not a valid URI",
            ),
            (
                "https://partner:hunter2@api example",
                "invalid upstream: not a valid URI",
            ),
            (
                "https://partner:hunter2",
                "invalid upstream `https://partner`: the port is not a number from 0 to 65535",
            ),
            (
                "https://api.example/hunter2/../x",
                "invalid upstream `https://api.example`: the base path must be plain segments: no empty or dot segments, `%`, `;` or `\\`",
            ),
            (
                "https://api.example/hunter2%2F",
                "invalid upstream `https://api.example`: the base path must be plain segments: no empty or dot segments, `%`, `;` or `\\`",
            ),
            (
                "https://api.example/?partner:hunter2",
                "invalid upstream `https://api.example`: a query is not allowed",
            ),
            (
                "https://api.example/v1?partner:hunter2",
                "invalid upstream `https://api.example`: a query is not allowed",
            ),
            (
                "/partner:hunter2",
                "invalid upstream: the scheme is missing",
            ),
        ];
        for (given, message) in cases {
            let error = Upstream::parse(given).unwrap_err();
            let display = error.to_string();
            let debug = format!("{error:?}");
            assert_eq!(display, message, "{given}");
            for text in [&display, &debug] {
                assert!(!text.contains("hunter2"), "{given}: {text}");
                assert!(!text.contains("partner:"), "{given}: {text}");
            }
        }
        let error = Upstream::parse("https://partner:hunter2@api.example").unwrap_err();
        assert_eq!(
            format!("{error:?}"),
            "InvalidUpstream { upstream: \"https://api.example\", reason: \"user info is not allowed\" }"
        );

        let refused = check(
            &[Upstream::tranzila()],
            &uri("https://partner:hunter2@attacker.example/collect?key=hunter2"),
            &HeaderMap::new(),
        )
        .unwrap_err();
        assert_eq!(
            refused,
            TargetError::NotAllowed {
                target: "https://attacker.example".to_owned()
            }
        );
        for text in [refused.to_string(), format!("{refused:?}")] {
            assert!(
                !text.contains("hunter2") && !text.contains("partner:"),
                "{text}"
            );
        }
        assert_eq!(
            describe_target(&uri("https://user:hunter2@evil.example:444/x")),
            "https://evil.example:444"
        );
        assert_eq!(describe_target(&uri("/x")), "a relative URI");
    }

    /// Security considerations 1-3: scheme, host and effective port, on every spelling of an
    /// authority (reqwest's cross-host rule plus the scheme).
    #[test]
    fn exact_scheme_host_and_effective_port() {
        let transak = Upstream::transak();
        for (text, expected) in [
            ("https://api-gateway.transak.com/x", true),
            ("https://api-gateway.transak.com:443/x", true),
            ("https://api-gateway.transak.com:0443/x", true),
            ("https://api-gateway.transak.com:/x", true),
            ("HTTPS://API-GATEWAY.TRANSAK.COM/x", true),
            ("https://api-gateway.transak.com", true),
            ("http://api-gateway.transak.com/x", false),
            ("http://api-gateway.transak.com:443/x", false),
            ("https://api-gateway.transak.com:80/x", false),
            ("https://api-gateway.transak.com:8443/x", false),
            ("https://api-gateway.transak.com:99999/x", false),
            ("https://api-gateway.transak.com./x", false),
            ("https://transak.com/x", false),
            ("https://api-gateway.transak.com.evil.example/x", false),
            ("https://evil.example/api-gateway.transak.com", false),
            ("https://api-gateway.transak.com@evil.example/x", false),
            ("https://evil.example@api-gateway.transak.com/x", false),
            ("https://:@api-gateway.transak.com/x", false),
            ("/partners/api/v2/orders", false),
            ("*", false),
            ("api-gateway.transak.com:443", false),
            ("wss://api-gateway.transak.com/x", false),
        ] {
            assert_eq!(transak.matches(&uri(text)), expected, "{text}");
        }

        let local = Upstream::parse("http://127.0.0.1:8080").unwrap();
        for (text, expected) in [
            ("http://127.0.0.1:8080/", true),
            ("http://127.1:8080/", false),
            ("http://127.0.0.1/", false),
            ("http://[::ffff:127.0.0.1]:8080/", false),
            ("http://2130706433:8080/", false),
        ] {
            assert_eq!(local.matches(&uri(text)), expected, "{text}");
        }

        let v6 = Upstream::parse("http://[0:0:0:0:0:0:0:1]:9000").unwrap();
        assert_eq!(v6.to_string(), "http://[::1]:9000");
        for (text, expected) in [
            ("http://[::1]:9000/", true),
            ("http://[0::1]:9000/", true),
            ("http://[::1]:900/", false),
            ("http://[::2]:9000/", false),
            ("http://127.0.0.1:9000/", false),
        ] {
            assert_eq!(v6.matches(&uri(text)), expected, "{text}");
        }

        // A trailing dot is another host unless that spelling is configured.
        let dotted = Upstream::parse("https://api.tranzila.com.").unwrap();
        assert_ne!(dotted, Upstream::tranzila());
        assert!(dotted.matches(&uri("https://api.tranzila.com./x")));
        assert!(!dotted.matches(&uri("https://api.tranzila.com/x")));
        assert!(!Upstream::tranzila().matches(&uri("https://api.tranzila.com./x")));
    }

    fn checked(uri_text: &str, hosts: &[&str]) -> Result<(), TargetError> {
        let mut headers = HeaderMap::new();
        for host in hosts {
            headers.append(
                header::HOST,
                HeaderValue::from_bytes(host.as_bytes()).unwrap(),
            );
        }
        check(
            &[
                Upstream::transak(),
                Upstream::parse("http://[::1]:8080").unwrap(),
            ],
            &uri(uri_text),
            &headers,
        )
    }

    /// Security consideration 4: the URI decides where the request goes; a `Host` header
    /// must agree with it.
    #[test]
    fn host_header_must_agree_with_the_uri() {
        let base = "https://api-gateway.transak.com/v2";
        for hosts in [
            &[][..],
            &["api-gateway.transak.com"],
            &["API-Gateway.Transak.com:443"],
            &["api-gateway.transak.com:"],
        ] {
            assert_eq!(checked(base, hosts), Ok(()), "{hosts:?}");
        }
        assert_eq!(checked("http://[::1]:8080/", &["[0:0::1]:8080"]), Ok(()));
        // The URI's side in canonical form too (compared borrowed when already canonical,
        // lowered or rewritten when not).
        assert_eq!(
            checked(
                "HTTPS://API-Gateway.Transak.COM/v2",
                &["api-gateway.transak.com"]
            ),
            Ok(())
        );
        assert_eq!(checked("http://[0:0::1]:8080/", &["[::1]:8080"]), Ok(()));
        assert_eq!(checked("http://[0:0::1]:8080/", &[]), Ok(()));

        for hosts in [
            &["evil.example"][..],
            &["api-gateway.transak.com:8443"],
            &["api-gateway.transak.com:80"],
            &["api-gateway.transak.com."],
            &["user@api-gateway.transak.com"],
            &["api-gateway.transak.com:99999"],
            &["api-gateway.transak.com", "api-gateway.transak.com"],
            &["api-gateway.transak.com", "evil.example"],
            &[""],
            &["a b"],
            &["api-gateway.transak.com/path"],
        ] {
            assert!(
                matches!(checked(base, hosts), Err(TargetError::Ambiguous { .. })),
                "{hosts:?}"
            );
        }
        assert_eq!(
            checked(base, &["a.example", "b.example"]),
            Err(TargetError::Ambiguous {
                reason: "the request has several Host headers"
            })
        );
        assert_eq!(
            checked("https://api-gateway.transak.com:99999/", &[]),
            Err(TargetError::Ambiguous {
                reason: "the request URI's port is not a valid port"
            })
        );
        // A relative URI is refused even with a Host header naming the upstream: its
        // scheme (TLS or not) is unknown.
        assert_eq!(
            checked("/v2/orders", &["api-gateway.transak.com"]),
            Err(TargetError::NotAllowed {
                target: "a relative URI".to_owned()
            })
        );
        assert!(matches!(
            checked("https://evil.example/", &["api-gateway.transak.com"]),
            Err(TargetError::NotAllowed { .. })
        ));
        assert!(matches!(
            checked("ftp://api-gateway.transak.com/", &[]),
            Err(TargetError::NotAllowed { .. })
        ));
        assert_eq!(
            check(&[], &uri(base), &HeaderMap::new()),
            Err(TargetError::NotConfigured)
        );
    }

    #[test]
    fn messages() {
        assert_eq!(
            TargetError::NotConfigured.to_string(),
            "no upstream is configured"
        );
        assert_eq!(
            TargetError::Ambiguous {
                reason: "the request has several Host headers"
            }
            .to_string(),
            "the request's target is ambiguous: the request has several Host headers"
        );
        assert_eq!(
            format!("{:?}", Upstream::tranzila()),
            "Upstream(https://api.tranzila.com:443)"
        );
    }

    /// Security consideration 7: a base path pins the path on a segment boundary; a path a
    /// server could read as another one is refused as ambiguous, never guessed at.
    #[test]
    fn base_path_pins_the_path_on_a_segment_boundary() {
        let api = Upstream::parse("https://api.example/api/v1").unwrap();
        assert_eq!(api.base_path(), Some("/api/v1"));
        assert_eq!(Upstream::parse("https://api.example/api/v1/").unwrap(), api);
        assert_ne!(Upstream::parse("https://api.example").unwrap(), api);
        assert_eq!(
            format!("{api:?}"),
            "Upstream(https://api.example:443/api/v1)"
        );

        let refused_as = |path: &str| {
            let uri = uri(&format!("https://api.example{path}"));
            let result = check(std::slice::from_ref(&api), &uri, &HeaderMap::new());
            assert_eq!(api.matches(&uri), result.is_ok(), "{path}");
            result.err()
        };
        for path in [
            "/api/v1",
            "/api/v1/",
            "/api/v1/x",
            "/api/v1/x/y?z=1",
            "/api/v1?x=1",
            "/api/v1//x",
            "/api/v1/a%2Fb",
            "/api/v1/x.json",
            "/api/v1/.well-known",
            "/api/v1/x;y=1",
        ] {
            assert_eq!(refused_as(path), None, "{path}");
        }
        let outside = Some(TargetError::OutsideBasePath {
            target: "https://api.example".to_owned(),
        });
        for path in [
            "", "/", "/api", "/api/", "/api/v10", "/api/v1x", "/API/v1", "/api/V1", "/other",
            "/v1", "/api/v", "/ap/v1",
        ] {
            assert_eq!(refused_as(path), outside, "{path}");
        }
        for path in [
            // Dot segments, anywhere, in every spelling servers resolve.
            "/api/v1/../admin",
            "/api/v1/./x",
            "/api/v1/x/../../admin",
            "/api/v1/..",
            "/api/v1/.",
            "/api/v1/%2e%2e/admin",
            "/api/v1/%2E%2E/admin",
            "/api/v1/.%2e/admin",
            "/api/v1/..%2Fadmin",
            "/api/v1/x%2F..%2F..%2Fadmin",
            "/api/v1/..%5Cadmin",
            "/api/v1/..;/admin",
            "/api/v1/..;x=1/admin",
            // Windows trims trailing dots and spaces and cuts at `:`: `...` is `..` there.
            "/api/v1/...",
            "/api/v1/..%20/admin",
            "/api/v1/.%20/admin",
            "/api/v1/..::$DATA/admin",
            // Decoded twice by a proxy or framework, or by IIS's `%u`, or mapped by a lenient
            // or Unicode-normalising decoder onto a dot, a slash or a backslash.
            "/api/v1/%252e%252e/admin",
            "/api/v1/..%252fadmin",
            "/api/v1/%u002e%u002e/admin",
            "/api/v1/%c0%ae%c0%ae/admin",
            "/api/v1/..%c0%afadmin",
            "/api/v1/%ef%bc%8e%ef%bc%8e/admin",
            "/api/v1/..%00/admin",
            "/../api/v1/x",
            "/api/../api/v1/x",
            "/other/../api/v1",
            // Where the base path is compared: empty segments, encodings, parameters.
            "/api//v1",
            "//api/v1",
            "/api%2Fv1",
            "/api%2fv1/x",
            "/%61pi/v1",
            "/api/v%31",
            "/api;x/v1",
            "/api/v1;x",
        ] {
            assert!(
                matches!(refused_as(path), Some(TargetError::Ambiguous { .. })),
                "{path}"
            );
        }

        // Several base paths at one origin: any one is enough; another origin is unaffected.
        let upstreams = [
            api.clone(),
            Upstream::parse("https://api.example/files").unwrap(),
            Upstream::transak(),
        ];
        for (text, allowed) in [
            ("https://api.example/files/1", true),
            ("https://api.example/api/v1/x", true),
            ("https://api.example/admin", false),
            ("https://api-gateway.transak.com/../anything", true),
        ] {
            assert_eq!(
                check(&upstreams, &uri(text), &HeaderMap::new()).is_ok(),
                allowed,
                "{text}"
            );
        }
        // A base path and the whole origin configured: the whole origin wins.
        let both = [api.clone(), Upstream::parse("https://api.example").unwrap()];
        assert_eq!(
            check(&both, &uri("https://api.example/admin"), &HeaderMap::new()),
            Ok(())
        );

        // The Host header is still checked.
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("evil.example"));
        assert!(matches!(
            check(
                std::slice::from_ref(&api),
                &uri("https://api.example/api/v1/x"),
                &headers
            ),
            Err(TargetError::Ambiguous { .. })
        ));

        for bad in [
            "https://api.example//api",
            "https://api.example/api//v1",
            "https://api.example/api/v1//",
            "https://api.example/./api",
            "https://api.example/api/..",
            "https://api.example/api/%2e%2e",
            "https://api.example/api%2Fv1",
            "https://api.example/api;v=1",
        ] {
            assert_eq!(
                Upstream::parse(bad),
                Err(ConfigError::InvalidUpstream {
                    upstream: "https://api.example".to_owned(),
                    reason: PLAIN
                }),
                "{bad}"
            );
        }

        // Neither error repeats the request's path or query.
        let refused = check(
            &[api],
            &uri("https://api.example/hunter2?key=hunter2"),
            &HeaderMap::new(),
        )
        .unwrap_err();
        assert_eq!(
            refused.to_string(),
            "the request path is outside the base paths configured for https://api.example"
        );
        assert!(!format!("{refused:?}").contains("hunter2"));
    }
}
