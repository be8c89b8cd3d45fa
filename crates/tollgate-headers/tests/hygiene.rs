//! Outbound hygiene rules, run on header maps through `HeaderHygieneLayer::apply` (the same
//! rules the layer runs on each request).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use tollgate_headers::{HeaderHygieneLayer, InjectedHeaders};

fn map(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in pairs {
        headers.append(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    headers
}

fn names(headers: &HeaderMap) -> Vec<&str> {
    let mut names: Vec<_> = headers.keys().map(HeaderName::as_str).collect();
    names.sort_unstable();
    names
}

#[test]
fn keep_overrides_preset_and_hop_by_hop() {
    let hygiene = HeaderHygieneLayer::server_to_server()
        .keep(header::TE)
        .keep(header::AUTHORIZATION);
    let mut headers = map(&[
        ("te", "trailers"),
        ("authorization", "Bearer backend"),
        ("transfer-encoding", "chunked"),
        ("referer", "https://a.example/"),
    ]);
    let report = hygiene.apply(&mut headers, None);
    assert_eq!(names(&headers), ["authorization", "te"]);
    assert_eq!(
        report.removed(),
        [header::TRANSFER_ENCODING, header::REFERER]
    );
    assert!(report.replaced().is_empty() && report.added().is_empty());
}

#[test]
fn strip_and_keep_are_last_wins() {
    let x_foo = HeaderName::from_static("x-foo");
    let stripped = HeaderHygieneLayer::hop_by_hop()
        .keep(x_foo.clone())
        .strip(x_foo.clone());
    let mut headers = map(&[("x-foo", "1")]);
    stripped.apply(&mut headers, None);
    assert!(headers.is_empty());

    let kept = HeaderHygieneLayer::hop_by_hop()
        .strip(x_foo.clone())
        .keep(x_foo);
    let mut headers = map(&[("x-foo", "1")]);
    kept.apply(&mut headers, None);
    assert_eq!(names(&headers), ["x-foo"]);

    let prefixed = HeaderHygieneLayer::hop_by_hop().strip_prefix("X-Amz-");
    let mut headers = map(&[("x-amz-date", "1"), ("x-amzz", "2")]);
    prefixed.apply(&mut headers, None);
    assert_eq!(names(&headers), ["x-amzz"]);
}

#[test]
fn injected_headers_are_never_removed_nor_substituted() {
    let mut extensions = http::Extensions::new();
    InjectedHeaders::record(&mut extensions, header::AUTHORIZATION);
    InjectedHeaders::record(&mut extensions, HeaderName::from_static("x-api-key"));
    let injected = extensions.get::<InjectedHeaders>();

    let hygiene = HeaderHygieneLayer::only([header::ACCEPT])
        .substitute(header::AUTHORIZATION, HeaderValue::from_static("other"))
        .substitute(header::USER_AGENT, HeaderValue::from_static("backend/1"));
    let mut headers = map(&[
        ("connection", "x-api-key, authorization, x-foo"),
        ("x-api-key", "secret"),
        ("authorization", "Bearer backend"),
        ("x-foo", "1"),
        ("accept", "*/*"),
    ]);
    let report = hygiene.apply(&mut headers, injected);
    assert_eq!(
        names(&headers),
        ["accept", "authorization", "user-agent", "x-api-key"]
    );
    assert_eq!(headers[header::AUTHORIZATION], "Bearer backend");
    assert_eq!(
        report.removed(),
        [header::CONNECTION, HeaderName::from_static("x-foo")]
    );
    assert_eq!(report.added(), [header::USER_AGENT]);

    // Without the extension the same headers go.
    let mut headers = map(&[("connection", "x-api-key"), ("x-api-key", "from-browser")]);
    hygiene.apply(&mut headers, None);
    assert_eq!(names(&headers), ["authorization", "user-agent"]);
}

#[test]
fn substitute_replaces_every_value_and_reports_it() {
    let hygiene = HeaderHygieneLayer::server_to_server()
        .substitute(
            header::ORIGIN,
            HeaderValue::from_static("https://first.example"),
        )
        .substitute(
            header::ORIGIN,
            HeaderValue::from_static("https://shop.example"),
        );
    let mut headers = map(&[
        ("origin", "https://a.example"),
        ("origin", "https://b.example"),
    ]);
    let report = hygiene.apply(&mut headers, None);
    let values: Vec<_> = headers.get_all(header::ORIGIN).iter().collect();
    assert_eq!(values, ["https://shop.example"]);
    assert_eq!(report.replaced(), [header::ORIGIN]);
    assert!(report.removed().is_empty());
    let debug = format!("{hygiene:?}");
    assert!(debug.contains("substitutes: [\"origin\"]"), "{debug}");
}

/// Go's `TestReverseProxy`: the hop-by-hop headers of the request are gone, `TE:
/// trailers` is forwarded only where it is kept (gRPC), end-to-end headers pass.
#[test]
fn go_reverse_proxy_hop_by_hop_headers() {
    let request = || {
        map(&[
            ("connection", "close"),
            ("keep-alive", "timeout=5, max=1000"),
            ("proxy-connection", "keep-alive"),
            ("te", "trailers"),
            ("trailer", "x-checksum"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "foo"),
            ("proxy-authenticate", "Basic"),
            ("proxy-authorization", "Basic Zm9vOmJhcg=="),
            ("x-foo", "bar"),
            ("content-type", "application/grpc"),
        ])
    };
    let mut headers = request();
    let report = HeaderHygieneLayer::hop_by_hop().apply(&mut headers, None);
    assert_eq!(names(&headers), ["content-type", "x-foo"]);
    assert_eq!(report.removed().len(), 9);

    let mut headers = request();
    HeaderHygieneLayer::hop_by_hop()
        .keep(header::TE)
        .apply(&mut headers, None);
    assert_eq!(names(&headers), ["content-type", "te", "x-foo"]);
    assert_eq!(headers[header::TE], "trailers");
}

/// Go's `TestReverseProxyStripHeadersPresentInConnection` and
/// `TestReverseProxyStripEmptyConnection`: several `Connection` fields, an empty one,
/// tokens in any case.
#[test]
fn go_headers_named_in_several_connection_fields_are_stripped() {
    let mut headers = map(&[
        ("connection", ""),
        ("connection", "Upgrade, X-Fake-Connection-Token"),
        ("connection", "X-Some-Conn-Header"),
        ("x-fake-connection-token", "should be deleted"),
        ("x-some-conn-header", "should be deleted"),
        ("upgrade", "websocket"),
        ("x-end-to-end", "kept"),
    ]);
    let report = HeaderHygieneLayer::hop_by_hop().apply(&mut headers, None);
    assert_eq!(names(&headers), ["x-end-to-end"]);
    let mut removed: Vec<_> = report.removed().iter().map(HeaderName::as_str).collect();
    removed.sort_unstable();
    assert_eq!(
        removed,
        [
            "connection",
            "upgrade",
            "x-fake-connection-token",
            "x-some-conn-header"
        ]
    );
}

#[test]
fn connection_list_syntax_whitespace_case_and_empty_elements() {
    for connection in [
        "close, X-Foo",
        "X-FOO",
        "  ,x-foo ,\t, ,X-Bar,,",
        "\tx-foo\t,keep-alive",
        ",,,x-foo",
    ] {
        let mut headers = map(&[("x-foo", "1"), ("x-bar", "2"), ("accept", "*/*")]);
        headers.insert(header::CONNECTION, HeaderValue::from_static(connection));
        headers.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        HeaderHygieneLayer::hop_by_hop().apply(&mut headers, None);
        assert!(!headers.contains_key("x-foo"), "{connection:?}");
        assert!(!headers.contains_key(header::CONNECTION), "{connection:?}");
        assert!(!headers.contains_key("keep-alive"), "{connection:?}");
        assert!(headers.contains_key(header::ACCEPT), "{connection:?}");
        assert_eq!(
            headers.contains_key("x-bar"),
            !connection.contains("X-Bar"),
            "{connection:?}"
        );
    }
}

/// Tokens that are not header names name nothing: no panic, nothing else removed.
#[test]
fn invalid_tokens_in_connection_are_ignored() {
    let mut headers = map(&[
        ("x-foo", "1"),
        ("x-bar", "2"),
        ("x-baz", "3"),
        ("x-qux", "4"),
    ]);
    headers.insert(
        header::CONNECTION,
        HeaderValue::from_static("\"x-foo\", x foo, x-bar;q=1, (x-baz), x-qux, :, @"),
    );
    headers.append(
        header::CONNECTION,
        HeaderValue::from_bytes(b"\xff\xfe, x-\x80").unwrap(),
    );
    HeaderHygieneLayer::hop_by_hop().apply(&mut headers, None);
    assert_eq!(names(&headers), ["x-bar", "x-baz", "x-foo"]);
}

/// A kept header survives its nomination in `Connection` (the configuration is the
/// backend's decision; the caller's `Connection` is not).
#[test]
fn kept_header_survives_connection_nomination() {
    let mut headers = map(&[
        ("connection", "content-type, x-foo"),
        ("content-type", "application/json"),
        ("x-foo", "1"),
    ]);
    HeaderHygieneLayer::only([header::CONTENT_TYPE, HeaderName::from_static("x-foo")])
        .apply(&mut headers, None);
    assert_eq!(names(&headers), ["content-type", "x-foo"]);
}

/// A browser's WebSocket handshake and an h2c upgrade go out as plain requests.
#[test]
fn upgrade_requests_are_downgraded_to_plain_requests() {
    let mut websocket = map(&[
        ("connection", "keep-alive, Upgrade"),
        ("upgrade", "websocket"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("sec-websocket-version", "13"),
        ("sec-websocket-extensions", "permessage-deflate"),
        ("accept", "*/*"),
    ]);
    HeaderHygieneLayer::server_to_server().apply(&mut websocket, None);
    assert_eq!(names(&websocket), ["accept"]);

    let mut h2c = map(&[
        ("connection", "Upgrade, HTTP2-Settings"),
        ("upgrade", "h2c"),
        ("http2-settings", "AAMAAABkAAQAAP__"),
        ("accept", "*/*"),
    ]);
    HeaderHygieneLayer::hop_by_hop().apply(&mut h2c, None);
    assert_eq!(names(&h2c), ["accept"]);

    // Kept explicitly, the upgrade passes (a proxy that means to tunnel).
    let mut websocket = map(&[
        ("connection", "Upgrade"),
        ("upgrade", "websocket"),
        ("accept", "*/*"),
    ]);
    HeaderHygieneLayer::hop_by_hop()
        .keep(header::CONNECTION)
        .keep(header::UPGRADE)
        .apply(&mut websocket, None);
    assert_eq!(names(&websocket), ["accept", "connection", "upgrade"]);
}

/// `TE` kept for gRPC: only the `trailers` token goes out; `Connection: te` (which RFC
/// 9110 section 10.1.4 asks senders of `TE` to add) does not remove a kept `TE`.
#[test]
fn kept_te_is_reduced_to_trailers() {
    let grpc = HeaderHygieneLayer::only([header::CONTENT_TYPE, header::TE]);
    for (values, expected) in [
        (&["trailers"][..], Some("trailers")),
        (&["gzip", "trailers"], Some("trailers")),
        (&["deflate;q=0.5, Trailers;q=1"], Some("trailers")),
        (&["gzip, deflate"], None),
        (&["trailers-please"], None),
    ] {
        let mut headers = map(&[("connection", "TE"), ("content-type", "application/grpc")]);
        for value in values {
            headers.append(header::TE, HeaderValue::from_str(value).unwrap());
        }
        let report = grpc.apply(&mut headers, None);
        let te: Vec<_> = headers.get_all(header::TE).iter().collect();
        match expected {
            Some(value) => assert_eq!(te, [value], "{values:?}"),
            None => {
                assert!(te.is_empty(), "{values:?}");
                assert!(report.removed().contains(&header::TE));
            }
        }
        assert!(!headers.contains_key(header::CONNECTION));
    }
    // Not kept: TE never goes out, trailers or not.
    let mut headers = map(&[("te", "trailers")]);
    HeaderHygieneLayer::server_to_server().apply(&mut headers, None);
    assert!(headers.is_empty());
}

/// tower-http's `SetRequestHeader` modes: `substitute` overrides (every value replaced),
/// never appends; a sensitive substitute stays sensitive.
#[test]
fn substitute_is_an_override_and_keeps_sensitivity() {
    let mut value = HeaderValue::from_static("Bearer backend-owned");
    value.set_sensitive(true);
    let hygiene = HeaderHygieneLayer::server_to_server().substitute(header::AUTHORIZATION, value);
    let mut headers = map(&[
        ("authorization", "Bearer one"),
        ("authorization", "Bearer two"),
    ]);
    hygiene.apply(&mut headers, None);
    let values: Vec<_> = headers.get_all(header::AUTHORIZATION).iter().collect();
    assert_eq!(values, ["Bearer backend-owned"]);
    assert!(values[0].is_sensitive());
    assert!(!format!("{hygiene:?}").contains("backend-owned"));
}

/// tower-http's `SetSensitiveRequestHeadersLayer`, applied where hygiene runs: every
/// value of a credential header, kept or injected or set by an outer layer, leaves
/// marked sensitive; other headers are not marked.
#[test]
fn credential_values_leave_marked_sensitive() {
    let mut extensions = http::Extensions::new();
    InjectedHeaders::record(&mut extensions, HeaderName::from_static("x-partner"));
    let hygiene = HeaderHygieneLayer::hop_by_hop().keep(header::AUTHORIZATION);
    let mut headers = map(&[
        ("authorization", "Bearer one"),
        ("authorization", "Bearer two"),
        ("cookie", "a=b"),
        ("x-api-key", "k"),
        ("access-token", "t"),
        ("x-partner", "p"),
        ("accept", "*/*"),
    ]);
    let report = hygiene.apply(&mut headers, extensions.get());
    assert!(report.is_empty());
    for (name, value) in &headers {
        assert_eq!(value.is_sensitive(), name != header::ACCEPT, "{name}");
    }
    assert_eq!(headers.len(), 7);
}

/// One copy-on-write rule (`Arc::make_mut`): a setter on a clone changes the clone only, and
/// a service built before keeps the rules it was built with.
#[test]
fn setters_on_a_shared_layer_change_only_that_layer() {
    use tower::Layer;

    let base = HeaderHygieneLayer::only([header::ACCEPT]);
    let service = base.layer(());
    let wider = base.clone().keep(header::CONTENT_TYPE);
    let headers = || map(&[("accept", "*/*"), ("content-type", "application/json")]);

    let mut narrow = headers();
    base.apply(&mut narrow, None);
    assert_eq!(names(&narrow), ["accept"]);
    let mut wide = headers();
    wider.apply(&mut wide, None);
    assert_eq!(names(&wide), ["accept", "content-type"]);
    assert!(format!("{service:?}").contains("keep: [\"accept\"]"));

    let inbound = tollgate_headers::InboundHygieneLayer::backend_derived();
    let relaxed = inbound.clone().allow(HeaderName::from_static("x-user-ip"));
    let mut strict = map(&[("x-user-ip", "6.6.6.6")]);
    assert_eq!(inbound.apply(&mut strict, None), ["x-user-ip"]);
    let mut loose = map(&[("x-user-ip", "6.6.6.6")]);
    assert!(relaxed.apply(&mut loose, None).is_empty());
}
