//! The layers' behaviour over real TCP (axum server, `hyper_util` client, raw sockets for
//! lying lengths) and in process where a test needs to look inside the inner service.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tollgate_core::{
    BufferError, BufferedBody, Key, KeyRing, ManualClock, Rejection, Secret, Upstream,
    VerifiedSignature,
};
use tollgate_signature::future::{SignRequestFuture, VerifySignatureFuture};
use tollgate_signature::{
    BodyHmac, Canonical, ConfigError, SignError, SignRequestLayer, StandardWebhooks, Stripe,
    VerifiedBody, VerifySignatureLayer,
};
use tower::{Layer, Service, ServiceBuilder, ServiceExt, service_fn};

use common::{AnyBody, chunked, full, rejection_json, send_raw, send_signed, serve};

const T: u64 = 1_700_000_000;

/// The upstream the in-process signing tests send to (signing layers are pinned).
const API: &str = "http://api.example/";

fn api() -> Upstream {
    Upstream::from_static("http://api.example")
}

/// The loopback server at `addr` as an upstream.
fn local(addr: std::net::SocketAddr) -> Upstream {
    Upstream::parse(&format!("http://{addr}")).unwrap()
}

fn post(addr: std::net::SocketAddr, path: &str) -> http::request::Builder {
    Request::post(format!("http://{addr}{path}"))
}

fn signed_post(
    addr: std::net::SocketAddr,
    header: (&str, String),
    body: AnyBody,
) -> Request<AnyBody> {
    post(addr, "/")
        .header(header.0, header.1)
        .body(body)
        .unwrap()
}

#[tokio::test]
async fn rotation_old_and_new_keys_until_not_after() {
    let old = Key::new("2026-08", Secret::from_string("old-secret")).not_after(T);
    let new = Key::new("2026-11", Secret::from_string("new-secret"));
    let ring = KeyRing::new(old.clone()).rotate(new.clone());
    let clock = ManualClock::new(T);
    let addr = serve(
        VerifySignatureLayer::new(Canonical::new(), ring)
            .unwrap()
            .clock(clock.clone()),
    )
    .await;

    let send_with = |key: Key, now: u64| async move {
        let layer = SignRequestLayer::new(
            Canonical::new(),
            KeyRing::new(Key::new(key.id(), key.secret().clone())),
            local(addr),
        )
        .unwrap()
        .clock(ManualClock::new(now));
        send_signed(layer, post(addr, "/rotate").body(full("{}")).unwrap()).await
    };

    // Until the old key's not-after (inclusive), both verify and the key id says which.
    for (key, id) in [(old.clone(), "2026-08"), (new.clone(), "2026-11")] {
        let answer = send_with(key, T).await;
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(answer.json()["verified"]["key_id"], id);
    }
    // One second later only the new key does.
    clock.set(T + 1);
    let answer = send_with(old.clone(), T + 1).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        answer.body,
        rejection_json("signature_invalid", "the signature does not match")
    );
    let answer = send_with(new, T + 1).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json()["verified"]["key_id"], "2026-11");
}

#[tokio::test]
async fn signing_with_an_expired_key_is_a_typed_error_and_sends_nothing() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let inner = service_fn(move |_req: Request<BufferedBody>| {
        counter.fetch_add(1, Ordering::SeqCst);
        async { Ok::<_, Infallible>(Response::new(())) }
    });
    let ring = KeyRing::new(Key::new("2026-08", Secret::from_string("old-secret")).not_after(T));
    let service = ServiceBuilder::new()
        .layer(
            SignRequestLayer::new(BodyHmac::onekey(), ring, api())
                .unwrap()
                .clock(ManualClock::new(T + 1)),
        )
        .service(inner);
    let err = service
        .clone()
        .oneshot(
            Request::post(API)
                .body(Full::new(Bytes::from_static(b"{}")))
                .unwrap(),
        )
        .await
        .unwrap_err();
    match err.downcast_ref::<SignError>() {
        Some(SignError::KeyExpired { key_id }) => assert_eq!(&**key_id, "2026-08"),
        other => panic!("{other:?}"),
    }
    assert!(!err.to_string().contains("old-secret"));
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn sign_layer_errors_and_sensitive_headers() {
    let seen: Arc<Mutex<Option<Request<BufferedBody>>>> = Arc::default();
    let store = Arc::clone(&seen);
    let inner = service_fn(move |req: Request<BufferedBody>| {
        *store.lock().unwrap() = Some(req);
        async { Ok::<_, io::Error>(Response::new(())) }
    });
    let secret = Secret::from_string("k");
    let layer = SignRequestLayer::new(Canonical::new(), secret.clone(), api())
        .unwrap()
        .clock(ManualClock::new(T));
    let service = ServiceBuilder::new().layer(layer).service(inner);
    service
        .clone()
        .oneshot(
            Request::put("http://api.example/v1/x?y=1")
                .header("x-timestamp", "1")
                .body(Full::new(Bytes::from_static(b"payload")))
                .unwrap(),
        )
        .await
        .unwrap();
    let req = seen.lock().unwrap().take().unwrap();
    let signature = &req.headers()["x-signature"];
    assert!(signature.is_sensitive());
    assert_eq!(
        signature,
        Canonical::new()
            .compute(&secret, "PUT", "/v1/x?y=1", b"payload", T)
            .as_str()
    );
    // The timestamp the caller set is replaced, once.
    assert_eq!(req.headers().get_all("x-timestamp").iter().count(), 1);
    assert_eq!(req.headers()["x-timestamp"], "1700000000");
    assert_eq!(req.body().bytes().unwrap(), &Bytes::from_static(b"payload"));
    assert!(format!("{:?}", req.headers()).contains("\"x-signature\": Sensitive"));

    // Standard Webhooks: the sender's webhook-id is required.
    let sw = ServiceBuilder::new()
        .layer(
            SignRequestLayer::new(
                StandardWebhooks::new(),
                Secret::from_bytes(vec![b'k'; 24]),
                api(),
            )
            .unwrap(),
        )
        .service(service_fn(|_req: Request<BufferedBody>| async {
            Ok::<_, io::Error>(Response::new(()))
        }));
    let err = sw
        .oneshot(Request::post(API).body(Full::new(Bytes::new())).unwrap())
        .await
        .unwrap_err();
    assert!(matches!(
        err.downcast_ref::<SignError>(),
        Some(SignError::MissingHeader { header }) if header == "webhook-id"
    ));

    // Over the limit: a typed error, never a truncated request.
    let small = ServiceBuilder::new()
        .layer(
            SignRequestLayer::new(BodyHmac::onekey(), secret, api())
                .unwrap()
                .body_limit(4),
        )
        .service(service_fn(|_req: Request<BufferedBody>| async {
            Err::<Response<()>, _>(io::Error::other("inner failure"))
        }));
    let err = small
        .clone()
        .oneshot(
            Request::post(API)
                .body(Full::new(Bytes::from_static(b"12345")))
                .unwrap(),
        )
        .await
        .unwrap_err();
    assert!(matches!(
        err.downcast_ref::<SignError>(),
        Some(SignError::Body(BufferError::TooLarge { limit: 4 }))
    ));
    // The inner service's own errors pass through as they are.
    let err = small
        .oneshot(
            Request::post(API)
                .body(Full::new(Bytes::from_static(b"1234")))
                .unwrap(),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.downcast_ref::<io::Error>().unwrap().to_string(),
        "inner failure"
    );
}

#[tokio::test]
async fn several_signatures_in_any_order_and_unknown_versions() {
    let stripe_secret = Secret::from_string("whsec_stripe");
    let stripe = Stripe::new();
    let addr = serve(
        VerifySignatureLayer::new(stripe.clone(), stripe_secret.clone())
            .unwrap()
            .clock(ManualClock::new(T)),
    )
    .await;
    let good = stripe.compute(&stripe_secret, T, b"{}");
    let good_v1 = good.split_once(",v1=").unwrap().1;
    let other_v1 = "ab".repeat(32);
    for header in [
        format!("t={T},v1={other_v1},v1={good_v1}"),
        format!("t={T},v1={good_v1},v1={other_v1}"),
        format!("v1={good_v1},t={T}"),
        format!("t={T},v0={other_v1},v1={good_v1},x9=anything,v2={other_v1}"),
    ] {
        let answer = send_raw(signed_post(
            addr,
            ("stripe-signature", header.clone()),
            full("{}"),
        ))
        .await;
        assert_eq!(answer.status, StatusCode::OK, "{header}");
        assert_eq!(answer.json()["verified"]["signature_hex"], good_v1);
    }
    // Only unknown versions: nothing to check against.
    let answer = send_raw(signed_post(
        addr,
        ("stripe-signature", format!("t={T},v0={good_v1}")),
        full("{}"),
    ))
    .await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        answer.body,
        rejection_json("signature_invalid", "the signature does not match")
    );

    let sw_secret = Secret::from_bytes(b"standard-webhooks-key".to_vec());
    let sw = StandardWebhooks::new();
    let addr = serve(
        VerifySignatureLayer::new(sw.clone(), sw_secret.clone())
            .unwrap()
            .clock(ManualClock::new(T)),
    )
    .await;
    let good = sw.compute(&sw_secret, "msg_1", T, b"{}");
    let other = format!(
        "v1,{}",
        tollgate_signature::Encoding::Base64.encode(&[7; 32])
    );
    for header in [
        format!("{other} {good}"),
        format!("{good} {other}"),
        format!("v1a,c2lnbmF0dXJl {good} v2,{}", &good[3..]),
    ] {
        let request = post(addr, "/")
            .header("webhook-id", "msg_1")
            .header("webhook-timestamp", T.to_string())
            .header("webhook-signature", header.clone())
            .body(full("{}"))
            .unwrap();
        let answer = send_raw(request).await;
        assert_eq!(answer.status, StatusCode::OK, "{header}");
        assert_eq!(answer.json()["verified"]["message_id"], "msg_1");
    }
    let request = post(addr, "/")
        .header("webhook-id", "msg_1")
        .header("webhook-timestamp", T.to_string())
        .header("webhook-signature", format!("v1a,{}", &good[3..]))
        .body(full("{}"))
        .unwrap();
    assert_eq!(send_raw(request).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn empty_and_non_utf8_bodies_round_trip() {
    let secret = Secret::from_string("k");
    let addr = serve(VerifySignatureLayer::new(BodyHmac::onekey(), secret.clone()).unwrap()).await;
    for body in [
        Vec::new(),
        vec![0xff, 0xfe, 0x00, 0x80, b'{'],
        "José".as_bytes().to_vec(),
    ] {
        let answer = send_signed(
            SignRequestLayer::new(BodyHmac::onekey(), secret.clone(), local(addr)).unwrap(),
            post(addr, "/").body(full(body.clone())).unwrap(),
        )
        .await;
        assert_eq!(answer.status, StatusCode::OK);
        let echo = answer.json();
        assert_eq!(echo["body_hex"], hex::encode(&body));
        assert_eq!(
            echo["headers"]["payload-signature"],
            BodyHmac::onekey().compute(&secret, &body)
        );
    }
}

#[tokio::test]
async fn body_limit_with_and_without_content_length() {
    let secret = Secret::from_string("k");
    let addr = serve(
        VerifySignatureLayer::new(BodyHmac::onekey(), secret.clone())
            .unwrap()
            .body_limit(64),
    )
    .await;
    let too_large = rejection_json(
        "payload_too_large",
        "request body is larger than the limit: 64 bytes",
    );
    for len in [63usize, 64, 65] {
        let body = vec![b'a'; len];
        let header = (
            "payload-signature",
            BodyHmac::onekey().compute(&secret, &body),
        );
        let halves: [&[u8]; 3] = [&body[..10], &body[10..40], &body[40..]];
        for (shape, request) in [
            (
                "content-length",
                signed_post(addr, header.clone(), full(body.clone())),
            ),
            (
                "chunked",
                signed_post(addr, header.clone(), chunked(&halves)),
            ),
        ] {
            let answer = send_raw(request).await;
            if len <= 64 {
                assert_eq!(answer.status, StatusCode::OK, "{len} {shape}");
                assert_eq!(answer.json()["body_hex"], hex::encode(&body));
                let headers = &answer.json()["headers"];
                if shape == "chunked" {
                    // It really went chunked over the wire.
                    assert_eq!(headers["transfer-encoding"], "chunked");
                    assert!(headers.get("content-length").is_none());
                } else {
                    assert_eq!(headers["content-length"], len.to_string());
                }
            } else {
                assert_eq!(
                    answer.status,
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "{len} {shape}"
                );
                assert_eq!(answer.body, too_large);
                assert_eq!(answer.headers["content-type"], "application/json");
            }
        }
    }
}

/// Writes raw bytes to the server and reads its first response head and body.
async fn raw_exchange(
    addr: std::net::SocketAddr,
    bytes: &[u8],
    close_write: bool,
) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    if close_write {
        stream.shutdown().await.unwrap();
    }
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    // Read until one full response (head + Content-Length body) is in.
    let read = async {
        loop {
            let n = stream.read(&mut buf).await.unwrap();
            received.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&received).into_owned();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length: ")
                            .map(str::to_owned)
                    })
                    .map_or(0, |l| l.trim().parse::<usize>().unwrap());
                if body.len() >= length {
                    let status = head[9..12].parse().unwrap();
                    return (status, body[..length].to_owned());
                }
            }
            if n == 0 {
                panic!("connection closed before a full response: {text:?}");
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("the server answered")
}

#[tokio::test]
async fn lying_content_length() {
    let secret = Secret::from_string("k");
    let addr = serve(
        VerifySignatureLayer::new(BodyHmac::onekey(), secret.clone())
            .unwrap()
            .body_limit(1024),
    )
    .await;

    // Declares more than the limit but sends three bytes and keeps the connection open:
    // refused from the header alone, before reading the body.
    let head =
        "POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 1000000\r\npayload-signature: 00\r\n\r\nabc";
    let (status, body) = raw_exchange(addr, head.as_bytes(), false).await;
    assert_eq!(status, 413);
    assert_eq!(
        body.as_bytes(),
        rejection_json(
            "payload_too_large",
            "request body is larger than the limit: 1024 bytes"
        )
    );

    /// A request whose `Content-Length` lies, and what the server answers.
    struct Lie {
        signed: &'static [u8],
        declared: usize,
        sent: &'static str,
        /// The client closes its side after sending.
        close: bool,
        status: u16,
        rejection: Option<(&'static str, &'static str)>,
    }
    for lie in [
        // Declares ten, sends five, then closes: the body cannot be read.
        Lie {
            signed: b"hello",
            declared: 10,
            sent: "hello",
            close: true,
            status: 400,
            rejection: Some(("body_read_failed", "request body could not be read")),
        },
        // Declares three, sends six signed as six: the server verifies the three it read.
        Lie {
            signed: b"abcdef",
            declared: 3,
            sent: "abcdef",
            close: false,
            status: 401,
            rejection: Some(("signature_invalid", "the signature does not match")),
        },
        // The same three bytes signed as three pass.
        Lie {
            signed: b"abc",
            declared: 3,
            sent: "abcdef",
            close: false,
            status: 200,
            rejection: None,
        },
    ] {
        let signature = BodyHmac::onekey().compute(&secret, lie.signed);
        let head = format!(
            "POST / HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\npayload-signature: \
             {signature}\r\n\r\n{}",
            lie.declared, lie.sent
        );
        let (status, body) = raw_exchange(addr, head.as_bytes(), lie.close).await;
        assert_eq!(
            status, lie.status,
            "{:?} as {}: {body}",
            lie.sent, lie.declared
        );
        match lie.rejection {
            Some((code, message)) => assert_eq!(body.as_bytes(), rejection_json(code, message)),
            None => assert!(body.contains("\"body_hex\":\"616263\""), "{body}"),
        }
    }
}

#[tokio::test]
async fn inner_service_receives_the_same_bytes() {
    let secret = Secret::from_string("k");
    let original = Bytes::from(vec![42u8; 4096]);
    let (ptr, len) = (original.as_ptr() as usize, original.len());
    let seen: Arc<Mutex<Vec<(usize, usize)>>> = Arc::default();
    let store = Arc::clone(&seen);
    let service = ServiceBuilder::new()
        .layer(VerifySignatureLayer::new(BodyHmac::onekey(), secret.clone()).unwrap())
        .service(service_fn(move |req: Request<BufferedBody>| {
            let body = req.body().bytes().unwrap();
            let ext = req.extensions().get::<VerifiedBody>().unwrap().bytes();
            let mut seen = store.lock().unwrap();
            seen.push((body.as_ptr() as usize, body.len()));
            seen.push((ext.as_ptr() as usize, ext.len()));
            async { Ok::<_, Infallible>(Response::new(Full::new(Bytes::new()))) }
        }));
    let request = Request::post("/")
        .header(
            "payload-signature",
            BodyHmac::onekey().compute(&secret, &original),
        )
        .body(Full::new(original.clone()))
        .unwrap();
    let response = service.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(*seen.lock().unwrap(), vec![(ptr, len), (ptr, len)]);
}

#[tokio::test]
async fn clock_skew_at_and_past_the_window() {
    let secret = Secret::from_string("k");
    let server_clock = ManualClock::new(T);
    let addr = serve(
        VerifySignatureLayer::new(Canonical::new(), secret.clone())
            .unwrap()
            .clock(server_clock),
    )
    .await;
    for (client_time, status, message) in [
        (T - 300, StatusCode::OK, None),
        (T + 300, StatusCode::OK, None),
        (
            T - 301,
            StatusCode::UNAUTHORIZED,
            Some("timestamp is outside the accepted window: too old"),
        ),
        (
            T + 301,
            StatusCode::UNAUTHORIZED,
            Some("timestamp is outside the accepted window: too far in the future"),
        ),
        // Milliseconds where seconds are expected.
        (
            T * 1000,
            StatusCode::UNAUTHORIZED,
            Some("timestamp is outside the accepted window: too far in the future"),
        ),
    ] {
        let layer = SignRequestLayer::new(Canonical::new(), secret.clone(), local(addr))
            .unwrap()
            .clock(ManualClock::new(client_time));
        let answer = send_signed(layer, post(addr, "/skew").body(full("{}")).unwrap()).await;
        assert_eq!(answer.status, status, "{client_time}");
        match message {
            None => assert_eq!(answer.json()["verified"]["timestamp"], client_time),
            Some(message) => assert_eq!(
                answer.body,
                rejection_json("timestamp_out_of_window", message)
            ),
        }
    }

    // Stripe-style and Standard Webhooks read the same window.
    let stripe = Stripe::new().tolerance(Duration::from_secs(60));
    let addr = serve(
        VerifySignatureLayer::new(stripe.clone(), secret.clone())
            .unwrap()
            .clock(ManualClock::new(T)),
    )
    .await;
    for (ts, status) in [(T - 60, 200), (T + 60, 200), (T - 61, 401), (T * 1000, 401)] {
        let header = ("stripe-signature", stripe.compute(&secret, ts, b"{}"));
        assert_eq!(
            send_raw(signed_post(addr, header, full("{}")))
                .await
                .status
                .as_u16(),
            status,
            "{ts}"
        );
    }
}

#[tokio::test]
async fn malformed_and_missing_headers() {
    let secret = Secret::from_string("k");
    let hex_sig = BodyHmac::onekey().compute(&secret, b"{}");

    let addr = serve(VerifySignatureLayer::new(BodyHmac::onekey(), secret.clone()).unwrap()).await;
    let answer = send_raw(post(addr, "/").body(full("{}")).unwrap()).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        answer.body,
        rejection_json(
            "signature_missing",
            "the signature is missing: `payload-signature`"
        )
    );
    for bad in [
        "xyz".to_owned(),
        hex_sig.to_uppercase(),
        hex_sig[1..].to_owned(),
        format!("{hex_sig}0"),
        format!("sha256={hex_sig}"),
    ] {
        let answer = send_raw(signed_post(
            addr,
            ("payload-signature", bad.clone()),
            full("{}"),
        ))
        .await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(answer.code(), "signature_malformed", "{bad}");
    }
    let twice = post(addr, "/")
        .header("payload-signature", &hex_sig)
        .header("payload-signature", &hex_sig)
        .body(full("{}"))
        .unwrap();
    let answer = send_raw(twice).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        answer.body,
        rejection_json(
            "signature_malformed",
            "the signature cannot be parsed: a signature header is sent more than once"
        )
    );

    let addr = serve(VerifySignatureLayer::new(BodyHmac::github(), secret.clone()).unwrap()).await;
    for bad in [hex_sig.clone(), format!("sha1={hex_sig}")] {
        let answer = send_raw(signed_post(addr, ("x-hub-signature-256", bad), full("{}"))).await;
        assert_eq!(
            answer.body,
            rejection_json(
                "signature_malformed",
                "the signature cannot be parsed: the signature does not start with the expected \
                 prefix"
            )
        );
    }

    let canonical = Canonical::new();
    let addr = serve(
        VerifySignatureLayer::new(canonical.clone(), secret.clone())
            .unwrap()
            .clock(ManualClock::new(T)),
    )
    .await;
    let sig = canonical.compute(&secret, "POST", "/", b"{}", T);
    let no_ts = signed_post(addr, ("x-signature", sig.clone()), full("{}"));
    let answer = send_raw(no_ts).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        answer.body,
        rejection_json(
            "timestamp_malformed",
            "timestamp must be Unix seconds as ASCII digits"
        )
    );
    for ts in [
        "+1700000000",
        "1700000000.0",
        "1.7e9",
        "-1",
        "",
        "0x6553f100",
        "17000000000000000000000",
    ] {
        let request = post(addr, "/")
            .header("x-signature", &sig)
            .header("x-timestamp", ts)
            .body(full("{}"))
            .unwrap();
        let answer = send_raw(request).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{ts:?}");
        assert_eq!(answer.code(), "timestamp_malformed", "{ts:?}");
    }
    let b64 = canonical
        .clone()
        .encoding(tollgate_signature::Encoding::Base64)
        .compute(&secret, "POST", "/", b"{}", T);
    let request = post(addr, "/")
        .header("x-signature", b64)
        .header("x-timestamp", T.to_string())
        .body(full("{}"))
        .unwrap();
    assert_eq!(send_raw(request).await.code(), "signature_malformed");

    let sw = StandardWebhooks::new();
    let addr = serve(
        VerifySignatureLayer::new(sw.clone(), secret.clone())
            .unwrap()
            .clock(ManualClock::new(T)),
    )
    .await;
    let good = sw.compute(&secret, "msg_1", T, b"{}");
    let send_sw = |id: Option<&'static str>, ts: Option<String>, sig: Option<String>| {
        let mut builder = post(addr, "/");
        if let Some(id) = id {
            builder = builder.header("webhook-id", id);
        }
        if let Some(ts) = ts {
            builder = builder.header("webhook-timestamp", ts);
        }
        if let Some(sig) = sig {
            builder = builder.header("webhook-signature", sig);
        }
        send_raw(builder.body(full("{}")).unwrap())
    };
    let ts = || Some(T.to_string());
    assert_eq!(
        send_sw(Some("msg_1"), ts(), Some(good.clone()))
            .await
            .status,
        StatusCode::OK
    );
    for (case, answer, status, code) in [
        (
            "no signature",
            send_sw(Some("msg_1"), ts(), None).await,
            401,
            "signature_missing",
        ),
        (
            "no comma",
            send_sw(Some("msg_1"), ts(), Some("v1".into())).await,
            400,
            "signature_malformed",
        ),
        (
            "bad base64",
            send_sw(Some("msg_1"), ts(), Some("v1,!!!!".into())).await,
            400,
            "signature_malformed",
        ),
        (
            "no id",
            send_sw(None, ts(), Some(good.clone())).await,
            400,
            "signature_malformed",
        ),
        (
            "no timestamp",
            send_sw(Some("msg_1"), None, Some(good.clone())).await,
            400,
            "timestamp_malformed",
        ),
        (
            "unknown version only",
            send_sw(Some("msg_1"), ts(), Some(format!("v1a,{}", &good[3..]))).await,
            401,
            "signature_invalid",
        ),
    ] {
        assert_eq!(answer.status.as_u16(), status, "{case}");
        assert_eq!(answer.code(), code, "{case}");
    }

    let addr = serve(
        VerifySignatureLayer::new(Stripe::new(), secret.clone())
            .unwrap()
            .clock(ManualClock::new(T)),
    )
    .await;
    let v1 = "ab".repeat(32);
    for (header, status, code) in [
        ("garbage".to_owned(), 400, "signature_malformed"),
        (format!("t={T},t={T},v1={v1}"), 400, "signature_malformed"),
        (format!("v1={v1}"), 400, "signature_malformed"),
        (format!("t={T},v1=XYZ"), 400, "signature_malformed"),
        (format!("t=abc,v1={v1}"), 400, "timestamp_malformed"),
        (format!("t=-1,v1={v1}"), 400, "timestamp_malformed"),
        (format!("t={T},v0={v1}"), 401, "signature_invalid"),
    ] {
        let answer = send_raw(signed_post(
            addr,
            ("stripe-signature", header.clone()),
            full("{}"),
        ))
        .await;
        assert_eq!(answer.status.as_u16(), status, "{header}");
        assert_eq!(answer.code(), code, "{header}");
    }
}

#[tokio::test]
async fn rejection_is_replaceable_and_structured() {
    let service = ServiceBuilder::new()
        .layer(
            VerifySignatureLayer::new(BodyHmac::onekey(), Secret::from_string("k"))
                .unwrap()
                .on_rejection(|rejection: &Rejection| {
                    let mut response =
                        Response::new(Bytes::from(format!("no: {}", rejection.code())));
                    *response.status_mut() = StatusCode::IM_A_TEAPOT;
                    response
                }),
        )
        .service(service_fn(|_req: Request<BufferedBody>| async {
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
        }));
    let response = service
        .oneshot(Request::post("/").body(Full::new(Bytes::new())).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::IM_A_TEAPOT);
    assert_eq!(
        response.extensions().get::<Rejection>().unwrap().code(),
        "signature_missing"
    );
    assert_eq!(
        response.into_body().collect().await.unwrap().to_bytes(),
        "no: signature_missing"
    );
}

#[test]
fn public_types_are_send_sync_clone() {
    fn assert_send_sync_clone<T: Send + Sync + Clone>() {}
    fn assert_send<T: Send>() {}
    assert_send_sync_clone::<VerifySignatureLayer>();
    assert_send_sync_clone::<SignRequestLayer>();
    assert_send_sync_clone::<tollgate_signature::VerifySignature<axum::Router>>();
    assert_send_sync_clone::<tollgate_signature::SignRequest<axum::Router>>();
    assert_send_sync_clone::<VerifiedSignature>();
    assert_send_sync_clone::<VerifiedBody>();
    assert_send::<VerifySignatureFuture<axum::Router, hyper::body::Incoming>>();
    assert_send::<VerifySignatureFuture<axum::Router, axum::body::Body>>();
    // Nothing is boxed any more, so `Send` follows from the client and the body.
    type HyperClient = hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        BufferedBody,
    >;
    assert_send::<SignRequestFuture<HyperClient, Full<Bytes>>>();
    assert_send::<SignRequestFuture<HyperClient, axum::body::Body>>();
}

/// Polls `future` to its answer, then once more: the second poll is `Pending` (core's rule
/// for every tollgate future), never a panic or a second answer.
fn answer_then_pending<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    let Poll::Ready(output) = future.as_mut().poll(&mut cx) else {
        panic!("the future was not ready at once");
    };
    assert!(future.as_mut().poll(&mut cx).is_pending());
    output
}

#[test]
fn polling_after_completion_stays_pending() {
    let secret = Secret::from_string("k");
    let echo = service_fn(|_req: Request<BufferedBody>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
    });
    let mut verify = VerifySignatureLayer::new(BodyHmac::onekey(), secret.clone())
        .unwrap()
        .layer(echo);
    let signed = || {
        Request::post("/")
            .header(
                "payload-signature",
                BodyHmac::onekey().compute(&secret, b"{}"),
            )
            .body(Full::new(Bytes::from_static(b"{}")))
            .unwrap()
    };
    // Verified and answered by the inner service; refused by the layer; refused in `call`.
    let ok = answer_then_pending(Service::call(&mut verify, signed())).unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let refused = answer_then_pending(Service::call(
        &mut verify,
        Request::post("/").body(Full::new(Bytes::new())).unwrap(),
    ))
    .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let mut too_large = signed();
    too_large
        .headers_mut()
        .insert(http::header::CONTENT_LENGTH, (2 << 20).into());
    let refused = answer_then_pending(Service::call(&mut verify, too_large)).unwrap();
    assert_eq!(refused.status(), StatusCode::PAYLOAD_TOO_LARGE);

    let mut sign = SignRequestLayer::new(BodyHmac::onekey(), secret, api())
        .unwrap()
        .layer(echo);
    let to_api = Request::post(API)
        .body(Full::new(Bytes::from_static(b"{}")))
        .unwrap();
    let sent = answer_then_pending(Service::call(&mut sign, to_api)).unwrap();
    assert_eq!(sent.status(), StatusCode::OK);
    let elsewhere = Request::post("http://elsewhere.example/")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let err = answer_then_pending(Service::call(&mut sign, elsewhere)).unwrap_err();
    assert!(matches!(
        err.downcast_ref::<SignError>(),
        Some(SignError::UpstreamNotAllowed { .. })
    ));
    let too_large = Request::post(API)
        .body(Full::new(Bytes::from(vec![0; (1 << 20) + 1])))
        .unwrap();
    let err = answer_then_pending(Service::call(&mut sign, too_large)).unwrap_err();
    assert!(matches!(
        err.downcast_ref::<SignError>(),
        Some(SignError::Body(BufferError::TooLarge { .. }))
    ));
}

/// The reference libraries' lax header forms pass through the layer over TCP.
#[tokio::test]
async fn reference_header_forms_over_tcp() {
    let secret = Secret::from_string("whsec_test_secret");
    let addr = serve(
        VerifySignatureLayer::new(Stripe::new(), secret.clone())
            .unwrap()
            .clock(ManualClock::new(T)),
    )
    .await;
    let good = Stripe::new().compute(&secret, T, &b"{}"[..]);
    let v1 = good.split_once(",v1=").unwrap().1.to_owned();
    for header in [
        format!("{good},v1=potato"),
        format!("v1=potato, v1={v1} , t={T},v0=abc"),
    ] {
        let answer = send_raw(signed_post(
            addr,
            ("stripe-signature", header.clone()),
            full("{}"),
        ))
        .await;
        assert_eq!(answer.status, StatusCode::OK, "{header}");
    }

    let key = StandardWebhooks::secret_from_base64("c2VjcmV0LWtleS1ieXRlcw==").unwrap();
    let addr = serve(
        VerifySignatureLayer::new(StandardWebhooks::new(), key.clone())
            .unwrap()
            .clock(ManualClock::new(T)),
    )
    .await;
    let good = StandardWebhooks::new().compute(&key, "msg_1", T, b"{}");
    let request = post(addr, "/")
        .header("webhook-id", "msg_1")
        .header("webhook-timestamp", T.to_string())
        .header("webhook-signature", format!("v1,!!!! v1a,xyz {good}"))
        .body(full("{}"))
        .unwrap();
    assert_eq!(send_raw(request).await.status, StatusCode::OK);
}

/// Configuration errors surface when a layer is built, never per request. A signing layer
/// whose signing key is blank used to fail every request with `SignError::InvalidKey`; a
/// verifying layer whose every key is blank used to answer every request 401
/// `signature_invalid`. Neither can be built now.
#[test]
fn blank_keys_fail_when_the_layer_is_built() {
    for blank in ["", " ", "\t\n", "\u{3000}"] {
        assert_eq!(
            SignRequestLayer::new(BodyHmac::onekey(), Secret::from_string(blank), api())
                .unwrap_err(),
            ConfigError::BlankSigningKey {
                key_id: "default".into()
            },
            "{blank:?}"
        );
        assert_eq!(
            VerifySignatureLayer::new(BodyHmac::onekey(), Secret::from_string(blank)).unwrap_err(),
            ConfigError::NoUsableKey,
            "{blank:?}"
        );
    }
    // The signing key is the newest: a blank one is refused even beside a good older key.
    let rotated = KeyRing::new(Key::new("2026-08", Secret::from_string("old-secret")))
        .rotate(Key::new("2026-11", Secret::from_bytes(vec![0; 32])));
    let err = SignRequestLayer::new(Canonical::new(), rotated.clone(), api()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the signing key `2026-11` is empty, all zero bytes or only whitespace; refusing to sign \
         with it"
    );
    // Verifying: one usable key is enough; the blank one is skipped per request.
    assert!(VerifySignatureLayer::new(Canonical::new(), rotated).is_ok());
    let all_blank = KeyRing::new(Key::new("a", Secret::from_string("")))
        .rotate(Key::new("b", Secret::from_string("\u{feff}")));
    assert_eq!(
        VerifySignatureLayer::new(Canonical::new(), all_blank)
            .unwrap_err()
            .to_string(),
        "every key of the ring is empty, all zero bytes or only whitespace; nothing could verify"
    );
}

/// One message signed twice in one second (two separate calls, not a retry): the second is
/// signed a second ahead, so no signature repeats; a burst stops half the tolerance (150 s of
/// ±300 s) ahead; a scheme that
/// signs no time signs the same every time. Clones share the memory.
#[tokio::test]
async fn no_signature_is_made_twice() {
    let clock = ManualClock::new(1_700_000_000);
    let seen = service_fn(|request: Request<BufferedBody>| async move {
        let header = |name: &str| {
            request
                .headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
        };
        Ok::<_, Infallible>(Response::new((
            header("x-timestamp"),
            header("x-signature"),
        )))
    });
    let layer = SignRequestLayer::new(Canonical::new(), Secret::from_string("k"), api())
        .unwrap()
        .clock(clock.clone());
    let call = |layer: &SignRequestLayer, body: &'static str| {
        let service = layer.layer(seen);
        async move {
            let request = Request::post("http://api.example/v1/balance")
                .body(Full::new(Bytes::from_static(body.as_bytes())))
                .unwrap();
            service.oneshot(request).await.unwrap().into_body()
        }
    };
    let (first_ts, first_sig) = call(&layer, "{}").await;
    let (second_ts, second_sig) = call(&layer.clone(), "{}").await;
    assert_eq!(first_ts.as_deref(), Some("1700000000"));
    assert_eq!(second_ts.as_deref(), Some("1700000001"));
    assert_ne!(first_sig, second_sig);
    // Another message in the same second: signed at the clock's time.
    assert_eq!(
        call(&layer, "{\"a\":1}").await.0.as_deref(),
        Some("1700000000")
    );
    // A burst: at most half the tolerance (300 s) ahead, then the same signature again.
    let mut last = String::new();
    for _ in 0..160 {
        last = call(&layer, "{}").await.0.unwrap();
    }
    assert_eq!(last, "1700000150");
    // A narrow window: never signed where its verifier would refuse it.
    let narrow = SignRequestLayer::new(
        Canonical::new().tolerance(Duration::from_secs(5)),
        Secret::from_string("k"),
        api(),
    )
    .unwrap()
    .clock(clock.clone());
    let mut times = Vec::new();
    for _ in 0..4 {
        times.push(call(&narrow, "{\"n\":1}").await.0.unwrap());
    }
    assert_eq!(
        times,
        ["1700000000", "1700000001", "1700000002", "1700000002"]
    );
    // More distinct messages in one second than the old limit of 256, then a repeat of the
    // first: still signed apart.
    let many = SignRequestLayer::new(Canonical::new(), Secret::from_string("k"), api())
        .unwrap()
        .clock(clock.clone());
    let first = call(&many, "{}").await.0;
    for i in 0..300 {
        let body: &'static str = Box::leak(format!("{{\"i\":{i}}}").into_boxed_str());
        call(&many, body).await;
    }
    assert_ne!(call(&many, "{}").await.0, first);
    // Once the clock passes them, the times are free again.
    clock.set(1_700_000_200);
    assert_eq!(call(&layer, "{}").await.0.as_deref(), Some("1700000200"));
    // A scheme that signs no time: the same signature, at once.
    let untimed = SignRequestLayer::new(BodyHmac::onekey(), Secret::from_string("k"), api())
        .unwrap()
        .clock(clock.clone());
    let header = |request: Request<BufferedBody>| async move {
        Ok::<_, Infallible>(Response::new(
            request.headers().get("payload-signature").cloned(),
        ))
    };
    let mut signatures = Vec::new();
    for _ in 0..2 {
        let request = Request::post("http://api.example/v1/cashout")
            .body(Full::new(Bytes::from_static(b"{}")))
            .unwrap();
        let response = untimed
            .layer(service_fn(header))
            .oneshot(request)
            .await
            .unwrap();
        signatures.push(response.into_body());
    }
    assert_eq!(signatures[0], signatures[1]);
}

/// A clock that counts how often it is read.
#[derive(Debug, Clone)]
struct CountingClock {
    clock: ManualClock,
    reads: Arc<AtomicUsize>,
}

impl CountingClock {
    fn new(now: u64) -> Self {
        Self {
            clock: ManualClock::new(now),
            reads: Arc::new(AtomicUsize::new(0)),
        }
    }

    fn reads(&self) -> usize {
        self.reads.load(Ordering::SeqCst)
    }
}

impl tollgate_core::Clock for CountingClock {
    fn now_unix(&self) -> u64 {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.clock.now_unix()
    }
}

/// A body-only scheme checks no time, so the layer reads its clock only when a key of the
/// ring expires; an expired key is still refused (the clock is read for it), and a scheme with
/// a timestamp reads the clock for every request.
#[tokio::test]
async fn the_clock_is_read_only_when_the_answer_depends_on_it() {
    let old = Key::new("2026-08", Secret::from_string("old-secret")).not_after(T);
    let new = Key::new("2026-11", Secret::from_string("new-secret"));
    let send = |addr, key: &Key| {
        let signature = BodyHmac::onekey().compute(key.secret(), b"{}");
        send_raw(signed_post(
            addr,
            ("payload-signature", signature),
            full("{}"),
        ))
    };

    // No key expires: three requests, no read.
    let clock = CountingClock::new(T + 1);
    let timeless = KeyRing::new(new.clone());
    let layer = VerifySignatureLayer::new(BodyHmac::onekey(), timeless).unwrap();
    let addr = serve(layer.clock(clock.clone())).await;
    for _ in 0..3 {
        assert_eq!(send(addr, &new).await.status, StatusCode::OK);
    }
    assert_eq!(clock.reads(), 0);

    // A key expires: read per request, and the expired key fails past its not-after.
    let clock = CountingClock::new(T + 1);
    let expiring = KeyRing::new(old.clone()).rotate(new.clone());
    let layer = VerifySignatureLayer::new(BodyHmac::onekey(), expiring).unwrap();
    let addr = serve(layer.clock(clock.clone())).await;
    let answer = send(addr, &old).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        answer.body,
        rejection_json("signature_invalid", "the signature does not match")
    );
    assert_eq!(send(addr, &new).await.status, StatusCode::OK);
    assert_eq!(clock.reads(), 2);
    clock.clock.set(T);
    assert_eq!(send(addr, &old).await.status, StatusCode::OK);
    assert_eq!(clock.reads(), 3);

    // A timestamped scheme reads the clock for its window, expiring keys or not.
    let clock = CountingClock::new(T);
    let layer = VerifySignatureLayer::new(Canonical::new(), KeyRing::new(new.clone())).unwrap();
    let addr = serve(layer.clock(clock.clone())).await;
    let signer = SignRequestLayer::new(Canonical::new(), KeyRing::new(new), local(addr))
        .unwrap()
        .clock(ManualClock::new(T));
    let answer = send_signed(signer, post(addr, "/").body(full("{}")).unwrap()).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(clock.reads(), 1);
}
