//! The secret layers' side of upstream pinning: [`check`] runs
//! [`tollgate_core::upstream::check`] (the one implementation of the rules, documented there)
//! and turns its refusal into a [`HeaderError`] naming the secret header, logged.

use http::header::HeaderMap;
use http::{HeaderName, Uri};
use tollgate_core::upstream::{self as pin, TargetError};

pub(crate) use tollgate_core::upstream::Upstream;

use crate::HeaderError;

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
    match pin::check(upstreams, uri, headers) {
        Ok(()) => Ok(()),
        Err(TargetError::NotConfigured) => Err(HeaderError::UpstreamNotConfigured {
            header: header.clone(),
        }),
        Err(TargetError::Ambiguous { reason }) => {
            tracing::warn!(
                target: "tollgate",
                header = %header,
                reason,
                "refused to send a secret header to an ambiguous target"
            );
            Err(HeaderError::AmbiguousTarget {
                header: header.clone(),
                reason,
            })
        }
        // Not allowed; `TargetError` may grow, and anything new is a refusal too.
        Err(error) => {
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
            Err(HeaderError::UpstreamNotAllowed {
                header: header.clone(),
                target,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use http::{HeaderValue, header};

    use super::*;
    use crate::ConfigError;

    fn checked(uri_text: &str, hosts: &[&str]) -> Result<(), HeaderError> {
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
            &HeaderName::from_static("x-api-key"),
            &uri_text.parse().unwrap(),
            &headers,
        )
    }

    /// Each refusal of the shared check becomes the `HeaderError` naming the header (the
    /// rules themselves are tested in `tollgate_core::upstream`).
    #[test]
    fn refusals_name_the_header() {
        assert!(
            checked(
                "https://api-gateway.transak.com/v2",
                &["api-gateway.transak.com"]
            )
            .is_ok()
        );
        assert!(checked("http://[::1]:8080/", &["[0:0::1]:8080"]).is_ok());
        match checked(
            "https://api-gateway.transak.com/v2",
            &["a.example", "b.example"],
        ) {
            Err(HeaderError::AmbiguousTarget { header, reason }) => {
                assert_eq!(header, "x-api-key");
                assert_eq!(reason, "the request has several Host headers");
            }
            other => panic!("{other:?}"),
        }
        match checked("https://user:hunter2@evil.example:444/x?key=hunter2", &[]) {
            Err(HeaderError::UpstreamNotAllowed { header, target }) => {
                assert_eq!(header, "x-api-key");
                assert_eq!(target, "https://evil.example:444");
            }
            other => panic!("{other:?}"),
        }
        match checked("/v2/orders", &["api-gateway.transak.com"]) {
            Err(HeaderError::UpstreamNotAllowed { target, .. }) => {
                assert_eq!(target, "a relative URI");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            check(
                &[],
                &HeaderName::from_static("x-api-key"),
                &"https://api-gateway.transak.com/".parse().unwrap(),
                &HeaderMap::new()
            ),
            Err(HeaderError::UpstreamNotConfigured { .. })
        ));
    }

    /// `Upstream::parse` through this crate's names: a password in the URL is in neither the
    /// error's `Display` nor its `Debug`.
    #[test]
    fn config_error_never_echoes_user_info() {
        let error: ConfigError =
            Upstream::parse("https://partner:hunter2@api.example").unwrap_err();
        let display = error.to_string();
        let debug = format!("{error:?}");
        assert_eq!(
            display,
            "invalid upstream `https://api.example`: user info is not allowed"
        );
        assert_eq!(
            debug,
            "InvalidUpstream { upstream: \"https://api.example\", reason: \"user info is not allowed\" }"
        );
        for text in [display, debug] {
            assert!(
                !text.contains("hunter2") && !text.contains("partner:"),
                "{text}"
            );
        }
    }
}
