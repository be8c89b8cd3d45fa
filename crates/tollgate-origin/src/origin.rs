//! [`AllowedOrigin`]: one allowlist entry, validated and canonical, and the byte-for-byte
//! match against a request's `Origin` value.

use std::fmt;
use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

use http::HeaderValue;

use crate::error::ConfigError;
use crate::public_suffix::is_public_suffix;
use crate::punycode;

/// The longest DNS name (without a trailing dot).
const MAX_HOST_LEN: usize = 253;
/// The longest DNS label.
const MAX_LABEL_LEN: usize = 63;

/// One entry of the allowlist in canonical form: an exact origin such as
/// `https://app.example.com`, or a pattern `https://*.example.com` that matches exactly one
/// DNS label in place of the `*`.
///
/// [`parse`](AllowedOrigin::parse) validates and canonicalises the configured text: scheme and
/// host lowercased, default port removed, internationalised labels in punycode
/// (`xn--...`), IPv6 in the compressed form browsers send. [`matches`](AllowedOrigin::matches)
/// then compares a request's `Origin` **byte for byte**: the request value is never
/// normalised, so `HTTPS://APP.EXAMPLE.COM` or `https://app.example.com:443` (which no
/// browser sends) never match.
///
/// ```
/// use tollgate_origin::AllowedOrigin;
///
/// let exact = AllowedOrigin::parse("HTTPS://Bücher.Example:443", false).unwrap();
/// assert_eq!(exact.as_str(), "https://xn--bcher-kva.example");
/// assert!(exact.matches(b"https://xn--bcher-kva.example"));
///
/// let pattern = AllowedOrigin::parse("https://*.example.com", false).unwrap();
/// assert!(pattern.matches(b"https://shop.example.com"));
/// assert!(!pattern.matches(b"https://example.com"));          // never the apex
/// assert!(!pattern.matches(b"https://a.b.example.com"));      // exactly one label
/// assert!(!pattern.matches(b"https://evilexample.com"));
/// assert!(!pattern.matches(b"http://shop.example.com"));      // scheme matches exactly
/// assert!(!pattern.matches(b"https://shop.example.com:8443")); // and so does the port
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct AllowedOrigin {
    canonical: String,
    kind: Kind,
}

#[derive(Clone, PartialEq, Eq)]
enum Kind {
    /// The canonical text as a ready `Access-Control-Allow-Origin` value.
    Exact(HeaderValue),
    /// `canonical[..star]` is `scheme://`, `canonical[star + 1..]` is `.base[:port]`.
    Wildcard { star: usize },
}

impl AllowedOrigin {
    /// Validates `origin` and returns its canonical form. `allow_http` permits `http://`
    /// origins (otherwise only `https://`).
    ///
    /// Refused: `*`, `null`, a missing or other scheme, a path, a trailing `/`, a query, a
    /// fragment, userinfo, an invalid host or port, a `*` that is not the whole left-most
    /// label, a wildcard on an IP address or on a public suffix. See [`ConfigError`].
    ///
    /// ```
    /// use tollgate_origin::{AllowedOrigin, ConfigError};
    ///
    /// assert_eq!(
    ///     AllowedOrigin::parse("http://127.0.0.1:8080", true).unwrap().as_str(),
    ///     "http://127.0.0.1:8080"
    /// );
    /// assert!(matches!(
    ///     AllowedOrigin::parse("http://127.0.0.1:8080", false),
    ///     Err(ConfigError::HttpNotEnabled { .. })
    /// ));
    /// assert!(matches!(
    ///     AllowedOrigin::parse("https://*.co.uk", false),
    ///     Err(ConfigError::WildcardOnPublicSuffix { .. })
    /// ));
    /// ```
    pub fn parse(origin: &str, allow_http: bool) -> Result<Self, ConfigError> {
        let owned = || origin.to_owned();
        if origin == "*" {
            return Err(ConfigError::AnyOrigin);
        }
        if origin.eq_ignore_ascii_case("null") {
            return Err(ConfigError::NullOrigin);
        }
        let Some((scheme, rest)) = origin.split_once("://") else {
            return Err(ConfigError::InvalidScheme { origin: owned() });
        };
        let scheme = scheme.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "https" => 443,
            "http" if allow_http => 80,
            "http" => return Err(ConfigError::HttpNotEnabled { origin: owned() }),
            _ => return Err(ConfigError::InvalidScheme { origin: owned() }),
        };

        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, remainder) = rest.split_at(end);
        if authority.contains('@') {
            return Err(ConfigError::Userinfo { origin: owned() });
        }
        match remainder.as_bytes().first() {
            None => {}
            Some(b'/') if remainder == "/" => {
                return Err(ConfigError::TrailingSlash { origin: owned() });
            }
            Some(b'/') => return Err(ConfigError::Path { origin: owned() }),
            Some(b'?') => return Err(ConfigError::Query { origin: owned() }),
            Some(_) => return Err(ConfigError::Fragment { origin: owned() }),
        }

        if let Some(star) = authority.find('*') {
            let base = &authority[star + 1..];
            if star != 0 || !base.starts_with('.') || base.contains(['*', '[']) {
                return Err(ConfigError::InvalidWildcard { origin: owned() });
            }
        }

        let invalid_host = |reason| ConfigError::InvalidHost {
            origin: owned(),
            reason,
        };
        let (host, port) =
            split_host_port(authority).ok_or_else(|| invalid_host("malformed IPv6 literal"))?;
        let port = match port {
            None => None,
            Some(digits) => {
                let valid = !digits.is_empty()
                    && digits.len() <= 5
                    && digits.bytes().all(|b| b.is_ascii_digit());
                let number = digits.parse::<u32>().ok().filter(|p| valid && *p <= 65_535);
                match number {
                    None => return Err(ConfigError::InvalidPort { origin: owned() }),
                    Some(p) if p == default_port => None,
                    Some(p) => Some(p),
                }
            }
        };

        let mut canonical = String::with_capacity(origin.len() + 8);
        canonical.push_str(&scheme);
        canonical.push_str("://");
        let mut star = None;
        if let Some(literal) = host.strip_prefix('[') {
            let literal = literal
                .strip_suffix(']')
                .ok_or_else(|| invalid_host("malformed IPv6 literal"))?;
            let addr: Ipv6Addr = literal
                .parse()
                .map_err(|_| invalid_host("malformed IPv6 address"))?;
            write_ipv6(&mut canonical, addr);
        } else {
            let name = if let Some(base) = host.strip_prefix("*.") {
                star = Some(canonical.len());
                canonical.push('*');
                base
            } else {
                host
            };
            let ascii = host_to_ascii(name).map_err(invalid_host)?;
            if looks_like_ipv4(&ascii) {
                if star.is_some() {
                    return Err(ConfigError::InvalidWildcard { origin: owned() });
                }
                match ascii.parse::<Ipv4Addr>() {
                    Ok(ip) if ip.to_string() == ascii => {}
                    _ => return Err(invalid_host("not a canonical dotted-decimal IPv4 address")),
                }
            }
            if star.is_some() && is_public_suffix(&ascii) {
                return Err(ConfigError::WildcardOnPublicSuffix {
                    origin: owned(),
                    suffix: ascii,
                });
            }
            if star.is_some() {
                canonical.push('.');
            }
            canonical.push_str(&ascii);
        }
        if let Some(port) = port {
            let _ = write!(canonical, ":{port}");
        }

        let kind = match star {
            Some(star) => Kind::Wildcard { star },
            None => Kind::Exact(
                HeaderValue::from_str(&canonical)
                    .map_err(|_| invalid_host("not a valid header value"))?,
            ),
        };
        Ok(Self { canonical, kind })
    }

    /// The canonical text, e.g. `https://app.example.com` or `https://*.example.com:8443`.
    pub fn as_str(&self) -> &str {
        &self.canonical
    }

    /// Whether this is a `*.` pattern.
    pub fn is_wildcard(&self) -> bool {
        matches!(self.kind, Kind::Wildcard { .. })
    }

    /// Whether a request's `Origin` value matches, byte for byte. A pattern's `*` matches one
    /// label of lowercase letters, digits and `-` (at most 63), never a `.`, so never a
    /// deeper name nor the apex.
    pub fn matches(&self, origin: &[u8]) -> bool {
        match self.kind {
            Kind::Exact(_) => origin == self.canonical.as_bytes(),
            Kind::Wildcard { star } => {
                let bytes = self.canonical.as_bytes();
                let (prefix, suffix) = (&bytes[..star], &bytes[star + 1..]);
                if origin.len() <= prefix.len() + suffix.len()
                    || !origin.starts_with(prefix)
                    || !origin.ends_with(suffix)
                {
                    return false;
                }
                let label = &origin[prefix.len()..origin.len() - suffix.len()];
                label.len() <= MAX_LABEL_LEN
                    && label
                        .iter()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
            }
        }
    }

    /// The `Access-Control-Allow-Origin` value for an exact entry (precomputed).
    pub(crate) fn exact_value(&self) -> Option<&HeaderValue> {
        match &self.kind {
            Kind::Exact(value) => Some(value),
            Kind::Wildcard { .. } => None,
        }
    }
}

impl fmt::Debug for AllowedOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("AllowedOrigin")
            .field(&self.canonical)
            .finish()
    }
}

impl fmt::Display for AllowedOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical)
    }
}

/// `host[:port]` or `[v6][:port]`; `None` for a malformed bracket form.
fn split_host_port(authority: &str) -> Option<(&str, Option<&str>)> {
    if authority.starts_with('[') {
        let close = authority.find(']')?;
        let (host, after) = authority.split_at(close + 1);
        return match after.strip_prefix(':') {
            Some(port) => Some((host, Some(port))),
            None if after.is_empty() => Some((host, None)),
            None => None,
        };
    }
    Some(match authority.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    })
}

/// The WHATWG URL serialisation of an IPv6 address: lowercase hex, the first longest run of
/// two or more zero pieces compressed to `::`, in brackets.
fn write_ipv6(out: &mut String, addr: Ipv6Addr) {
    let pieces = addr.segments();
    let (mut best_start, mut best_len) = (usize::MAX, 1);
    let mut i = 0;
    while i < pieces.len() {
        if pieces[i] == 0 {
            let start = i;
            while i < pieces.len() && pieces[i] == 0 {
                i += 1;
            }
            if i - start > best_len {
                (best_start, best_len) = (start, i - start);
            }
        } else {
            i += 1;
        }
    }
    out.push('[');
    let mut i = 0;
    while i < pieces.len() {
        if i == best_start {
            out.push_str(if i == 0 { "::" } else { ":" });
            i += best_len;
            continue;
        }
        let _ = write!(out, "{:x}", pieces[i]);
        if i + 1 < pieces.len() {
            out.push(':');
        }
        i += 1;
    }
    out.push(']');
}

/// WHATWG's "ends in a number": the last label is decimal digits or `0x` hex, which makes
/// the whole host an IPv4 address to a browser.
fn looks_like_ipv4(host: &str) -> bool {
    let last = host.rsplit('.').next().unwrap_or(host);
    (!last.is_empty() && last.bytes().all(|b| b.is_ascii_digit())) || last.starts_with("0x")
}

/// A domain name in the ASCII form browsers send: lowercase, internationalised labels as
/// `xn--` punycode (non-transitional, so `ß` stays `ß`). Expects Unicode input in NFC (what
/// keyboards and editors produce); UTS #46 compatibility mappings are not applied, so
/// full-width forms are refused, and a name already in `xn--` form is taken as is.
fn host_to_ascii(host: &str) -> Result<String, &'static str> {
    if host.is_empty() {
        return Err("empty host");
    }
    if host.ends_with('.') {
        return Err(
            "trailing dot (browsers send it as part of the origin, list the name without it)",
        );
    }
    let mut out = String::with_capacity(host.len());
    for (index, label) in host.split('.').enumerate() {
        if index > 0 {
            out.push('.');
        }
        if label.is_empty() {
            return Err("empty label");
        }
        if label.is_ascii() {
            if !label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            {
                return Err("a label may hold only letters, digits and `-`");
            }
            if label.len() > MAX_LABEL_LEN {
                return Err("a label is longer than 63 characters");
            }
            out.extend(label.chars().map(|c| c.to_ascii_lowercase()));
            continue;
        }
        let mut chars = Vec::with_capacity(label.len());
        for c in label.chars() {
            if matches!(c, '\u{3002}' | '\u{ff0e}' | '\u{ff61}') {
                return Err("a non-ASCII full stop: separate labels with `.`");
            }
            if c.is_ascii() && !(c.is_ascii_alphanumeric() || c == '-') {
                return Err("a label may hold only letters, digits and `-`");
            }
            if ('\u{ff00}'..='\u{ffef}').contains(&c) {
                return Err(
                    "full-width or half-width forms: write the name as browsers display it",
                );
            }
            if c.is_control() || c.is_whitespace() {
                return Err("a label holds a space or control character");
            }
            if is_invisible(c) {
                return Err(
                    "a label holds an invisible or formatting character (soft hyphen, zero-width or bidi control, variation selector)",
                );
            }
            chars.extend(c.to_lowercase());
        }
        let encoded = punycode::encode(&chars).ok_or("a label cannot be encoded as punycode")?;
        if encoded.len() + 4 > MAX_LABEL_LEN {
            return Err("a label is longer than 63 characters in punycode");
        }
        out.push_str("xn--");
        out.push_str(&encoded);
    }
    if out.len() > MAX_HOST_LEN {
        return Err("the name is longer than 253 characters");
    }
    Ok(out)
}

/// Default-ignorable and formatting characters that IDNA processing removes or refuses
/// (soft hyphen, combining grapheme joiner, zero-width and bidi controls, variation
/// selectors, byte order mark, tags): encoding them would give a name no browser sends, so
/// such a label is refused instead of silently never matching.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00ad}'
            | '\u{034f}'
            | '\u{061c}'
            | '\u{115f}'..='\u{1160}'
            | '\u{17b4}'..='\u{17b5}'
            | '\u{180b}'..='\u{180f}'
            | '\u{200b}'..='\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2060}'..='\u{206f}'
            | '\u{3164}'
            | '\u{fe00}'..='\u{fe0f}'
            | '\u{feff}'
            | '\u{1bca0}'..='\u{1bca3}'
            | '\u{1d173}'..='\u{1d17a}'
            | '\u{e0000}'..='\u{e0fff}'
    )
}

/// The `scheme://host[:port]` prefix of a `Referer` value, as sent (not normalised).
/// `None` when it has no `://` or carries userinfo.
pub(crate) fn referer_origin(referer: &[u8]) -> Option<&[u8]> {
    let scheme_end = referer.windows(3).position(|w| w == b"://")?;
    let authority_start = scheme_end + 3;
    let end = referer[authority_start..]
        .iter()
        .position(|b| matches!(b, b'/' | b'?' | b'#'))
        .map_or(referer.len(), |p| authority_start + p);
    let origin = &referer[..end];
    (end > authority_start && !origin[authority_start..].contains(&b'@')).then_some(origin)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(origin: &str) -> String {
        AllowedOrigin::parse(origin, true)
            .unwrap()
            .as_str()
            .to_owned()
    }

    fn err(origin: &str) -> ConfigError {
        AllowedOrigin::parse(origin, true).unwrap_err()
    }

    #[test]
    fn canonical_form() {
        assert_eq!(canon("HTTPS://App.Example.COM"), "https://app.example.com");
        assert_eq!(
            canon("https://app.example.com:443"),
            "https://app.example.com"
        );
        assert_eq!(canon("http://app.example.com:80"), "http://app.example.com");
        assert_eq!(
            canon("https://app.example.com:80"),
            "https://app.example.com:80"
        );
        assert_eq!(
            canon("http://app.example.com:443"),
            "http://app.example.com:443"
        );
        assert_eq!(
            canon("https://app.example.com:08443"),
            "https://app.example.com:8443"
        );
        assert_eq!(
            canon("https://Bücher.example"),
            "https://xn--bcher-kva.example"
        );
        assert_eq!(canon("https://ПРИМЕР.рф"), "https://xn--e1afmkfd.xn--p1ai");
        assert_eq!(canon("https://straße.de"), "https://xn--strae-oqa.de");
        assert_eq!(
            canon("https://例え.テスト"),
            "https://xn--r8jz45g.xn--zckzah"
        );
        assert_eq!(
            canon("https://xn--bcher-kva.example"),
            "https://xn--bcher-kva.example"
        );
        assert_eq!(
            canon("https://*.Bücher.example"),
            "https://*.xn--bcher-kva.example"
        );
        assert_eq!(
            canon("https://*.example.com:8443"),
            "https://*.example.com:8443"
        );
        assert_eq!(canon("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
        assert_eq!(canon("http://[0:0:0:0:0:0:0:1]:3000"), "http://[::1]:3000");
        assert_eq!(
            canon("https://[2001:DB8:0:0:1:0:0:1]"),
            "https://[2001:db8::1:0:0:1]"
        );
        assert_eq!(canon("https://[1::]"), "https://[1::]");
        assert_eq!(
            canon("https://[1:2:3:4:5:6:7:8]"),
            "https://[1:2:3:4:5:6:7:8]"
        );
        assert_eq!(canon("https://localhost"), "https://localhost");
    }

    #[test]
    fn every_configuration_error() {
        assert_eq!(err("*"), ConfigError::AnyOrigin);
        assert_eq!(err("null"), ConfigError::NullOrigin);
        assert_eq!(err("NULL"), ConfigError::NullOrigin);
        let origin = |s: &str| s.to_owned();
        assert_eq!(
            err("app.example.com"),
            ConfigError::InvalidScheme {
                origin: origin("app.example.com")
            }
        );
        for s in [
            "ftp://example.com",
            "ws://example.com",
            "file://x",
            "chrome-extension://abc",
        ] {
            assert_eq!(
                err(s),
                ConfigError::InvalidScheme { origin: origin(s) },
                "{s}"
            );
        }
        assert_eq!(
            AllowedOrigin::parse("http://example.com", false).unwrap_err(),
            ConfigError::HttpNotEnabled {
                origin: origin("http://example.com")
            }
        );
        assert_eq!(
            err("https://example.com/"),
            ConfigError::TrailingSlash {
                origin: origin("https://example.com/")
            }
        );
        assert_eq!(
            err("https://example.com/app"),
            ConfigError::Path {
                origin: origin("https://example.com/app")
            }
        );
        assert_eq!(
            err("https://example.com//"),
            ConfigError::Path {
                origin: origin("https://example.com//")
            }
        );
        assert_eq!(
            err("https://example.com?a=1"),
            ConfigError::Query {
                origin: origin("https://example.com?a=1")
            }
        );
        assert_eq!(
            err("https://example.com#x"),
            ConfigError::Fragment {
                origin: origin("https://example.com#x")
            }
        );
        assert_eq!(
            err("https://user@example.com"),
            ConfigError::Userinfo {
                origin: origin("https://user@example.com")
            }
        );
        assert_eq!(
            err("https://u:p@example.com:8443"),
            ConfigError::Userinfo {
                origin: origin("https://u:p@example.com:8443")
            }
        );
        for s in [
            "https://example.com:",
            "https://example.com:65536",
            "https://example.com:12a",
            "https://example.com:1:2",
            "https://example.com:-1",
            "https://example.com:123456",
        ] {
            assert_eq!(
                err(s),
                ConfigError::InvalidPort { origin: origin(s) },
                "{s}"
            );
        }
        for s in [
            "https://",
            "https://example.com.",
            "https://exa mple.com",
            "https://a..b",
            "https://ex_ample.com",
            "https://example.com\\evil",
            "https://[::1",
            "https://[::1]x",
            "https://[fe80::1%25eth0]",
            "https://127.0.0.01",
            "https://127.1",
            "https://1.2.3.256",
            "https://example.0x10",
            "https://例え。テスト",
            "https://ｅｘａｍｐｌｅ.com",
        ] {
            assert!(
                matches!(err(s), ConfigError::InvalidHost { .. }),
                "{s}: {:?}",
                err(s)
            );
        }
        let long_label = format!("https://{}.com", "a".repeat(64));
        assert!(matches!(err(&long_label), ConfigError::InvalidHost { .. }));
        for s in [
            "https://*example.com",
            "https://a*.example.com",
            "https://*.*.example.com",
            "https://a.*.example.com",
            "https://*",
            "https://**.example.com",
            "https://example.*",
            "*://example.com",
            "https://*.127.0.0.1",
            "https://*.[::1]",
            "https://[*::1]",
        ] {
            let e = AllowedOrigin::parse(s, true);
            assert!(
                matches!(
                    e,
                    Err(ConfigError::InvalidWildcard { .. })
                        | Err(ConfigError::InvalidScheme { .. })
                ),
                "{s}: {e:?}"
            );
        }
        assert_eq!(
            err("*://example.com"),
            ConfigError::InvalidScheme {
                origin: origin("*://example.com")
            }
        );
        for (s, suffix) in [
            ("https://*.com", "com"),
            ("https://*.co.uk", "co.uk"),
            ("https://*.github.io", "github.io"),
            ("https://*.localhost", "localhost"),
            ("https://*.COM", "com"),
            ("https://*.anything.ck", "anything.ck"),
            ("https://*.рф", "xn--p1ai"),
        ] {
            assert_eq!(
                err(s),
                ConfigError::WildcardOnPublicSuffix {
                    origin: origin(s),
                    suffix: suffix.to_owned()
                },
                "{s}"
            );
        }
    }

    #[test]
    fn exact_matches_only_its_own_bytes() {
        let allowed = AllowedOrigin::parse("https://example.com", false).unwrap();
        assert!(allowed.matches(b"https://example.com"));
        for origin in [
            "https://example.com.evil.com",
            "https://evilexample.com",
            "http://example.com",
            "https://example.com:8443",
            "https://EXAMPLE.com",
            "HTTPS://example.com",
            "https://example.com:443",
            "https://example.com.",
            "https://user@example.com",
            "https://example.com/",
            "https://ex%61mple.com",
            "null",
            "",
            "https://example.com, https://evil.com",
            " https://example.com",
            "https://a.example.com",
        ] {
            assert!(!allowed.matches(origin.as_bytes()), "{origin}");
        }
    }

    #[test]
    fn wildcard_matches_one_label() {
        let allowed = AllowedOrigin::parse("https://*.example.com", false).unwrap();
        assert!(allowed.is_wildcard());
        assert!(allowed.matches(b"https://shop.example.com"));
        assert!(allowed.matches(b"https://xn--bcher-kva.example.com"));
        assert!(allowed.matches(b"https://a-1.example.com"));
        let max = format!("https://{}.example.com", "a".repeat(63));
        assert!(allowed.matches(max.as_bytes()));
        let over = format!("https://{}.example.com", "a".repeat(64));
        assert!(!allowed.matches(over.as_bytes()));
        for origin in [
            "https://example.com",
            "https://.example.com",
            "https://evilexample.com",
            "https://a.b.example.com",
            "https://example.com.evil.com",
            "https://shop.example.com.evil.com",
            "http://shop.example.com",
            "https://shop.example.com:443",
            "https://shop.example.com:8443",
            "https://SHOP.example.com",
            "https://shop.example.com.",
            "https://user@shop.example.com",
            "https://evil.com/.example.com",
            "https://a:1.example.com",
            "https://a_b.example.com",
        ] {
            assert!(!allowed.matches(origin.as_bytes()), "{origin}");
        }
        let ported = AllowedOrigin::parse("https://*.example.com:8443", false).unwrap();
        assert!(ported.matches(b"https://shop.example.com:8443"));
        assert!(!ported.matches(b"https://shop.example.com"));
        assert!(!ported.matches(b"https://shop.example.com:84430"));
    }

    #[test]
    fn referer_origin_is_the_prefix_as_sent() {
        assert_eq!(
            referer_origin(b"https://app.example.com/checkout?x=1"),
            Some(&b"https://app.example.com"[..])
        );
        assert_eq!(
            referer_origin(b"https://app.example.com"),
            Some(&b"https://app.example.com"[..])
        );
        assert_eq!(
            referer_origin(b"http://127.0.0.1:3000/"),
            Some(&b"http://127.0.0.1:3000"[..])
        );
        assert_eq!(
            referer_origin(b"https://app.example.com?x"),
            Some(&b"https://app.example.com"[..])
        );
        assert_eq!(referer_origin(b"https://u@app.example.com/"), None);
        assert_eq!(referer_origin(b"https:///path"), None);
        assert_eq!(referer_origin(b"/relative"), None);
        assert_eq!(referer_origin(b""), None);
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Any configured text either fails with a `ConfigError` or yields a canonical form
        /// that parses to itself; parsing never panics.
        #[test]
        fn parse_never_panics_and_canonical_form_is_a_fixed_point(input in ".{0,40}") {
            for allow_http in [false, true] {
                if let Ok(parsed) = AllowedOrigin::parse(&input, allow_http) {
                    let again = AllowedOrigin::parse(parsed.as_str(), allow_http).unwrap();
                    prop_assert_eq!(again.as_str(), parsed.as_str());
                }
            }
        }

        #[test]
        fn canonical_urls_round_trip(
            scheme in "(https|http|HTTPS)",
            host in "[a-zA-Z0-9]{1,10}(\\.[a-z0-9-]{1,8}){0,3}\\.[a-z]{2,5}",
            port in proptest::option::of(1u16..),
        ) {
            let input = match port {
                Some(port) => format!("{scheme}://{host}:{port}"),
                None => format!("{scheme}://{host}"),
            };
            let parsed = AllowedOrigin::parse(&input, true).unwrap();
            let scheme = scheme.to_ascii_lowercase();
            let default = if scheme == "https" { 443 } else { 80 };
            let expected = match port {
                Some(port) if port != default => format!("{scheme}://{}:{port}", host.to_ascii_lowercase()),
                _ => format!("{scheme}://{}", host.to_ascii_lowercase()),
            };
            prop_assert_eq!(parsed.as_str(), expected.as_str());
            prop_assert!(parsed.matches(expected.as_bytes()));
        }

        /// The wildcard accepts exactly the origins made of one lowercase LDH label, the
        /// base and the same scheme and port; matching never panics on arbitrary bytes.
        #[test]
        fn wildcard_matches_exactly_one_label(label in "[a-zA-Z0-9.:_@/-]{0,12}", noise in proptest::collection::vec(any::<u8>(), 0..40)) {
            let pattern = AllowedOrigin::parse("https://*.example.com", false).unwrap();
            let origin = format!("https://{label}.example.com");
            let one_label = !label.is_empty()
                && label.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            prop_assert_eq!(pattern.matches(origin.as_bytes()), one_label);
            let _ = pattern.matches(&noise);
        }
    }
}
