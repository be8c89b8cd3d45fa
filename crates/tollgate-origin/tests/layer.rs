//! The layer's decisions, driven through a `ServiceBuilder` stack with `oneshot` over a
//! `service_fn` handler that counts its calls.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use tollgate_core::{Rejection, RejectionResponder, ResponseBody};
use tollgate_origin::future::OriginAllowlistFuture;
use tollgate_origin::{ConfigError, OriginAllowlist, OriginAllowlistLayer};
use tower::ServiceExt;

use common::{APP, INNER_BODY, preflight, send, send_with};

/// The standard message of `origin_not_allowed`, alone or with a detail.
const ORIGIN_NOT_ALLOWED: &str = "origin is not allowed";

fn layer() -> OriginAllowlistLayer {
    OriginAllowlistLayer::builder()
        .allow_origins([APP, "https://*.example.com", "https://pay.example.net:8443"])
        .allow_methods([Method::GET, Method::POST])
        .allow_headers(["content-type", "Idempotency-Key"])
        .max_age(Duration::from_secs(600))
        .build()
        .unwrap()
}

fn request(method: Method, headers: &[(&str, &str)]) -> Request<Full<Bytes>> {
    common::request(method.as_str(), "/api/session", headers)
}

fn post_from(origin: &str) -> Request<Full<Bytes>> {
    request(Method::POST, &[("origin", origin)])
}

#[tokio::test]
async fn allowed_origin_runs_handler_and_gets_exact_headers() {
    let sent = send(&layer(), post_from(APP)).await;
    assert_eq!(sent.status, StatusCode::OK);
    assert_eq!(sent.body, INNER_BODY);
    assert_eq!(sent.calls, 1);
    assert_eq!(sent.header("access-control-allow-origin"), Some(APP));
    assert_eq!(sent.header("access-control-allow-credentials"), None);
    assert_eq!(sent.header("access-control-expose-headers"), None);
    assert_eq!(sent.vary(), ["Origin"]);

    // A wildcard match echoes the request's own origin.
    let sent = send(&layer(), post_from("https://shop.example.com")).await;
    assert_eq!(sent.calls, 1);
    assert_eq!(
        sent.header("access-control-allow-origin"),
        Some("https://shop.example.com")
    );
    let sent = send(&layer(), post_from("https://pay.example.net:8443")).await;
    assert_eq!(sent.calls, 1);
    assert_eq!(
        sent.header("access-control-allow-origin"),
        Some("https://pay.example.net:8443")
    );
}

#[tokio::test]
async fn credentials_and_exposed_headers_only_when_configured_and_allowed() {
    let layer = OriginAllowlistLayer::builder()
        .allow_origin(APP)
        .allow_credentials(true)
        .expose_headers(["X-Request-Id", "x-widget-url"])
        .build()
        .unwrap();
    let sent = send(&layer, post_from(APP)).await;
    assert_eq!(
        sent.header("access-control-allow-credentials"),
        Some("true")
    );
    assert_eq!(
        sent.header("access-control-expose-headers"),
        Some("x-request-id, x-widget-url")
    );
    let refused = send(&layer, post_from("https://evil.example")).await;
    refused.assert_refused_with("origin_not_allowed", ORIGIN_NOT_ALLOWED);

    // The inner service cannot grant credentials the layer was not configured for.
    let sent = send_with(
        &self::layer(),
        post_from(APP),
        &[
            ("access-control-allow-credentials", "true"),
            ("access-control-allow-origin", "*"),
        ],
    )
    .await;
    assert_eq!(sent.header("access-control-allow-credentials"), None);
    assert_eq!(sent.header("access-control-allow-origin"), Some(APP));
    assert_eq!(
        sent.headers
            .get_all("access-control-allow-origin")
            .iter()
            .count(),
        1
    );
}

#[tokio::test]
async fn foreign_origin_is_refused_before_the_handler() {
    let sent = send(&layer(), post_from("https://evil.example")).await;
    sent.assert_refused_with("origin_not_allowed", ORIGIN_NOT_ALLOWED);
    // Also for a simple GET, which a browser would send without a preflight.
    let sent = send(
        &layer(),
        request(Method::GET, &[("origin", "https://evil.example")]),
    )
    .await;
    sent.assert_refused_with("origin_not_allowed", ORIGIN_NOT_ALLOWED);
}

#[tokio::test]
async fn classic_bypasses_are_refused() {
    let layer = layer();
    for origin in [
        "https://example.com.evil.com",
        "https://app.example.com.evil.com",
        "https://evilexample.com",
        "https://a.b.example.com",
        "https://example.com",
        "http://app.example.com",
        "http://shop.example.com",
        "https://app.example.com:8443",
        "https://pay.example.net",
        "https://pay.example.net:443",
        "https://APP.example.com",
        "HTTPS://app.example.com",
        "https://app.example.com:443",
        "https://app.example.com.",
        "https://shop.example.com.",
        "https://user@app.example.com",
        "https://app.example.com/",
        "https://%61pp.example.com",
        " https://app.example.com",
        "https://app.example.com\t",
    ] {
        let sent = send(&layer, post_from(origin)).await;
        assert_eq!(sent.status, StatusCode::FORBIDDEN, "{origin}");
        sent.assert_refused_with("origin_not_allowed", ORIGIN_NOT_ALLOWED);
    }
}

#[tokio::test]
async fn ambiguous_origin_values_are_refused() {
    let layer = layer();
    let sent = send(&layer, post_from("null")).await;
    sent.assert_refused_with(
        "origin_not_allowed",
        "origin is not allowed: the null origin is never allowed",
    );
    let sent = send(&layer, post_from("")).await;
    sent.assert_refused_with(
        "origin_not_allowed",
        "origin is not allowed: the Origin header is empty",
    );
    let sent = send(
        &layer,
        post_from("https://app.example.com, https://evil.example"),
    )
    .await;
    sent.assert_refused_with(
        "origin_not_allowed",
        "origin is not allowed: the Origin header holds more than one origin",
    );
    let sent = send(
        &layer,
        post_from("https://app.example.com,https://app.example.com"),
    )
    .await;
    sent.assert_refused_with(
        "origin_not_allowed",
        "origin is not allowed: the Origin header holds more than one origin",
    );
    // Two Origin headers, even both allowed.
    let sent = send(
        &layer,
        request(Method::POST, &[("origin", APP), ("origin", APP)]),
    )
    .await;
    sent.assert_refused_with(
        "origin_not_allowed",
        "origin is not allowed: several Origin headers",
    );
}

#[tokio::test]
async fn allowed_preflight_is_answered_by_the_layer() {
    let sent = send(&layer(), preflight(APP, "POST", &["content-type"])).await;
    assert_eq!(sent.status, StatusCode::NO_CONTENT);
    assert_eq!(sent.body, "");
    assert_eq!(sent.calls, 0);
    assert_eq!(sent.header("access-control-allow-origin"), Some(APP));
    assert_eq!(
        sent.header("access-control-allow-methods"),
        Some("GET, POST")
    );
    assert_eq!(
        sent.header("access-control-allow-headers"),
        Some("content-type, idempotency-key")
    );
    assert_eq!(sent.header("access-control-max-age"), Some("600"));
    assert_eq!(sent.header("access-control-allow-credentials"), None);
    assert_eq!(sent.header("access-control-allow-private-network"), None);
    assert_eq!(
        sent.vary(),
        [
            "Origin",
            "Access-Control-Request-Method, Access-Control-Request-Headers"
        ]
    );

    // Requested headers compare case-insensitively, in any list shape, over several lines.
    for headers in [
        "Content-Type",
        "content-type,idempotency-key",
        " IDEMPOTENCY-KEY , content-type ",
        "",
        "content-type,,",
    ] {
        let sent = send(&layer(), preflight(APP, "GET", &[headers])).await;
        assert_eq!(sent.status, StatusCode::NO_CONTENT, "{headers:?}");
    }
    let sent = send(
        &layer(),
        request(
            Method::OPTIONS,
            &[
                ("origin", APP),
                ("access-control-request-method", "POST"),
                ("access-control-request-headers", "content-type"),
                ("access-control-request-headers", "idempotency-key"),
            ],
        ),
    )
    .await;
    assert_eq!(sent.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn refused_preflights() {
    let layer = layer();
    let sent = send(&layer, preflight("https://evil.example", "POST", &[])).await;
    sent.assert_refused_with("origin_not_allowed", ORIGIN_NOT_ALLOWED);

    // Methods compare case-sensitively: `post` is an extension method, not POST.
    for method in ["post", "DELETE", "PUT", "HEAD", "GET, POST", ""] {
        let sent = send(&layer, preflight(APP, method, &[])).await;
        sent.assert_refused_with("method_not_allowed", "method is not allowed");
    }
    let sent = send(
        &layer,
        request(
            Method::OPTIONS,
            &[
                ("origin", APP),
                ("access-control-request-method", "GET"),
                ("access-control-request-method", "GET"),
            ],
        ),
    )
    .await;
    sent.assert_refused_with(
        "method_not_allowed",
        "method is not allowed: several Access-Control-Request-Method headers",
    );

    for headers in ["x-evil", "content-type, authorization", "content-type;x"] {
        let sent = send(&layer, preflight(APP, "POST", &[headers])).await;
        sent.assert_refused_with("header_not_allowed", "header is not allowed");
    }
}

#[tokio::test]
async fn private_network_and_credentials_in_preflight() {
    let layer = OriginAllowlistLayer::builder()
        .allow_origin(APP)
        .allow_credentials(true)
        .allow_private_network(true)
        .build()
        .unwrap();
    let mut req = preflight(APP, "GET", &[]);
    req.headers_mut().insert(
        "access-control-request-private-network",
        HeaderValue::from_static("true"),
    );
    let sent = send(&layer, req).await;
    assert_eq!(sent.status, StatusCode::NO_CONTENT);
    assert_eq!(
        sent.header("access-control-allow-private-network"),
        Some("true")
    );
    assert_eq!(
        sent.header("access-control-allow-credentials"),
        Some("true")
    );
    assert_eq!(
        sent.header("access-control-allow-methods"),
        Some("GET, HEAD, POST")
    );
    assert_eq!(sent.header("access-control-allow-headers"), None);
    assert_eq!(sent.header("access-control-max-age"), None);

    // Not configured: no grant (the browser then refuses the private-network request).
    let mut req = preflight(APP, "GET", &[]);
    req.headers_mut().insert(
        "access-control-request-private-network",
        HeaderValue::from_static("true"),
    );
    let sent = send(&self::layer(), req).await;
    assert_eq!(sent.status, StatusCode::NO_CONTENT);
    assert_eq!(sent.header("access-control-allow-private-network"), None);
}

#[tokio::test]
async fn options_without_request_method_goes_to_the_handler() {
    let sent = send(&layer(), request(Method::OPTIONS, &[("origin", APP)])).await;
    assert_eq!(sent.status, StatusCode::OK);
    assert_eq!(sent.calls, 1);
    assert_eq!(sent.header("access-control-allow-origin"), Some(APP));
    assert_eq!(sent.header("access-control-allow-methods"), None);

    // Without Origin, OPTIONS + Access-Control-Request-Method is not a CORS preflight.
    let sent = send(
        &layer(),
        request(
            Method::OPTIONS,
            &[("access-control-request-method", "POST")],
        ),
    )
    .await;
    assert_eq!(sent.status, StatusCode::OK);
    assert_eq!(sent.calls, 1);
    assert!(sent.has_no_cors_headers());
}

#[tokio::test]
async fn requests_without_origin_follow_browser_signals() {
    let layer = layer();
    let refused = [
        (
            vec![("sec-fetch-site", "cross-site")],
            "origin is not allowed: cross-site request without an Origin header",
        ),
        (
            vec![
                ("sec-fetch-site", "cross-site"),
                ("referer", "https://app.example.com/page"),
            ],
            "origin is not allowed: cross-site request without an Origin header",
        ),
        (
            vec![("sec-fetch-site", "same-site")],
            "origin is not allowed: same-site request without an Origin header",
        ),
        (
            vec![("sec-fetch-site", "Cross-Site")],
            "origin is not allowed: unrecognised Sec-Fetch-Site value",
        ),
        (
            vec![("sec-fetch-site", "none"), ("sec-fetch-site", "none")],
            "origin is not allowed: several Sec-Fetch-Site headers",
        ),
        (
            vec![("referer", "https://evil.example/")],
            "origin is not allowed: the Referer header's origin",
        ),
        (
            vec![("referer", "https://app.example.com.evil.com/x")],
            "origin is not allowed: the Referer header's origin",
        ),
        (
            vec![("referer", "https://user@app.example.com/x")],
            "origin is not allowed: the Referer header's origin",
        ),
        (
            vec![("referer", "not a url")],
            "origin is not allowed: the Referer header's origin",
        ),
        (
            vec![
                ("sec-fetch-site", "same-origin"),
                ("referer", "https://evil.example/"),
            ],
            "origin is not allowed: the Referer header's origin",
        ),
        (
            vec![
                ("referer", "https://app.example.com/"),
                ("referer", "https://app.example.com/"),
            ],
            "origin is not allowed: several Referer headers",
        ),
    ];
    for (headers, message) in refused {
        let sent = send(&layer, request(Method::POST, &headers)).await;
        sent.assert_refused_with("origin_not_allowed", message);
    }

    let passed = [
        vec![],
        vec![("sec-fetch-site", "same-origin")],
        vec![("sec-fetch-site", "none")],
        vec![("referer", "https://app.example.com/checkout?step=2")],
        vec![("referer", "https://shop.example.com")],
        vec![
            ("sec-fetch-site", "same-origin"),
            ("referer", "https://app.example.com/"),
        ],
    ];
    for headers in passed {
        let sent = send(&layer, request(Method::GET, &headers)).await;
        assert_eq!(sent.status, StatusCode::OK, "{headers:?}");
        assert_eq!(sent.calls, 1);
        assert!(sent.has_no_cors_headers(), "{headers:?}");
        assert_eq!(sent.vary(), ["Origin"]);
    }
}

#[tokio::test]
async fn origin_less_options_are_configurable() {
    let strict = OriginAllowlistLayer::builder()
        .allow_origin(APP)
        .allow_server_to_server(false)
        .build()
        .unwrap();
    let sent = send(&strict, request(Method::POST, &[])).await;
    sent.assert_refused_with(
        "origin_not_allowed",
        "origin is not allowed: request without Origin, Referer or Sec-Fetch-Site",
    );
    // A browser signal still lets a same-origin request through.
    let sent = send(
        &strict,
        request(Method::GET, &[("sec-fetch-site", "same-origin")]),
    )
    .await;
    assert_eq!(sent.calls, 1);

    let same_site = OriginAllowlistLayer::builder()
        .allow_origin(APP)
        .allow_same_site_without_origin(true)
        .build()
        .unwrap();
    let sent = send(
        &same_site,
        request(Method::GET, &[("sec-fetch-site", "same-site")]),
    )
    .await;
    assert_eq!(sent.status, StatusCode::OK);
    assert_eq!(sent.calls, 1);
    // ... but a same-site Referer must still be on the list.
    let sent = send(
        &same_site,
        request(
            Method::GET,
            &[
                ("sec-fetch-site", "same-site"),
                ("referer", "https://other.example.com/"),
            ],
        ),
    )
    .await;
    sent.assert_refused_with(
        "origin_not_allowed",
        "origin is not allowed: the Referer header's origin",
    );
}

#[tokio::test]
async fn vary_is_appended_never_duplicated_nor_clobbered() {
    type Headers = &'static [(&'static str, &'static str)];
    let cases: [(Headers, &[&str]); 6] = [
        (
            &[("vary", "Accept-Encoding")],
            &["Accept-Encoding", "Origin"],
        ),
        (&[("vary", "origin")], &["origin"]),
        (&[("vary", "Accept, Origin")], &["Accept, Origin"]),
        (
            &[("vary", "accept"), ("vary", "ORIGIN")],
            &["accept", "ORIGIN"],
        ),
        (&[("vary", "*")], &["*"]),
        (&[("vary", "Originator")], &["Originator", "Origin"]),
    ];
    for (inner, expected) in cases {
        for req in [post_from(APP), request(Method::GET, &[])] {
            let sent = send_with(&layer(), req, inner).await;
            assert_eq!(sent.vary(), expected, "{inner:?}");
        }
    }
}

#[tokio::test]
async fn replaced_rejection_keeps_vary_and_extension() {
    let layer = OriginAllowlistLayer::builder()
        .allow_origin(APP)
        .on_rejection(RejectionResponder::new(|rejection: &Rejection| {
            let mut response = Response::new(Bytes::from(format!("refused: {}", rejection.code())));
            *response.status_mut() = StatusCode::IM_A_TEAPOT;
            response
                .headers_mut()
                .insert("vary", HeaderValue::from_static("origin"));
            response
        }))
        .build()
        .unwrap();
    let sent = send(&layer, post_from("https://evil.example")).await;
    assert_eq!(sent.status, StatusCode::IM_A_TEAPOT);
    assert_eq!(sent.body, "refused: origin_not_allowed");
    assert_eq!(sent.vary(), ["origin"]);
    assert_eq!(sent.calls, 0);
    assert_eq!(
        sent.rejection.as_ref().map(Rejection::code),
        Some("origin_not_allowed")
    );

    let grpc = OriginAllowlistLayer::builder()
        .allow_origin(APP)
        .on_rejection(RejectionResponder::grpc())
        .build()
        .unwrap();
    let sent = send(&grpc, post_from("https://evil.example")).await;
    assert_eq!(sent.status, StatusCode::OK);
    assert_eq!(sent.header("grpc-status"), Some("7"));
    assert_eq!(sent.vary(), ["Origin"]);
    assert_eq!(sent.calls, 0);
}

#[tokio::test]
async fn bypass_path_is_exact_and_explicit() {
    let layer = OriginAllowlistLayer::builder()
        .allow_origin(APP)
        .bypass_path("/healthz")
        .build()
        .unwrap();
    let mut req = post_from("https://evil.example");
    *req.uri_mut() = "/healthz".parse().unwrap();
    let sent = send_with(&layer, req, &[("access-control-allow-origin", "*")]).await;
    assert_eq!(sent.status, StatusCode::OK);
    assert_eq!(sent.calls, 1);
    // Bypassed responses are left as the handler wrote them, plus Vary.
    assert_eq!(sent.header("access-control-allow-origin"), Some("*"));
    assert_eq!(sent.vary(), ["Origin"]);

    for path in ["/healthz/", "/healthz/x", "/Healthz", "/api/healthz"] {
        let mut req = post_from("https://evil.example");
        *req.uri_mut() = path.parse().unwrap();
        let sent = send(&layer, req).await;
        sent.assert_refused_with("origin_not_allowed", ORIGIN_NOT_ALLOWED);
    }
}

#[test]
fn build_errors_and_defaults() {
    let builder = || OriginAllowlistLayer::builder().allow_origin(APP);
    assert_eq!(
        OriginAllowlistLayer::builder().build().unwrap_err(),
        ConfigError::NoOrigins
    );
    assert_eq!(
        builder().allow_origin("*").build().unwrap_err(),
        ConfigError::AnyOrigin
    );
    assert_eq!(
        builder().allow_origins(["null"]).build().unwrap_err(),
        ConfigError::NullOrigin
    );
    assert_eq!(
        builder()
            .allow_origin("http://localhost:3000")
            .build()
            .unwrap_err(),
        ConfigError::HttpNotEnabled {
            origin: "http://localhost:3000".into()
        }
    );
    // The opt-in may come after the origin: validation happens in `build`.
    let layer = builder()
        .allow_origin("http://localhost:3000")
        .allow_http_origins(true)
        .build()
        .unwrap();
    assert_eq!(layer.allowed_origins()[1].as_str(), "http://localhost:3000");
    for method in ["*", "GE T", ""] {
        assert_eq!(
            builder().allow_methods([method]).build().unwrap_err(),
            ConfigError::InvalidMethod {
                method: method.into()
            }
        );
    }
    for header in ["*", "bad header", "x:y", ""] {
        assert_eq!(
            builder().allow_headers([header]).build().unwrap_err(),
            ConfigError::InvalidHeader {
                header: header.into()
            }
        );
        assert_eq!(
            builder().expose_headers([header]).build().unwrap_err(),
            ConfigError::InvalidHeader {
                header: header.into()
            }
        );
    }
    for path in ["healthz", "/healthz?x=1", "/h#x", ""] {
        assert_eq!(
            builder().bypass_path(path).build().unwrap_err(),
            ConfigError::InvalidBypassPath { path: path.into() }
        );
    }
    assert!(matches!(
        builder().allow_origin("https://*.com").build().unwrap_err(),
        ConfigError::WildcardOnPublicSuffix { .. }
    ));

    // Canonical, deduplicated.
    let layer = OriginAllowlistLayer::builder()
        .allow_origins([
            "https://App.Example.com:443",
            APP,
            "https://app.example.com",
        ])
        .allow_methods(["GET", "GET", "patch"])
        .allow_headers(["Content-Type", "content-type"])
        .build()
        .unwrap();
    assert_eq!(layer.allowed_origins().len(), 1);
    assert_eq!(layer.allowed_origins()[0].to_string(), APP);
    assert_eq!(
        layer.allowed_methods(),
        [Method::GET, Method::from_bytes(b"patch").unwrap()]
    );
    assert_eq!(layer.allowed_headers(), ["content-type"]);

    let defaults = builder().build().unwrap();
    assert_eq!(
        defaults.allowed_methods(),
        [Method::GET, Method::HEAD, Method::POST]
    );
    assert!(defaults.allowed_headers().is_empty());
}

#[test]
fn debug_shows_configuration() {
    let debug = format!("{:?}", layer());
    assert!(
        debug.contains("AllowedOrigin(\"https://*.example.com\")"),
        "{debug}"
    );
    assert!(debug.contains("RejectionResponder(\"json\")"), "{debug}");
}

#[test]
fn public_types_are_send_sync_clone() {
    fn assert_send_sync<T: Send + Sync>() {}
    fn assert_clone<T: Clone>() {}
    type Svc = OriginAllowlist<
        tower::util::BoxCloneSyncService<Request<Full<Bytes>>, Response<Full<Bytes>>, Infallible>,
    >;
    assert_send_sync::<OriginAllowlistLayer>();
    assert_clone::<OriginAllowlistLayer>();
    assert_send_sync::<Svc>();
    assert_clone::<Svc>();
    fn assert_send<T: Send>() {}
    assert_send::<
        OriginAllowlistFuture<std::future::Ready<Result<Response<Full<Bytes>>, Infallible>>>,
    >();
    assert_send::<ResponseBody<Full<Bytes>>>();
}

#[tokio::test]
async fn service_accessors() {
    let mut service = OriginAllowlist::new(
        tower::service_fn(|_: Request<Full<Bytes>>| async {
            Ok::<_, Infallible>(Response::new(Full::<Bytes>::default()))
        }),
        &layer(),
    );
    let _ = service.get_ref();
    let _ = service.get_mut();
    let inner = service.into_inner();
    let response = inner.oneshot(Request::new(Full::default())).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn named_constructors_and_closure_responders() {
    // `new` and `OriginAllowlist::layer` are `builder().allow_origins(..).build()`.
    let new = OriginAllowlistLayer::new([APP, "https://*.shop.example.com"]).unwrap();
    let via_service = OriginAllowlist::<()>::layer([APP, "https://*.shop.example.com"]).unwrap();
    for layer in [&new, &via_service] {
        assert_eq!(
            layer
                .allowed_origins()
                .iter()
                .map(|o| o.as_str())
                .collect::<Vec<_>>(),
            [APP, "https://*.shop.example.com"]
        );
        assert_eq!(
            layer.allowed_methods(),
            [Method::GET, Method::HEAD, Method::POST]
        );
        send(layer, post_from(APP)).await.assert_passed();
        send(layer, post_from("https://evil.example"))
            .await
            .assert_refused_with("origin_not_allowed", ORIGIN_NOT_ALLOWED);
    }
    assert_eq!(
        OriginAllowlistLayer::new(Vec::<String>::new()).unwrap_err(),
        ConfigError::NoOrigins
    );
    assert!(matches!(
        OriginAllowlist::<()>::layer(["https://*.github.io"]).unwrap_err(),
        ConfigError::WildcardOnPublicSuffix { .. }
    ));

    // A closure is a responder, on the builder and on a built layer; the built layer's
    // setter leaves the original untouched.
    let teapot = |rejection: &Rejection| {
        let mut response = Response::new(Bytes::from(rejection.code().to_owned()));
        *response.status_mut() = StatusCode::IM_A_TEAPOT;
        response
    };
    let built = OriginAllowlistLayer::builder()
        .allow_origin(APP)
        .on_rejection(teapot)
        .build()
        .unwrap();
    let replaced = new.clone().on_rejection(teapot);
    for layer in [&built, &replaced] {
        let sent = send(layer, post_from("https://evil.example")).await;
        assert_eq!(sent.status, StatusCode::IM_A_TEAPOT);
        assert_eq!(sent.body, "origin_not_allowed");
        assert_eq!(sent.vary(), ["Origin"]);
        assert_eq!(sent.calls, 0);
    }
    assert!(format!("{replaced:?}").contains("RejectionResponder(\"custom\")"));
    assert!(format!("{new:?}").contains("RejectionResponder(\"json\")"));
    send(&new, post_from("https://evil.example"))
        .await
        .assert_refused_with("origin_not_allowed", ORIGIN_NOT_ALLOWED);
}

/// Every tollgate future stays pending once it completed: the layer's own answers and the
/// inner service's future, whose response is not produced (nor the inner future polled) twice.
#[test]
fn a_completed_future_stays_pending() {
    use std::future::Future;
    use std::pin::pin;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Context, Poll, Waker};

    use tower::Service;

    let polls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&polls);
    let mut service = OriginAllowlist::new(
        tower::service_fn(move |_: Request<Full<Bytes>>| {
            let counter = Arc::clone(&counter);
            std::future::poll_fn(move |_| {
                counter.fetch_add(1, Ordering::SeqCst);
                Poll::Ready(Ok::<_, Infallible>(Response::new(Full::<Bytes>::default())))
            })
        }),
        &layer(),
    );
    let mut cx = Context::from_waker(Waker::noop());
    let requests = [
        (post_from("https://evil.example"), StatusCode::FORBIDDEN),
        (preflight(APP, "POST", &[]), StatusCode::NO_CONTENT),
        (post_from(APP), StatusCode::OK),
        (request(Method::GET, &[]), StatusCode::OK),
    ];
    for (request, status) in requests {
        let mut future = pin!(service.call(request));
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(Ok(response)) => assert_eq!(response.status(), status),
            other => panic!("{other:?}"),
        }
        assert!(future.as_mut().poll(&mut cx).is_pending());
        assert!(future.as_mut().poll(&mut cx).is_pending());
    }
    assert_eq!(
        polls.load(Ordering::SeqCst),
        2,
        "the inner future is polled once each"
    );

    let own = service.call(post_from("https://evil.example"));
    assert_eq!(format!("{own:?}"), r#"OriginAllowlistFuture("own")"#);
    let inner = service.call(post_from(APP));
    assert_eq!(format!("{inner:?}"), r#"OriginAllowlistFuture("inner")"#);
}
