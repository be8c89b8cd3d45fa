//! The secret layers' side of upstream pinning: [`check`] runs
//! [`tollgate_core::upstream::check`] (the one implementation of the rules, documented there)
//! and turns its refusal into a [`HeaderError`] naming the secret header, logged.

use http::header::HeaderMap;
use http::{HeaderName, Uri};
use tollgate_core::upstream::{self as pin, TargetError, Upstream};

use crate::HeaderError;

/// Checks a request's URI and `Host` header against the configured upstreams (never empty:
/// every secret layer is built with one); the error names `header`.
///
/// The URI decides: it must match an upstream. A `Host` header may be absent (the client
/// derives it from the URI) or name the same host and effective port; anything else (another
/// host, several `Host` headers, one that does not parse) is refused as ambiguous.
pub(super) fn check(
    upstreams: &[Upstream],
    header: &HeaderName,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<(), HeaderError> {
    pin::check(upstreams, uri, headers).map_err(|error| refusal(header, uri, error))
}

/// The [`HeaderError`] for a refusal of the shared check, logged (names, never values).
fn refusal(header: &HeaderName, uri: &Uri, error: TargetError) -> HeaderError {
    if let TargetError::Ambiguous { reason } = error {
        tracing::warn!(
            target: "tollgate",
            header = %header,
            reason,
            "refused to send a secret header to an ambiguous target"
        );
        return HeaderError::AmbiguousTarget {
            header: header.clone(),
            reason,
        };
    }
    // Not allowed. `NotConfigured` cannot happen (a layer always has an upstream), and
    // `TargetError` may grow: anything else is a refusal too.
    let target = match error {
        TargetError::NotAllowed { target } => target,
        TargetError::OutsideBasePath { target } => {
            format!("{target} (outside the configured base path)")
        }
        _ => pin::describe_target(uri),
    };
    tracing::warn!(
        target: "tollgate",
        header = %header,
        %target,
        "refused to send a secret header to an unconfigured upstream"
    );
    HeaderError::UpstreamNotAllowed {
        header: header.clone(),
        target,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> HeaderName {
        HeaderName::from_static("x-api-key")
    }

    /// Each refusal of the shared check becomes the `HeaderError` naming the header (the
    /// rules themselves are tested in `tollgate_core::upstream`; the check through a layer
    /// in `tests/outbound.rs` and `tests/base_path.rs`).
    #[test]
    fn refusals_name_the_header() {
        let uri: Uri = "https://user:hunter2@evil.example:444/x?key=hunter2"
            .parse()
            .unwrap();
        match refusal(
            &key(),
            &uri,
            TargetError::Ambiguous {
                reason: "the request has several Host headers",
            },
        ) {
            HeaderError::AmbiguousTarget { header, reason } => {
                assert_eq!(header, "x-api-key");
                assert_eq!(reason, "the request has several Host headers");
            }
            other => panic!("{other:?}"),
        }
        for (error, expected) in [
            (
                TargetError::NotAllowed {
                    target: pin::describe_target(&uri),
                },
                "https://evil.example:444",
            ),
            (
                TargetError::OutsideBasePath {
                    target: "https://evil.example:444".to_owned(),
                },
                "https://evil.example:444 (outside the configured base path)",
            ),
            // Cannot happen through a layer; still a refusal naming only the target.
            (TargetError::NotConfigured, "https://evil.example:444"),
        ] {
            match refusal(&key(), &uri, error) {
                HeaderError::UpstreamNotAllowed { header, target } => {
                    assert_eq!(header, "x-api-key");
                    assert_eq!(target, expected);
                    assert!(!target.contains("hunter2"));
                }
                other => panic!("{other:?}"),
            }
        }
    }

    /// Through the shared check (the cases of the rules that reach each `HeaderError`): a
    /// match passes, with or without an agreeing `Host` (IPv6 compared as addresses); several
    /// `Host` headers are ambiguous; user info and a relative URI are not allowed, and the
    /// target names neither a password nor a path.
    #[test]
    fn check_through_the_shared_rules() {
        let upstreams = [
            Upstream::transak(),
            Upstream::parse("http://[::1]:8080").unwrap(),
        ];
        let run = |uri: &str, hosts: &[&'static str]| {
            let headers: HeaderMap = hosts
                .iter()
                .map(|host| (http::header::HOST, http::HeaderValue::from_static(host)))
                .collect();
            check(&upstreams, &key(), &uri.parse().unwrap(), &headers)
        };
        assert!(run("https://api-gateway.transak.com/v2", &[]).is_ok());
        assert!(
            run(
                "https://api-gateway.transak.com/v2",
                &["api-gateway.transak.com"]
            )
            .is_ok()
        );
        assert!(run("http://[::1]:8080/", &["[0:0::1]:8080"]).is_ok());
        match run(
            "https://api-gateway.transak.com/v2",
            &["a.example", "b.example"],
        ) {
            Err(HeaderError::AmbiguousTarget { header, reason }) => {
                assert_eq!(header, "x-api-key");
                assert_eq!(reason, "the request has several Host headers");
            }
            other => panic!("{other:?}"),
        }
        for (uri, expected) in [
            (
                "https://user:hunter2@evil.example:444/x?key=hunter2",
                "https://evil.example:444",
            ),
            ("/v2/orders", "a relative URI"),
        ] {
            match run(uri, &["api-gateway.transak.com"]) {
                Err(HeaderError::UpstreamNotAllowed { header, target }) => {
                    assert_eq!(header, "x-api-key");
                    assert_eq!(target, expected);
                }
                other => panic!("{uri}: {other:?}"),
            }
        }
    }
}
