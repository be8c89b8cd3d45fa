//! Attack review 19: the signature verifier's speed changes (issue 18, commits 6634517 and
//! c45b6d2).
//!
//! `VerifySignatureLayer` now hands `verify` a `now_unix` of 0 unless the scheme says it
//! reads the clock (`Scheme::verify_reads_clock`, default `true`, `BodyHmac` `false`) or a key
//! of the ring has an expiry; the verify histogram reads the time only when a recorder sees
//! it (a `record_many(_, 0)` probe); the facts are built in the request's parts; and
//! `check_content_length` parses in one pass. The attacks, each over loopback through the
//! stacks the docs recommend: an expired key accepted (fixed ring, facade preset, a handle
//! swapped between expiring and non-expiring rings, revocation, a ring swapped while a body
//! is in flight, a stress of swaps), a stale or future timestamp accepted because a wrapper
//! (`Arc<S>`, `Arc<dyn Scheme>`, a user's delegating scheme) lost `verify_reads_clock`, a
//! `Content-Length` read differently from the old definition or from hyper, and the metrics
//! probe against well- and ill-behaved recorders.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use metrics::{
    Counter, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder, SharedString, Unit,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tollgate::ServiceBuilderExt;
use tollgate::core::body::check_content_length;
use tollgate::core::{
    Clock, Key as RingKey, KeyRing, KeyRingHandle, RequestTimestamp, Secret, VerifiedSignature,
};
use tollgate::signature::{
    BodyHmac, Canonical, PreparedKeys, RequestParts, Scheme, SignError, StandardWebhooks, Stripe,
    VerifiedBody, VerifyError, VerifySignatureLayer,
};
use tower::ServiceBuilder;

/// The verifier's "now" in every test.
const T: u64 = 1_800_000_000;
const OLD: &str = "old-secret-of-the-2026-08-key";
const NEW: &str = "new-secret-of-the-2026-11-key";
const BODY: &[u8] = br#"{"amount":100,"currency":"ILS"}"#;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// A clock that counts its reads.
#[derive(Debug, Clone)]
struct CountingClock {
    now: Arc<AtomicU64>,
    reads: Arc<AtomicUsize>,
}

impl CountingClock {
    fn new(now: u64) -> Self {
        Self {
            now: Arc::new(AtomicU64::new(now)),
            reads: Arc::new(AtomicUsize::new(0)),
        }
    }

    fn reads(&self) -> usize {
        self.reads.load(Ordering::SeqCst)
    }
}

impl Clock for CountingClock {
    fn now_unix(&self) -> u64 {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.now.load(Ordering::SeqCst)
    }
}

/// A user's own scheme that delegates everything to `inner` the way a logging or metrics
/// wrapper would, *without* forwarding `verify_reads_clock` (it predates the method), and
/// remembers the `now_unix` each verification was handed.
#[derive(Debug)]
struct Delegating<S> {
    inner: S,
    nows: Arc<Mutex<Vec<u64>>>,
}

impl<S> Delegating<S> {
    fn new(inner: S) -> Self {
        Self {
            inner,
            nows: Arc::default(),
        }
    }
}

impl<S: Scheme> Scheme for Delegating<S> {
    fn name(&self) -> Cow<'static, str> {
        self.inner.name()
    }

    fn sign(
        &self,
        key: &Secret,
        request: &RequestParts<'_>,
        now_unix: u64,
    ) -> Result<Vec<(HeaderName, HeaderValue)>, SignError> {
        self.inner.sign(key, request, now_unix)
    }

    fn verify(
        &self,
        keys: &PreparedKeys,
        request: &RequestParts<'_>,
        now_unix: u64,
    ) -> Result<VerifiedSignature, VerifyError> {
        self.nows.lock().unwrap().push(now_unix);
        self.inner.verify(keys, request, now_unix)
    }

    fn timestamp_tolerance(&self) -> Option<u64> {
        self.inner.timestamp_tolerance()
    }
}

/// What the handler saw: the key id, the timestamp fact and the verified body's length.
async fn hook(request: Request<axum::body::Body>) -> String {
    let extensions = request.extensions();
    let key = extensions
        .get::<VerifiedSignature>()
        .map_or("-".to_owned(), |v| v.key_id().to_owned());
    let timestamp = extensions
        .get::<RequestTimestamp>()
        .map_or("-".to_owned(), |t| t.0.to_string());
    let body = extensions
        .get::<VerifiedBody>()
        .map_or("-".to_owned(), |b| b.bytes().len().to_string());
    format!("{key} {timestamp} {body}")
}

/// Serves `layer` over `/hook` on loopback; counts the handler's calls.
async fn serve(layer: VerifySignatureLayer) -> (SocketAddr, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&calls);
    let router = axum::Router::new()
        .route(
            "/hook",
            axum::routing::post(move |request: Request<axum::body::Body>| {
                seen.fetch_add(1, Ordering::SeqCst);
                hook(request)
            }),
        )
        .layer(layer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    (addr, calls)
}

type HttpClient = Client<HttpConnector, Full<Bytes>>;

fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// Status and body text; a refusal's body is reduced to its code.
async fn send(client: &HttpClient, request: Request<Full<Bytes>>) -> (StatusCode, String) {
    let response = client.request(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8(body.to_vec()).unwrap();
    if status.is_success() {
        return (status, text);
    }
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    (status, json["error"]["code"].as_str().unwrap().to_owned())
}

/// A POST to `/hook` signed by `scheme` with `secret` at `signed_at`.
fn signed(
    addr: SocketAddr,
    scheme: &dyn Scheme,
    secret: &str,
    signed_at: u64,
) -> Request<Full<Bytes>> {
    let (method, uri) = (Method::POST, Uri::from_static("/hook"));
    // Standard Webhooks signs the message id; the others ignore it.
    let mut headers = HeaderMap::new();
    headers.insert("webhook-id", HeaderValue::from_static("msg_2Kq9"));
    let added = scheme
        .sign(
            &Secret::from_string(secret),
            &RequestParts::new(&method, &uri, &headers, BODY),
            signed_at,
        )
        .unwrap();
    let mut request = Request::post(format!("http://{addr}/hook"))
        .body(Full::new(Bytes::from_static(BODY)))
        .unwrap();
    request.headers_mut().extend(headers);
    request.headers_mut().extend(added);
    request
}

fn ok(key: &str) -> (StatusCode, String) {
    (StatusCode::OK, format!("{key} - {}", BODY.len()))
}

fn refused(code: &str) -> (StatusCode, String) {
    (StatusCode::UNAUTHORIZED, code.to_owned())
}

fn old_expired_ring() -> KeyRing {
    KeyRing::new(RingKey::new("old", Secret::from_string(OLD)).not_after(T - 1))
        .rotate(RingKey::new("new", Secret::from_string(NEW)))
}

// ---------------------------------------------------------------------------------------------
// 1. Expired keys, with a body-only scheme (the one that may skip the clock).
// ---------------------------------------------------------------------------------------------

/// A fixed ring whose old key expired one second ago: refused through the layer, through
/// `Arc<BodyHmac>` (which forwards `false`), a user's delegating scheme and the facade's
/// `verify_signature` preset; the new key passes. The expiring ring makes the layer read the
/// clock for each request.
#[tokio::test]
async fn expired_key_in_a_fixed_ring_is_refused_by_every_body_only_stack() {
    let client = client();
    let clock = CountingClock::new(T);
    let schemes: Vec<Box<dyn Fn() -> VerifySignatureLayer>> = vec![
        Box::new(|| VerifySignatureLayer::new(BodyHmac::github(), old_expired_ring()).unwrap()),
        Box::new(|| {
            VerifySignatureLayer::new(Arc::new(BodyHmac::github()), old_expired_ring()).unwrap()
        }),
        Box::new(|| {
            let scheme: Arc<dyn Scheme> = Arc::new(BodyHmac::github());
            VerifySignatureLayer::new(scheme, old_expired_ring()).unwrap()
        }),
        Box::new(|| {
            VerifySignatureLayer::new(Delegating::new(BodyHmac::github()), old_expired_ring())
                .unwrap()
        }),
    ];
    for (i, make) in schemes.iter().enumerate() {
        let before = clock.reads();
        let (addr, calls) = serve(make().clock(clock.clone())).await;
        let old = send(&client, signed(addr, &BodyHmac::github(), OLD, T)).await;
        assert_eq!(old, refused("signature_invalid"), "stack {i}");
        let new = send(&client, signed(addr, &BodyHmac::github(), NEW, T)).await;
        assert_eq!(new, ok("new"), "stack {i}");
        assert_eq!(calls.load(Ordering::SeqCst), 1, "stack {i}");
        assert_eq!(clock.reads() - before, 2, "stack {i}: one read per request");
    }

    // The facade's builder (the README's way) with the system clock: a key expired long ago.
    let ring = KeyRing::new(RingKey::new("old", Secret::from_string(OLD)).not_after(1_000))
        .rotate(RingKey::new("new", Secret::from_string(NEW)));
    let stack = ServiceBuilder::new()
        .verify_signature(BodyHmac::github(), ring)
        .unwrap();
    let router = axum::Router::new()
        .route("/hook", axum::routing::post(hook))
        .layer(stack);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    let old = send(&client, signed(addr, &BodyHmac::github(), OLD, T)).await;
    assert_eq!(old, refused("signature_invalid"));
    let new = send(&client, signed(addr, &BodyHmac::github(), NEW, T)).await;
    assert_eq!(new, ok("new"));
}

/// A handle that starts with a ring where no key expires (the layer skips the clock), is
/// swapped to one where the old key expired (refused at once), back to a ring without it
/// (refused: gone), to one where it is valid again until later (accepted), and finally the
/// old key is revoked with `KeyRing::without` through `update` (refused).
#[tokio::test]
async fn expiry_and_revocation_follow_every_swap_of_a_handle() {
    let client = client();
    let clock = CountingClock::new(T);
    let keys = KeyRingHandle::new(
        KeyRing::new(RingKey::new("old", Secret::from_string(OLD)))
            .rotate(RingKey::new("new", Secret::from_string(NEW))),
    );
    let layer = VerifySignatureLayer::new(BodyHmac::onekey(), keys.clone())
        .unwrap()
        .clock(clock.clone());
    let (addr, calls) = serve(layer).await;
    let post = |secret| signed(addr, &BodyHmac::onekey(), secret, T);

    assert_eq!(send(&client, post(OLD)).await, ok("old"));
    assert_eq!(clock.reads(), 0, "no key expires: no clock read");

    keys.store(old_expired_ring()).unwrap();
    assert_eq!(send(&client, post(OLD)).await, refused("signature_invalid"));
    assert_eq!(send(&client, post(NEW)).await, ok("new"));
    assert_eq!(clock.reads(), 2);

    keys.store(KeyRing::new(RingKey::new("new", Secret::from_string(NEW))))
        .unwrap();
    assert_eq!(send(&client, post(OLD)).await, refused("signature_invalid"));
    assert_eq!(clock.reads(), 2, "no key expires again: no read");

    keys.store(
        KeyRing::new(RingKey::new("old", Secret::from_string(OLD)).not_after(T))
            .rotate(RingKey::new("new", Secret::from_string(NEW))),
    )
    .unwrap();
    assert_eq!(send(&client, post(OLD)).await, ok("old"), "T is inclusive");
    clock.now.store(T + 1, Ordering::SeqCst);
    assert_eq!(send(&client, post(OLD)).await, refused("signature_invalid"));
    clock.now.store(T, Ordering::SeqCst);

    keys.update(|ring| {
        ring.without("old")
            .ok_or_else(|| tollgate::core::BoxError::from("no key left"))
    })
    .unwrap();
    assert_eq!(send(&client, post(OLD)).await, refused("signature_invalid"));
    assert_eq!(send(&client, post(NEW)).await, ok("new"));
    assert_eq!(calls.load(Ordering::SeqCst), 4);
}

/// Sends the head and half the body of a request signed with the old key, then swaps the
/// ring so that the old key has expired, then the rest: the ring is loaded once the body
/// arrived, so the request is refused, and no fact reached the handler.
#[tokio::test]
async fn a_ring_swapped_while_the_body_is_in_flight_judges_the_request() {
    let keys = KeyRingHandle::new(
        KeyRing::new(RingKey::new("old", Secret::from_string(OLD)))
            .rotate(RingKey::new("new", Secret::from_string(NEW))),
    );
    let layer = VerifySignatureLayer::new(BodyHmac::onekey(), keys.clone())
        .unwrap()
        .clock(CountingClock::new(T));
    let (addr, calls) = serve(layer).await;
    let signature = BodyHmac::onekey().compute(&Secret::from_string(OLD), BODY);
    let head = format!(
        "POST /hook HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\npayload-signature: {signature}\r\nconnection: close\r\n\r\n",
        BODY.len()
    );
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&BODY[..10]).await.unwrap();
    stream.flush().await.unwrap();
    keys.store(old_expired_ring()).unwrap();
    stream.write_all(&BODY[10..]).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 401 "), "{answer}");
    assert!(answer.contains(r#""code":"signature_invalid""#), "{answer}");
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

/// Two rings stored in turn without pause while requests signed with the old secret keep
/// arriving over one keep-alive connection: ring A holds it as `old-a` with no expiry (the
/// layer skips the clock), ring B as `old-b`, expired. Every answer must be A's (`old-a`) or
/// B's (refused); `old-b` accepted would be B's keys judged at `now = 0` (A's decision).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_never_mixes_one_rings_keys_with_anothers_clock_decision() {
    let ring_a = KeyRing::new(RingKey::new("old-a", Secret::from_string(OLD)));
    let ring_b = KeyRing::new(RingKey::new("old-b", Secret::from_string(OLD)).not_after(T - 1))
        .rotate(RingKey::new("new", Secret::from_string(NEW)));
    let keys = KeyRingHandle::new(ring_a.clone());
    let layer = VerifySignatureLayer::new(BodyHmac::onekey(), keys.clone())
        .unwrap()
        .clock(CountingClock::new(T));
    let (addr, _) = serve(layer).await;
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let (done, keys) = (Arc::clone(&done), keys.clone());
        std::thread::spawn(move || {
            let mut stores = 0u64;
            while !done.load(Ordering::Relaxed) {
                let ring = if stores.is_multiple_of(2) {
                    &ring_b
                } else {
                    &ring_a
                };
                keys.store(ring.clone()).unwrap();
                stores += 1;
            }
            stores
        })
    };
    let client = client();
    let (mut a, mut b) = (0, 0);
    for _ in 0..400 {
        match send(&client, signed(addr, &BodyHmac::onekey(), OLD, T)).await {
            answer if answer == ok("old-a") => a += 1,
            answer if answer == refused("signature_invalid") => b += 1,
            other => {
                done.store(true, Ordering::Relaxed);
                panic!("answered {other:?}, which neither ring gives");
            }
        }
    }
    done.store(true, Ordering::Relaxed);
    let stores = writer.join().unwrap();
    assert!(stores > 100, "only {stores} stores");
    assert!(a > 0 && b > 0, "A {a}, B {b}: both rings must have judged");
}

// ---------------------------------------------------------------------------------------------
// 2. Timestamp windows through wrappers.
// ---------------------------------------------------------------------------------------------

/// For Stripe, Standard Webhooks and Canonical, each plain, as `Arc<S>`, as `Arc<dyn Scheme>`
/// and inside a user's delegating scheme that does not forward `verify_reads_clock`: a
/// timestamp 301 s stale or ahead is refused `timestamp_out_of_window`, one at the edge (300 s)
/// passes with its `RequestTimestamp`, and the delegate was handed the clock's time.
#[tokio::test]
async fn stale_and_future_timestamps_are_refused_through_every_wrapper() {
    let client = client();
    let ring = || KeyRing::new(RingKey::new("k", Secret::from_string(NEW)));
    let bases: Vec<(&str, Arc<dyn Scheme>)> = vec![
        ("stripe", Arc::new(Stripe::new())),
        ("standard", Arc::new(StandardWebhooks::new())),
        ("canonical", Arc::new(Canonical::new())),
    ];
    for (name, base) in bases {
        let delegating = Delegating::new(Arc::clone(&base));
        let nows = Arc::clone(&delegating.nows);
        let layers = [
            (
                "arc-dyn",
                VerifySignatureLayer::new(Arc::clone(&base), ring()),
            ),
            (
                "arc-arc",
                VerifySignatureLayer::new(Arc::new(Arc::clone(&base)), ring()),
            ),
            ("delegating", VerifySignatureLayer::new(delegating, ring())),
        ];
        for (wrapper, layer) in layers {
            let clock = CountingClock::new(T);
            let (addr, calls) = serve(layer.unwrap().clock(clock.clone())).await;
            let at = |signed_at| signed(addr, &*base, NEW, signed_at);
            for signed_at in [T - 301, T + 301, 0, u64::MAX / 2] {
                assert_eq!(
                    send(&client, at(signed_at)).await,
                    refused("timestamp_out_of_window"),
                    "{name} {wrapper} signed at {signed_at}"
                );
            }
            for signed_at in [T - 300, T + 300] {
                assert_eq!(
                    send(&client, at(signed_at)).await,
                    (StatusCode::OK, format!("k {signed_at} {}", BODY.len())),
                    "{name} {wrapper}"
                );
            }
            assert_eq!(calls.load(Ordering::SeqCst), 2, "{name} {wrapper}");
            assert_eq!(clock.reads(), 6, "{name} {wrapper}: one read per request");
        }
        assert_eq!(*nows.lock().unwrap(), [T; 6], "{name}: the delegate's now");
    }
}

/// A user's scheme that delegates to `BodyHmac` but not `verify_reads_clock` gets the real
/// time (the default is `true`), so a window of its own would work; `Arc<BodyHmac>` and a
/// plain `BodyHmac` skip the clock only while no key expires.
#[tokio::test]
async fn a_delegating_body_scheme_is_handed_the_real_time() {
    let client = client();
    let ring = || KeyRing::single(Secret::from_string(NEW));
    let delegating = Delegating::new(BodyHmac::onekey());
    let nows = Arc::clone(&delegating.nows);
    let clock = CountingClock::new(T);
    let (addr, _) = serve(
        VerifySignatureLayer::new(delegating, ring())
            .unwrap()
            .clock(clock.clone()),
    )
    .await;
    let answer = send(&client, signed(addr, &BodyHmac::onekey(), NEW, T)).await;
    assert_eq!(answer, ok("default"));
    assert_eq!(*nows.lock().unwrap(), [T]);
    assert_eq!(clock.reads(), 1);

    let clock = CountingClock::new(T);
    let layer = VerifySignatureLayer::new(Arc::new(BodyHmac::onekey()), ring()).unwrap();
    let (addr, _) = serve(layer.clock(clock.clone())).await;
    let answer = send(&client, signed(addr, &BodyHmac::onekey(), NEW, T)).await;
    assert_eq!(answer, ok("default"));
    assert_eq!(clock.reads(), 0);
}

// ---------------------------------------------------------------------------------------------
// 3. Content-Length.
// ---------------------------------------------------------------------------------------------

/// The one-pass parser against the definition it replaced, through the public
/// `check_content_length` at limits around the value: every byte inserted anywhere into
/// numbers near the limit, signs, whitespace, leading zeros, overflow, comma lists; and a
/// repeated header is judged by its first value, as before.
#[test]
fn content_length_is_judged_as_the_old_definition_judged_it() {
    let old = |value: &HeaderValue, limit: usize| {
        let declared = value
            .to_str()
            .ok()
            .and_then(|value| value.trim().parse::<u64>().ok());
        !matches!(declared, Some(length) if length > limit as u64)
    };
    let mut values: Vec<Vec<u8>> = [
        "",
        "+",
        "-",
        "+-1",
        "-0",
        "+0",
        "00",
        " ",
        "\t",
        "2049, 2049",
        "2049,2049",
        "1,2049",
        "2049 ,",
        " +2049",
        "+ 2049",
        "2049\t",
        "\t\t2049 \t",
        "0x801",
        "2_049",
        "2.049e3",
        "０２０４９",
        "18446744073709551615",
        "18446744073709551616",
        "000000000000000000000000000000002049",
        "4294967296",
        "4294967295",
    ]
    .iter()
    .map(|text| text.as_bytes().to_vec())
    .collect();
    for base in ["2047", "2048", "2049", "99999"] {
        for byte in 0u8..=255 {
            for at in 0..=base.len() {
                let mut value = base.as_bytes().to_vec();
                value.insert(at, byte);
                values.push(value.clone());
                value.insert(at, byte);
                values.push(value);
            }
        }
    }
    let mut checked = 0;
    for value in &values {
        let Ok(header) = HeaderValue::from_bytes(value) else {
            continue;
        };
        for limit in [0, 2047, 2048, 2049, 99_998, 99_999, usize::MAX] {
            let mut headers = HeaderMap::new();
            headers.insert(http::header::CONTENT_LENGTH, header.clone());
            let fits = check_content_length(&headers, limit).is_ok();
            assert_eq!(fits, old(&header, limit), "{value:?} at limit {limit}");
            // A second value never changes the answer: the first is read.
            headers.append(http::header::CONTENT_LENGTH, HeaderValue::from_static("0"));
            assert_eq!(check_content_length(&headers, limit).is_ok(), fits);
            checked += 1;
        }
    }
    assert!(checked > 30_000, "{checked}");
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::CONTENT_LENGTH,
        HeaderValue::from_static("18446744073709551615"),
    );
    assert!(check_content_length(&headers, usize::MAX).is_ok());
    headers.insert(
        http::header::CONTENT_LENGTH,
        HeaderValue::from_static(" +2049 "),
    );
    let error = check_content_length(&headers, 2048).unwrap_err();
    assert!(error.is_too_large());
}

/// Raw requests over loopback to a verifier with a 16-byte limit, each carrying a signed
/// 17-byte body under a `Content-Length` spelled a way hyper accepts or refuses: never
/// 200, never the handler; the layer answers 413 wherever hyper lets the request through
/// (hyper 1 refuses comma lists, `+`, differing duplicates and overflow itself, so the
/// layer only ever sees digits, maybe zero-padded).
#[tokio::test]
async fn oversized_bodies_under_odd_content_lengths_never_reach_the_handler() {
    let body = b"{\"amount\":100000}";
    assert_eq!(body.len(), 17);
    let layer = VerifySignatureLayer::new(BodyHmac::onekey(), Secret::from_string(NEW))
        .unwrap()
        .body_limit(16);
    let (addr, calls) = serve(layer).await;
    let signature = BodyHmac::onekey().compute(&Secret::from_string(NEW), body);
    let cases: [(&str, u16); 12] = [
        ("content-length: 17\r\n", 413),
        ("content-length: 0017\r\n", 413),
        ("content-length:17\r\n", 413),
        ("content-length: \t17 \t\r\n", 413),
        ("content-length: 00000000000000000000000000000017\r\n", 413),
        ("content-length: 17, 17\r\n", 400),
        ("content-length: 17,17\r\n", 400),
        ("content-length: 17\r\ncontent-length: 17\r\n", 413),
        ("content-length: +17\r\n", 400),
        ("content-length: 17\r\ncontent-length: 16\r\n", 400),
        ("content-length: 16, 17\r\n", 400),
        ("content-length: 18446744073709551616\r\n", 400),
    ];
    let mut answers = Vec::new();
    for (length, _) in cases {
        let head = format!(
            "POST /hook HTTP/1.1\r\nhost: x\r\n{length}payload-signature: {signature}\r\nconnection: close\r\n\r\n"
        );
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.write_all(head.as_bytes()).await.unwrap();
        // The peer may close before reading the body (413 at once, or hyper's 400).
        let _ = stream.write_all(body).await;
        let mut answer = Vec::new();
        // A reset after the answer was written is fine; the answer must be there.
        let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer))
            .await
            .unwrap();
        let answer = String::from_utf8_lossy(&answer).into_owned();
        let status: u16 = answer
            .strip_prefix("HTTP/1.1 ")
            .and_then(|rest| rest.get(..3))
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("{length:?}: {answer}"));
        if status == 413 {
            assert!(answer.contains(r#""code":"payload_too_large""#), "{answer}");
        }
        answers.push((length, status));
    }
    assert_eq!(answers, cases);
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

// ---------------------------------------------------------------------------------------------
// 4. The verify histogram's probe.
// ---------------------------------------------------------------------------------------------

/// A recorder that keeps every histogram sample by key name; `zero_count_records` makes
/// its histograms record a value once per `record_many` call whatever the count (a recorder
/// that breaks the contract the probe relies on).
#[derive(Clone, Default)]
struct Samples {
    samples: Arc<Mutex<Vec<(String, f64)>>>,
    zero_count_records: bool,
}

struct SampleHistogram {
    name: String,
    recorder: Samples,
}

impl HistogramFn for SampleHistogram {
    fn record(&self, value: f64) {
        let sample = (self.name.clone(), value);
        self.recorder.samples.lock().unwrap().push(sample);
    }

    fn record_many(&self, value: f64, count: usize) {
        let count = if self.recorder.zero_count_records {
            count.max(1)
        } else {
            count
        };
        for _ in 0..count {
            self.record(value);
        }
    }
}

impl Recorder for Samples {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, _: &Key, _: &Metadata<'_>) -> Counter {
        Counter::noop()
    }

    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(Arc::new(SampleHistogram {
            name: key.name().to_owned(),
            recorder: self.clone(),
        }))
    }
}

/// Serves a verifier and sends it two good, one forged, one unsigned and one oversized
/// request over loopback, all on one current-thread runtime under `recorder` (a local
/// recorder sees what runs on this thread). Returns the verify histogram's samples.
fn verify_samples(recorder: &Samples) -> Vec<f64> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    metrics::with_local_recorder(recorder, || {
        runtime.block_on(async {
            let layer = VerifySignatureLayer::new(BodyHmac::onekey(), Secret::from_string(NEW))
                .unwrap()
                .body_limit(64);
            let (addr, calls) = serve(layer).await;
            let client = client();
            let post = |secret| signed(addr, &BodyHmac::onekey(), secret, T);
            assert_eq!(send(&client, post(NEW)).await, ok("default"));
            assert_eq!(send(&client, post(NEW)).await, ok("default"));
            assert_eq!(send(&client, post(OLD)).await, refused("signature_invalid"));
            let mut unsigned = post(NEW);
            unsigned.headers_mut().remove("payload-signature");
            assert_eq!(send(&client, unsigned).await, refused("signature_missing"));
            let mut big = post(NEW);
            *big.body_mut() = Full::new(Bytes::from(vec![b' '; 65]));
            assert_eq!(
                send(&client, big).await,
                (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large".into())
            );
            assert_eq!(calls.load(Ordering::SeqCst), 2);
        });
    });
    recorder
        .samples
        .lock()
        .unwrap()
        .iter()
        .filter(|(name, _)| name == "tollgate_verify_duration_seconds")
        .map(|&(_, value)| value)
        .collect()
}

/// A recorder that follows the contract gets exactly one sample per verification (four:
/// two passed, one forged, one unsigned; the oversized body never reaches the scheme), each a
/// real duration; the probe adds nothing.
#[test]
fn the_verify_histogram_has_one_sample_per_verification() {
    let samples = verify_samples(&Samples::default());
    assert_eq!(samples.len(), 4, "{samples:?}");
    assert!(
        samples.iter().all(|s| s.is_finite() && *s > 0.0),
        "{samples:?}"
    );
}

/// A recorder whose `record_many` records once even for a count of zero (the crate docs
/// say recorders must not) gets one extra sample of exactly 0 per verification: the probe.
/// Documented, not a fault of the layer; pinned so a change in the probe is noticed.
#[test]
fn a_recorder_that_records_a_zero_count_sees_the_probe() {
    let recorder = Samples {
        zero_count_records: true,
        ..Samples::default()
    };
    let samples = verify_samples(&recorder);
    assert_eq!(samples.len(), 8, "{samples:?}");
    let zeros = samples.iter().filter(|s| **s == 0.0).count();
    assert_eq!(zeros, 4, "{samples:?}");
}

/// A windowed scheme wrapped by a user who wrongly answers `verify_reads_clock() == false`
/// (copied from a body-only wrapper). The layer hands it the time anyway, because it declares
/// a timestamp tolerance: handed 0, the window would accept a timestamp of 0.
#[derive(Debug)]
struct SaysNoClock<S>(S);

impl<S: Scheme> Scheme for SaysNoClock<S> {
    fn name(&self) -> Cow<'static, str> {
        self.0.name()
    }

    fn sign(
        &self,
        key: &Secret,
        request: &RequestParts<'_>,
        now_unix: u64,
    ) -> Result<Vec<(HeaderName, HeaderValue)>, SignError> {
        self.0.sign(key, request, now_unix)
    }

    fn verify(
        &self,
        keys: &PreparedKeys,
        request: &RequestParts<'_>,
        now_unix: u64,
    ) -> Result<VerifiedSignature, VerifyError> {
        self.0.verify(keys, request, now_unix)
    }

    fn timestamp_tolerance(&self) -> Option<u64> {
        self.0.timestamp_tolerance()
    }

    fn verify_reads_clock(&self) -> bool {
        false
    }
}

#[tokio::test]
async fn a_windowed_scheme_that_says_it_reads_no_clock_is_handed_the_time_anyway() {
    let client = client();
    let ring = KeyRing::new(RingKey::new("k", Secret::from_string(NEW)));
    let stripe = Stripe::new();
    let clock = CountingClock::new(T);
    let layer = VerifySignatureLayer::new(SaysNoClock(Stripe::new()), ring).unwrap();
    let (addr, calls) = serve(layer.clock(clock.clone())).await;
    for signed_at in [0, 1, T - 301] {
        assert_eq!(
            send(&client, signed(addr, &stripe, NEW, signed_at)).await,
            refused("timestamp_out_of_window"),
            "signed at {signed_at}"
        );
    }
    assert_eq!(
        send(&client, signed(addr, &stripe, NEW, T)).await,
        (StatusCode::OK, format!("k {T} {}", BODY.len()))
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(clock.reads(), 4, "one read per request");
}
