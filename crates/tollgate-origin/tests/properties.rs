//! Property tests over the whole service: any request line and any bytes in the headers the
//! layer reads give an answer (never a panic), and the answer keeps the layer's promises.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::convert::Infallible;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};

use http::{HeaderValue, Method, Request, Response, StatusCode};
use proptest::prelude::*;
use tollgate_core::ResponseBody;
use tollgate_origin::{OriginAllowlist, OriginAllowlistLayer};
use tower::{Service, service_fn};

fn layer() -> OriginAllowlistLayer {
    OriginAllowlistLayer::builder()
        .allow_origins([
            "https://app.example.com",
            "https://*.shop.example.com",
            "http://127.0.0.1:3000",
        ])
        .allow_http_origins(true)
        .allow_methods(["GET", "POST", "patch"])
        .allow_headers(["content-type"])
        .allow_credentials(true)
        .allow_private_network(true)
        .bypass_path("/healthz")
        .build()
        .unwrap()
}

/// Header values: near misses of the allowlist, browser tokens, and arbitrary bytes.
fn value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::sample::select(vec![
            "https://app.example.com",
            "https://a.shop.example.com",
            "https://A.shop.example.com",
            "HTTPS://APP.EXAMPLE.COM",
            "https://app.example.com:443",
            "http://127.0.0.1:3000/",
            "https://a-1.shop.example.com",
            "https://.shop.example.com",
            "https://a.shop.example.com:443",
            "https://app.example.com.",
            "https://a.b.shop.example.com",
            "https://shop.example.com",
            "http://127.0.0.1:3000",
            "http://127.0.0.1:3000/page",
            "https://app.example.com/checkout",
            "null",
            "",
            ",",
            "same-origin",
            "same-site",
            "cross-site",
            "none",
            "GET",
            "patch",
            "PATCH",
            "content-type",
            "Content-Type, x-evil",
            "true",
        ])
        .prop_map(|s| s.as_bytes().to_vec()),
        "[ -~]{0,48}".prop_map(String::into_bytes),
        prop::collection::vec(any::<u8>(), 0..48),
    ]
}

fn header_lines() -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop::collection::vec(value(), 0..3)
}

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        prop::sample::select(vec![
            Method::GET,
            Method::HEAD,
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::OPTIONS,
            Method::PATCH,
        ]),
        "[A-Za-z]{1,8}".prop_map(|m| Method::from_bytes(m.as_bytes()).unwrap()),
    ]
}

fn path() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "/",
            "/api",
            "/healthz",
            "/healthz/",
            "/healthz/../api"
        ])
        .prop_map(str::to_owned),
        "/[a-z0-9%./-]{0,20}",
    ]
}

/// Polls a future that never waits (the inner service is ready at once).
fn now<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the layer made a ready future wait"),
    }
}

type Answer = (Response<ResponseBody<String>>, usize);

fn call(layer: &OriginAllowlistLayer, request: Request<()>) -> Answer {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let inner = service_fn(move |_request: Request<()>| {
        counter.fetch_add(1, Ordering::SeqCst);
        std::future::ready(Ok::<_, Infallible>(Response::new(String::from("inner"))))
    });
    let mut service = OriginAllowlist::new(inner, layer);
    let response = now(service.call(request)).unwrap();
    (response, calls.load(Ordering::SeqCst))
}

/// The allowlist of [`layer`], written out independently of the crate's matcher.
fn model_allows(origin: &[u8]) -> bool {
    if origin == b"https://app.example.com" || origin == b"http://127.0.0.1:3000" {
        return true;
    }
    let Some(label) = origin
        .strip_prefix(b"https://")
        .and_then(|rest| rest.strip_suffix(b".shop.example.com"))
    else {
        return false;
    };
    (1..=63).contains(&label.len())
        && label
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn any_header_bytes_get_an_answer_that_keeps_the_promises(
        method in method(),
        path in path(),
        origins in header_lines(),
        referers in header_lines(),
        sites in header_lines(),
        request_methods in header_lines(),
        request_headers in header_lines(),
        private_network in header_lines(),
    ) {
        let layer = layer();
        let mut request = Request::builder().method(method.clone()).uri(path.as_str());
        let mut origin_values = Vec::new();
        for (name, lines) in [
            ("origin", &origins),
            ("referer", &referers),
            ("sec-fetch-site", &sites),
            ("access-control-request-method", &request_methods),
            ("access-control-request-headers", &request_headers),
            ("access-control-request-private-network", &private_network),
        ] {
            for bytes in lines {
                // Only what a server could receive: `HeaderValue` refuses control bytes.
                if let Ok(value) = HeaderValue::from_bytes(bytes) {
                    if name == "origin" {
                        origin_values.push(value.clone());
                    }
                    request = request.header(name, value);
                }
            }
        }
        let request = request.body(()).unwrap();
        let (response, calls) = call(&layer, request);
        let status = response.status();
        let headers = response.headers();

        // `Vary` always names Origin, once.
        let vary: Vec<_> = headers.get_all("vary").iter().collect();
        prop_assert_eq!(vary.first().copied(), Some(&HeaderValue::from_static("Origin")));

        let bypassed = path == "/healthz";
        let acao = headers.get("access-control-allow-origin");
        match status {
            StatusCode::FORBIDDEN => {
                prop_assert!(!bypassed);
                prop_assert_eq!(calls, 0);
                prop_assert!(acao.is_none());
                prop_assert!(headers.get("access-control-allow-credentials").is_none());
            }
            StatusCode::NO_CONTENT => {
                prop_assert!(!bypassed);
                prop_assert_eq!(calls, 0);
                prop_assert_eq!(&method, Method::OPTIONS);
                prop_assert_eq!(origin_values.len(), 1);
            }
            StatusCode::OK => prop_assert_eq!(calls, 1),
            other => prop_assert!(false, "unexpected status {}", other),
        }
        // Access is only ever granted to the single `Origin` sent, and only when the
        // allowlist matches it byte for byte.
        if let Some(acao) = acao {
            prop_assert!(!bypassed);
            prop_assert_eq!(origin_values.len(), 1);
            prop_assert_eq!(acao, &origin_values[0]);
            prop_assert!(layer.allowed_origins().iter().any(|o| o.matches(acao.as_bytes())));
            prop_assert_eq!(headers.get_all("access-control-allow-origin").iter().count(), 1);
        }
        if headers.contains_key("access-control-allow-private-network") {
            prop_assert_eq!(status, StatusCode::NO_CONTENT);
        }
    }

    /// A single `Origin` on an actual request: the inner service runs exactly when an entry
    /// of the allowlist matches it.
    #[test]
    fn actual_request_runs_exactly_for_listed_origins(origin in value(), method in method()) {
        prop_assume!(method != Method::OPTIONS);
        let Ok(value) = HeaderValue::from_bytes(&origin) else {
            return Ok(());
        };
        let layer = layer();
        let listed = model_allows(&origin);
        prop_assert_eq!(layer.allowed_origins().iter().any(|o| o.matches(&origin)), listed);
        let request = Request::builder()
            .method(method)
            .uri("/api")
            .header("origin", value.clone())
            .body(())
            .unwrap();
        let (response, calls) = call(&layer, request);
        prop_assert_eq!(calls == 1, listed);
        if listed {
            prop_assert_eq!(response.headers().get("access-control-allow-origin"), Some(&value));
        } else {
            prop_assert_eq!(response.status(), StatusCode::FORBIDDEN);
        }
    }
}
