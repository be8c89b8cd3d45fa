//! [`Upstream`]: the one scheme and authority a secret may be sent to.

use std::fmt;
use std::net::Ipv6Addr;
use std::str::FromStr;

use http::header::{self, HeaderMap};
use http::uri::Authority;
use http::{HeaderName, Uri};

use crate::{ConfigError, HeaderError};

/// A scheme, host and port that a secret header may be sent to, e.g.
/// `https://api-gateway.transak.com` (port 443 implied).
///
/// A request matches when its URI has the same scheme and host (both compared
/// case-insensitively) and the same port (`80` for `http` and `443` for `https` when absent
/// or empty), and carries no user info. Paths are not compared. The comparison is exact
/// otherwise, and fails closed:
///
/// - IPv6 literals compare as addresses (`[::1]` is `[0:0:0:0:0:0:0:1]`); any other
///   spelling of a host is another host: `127.1` is not `127.0.0.1`, `[::ffff:127.0.0.1]` is
///   not `127.0.0.1`, and `api.example.` (trailing dot) is not `api.example`.
/// - A port that is not a number from 0 to 65535 (`:99999`) never matches: clients read it
///   differently (some fall back to the default port).
/// - A relative URI (`/path`, origin form) never matches: it does not say where the
///   connection goes.
///
/// [`SecretHeaderLayer`](crate::SecretHeaderLayer) and
/// [`TokenHeaderLayer`](crate::TokenHeaderLayer) also refuse a request whose `Host` header
/// disagrees with its URI, or that has several `Host` headers: the URI decides where the
/// connection goes, the `Host` header which site the server (or a CDN in front of several)
/// routes the request to, and a secret must not go where the two part ways.
///
/// ```
/// use tollgate_headers::Upstream;
///
/// let upstream = Upstream::parse("https://api-gateway.transak.com").unwrap();
/// assert!(upstream.matches(&"https://API-Gateway.transak.com:443/partners/api/v2/orders".parse().unwrap()));
/// assert!(!upstream.matches(&"http://api-gateway.transak.com/".parse().unwrap()));
/// assert!(!upstream.matches(&"https://api-gateway.transak.com.evil.example/".parse().unwrap()));
/// assert!(!upstream.matches(&"/relative/path".parse().unwrap()));
/// assert_eq!(upstream.to_string(), "https://api-gateway.transak.com:443");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Upstream {
    scheme: String,
    host: String,
    port: u16,
}

impl Upstream {
    /// Transak's production API gateway, `https://api-gateway.transak.com`.
    pub fn transak() -> Self {
        Self {
            scheme: "https".to_owned(),
            host: "api-gateway.transak.com".to_owned(),
            port: 443,
        }
    }

    /// Transak's staging API gateway, `https://api-gateway-stg.transak.com`.
    pub fn transak_staging() -> Self {
        Self {
            scheme: "https".to_owned(),
            host: "api-gateway-stg.transak.com".to_owned(),
            port: 443,
        }
    }

    /// Parses `scheme://host[:port]` (a trailing `/` is allowed). Fails when the scheme or
    /// host is missing, user info, a path or a query is present, or a scheme other than
    /// `http`/`https` has no explicit port.
    ///
    /// ```
    /// use tollgate_headers::Upstream;
    ///
    /// assert!(Upstream::parse("http://127.0.0.1:8080").is_ok());
    /// assert!(Upstream::parse("https://user@api.example").is_err());
    /// assert!(Upstream::parse("https://api.example/v2").is_err());
    /// ```
    pub fn parse(upstream: &str) -> Result<Self, ConfigError> {
        let invalid = |reason| ConfigError::InvalidUpstream {
            upstream: upstream.to_owned(),
            reason,
        };
        let uri: Uri = upstream.parse().map_err(|_| invalid("not a valid URI"))?;
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
        if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
            return Err(invalid("a path or query is not allowed"));
        }
        if authority.host().is_empty() {
            return Err(invalid("the host is missing"));
        }
        let port = match explicit_port(authority) {
            Err(()) => return Err(invalid("the port is not a number from 0 to 65535")),
            Ok(Some(port)) => port,
            Ok(None) => default_port(&scheme).ok_or_else(|| invalid("the port is missing"))?,
        };
        Ok(Self {
            host: canonical_host(authority.host()),
            scheme,
            port,
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
    /// use tollgate_headers::Upstream;
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

    /// Whether `uri` goes to this upstream (see the type's docs for the exact rules).
    pub fn matches(&self, uri: &Uri) -> bool {
        matches!(Target::of_uri(uri), Ok(target) if self.is(&target))
    }

    fn is(&self, target: &Target) -> bool {
        target.scheme == self.scheme && target.host == self.host && target.port == self.port
    }
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

/// The port written in `authority`: `Ok(None)` when there is none (or it is empty, which
/// RFC 3986 section 3.2.3 reads as the default), `Err` when it is not a `u16` in digits.
fn explicit_port(authority: &Authority) -> Result<Option<u16>, ()> {
    let text = authority.as_str();
    let after_host = text.rsplit_once('@').map_or(text, |(_, rest)| rest);
    let Some(port) = after_host
        .strip_prefix(authority.host())
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
/// text (`[0:0::1]` becomes `[::1]`).
fn canonical_host(host: &str) -> String {
    if let Some(literal) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']'))
        && let Ok(address) = literal.parse::<Ipv6Addr>()
    {
        return format!("[{address}]");
    }
    host.to_ascii_lowercase()
}

/// Where a request goes: scheme, canonical host, effective port.
#[derive(Debug, PartialEq, Eq)]
struct Target {
    scheme: String,
    host: String,
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

impl Target {
    fn of_uri(uri: &Uri) -> Result<Self, Unclear> {
        let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
            return Err(Unclear::Relative);
        };
        let scheme = scheme.to_ascii_lowercase();
        Self::of_authority(scheme, authority)
    }

    fn of_authority(scheme: String, authority: &Authority) -> Result<Self, Unclear> {
        if authority.as_str().contains('@') {
            return Err(Unclear::UserInfo);
        }
        if authority.host().is_empty() {
            return Err(Unclear::Relative);
        }
        let port = match explicit_port(authority) {
            Ok(Some(port)) => port,
            Ok(None) => default_port(&scheme).ok_or(Unclear::NoDefaultPort)?,
            Err(()) => return Err(Unclear::Port),
        };
        Ok(Self {
            host: canonical_host(authority.host()),
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
        write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
    }
}

impl fmt::Debug for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Upstream({self})")
    }
}

/// Where a request URI goes, for an error message: scheme, host and port only.
pub(crate) fn describe_target(uri: &Uri) -> String {
    match (uri.scheme_str(), uri.authority()) {
        (Some(scheme), Some(authority)) => match authority.port_u16() {
            Some(port) => format!("{scheme}://{}:{port}", authority.host()),
            None => format!("{scheme}://{}", authority.host()),
        },
        _ => "a relative URI".to_owned(),
    }
}

/// Checks a request's URI and `Host` header against the configured upstreams; the error
/// names `header`.
///
/// The URI decides: it must match an upstream. A `Host` header may be absent (the client
/// derives it from the URI) or name the same host and effective port; anything else (another
/// host, several `Host` headers, one that does not parse) is refused as ambiguous.
pub(crate) fn check(
    upstreams: &[Upstream],
    header: &HeaderName,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<(), HeaderError> {
    if upstreams.is_empty() {
        return Err(HeaderError::UpstreamNotConfigured {
            header: header.clone(),
        });
    }
    let target = match Target::of_uri(uri) {
        Ok(target) if upstreams.iter().any(|upstream| upstream.is(&target)) => target,
        Ok(_) | Err(Unclear::Relative | Unclear::UserInfo | Unclear::NoDefaultPort) => {
            let target = describe_target(uri);
            tracing::warn!(
                target: "tollgate",
                header = %header,
                %target,
                "refused to send a secret header to an unconfigured upstream"
            );
            return Err(HeaderError::UpstreamNotAllowed {
                header: header.clone(),
                target,
            });
        }
        Err(Unclear::Port) => {
            return Err(ambiguous(
                header,
                "the request URI's port is not a valid port",
            ));
        }
    };
    let mut hosts = headers.get_all(header::HOST).iter();
    let Some(host) = hosts.next() else {
        return Ok(());
    };
    if hosts.next().is_some() {
        return Err(ambiguous(header, "the request has several Host headers"));
    }
    let agrees = Authority::try_from(host.as_bytes())
        .ok()
        .and_then(|authority| Target::of_authority(target.scheme.clone(), &authority).ok())
        .is_some_and(|host| host == target);
    if agrees {
        Ok(())
    } else {
        Err(ambiguous(
            header,
            "the Host header disagrees with the request URI",
        ))
    }
}

fn ambiguous(header: &HeaderName, reason: &'static str) -> HeaderError {
    tracing::warn!(
        target: "tollgate",
        header = %header,
        reason,
        "refused to send a secret header to an ambiguous target"
    );
    HeaderError::AmbiguousTarget {
        header: header.clone(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_rules() {
        let local = Upstream::parse("http://127.0.0.1:8080/").unwrap();
        assert_eq!(local.to_string(), "http://127.0.0.1:8080");
        assert!(local.matches(&"http://127.0.0.1:8080/x?y=1".parse().unwrap()));
        assert!(!local.matches(&"http://127.0.0.1:8081/".parse().unwrap()));
        assert!(!local.matches(&"http://localhost:8080/".parse().unwrap()));
        assert!(!local.matches(&"http://u:p@127.0.0.1:8080/".parse().unwrap()));

        let https = Upstream::parse("HTTPS://API-Gateway.Transak.com:443").unwrap();
        assert_eq!(https, Upstream::transak());
        assert!(https.matches(&"https://api-gateway.transak.com/".parse().unwrap()));
        assert!(!https.matches(&"https://api-gateway.transak.com:8443/".parse().unwrap()));

        let v6 = Upstream::parse("http://[::1]:9000").unwrap();
        assert!(v6.matches(&"http://[::1]:9000/".parse().unwrap()));

        for (bad, reason) in [
            ("api-gateway.transak.com", "the scheme is missing"),
            ("/path", "the scheme is missing"),
            ("https://u:p@host.example", "user info is not allowed"),
            ("https://host.example/v2", "a path or query is not allowed"),
            (
                "https://host.example/?a=b",
                "a path or query is not allowed",
            ),
            ("ftp://host.example", "the port is missing"),
            ("not a uri", "not a valid URI"),
        ] {
            assert_eq!(
                Upstream::parse(bad),
                Err(ConfigError::InvalidUpstream {
                    upstream: bad.to_owned(),
                    reason
                }),
                "{bad}"
            );
        }
    }

    fn uri(text: &str) -> Uri {
        text.parse().unwrap()
    }

    /// reqwest's cross-host rule (host and effective port) plus the scheme, on every
    /// spelling of an authority.
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
        assert_eq!(
            Upstream::parse("https://api.example:99999"),
            Err(ConfigError::InvalidUpstream {
                upstream: "https://api.example:99999".to_owned(),
                reason: "the port is not a number from 0 to 65535",
            })
        );
    }

    fn checked(uri_text: &str, hosts: &[&str]) -> Result<(), HeaderError> {
        let mut headers = HeaderMap::new();
        for host in hosts {
            headers.append(
                header::HOST,
                http::HeaderValue::from_bytes(host.as_bytes()).unwrap(),
            );
        }
        check(
            &[
                Upstream::transak(),
                Upstream::parse("http://[::1]:8080").unwrap(),
            ],
            &HeaderName::from_static("x-api-key"),
            &uri(uri_text),
            &headers,
        )
    }

    /// The URI decides where the request goes; a `Host` header must agree with it.
    #[test]
    fn host_header_must_agree_with_the_uri() {
        let base = "https://api-gateway.transak.com/v2";
        for hosts in [
            &[][..],
            &["api-gateway.transak.com"],
            &["API-Gateway.Transak.com:443"],
            &["api-gateway.transak.com:"],
        ] {
            assert!(checked(base, hosts).is_ok(), "{hosts:?}");
        }
        assert!(checked("http://[::1]:8080/", &["[0:0::1]:8080"]).is_ok());

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
            match checked(base, hosts) {
                Err(HeaderError::AmbiguousTarget { header, .. }) => assert_eq!(header, "x-api-key"),
                other => panic!("{hosts:?}: {other:?}"),
            }
        }
        // Several Host headers are named as such.
        assert!(matches!(
            checked(base, &["a.example", "b.example"]),
            Err(HeaderError::AmbiguousTarget {
                reason: "the request has several Host headers",
                ..
            })
        ));
        // An invalid port in the URI is ambiguous, not "another upstream".
        assert!(matches!(
            checked("https://api-gateway.transak.com:99999/", &[]),
            Err(HeaderError::AmbiguousTarget {
                reason: "the request URI's port is not a valid port",
                ..
            })
        ));
        // A relative URI is refused even with a Host header naming the upstream: its
        // scheme (TLS or not) is unknown.
        match checked("/v2/orders", &["api-gateway.transak.com"]) {
            Err(HeaderError::UpstreamNotAllowed { target, .. }) => {
                assert_eq!(target, "a relative URI");
            }
            other => panic!("{other:?}"),
        }
        // A URI to another host is "not allowed" whatever the Host header says.
        assert!(matches!(
            checked("https://evil.example/", &["api-gateway.transak.com"]),
            Err(HeaderError::UpstreamNotAllowed { .. })
        ));
        assert!(matches!(
            checked("ftp://api-gateway.transak.com/", &[]),
            Err(HeaderError::UpstreamNotAllowed { .. })
        ));
    }

    #[test]
    fn target_description_hides_user_info() {
        let uri: Uri = "https://user:hunter2@evil.example:444/x".parse().unwrap();
        assert_eq!(describe_target(&uri), "https://evil.example:444");
        assert_eq!(describe_target(&"/x".parse().unwrap()), "a relative URI");
    }
}
