//! "Security considerations", pinning: a payload or canonical signature is a credential for
//! that exact request at the real provider, so `SignRequestLayer` signs and sends only requests
//! that go to an upstream it was built with. Each test quotes the statement it proves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{HeaderValue, Request, Response, header};
use http_body::Body;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tollgate_core::{BoxError, BufferedBody, Key, KeyRing, ManualClock, Secret, Upstream};
use tollgate_signature::{BodyHmac, Canonical, Scheme, SignError, SignRequestLayer};
use tower::{ServiceBuilder, ServiceExt, service_fn};

use common::Chunks;

const SECRET: &str = "cashout_secret_key";
const T: u64 = 1_700_000_000;
const JSON: &[u8] = br#"{"amount":"100.00","currency":"USD"}"#;
const PROVIDER_URL: &str = "https://api.onekey.example/v1/cashout";

fn ring() -> KeyRing {
    KeyRing::single(Secret::from_string(SECRET))
}

fn provider() -> Upstream {
    Upstream::parse("https://api.onekey.example").unwrap()
}

/// The layer under test, configured for `https://api.onekey.example` only.
fn signing(scheme: impl Scheme) -> SignRequestLayer {
    SignRequestLayer::new(scheme, ring(), provider())
        .unwrap()
        .clock(ManualClock::new(T))
}

/// The `SignError` inside a boxed error.
fn sign_error(error: &BoxError) -> &SignError {
    error
        .downcast_ref::<SignError>()
        .unwrap_or_else(|| panic!("not a SignError: {error}"))
}

/// Asserts `error` is `UpstreamNotAllowed` naming `target`, and that its texts hold no path,
/// query or user info.
fn assert_not_allowed(error: &BoxError, target: &str) {
    match sign_error(error) {
        SignError::UpstreamNotAllowed { target: named } => assert_eq!(named, target),
        other => panic!("expected UpstreamNotAllowed {{ {target} }}, got {other:?}"),
    }
    assert_eq!(
        error.to_string(),
        format!(
            "refusing to sign a request to {target}: not a configured upstream; the request was \
             not sent"
        )
    );
}

/// Asserts `error` is `AmbiguousTarget` with `reason`.
fn assert_ambiguous(error: &BoxError, reason: &str) {
    match sign_error(error) {
        SignError::AmbiguousTarget { reason: named } => assert_eq!(*named, reason),
        other => panic!("expected AmbiguousTarget {{ {reason} }}, got {other:?}"),
    }
    assert_eq!(
        error.to_string(),
        format!("refusing to sign a request: {reason}; the request was not sent")
    );
}

/// What reached the inner service (standing in for the HTTP client).
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<Request<BufferedBody>>>>);

impl Seen {
    fn take(&self) -> Vec<Request<BufferedBody>> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

/// Sends `request` through `layer` over an in-process inner service; returns the outcome and
/// what the inner service received.
async fn send<B>(
    layer: SignRequestLayer,
    request: Request<B>,
) -> (Result<Response<()>, BoxError>, Vec<Request<BufferedBody>>)
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let seen = Seen::default();
    let store = seen.clone();
    let service = ServiceBuilder::new().layer(layer).service(service_fn(
        move |request: Request<BufferedBody>| {
            store.0.lock().unwrap().push(request);
            async { Ok::<_, Infallible>(Response::new(())) }
        },
    ));
    let result = service.oneshot(request).await;
    (result, seen.take())
}

fn json_post(url: &str) -> http::request::Builder {
    Request::post(url).header(header::CONTENT_TYPE, "application/json")
}

/// Asserts that nothing reached the inner service, naming the signature that leaked.
fn assert_not_sent(seen: &[Request<BufferedBody>], scheme: &str, signature: &str) {
    if let Some(leaked) = seen.first() {
        panic!(
            "{scheme}: a signed request reached the inner service ({} {}), {signature}: {:?}",
            leaked.method(),
            leaked.uri(),
            leaked.headers().get(signature)
        );
    }
}

/// Security considerations, pinning, 1: "A request to a scheme, host or port that is not a
/// configured upstream (or with a relative URI, or user info) fails with
/// [`SignError::UpstreamNotAllowed`]; nothing is signed and the inner service is never
/// called." Here: another host, for a OneKey and a canonical signature.
#[tokio::test]
async fn a_onekey_or_canonical_signature_is_never_sent_to_another_host() {
    for (scheme, signature, layer) in [
        ("onekey", "payload-signature", signing(BodyHmac::onekey())),
        ("canonical", "x-signature", signing(Canonical::new())),
    ] {
        let request = json_post("https://attacker.example/collect")
            .body(Full::new(Bytes::from_static(JSON)))
            .unwrap();
        let (result, seen) = send(layer.clone(), request).await;
        assert_not_sent(&seen, scheme, signature);
        assert_not_allowed(&result.unwrap_err(), "https://attacker.example");

        // The configured upstream still gets signed requests.
        let request = json_post(PROVIDER_URL)
            .body(Full::new(Bytes::from_static(JSON)))
            .unwrap();
        let (result, seen) = send(layer, request).await;
        result.unwrap();
        assert_eq!(seen.len(), 1, "{scheme}");
        assert!(seen[0].headers()[signature].is_sensitive(), "{scheme}");
    }
}

/// Security considerations, pinning, 1 (continued): "The port is the effective port and the
/// scheme must match: `:8443` is another upstream, and so is `http`." Also a relative URI.
#[tokio::test]
async fn another_port_or_scheme_is_another_upstream() {
    for (url, target) in [
        (
            "https://api.onekey.example:8443/v1/cashout",
            "https://api.onekey.example:8443",
        ),
        (
            "http://api.onekey.example/v1/cashout",
            "http://api.onekey.example",
        ),
        (
            "https://api.onekey.example.attacker.example/v1/cashout",
            "https://api.onekey.example.attacker.example",
        ),
        ("/v1/cashout", "a relative URI"),
    ] {
        let request = json_post(url)
            .body(Full::new(Bytes::from_static(JSON)))
            .unwrap();
        let (result, seen) = send(signing(BodyHmac::onekey()), request).await;
        assert_not_sent(&seen, url, "payload-signature");
        assert_not_allowed(&result.unwrap_err(), target);
    }
    // An explicit default port is the same upstream.
    let request = json_post("https://api.onekey.example:443/v1/cashout")
        .body(Full::new(Bytes::from_static(JSON)))
        .unwrap();
    let (result, seen) = send(signing(BodyHmac::onekey()), request).await;
    result.unwrap();
    assert_eq!(seen.len(), 1);
}

/// Security considerations, pinning, 2: "A `Host` header must be absent or exactly one that
/// names the same host and effective port as the URI; otherwise `call` fails with
/// [`SignError::AmbiguousTarget`]." Another host, another port, a duplicate.
#[tokio::test]
async fn a_host_header_that_disagrees_or_repeats_is_refused() {
    const DISAGREES: &str = "the Host header disagrees with the request URI";
    const SEVERAL: &str = "the request has several Host headers";
    let cases: [(&str, &[&str], &str); 5] = [
        ("another host", &["attacker.example"], DISAGREES),
        ("another port", &["api.onekey.example:8443"], DISAGREES),
        ("not a host", &["api.onekey.example/x"], DISAGREES),
        (
            "two Host headers",
            &["api.onekey.example", "api.onekey.example"],
            SEVERAL,
        ),
        (
            "two Host headers, one elsewhere",
            &["api.onekey.example", "attacker.example"],
            SEVERAL,
        ),
    ];
    for (case, hosts, reason) in cases {
        let mut request = json_post(PROVIDER_URL)
            .body(Full::new(Bytes::from_static(JSON)))
            .unwrap();
        for host in hosts {
            request
                .headers_mut()
                .append(header::HOST, HeaderValue::from_static(host));
        }
        let (result, seen) = send(signing(Canonical::new()), request).await;
        assert_not_sent(&seen, case, "x-signature");
        assert_ambiguous(&result.unwrap_err(), reason);
    }
    // A Host header naming the same host (any case, explicit default port) is fine.
    for host in ["api.onekey.example", "API.OneKey.example:443"] {
        let request = json_post(PROVIDER_URL)
            .header(header::HOST, host)
            .body(Full::new(Bytes::from_static(JSON)))
            .unwrap();
        let (result, seen) = send(signing(Canonical::new()), request).await;
        result.unwrap();
        assert_eq!(seen.len(), 1, "{host}");
    }
}

/// Security considerations, pinning, 3: "The check runs in `call`, before the body is read, the
/// signing key is looked up or anything is signed."
#[tokio::test]
async fn the_check_comes_before_the_body_and_the_key() {
    let body = Chunks::new(&[JSON]);
    let polls = body.polls();
    let request = json_post("https://attacker.example/collect")
        .body(body)
        .unwrap();
    let (result, seen) = send(signing(BodyHmac::onekey()), request).await;
    assert_not_sent(&seen, "onekey", "payload-signature");
    assert_eq!(polls.load(Ordering::SeqCst), 0, "the body was read");
    assert_not_allowed(&result.unwrap_err(), "https://attacker.example");

    // An expired key is not even looked at: the refusal names the target, not the key.
    let expired = KeyRing::new(Key::new("2026-08", Secret::from_string(SECRET)).not_after(T - 1));
    let layer = SignRequestLayer::new(BodyHmac::onekey(), expired, provider())
        .unwrap()
        .clock(ManualClock::new(T));
    let request = json_post("https://attacker.example/collect")
        .body(Full::new(Bytes::from_static(JSON)))
        .unwrap();
    let (result, seen) = send(layer, request).await;
    assert!(seen.is_empty());
    assert_not_allowed(&result.unwrap_err(), "https://attacker.example");
}

/// Accepts connections on `listener`, reports each peer address on the channel (in accept
/// order) and answers every request `200 OK`.
fn count_connections(listener: TcpListener) -> mpsc::UnboundedReceiver<SocketAddr> {
    let (peers, accepted) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut stream, peer)) = listener.accept().await {
            if peers.send(peer).is_err() {
                return;
            }
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .await;
            });
        }
    });
    accepted
}

/// How many connections the listener accepted before `sentinel`'s (the backlog is first in,
/// first out, so every earlier connection is counted).
async fn connections_before(
    accepted: &mut mpsc::UnboundedReceiver<SocketAddr>,
    listener: SocketAddr,
) -> usize {
    let sentinel = TcpStream::connect(listener).await.unwrap();
    let sentinel = sentinel.local_addr().unwrap();
    let mut before = 0;
    while accepted.recv().await.unwrap() != sentinel {
        before += 1;
    }
    before
}

/// Security considerations, pinning, 4: "A refused request never reaches the inner service, so
/// a `hyper_util` client below the layer never opens a connection for it." Counted as accepted
/// TCP connections on a real loopback listener.
#[tokio::test]
async fn an_unconfigured_loopback_listener_receives_no_connection() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut accepted = count_connections(listener);

    let client = ServiceBuilder::new()
        .layer(signing(BodyHmac::onekey()))
        .service(Client::builder(TokioExecutor::new()).build_http::<BufferedBody>());
    let request = json_post(&format!("http://{addr}/collect"))
        .body(Full::new(Bytes::from_static(JSON)))
        .unwrap();
    let result = client.oneshot(request).await;
    assert_eq!(
        connections_before(&mut accepted, addr).await,
        0,
        "the unconfigured listener accepted a connection ({:?})",
        result.as_ref().map(Response::status)
    );
    assert_not_allowed(&result.unwrap_err(), &format!("http://{addr}"));

    // Configured, the same listener gets exactly one connection, signed.
    let client = ServiceBuilder::new()
        .layer(
            signing(BodyHmac::onekey())
                .upstream(Upstream::parse(&format!("http://{addr}")).unwrap()),
        )
        .service(Client::builder(TokioExecutor::new()).build_http::<BufferedBody>());
    let request = json_post(&format!("http://{addr}/collect"))
        .body(Full::new(Bytes::from_static(JSON)))
        .unwrap();
    let response = client.oneshot(request).await.unwrap();
    assert_eq!(response.status(), http::StatusCode::OK);
    assert_eq!(connections_before(&mut accepted, addr).await, 1);
}

/// [`SignRequestLayer::upstream`] adds upstreams; each is matched the same way, repeats are
/// ignored.
#[tokio::test]
async fn extra_upstreams_are_pinned_the_same_way() {
    let sandbox = Upstream::parse("https://sandbox.onekey.example:8443").unwrap();
    let layer = signing(BodyHmac::onekey())
        .upstream(sandbox.clone())
        .upstream(sandbox.clone())
        .upstream(provider());
    assert_eq!(layer.upstreams(), [provider(), sandbox]);
    for url in [
        PROVIDER_URL,
        "https://sandbox.onekey.example:8443/v1/cashout",
    ] {
        let request = json_post(url)
            .body(Full::new(Bytes::from_static(JSON)))
            .unwrap();
        let (result, seen) = send(layer.clone(), request).await;
        result.unwrap();
        assert_eq!(seen.len(), 1, "{url}");
        assert_eq!(
            seen[0].headers()["payload-signature"],
            BodyHmac::onekey().compute(&Secret::from_string(SECRET), JSON)
        );
    }
    let request = json_post("https://sandbox.onekey.example/v1/cashout")
        .body(Full::new(Bytes::from_static(JSON)))
        .unwrap();
    let (result, seen) = send(layer.clone(), request).await;
    assert!(seen.is_empty());
    assert_not_allowed(&result.unwrap_err(), "https://sandbox.onekey.example");
    let debug = format!("{layer:?}");
    assert!(
        debug.contains("Upstream(https://sandbox.onekey.example:8443)"),
        "{debug}"
    );
    assert!(!debug.contains(SECRET), "{debug}");
}

/// Security considerations, pinning, 5: "No error names user info, a path or a query: a refusal
/// names at most `scheme://host[:port]`."
#[tokio::test]
async fn refusals_never_name_user_info_a_path_or_a_query() {
    let request = json_post("https://partner:hunter2@attacker.example:444/collect?key=hunter2")
        .body(Full::new(Bytes::from_static(JSON)))
        .unwrap();
    let (result, seen) = send(signing(BodyHmac::onekey()), request).await;
    assert!(seen.is_empty());
    let error = result.unwrap_err();
    assert_not_allowed(&error, "https://attacker.example:444");
    assert!(!format!("{error:?}").contains("hunter2"));
    // User info on the configured host is refused too.
    let request = json_post("https://partner:hunter2@api.onekey.example/v1/cashout")
        .body(Full::new(Bytes::from_static(JSON)))
        .unwrap();
    let (result, seen) = send(signing(BodyHmac::onekey()), request).await;
    assert!(seen.is_empty());
    assert_not_allowed(&result.unwrap_err(), "https://api.onekey.example");
}
