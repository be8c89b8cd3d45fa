//! Regression tests from an attacker's review of the second round of fixes: each failed
//! before its fix (slow bodies holding every slot of the example servers; all-zero keys, which
//! HMAC treats as the empty key, passing the blank-secret rule).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tollgate::core::{BufferedBody, Key, KeyRing, Secret};
use tollgate::signature::{
    BodyHmac, ConfigError, SignRequestLayer, StandardWebhooks, Upstream, VerifySignatureLayer,
};
use tower::{ServiceBuilder, ServiceExt, service_fn};

/// The tight limits the receiver runs with here: 2 connections, a 300 ms head timeout, a 500 ms
/// request timeout.
fn limits() -> webhook_receiver::Limits {
    webhook_receiver::Limits {
        header_read_timeout: Duration::from_millis(300),
        request_timeout: Duration::from_millis(500),
        max_connections: 2,
        ..webhook_receiver::Limits::default()
    }
}

/// The webhook receiver on a loopback port, within [`limits`].
async fn start_receiver() -> std::net::SocketAddr {
    let config =
        webhook_receiver::Config::from_vars(webhook_receiver::Secrets::Demo, |_| None).unwrap();
    let app = webhook_receiver::app(&config, webhook_receiver::Inbox::default()).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(webhook_receiver::serve(listener, app, limits()));
    addr
}

/// FINDING 1 (slow body after fast headers). The example servers copy-paste the same loop:
/// a semaphore of `max_connections` plus hyper's `header_read_timeout`. The header timeout
/// stops once the head is complete; nothing bounds the body. `VerifySignatureLayer` (and
/// axum's `Bytes` extractor in transak-partner) waits for the declared body for ever, so
/// `max_connections` clients that send a complete head, `Content-Length: 100` and one byte
/// hold every slot indefinitely: every other client waits in the backlog and is never served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_bodies_never_hold_every_connection_slot() {
    let addr = start_receiver().await;

    // The attacker: complete heads at once, then one body byte, then nothing.
    let mut held = Vec::new();
    for _ in 0..limits().max_connections {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(
            b"POST /webhooks/onekey HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
              content-length: 100\r\n\r\n{",
        )
        .await
        .unwrap();
        held.push(s);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;

    // An honest sender, well after 10x the header-read timeout: never answered.
    let honest = async {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(
            b"POST /webhooks/onekey HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\
              connection: close\r\n\r\n{}",
        )
        .await
        .unwrap();
        let mut answer = Vec::new();
        s.read_to_end(&mut answer).await.unwrap();
        answer
    };
    let answer = tokio::time::timeout(Duration::from_secs(3), honest).await;
    drop(held);
    assert!(
        answer.is_ok(),
        "2 stalled bodies hold both slots: an honest client got no answer in 3 s \
         (header_read_timeout 300 ms)"
    );
}

/// FINDING 2 (blank-key rule misses keys HMAC treats as the empty key). HMAC pads a key
/// shorter than the block (64 bytes) with zero bytes, so `""`, `"\0"` and `[0u8; 32]` are
/// the SAME HMAC key. `Secret::is_blank` only looks at UTF-8 whitespace, so an all-zero key
/// (`whsec_AAAA...`, a hex "00.." placeholder decoded, a zeroed buffer) passes every check,
/// and a MAC anyone computes with the empty key verifies.
#[tokio::test]
async fn an_all_zero_key_is_blank_and_a_mac_under_the_empty_key_never_verifies() {
    // Standard Webhooks: 32 zero bytes are refused as a blank secret, and so is "\0".
    assert!(
        StandardWebhooks::secret_from_whsec("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
            .is_err()
    );
    assert!(Secret::from_bytes(vec![0u8; 32]).check_usable("x").is_err());
    assert!(Secret::from_string("\0").check_usable("x").is_err());

    // A forger who knows nothing computes the MAC with the EMPTY key ...
    let body = br#"{"event":"payout.completed","amount":1000000}"#;
    let forged = BodyHmac::onekey().compute(&Secret::from_string(""), body);
    // ... and a verifier keyed with the all-zero secret accepts it. Now a ring with only that
    // key is refused when the layer is built ...
    assert!(
        matches!(
            VerifySignatureLayer::new(
                BodyHmac::onekey(),
                KeyRing::single(Secret::from_bytes(vec![0u8; 32])),
            ),
            Err(ConfigError::NoUsableKey)
        ),
        "a verifier whose only key is all zeros was built"
    );
    // ... and beside a real key, the all-zero key verifies nothing.
    let verifier = ServiceBuilder::new()
        .layer(
            VerifySignatureLayer::new(
                BodyHmac::onekey(),
                KeyRing::new(Key::new("zero", Secret::from_bytes(vec![0u8; 32])))
                    .rotate(Key::new("real", Secret::from_string("real-secret"))),
            )
            .unwrap(),
        )
        .service(service_fn(|_r: Request<BufferedBody>| async {
            Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::new())))
        }));
    let request = Request::post("/webhooks/onekey")
        .header("payload-signature", forged)
        .body(Full::new(Bytes::from_static(body)))
        .unwrap();
    let status = verifier.oneshot(request).await.unwrap().status();
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a MAC under the empty key verified against an all-zero secret"
    );
}

/// FINDING 2b: the signer likewise signs with "\0" (== the empty key) instead of refusing.
/// Now the layer is never built, so nothing can be signed with it.
#[test]
fn the_signer_refuses_a_nul_key() {
    let built = SignRequestLayer::new(
        BodyHmac::onekey(),
        KeyRing::single(Secret::from_string("\0")),
        Upstream::parse("http://127.0.0.1:9").unwrap(),
    );
    assert!(
        matches!(built, Err(ConfigError::BlankSigningKey { .. })),
        "a signer whose key's MACs equal the empty key's was built"
    );
}

/// Control for FINDING 1 (passes): without the stalled bodies the honest client is answered
/// at once, so the failure above is the slots being held, not the test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_honest_client_is_answered_without_the_attack() {
    let addr = start_receiver().await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(
        b"POST /webhooks/onekey HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}",
    )
    .await
    .unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(3), s.read_to_end(&mut answer))
        .await
        .unwrap()
        .unwrap();
    assert!(
        answer.starts_with(b"HTTP/1.1 401"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
}
