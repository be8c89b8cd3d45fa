//! What the stack tests share: a counting inner service behind the layer, and what came back.
#![allow(dead_code, reason = "each test file uses a part")]

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use tollgate_core::Rejection;
use tollgate_origin::OriginAllowlistLayer;
use tower::{ServiceBuilder, ServiceExt, service_fn};

/// The origin most tests allow.
pub(crate) const APP: &str = "https://app.example.com";

/// The body of the inner service's answer.
pub(crate) const INNER_BODY: &str = r#"{"ok":true}"#;

/// A response as the client saw it, and how often the inner service ran.
pub(crate) struct Sent {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: String,
    pub(crate) rejection: Option<Rejection>,
    pub(crate) calls: usize,
}

impl Sent {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    pub(crate) fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect()
    }

    pub(crate) fn vary(&self) -> Vec<&str> {
        self.all("vary")
    }

    pub(crate) fn cors_headers(&self) -> Vec<&str> {
        self.headers
            .keys()
            .map(|name| name.as_str())
            .filter(|name| name.starts_with("access-control-"))
            .collect()
    }

    pub(crate) fn has_no_cors_headers(&self) -> bool {
        self.cors_headers().is_empty()
    }

    #[track_caller]
    pub(crate) fn assert_passed(&self) {
        assert_eq!(self.status, StatusCode::OK, "{}", self.body);
        assert_eq!(self.body, INNER_BODY);
        assert_eq!(self.calls, 1);
    }

    /// Refused with `code`: 403 with the code in a JSON body, no CORS header,
    /// `Vary: Origin`, the inner service not called.
    #[track_caller]
    pub(crate) fn assert_refused(&self, code: &str) {
        assert_eq!(self.status, StatusCode::FORBIDDEN, "{}", self.body);
        let json: serde_json::Value = serde_json::from_str(&self.body).unwrap();
        assert_eq!(json["error"]["code"], code, "{}", self.body);
        assert_eq!(self.calls, 0, "the inner service must not run");
        assert!(self.cors_headers().is_empty(), "{:?}", self.headers);
        assert_eq!(self.vary(), ["Origin"]);
        assert_eq!(self.rejection.as_ref().map(Rejection::code), Some(code));
    }

    /// [`assert_refused`](Self::assert_refused) by the default JSON responder, with the
    /// exact body and `message`.
    #[track_caller]
    pub(crate) fn assert_refused_with(&self, code: &str, message: &str) {
        self.assert_refused(code);
        assert_eq!(self.header("content-type"), Some("application/json"));
        assert_eq!(
            self.body,
            format!(r#"{{"error":{{"code":"{code}","message":"{message}"}}}}"#)
        );
        assert_eq!(
            self.rejection.as_ref().map(Rejection::message),
            Some(message)
        );
    }
}

/// Sends `request` through `layer` to an inner service that answers 200 [`INNER_BODY`] with
/// `inner_headers`, counting its calls.
pub(crate) async fn send_with(
    layer: &OriginAllowlistLayer,
    request: Request<Full<Bytes>>,
    inner_headers: &[(&'static str, &'static str)],
) -> Sent {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let inner_headers = inner_headers.to_vec();
    let inner = service_fn(move |_request: Request<Full<Bytes>>| {
        counter.fetch_add(1, Ordering::SeqCst);
        let mut response = Response::new(Full::new(Bytes::from_static(INNER_BODY.as_bytes())));
        for (name, value) in &inner_headers {
            response
                .headers_mut()
                .append(*name, HeaderValue::from_static(value));
        }
        async move { Ok::<_, Infallible>(response) }
    });
    let response = ServiceBuilder::new()
        .layer(layer.clone())
        .service(inner)
        .oneshot(request)
        .await
        .unwrap();
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Sent {
        status: parts.status,
        rejection: parts.extensions.get::<Rejection>().cloned(),
        headers: parts.headers,
        body: String::from_utf8(body.to_vec()).unwrap(),
        calls: calls.load(Ordering::SeqCst),
    }
}

pub(crate) async fn send(layer: &OriginAllowlistLayer, request: Request<Full<Bytes>>) -> Sent {
    send_with(layer, request, &[]).await
}

pub(crate) fn request(method: &str, path: &str, headers: &[(&str, &str)]) -> Request<Full<Bytes>> {
    let mut builder = Request::builder().method(method).uri(path);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(Full::default()).unwrap()
}

/// A CORS preflight: `OPTIONS` with `Origin`, `Access-Control-Request-Method` and one
/// `Access-Control-Request-Headers` line per entry of `headers`.
pub(crate) fn preflight(origin: &str, method: &str, headers: &[&str]) -> Request<Full<Bytes>> {
    let mut all = vec![
        ("origin", origin),
        ("access-control-request-method", method),
    ];
    for value in headers {
        all.push(("access-control-request-headers", value));
    }
    request("OPTIONS", "/api", &all)
}
