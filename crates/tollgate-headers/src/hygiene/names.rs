//! Header-name sets and the plain functions behind the hygiene layers (no tower in sight).

use http::header::{self, HeaderMap, HeaderName};

/// Browser-controlled and spoofable headers removed by
/// [`HeaderHygieneLayer::server_to_server`](crate::HeaderHygieneLayer::server_to_server).
/// The last three are backend-owned: a copy that came with the caller's request is removed,
/// the backend's own value (recorded in [`InjectedHeaders`](crate::InjectedHeaders)) never
/// is.
pub const SERVER_TO_SERVER: [&str; 24] = [
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
    "x-client-ip",
    "x-cluster-client-ip",
    "x-original-forwarded-for",
    "client-ip",
    "x-requested-with",
    "authorization",
    "proxy-authorization",
    "host",
    "x-api-key",
    "access-token",
    "x-user-ip",
];

/// Prefixes removed by
/// [`HeaderHygieneLayer::server_to_server`](crate::HeaderHygieneLayer::server_to_server).
pub const SERVER_TO_SERVER_PREFIXES: [&str; 4] =
    ["sec-fetch-", "sec-ch-", "sec-websocket-", "x-forwarded-"];

/// Credential headers whose every value outbound hygiene marks sensitive, in every mode.
pub(crate) const SENSITIVE: [&str; 5] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "x-api-key",
    "access-token",
];

/// Headers a backend derives itself; inbound hygiene always removes a client's copy.
pub(crate) const BACKEND_DERIVED: [&str; 3] = ["x-user-ip", "x-api-key", "access-token"];

/// Forwarding headers inbound hygiene removes unless the peer is trusted (and every header
/// starting with [`FORWARDING_PREFIX`]).
pub(crate) const FORWARDING: [&str; 2] = ["forwarded", "x-real-ip"];

/// The prefix of the forwarding headers inbound hygiene removes unless the peer is trusted.
pub(crate) const FORWARDING_PREFIX: &str = "x-forwarded-";

/// `names` as header names (all valid lowercase names, checked by the tests).
pub(crate) fn header_names(names: &[&'static str]) -> Vec<HeaderName> {
    names
        .iter()
        .map(|name| HeaderName::from_static(name))
        .collect()
}

/// The hop-by-hop headers (besides the ones `Connection` names): the ones RFC 9110 section
/// 7.6.1 lists (`Connection`, `Proxy-Connection`, `Keep-Alive`, `TE`, `Transfer-Encoding`,
/// `Upgrade`) and the ones RFC 7230 section 6.1 (with erratum 4522) and Go's
/// `httputil.ReverseProxy` also remove: `Trailer`, `Proxy-Authenticate`,
/// `Proxy-Authorization`.
pub const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "transfer-encoding",
    "upgrade",
    "trailer",
    "proxy-authenticate",
    "proxy-authorization",
];

/// Whether `name` is one of [`HOP_BY_HOP`].
pub(crate) fn is_hop_by_hop(name: &HeaderName) -> bool {
    HOP_BY_HOP.contains(&name.as_str())
}

/// Every header name listed in every `Connection` field, lowercased. The list is parsed as
/// bytes (RFC 9110 section 5.6.1: elements separated by commas, optional whitespace around
/// them, empty elements ignored), so a non-ASCII byte elsewhere in a field cannot hide the
/// other names. Tokens that are not valid header names are ignored (they cannot name a header
/// that is present).
pub(crate) fn connection_nominated(headers: &HeaderMap) -> Vec<HeaderName> {
    let mut names = Vec::new();
    for value in headers.get_all(header::CONNECTION) {
        for token in value.as_bytes().split(|byte| *byte == b',') {
            let token = token.trim_ascii();
            if token.is_empty() {
                continue;
            }
            // `from_bytes` lowercases, so `X-Foo` names `x-foo`.
            if let Ok(name) = HeaderName::from_bytes(token)
                && !names.contains(&name)
            {
                names.push(name);
            }
        }
    }
    names
}

/// Whether any `TE` field lists the `trailers` token (case-insensitive, parameters and
/// whitespace ignored), as Go's `httpguts.HeaderValuesContainsToken` reads it.
pub(crate) fn te_has_trailers(headers: &HeaderMap) -> bool {
    headers.get_all(header::TE).iter().any(|value| {
        value.as_bytes().split(|byte| *byte == b',').any(|element| {
            let coding = element.split(|byte| *byte == b';').next().unwrap_or(b"");
            coding.trim_ascii().eq_ignore_ascii_case(b"trailers")
        })
    })
}

/// Names joined by `, ` for a tracing field.
pub(crate) fn join(names: &[HeaderName]) -> String {
    let mut out = String::new();
    for (i, name) in names.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(name.as_str());
    }
    out
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    #[test]
    fn connection_tokens_are_parsed_from_every_field() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::CONNECTION,
            HeaderValue::from_static(" X-Api-Key ,x-foo,,close"),
        );
        headers.append(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, bad token, x-foo"),
        );
        let names: Vec<_> = connection_nominated(&headers)
            .iter()
            .map(|n| n.as_str().to_owned())
            .collect();
        assert_eq!(names, ["x-api-key", "x-foo", "close", "keep-alive"]);
    }

    /// A non-UTF-8 byte in one element must not hide the other elements of that field.
    #[test]
    fn obs_text_in_connection_does_not_hide_other_tokens() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::CONNECTION,
            HeaderValue::from_bytes(b"x-foo, caf\xe9,\tX-Bar\t").unwrap(),
        );
        let names: Vec<_> = connection_nominated(&headers)
            .iter()
            .map(|n| n.as_str().to_owned())
            .collect();
        assert_eq!(names, ["x-foo", "x-bar"]);
    }

    #[test]
    fn te_trailers_token() {
        for (values, expected) in [
            (&["trailers"][..], true),
            (&["Trailers"], true),
            (&["deflate;q=0.5, trailers"], true),
            (&["gzip", " TRAILERS ;q=1"], true),
            (&["trailersx"], false),
            (&["gzip, deflate"], false),
            (&[""], false),
            (&[], false),
        ] {
            let mut headers = HeaderMap::new();
            for value in values {
                headers.append(header::TE, HeaderValue::from_str(value).unwrap());
            }
            assert_eq!(te_has_trailers(&headers), expected, "{values:?}");
        }
    }

    #[test]
    fn hop_by_hop_set() {
        assert!(is_hop_by_hop(&header::TRANSFER_ENCODING));
        assert!(is_hop_by_hop(&HeaderName::from_static("proxy-connection")));
        assert!(is_hop_by_hop(&header::TRAILER));
        assert!(is_hop_by_hop(&header::PROXY_AUTHORIZATION));
        assert!(is_hop_by_hop(&header::PROXY_AUTHENTICATE));
        assert!(!is_hop_by_hop(&header::CONTENT_TYPE));
        assert_eq!(join(&[header::ORIGIN, header::REFERER]), "origin, referer");
    }

    /// Every listed name is a valid lowercase header name (`from_static` would panic).
    #[test]
    fn every_listed_name_is_a_header_name() {
        for list in [
            &HOP_BY_HOP[..],
            &SERVER_TO_SERVER,
            &SENSITIVE,
            &BACKEND_DERIVED,
            &FORWARDING,
        ] {
            assert_eq!(header_names(list).len(), list.len());
        }
        for prefix in SERVER_TO_SERVER_PREFIXES.iter().chain([&FORWARDING_PREFIX]) {
            assert_eq!(prefix.to_ascii_lowercase(), *prefix);
            assert!(HeaderName::from_bytes(prefix.trim_end_matches('-').as_bytes()).is_ok());
        }
    }
}
