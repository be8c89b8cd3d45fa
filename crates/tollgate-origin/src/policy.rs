//! The decision, as plain functions over a request's method, path and headers: no tower here.

use std::time::Duration;

use bytes::Bytes;
use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE,
    ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD, ORIGIN, REFERER, VARY,
};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Response, StatusCode};
use tollgate_core::Rejection;
use tollgate_core::header::single_value;
use tollgate_core::rejection::code;

use crate::handle::Origins;
use crate::origin::{AllowedOrigin, referer_origin};

pub(crate) const SEC_FETCH_SITE: HeaderName = HeaderName::from_static("sec-fetch-site");
pub(crate) const REQUEST_PRIVATE_NETWORK: HeaderName =
    HeaderName::from_static("access-control-request-private-network");
pub(crate) const ALLOW_PRIVATE_NETWORK: HeaderName =
    HeaderName::from_static("access-control-allow-private-network");
const TRUE: HeaderValue = HeaderValue::from_static("true");
const VARY_ORIGIN: HeaderValue = HeaderValue::from_static("Origin");
const VARY_PREFLIGHT: HeaderValue =
    HeaderValue::from_static("Access-Control-Request-Method, Access-Control-Request-Headers");

/// The validated decision rules: which origins, methods and headers pass, and the CORS
/// headers to write.
#[derive(Clone, Debug)]
pub(crate) struct Policy {
    pub(crate) origins: Origins,
    pub(crate) methods: Vec<Method>,
    pub(crate) headers: Vec<HeaderName>,
    pub(crate) allow_methods: HeaderValue,
    pub(crate) allow_headers: Option<HeaderValue>,
    pub(crate) expose_headers: Option<HeaderValue>,
    pub(crate) credentials: bool,
    pub(crate) max_age: Option<(Duration, HeaderValue)>,
    pub(crate) private_network: bool,
    pub(crate) same_site_without_origin: bool,
    pub(crate) server_to_server: bool,
    pub(crate) bypass_paths: Vec<String>,
}

/// What the layer does with one request.
#[derive(Debug)]
pub(crate) enum Decision {
    /// An explicitly bypassed path: the inner service runs, only `Vary: Origin` is added.
    Bypass,
    /// An allowed cross-origin request: the inner service runs, CORS headers are added with
    /// this `Access-Control-Allow-Origin`.
    Allowed(HeaderValue),
    /// No `Origin`, and the browser signals (if any) allow it: the inner service runs,
    /// without CORS headers.
    NoOrigin,
    /// A valid preflight: the layer answers 204.
    Preflight {
        origin: HeaderValue,
        private_network: bool,
    },
    /// Refused before the inner service.
    Reject(Rejection),
}

/// A refusal with the code's standard status and message.
fn reject(code: &'static str) -> Decision {
    Decision::Reject(Rejection::from_code(code))
}

/// A refusal with the code's standard message and what exactly was wrong (a header name or a
/// fixed reason, never a value the client sent).
fn reject_because(code: &'static str, detail: &'static str) -> Decision {
    Decision::Reject(Rejection::from_code(code).with_detail(detail))
}

impl Policy {
    /// What to do with the request, decided against one version of the allowed origins
    /// (a handle is loaded once, here).
    pub(crate) fn decide(&self, method: &Method, path: &str, headers: &HeaderMap) -> Decision {
        self.origins
            .with(|origins| self.decide_with(origins, method, path, headers))
    }

    fn decide_with(
        &self,
        origins: &[AllowedOrigin],
        method: &Method,
        path: &str,
        headers: &HeaderMap,
    ) -> Decision {
        if !self.bypass_paths.is_empty() && self.bypass_paths.iter().any(|p| p == path) {
            return Decision::Bypass;
        }
        let Ok(origin) = single_value(headers, ORIGIN) else {
            return reject_because(code::ORIGIN_NOT_ALLOWED, "several Origin headers");
        };
        let Some(origin) = origin else {
            return self.without_origin(origins, headers);
        };
        let allowed = match Self::match_origin(origins, origin) {
            Ok(allowed) => allowed,
            Err(Some(detail)) => return reject_because(code::ORIGIN_NOT_ALLOWED, detail),
            Err(None) => return reject(code::ORIGIN_NOT_ALLOWED),
        };
        if method == Method::OPTIONS && headers.contains_key(ACCESS_CONTROL_REQUEST_METHOD) {
            return self.preflight(allowed, headers);
        }
        Decision::Allowed(allowed)
    }

    /// The `Access-Control-Allow-Origin` value for an allowed `Origin`; else the detail of
    /// the refusal, `None` for an origin that is simply not on the list.
    fn match_origin(
        origins: &[AllowedOrigin],
        value: &HeaderValue,
    ) -> Result<HeaderValue, Option<&'static str>> {
        let bytes = value.as_bytes();
        if bytes.is_empty() {
            return Err(Some("the Origin header is empty"));
        }
        if bytes == b"null" {
            return Err(Some("the null origin is never allowed"));
        }
        if bytes.contains(&b',') {
            return Err(Some("the Origin header holds more than one origin"));
        }
        let allowed = origins.iter().find(|o| o.matches(bytes));
        match allowed {
            Some(allowed) => Ok(allowed
                .exact_value()
                .cloned()
                .unwrap_or_else(|| value.clone())),
            None => Err(None),
        }
    }

    fn preflight(&self, origin: HeaderValue, headers: &HeaderMap) -> Decision {
        let Ok(Some(method)) = single_value(headers, ACCESS_CONTROL_REQUEST_METHOD) else {
            return reject_because(
                code::METHOD_NOT_ALLOWED,
                "several Access-Control-Request-Method headers",
            );
        };
        // Case-sensitive: browsers upper-case only the standard methods themselves.
        if !self
            .methods
            .iter()
            .any(|m| m.as_str().as_bytes() == method.as_bytes())
        {
            return reject(code::METHOD_NOT_ALLOWED);
        }
        for value in headers.get_all(ACCESS_CONTROL_REQUEST_HEADERS) {
            for name in value.as_bytes().split(|b| *b == b',') {
                let name = name.trim_ascii();
                if name.is_empty() {
                    continue;
                }
                if !self
                    .headers
                    .iter()
                    .any(|h| h.as_str().as_bytes().eq_ignore_ascii_case(name))
                {
                    return reject(code::HEADER_NOT_ALLOWED);
                }
            }
        }
        let private_network = self.private_network
            && headers
                .get(REQUEST_PRIVATE_NETWORK)
                .is_some_and(|v| v.as_bytes() == b"true");
        Decision::Preflight {
            origin,
            private_network,
        }
    }

    fn without_origin(&self, origins: &[AllowedOrigin], headers: &HeaderMap) -> Decision {
        let Ok(site) = single_value(headers, SEC_FETCH_SITE) else {
            return reject_because(code::ORIGIN_NOT_ALLOWED, "several Sec-Fetch-Site headers");
        };
        let site = site.map(HeaderValue::as_bytes);
        match site {
            Some(b"cross-site") => {
                return reject_because(
                    code::ORIGIN_NOT_ALLOWED,
                    "cross-site request without an Origin header",
                );
            }
            Some(b"same-site") if !self.same_site_without_origin => {
                return reject_because(
                    code::ORIGIN_NOT_ALLOWED,
                    "same-site request without an Origin header",
                );
            }
            Some(b"same-site" | b"same-origin" | b"none") | None => {}
            Some(_) => {
                return reject_because(
                    code::ORIGIN_NOT_ALLOWED,
                    "unrecognised Sec-Fetch-Site value",
                );
            }
        }
        match single_value(headers, REFERER) {
            Err(_) => reject_because(code::ORIGIN_NOT_ALLOWED, "several Referer headers"),
            Ok(Some(referer)) => match referer_origin(referer.as_bytes()) {
                Some(origin) if origins.iter().any(|o| o.matches(origin)) => Decision::NoOrigin,
                _ => reject_because(code::ORIGIN_NOT_ALLOWED, "the Referer header's origin"),
            },
            Ok(None) if site.is_some() || self.server_to_server => Decision::NoOrigin,
            Ok(None) => reject_because(
                code::ORIGIN_NOT_ALLOWED,
                "request without Origin, Referer or Sec-Fetch-Site",
            ),
        }
    }

    /// Writes the CORS headers of an allowed actual request. The layer is the only writer of
    /// `Access-Control-Allow-Origin` and `-Credentials`: the inner service's are replaced or
    /// removed.
    pub(crate) fn apply_cors(&self, headers: &mut HeaderMap, origin: Option<HeaderValue>) {
        match origin {
            Some(origin) => {
                headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
                if self.credentials {
                    headers.insert(ACCESS_CONTROL_ALLOW_CREDENTIALS, TRUE);
                } else {
                    headers.remove(ACCESS_CONTROL_ALLOW_CREDENTIALS);
                }
                if let Some(expose) = &self.expose_headers {
                    headers.insert(ACCESS_CONTROL_EXPOSE_HEADERS, expose.clone());
                }
            }
            None => {
                headers.remove(ACCESS_CONTROL_ALLOW_ORIGIN);
                headers.remove(ACCESS_CONTROL_ALLOW_CREDENTIALS);
            }
        }
        append_vary_origin(headers);
    }

    /// The layer's own 204 answer to an allowed preflight.
    pub(crate) fn preflight_response(
        &self,
        origin: HeaderValue,
        private_network: bool,
    ) -> Response<Bytes> {
        let mut response = Response::new(Bytes::new());
        *response.status_mut() = StatusCode::NO_CONTENT;
        let headers = response.headers_mut();
        headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        if self.credentials {
            headers.insert(ACCESS_CONTROL_ALLOW_CREDENTIALS, TRUE);
        }
        headers.insert(ACCESS_CONTROL_ALLOW_METHODS, self.allow_methods.clone());
        if let Some(allow_headers) = &self.allow_headers {
            headers.insert(ACCESS_CONTROL_ALLOW_HEADERS, allow_headers.clone());
        }
        if let Some((_, max_age)) = &self.max_age {
            headers.insert(ACCESS_CONTROL_MAX_AGE, max_age.clone());
        }
        if private_network {
            headers.insert(ALLOW_PRIVATE_NETWORK, TRUE);
        }
        headers.append(VARY, VARY_ORIGIN);
        headers.append(VARY, VARY_PREFLIGHT);
        response
    }
}

/// Appends `Vary: Origin` unless a `Vary` value already names `Origin` (any case) or is `*`:
/// never a duplicate, never a replaced value.
pub(crate) fn append_vary_origin(headers: &mut HeaderMap) {
    let present = headers.get_all(VARY).iter().any(|value| {
        value.as_bytes().split(|b| *b == b',').any(|token| {
            let token = token.trim_ascii();
            token == b"*" || token.eq_ignore_ascii_case(b"origin")
        })
    });
    if !present {
        headers.append(VARY, VARY_ORIGIN);
    }
}
