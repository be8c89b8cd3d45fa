//! What a proxy says about the scheme the client used: `X-Forwarded-Proto` and RFC 7239
//! `Forwarded: proto=`. Pure functions, no tower.
//!
//! Only the rightmost value of each header is read: every proxy appends, so the rightmost
//! value is the one the nearest proxy wrote, and everything left of it may come from the
//! client. A value that does not parse says "not https".

use http::HeaderMap;
use http::header::{FORWARDED, HeaderName};
use tollgate_core::header::trim_ows;

/// `X-Forwarded-Proto` (not in `http`'s constants).
pub(crate) const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

/// What one header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Said {
    /// The header is not there.
    Absent,
    /// Exactly `https` (ASCII case-insensitive).
    Https,
    /// Another scheme, no scheme, or a value that does not parse.
    NotHttps,
}

/// Whether the forwarding headers in `headers` say the client used https: at least one of
/// `X-Forwarded-Proto` and `Forwarded` is present, and every one present says `https`.
/// Two headers that disagree, or a malformed one, mean "not https".
pub(crate) fn forwarded_https(headers: &HeaderMap) -> bool {
    match (x_forwarded_proto(headers), forwarded_proto(headers)) {
        (Said::Absent, Said::Absent) => false,
        (xfp, fwd) => xfp != Said::NotHttps && fwd != Said::NotHttps,
    }
}

/// The rightmost `X-Forwarded-Proto` value across all lines and comma lists.
pub(crate) fn x_forwarded_proto(headers: &HeaderMap) -> Said {
    let Some(line) = headers.get_all(X_FORWARDED_PROTO).iter().next_back() else {
        return Said::Absent;
    };
    let bytes = line.as_bytes();
    let last = match bytes.iter().rposition(|&b| b == b',') {
        Some(comma) => &bytes[comma + 1..],
        None => bytes,
    };
    judge_token(trim_ows(last))
}

/// The `proto` parameter of the rightmost `Forwarded` element across all lines.
pub(crate) fn forwarded_proto(headers: &HeaderMap) -> Said {
    let Some(line) = headers.get_all(FORWARDED).iter().next_back() else {
        return Said::Absent;
    };
    let Some(element) = rightmost_element(line.as_bytes()) else {
        return Said::NotHttps;
    };
    let mut proto = None;
    for pair in split_unquoted(element, b';') {
        let pair = trim_ows(pair);
        let Some(eq) = pair.iter().position(|&b| b == b'=') else {
            return Said::NotHttps;
        };
        let (name, value) = (&pair[..eq], &pair[eq + 1..]);
        if name.is_empty() || !name.iter().all(is_tchar) {
            return Said::NotHttps;
        }
        let Some(value) = parameter_value(value) else {
            return Said::NotHttps;
        };
        if name.eq_ignore_ascii_case(b"proto") {
            if proto.is_some() {
                // Two `proto` in one element: ambiguous.
                return Said::NotHttps;
            }
            proto = Some(value);
        }
    }
    match proto {
        Some(Value::Token(token)) => judge_token(token),
        Some(Value::Quoted(text)) if text.eq_ignore_ascii_case("https") => Said::Https,
        // No proto in the element the nearest proxy wrote, or another scheme.
        _ => Said::NotHttps,
    }
}

fn judge_token(token: &[u8]) -> Said {
    if token.eq_ignore_ascii_case(b"https") {
        Said::Https
    } else {
        Said::NotHttps
    }
}

enum Value<'a> {
    Token(&'a [u8]),
    Quoted(String),
}

/// A `Forwarded` parameter value: a token or a quoted-string (unescaped).
fn parameter_value(value: &[u8]) -> Option<Value<'_>> {
    if let Some(rest) = value.strip_prefix(b"\"") {
        let mut out = String::new();
        let mut bytes = rest.iter();
        while let Some(&b) = bytes.next() {
            match b {
                b'"' => {
                    // The closing quote must end the value.
                    return bytes.next().is_none().then_some(Value::Quoted(out));
                }
                b'\\' => {
                    let &escaped = bytes.next()?;
                    if !is_qdtext_or_escapable(escaped) {
                        return None;
                    }
                    out.push(char::from(escaped));
                }
                b if is_qdtext_or_escapable(b) => out.push(char::from(b)),
                _ => return None,
            }
        }
        None
    } else if !value.is_empty() && value.iter().all(is_tchar) {
        Some(Value::Token(value))
    } else {
        None
    }
}

/// Visible ASCII, space and tab (obs-text is refused: a scheme is ASCII).
fn is_qdtext_or_escapable(b: u8) -> bool {
    b == b'\t' || (0x20..=0x7e).contains(&b)
}

/// The rightmost comma-separated element of a `Forwarded` line (commas inside quoted strings
/// do not separate), or `None` when the quotes do not balance or the element is empty.
fn rightmost_element(line: &[u8]) -> Option<&[u8]> {
    let mut start = 0;
    let mut in_quotes = false;
    let mut escaped = false;
    for (i, &b) in line.iter().enumerate() {
        if in_quotes {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_quotes = false;
            }
        } else if b == b'"' {
            in_quotes = true;
        } else if b == b',' {
            start = i + 1;
        }
    }
    if in_quotes {
        return None;
    }
    let element = trim_ows(&line[start..]);
    (!element.is_empty()).then_some(element)
}

/// Splits at `delim` outside quoted strings (quotes already known to balance).
fn split_unquoted(bytes: &[u8], delim: u8) -> impl Iterator<Item = &[u8]> {
    let mut in_quotes = false;
    let mut escaped = false;
    bytes.split(move |&b| {
        if in_quotes {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_quotes = false;
            }
            false
        } else if b == b'"' {
            in_quotes = true;
            false
        } else {
            b == delim
        }
    })
}

/// RFC 9110 `tchar`.
fn is_tchar(b: &u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b)
}

#[cfg(test)]
mod tests {
    use http::{HeaderMap, HeaderValue};

    use super::{Said, forwarded_https, forwarded_proto, x_forwarded_proto};

    fn headers(pairs: &[(&str, &[u8])]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_bytes(value).unwrap(),
            );
        }
        map
    }

    fn xfp(values: &[&str]) -> Said {
        let pairs: Vec<_> = values
            .iter()
            .map(|v| ("x-forwarded-proto", v.as_bytes()))
            .collect();
        x_forwarded_proto(&headers(&pairs))
    }

    fn fwd(values: &[&str]) -> Said {
        let pairs: Vec<_> = values.iter().map(|v| ("forwarded", v.as_bytes())).collect();
        forwarded_proto(&headers(&pairs))
    }

    #[test]
    fn x_forwarded_proto_rightmost_value_decides() {
        assert_eq!(xfp(&[]), Said::Absent);
        assert_eq!(xfp(&["https"]), Said::Https);
        assert_eq!(xfp(&["HTTPS"]), Said::Https);
        assert_eq!(xfp(&[" https\t"]), Said::Https);
        assert_eq!(xfp(&["http"]), Said::NotHttps);
        assert_eq!(xfp(&["http, https"]), Said::Https);
        assert_eq!(xfp(&["https, http"]), Said::NotHttps);
        assert_eq!(xfp(&["https", "http"]), Said::NotHttps);
        assert_eq!(xfp(&["http", "https"]), Said::Https);
        assert_eq!(xfp(&["https,"]), Said::NotHttps);
        assert_eq!(xfp(&[""]), Said::NotHttps);
        assert_eq!(xfp(&["https x"]), Said::NotHttps);
        assert_eq!(xfp(&["\"https\""]), Said::NotHttps);
        assert_eq!(xfp(&["httpss"]), Said::NotHttps);
        assert_eq!(xfp(&["wss"]), Said::NotHttps);
    }

    #[test]
    fn x_forwarded_proto_obs_text_is_not_https() {
        let map = headers(&[("x-forwarded-proto", b"https\xff")]);
        assert_eq!(x_forwarded_proto(&map), Said::NotHttps);
    }

    #[test]
    fn forwarded_proto_of_the_rightmost_element_decides() {
        assert_eq!(fwd(&[]), Said::Absent);
        assert_eq!(fwd(&["for=1.2.3.4;proto=https"]), Said::Https);
        assert_eq!(fwd(&["proto=HTTPS"]), Said::Https);
        assert_eq!(fwd(&["Proto=https"]), Said::Https);
        assert_eq!(fwd(&["proto=\"https\""]), Said::Https);
        // A quoted-pair stands for its character (RFC 9110 5.6.4).
        assert_eq!(fwd(&["proto=\"ht\\tps\""]), Said::Https);
        assert_eq!(fwd(&["proto=\"http\""]), Said::NotHttps);
        assert_eq!(fwd(&["for=1.2.3.4;proto=http"]), Said::NotHttps);
        assert_eq!(
            fwd(&["proto=https, for=5.6.7.8;proto=http"]),
            Said::NotHttps
        );
        assert_eq!(fwd(&["proto=http, for=5.6.7.8;proto=https"]), Said::Https);
        assert_eq!(fwd(&["proto=https", "proto=http"]), Said::NotHttps);
        assert_eq!(fwd(&["proto=http", "proto=https"]), Said::Https);
        assert_eq!(
            fwd(&["for=\"[2001:db8::1]:4711\";by=\"a,b\";proto=https"]),
            Said::Https
        );
        assert_eq!(fwd(&[" for=1.2.3.4 ; proto=https "]), Said::Https);
    }

    #[test]
    fn forwarded_malformed_or_without_proto_is_not_https() {
        // No proto in the nearest proxy's element.
        assert_eq!(fwd(&["proto=https, for=1.2.3.4"]), Said::NotHttps);
        assert_eq!(fwd(&["proto=https;proto=https"]), Said::NotHttps);
        assert_eq!(fwd(&["proto=https,"]), Said::NotHttps);
        assert_eq!(fwd(&["proto="]), Said::NotHttps);
        assert_eq!(fwd(&["proto"]), Said::NotHttps);
        assert_eq!(fwd(&["=https"]), Said::NotHttps);
        assert_eq!(fwd(&["proto=\"https"]), Said::NotHttps);
        assert_eq!(fwd(&["proto=\"https\"x"]), Said::NotHttps);
        assert_eq!(fwd(&["proto=https;for=\"a"]), Said::NotHttps);
        assert_eq!(fwd(&["proto=ht tps"]), Said::NotHttps);
        assert_eq!(fwd(&["for=a;;proto=https"]), Said::NotHttps);
        let map = headers(&[("forwarded", b"proto=\"https\xff\"")]);
        assert_eq!(forwarded_proto(&map), Said::NotHttps);
    }

    #[test]
    fn both_headers_must_agree() {
        let both = |x: &str, f: &str| {
            forwarded_https(&headers(&[
                ("x-forwarded-proto", x.as_bytes()),
                ("forwarded", f.as_bytes()),
            ]))
        };
        assert!(both("https", "proto=https"));
        assert!(!both("https", "proto=http"));
        assert!(!both("http", "proto=https"));
        assert!(!both("https", "for=1.2.3.4"));
        assert!(!forwarded_https(&HeaderMap::new()));
        assert!(forwarded_https(&headers(&[(
            "x-forwarded-proto",
            b"https"
        )])));
        assert!(forwarded_https(&headers(&[("forwarded", b"proto=https")])));
    }
}
