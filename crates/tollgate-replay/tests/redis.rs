//! The Redis store against a real `redis-server` started by the test on a free loopback port:
//! two servers share it, an outage fails closed within the timeout, and a restart heals.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::StatusCode;
use redis::aio::MultiplexedConnection;
use tollgate_core::ManualClock;
use tollgate_replay::{
    Claim, ClaimId, DEFAULT_SHARED_MIN_RETENTION, NonceStore, RedisNonceStore, ReplayGuardLayer,
    StoreError,
};
use tollgate_test_support::RedisServer;

use common::{HttpClient, connection, json, nonce, pttl, serve};

const NOW: u64 = 1_700_000_000;
const TIMEOUT: Duration = Duration::from_millis(300);

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
    serve(ReplayGuardLayer::tranzila(store(redis, clock)).clock(clock.clone())).await
}

/// A Tranzila-shaped call stamped `NOW`.
async fn call(client: &HttpClient, addr: SocketAddr, nonce: &str) -> (StatusCode, String) {
    common::call(client, addr, NOW, nonce).await
}

/// A Tranzila-shaped call stamped `ts`: its status.
async fn call_at(client: &HttpClient, addr: SocketAddr, ts: u64, nonce: &str) -> StatusCode {
    common::call(client, addr, ts, nonce).await.0
}

/// Claims `key` until `expires_at` (it must be free) and returns its TTL in Redis, in ms.
async fn claim_ttl(
    store: &RedisNonceStore,
    admin: &mut MultiplexedConnection,
    key: &[u8],
    expires_at: u64,
) -> i64 {
    assert_eq!(
        store.claim(key, expires_at).await.unwrap(),
        Claim::Claimed,
        "{}",
        String::from_utf8_lossy(key)
    );
    pttl(admin, &store.redis_key(key)).await
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
    let client = common::client();
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
    // B reconnects on its own schedule (its own connection manager): until it does it keeps
    // failing closed, and a 503 claims nothing, so the same request can be retried.
    let answer = loop {
        let answer = call(&client, b, &nonce(n)).await;
        if answer != unavailable {
            break answer;
        }
        assert!(Instant::now() < deadline, "instance B never reconnected");
    };
    assert_eq!(answer, replayed);
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

    // The key is hashed under the prefix. It lives for the minimum retention (900 s by
    // default) when that is longer than the requested expiry, through the end of its second.
    let key = store.redis_key(b"contended");
    assert!(key.starts_with("test:replay:") && key.len() == "test:replay:".len() + 64);
    assert!(
        key["test:replay:".len()..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    );
    assert_eq!(store.min_retention(), DEFAULT_SHARED_MIN_RETENTION);
    let mut connection = connection(&redis).await;
    let ttl = pttl(&mut connection, &key).await;
    assert!((900_000..=901_000).contains(&ttl), "{ttl}");
    let value: String = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut connection)
        .await
        .unwrap();
    // The value is the claim's id, so a release removes this claim and no other.
    assert!(value.parse::<u64>().is_ok_and(|id| id != 0), "{value}");

    // A later expiry than the retention is kept in full.
    let ttl = claim_ttl(&store, &mut connection, b"late", NOW + 5_000).await;
    assert!((5_000_000..=5_001_000).contains(&ttl), "{ttl}");

    // An expiry already past by the store's clock (another clock computed it): held for
    // the minimum retention from this store's now.
    let ttl = claim_ttl(&store, &mut connection, b"stale", NOW - 5).await;
    assert!((900_000..=901_000).contains(&ttl), "{ttl}");
    assert_eq!(
        store.claim(b"stale", NOW - 5).await.unwrap(),
        Claim::AlreadySeen
    );

    // Without a minimum retention: exactly the requested expiry, or the current second.
    let trusting = RedisNonceStore::builder(redis.url())
        .prefix("test:trusting:")
        .clock(clock.clone())
        .min_retention(Duration::ZERO)
        .build()
        .unwrap();
    let pttl_k = claim_ttl(&trusting, &mut connection, b"k", NOW + 300).await;
    assert!((300_000..=301_000).contains(&pttl_k), "{pttl_k}");
    let pttl_stale = claim_ttl(&trusting, &mut connection, b"stale", NOW - 5).await;
    assert!((1..=1_000).contains(&pttl_stale), "{pttl_stale}");

    let debug = format!("{store:?}");
    assert!(!debug.contains("127.0.0.1"), "{debug}");
    assert!(debug.contains("min_retention: 900s"), "{debug}");
}

/// `claim_extending`: a key held by another claim is kept until the later expiry (never
/// shortened), atomically with the claim, and still released only by its own claim's id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_refused_as_seen_extends_the_held_key_never_shortens_it() {
    let Some(redis) = RedisServer::start_or_skip("a_claim_refused_as_seen_extends") else {
        return;
    };
    let clock = ManualClock::new(NOW);
    let store = RedisNonceStore::builder(redis.url())
        .prefix("test:extend:")
        .clock(clock.clone())
        .min_retention(Duration::ZERO)
        .build()
        .unwrap();
    let mut admin = connection(&redis).await;
    let key = store.redis_key(b"msg");
    let first = ClaimId::new();
    assert_eq!(
        store
            .claim_extending(b"msg", NOW + 300, first)
            .await
            .unwrap(),
        Claim::Claimed
    );
    let ttl = pttl(&mut admin, &key).await;
    assert!((300_000..=301_000).contains(&ttl), "{ttl}");
    // Seen again with a later expiry: refused, and held that long.
    assert_eq!(
        store
            .claim_extending(b"msg", NOW + 890, ClaimId::new())
            .await
            .unwrap(),
        Claim::AlreadySeen
    );
    let ttl = pttl(&mut admin, &key).await;
    assert!((890_000..=891_000).contains(&ttl), "{ttl}");
    // An earlier expiry never shortens it; a plain claim never extends it.
    for claim in [
        store
            .claim_extending(b"msg", NOW + 10, ClaimId::new())
            .await,
        store
            .claim_with_id(b"msg", NOW + 5_000, ClaimId::new())
            .await,
    ] {
        assert_eq!(claim.unwrap(), Claim::AlreadySeen);
    }
    let ttl = pttl(&mut admin, &key).await;
    assert!((890_000..=891_000).contains(&ttl), "{ttl}");
    // The key still belongs to the first claim: only its id releases it.
    assert!(!store.release(b"msg", ClaimId::new()).await.unwrap());
    assert!(store.release(b"msg", first).await.unwrap());
    assert_eq!(pttl(&mut admin, &key).await, -2);
}

/// Redis's clock cannot be moved, so time passing is simulated on the key: its remaining TTL
/// shrinks by `secs` (and the key is gone when nothing remains), as if Redis had waited.
async fn age(connection: &mut MultiplexedConnection, key: &str, secs: i64) {
    let remaining = pttl(connection, key).await;
    assert!(remaining > 0, "{key} has no TTL left: {remaining}");
    let left = remaining - secs * 1_000;
    if left > 0 {
        let _: i64 = redis::cmd("PEXPIRE")
            .arg(key)
            .arg(left)
            .query_async(connection)
            .await
            .unwrap();
    } else {
        let _: i64 = redis::cmd("DEL")
            .arg(key)
            .query_async(connection)
            .await
            .unwrap();
    }
}

/// One instance whose guard and store both read `clock`, as one process would, with the
/// store's default minimum retention or `retention`.
async fn instance_with(
    redis: &RedisServer,
    clock: &ManualClock,
    retention: Option<Duration>,
) -> SocketAddr {
    let mut builder = RedisNonceStore::builder(redis.url())
        .prefix("test:skew:")
        .timeout(TIMEOUT)
        .clock(clock.clone());
    if let Some(retention) = retention {
        builder = builder.min_retention(retention);
    }
    serve(ReplayGuardLayer::tranzila(builder.build().unwrap()).clock(clock.clone())).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skewed_instances_sharing_redis_refuse_the_replay() {
    let Some(redis) = RedisServer::start_or_skip("skewed_instances_sharing_redis") else {
        return;
    };
    let client = common::client();
    let mut connection = connection(&redis).await;
    // With the default retention the replay is refused; with none (trusting each instance's
    // `expires_at`, the behaviour this guards against) it would pass: the test can fail.
    for (n, retention, replay) in [
        (1u64, None, StatusCode::UNAUTHORIZED),
        (2, Some(Duration::ZERO), StatusCode::OK),
    ] {
        // A's clock is 200 s ahead of B's; each instance's store reads its own clock.
        let a_clock = ManualClock::new(NOW + 200);
        let b_clock = ManualClock::new(NOW);
        let a = instance_with(&redis, &a_clock, retention).await;
        let b = instance_with(&redis, &b_clock, retention).await;
        // Stamped as far ahead as A accepts: A's claim asks for NOW + 800 by A's clock.
        let ts = NOW + 500;
        assert_eq!(call_at(&client, a, ts, &nonce(n)).await, StatusCode::OK);
        assert_eq!(
            call_at(&client, b, ts, &nonce(n)).await,
            StatusCode::UNAUTHORIZED
        );
        // 700 s pass on both clocks and in Redis.
        let key = RedisNonceStore::builder(redis.url())
            .prefix("test:skew:")
            .build()
            .unwrap()
            .redis_key(&tollgate_replay::replay_key(
                b"tranzila",
                b"pub_app_key_demo",
                nonce(n).as_bytes(),
            ));
        age(&mut connection, &key, 700).await;
        a_clock.advance(700);
        b_clock.advance(700);
        // B (its clock at NOW + 700) still accepts the timestamp: a fresh nonce passes.
        assert_eq!(
            call_at(&client, b, ts, &nonce(100 + n)).await,
            StatusCode::OK
        );
        assert_eq!(
            call_at(&client, b, ts, &nonce(n)).await,
            replay,
            "retention {retention:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verifier_clock_far_from_the_store_clock_still_refuses() {
    let Some(redis) = RedisServer::start_or_skip("verifier_clock_far_from_the_store_clock") else {
        return;
    };
    // The guard reads a manual clock in 2023; the store reads the system clock.
    let store = RedisNonceStore::builder(redis.url())
        .prefix("test:far:")
        .timeout(TIMEOUT)
        .build()
        .unwrap();
    let addr = serve(ReplayGuardLayer::tranzila(store.clone()).clock(ManualClock::new(NOW))).await;
    let client = common::client();
    assert_eq!(call_at(&client, addr, NOW, &nonce(1)).await, StatusCode::OK);
    assert_eq!(
        call_at(&client, addr, NOW, &nonce(1)).await,
        StatusCode::UNAUTHORIZED
    );
    // The claim's expiry was long past by the store's clock: it is held the full minimum
    // retention anyway, not one second.
    let key = store.redis_key(&tollgate_replay::replay_key(
        b"tranzila",
        b"pub_app_key_demo",
        nonce(1).as_bytes(),
    ));
    let mut connection = connection(&redis).await;
    let ttl = pttl(&mut connection, &key).await;
    assert!((899_000..=901_000).contains(&ttl), "{ttl}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_reply_fails_closed_then_heals() {
    let Some(redis) = RedisServer::start_or_skip("an_error_reply_fails_closed") else {
        return;
    };
    let clock = ManualClock::new(NOW);
    let store = store(&redis, &clock);
    let mut connection = connection(&redis).await;
    // Redis refuses every write: "OOM command not allowed when used memory > 'maxmemory'".
    for (name, value) in [("maxmemory-policy", "noeviction"), ("maxmemory", "1")] {
        common::config_set(&mut connection, name, value).await;
    }
    let result = store.claim(b"k", NOW + 300).await;
    let Err(StoreError::Unavailable(err)) = &result else {
        panic!("expected an error reply, got {result:?}");
    };
    assert!(err.to_string().contains("OOM"), "{err}");

    // Through the guard: 503 with the fixed message, the reply's text never in the body.
    let addr = serve(ReplayGuardLayer::tranzila(store.clone()).clock(clock.clone())).await;
    let client = common::client();
    let unavailable = (
        StatusCode::SERVICE_UNAVAILABLE,
        json(
            "store_unavailable",
            "replay protection is temporarily unavailable",
        ),
    );
    assert_eq!(call(&client, addr, &nonce(1)).await, unavailable);

    common::config_set(&mut connection, "maxmemory", "0").await;
    assert_eq!(
        call(&client, addr, &nonce(1)).await,
        (StatusCode::OK, "accepted".to_owned())
    );
    assert_eq!(
        call(&client, addr, &nonce(1)).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn unreachable_redis_is_an_error_within_the_timeout() {
    // Nothing listens on this port.
    let port = tollgate_test_support::free_port();
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

/// A claim whose answer did not arrive in time (Redis paused with `CLIENT PAUSE`) is answered
/// 503; when Redis resumes, the `SET` is applied and then undone, so the sender's retry is
/// accepted rather than refused as replayed. A claim held by someone else is never undone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_claim_is_undone_when_redis_resumes() {
    let Some(redis) = RedisServer::start_or_skip("a_timed_out_claim_is_undone_when_redis_resumes")
    else {
        return;
    };
    let clock = ManualClock::new(NOW);
    let store = store(&redis, &clock);
    let mut admin = connection(&redis).await;
    // Someone else's claim, made before the pause: must survive the undo below.
    assert_eq!(
        store.claim(b"held-by-other", NOW + 300).await.unwrap(),
        Claim::Claimed
    );
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(1_500)
        .arg("ALL")
        .query_async(&mut admin)
        .await
        .unwrap();
    let started = Instant::now();
    let outcome = store.claim(b"paused", NOW + 300).await;
    assert!(matches!(outcome, Err(StoreError::Timeout)), "{outcome:?}");
    assert!(started.elapsed() < Duration::from_millis(1_200));
    let other = store.claim(b"held-by-other", NOW + 300).await;
    assert!(matches!(other, Err(StoreError::Timeout)), "{other:?}");
    // After the pause: the timed-out claim was undone, the other claim was not.
    let key = store.redis_key(b"paused");
    let mut gone = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if started.elapsed() > Duration::from_millis(1_600) && pttl(&mut admin, &key).await == -2 {
            gone = true;
            break;
        }
    }
    assert!(
        gone,
        "the timed-out claim was still held after Redis resumed"
    );
    assert_eq!(
        store.claim(b"paused", NOW + 300).await.unwrap(),
        Claim::Claimed
    );
    assert_eq!(
        store.claim(b"held-by-other", NOW + 300).await.unwrap(),
        Claim::AlreadySeen
    );
}

/// `release` removes the claim it made, and only that one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_removes_only_its_own_claim() {
    let Some(redis) = RedisServer::start_or_skip("release_removes_only_its_own_claim") else {
        return;
    };
    let clock = ManualClock::new(NOW);
    let store = store(&redis, &clock);
    let (mine, other) = (
        tollgate_replay::ClaimId::new(),
        tollgate_replay::ClaimId::new(),
    );
    assert_eq!(
        store.claim_with_id(b"k", NOW + 300, mine).await.unwrap(),
        Claim::Claimed
    );
    assert!(!store.release(b"k", other).await.unwrap());
    assert_eq!(
        store.claim(b"k", NOW + 300).await.unwrap(),
        Claim::AlreadySeen
    );
    assert!(store.release(b"k", mine).await.unwrap());
    assert!(!store.release(b"k", mine).await.unwrap());
    assert_eq!(store.claim(b"k", NOW + 300).await.unwrap(), Claim::Claimed);
}
