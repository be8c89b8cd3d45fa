//! The cases the established CORS and cross-origin-protection implementations test, replayed
//! against this layer through its public API: tower-http's `cors` (Vary, preflight answers,
//! header formats, max-age, credentials, private network access, exposed headers, preflights
//! kept from the inner service), Go's `CrossOriginProtection` and tower-http's `csrf`
//! (`Sec-Fetch-Site`, `Origin` without it, safe methods, trusted origins, bypass patterns),
//! and the origin-matching bypasses reported against rs/cors and the `cors` npm package.
//!
//! Where this layer is deliberately stricter than one of them, the test says so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, Response, StatusCode};
use tollgate_core::{Rejection, RejectionResponder};
use tollgate_origin::{ConfigError, OriginAllowlistLayer};

use common::{APP, preflight, request, send, send_with};

fn api_layer() -> OriginAllowlistLayer {
    OriginAllowlistLayer::builder()
        .allow_origins([APP, "https://*.shop.example.com"])
        .allow_methods([Method::GET, Method::POST, Method::DELETE])
        .allow_headers(["content-type", "x-request-id"])
        .build()
        .unwrap()
}

// ---------------------------------------------------------------------------------------
// tower-http `cors`
// ---------------------------------------------------------------------------------------

/// tower-http's `vary_set_by_inner_service`: the inner service's `Vary` line stays first and
/// intact, the layer's comes after it, once.
#[tokio::test]
async fn vary_from_the_inner_service_is_kept_and_origin_appended_once() {
    let layer = api_layer();
    let requests = || {
        [
            request("POST", "/api", &[("origin", APP)]),
            request("GET", "/api", &[]),
            request("GET", "/api", &[("sec-fetch-site", "same-origin")]),
            request("OPTIONS", "/api", &[("origin", APP)]),
        ]
    };
    type Case = (
        &'static [(&'static str, &'static str)],
        &'static [&'static str],
    );
    let cases: [Case; 8] = [
        (
            &[("vary", "accept, accept-encoding")],
            &["accept, accept-encoding", "Origin"],
        ),
        (&[("vary", "Accept,Origin")], &["Accept,Origin"]),
        (&[("vary", "accept , origin ")], &["accept , origin "]),
        (&[("vary", "ORIGIN")], &["ORIGIN"]),
        (&[("vary", "accept"), ("vary", "*")], &["accept", "*"]),
        (&[("vary", "")], &["", "Origin"]),
        (
            &[("vary", "origin-agent-cluster")],
            &["origin-agent-cluster", "Origin"],
        ),
        (&[], &["Origin"]),
    ];
    for (inner, expected) in cases {
        for req in requests() {
            let sent = send_with(&layer, req, inner).await;
            assert_eq!(sent.calls, 1);
            assert_eq!(sent.all("vary"), expected, "{inner:?}");
        }
    }
}

/// A preflight is answered by the layer with 204, an empty body and every header the
/// browser needs; the inner service never sees it.
#[tokio::test]
async fn preflight_answer_status_headers_and_formats() {
    let layer = OriginAllowlistLayer::builder()
        .allow_origins([APP])
        .allow_methods(["GET", "POST", "PATCH"])
        .allow_headers(["Content-Type", "X-Request-Id", "idempotency-key"])
        .allow_credentials(true)
        .max_age(Duration::from_secs(7200))
        .expose_headers(["x-request-id"])
        .build()
        .unwrap();
    let sent = send(
        &layer,
        preflight(APP, "PATCH", &["content-type,x-request-id"]),
    )
    .await;
    assert_eq!(sent.status, StatusCode::NO_CONTENT);
    assert_eq!(sent.body, "");
    assert_eq!(
        sent.calls, 0,
        "a preflight must not reach the inner service"
    );
    assert_eq!(sent.header("access-control-allow-origin"), Some(APP));
    assert_eq!(
        sent.header("access-control-allow-methods"),
        Some("GET, POST, PATCH")
    );
    assert_eq!(
        sent.header("access-control-allow-headers"),
        Some("content-type, x-request-id, idempotency-key")
    );
    assert_eq!(sent.header("access-control-max-age"), Some("7200"));
    assert_eq!(
        sent.header("access-control-allow-credentials"),
        Some("true")
    );
    // Exposed headers concern actual responses only.
    assert_eq!(sent.header("access-control-expose-headers"), None);
    assert_eq!(sent.header("access-control-allow-private-network"), None);
    assert_eq!(
        sent.all("vary"),
        [
            "Origin",
            "Access-Control-Request-Method, Access-Control-Request-Headers"
        ]
    );
    // Every header of the answer is on a single line.
    for name in [
        "access-control-allow-origin",
        "access-control-allow-methods",
        "access-control-allow-headers",
        "access-control-max-age",
        "access-control-allow-credentials",
    ] {
        assert_eq!(sent.all(name).len(), 1, "{name}");
    }
}

#[tokio::test]
async fn max_age_is_whole_seconds_and_absent_unless_configured() {
    for (age, expected) in [
        (Duration::ZERO, Some("0")),
        (Duration::from_millis(1500), Some("1")),
        (Duration::from_secs(86_400), Some("86400")),
    ] {
        let layer = OriginAllowlistLayer::builder()
            .allow_origin(APP)
            .max_age(age)
            .build()
            .unwrap();
        let sent = send(&layer, preflight(APP, "GET", &[])).await;
        assert_eq!(sent.header("access-control-max-age"), expected, "{age:?}");
        // Never on an actual response.
        let sent = send(&layer, request("GET", "/api", &[("origin", APP)])).await;
        assert_eq!(sent.header("access-control-max-age"), None);
    }
    let sent = send(&api_layer(), preflight(APP, "GET", &[])).await;
    assert_eq!(sent.header("access-control-max-age"), None);
}

#[tokio::test]
async fn credentials_only_for_allowed_origins_and_only_when_configured() {
    let with = OriginAllowlistLayer::builder()
        .allow_origin(APP)
        .allow_credentials(true)
        .build()
        .unwrap();
    let sent = send(&with, request("GET", "/api", &[("origin", APP)])).await;
    assert_eq!(
        sent.header("access-control-allow-credentials"),
        Some("true")
    );
    send(
        &with,
        request("GET", "/api", &[("origin", "https://evil.example")]),
    )
    .await
    .assert_refused("origin_not_allowed");
    send(&with, preflight("https://evil.example", "GET", &[]))
        .await
        .assert_refused("origin_not_allowed");

    // The inner service cannot grant credentials or an origin the layer did not.
    let granted = [
        ("access-control-allow-credentials", "true"),
        ("access-control-allow-origin", "https://evil.example"),
    ];
    let sent = send_with(
        &api_layer(),
        request("GET", "/api", &[("origin", APP)]),
        &granted,
    )
    .await;
    assert_eq!(sent.all("access-control-allow-origin"), [APP]);
    assert_eq!(sent.header("access-control-allow-credentials"), None);
    for req in [
        request("GET", "/api", &[]),
        request("GET", "/api", &[("sec-fetch-site", "same-origin")]),
        request("GET", "/api", &[("referer", "https://app.example.com/x")]),
    ] {
        let sent = send_with(&with, req, &granted).await;
        sent.assert_passed();
        assert!(sent.cors_headers().is_empty(), "{:?}", sent.headers);
    }
}

/// Private Network Access: granted only in an allowed preflight that asks for it with
/// exactly `true`, and only when configured.
#[tokio::test]
async fn private_network_access() {
    let allowed = OriginAllowlistLayer::builder()
        .allow_origin(APP)
        .allow_private_network(true)
        .build()
        .unwrap();
    let ask = |origin: &str, value: &str| {
        let mut req = preflight(origin, "GET", &[]);
        req.headers_mut().insert(
            "access-control-request-private-network",
            HeaderValue::from_str(value).unwrap(),
        );
        req
    };
    let sent = send(&allowed, ask(APP, "true")).await;
    assert_eq!(sent.status, StatusCode::NO_CONTENT);
    assert_eq!(
        sent.header("access-control-allow-private-network"),
        Some("true")
    );
    for value in ["false", "TRUE", "", "true, true"] {
        let sent = send(&allowed, ask(APP, value)).await;
        assert_eq!(sent.status, StatusCode::NO_CONTENT);
        assert_eq!(
            sent.header("access-control-allow-private-network"),
            None,
            "{value:?}"
        );
    }
    // Not asked for: not granted.
    let sent = send(&allowed, preflight(APP, "GET", &[])).await;
    assert_eq!(sent.header("access-control-allow-private-network"), None);
    // A foreign origin gets nothing.
    send(&allowed, ask("https://evil.example", "true"))
        .await
        .assert_refused("origin_not_allowed");
    // Not configured: not granted.
    let sent = send(&api_layer(), ask(APP, "true")).await;
    assert_eq!(sent.status, StatusCode::NO_CONTENT);
    assert_eq!(sent.header("access-control-allow-private-network"), None);
    // Never on an actual response.
    let sent = send(
        &allowed,
        request(
            "GET",
            "/api",
            &[
                ("origin", APP),
                ("access-control-request-private-network", "true"),
            ],
        ),
    )
    .await;
    sent.assert_passed();
    assert_eq!(sent.header("access-control-allow-private-network"), None);
}

#[tokio::test]
async fn exposed_headers_only_on_allowed_actual_responses() {
    let layer = OriginAllowlistLayer::builder()
        .allow_origin(APP)
        .expose_headers(["X-Request-Id", "x-widget-url", "x-request-id"])
        .build()
        .unwrap();
    let sent = send(&layer, request("POST", "/api", &[("origin", APP)])).await;
    sent.assert_passed();
    assert_eq!(
        sent.all("access-control-expose-headers"),
        ["x-request-id, x-widget-url"]
    );
    let sent = send(&layer, preflight(APP, "POST", &[])).await;
    assert_eq!(sent.header("access-control-expose-headers"), None);
    let sent = send(&layer, request("POST", "/api", &[])).await;
    sent.assert_passed();
    assert_eq!(sent.header("access-control-expose-headers"), None);
    send(
        &layer,
        request("POST", "/api", &[("origin", "https://evil.example")]),
    )
    .await
    .assert_refused("origin_not_allowed");
}

// ---------------------------------------------------------------------------------------
// Preflight edge cases
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn options_without_request_method_is_an_actual_request() {
    let layer = api_layer();
    // With an allowed origin: the inner service answers, with CORS headers.
    let sent = send(
        &layer,
        request(
            "OPTIONS",
            "/api",
            &[
                ("origin", APP),
                ("access-control-request-headers", "x-evil"),
            ],
        ),
    )
    .await;
    sent.assert_passed();
    assert_eq!(sent.header("access-control-allow-origin"), Some(APP));
    assert_eq!(sent.header("access-control-allow-methods"), None);
    // With a foreign origin: refused like any actual request.
    send(
        &layer,
        request("OPTIONS", "/api", &[("origin", "https://evil.example")]),
    )
    .await
    .assert_refused("origin_not_allowed");
    // Without any browser header: a server-to-server OPTIONS.
    let sent = send(&layer, request("OPTIONS", "/api", &[])).await;
    sent.assert_passed();
    assert!(sent.cors_headers().is_empty());
    // `OPTIONS` is the only preflight method.
    let sent = send(
        &layer,
        request(
            "POST",
            "/api",
            &[("origin", APP), ("access-control-request-method", "DELETE")],
        ),
    )
    .await;
    sent.assert_passed();
}

#[tokio::test]
async fn requested_header_lists_in_every_shape() {
    let layer = api_layer();
    let accepted: [&[&str]; 11] = [
        &[],
        &[""],
        &[","],
        &[" , ,\t,"],
        &["content-type"],
        &["Content-Type"],
        &["CONTENT-TYPE,X-REQUEST-ID"],
        &["content-type , x-request-id"],
        &["\tcontent-type\t,\tx-request-id\t"],
        &[",content-type,,x-request-id,"],
        &["content-type", "x-request-id", ""],
    ];
    for lines in accepted {
        let sent = send(&layer, preflight(APP, "POST", lines)).await;
        assert_eq!(sent.status, StatusCode::NO_CONTENT, "{lines:?}");
        assert_eq!(sent.calls, 0);
    }
    let refused: [&[&str]; 9] = [
        &["x-evil"],
        &["content-type, x-evil"],
        &["content-type", "x-evil"],
        &["x-evil", "content-type"],
        &["content type"],
        &["content-type x-request-id"],
        &["content-type;x-request-id"],
        &["content-typ"],
        &["*"],
    ];
    for lines in refused {
        let sent = send(&layer, preflight(APP, "POST", lines)).await;
        sent.assert_refused("header_not_allowed");
    }
    // A very long list is handled in linear time and refused on its first unknown name.
    let long = format!("{}x-evil", "content-type,".repeat(5000));
    send(&layer, preflight(APP, "POST", &[&long]))
        .await
        .assert_refused("header_not_allowed");
    let commas = ",".repeat(60_000);
    let sent = send(&layer, preflight(APP, "POST", &[&commas])).await;
    assert_eq!(sent.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn requested_method_is_case_sensitive_and_single() {
    let layer = OriginAllowlistLayer::builder()
        .allow_origin(APP)
        .allow_methods(["get", "PATCH", "purge"])
        .build()
        .unwrap();
    // The six methods browsers normalise are stored upper case: `get` means GET.
    assert_eq!(
        layer.allowed_methods(),
        [
            Method::GET,
            Method::PATCH,
            Method::from_bytes(b"purge").unwrap()
        ]
    );
    for method in ["GET", "PATCH", "purge"] {
        let sent = send(&layer, preflight(APP, method, &[])).await;
        assert_eq!(sent.status, StatusCode::NO_CONTENT, "{method}");
        assert_eq!(
            sent.header("access-control-allow-methods"),
            Some("GET, PATCH, purge")
        );
    }
    for method in [
        "get",
        "patch",
        "Patch",
        "PURGE",
        "POST",
        " GET",
        "GET ",
        "GET,PATCH",
        "",
        "*",
    ] {
        send(&layer, preflight(APP, method, &[]))
            .await
            .assert_refused("method_not_allowed");
    }
    send(
        &layer,
        request(
            "OPTIONS",
            "/api",
            &[
                ("origin", APP),
                ("access-control-request-method", "GET"),
                ("access-control-request-method", "PATCH"),
            ],
        ),
    )
    .await
    .assert_refused("method_not_allowed");
    for method in ["delete", "Head", "options", "post", "put"] {
        let layer = OriginAllowlistLayer::builder()
            .allow_origin(APP)
            .allow_methods([method])
            .build()
            .unwrap();
        let upper = method.to_ascii_uppercase();
        assert_eq!(layer.allowed_methods()[0].as_str(), upper);
    }
}

/// Preflight checks run in order origin, method, headers: a foreign origin is refused as
/// such whatever it asks for.
#[tokio::test]
async fn preflight_refusal_reasons() {
    let layer = api_layer();
    send(
        &layer,
        preflight("https://evil.example", "PUT", &["x-evil"]),
    )
    .await
    .assert_refused("origin_not_allowed");
    send(&layer, preflight(APP, "PUT", &["x-evil"]))
        .await
        .assert_refused("method_not_allowed");
    send(&layer, preflight(APP, "POST", &["x-evil"]))
        .await
        .assert_refused("header_not_allowed");
    send(&layer, preflight("null", "POST", &[]))
        .await
        .assert_refused("origin_not_allowed");
    let sent = send(
        &layer,
        request(
            "OPTIONS",
            "/api",
            &[
                ("origin", APP),
                ("origin", APP),
                ("access-control-request-method", "POST"),
            ],
        ),
    )
    .await;
    sent.assert_refused("origin_not_allowed");
}

// ---------------------------------------------------------------------------------------
// HEAD
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn head_requests_are_checked_like_get() {
    let layer = api_layer();
    let sent = send(&layer, request("HEAD", "/api", &[("origin", APP)])).await;
    sent.assert_passed();
    assert_eq!(sent.header("access-control-allow-origin"), Some(APP));
    assert_eq!(sent.all("vary"), ["Origin"]);
    for headers in [
        &[("origin", "https://evil.example")][..],
        &[("sec-fetch-site", "cross-site")][..],
        &[("referer", "https://evil.example/")][..],
    ] {
        send(&layer, request("HEAD", "/api", headers))
            .await
            .assert_refused("origin_not_allowed");
    }
    send(&layer, preflight(APP, "HEAD", &[]))
        .await
        .assert_refused("method_not_allowed");
}

// ---------------------------------------------------------------------------------------
// Go's CrossOriginProtection and tower-http's csrf
// ---------------------------------------------------------------------------------------

/// The `Sec-Fetch-Site` table of Go's tests, for a layer that lists the API's own origin
/// `https://example.com`.
///
/// Deliberate differences: Go lets every `GET`, `HEAD` and `OPTIONS` through, and trusts an
/// `Origin` that equals `Host`. This layer refuses a cross-site request whatever its method
/// (the provider rule is to block other origins, not other origins' writes; a `GET` handler
/// that mints a session is not rare), and trusts only the configured list, never `Host`.
#[tokio::test]
async fn sec_fetch_site_table() {
    let layer = OriginAllowlistLayer::builder()
        .allow_origin("https://example.com")
        .build()
        .unwrap();
    let ok = true;
    let forbidden = false;
    let cases: [(&str, Option<&str>, Option<&str>, bool); 24] = [
        ("POST", Some("same-origin"), None, ok),
        ("POST", Some("none"), None, ok),
        ("POST", Some("cross-site"), None, forbidden),
        ("POST", Some("same-site"), None, forbidden),
        ("POST", None, None, ok),
        ("POST", None, Some("https://example.com"), ok),
        ("POST", None, Some("https://attacker.example"), forbidden),
        ("POST", None, Some("null"), forbidden),
        ("POST", Some("same-origin"), Some("https://example.com"), ok),
        // Go lets `same-origin` decide alone; here a present `Origin` is always checked.
        (
            "POST",
            Some("same-origin"),
            Some("https://attacker.example"),
            forbidden,
        ),
        ("POST", Some("cross-site"), Some("https://example.com"), ok),
        (
            "POST",
            Some("cross-site"),
            Some("https://attacker.example"),
            forbidden,
        ),
        ("POST", Some("same-site"), Some("https://example.com"), ok),
        // Unknown values are refused, as in Go.
        ("POST", Some("cross-origin"), None, forbidden),
        ("POST", Some("SAME-ORIGIN"), None, forbidden),
        ("POST", Some(""), None, forbidden),
        // Go: safe methods always pass. Here: refused when cross-site.
        ("GET", Some("cross-site"), None, forbidden),
        ("HEAD", Some("cross-site"), None, forbidden),
        ("OPTIONS", Some("cross-site"), None, forbidden),
        ("GET", None, Some("https://attacker.example"), forbidden),
        ("GET", Some("same-origin"), None, ok),
        ("PUT", Some("cross-site"), None, forbidden),
        ("DELETE", Some("same-origin"), None, ok),
        ("PATCH", None, Some("https://example.com"), ok),
    ];
    for (method, site, origin, expected) in cases {
        let mut headers = Vec::new();
        if let Some(site) = site {
            headers.push(("sec-fetch-site", site));
        }
        if let Some(origin) = origin {
            headers.push(("origin", origin));
        }
        let mut req = request(method, "https://example.com/", &headers);
        req.headers_mut()
            .insert("host", HeaderValue::from_static("example.com"));
        let sent = send(&layer, req).await;
        if expected {
            assert_eq!(sent.status, StatusCode::OK, "{method} {site:?} {origin:?}");
            assert_eq!(sent.calls, 1);
        } else {
            sent.assert_refused("origin_not_allowed");
        }
    }
}

/// Go trusts an `Origin` equal to the request's `Host`; this layer does not: `Host` is
/// whatever the client or a proxy wrote.
#[tokio::test]
async fn host_header_is_never_trusted() {
    let layer = api_layer();
    for (host, origin) in [
        ("evil.example", "https://evil.example"),
        ("evil.example", "http://evil.example"),
        ("app.example.com", "https://app.example.com.evil.example"),
    ] {
        send(
            &layer,
            request("POST", "/api", &[("host", host), ("origin", origin)]),
        )
        .await
        .assert_refused("origin_not_allowed");
    }
}

/// Go's trusted origins: an origin on the list passes whatever `Sec-Fetch-Site` says.
#[tokio::test]
async fn trusted_origins_pass_cross_site() {
    let layer = OriginAllowlistLayer::builder()
        .allow_origins(["https://example.com", "https://trusted.example"])
        .build()
        .unwrap();
    for site in [None, Some("cross-site"), Some("same-site"), Some("none")] {
        let mut headers = vec![("origin", "https://trusted.example")];
        if let Some(site) = site {
            headers.push(("sec-fetch-site", site));
        }
        let sent = send(&layer, request("POST", "/", &headers)).await;
        sent.assert_passed();
        assert_eq!(
            sent.header("access-control-allow-origin"),
            Some("https://trusted.example")
        );
        headers[0].1 = "https://attacker.example";
        send(&layer, request("POST", "/", &headers))
            .await
            .assert_refused("origin_not_allowed");
    }
}

/// Go 1.25.1 fixed bypass patterns that also let through requests the mux would redirect or
/// clean into the pattern (`/bypass/../api`, `/yes-trailing` for `/yes-trailing/`). A bypass
/// path here is one exact path: nothing else is bypassed.
#[tokio::test]
async fn bypass_paths_are_exact() {
    let layer = OriginAllowlistLayer::builder()
        .allow_origin(APP)
        .bypass_path("/healthz")
        .bypass_path("/status/")
        .build()
        .unwrap();
    let evil = [("origin", "https://evil.example")];
    for path in ["/healthz", "/status/"] {
        let sent = send(&layer, request("POST", path, &evil)).await;
        sent.assert_passed();
        assert!(sent.cors_headers().is_empty());
        assert_eq!(sent.all("vary"), ["Origin"]);
    }
    // A preflight to a bypass path is the inner service's business too.
    let mut req = preflight(APP, "POST", &[]);
    *req.uri_mut() = "/healthz".parse().unwrap();
    let sent = send(&layer, req).await;
    sent.assert_passed();
    for path in [
        "/healthz/",
        "/healthz/x",
        "/healthz/../api",
        "/healthz/..",
        "/healthz%2F..%2Fapi",
        "/%68ealthz",
        "/HEALTHZ",
        "//healthz",
        "/./healthz",
        "/healthz;x",
        "/healthz.json",
        "/status",
        "/status/x",
        "/status/../api",
        "/api/healthz",
        "http://evil.example/api",
    ] {
        send(&layer, request("POST", path, &evil))
            .await
            .assert_refused("origin_not_allowed");
    }
    // Query strings do not change the path.
    let sent = send(&layer, request("POST", "/healthz?probe=1", &evil)).await;
    sent.assert_passed();
    // Absolute-form request targets carry the same path.
    let sent = send(
        &layer,
        request("POST", "http://api.example.com/healthz", &evil),
    )
    .await;
    sent.assert_passed();
}

#[test]
fn bypass_path_configuration_errors() {
    for path in [
        "",
        "healthz",
        "*",
        "/healthz?x",
        "/healthz#x",
        "/a b",
        "/a\tb",
        "/../healthz",
        "/a/./b",
        "/a/..",
        "/.",
    ] {
        let err = OriginAllowlistLayer::builder()
            .allow_origin(APP)
            .bypass_path(path)
            .build()
            .unwrap_err();
        assert_eq!(err, ConfigError::InvalidBypassPath { path: path.into() });
        assert!(err.to_string().contains(path), "{err}");
    }
    for path in [
        "/",
        "/healthz",
        "/health/live",
        "/a..b",
        "/.well-known/x",
        "/x%20y",
    ] {
        let layer = OriginAllowlistLayer::builder()
            .allow_origin(APP)
            .bypass_path(path)
            .build()
            .unwrap();
        assert_eq!(layer.allowed_origins().len(), 1);
    }
}

// ---------------------------------------------------------------------------------------
// rs/cors and the `cors` npm package: origin-matching bypasses
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn exact_origin_bypasses() {
    let layer = OriginAllowlistLayer::builder()
        .allow_origins(["https://app.example.com", "https://pay.example.com:8443"])
        .build()
        .unwrap();
    for origin in [
        // Suffix and prefix matching.
        "https://app.example.com.evil.com",
        "https://evil-app.example.com",
        "https://evilapp.example.com",
        "https://app.example.co",
        "https://app.example.comm",
        "https://app.example.com.",
        "https://app.example.com..",
        "https://xapp.example.com",
        "https://pp.example.com",
        // Regex-like dots.
        "https://appxexample.com",
        "https://app-example.com",
        "https://app.examplexcom",
        // Scheme, case, ports.
        "http://app.example.com",
        "wss://app.example.com",
        "HTTPS://APP.EXAMPLE.COM",
        "https://App.example.com",
        "https://app.example.com:443",
        "https://app.example.com:8443",
        "https://app.example.com:0443",
        "https://app.example.com:",
        "https://pay.example.com",
        "https://pay.example.com:08443",
        "https://pay.example.com:8444",
        // Userinfo, paths, escapes, whitespace.
        "https://app.example.com@evil.com",
        "https://evil.com@app.example.com",
        "https://app.example.com/",
        "https://app.example.com/.evil.com",
        "https://app.example.com%2f.evil.com",
        "https://app.example.com%00",
        "https://%61pp.example.com",
        "https://app.example.com#",
        "https://app.example.com?",
        " https://app.example.com",
        "https://app.example.com ",
        "https:// app.example.com",
        "https:/app.example.com",
        "https:app.example.com",
        "//app.example.com",
        "app.example.com",
        // `null` in every spelling, and lists.
        "null",
        "Null",
        "NULL",
        "null ",
        "https://app.example.com, null",
        "https://app.example.com,https://app.example.com",
        "https://app.example.com https://evil.com",
        "*",
        "",
    ] {
        let sent = send(&layer, request("POST", "/api", &[("origin", origin)])).await;
        sent.assert_refused("origin_not_allowed");
    }
}

#[tokio::test]
async fn wildcard_bypasses() {
    let layer = OriginAllowlistLayer::builder()
        .allow_origins(["https://*.example.com"])
        .build()
        .unwrap();
    for origin in [
        "https://shop.example.com",
        "https://a-1.example.com",
        "https://xn--bcher-kva.example.com",
    ] {
        let sent = send(&layer, request("POST", "/api", &[("origin", origin)])).await;
        sent.assert_passed();
        assert_eq!(sent.header("access-control-allow-origin"), Some(origin));
    }
    for origin in [
        // Never the apex, exactly one label.
        "https://example.com",
        "https://.example.com",
        "https://a.b.example.com",
        "https://a..example.com",
        // Suffix and prefix tricks.
        "https://evilexample.com",
        "https://shop-example.com",
        "https://shop.example.com.evil.com",
        "https://shop.example.community",
        "https://example.com.example.com.evil.com",
        "https://evil.com/.example.com",
        "https://evil.com?.example.com",
        "https://evil.com#.example.com",
        "https://evil.com\\.example.com",
        "https://evil.com@shop.example.com",
        "https://evil.com:443@shop.example.com",
        "https://shop.example.com:443",
        "https://shop.example.com:8443",
        "https://shop.example.com.",
        "http://shop.example.com",
        "https://SHOP.example.com",
        "https://shop.EXAMPLE.com",
        "https://sh%6fp.example.com",
        "https://sh_op.example.com",
        "https://sh op.example.com",
        "https://*.example.com",
        "https://%2a.example.com",
        "null",
    ] {
        let sent = send(&layer, request("POST", "/api", &[("origin", origin)])).await;
        sent.assert_refused("origin_not_allowed");
    }
    // A label of 64 bytes is longer than DNS allows.
    let long = format!("https://{}.example.com", "a".repeat(64));
    send(&layer, request("POST", "/api", &[("origin", &long)]))
        .await
        .assert_refused("origin_not_allowed");
}

/// Unicode in `Origin`: browsers send punycode, so raw UTF-8 (or any byte above 0x7f)
/// never matches, and a look-alike configured name is a different name.
#[tokio::test]
async fn unicode_and_idn_hosts() {
    let layer = OriginAllowlistLayer::builder()
        .allow_origins(["https://bücher.example", "https://*.shop.example.com"])
        .build()
        .unwrap();
    let sent = send(
        &layer,
        request(
            "POST",
            "/api",
            &[("origin", "https://xn--bcher-kva.example")],
        ),
    )
    .await;
    sent.assert_passed();
    for raw in [
        "https://bücher.example".as_bytes(),
        "https://bÜcher.example".as_bytes(),
        "https://bücher.shop.example.com".as_bytes(),
        "https://ｓｈｏｐ.shop.example.com".as_bytes(),
        b"https://b\xfccher.example",
        b"https://xn--bcher-kva.example\xff",
        b"https://\x80.shop.example.com",
    ] {
        let mut req = request("POST", "/api", &[]);
        req.headers_mut()
            .insert("origin", HeaderValue::from_bytes(raw).unwrap());
        send(&layer, req).await.assert_refused("origin_not_allowed");
    }

    // A Cyrillic `а` makes another name; the Latin one is not allowed by it.
    let homograph = OriginAllowlistLayer::builder()
        .allow_origin("https://\u{430}pp.example.com")
        .build()
        .unwrap();
    assert_eq!(
        homograph.allowed_origins()[0].as_str(),
        "https://xn--pp-6kc.example.com"
    );
    send(
        &homograph,
        request("POST", "/api", &[("origin", "https://app.example.com")]),
    )
    .await
    .assert_refused("origin_not_allowed");

    // Invisible characters would give a name no browser sends: refused at build time.
    for origin in [
        "https://ap\u{200b}p.example.com",
        "https://bü\u{00ad}cher.example",
        "https://bücher\u{200d}.example",
        "https://\u{202e}bücher.example",
        "https://bücher\u{fe0f}.example",
        "https://\u{feff}bücher.example",
    ] {
        let err = OriginAllowlistLayer::builder()
            .allow_origin(origin)
            .build()
            .unwrap_err();
        assert!(
            matches!(err, ConfigError::InvalidHost { .. }),
            "{origin:?}: {err:?}"
        );
    }
}

#[test]
fn wildcards_on_shared_hosting_are_refused() {
    for (origin, suffix) in [
        ("https://*.s3.amazonaws.com", "s3.amazonaws.com"),
        ("https://*.web.core.windows.net", "web.core.windows.net"),
        ("https://*.run.app", "run.app"),
        ("https://*.github.io", "github.io"),
        ("https://*.com", "com"),
    ] {
        let err = OriginAllowlistLayer::builder()
            .allow_origin(origin)
            .build()
            .unwrap_err();
        assert_eq!(
            err,
            ConfigError::WildcardOnPublicSuffix {
                origin: origin.into(),
                suffix: suffix.into()
            }
        );
    }
    // A customer's own name on such a platform may carry a wildcard.
    let layer = OriginAllowlistLayer::builder()
        .allow_origin("https://*.mybucket.s3.amazonaws.com")
        .build()
        .unwrap();
    assert!(layer.allowed_origins()[0].is_wildcard());
}

/// The whole Public Suffix List, private section included: `replit.app`, which the short list
/// this crate embedded before lacked, is treated exactly as `github.io`. A wildcard on it is
/// refused; a user's own name under it may carry one, and its exact origins are fine.
#[tokio::test]
async fn every_public_suffix_of_the_list_counts() {
    for suffix in ["github.io", "replit.app"] {
        let origin = format!("https://*.{suffix}");
        let err = OriginAllowlistLayer::builder()
            .allow_origin(origin.as_str())
            .build()
            .unwrap_err();
        assert_eq!(
            err,
            ConfigError::WildcardOnPublicSuffix {
                origin,
                suffix: suffix.into()
            }
        );

        let layer = OriginAllowlistLayer::builder()
            .allow_origins([
                format!("https://*.me.{suffix}"),
                format!("https://me.{suffix}"),
            ])
            .build()
            .unwrap();
        assert!(layer.allowed_origins()[0].is_wildcard());
        for allowed in [
            format!("https://me.{suffix}"),
            format!("https://a.me.{suffix}"),
        ] {
            send(&layer, request("POST", "/api", &[("origin", &allowed)]))
                .await
                .assert_passed();
        }
        for refused in [
            format!("https://other.{suffix}"),
            format!("https://a.b.me.{suffix}"),
            format!("https://{suffix}"),
        ] {
            send(&layer, request("POST", "/api", &[("origin", &refused)]))
                .await
                .assert_refused("origin_not_allowed");
        }
    }
    // A rule `*.run.app` makes every `<label>.run.app` a public suffix: a wildcard there
    // would match them all.
    assert!(matches!(
        OriginAllowlistLayer::new(["https://*.a.run.app"]).unwrap_err(),
        ConfigError::WildcardOnPublicSuffix { .. }
    ));
    assert!(
        OriginAllowlistLayer::new(["https://*.my-service.a.run.app"])
            .unwrap()
            .allowed_origins()[0]
            .is_wildcard()
    );
}

// ---------------------------------------------------------------------------------------
// Replaced rejections
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_replaced_rejection_cannot_grant_access() {
    let layer = OriginAllowlistLayer::builder()
        .allow_origin(APP)
        .on_rejection(RejectionResponder::new(|rejection: &Rejection| {
            let mut response = Response::new(Bytes::from(rejection.to_json()));
            *response.status_mut() = rejection.status();
            let headers = response.headers_mut();
            headers.insert("access-control-allow-origin", HeaderValue::from_static("*"));
            headers.insert(
                "access-control-allow-credentials",
                HeaderValue::from_static("true"),
            );
            headers.insert(
                "access-control-allow-private-network",
                HeaderValue::from_static("true"),
            );
            headers.insert("x-refused", HeaderValue::from_static("yes"));
            response
        }))
        .build()
        .unwrap();
    let sent = send(
        &layer,
        request("POST", "/api", &[("origin", "https://evil.example")]),
    )
    .await;
    sent.assert_refused("origin_not_allowed");
    assert_eq!(sent.header("x-refused"), Some("yes"));
}
