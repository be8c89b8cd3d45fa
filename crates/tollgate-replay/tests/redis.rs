//! The Redis store against a real `redis-server` started by the test on a free loopback port:
//! two servers share it, an outage fails closed within the timeout, and a restart heals.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::post;
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tollgate_core::ManualClock;
use tollgate_replay::{
    Claim, NonceStore, RedisNonceStore, ReplayGuard, ReplayGuardLayer, StoreError,
};
use tollgate_tests::RedisServer;

const NOW: u64 = 1_700_000_000;
const TIMEOUT: Duration = Duration::from_millis(300);

type HttpClient = Client<HttpConnector, Full<Bytes>>;

fn store(redis: &RedisServer, clock: &ManualClock) -> RedisNonceStore {
    RedisNonceStore::builder(redis.url())
        .prefix("test:replay:")
        .timeout(TIMEOUT)
        .clock(clock.clone())
        .build()
        .unwrap()
}

/// One instance of the service: an axum server with its own Redis store (its own
/// connections), as a separate process would have.
async fn instance(redis: &RedisServer, clock: &ManualClock) -> SocketAddr {
    let layer = ReplayGuardLayer::new(
        ReplayGuard::tranzila().clock(clock.clone()),
        store(redis, clock),
    );
    let app = Router::new()
        .route("/api", post(|| async { "accepted" }))
        .layer(layer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

fn nonce(n: u64) -> String {
    format!("{n:080x}")
}

async fn call(client: &HttpClient, addr: SocketAddr, nonce: &str) -> (StatusCode, String) {
    let request = Request::post(format!("http://{addr}/api"))
        .header("x-tranzila-api-app-key", "pub_app_key_demo")
        .header("x-tranzila-api-request-time", NOW.to_string())
        .header("x-tranzila-api-nonce", nonce)
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = client.request(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

fn json(code: &str, message: &str) -> String {
    format!(r#"{{"error":{{"code":"{code}","message":"{message}"}}}}"#)
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_redis_fail_closed_in_an_outage_and_heal() {
    let Some(redis) = RedisServer::start_or_skip("two_instances_share_redis") else {
        return;
    };
    let clock = ManualClock::new(NOW);
    let a = instance(&redis, &clock).await;
    let b = instance(&redis, &clock).await;
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let accepted = (StatusCode::OK, "accepted".to_owned());
    let replayed = (
        StatusCode::UNAUTHORIZED,
        json("replayed", "request was already received"),
    );
    let unavailable = (
        StatusCode::SERVICE_UNAVAILABLE,
        json(
            "store_unavailable",
            "replay protection is temporarily unavailable",
        ),
    );

    // Accepted by A, replayed to B: refused. And the other way round.
    assert_eq!(call(&client, a, &nonce(1)).await, accepted);
    assert_eq!(call(&client, b, &nonce(1)).await, replayed);
    assert_eq!(call(&client, b, &nonce(2)).await, accepted);
    assert_eq!(call(&client, a, &nonce(2)).await, replayed);
    assert_eq!(call(&client, a, &nonce(1)).await, replayed);

    // Redis stops: both instances refuse with 503 within the timeout (never a silent pass).
    let mut redis = blocking(move || {
        let mut redis = redis;
        redis.stop();
        redis
    })
    .await;
    for (i, addr) in [a, b, a, b].into_iter().enumerate() {
        let started = Instant::now();
        assert_eq!(
            call(&client, addr, &nonce(10 + i as u64)).await,
            unavailable
        );
        let took = started.elapsed();
        assert!(
            took < TIMEOUT + Duration::from_millis(200),
            "refusal took {took:?}"
        );
    }

    // Redis is back (same port, empty): the same servers accept again, and share again.
    redis = blocking(move || {
        redis.restart();
        redis
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut n = 100;
    loop {
        let answer = call(&client, a, &nonce(n)).await;
        if answer == accepted {
            break;
        }
        assert_eq!(answer, unavailable);
        assert!(Instant::now() < deadline, "instance A never reconnected");
        n += 1;
    }
    eprintln!("reconnected after {} attempts", n - 99);
    assert_eq!(call(&client, b, &nonce(n)).await, replayed);
    assert_eq!(call(&client, b, &nonce(200)).await, accepted);
    assert_eq!(call(&client, a, &nonce(200)).await, replayed);
    drop(redis);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_nx_px_with_the_window_ttl_and_one_winner() {
    let Some(redis) = RedisServer::start_or_skip("set_nx_px_with_the_window_ttl") else {
        return;
    };
    let clock = ManualClock::new(NOW);
    let store = Arc::new(store(&redis, &clock));

    // Many concurrent claims of one key: exactly one wins.
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.claim(b"contended", NOW + 300).await.unwrap() })
        })
        .collect();
    let mut winners = 0;
    for task in tasks {
        if task.await.unwrap() == Claim::Claimed {
            winners += 1;
        }
    }
    assert_eq!(winners, 1);

    // The key is hashed under the prefix, and lives until the end of the expiry second.
    let key = store.redis_key(b"contended");
    assert!(key.starts_with("test:replay:") && key.len() == "test:replay:".len() + 64);
    let client = redis::Client::open(redis.url()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let pttl: i64 = redis::cmd("PTTL")
        .arg(&key)
        .query_async(&mut connection)
        .await
        .unwrap();
    assert!((300_000..=301_000).contains(&pttl), "{pttl}");
    let value: String = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut connection)
        .await
        .unwrap();
    assert_eq!(value, "1");

    // An expiry already past still holds the key for the current second.
    assert_eq!(
        store.claim(b"stale", NOW - 5).await.unwrap(),
        Claim::Claimed
    );
    let pttl: i64 = redis::cmd("PTTL")
        .arg(store.redis_key(b"stale"))
        .query_async(&mut connection)
        .await
        .unwrap();
    assert!((1..=1_000).contains(&pttl), "{pttl}");
    let debug = format!("{store:?}");
    assert!(!debug.contains("127.0.0.1"), "{debug}");
}

#[tokio::test]
async fn unreachable_redis_is_an_error_within_the_timeout() {
    // Nothing listens on this port.
    let port = tollgate_tests::free_port();
    let store = RedisNonceStore::builder(format!("redis://127.0.0.1:{port}/"))
        .timeout(TIMEOUT)
        .build()
        .unwrap();
    let started = Instant::now();
    let result = store.claim(b"k", NOW).await;
    assert!(
        matches!(
            result,
            Err(StoreError::Unavailable(_) | StoreError::Timeout)
        ),
        "{result:?}"
    );
    assert!(started.elapsed() < TIMEOUT + Duration::from_millis(200));
}

#[test]
fn building_outside_a_runtime_is_an_error_not_a_panic() {
    let result = RedisNonceStore::new("redis://127.0.0.1:1/");
    assert!(matches!(
        result,
        Err(tollgate_replay::ConfigError::NoRuntime)
    ));
}

#[tokio::test]
async fn invalid_url_is_a_config_error() {
    let result = RedisNonceStore::new("http://not-redis/");
    assert!(matches!(
        result,
        Err(tollgate_replay::ConfigError::Redis(_))
    ));
}

#[tokio::test]
async fn a_server_that_never_answers_is_a_timeout() {
    // Accepts connections, reads nothing, answers nothing (a hung Redis).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let store = RedisNonceStore::builder(format!("redis://{addr}/"))
        .timeout(TIMEOUT)
        .build()
        .unwrap();
    for _ in 0..2 {
        let started = Instant::now();
        let result = store.claim(b"k", NOW).await;
        assert!(matches!(result, Err(StoreError::Timeout)), "{result:?}");
        let took = started.elapsed();
        assert!(
            took >= TIMEOUT && took < TIMEOUT + Duration::from_millis(200),
            "{took:?}"
        );
    }
    hold.abort();
}
