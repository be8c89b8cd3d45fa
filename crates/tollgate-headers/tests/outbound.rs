//! Outbound stacks on a real `hyper_util` client against loopback mock providers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use common::{Mock, client_h2c, client_http1, pairs};
use http::{HeaderMap, HeaderName, HeaderValue, Request, StatusCode, Version, header};
use http_body_util::Full;
use tollgate_core::{BoxError, ManualClock, Secret};
use tollgate_headers::{
    HeaderError, HeaderHygieneLayer, RequireHeadersLayer, SecretHeaderLayer, Token,
    TokenHeaderLayer, Upstream,
};
use tollgate_test_support::LogCapture;
use tower::{Service, ServiceBuilder, ServiceExt};
use tower_http::set_header::SetRequestHeaderLayer;

const API_KEY: &str = "pk_live_5ecr3t-partner-key";

/// What a browser sent to the backend, to be copied wholesale into an outbound request.
fn browser_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in [
        ("host", "shop.example"),
        ("origin", "https://evil.example"),
        ("referer", "https://evil.example/pay"),
        ("cookie", "session=abc"),
        ("cookie2", "$Version=1"),
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-mode", "cors"),
        ("sec-fetch-dest", "empty"),
        ("sec-ch-ua", "\"Chromium\";v=\"126\""),
        ("sec-ch-ua-platform", "\"Linux\""),
        ("sec-gpc", "1"),
        ("dnt", "1"),
        ("priority", "u=1, i"),
        ("upgrade-insecure-requests", "1"),
        ("x-forwarded-for", "10.0.0.1"),
        ("x-forwarded-proto", "http"),
        ("forwarded", "for=10.0.0.1"),
        ("x-real-ip", "10.0.0.1"),
        ("true-client-ip", "10.0.0.1"),
        ("cf-connecting-ip", "10.0.0.1"),
        ("fastly-client-ip", "10.0.0.1"),
        ("x-client-ip", "10.0.0.1"),
        ("x-cluster-client-ip", "10.0.0.1"),
        ("x-original-forwarded-for", "10.0.0.1"),
        ("client-ip", "10.0.0.1"),
        ("x-requested-with", "XMLHttpRequest"),
        ("authorization", "Bearer browser-token"),
        ("proxy-authorization", "Basic Zm9vOmJhcg=="),
        ("user-agent", "Mozilla/5.0"),
        ("accept", "application/json"),
        ("accept-language", "he-IL"),
        ("content-type", "application/json"),
        ("x-api-key", "attacker-key"),
        ("connection", "keep-alive, x-trace"),
        ("x-trace", "abc"),
        ("keep-alive", "timeout=5"),
        ("te", "trailers"),
        ("upgrade", "websocket"),
        ("proxy-connection", "keep-alive"),
        ("transfer-encoding", "chunked"),
    ] {
        headers.append(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    headers
}

fn hygiene() -> HeaderHygieneLayer {
    HeaderHygieneLayer::server_to_server()
        .substitute(
            header::ORIGIN,
            HeaderValue::from_static("https://shop.example"),
        )
        .substitute(
            header::REFERER,
            HeaderValue::from_static("https://shop.example/"),
        )
        .substitute(
            header::USER_AGENT,
            HeaderValue::from_static("shop-backend/1.4.0"),
        )
}

fn api_key(mock: &Mock) -> SecretHeaderLayer {
    SecretHeaderLayer::api_key(Secret::from_string(API_KEY), mock.upstream()).unwrap()
}

fn post(uri: String, headers: HeaderMap) -> Request<Full<Bytes>> {
    let mut request = Request::post(uri)
        .body(Full::new(Bytes::from_static(br#"{"fiatAmount":100}"#)))
        .unwrap();
    *request.headers_mut() = headers;
    request
}

fn expected(mock: &Mock) -> Vec<(String, String)> {
    let mut expected: Vec<(String, String)> = [
        ("accept", "application/json"),
        ("accept-language", "he-IL"),
        ("content-length", "18"),
        ("content-type", "application/json"),
        ("origin", "https://shop.example"),
        ("referer", "https://shop.example/"),
        ("user-agent", "shop-backend/1.4.0"),
        ("x-api-key", API_KEY),
    ]
    .into_iter()
    .map(|(n, v)| (n.to_owned(), v.to_owned()))
    .collect();
    expected.push(("host".to_owned(), mock.addr.to_string()));
    expected.sort();
    expected
}

#[tokio::test]
async fn browser_headers_copied_wholesale_arrive_stripped_or_substituted() {
    let mock = Mock::http1().await;
    let client = ServiceBuilder::new()
        .layer(hygiene())
        .layer(api_key(&mock))
        .service(client_http1());

    let response = client
        .oneshot(post(
            format!("{}/api/v2/orders", mock.base()),
            browser_headers(),
        ))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    let seen = mock.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].version, Version::HTTP_11);
    assert_eq!(pairs(&seen[0].headers), expected(&mock));
}

/// The other order: the secret layer outside hygiene gives the same headers, except that a
/// `Host` header copied from the browser reaches the secret layer first. It disagrees with
/// the URI, so the wrong order is detected and nothing is sent.
#[tokio::test]
async fn secret_layer_outside_hygiene_gives_the_same_headers() {
    let mock = Mock::http1().await;
    let client = ServiceBuilder::new()
        .layer(api_key(&mock))
        .layer(hygiene())
        .service(client_http1());

    let error = client
        .clone()
        .oneshot(post(
            format!("{}/api/v2/orders", mock.base()),
            browser_headers(),
        ))
        .await
        .unwrap_err();
    assert!(matches!(
        error.downcast_ref::<HeaderError>(),
        Some(HeaderError::AmbiguousTarget {
            reason: "the Host header disagrees with the request URI",
            ..
        })
    ));
    assert!(mock.seen().is_empty());

    let mut headers = browser_headers();
    headers.remove(header::HOST);
    client
        .oneshot(post(format!("{}/api/v2/orders", mock.base()), headers))
        .await
        .unwrap();
    assert_eq!(pairs(&mock.seen()[0].headers), expected(&mock));
}

/// hyper_util's client sends a caller's `Host` header as it is, whatever the URI says: a
/// CDN in front of several sites would route the key to the site the `Host` names. The
/// secret layer refuses such a request; a `Host` that agrees with the URI passes.
#[tokio::test]
async fn host_header_disagreeing_with_the_uri_is_refused_on_the_wire() {
    let mock = Mock::http1().await;
    let client = ServiceBuilder::new()
        .layer(api_key(&mock))
        .service(client_http1());
    for host in [
        "evil.example".to_owned(),
        format!("127.0.0.1:{}", mock.addr.port() ^ 1),
        "localhost".to_owned(),
    ] {
        let request = Request::get(mock.base())
            .header(header::HOST, host.as_str())
            .body(Full::default())
            .unwrap();
        let error = client.clone().oneshot(request).await.unwrap_err();
        assert!(
            matches!(
                error.downcast_ref::<HeaderError>(),
                Some(HeaderError::AmbiguousTarget { .. })
            ),
            "{host}: {error}"
        );
        assert!(!format!("{error:?}").contains(API_KEY));
    }
    assert!(mock.seen().is_empty());

    let request = Request::get(mock.base())
        .header(header::HOST, mock.addr.to_string())
        .body(Full::default())
        .unwrap();
    client.oneshot(request).await.unwrap();
    assert_eq!(mock.seen()[0].headers["x-api-key"], API_KEY);
}

/// reqwest strips sensitive headers when a redirect changes host or port. Here a redirect
/// follower stacked outside the secret layer re-sends to the `Location`; the hop to another
/// port on the same host is refused and the other server sees nothing.
#[tokio::test]
async fn redirect_to_another_port_is_refused_at_the_hop() {
    let provider = Mock::http1().await;
    let other = Mock::http1().await;
    let mut client = ServiceBuilder::new()
        .layer(api_key(&provider))
        .service(client_http1());
    // First hop: the provider (here it answers 200; think of a 307 to the other port).
    let first = Request::get(provider.base()).body(Full::default()).unwrap();
    client.ready().await.unwrap().call(first).await.unwrap();
    // Second hop: the `Location`, same host, other port.
    let location = format!("{}/moved", other.base());
    let second = Request::get(location).body(Full::default()).unwrap();
    let error = client
        .ready()
        .await
        .unwrap()
        .call(second)
        .await
        .unwrap_err();
    match error.downcast_ref::<HeaderError>() {
        Some(HeaderError::UpstreamNotAllowed { target, .. }) => {
            assert_eq!(target, &other.base());
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(provider.seen().len(), 1);
    assert!(other.seen().is_empty());
}

/// `Connection: x-api-key, x-foo` removes `x-foo` but never the injected key, in both
/// stacking orders, with the denylist and the allowlist hygiene.
#[tokio::test]
async fn connection_naming_the_key_removes_the_other_header_only() {
    let mock = Mock::http1().await;
    let hygienes = [
        HeaderHygieneLayer::server_to_server(),
        HeaderHygieneLayer::only([header::ACCEPT]),
    ];
    for hygiene in hygienes {
        for secret_outside in [false, true] {
            let hygiene = hygiene.clone();
            let mut client = if secret_outside {
                ServiceBuilder::new()
                    .layer(api_key(&mock))
                    .layer(hygiene)
                    .service(client_http1())
                    .boxed_clone()
            } else {
                ServiceBuilder::new()
                    .layer(hygiene)
                    .layer(api_key(&mock))
                    .service(client_http1())
                    .boxed_clone()
            };
            let request = Request::get(mock.base())
                .header(header::CONNECTION, "x-api-key, x-foo")
                .header("x-foo", "1")
                .header("x-api-key", "attacker-key")
                .header(header::ACCEPT, "*/*")
                .body(Full::default())
                .unwrap();
            let response = client.ready().await.unwrap().call(request).await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);

            let seen = mock.seen().pop().unwrap();
            assert_eq!(
                pairs(&seen.headers),
                [
                    ("accept".to_owned(), "*/*".to_owned()),
                    ("host".to_owned(), mock.addr.to_string()),
                    ("x-api-key".to_owned(), API_KEY.to_owned()),
                ],
                "secret outside: {secret_outside}"
            );
        }
    }
}

#[tokio::test]
async fn client_supplied_key_is_replaced_never_duplicated() {
    let mock = Mock::http1().await;
    // Without any hygiene layer: the secret layer alone inserts, never appends.
    let client = ServiceBuilder::new()
        .layer(api_key(&mock))
        .service(client_http1());
    let request = Request::get(mock.base())
        .header("x-api-key", "attacker-key")
        .header("X-API-KEY", "second-copy")
        .body(Full::default())
        .unwrap();
    client.oneshot(request).await.unwrap();

    let seen = mock.seen().pop().unwrap();
    let values: Vec<_> = seen.headers.get_all("x-api-key").iter().collect();
    assert_eq!(values, [API_KEY]);
}

#[tokio::test]
async fn access_token_and_api_key_together() {
    let mock = Mock::http1().await;
    let client = ServiceBuilder::new()
        .layer(HeaderHygieneLayer::only([header::ACCEPT]))
        .layer(api_key(&mock))
        .layer(
            SecretHeaderLayer::access_token(Secret::from_string("eyJ-fixed"), mock.upstream())
                .unwrap(),
        )
        .service(client_http1());
    let request = Request::get(mock.base())
        .header("access-token", "from-browser")
        .header(header::ACCEPT, "*/*")
        .header(header::ORIGIN, "https://evil.example")
        .body(Full::default())
        .unwrap();
    client.oneshot(request).await.unwrap();
    let seen = mock.seen().pop().unwrap();
    assert_eq!(
        pairs(&seen.headers),
        [
            ("accept".to_owned(), "*/*".to_owned()),
            ("access-token".to_owned(), "eyJ-fixed".to_owned()),
            ("host".to_owned(), mock.addr.to_string()),
            ("x-api-key".to_owned(), API_KEY.to_owned()),
        ]
    );
}

#[tokio::test]
async fn other_authority_is_refused_and_its_mock_sees_nothing() {
    let provider = Mock::http1().await;
    let other = Mock::http1().await;
    let client = ServiceBuilder::new()
        .layer(hygiene())
        .layer(api_key(&provider))
        .service(client_http1());

    let port = other.addr.port();
    for (uri, target) in [
        (other.base(), format!("http://127.0.0.1:{port}")),
        // Same host, other scheme.
        (
            format!("https://127.0.0.1:{}/", provider.addr.port()),
            format!("https://127.0.0.1:{}", provider.addr.port()),
        ),
        // Same port, another name for the same machine.
        (
            format!("http://localhost:{}/", provider.addr.port()),
            format!("http://localhost:{}", provider.addr.port()),
        ),
        // User info hiding the real authority.
        (
            format!(
                "http://127.0.0.1:{}@127.0.0.1:{port}/",
                provider.addr.port()
            ),
            format!("http://127.0.0.1:{port}"),
        ),
    ] {
        let request = Request::get(uri.as_str()).body(Full::default()).unwrap();
        let error = client.clone().oneshot(request).await.unwrap_err();
        match error.downcast_ref::<HeaderError>() {
            Some(HeaderError::UpstreamNotAllowed {
                header,
                target: got,
            }) => {
                assert_eq!(header, "x-api-key");
                assert_eq!(got, &target, "{uri}");
            }
            other => panic!("{uri}: unexpected {other:?}"),
        }
        assert_eq!(
            error.to_string(),
            format!(
                "refusing to send the `x-api-key` header to {target}: not a configured upstream"
            )
        );
        assert!(!format!("{error:?}").contains(API_KEY));
    }
    assert!(other.seen().is_empty());
    assert!(provider.seen().is_empty());
    // A layer with no upstream at all cannot be built (the upstream is a constructor
    // argument; see the `compile_fail` example on `SecretHeaderLayer`).
}

/// The HTTP/2 path: the value handed to the h2 client is sensitive (h2 then encodes it as a
/// never-indexed literal), and the provider receives it once, exactly, over HTTP/2.
#[tokio::test]
async fn http2_sends_the_key_as_a_sensitive_never_indexed_value() {
    let mock = Mock::http2().await;
    let handed_to_client = Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = Arc::clone(&handed_to_client);
    let client = ServiceBuilder::new()
        .layer(hygiene())
        .layer(api_key(&mock))
        .map_request(move |request: Request<Full<Bytes>>| {
            let value = request.headers()["x-api-key"].clone();
            record.lock().unwrap().push(value);
            request
        })
        .service(client_h2c());

    for _ in 0..2 {
        let response = client
            .clone()
            .oneshot(post(mock.base(), browser_headers()))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.version(), Version::HTTP_2);
    }

    let handed = handed_to_client.lock().unwrap().clone();
    assert_eq!(handed.len(), 2);
    for value in &handed {
        assert!(value.is_sensitive());
        assert_eq!(value, API_KEY);
        assert_eq!(format!("{value:?}"), "Sensitive");
    }
    let seen = mock.seen();
    assert_eq!(seen.len(), 2);
    for seen in seen {
        assert_eq!(seen.version, Version::HTTP_2);
        let values: Vec<_> = seen.headers.get_all("x-api-key").iter().collect();
        assert_eq!(values, [API_KEY]);
        assert!(
            seen.headers
                .get(header::ORIGIN)
                .is_some_and(|o| o == "https://shop.example")
        );
        assert!(seen.headers.get(header::COOKIE).is_none());
    }
}

#[tokio::test(flavor = "current_thread")]
async fn the_key_never_appears_in_debug_or_tracing_output() {
    let capture = LogCapture::new();
    let _guard = capture.install();

    let mock = Mock::http1().await;
    let other = Mock::http1().await;
    let layer = api_key(&mock);
    let debug_seen = Arc::new(std::sync::Mutex::new(String::new()));
    let record = Arc::clone(&debug_seen);
    let client = ServiceBuilder::new()
        .layer(hygiene())
        .layer(layer.clone())
        .map_request(move |request: Request<Full<Bytes>>| {
            *record.lock().unwrap() = format!("{request:?}");
            tracing::debug!(?request, "about to send");
            request
        })
        .service(client_http1());

    client
        .clone()
        .oneshot(post(mock.base(), browser_headers()))
        .await
        .unwrap();
    let error = client
        .clone()
        .oneshot(post(other.base(), browser_headers()))
        .await
        .unwrap_err();

    let logs = capture.text();
    assert!(
        logs.contains("removed=host, cookie, cookie2, sec-fetch-site, "),
        "{logs}"
    );
    assert!(
        logs.contains("replaced=origin, referer, user-agent added="),
        "{logs}"
    );
    // Hygiene runs first and removes the browser's `x-api-key`; the secret layer then adds
    // the backend's own (it replaced the browser's copy before hygiene removed it).
    assert!(logs.contains("proxy-authorization, x-api-key, "), "{logs}");
    assert!(logs.contains("header=x-api-key replaced=false"), "{logs}");
    assert!(logs.contains("refused to send a secret header"), "{logs}");
    assert!(!logs.contains(API_KEY), "{logs}");
    // Values from the browser are not logged either.
    assert!(!logs.contains("session=abc"), "{logs}");

    let request_debug = debug_seen.lock().unwrap().clone();
    assert!(
        request_debug.contains("\"x-api-key\": Sensitive"),
        "{request_debug}"
    );
    for text in [
        request_debug,
        format!("{layer:?}"),
        format!("{client:?}"),
        format!("{error:?}"),
        error.to_string(),
    ] {
        assert!(!text.contains(API_KEY), "{text}");
    }
    assert_eq!(
        format!("{layer:?}"),
        format!(
            "SecretHeaderLayer(SecretHeader {{ name: \"x-api-key\", value: \"Secret([REDACTED])\", upstreams: [Upstream(http://127.0.0.1:{})] }})",
            mock.addr.port()
        )
    );
}

#[tokio::test]
async fn access_token_from_a_provider_is_cached_until_expiry() {
    let mock = Mock::http1().await;
    let clock = ManualClock::new(1_700_000_000);
    let fetches = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&fetches);
    let token_clock = clock.clone();
    let provider = move || {
        let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
        let now = tollgate_core::Clock::now_unix(&token_clock);
        async move {
            Ok::<_, BoxError>(
                Token::new(Secret::from_string(format!("token-{n}"))).expires_at(now + 3600),
            )
        }
    };
    let tokens = TokenHeaderLayer::access_token(provider, mock.upstream())
        .clock(clock.clone())
        .refresh_margin(60);
    let client = ServiceBuilder::new()
        .layer(HeaderHygieneLayer::server_to_server())
        .layer(tokens.clone())
        .service(client_http1());

    let call = |uri: String| {
        let client = client.clone();
        async move {
            client
                .oneshot(
                    Request::get(uri)
                        .header("access-token", "browser")
                        .body(Full::default())
                        .unwrap(),
                )
                .await
        }
    };

    call(mock.base()).await.unwrap();
    call(mock.base()).await.unwrap();
    assert_eq!(fetches.load(Ordering::SeqCst), 1);

    // 60 s before expiry the token is still used; inside the margin it is refreshed.
    clock.advance(3600 - 61);
    call(mock.base()).await.unwrap();
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
    clock.advance(1);
    call(mock.base()).await.unwrap();
    assert_eq!(fetches.load(Ordering::SeqCst), 2);

    // A forced refresh.
    tokens.invalidate();
    call(mock.base()).await.unwrap();
    assert_eq!(fetches.load(Ordering::SeqCst), 3);

    let tokens_seen: Vec<_> = mock
        .seen()
        .iter()
        .map(|seen| {
            let values: Vec<_> = seen.headers.get_all("access-token").iter().collect();
            assert_eq!(values.len(), 1);
            values[0].to_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(
        tokens_seen,
        ["token-1", "token-1", "token-1", "token-2", "token-3"]
    );

    // A wrong authority is refused before any token is fetched.
    let other = Mock::http1().await;
    tokens.invalidate();
    let error = call(other.base()).await.unwrap_err();
    assert!(matches!(
        error.downcast_ref::<HeaderError>(),
        Some(HeaderError::UpstreamNotAllowed { .. })
    ));
    assert_eq!(fetches.load(Ordering::SeqCst), 3);
    assert!(other.seen().is_empty());
}

#[tokio::test]
async fn failing_token_provider_sends_nothing() {
    let mock = Mock::http1().await;
    let provider = || async { Err::<Token, BoxError>("refresh endpoint answered 401".into()) };
    let client = ServiceBuilder::new()
        .layer(TokenHeaderLayer::access_token(provider, mock.upstream()))
        .service(client_http1());
    let error = client
        .oneshot(Request::get(mock.base()).body(Full::default()).unwrap())
        .await
        .unwrap_err();
    let header_error = error.downcast_ref::<HeaderError>().unwrap();
    assert!(matches!(header_error, HeaderError::TokenUnavailable { .. }));
    assert_eq!(
        header_error.to_string(),
        "no token could be fetched for the `access-token` header"
    );
    assert_eq!(
        std::error::Error::source(header_error).unwrap().to_string(),
        "refresh endpoint answered 401"
    );
    assert!(mock.seen().is_empty());
}

/// OneKey: `Content-Type` and `User-Agent` are required; a default `User-Agent` fills in
/// (tower-http's `SetRequestHeaderLayer::if_not_present`, which replaced this crate's
/// `DefaultHeaderLayer`).
#[tokio::test]
async fn onekey_required_headers() {
    let mock = Mock::http1().await;
    let client = ServiceBuilder::new()
        .layer(HeaderHygieneLayer::server_to_server())
        .layer(SetRequestHeaderLayer::if_not_present(
            header::USER_AGENT,
            HeaderValue::from_static("shop-backend/1.4.0"),
        ))
        .layer(RequireHeadersLayer::onekey())
        .service(client_http1());

    let error = client
        .clone()
        .oneshot(Request::post(mock.base()).body(Full::default()).unwrap())
        .await
        .unwrap_err();
    match error.downcast_ref::<HeaderError>() {
        Some(HeaderError::MissingHeader { name }) => assert_eq!(name, header::CONTENT_TYPE),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(
        error.to_string(),
        "the required header `content-type` is missing"
    );
    assert!(mock.seen().is_empty());

    let request = Request::post(mock.base())
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from_static(b"{}")))
        .unwrap();
    client.oneshot(request).await.unwrap();
    let seen = mock.seen().pop().unwrap();
    assert_eq!(seen.headers[header::USER_AGENT], "shop-backend/1.4.0");
    assert_eq!(seen.headers[header::CONTENT_TYPE], "application/json");
}

#[test]
fn upstream_parse_errors_are_typed() {
    assert!(Upstream::parse("api-gateway.transak.com").is_err());
    assert_eq!(
        Upstream::parse("https://api-gateway.transak.com").unwrap(),
        Upstream::transak()
    );
}

/// HPACK (RFC 7541) string for the name `x-api-key`: Huffman flag + length 7, then the
/// Huffman code of the 9 characters.
const X_API_KEY_HPACK_NAME: [u8; 8] = [0x87, 0xf2, 0xb0, 0xeb, 0x32, 0xdd, 0x4b, 0xeb];

/// The same check on the wire: a recording proxy between the h2c client and the provider
/// sees the key sent as "literal never indexed" (first byte `0001 0000`, new name) on every
/// request, while a plain (non-sensitive) value of the same header is sent once as "literal
/// with incremental indexing" (`0100 0000`) and then from the dynamic table.
#[tokio::test]
async fn http2_wire_bytes_use_the_never_indexed_representation() {
    async fn two_requests<S>(client: S, base: &str)
    where
        S: Service<Request<Full<Bytes>>, Response = http::Response<hyper::body::Incoming>> + Clone,
        S::Error: std::fmt::Debug,
    {
        for _ in 0..2 {
            let request = Request::get(base).body(Full::default()).unwrap();
            let response = client.clone().oneshot(request).await.unwrap();
            assert_eq!(response.version(), Version::HTTP_2);
        }
    }
    let never_indexed: Vec<u8> = [&[0x10][..], &X_API_KEY_HPACK_NAME].concat();
    let incremental: Vec<u8> = [&[0x40][..], &X_API_KEY_HPACK_NAME].concat();

    let mock = Mock::http2().await;
    let proxy = common::RecordingProxy::start(mock.addr).await;
    let upstream = Upstream::parse(&proxy.base()).unwrap();
    let secret = ServiceBuilder::new()
        .layer(SecretHeaderLayer::api_key(Secret::from_string(API_KEY), upstream).unwrap())
        .service(client_h2c());
    two_requests(secret, &proxy.base()).await;
    assert_eq!(proxy.count(&never_indexed), 2);
    assert_eq!(proxy.count(&incremental), 0);

    // Control: the same header without the sensitive flag is indexed.
    let plain_proxy = common::RecordingProxy::start(mock.addr).await;
    let plain = ServiceBuilder::new()
        .map_request(|mut request: Request<Full<Bytes>>| {
            request
                .headers_mut()
                .insert("x-api-key", HeaderValue::from_static(API_KEY));
            request
        })
        .service(client_h2c());
    two_requests(plain, &plain_proxy.base()).await;
    assert_eq!(plain_proxy.count(&never_indexed), 0);
    assert_eq!(plain_proxy.count(&incremental), 1);

    let seen = mock.seen();
    assert_eq!(seen.len(), 4);
    assert!(seen.iter().all(|s| s.headers["x-api-key"] == API_KEY));
}
