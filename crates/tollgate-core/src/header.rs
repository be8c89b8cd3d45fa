//! Reading headers: one that must be sent once, and the whitespace around list elements.

use std::fmt;

use http::header::AsHeaderName;
use http::{HeaderMap, HeaderValue};

/// A header that must be sent once came more than once (in any case: `HeaderMap` folds the
/// name, so `X-Nonce` and `x-nonce` are the same header).
///
/// Two values leave it ambiguous which one was signed, checked or meant, and two layers that
/// each read a different one disagree; every tollgate layer refuses the request instead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RepeatedHeader;

impl fmt::Display for RepeatedHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a header that must be sent once was sent more than once")
    }
}

impl std::error::Error for RepeatedHeader {}

/// The one value of header `name`: `Ok(None)` when absent, `Err(RepeatedHeader)` when it is
/// sent more than once.
///
/// ```
/// use http::HeaderMap;
/// use tollgate_core::header::{RepeatedHeader, single_value};
///
/// let mut headers = HeaderMap::new();
/// assert_eq!(single_value(&headers, "x-nonce"), Ok(None));
/// headers.append("x-nonce", "a".parse().unwrap());
/// assert_eq!(single_value(&headers, "x-nonce").unwrap().unwrap(), "a");
/// headers.append("X-Nonce", "b".parse().unwrap());
/// assert_eq!(single_value(&headers, "x-nonce"), Err(RepeatedHeader));
/// ```
pub fn single_value<K: AsHeaderName>(
    headers: &HeaderMap,
    name: K,
) -> Result<Option<&HeaderValue>, RepeatedHeader> {
    let mut values = headers.get_all(name).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(RepeatedHeader);
    }
    Ok(first)
}

/// `bytes` without the optional whitespace (spaces and tabs, RFC 9110 `OWS`) around a list
/// element or parameter.
///
/// ```
/// use tollgate_core::header::trim_ows;
///
/// assert_eq!(trim_ows(b" \tproto=https "), b"proto=https");
/// assert_eq!(trim_ows(b" \t "), b"");
/// ```
pub fn trim_ows(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(start, |last| last + 1);
    &bytes[start..end]
}
