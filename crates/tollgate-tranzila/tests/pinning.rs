//! The access token goes to a configured upstream only: one test per numbered statement of
//! the crate docs' "Security considerations" (statement 6, the logs, is in
//! `pinning_logs.rs`, a binary of its own because it installs a tracing subscriber).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Request, Response, StatusCode};
use http_body_util::{Empty, Full};
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tollgate_core::{BoxError, ManualClock};
use tollgate_tranzila::{
    SignError, TranzilaCredentials, TranzilaSigningLayer, TranzilaVerifyLayer, Upstream,
};
use tower::{ServiceBuilder, ServiceExt, service_fn};

const NONCE: &str =
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f2021222324252627";
const SECRET: &str = "private_secret_demo";

fn credentials() -> TranzilaCredentials {
    TranzilaCredentials::new("pub_app_key_demo", SECRET).unwrap()
}

/// A signing layer over a recorder, counting the tokens made (nonces drawn) and the calls
/// that reached the inner service.
struct Probe {
    tokens: Arc<AtomicUsize>,
    calls: Arc<AtomicUsize>,
    layer: TranzilaSigningLayer,
}

impl Probe {
    fn new(upstreams: &[Upstream]) -> Self {
        let tokens = Arc::new(AtomicUsize::new(0));
        let made = tokens.clone();
        let mut layer = TranzilaSigningLayer::new(credentials(), upstreams[0].clone())
            .unwrap()
            .clock(ManualClock::new(1_700_000_000))
            .with_nonce_source(move || {
                made.fetch_add(1, Ordering::SeqCst);
                NONCE.to_owned()
            });
        for upstream in &upstreams[1..] {
            layer = layer.upstream(upstream.clone());
        }
        Self {
            tokens,
            calls: Arc::default(),
            layer,
        }
    }

    /// Sends `uri` with the given headers (name spelled as given) and returns the outcome.
    async fn send(&self, uri: &str, headers: &[(&str, &str)]) -> Result<(), SignError> {
        let mut request = Request::post(uri).body(Empty::<Bytes>::new()).unwrap();
        for (name, value) in headers {
            request.headers_mut().append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        let calls = self.calls.clone();
        let service = ServiceBuilder::new()
            .layer(self.layer.clone())
            .service(service_fn(move |request: Request<Empty<Bytes>>| {
                calls.fetch_add(1, Ordering::SeqCst);
                assert_eq!(request.headers()["x-tranzila-api-nonce"], NONCE);
                async { Ok::<_, BoxError>(()) }
            }));
        let (tokens, calls) = (self.tokens(), self.calls());
        match service.oneshot(request).await {
            Ok(()) => {
                assert_eq!(
                    (self.tokens(), self.calls()),
                    (tokens + 1, calls + 1),
                    "{uri}"
                );
                Ok(())
            }
            Err(error) => {
                // Refused before a token was made, and the inner service was not called.
                assert_eq!((self.tokens(), self.calls()), (tokens, calls), "{uri}");
                Err(error.downcast_ref::<SignError>().cloned().unwrap())
            }
        }
    }

    fn tokens(&self) -> usize {
        self.tokens.load(Ordering::SeqCst)
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

fn not_allowed(target: &str) -> Result<(), SignError> {
    Err(SignError::UpstreamNotAllowed {
        target: target.to_owned(),
    })
}

fn ambiguous(reason: &'static str) -> Result<(), SignError> {
    Err(SignError::AmbiguousTarget { reason })
}

const DISAGREES: &str = "the Host header disagrees with the request URI";

/// The attack: a token for `https://attacker.example/collect`.
#[tokio::test]
async fn attacker_host_gets_no_token() {
    let probe = Probe::new(&[Upstream::tranzila()]);
    let error = probe
        .send("https://attacker.example/collect", &[])
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "refusing to sign a Tranzila request to https://attacker.example: not a configured \
         upstream; the request was not sent"
    );
    assert_eq!((probe.tokens(), probe.calls()), (0, 0));
}

/// Statement 1: "The URI's scheme, host and effective port must match a configured upstream:
/// `http` is not `https`; `https://api.tranzila.com:443` is the same origin as
/// `https://api.tranzila.com`; `:8443` is another."
#[tokio::test]
async fn s1_scheme_host_and_effective_port_must_match() {
    let probe = Probe::new(&[Upstream::tranzila()]);
    let path = "/v1/transaction/credit_card/create";
    for uri in [
        format!("https://api.tranzila.com{path}"),
        format!("https://api.tranzila.com:443{path}"),
        format!("https://api.tranzila.com:{path}"),
        format!("HTTPS://API.Tranzila.COM{path}"),
    ] {
        assert_eq!(probe.send(&uri, &[]).await, Ok(()), "{uri}");
    }
    for (uri, target) in [
        (
            format!("http://api.tranzila.com{path}"),
            "http://api.tranzila.com",
        ),
        (
            format!("http://api.tranzila.com:443{path}"),
            "http://api.tranzila.com:443",
        ),
        (
            format!("https://api.tranzila.com:8443{path}"),
            "https://api.tranzila.com:8443",
        ),
        (
            format!("https://api.tranzila.com:80{path}"),
            "https://api.tranzila.com:80",
        ),
        ("https://tranzila.com/".to_owned(), "https://tranzila.com"),
        (
            "https://api.tranzila.com.attacker.example/".to_owned(),
            "https://api.tranzila.com.attacker.example",
        ),
        (
            "https://attacker.example/api.tranzila.com".to_owned(),
            "https://attacker.example",
        ),
    ] {
        assert_eq!(probe.send(&uri, &[]).await, not_allowed(target), "{uri}");
    }
    // An `http` upstream (a local mock) is the same rule the other way round.
    let mock = Probe::new(&[Upstream::parse("http://127.0.0.1:8080").unwrap()]);
    assert_eq!(
        mock.send("http://127.0.0.1:8080/v1/charge", &[]).await,
        Ok(())
    );
    assert_eq!(
        mock.send("https://127.0.0.1:8080/v1/charge", &[]).await,
        not_allowed("https://127.0.0.1:8080")
    );
    assert_eq!(
        mock.send("http://127.0.0.1/v1/charge", &[]).await,
        not_allowed("http://127.0.0.1")
    );
}

/// Statement 2: "Hosts compare as written, ignoring ASCII case; IPv6 literals compare as
/// addresses (`[0:0::1]` is `[::1]`). A trailing dot (`api.tranzila.com.`) is another host:
/// refused unless that spelling is configured. Nothing is resolved."
#[tokio::test]
async fn s2_hosts_compare_as_written_ipv6_as_addresses_trailing_dot_refused() {
    let probe = Probe::new(&[
        Upstream::tranzila(),
        Upstream::parse("http://[::1]:8080").unwrap(),
    ]);
    assert_eq!(probe.send("https://Api.Tranzila.Com/x", &[]).await, Ok(()));
    assert_eq!(
        probe.send("https://api.tranzila.com./x", &[]).await,
        not_allowed("https://api.tranzila.com.")
    );
    for uri in [
        "http://[::1]:8080/x",
        "http://[0:0::1]:8080/x",
        "http://[0000:0000:0000:0000:0000:0000:0000:0001]:8080/x",
    ] {
        assert_eq!(probe.send(uri, &[]).await, Ok(()), "{uri}");
    }
    for (uri, target) in [
        ("http://[::2]:8080/x", "http://[::2]:8080"),
        ("http://[::1]:8081/x", "http://[::1]:8081"),
        ("https://[::1]:8080/x", "https://[::1]:8080"),
        // Another name for the same machine is another host: nothing is resolved.
        ("http://127.0.0.1:8080/x", "http://127.0.0.1:8080"),
        ("http://localhost:8080/x", "http://localhost:8080"),
        (
            "http://[::ffff:127.0.0.1]:8080/x",
            "http://[::ffff:127.0.0.1]:8080",
        ),
    ] {
        assert_eq!(probe.send(uri, &[]).await, not_allowed(target), "{uri}");
    }
    // The dotted spelling is allowed when it is the one configured, and then only it.
    let dotted = Probe::new(&[Upstream::parse("https://api.tranzila.com.").unwrap()]);
    assert_eq!(
        dotted.send("https://api.tranzila.com./x", &[]).await,
        Ok(())
    );
    assert_eq!(
        dotted.send("https://api.tranzila.com/x", &[]).await,
        not_allowed("https://api.tranzila.com")
    );
}

/// Statement 3: "A relative URI, user info in the URI (`https://user:pass@...`) or a port that
/// is not a number from 0 to 65535 is refused."
#[tokio::test]
async fn s3_relative_user_info_and_invalid_ports_are_refused() {
    let probe = Probe::new(&[Upstream::tranzila()]);
    assert_eq!(
        probe
            .send("/v1/transaction", &[("host", "api.tranzila.com")])
            .await,
        not_allowed("a relative URI")
    );
    for uri in [
        "https://user:pass@api.tranzila.com/x",
        "https://api.tranzila.com@attacker.example/x",
        "https://:@api.tranzila.com/x",
    ] {
        let error = probe.send(uri, &[]).await.unwrap_err();
        assert!(
            matches!(error, SignError::UpstreamNotAllowed { .. }),
            "{uri}: {error:?}"
        );
        let text = format!("{error} {error:?}");
        assert!(
            !text.contains("user:pass") && !text.contains("pass@"),
            "{text}"
        );
    }
    for uri in [
        "https://api.tranzila.com:99999/x",
        "https://api.tranzila.com:65536/x",
    ] {
        assert_eq!(
            probe.send(uri, &[]).await,
            ambiguous("the request URI's port is not a valid port"),
            "{uri}"
        );
    }
}

/// Statement 4: "A `Host` header must be absent or name the same host and effective port as
/// the URI. Header names ignore case, so `Host` and `HOST` are one header, and two of them are
/// refused."
#[tokio::test]
async fn s4_host_header_must_agree_and_be_single() {
    let probe = Probe::new(&[
        Upstream::tranzila(),
        Upstream::parse("http://[::1]:8080").unwrap(),
    ]);
    let uri = "https://api.tranzila.com/v1/transaction/credit_card/create";
    for host in [
        ("host", "api.tranzila.com"),
        ("Host", "API.TRANZILA.COM:443"),
        ("HOST", "api.tranzila.com:"),
    ] {
        assert_eq!(probe.send(uri, &[host]).await, Ok(()), "{host:?}");
    }
    assert_eq!(
        probe
            .send("http://[::1]:8080/x", &[("Host", "[0:0::1]:8080")])
            .await,
        Ok(())
    );
    // An absolute URI to Tranzila whose Host header routes elsewhere (a CDN would follow the
    // Host header).
    for host in [
        ("HOST", "attacker.example"),
        ("Host", "api.tranzila.com:8443"),
        ("host", "api.tranzila.com."),
        ("host", "user@api.tranzila.com"),
        ("host", "api.tranzila.com:99999"),
        ("host", "[::1]:443"),
        ("host", ""),
    ] {
        assert_eq!(
            probe.send(uri, &[host]).await,
            ambiguous(DISAGREES),
            "{host:?}"
        );
    }
    assert_eq!(
        probe
            .send("http://[::1]:8080/x", &[("host", "[::2]:8080")])
            .await,
        ambiguous(DISAGREES)
    );
    // Duplicates, whatever the spelling of the name, and even when both agree.
    for hosts in [
        [("Host", "api.tranzila.com"), ("HOST", "attacker.example")],
        [("host", "api.tranzila.com"), ("Host", "api.tranzila.com")],
    ] {
        assert_eq!(
            probe.send(uri, &hosts).await,
            ambiguous("the request has several Host headers"),
            "{hosts:?}"
        );
    }
    // The URI decides; a Host header naming Tranzila cannot open another URI.
    assert_eq!(
        probe
            .send("https://attacker.example/", &[("host", "api.tranzila.com")])
            .await,
        not_allowed("https://attacker.example")
    );
}

/// A hyper server on `listener` answering 200 to everything, counting accepted connections.
fn counting_server(listener: tokio::net::TcpListener) -> Arc<AtomicUsize> {
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let answer = hyper::service::service_fn(|_request| async {
                    Ok::<_, std::convert::Infallible>(Response::new(Empty::<Bytes>::new()))
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), answer)
                    .await;
            });
        }
    });
    accepted
}

async fn counting_listener(addr: &str) -> Option<(SocketAddr, Arc<AtomicUsize>)> {
    let listener = tokio::net::TcpListener::bind(addr).await.ok()?;
    let local = listener.local_addr().unwrap();
    Some((local, counting_server(listener)))
}

/// Statement 5: "A refused request fails with [`SignError::UpstreamNotAllowed`] or
/// [`SignError::AmbiguousTarget`]: no token is made, the inner service (the HTTP client) is
/// not called, and no connection is opened." Through a real `hyper_util` client: an
/// unconfigured listener accepts no connection for any refused request, while the same client
/// reaches it when it is configured.
#[tokio::test(flavor = "multi_thread")]
async fn s5_refused_requests_open_no_connection() {
    let clock = ManualClock::new(1_700_000_000);
    let provider = common::serve(
        TranzilaVerifyLayer::new(credentials(), common::store(clock.clone()))
            .unwrap()
            .clock(clock.clone()),
    )
    .await;
    let (attacker, accepted) = counting_listener("127.0.0.1:0").await.unwrap();
    let v6 = counting_listener("[::1]:0").await;
    let pinned = TranzilaSigningLayer::new(credentials(), common::upstream(provider))
        .unwrap()
        .clock(clock.clone());
    let client = ServiceBuilder::new()
        .layer(pinned.clone())
        .service(common::client());
    let send = |uri: String, hosts: Vec<(&'static str, String)>| {
        let client = client.clone();
        async move {
            let mut request = Request::post(uri).body(Full::<Bytes>::default()).unwrap();
            for (name, value) in hosts {
                request
                    .headers_mut()
                    .append(name, HeaderValue::from_str(&value).unwrap());
            }
            client.oneshot(request).await
        }
    };

    // The configured upstream is reached and accepts the token.
    let response = send(format!("http://{provider}/v1/charge"), vec![])
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    let port = attacker.port();
    let mut refused = vec![
        (format!("http://{attacker}/collect"), vec![]),
        // The provider's port on another spelling of the host.
        (
            format!("http://localhost:{}/v1/charge", provider.port()),
            vec![],
        ),
        (format!("http://localhost.:{port}/collect"), vec![]),
        (format!("https://{attacker}/collect"), vec![]),
        // User info naming the provider, authority the attacker.
        (format!("http://{provider}@{attacker}/collect"), vec![]),
        // The attacker's URI with a Host header naming the provider.
        (
            format!("http://{attacker}/collect"),
            vec![("host", provider.to_string())],
        ),
        // The provider's URI with a Host header naming the attacker (a CDN would route it).
        (
            format!("http://{provider}/v1/charge"),
            vec![("host", attacker.to_string())],
        ),
        (
            format!("http://{provider}/v1/charge"),
            vec![
                ("Host", provider.to_string()),
                ("HOST", attacker.to_string()),
            ],
        ),
    ];
    if let Some((v6_addr, _)) = &v6 {
        refused.push((format!("http://{v6_addr}/collect"), vec![]));
    }
    for (uri, hosts) in refused {
        let error = send(uri.clone(), hosts.clone()).await.unwrap_err();
        let sign_error = error.downcast_ref::<SignError>();
        assert!(
            matches!(
                sign_error,
                Some(SignError::UpstreamNotAllowed { .. } | SignError::AmbiguousTarget { .. })
            ),
            "{uri} {hosts:?}: {error:?}"
        );
    }
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        0,
        "a refused request connected"
    );
    if let Some((_, v6_accepted)) = &v6 {
        assert_eq!(
            v6_accepted.load(Ordering::SeqCst),
            0,
            "a refused request connected"
        );
    } else {
        println!("NOTE: no IPv6 loopback here; the [::1] listener part was skipped");
    }

    // Control: the same client pinned to the counting listener does connect to it (so zero
    // above means "refused", not "the counter is broken").
    let to_attacker = ServiceBuilder::new()
        .layer(pinned.upstream(common::upstream(attacker)))
        .service(common::client());
    let response = to_attacker
        .oneshot(
            Request::post(format!("http://{attacker}/collect"))
                .body(Full::default())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
    if let Some((v6_addr, v6_accepted)) = v6 {
        let to_v6 = ServiceBuilder::new()
            .layer(
                TranzilaSigningLayer::new(
                    credentials(),
                    Upstream::parse(&format!("http://{v6_addr}")).unwrap(),
                )
                .unwrap(),
            )
            .service(common::client());
        let response = to_v6
            .oneshot(
                Request::post(format!("http://{v6_addr}/collect"))
                    .body(Full::default())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(v6_accepted.load(Ordering::SeqCst), 1);
    }
}

/// The layer is built with its upstream (there is no way to build one without); more are
/// added, repeats ignored, and `Debug` lists them without the secret.
#[test]
fn upstreams_are_part_of_the_configuration() {
    let layer = TranzilaSigningLayer::new(credentials(), Upstream::tranzila())
        .unwrap()
        .upstream(Upstream::tranzila())
        .upstream(Upstream::parse("http://127.0.0.1:8080").unwrap());
    assert_eq!(
        layer.upstreams(),
        [
            Upstream::tranzila(),
            Upstream::parse("http://127.0.0.1:8080").unwrap()
        ]
    );
    let debug = format!("{layer:?}");
    assert!(
        debug.contains(
            "upstreams: [Upstream(https://api.tranzila.com:443), Upstream(http://127.0.0.1:8080)]"
        ),
        "{debug}"
    );
    assert!(!debug.contains(SECRET), "{debug}");
    let service = tower::Layer::layer(&layer, ());
    assert!(!format!("{service:?}").contains(SECRET));
}
