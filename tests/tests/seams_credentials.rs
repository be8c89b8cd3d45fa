//! The credential invariant, over every outbound composition the docs and presets offer: no
//! credential (API key, access token, refreshed token, Tranzila token, payload signature) is
//! sent to, or logged for, any target but its configured upstream.
//!
//! A property test sends requests to targets an attacker (or a bug) could produce — other
//! hosts, look-alike spellings, other schemes and ports, user info, `Host` headers that
//! disagree or repeat — through each stack, and checks that the inner service (the wire) is
//! reached only when the target is the configured upstream, and that nothing logged holds a
//! secret. One test drives a real `hyper_util` client against a loopback listener that counts
//! connections. A binary of its own: it installs a tracing subscriber.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{HeaderMap, Request, Uri, header};
use http_body_util::Full;
use proptest::prelude::*;
use tollgate::core::{BoxError, BufferedBody, KeyRing, ManualClock, Secret};
use tollgate::headers::{Token, TokenHeaderLayer, Upstream};
use tollgate::signature::{BodyHmac, Canonical, SignRequestLayer};
use tollgate::transak::TransakOutbound;
use tollgate::tranzila::{TranzilaCredentials, TranzilaSigningLayer};
use tower::util::BoxCloneService;
use tower::{ServiceBuilder, ServiceExt, service_fn};

const HOST: &str = "api.provider.test";
const API_KEY: &str = "api-key-7Hq2-SECRET";
const ACCESS_TOKEN: &str = "access-token-Zp41-SECRET";
const REFRESHED: &str = "refreshed-token-Ke88-SECRET";
const TRANZILA_SECRET: &str = "tranzila-secret-Wm05-SECRET";
const SIGNING_KEY: &str = "signing-key-Qa31-SECRET";
const SECRETS: [&str; 5] = [
    API_KEY,
    ACCESS_TOKEN,
    REFRESHED,
    TRANZILA_SECRET,
    SIGNING_KEY,
];

type Stack = BoxCloneService<Request<Full<Bytes>>, (), BoxError>;

/// The wire: records every request that reached it.
#[derive(Clone, Default)]
struct Wire(Arc<Mutex<Vec<(Uri, HeaderMap)>>>);

impl Wire {
    fn service<B: Send + 'static>(
        &self,
    ) -> impl tower::Service<Request<B>, Response = (), Error = BoxError, Future: Send + 'static>
    + Clone
    + Send
    + 'static
    + use<B> {
        let seen = self.0.clone();
        service_fn(move |request: Request<B>| {
            seen.lock()
                .unwrap()
                .push((request.uri().clone(), request.headers().clone()));
            async { Ok::<_, BoxError>(()) }
        })
    }

    fn take(&self) -> Vec<(Uri, HeaderMap)> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

fn upstream() -> Upstream {
    Upstream::parse(&format!("https://{HOST}")).unwrap()
}

/// Every outbound composition the docs offer, each over `wire`.
fn stacks(wire: &Wire) -> Vec<(&'static str, Stack)> {
    let clock = ManualClock::new(1_700_000_000);
    let refresh = || async { Ok::<_, BoxError>(Token::new(Secret::from_string(REFRESHED))) };
    let ring = || KeyRing::single(Secret::from_string(SIGNING_KEY));
    vec![
        (
            "TransakOutbound preset",
            boxed(
                ServiceBuilder::new()
                    // x-user-ip needs a client IP; the property is about where credentials go.
                    .map_request(|mut request: Request<Full<Bytes>>| {
                        request
                            .extensions_mut()
                            .insert(tollgate::client_ip::ClientIp::new(
                                "203.0.113.7".parse().unwrap(),
                                tollgate::client_ip::IpOrigin::Other,
                            ));
                        request
                    })
                    .layer(
                        TransakOutbound::new(
                            upstream(),
                            Secret::from_string(API_KEY),
                            Secret::from_string(ACCESS_TOKEN),
                        )
                        .unwrap(),
                    )
                    .service(wire.service()),
            ),
        ),
        (
            "TokenHeaderLayer (refreshed access token)",
            boxed(
                ServiceBuilder::new()
                    .layer(TokenHeaderLayer::access_token(refresh, upstream()))
                    .service(wire.service()),
            ),
        ),
        (
            "TranzilaSigningLayer",
            boxed(
                ServiceBuilder::new()
                    .layer(
                        TranzilaSigningLayer::new(
                            TranzilaCredentials::new("app-key", TRANZILA_SECRET).unwrap(),
                            upstream(),
                        )
                        .unwrap()
                        .clock(clock.clone()),
                    )
                    .service(wire.service()),
            ),
        ),
        (
            "SignRequestLayer (OneKey)",
            boxed(
                ServiceBuilder::new()
                    .layer(
                        SignRequestLayer::new(BodyHmac::onekey(), ring(), upstream())
                            .unwrap()
                            .clock(clock.clone()),
                    )
                    .service(wire.service::<BufferedBody>()),
            ),
        ),
        (
            "SignRequestLayer (canonical)",
            boxed(
                ServiceBuilder::new()
                    .layer(
                        SignRequestLayer::new(Canonical::new(), ring(), upstream())
                            .unwrap()
                            .clock(clock),
                    )
                    .service(wire.service::<BufferedBody>()),
            ),
        ),
    ]
}

fn boxed<S>(service: S) -> Stack
where
    S: tower::Service<Request<Full<Bytes>>, Response = (), Error = BoxError>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    BoxCloneService::new(service)
}

/// Whether `uri` and `hosts` name exactly the configured upstream: https, the host (any case),
/// port 443, no user info, and every `Host` header (if any) that same host.
fn is_the_upstream(uri: &Uri, hosts: &[String]) -> bool {
    let Some(authority) = uri.authority() else {
        return false;
    };
    let same_host = |host: &str, port: Option<u16>| {
        host.eq_ignore_ascii_case(HOST) && port.is_none_or(|port| port == 443)
    };
    uri.scheme_str() == Some("https")
        && !authority.as_str().contains('@')
        && same_host(authority.host(), authority.port_u16())
        && hosts.len() <= 1
        && hosts.iter().all(|host| {
            host.parse::<http::uri::Authority>()
                .is_ok_and(|a| !a.as_str().contains('@') && same_host(a.host(), a.port_u16()))
        })
}

fn target() -> impl Strategy<Value = (String, Vec<String>)> {
    let scheme = prop_oneof![Just("https"), Just("http"), Just("HTTPS")];
    let host = prop_oneof![
        Just(HOST.to_owned()),
        Just("API.Provider.TEST".to_owned()),
        Just(format!("{HOST}.")),
        Just(format!("{HOST}.evil.test")),
        Just(format!("evil-{HOST}")),
        Just("evil.test".to_owned()),
        Just("127.0.0.1".to_owned()),
        Just("[::1]".to_owned()),
    ];
    let port = prop_oneof![Just(""), Just(":443"), Just(":8443"), Just(":80")];
    let userinfo = prop_oneof![
        Just(String::new()),
        Just("user:pass@".to_owned()),
        Just(format!("{HOST}@"))
    ];
    let path = prop_oneof![Just("/v1/pay"), Just("/"), Just("/v1/pay?x=1")];
    let host_header = prop_oneof![
        Just(vec![]),
        Just(vec![HOST.to_owned()]),
        Just(vec![format!("{HOST}:443")]),
        Just(vec!["evil.test".to_owned()]),
        Just(vec![HOST.to_owned(), "evil.test".to_owned()]),
        Just(vec![HOST.to_owned(), HOST.to_owned()]),
    ];
    (scheme, host, port, userinfo, path, host_header).prop_map(
        |(scheme, host, port, userinfo, path, hosts)| {
            (format!("{scheme}://{userinfo}{host}{port}{path}"), hosts)
        },
    )
}

#[test]
fn no_credential_goes_to_or_is_logged_for_any_target_but_its_upstream() {
    let logs = tollgate_test_support::LogCapture::new();
    let _capture = logs.install();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let wire = Wire::default();
    let stacks = stacks(&wire);
    let sent_to_upstream = AtomicUsize::new(0);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    runner
        .run(&target(), |(uri, hosts)| {
            let Ok(parsed) = uri.parse::<Uri>() else {
                return Ok(());
            };
            for (name, stack) in &stacks {
                let mut request = Request::post(parsed.clone())
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Full::new(Bytes::from_static(b"{\"amount\":1}")))
                    .unwrap();
                for host in &hosts {
                    request
                        .headers_mut()
                        .append(header::HOST, host.parse().unwrap());
                }
                let result = runtime.block_on(stack.clone().oneshot(request));
                let reached = wire.take();
                // Safety: whatever reached the wire targets exactly the upstream, as sent
                // (a layer may drop a caller's `Host`; then the URI decides).
                for (sent_uri, sent_headers) in &reached {
                    let sent_hosts: Vec<String> = sent_headers
                        .get_all(header::HOST)
                        .iter()
                        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                        .collect();
                    prop_assert!(
                        is_the_upstream(sent_uri, &sent_hosts),
                        "{}: credentials left for {} with Host {:?} (asked: {} {:?})",
                        name,
                        sent_uri,
                        sent_hosts,
                        uri,
                        hosts
                    );
                }
                prop_assert_eq!(result.is_ok(), !reached.is_empty(), "{}: {}", name, uri);
                // Liveness: the upstream itself is served.
                if is_the_upstream(&parsed, &hosts) {
                    prop_assert!(
                        !reached.is_empty(),
                        "{}: {} refused: {:?}",
                        name,
                        uri,
                        result.err()
                    );
                    sent_to_upstream.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok(())
        })
        .unwrap();
    // The generator reaches the upstream too, so the property is not vacuous.
    assert!(sent_to_upstream.load(Ordering::Relaxed) > 0);
    let logs = logs.text();
    assert!(logs.contains("not"), "refusals are logged: {logs:.200}");
    for secret in SECRETS {
        assert!(!logs.contains(secret), "{secret} was logged");
    }
    assert!(!logs.contains("user:pass"), "user info was logged");
}

/// Through a real `hyper_util` client: a refused target opens no connection at all.
#[test]
fn a_refused_target_opens_no_connection() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&accepted);
        tokio::spawn(async move {
            while let Ok((_socket, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
            }
        });
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<BufferedBody>();
        let signer = ServiceBuilder::new()
            .layer(
                SignRequestLayer::new(
                    BodyHmac::onekey(),
                    KeyRing::single(Secret::from_string(SIGNING_KEY)),
                    upstream(),
                )
                .unwrap(),
            )
            .service(client);
        // The listener is not the upstream: every request is refused before connecting.
        for target in [
            format!("http://{addr}/collect"),
            format!("http://{HOST}@{addr}/collect"),
        ] {
            let request = Request::post(target.as_str())
                .body(Full::new(Bytes::from_static(b"{}")))
                .unwrap();
            assert!(signer.clone().oneshot(request).await.is_err(), "{target}");
        }
        let mut request = Request::post(format!("http://{addr}/collect"))
            .body(Full::new(Bytes::from_static(b"{}")))
            .unwrap();
        request
            .headers_mut()
            .insert(header::HOST, HOST.parse().unwrap());
        assert!(signer.clone().oneshot(request).await.is_err());
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert_eq!(accepted.load(Ordering::SeqCst), 0);
    });
}
