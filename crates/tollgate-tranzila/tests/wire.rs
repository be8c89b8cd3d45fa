//! What goes on the wire: header-name case both ways over raw loopback sockets, and two
//! verifying instances with skewed clocks sharing a real Redis.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tollgate_core::ManualClock;
use tollgate_replay::{RedisNonceStore, replay_key};
use tollgate_test_support::RedisServer;
use tollgate_tranzila::{TranzilaCredentials, TranzilaSigningLayer, TranzilaVerifyLayer};
use tower::{Service, ServiceBuilder, ServiceExt};

const APP_KEY: &str = "pub_app_key_demo";
const SECRET: &str = "private_secret_demo";
const TIME: &str = "1700000000";
const NONCE: &str =
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f2021222324252627";
const TOKEN: &str = "856f5100b954853bf4470826f7eb85376958d000c1a9b5c872b9f5e42dac3b16";

fn credentials() -> TranzilaCredentials {
    TranzilaCredentials::new(APP_KEY, SECRET).unwrap()
}

/// Reads one HTTP/1 request head from `socket`.
async fn read_head(socket: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(
            socket.read(&mut byte).await.unwrap(),
            1,
            "connection closed"
        );
        head.push(byte[0]);
    }
    String::from_utf8(head).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_signing_layer_sends_lowercase_names_over_http1() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let head = read_head(&mut socket).await;
        socket
            .write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
            .await
            .unwrap();
        head
    });
    let mut client = ServiceBuilder::new()
        .layer(
            TranzilaSigningLayer::new(credentials(), common::upstream(addr))
                .unwrap()
                .clock(ManualClock::new(1_700_000_000))
                .with_nonce_source(|| NONCE.to_owned()),
        )
        .service(common::client());
    let request = Request::post(format!("http://{addr}/v1/charge"))
        .body(Full::new(Bytes::from_static(b"{}")))
        .unwrap();
    let response = client.ready().await.unwrap().call(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let head = server.await.unwrap();
    // hyper writes the names as `http` stores them, lowercase; the values exactly as signed.
    let lines: Vec<&str> = head.lines().collect();
    for expected in [
        format!("x-tranzila-api-app-key: {APP_KEY}"),
        format!("x-tranzila-api-request-time: {TIME}"),
        format!("x-tranzila-api-nonce: {NONCE}"),
        format!("x-tranzila-api-access-token: {TOKEN}"),
    ] {
        assert!(
            lines.contains(&expected.as_str()),
            "{expected} not in\n{head}"
        );
    }
    assert!(!head.contains("X-tranzila"), "{head}");
}

/// Sends raw HTTP/1 bytes and returns the status code and body.
async fn raw(addr: std::net::SocketAddr, headers: &[(&str, &str)]) -> (u16, String) {
    let mut request = String::from("POST /v1/charge HTTP/1.1\r\nhost: localhost\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("content-length: 2\r\nconnection: close\r\n\r\n{}");
    let mut socket = TcpStream::connect(addr).await.unwrap();
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    socket.read_to_end(&mut response).await.unwrap();
    let response = String::from_utf8(response).unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    (status, body)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_verify_layer_takes_any_case_once_and_refuses_two_copies() {
    let clock = ManualClock::new(1_700_000_000);
    let addr = common::serve(
        TranzilaVerifyLayer::new(credentials(), common::store(clock.clone()))
            .unwrap()
            .clock(clock),
    )
    .await;
    // Two copies of the nonce, spelled differently: one header twice, refused.
    let (status, body) = raw(
        addr,
        &[
            ("X-tranzila-api-app-key", APP_KEY),
            ("X-tranzila-api-request-time", TIME),
            ("X-tranzila-api-nonce", NONCE),
            ("x-TRANZILA-API-NONCE", NONCE),
            ("X-tranzila-api-access-token", TOKEN),
        ],
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        r#"{"error":{"code":"header_malformed","message":"a required header is missing or malformed: `x-tranzila-api-nonce` must be present once, as visible ASCII"}}"#
    );
    // The PHP documentation's spelling, upper case, lower case: all the same header.
    let (status, body) = raw(
        addr,
        &[
            ("X-tranzila-api-app-key", APP_KEY),
            ("X-TRANZILA-API-REQUEST-TIME", TIME),
            ("x-tranzila-api-nonce", NONCE),
            ("X-Tranzila-Api-Access-Token", TOKEN),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, format!("{APP_KEY} {NONCE} {{}}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skewed_instances_sharing_redis_refuse_the_replay() {
    let Some(redis) = RedisServer::start_or_skip("tranzila_skewed_instances_sharing_redis") else {
        return;
    };
    // Instance A's clock is 200 s ahead of B's; each instance's store reads its own clock.
    // The vector's time is as far ahead as A accepts (A asks for expiry at A's NOW + 800).
    let now = 1_700_000_000 - 500;
    let a_clock = ManualClock::new(now + 200);
    let b_clock = ManualClock::new(now);
    let instance = |clock: &ManualClock| {
        let store = RedisNonceStore::builder(redis.url())
            .prefix("tranzila:test:")
            .clock(clock.clone())
            .build()
            .unwrap();
        common::serve(
            TranzilaVerifyLayer::new(credentials(), store)
                .unwrap()
                .clock(clock.clone()),
        )
    };
    let a = instance(&a_clock).await;
    let b = instance(&b_clock).await;
    let headers = [
        ("X-tranzila-api-app-key", APP_KEY),
        ("X-tranzila-api-request-time", TIME),
        ("X-tranzila-api-nonce", NONCE),
        ("X-tranzila-api-access-token", TOKEN),
    ];
    assert_eq!(raw(a, &headers).await.0, 200);
    let replayed = (
        401,
        r#"{"error":{"code":"replayed","message":"request was already received"}}"#.to_owned(),
    );
    // B's clock is 500 s behind the time: too far in the future for it, for now.
    assert_eq!(
        raw(b, &headers).await.1,
        r#"{"error":{"code":"timestamp_out_of_window","message":"timestamp is outside the accepted window: too far in the future"}}"#
    );

    // 700 s pass on both clocks and, simulated on the key's TTL, in Redis: B still accepts
    // the time, and the claim written by A must still be there.
    let client = redis::Client::open(redis.url()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    // The built-in guard's claim: tollgate-replay's one key format, the nonce in the
    // `tranzila` namespace.
    let key = RedisNonceStore::builder(redis.url())
        .prefix("tranzila:test:")
        .build()
        .unwrap()
        .redis_key(&replay_key(b"tranzila", b"", NONCE.as_bytes()));
    let pttl: i64 = redis::cmd("PTTL")
        .arg(&key)
        .query_async(&mut connection)
        .await
        .unwrap();
    // A's own expiry would give 601 s; the minimum retention holds it 901 s.
    assert!((900_000..=901_000).contains(&pttl), "{pttl}");
    let _: i64 = redis::cmd("PEXPIRE")
        .arg(&key)
        .arg(pttl - 700_000)
        .query_async(&mut connection)
        .await
        .unwrap();
    a_clock.advance(700);
    b_clock.advance(700);
    assert_eq!(raw(b, &headers).await, replayed);
    // A's own window has closed: only B's late clock still accepts the time.
    assert_eq!(
        raw(a, &headers).await.1,
        r#"{"error":{"code":"timestamp_out_of_window","message":"timestamp is outside the accepted window: too old"}}"#
    );
    // The claim is the one a `ReplayGuardLayer::new` sharing the store makes for the same
    // message; the old `tranzila:<app key>:<nonce>` key is gone.
    let old_format = RedisNonceStore::builder(redis.url())
        .prefix("tranzila:test:")
        .build()
        .unwrap()
        .redis_key(format!("tranzila:{APP_KEY}:{NONCE}").as_bytes());
    let exists: i64 = redis::cmd("EXISTS")
        .arg(&old_format)
        .query_async(&mut connection)
        .await
        .unwrap();
    assert_eq!(exists, 0);
}
