//! Header-name sets and the plain functions behind the layers (no tower in sight).

use http::header::{self, HeaderMap, HeaderName};

/// The hop-by-hop headers of RFC 9110 section 7.6.1 (besides the ones `Connection` names).
pub(crate) const HOP_BY_HOP: [&str; 6] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "transfer-encoding",
    "upgrade",
];

/// Whether `name` is one of [`HOP_BY_HOP`].
pub(crate) fn is_hop_by_hop(name: &HeaderName) -> bool {
    HOP_BY_HOP.contains(&name.as_str())
}

/// Every header name listed in every `Connection` field, lowercased. Tokens that are not
/// valid header names are ignored (they cannot name a header that is present).
pub(crate) fn connection_nominated(headers: &HeaderMap) -> Vec<HeaderName> {
    let mut names = Vec::new();
    for value in headers.get_all(header::CONNECTION) {
        let Ok(text) = value.to_str() else { continue };
        for token in text.split(',') {
            let token = token.trim();
            if token.is_empty() {
                continue;
            }
            if let Ok(name) = HeaderName::from_bytes(token.to_ascii_lowercase().as_bytes())
                && !names.contains(&name)
            {
                names.push(name);
            }
        }
    }
    names
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

    #[test]
    fn hop_by_hop_set() {
        assert!(is_hop_by_hop(&header::TRANSFER_ENCODING));
        assert!(is_hop_by_hop(&HeaderName::from_static("proxy-connection")));
        assert!(!is_hop_by_hop(&header::CONTENT_TYPE));
        assert_eq!(join(&[header::ORIGIN, header::REFERER]), "origin, referer");
    }
}
