//! [`Upstream`]: the one scheme and authority a secret may be sent to.

use std::fmt;
use std::str::FromStr;

use http::{HeaderName, Uri};

use crate::{ConfigError, HeaderError};

/// A scheme, host and port that a secret header may be sent to, e.g.
/// `https://api-gateway.transak.com` (port 443 implied).
///
/// A request matches when its URI has the same scheme and host (both compared
/// case-insensitively) and the same port (`80` for `http` and `443` for `https` when absent),
/// and carries no user info. Paths are not compared.
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
        let port = authority
            .port_u16()
            .or_else(|| default_port(&scheme))
            .ok_or_else(|| invalid("the port is missing"))?;
        Ok(Self {
            host: authority.host().to_ascii_lowercase(),
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

    /// Whether `uri` goes to this upstream.
    pub fn matches(&self, uri: &Uri) -> bool {
        let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
            return false;
        };
        if authority.as_str().contains('@') || !scheme.eq_ignore_ascii_case(&self.scheme) {
            return false;
        }
        let port = authority
            .port_u16()
            .or_else(|| default_port(&scheme.to_ascii_lowercase()));
        authority.host().eq_ignore_ascii_case(&self.host) && port == Some(self.port)
    }
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
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

/// Checks `uri` against the configured upstreams; the error names `header`.
pub(crate) fn check(
    upstreams: &[Upstream],
    header: &HeaderName,
    uri: &Uri,
) -> Result<(), HeaderError> {
    if upstreams.is_empty() {
        return Err(HeaderError::UpstreamNotConfigured {
            header: header.clone(),
        });
    }
    if upstreams.iter().any(|upstream| upstream.matches(uri)) {
        return Ok(());
    }
    let target = describe_target(uri);
    tracing::warn!(
        target: "tollgate",
        header = %header,
        %target,
        "refused to send a secret header to an unconfigured upstream"
    );
    Err(HeaderError::UpstreamNotAllowed {
        header: header.clone(),
        target,
    })
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

    #[test]
    fn target_description_hides_user_info() {
        let uri: Uri = "https://user:hunter2@evil.example:444/x".parse().unwrap();
        assert_eq!(describe_target(&uri), "https://evil.example:444");
        assert_eq!(describe_target(&"/x".parse().unwrap()), "a relative URI");
    }
}
