//! [`AllowedOrigin`]: one allowlist entry, validated and canonical, and the byte-for-byte
//! match against a request's `Origin` value.
//!
//! Canonicalisation happens once, when the layer is built, and is the `url` crate's: the
//! WHATWG URL parser and origin serialisation, with UTS #46 processing of internationalised
//! names as browsers do. Matching, per request, compares bytes and allocates nothing.

use std::fmt;

use http::HeaderValue;
use url::{Host, Url};

use crate::error::ConfigError;
use crate::public_suffix::wildcard_spans_registrants;

/// The longest DNS name (without a trailing dot).
const MAX_HOST_LEN: usize = 253;
/// The longest DNS label.
const MAX_LABEL_LEN: usize = 63;

/// One entry of the allowlist in canonical form: an exact origin such as
/// `https://app.example.com`, or a pattern `https://*.example.com` that matches exactly one
/// DNS label in place of the `*`.
///
/// [`parse`](AllowedOrigin::parse) validates the configured text and canonicalises it into
/// the origin serialisation of the WHATWG URL standard, the form browsers send: scheme and
/// host lowercased, default port removed, internationalised labels in punycode (`xn--...`,
/// UTS #46 non-transitional processing), IPv6 compressed. [`matches`](AllowedOrigin::matches)
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
    /// The text is taken as written, never silently rewritten: where a browser's URL parser
    /// would *map* the name to another one (full-width letters, an ideographic full stop, an
    /// invisible or formatting character, a name not in NFC, IPv4 in octal, hex or shortened
    /// notation, an empty port), it is refused instead; only case, the default port, leading
    /// zeros of the port and the IPv6 notation are canonicalised.
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
        match scheme.as_str() {
            "https" => {}
            "http" if allow_http => {}
            "http" => return Err(ConfigError::HttpNotEnabled { origin: owned() }),
            _ => return Err(ConfigError::InvalidScheme { origin: owned() }),
        }

        // The URL parser would drop or rewrite all of these; an origin has none of them.
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
        // Stricter than the URL parser, which takes an empty port as none and leading zeros.
        let port = match port {
            None => None,
            Some(digits) => {
                let valid = !digits.is_empty()
                    && digits.len() <= 5
                    && digits.bytes().all(|b| b.is_ascii_digit());
                match digits.parse::<u16>().ok().filter(|_| valid) {
                    None => return Err(ConfigError::InvalidPort { origin: owned() }),
                    Some(port) => Some(port),
                }
            }
        };
        let (wildcard, name) = match host.strip_prefix("*.") {
            Some(base) => (true, base),
            None => (false, host),
        };
        if !name.starts_with('[') {
            check_name_as_written(name).map_err(invalid_host)?;
        }

        let mut text = format!("{scheme}://{name}");
        if let Some(port) = port {
            text.push(':');
            text.push_str(&port.to_string());
        }
        let url = match Url::parse(&text) {
            Ok(url) => url,
            Err(url::ParseError::InvalidIpv4Address) if wildcard => {
                return Err(ConfigError::InvalidWildcard { origin: owned() });
            }
            Err(error) => return Err(invalid_host(url_error_reason(error))),
        };
        match url.host() {
            Some(Host::Domain(ascii)) => {
                check_canonical_name(name, ascii).map_err(invalid_host)?;
                if wildcard && wildcard_spans_registrants(ascii) {
                    return Err(ConfigError::WildcardOnPublicSuffix {
                        origin: owned(),
                        suffix: ascii.to_owned(),
                    });
                }
            }
            Some(Host::Ipv4(_)) if wildcard => {
                return Err(ConfigError::InvalidWildcard { origin: owned() });
            }
            Some(Host::Ipv4(ip)) => {
                if ip.to_string() != name {
                    return Err(invalid_host(
                        "not a canonical dotted-decimal IPv4 address (a browser reads octal, hex and shortened forms as another address)",
                    ));
                }
            }
            Some(Host::Ipv6(_)) => {}
            None => return Err(invalid_host("empty host")),
        }

        // `scheme://host[:port]`, the default port left out: what a browser sends.
        let mut canonical = url.origin().ascii_serialization();
        let star = wildcard.then(|| {
            let star = scheme.len() + "://".len();
            canonical.insert_str(star, "*.");
            star
        });
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

/// What the URL parser accepts but no listed origin should have: an empty name or label, a
/// trailing dot (browsers keep it in the origin, so it would be another origin), and ASCII
/// other than letters, digits and `-`.
fn check_name_as_written(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("empty host");
    }
    if name.ends_with('.') {
        return Err(
            "trailing dot (browsers send it as part of the origin, list the name without it)",
        );
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err("empty label");
        }
        // In any label: the URL parser would take `\` for the start of a path, and allows
        // `_` and most punctuation.
        if label
            .chars()
            .any(|c| c.is_ascii() && !(c.is_ascii_alphanumeric() || c == '-'))
        {
            return Err("a label may hold only letters, digits and `-`");
        }
    }
    Ok(())
}

/// Compares the name as written with the URL parser's ASCII form, label by label: each label
/// must be the written one lowercased, or its punycode. Anything else means UTS #46 mapped
/// the name (full-width forms, a non-ASCII full stop, an invisible character, a name not in
/// NFC), which is refused rather than silently rewritten. Also checks the DNS lengths, which
/// the URL standard does not.
fn check_canonical_name(written: &str, ascii: &str) -> Result<(), &'static str> {
    const MAPPED: &str = "UTS #46 would rewrite this name (full-width or compatibility forms, a non-ASCII full stop, an invisible or formatting character, or a name not in NFC): write it as browsers display it";
    let mut written_labels = written.split('.');
    for label in ascii.split('.') {
        let Some(written) = written_labels.next() else {
            return Err(MAPPED);
        };
        if !is_ldh(label) {
            return Err("a label may hold only letters, digits and `-`");
        }
        let lowercase = written.chars().flat_map(char::to_lowercase);
        let same = if written.is_ascii() {
            lowercase.eq(label.chars())
        } else {
            label
                .strip_prefix("xn--")
                .and_then(idna::punycode::decode_to_string)
                .is_some_and(|unicode| lowercase.eq(unicode.chars()))
        };
        if !same {
            return Err(MAPPED);
        }
        if label.len() > MAX_LABEL_LEN {
            return Err(if written.is_ascii() {
                "a label is longer than 63 characters"
            } else {
                "a label is longer than 63 characters in punycode"
            });
        }
    }
    if written_labels.next().is_some() {
        return Err(MAPPED);
    }
    if ascii.len() > MAX_HOST_LEN {
        return Err("the name is longer than 253 characters");
    }
    Ok(())
}

/// Letters, digits and `-`, at least one.
fn is_ldh(label: &str) -> bool {
    !label.is_empty()
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Why the URL parser refused the host.
fn url_error_reason(error: url::ParseError) -> &'static str {
    match error {
        url::ParseError::EmptyHost => "empty host",
        url::ParseError::IdnaError => {
            "not a valid internationalised domain name (UTS #46: a disallowed character, an invalid `xn--` label, or a bidi or joiner rule broken)"
        }
        url::ParseError::InvalidIpv4Address => "malformed IPv4 address",
        url::ParseError::InvalidIpv6Address => "malformed IPv6 address",
        url::ParseError::InvalidDomainCharacter => "a character that is not allowed in a host",
        url::ParseError::InvalidPort => "invalid port",
        _ => "not a valid URL host",
    }
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

    /// The punycode of well-known labels and of RFC 3492's samples, as browsers send them
    /// (this crate's own encoder used to be tested with these).
    #[test]
    fn internationalised_labels_in_the_form_browsers_send() {
        for (label, punycode) in [
            ("bücher", "bcher-kva"),
            ("münchen", "mnchen-3ya"),
            ("mañana", "maana-pta"),
            ("пример", "e1afmkfd"),
            ("中国", "fiqs8s"),
            ("한국", "3e0b707e"),
            ("例え", "r8jz45g"),
            ("テスト", "zckzah"),
            // RFC 3492 section 7.1, sample (L), lowercased as hosts are.
            ("3年b組金八先生", "3b-ww4c5e180e575a65lsy2b"),
            // Sample (A), Arabic (Egyptian).
            (
                "\u{0644}\u{064A}\u{0647}\u{0645}\u{0627}\u{0628}\u{062A}\u{0643}\u{0644}\u{0645}\u{0648}\u{0634}\u{0639}\u{0631}\u{0628}\u{064A}\u{061F}",
                "egbpdaj6bu4bxfgehfvwxn",
            ),
        ] {
            let expected = format!("https://xn--{punycode}.example");
            assert_eq!(
                canon(&format!("https://{label}.example")),
                expected,
                "{label}"
            );
        }
    }

    /// The URL parser's UTS #46 processing would map these to other names (or the name as
    /// written is not what a browser sends): refused, never silently rewritten.
    #[test]
    fn names_a_browser_would_rewrite_are_refused() {
        for s in [
            "https://bu\u{308}cher.example", // not NFC
            "https://\u{17f}.example",       // long s, mapped to `s`
            "https://\u{fb00}.example",      // ligature, mapped to `ff`
            "https://\u{216b}.example",      // roman numeral twelve, mapped to `xii`
            "https://\u{1c5}.example",       // title case digraph, mapped to `dž`
            "https://ap\u{200b}p.example",   // zero-width space, removed
            "https://example.com\u{3002}a",  // ideographic full stop
            "https://example.com\t",         // the URL parser strips tabs
            "https://xn--a.example",         // invalid punycode
            "https://xn--.example",
            "https://b\u{fc}\\cher.example", // `\` would start a path
            "https://b\u{fc}_cher.example",
        ] {
            assert!(
                matches!(err(s), ConfigError::InvalidHost { .. }),
                "{s:?}: {:?}",
                AllowedOrigin::parse(s, true)
            );
        }
        // A last label that is not a number keeps the host a domain, as for a browser.
        assert_eq!(canon("https://0x4xEd"), "https://0x4xed");
        // One that is (`0x` is hex zero) makes it an IPv4 address, here an invalid one.
        assert!(matches!(
            err("https://a.0x"),
            ConfigError::InvalidHost { .. }
        ));
        assert_eq!(
            canon("https://[::FFFF:1.2.3.4]"),
            "https://[::ffff:102:304]"
        );
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
