//! Redis eviction must never re-open a replay: the store refuses to run on a Redis whose
//! `maxmemory-policy` is not `noeviction`, at start and when the policy changes at run time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use redis::aio::MultiplexedConnection;
use tollgate_core::ManualClock;
use tollgate_replay::{
    Claim, ConfigError, DEFAULT_POLICY_CHECK_INTERVAL, NonceStore, RedisNonceStore,
    ReplayGuardLayer, StoreError,
};
use tollgate_test_support::RedisServer;
use tower::{Layer, ServiceExt, service_fn};

use common::{config_set, connection, exists, gone};

const NOW: u64 = 1_700_000_000;
const TIMEOUT: Duration = Duration::from_millis(500);

/// `connect()` must refuse this Redis: the typed error (panics, saying `why`, if it connects).
async fn connect_refused(redis: &RedisServer, why: &str) -> ConfigError {
    let result = RedisNonceStore::builder(redis.url())
        .timeout(TIMEOUT)
        .connect()
        .await;
    match result {
        Ok(_) => panic!("connect() accepted {why}"),
        Err(err) => err,
    }
}

/// A store made with `build()` (lazily: it checks on its first claim).
fn lazy_store(redis: &RedisServer) -> RedisNonceStore {
    RedisNonceStore::builder(redis.url())
        .timeout(TIMEOUT)
        .build()
        .unwrap()
}

/// Writes 16 KiB keys without a TTL until `key` has been evicted (panics if it never is),
/// then deletes them again, as a cache's churn would: the memory pressure was transient.
/// Writes may fail with OOM once nothing evictable is left (`volatile-*` evicts only keys with
/// a TTL: the claims).
async fn fill_until_evicted(admin: &mut MultiplexedConnection, key: &str) {
    let value = vec![b'x'; 16 * 1024];
    for batch in 0..200 {
        let mut pipe = redis::pipe();
        for i in 0..50 {
            pipe.cmd("SET")
                .arg(format!("filler:{batch}:{i}"))
                .arg(&value)
                .ignore();
        }
        let _: redis::RedisResult<()> = pipe.query_async(admin).await;
        if !exists(admin, key).await {
            let mut pipe = redis::pipe();
            for b in 0..=batch {
                for i in 0..50 {
                    pipe.cmd("DEL").arg(format!("filler:{b}:{i}")).ignore();
                }
            }
            let () = pipe.query_async(admin).await.unwrap();
            return;
        }
    }
    panic!("{key} was never evicted");
}

/// With `maxmemory` and an evicting policy, Redis drops a claim under memory pressure
/// (`allkeys-lru`), or drops exactly the claims, the only keys with a TTL (`volatile-lru`);
/// the same request would then be claimed again: a replay accepted. The store must refuse.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_evicting_redis_never_accepts_a_replay() {
    let mut accepted = Vec::new();
    for policy in ["allkeys-lru", "volatile-lru"] {
        let Some(redis) = RedisServer::start_with_args_or_skip(
            "an_evicting_redis_never_accepts_a_replay",
            &["--maxmemory", "2mb", "--maxmemory-policy", policy],
        ) else {
            return;
        };
        let clock = ManualClock::new(NOW);
        let store = RedisNonceStore::builder(redis.url())
            .timeout(TIMEOUT)
            .clock(clock.clone())
            .build()
            .unwrap();
        let mut admin = connection(&redis).await;
        let first = store.claim(b"captured", NOW + 300).await;
        if let Ok(Claim::Claimed) = first {
            fill_until_evicted(&mut admin, &store.redis_key(b"captured")).await;
        }
        let replay = store.claim(b"captured", NOW + 300).await;
        if matches!(replay, Ok(Claim::Claimed)) {
            accepted.push(format!(
                "{policy}: first claim {first:?}, replay after eviction {replay:?}"
            ));
        }
    }
    assert!(accepted.is_empty(), "replays accepted: {accepted:#?}");
}

/// The policy named by a claim's error, when the store refused for the eviction policy.
fn refused_policy(result: &Result<Claim, StoreError>) -> Option<String> {
    let Err(StoreError::Unavailable(err)) = result else {
        return None;
    };
    match err.downcast_ref::<ConfigError>() {
        Some(ConfigError::EvictionPolicy { policy }) => Some(policy.clone()),
        _ => None,
    }
}

/// `connect()` refuses a Redis that may evict claims, whatever `maxmemory` is (a later
/// `CONFIG SET maxmemory` would start evicting without the policy changing), with a typed error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_refuses_an_evicting_redis() {
    for (maxmemory, policy) in [
        ("2mb", "allkeys-lru"),
        ("2mb", "volatile-lru"),
        ("2mb", "volatile-ttl"),
        ("0", "allkeys-random"),
    ] {
        let Some(redis) = RedisServer::start_with_args_or_skip(
            "connect_refuses_an_evicting_redis",
            &["--maxmemory", maxmemory, "--maxmemory-policy", policy],
        ) else {
            return;
        };
        let err = connect_refused(&redis, &format!("an evicting Redis ({policy})")).await;
        assert!(
            matches!(&err, ConfigError::EvictionPolicy { policy: p } if p == policy),
            "{policy}: {err:?}"
        );
        let message = err.to_string();
        assert!(
            message.contains(policy) && message.contains("noeviction"),
            "{message}"
        );
        // Built lazily instead: every claim fails closed with the same typed cause, and the
        // key it wrote is undone, so the request's retry is not `replayed` once fixed.
        let store = lazy_store(&redis);
        for _ in 0..2 {
            let claim = store.claim(b"k", NOW + 300).await;
            assert_eq!(refused_policy(&claim).as_deref(), Some(policy), "{claim:?}");
        }
        let mut admin = connection(&redis).await;
        assert!(
            gone(&mut admin, &store.redis_key(b"k")).await,
            "{policy}: the refused claim was not undone"
        );
        config_set(&mut admin, "maxmemory-policy", "noeviction").await;
        assert_eq!(store.claim(b"k", NOW + 300).await.unwrap(), Claim::Claimed);
    }
}

/// A Redis started with `noeviction` whose policy is switched to `allkeys-lru` at run time:
/// claims keep running on the cached verdict for less than the interval (5 s by the store's
/// clock), and every claim that starts 5 s after the change fails closed, 503 through the
/// guard. Setting the policy back heals at the next claim.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_changed_at_run_time_fails_closed_within_the_interval() {
    let Some(redis) = RedisServer::start_or_skip("a_policy_changed_at_run_time_fails_closed")
    else {
        return;
    };
    let clock = ManualClock::new(NOW);
    let store = RedisNonceStore::builder(redis.url())
        .timeout(TIMEOUT)
        .clock(clock.clone())
        .connect()
        .await
        .unwrap();
    assert_eq!(
        store.policy_check_interval(),
        Some(DEFAULT_POLICY_CHECK_INTERVAL)
    );
    assert_eq!(DEFAULT_POLICY_CHECK_INTERVAL, Duration::from_secs(5));
    let mut admin = connection(&redis).await;
    assert_eq!(store.claim(b"a", NOW + 300).await.unwrap(), Claim::Claimed);
    config_set(&mut admin, "maxmemory-policy", "allkeys-lru").await;
    // Inside the interval the cached verdict holds (no extra round trip per claim).
    clock.advance(4);
    assert_eq!(store.claim(b"b", NOW + 300).await.unwrap(), Claim::Claimed);
    clock.advance(1);
    let claim = store.claim(b"c", NOW + 300).await;
    assert_eq!(
        refused_policy(&claim).as_deref(),
        Some("allkeys-lru"),
        "claim 5 s after the policy became allkeys-lru: {claim:?}"
    );

    // Through the guard: 503 `store_unavailable`, the cause never in the body.
    let guard = ReplayGuardLayer::tranzila(store.clone()).clock(clock.clone());
    let service = guard.layer(service_fn(|_: Request<Full<Bytes>>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"accepted"))))
    }));
    let request =
        |n: u64| common::tranzila_request("/api", &(NOW + 5).to_string(), &common::nonce(n));
    let response = service.clone().oneshot(request(1)).await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let body = String::from_utf8(body.to_vec()).unwrap();
    assert!(
        body.contains("store_unavailable") && !body.contains("lru"),
        "{body}"
    );

    // The refused claim's key is undone in the background; the retry below must not race it.
    let key = store.redis_key(&tollgate_replay::replay_key(
        b"tranzila",
        b"pub_app_key_demo",
        common::nonce(1).as_bytes(),
    ));
    assert!(
        gone(&mut admin, &key).await,
        "the refused claim was not undone"
    );

    // Back to noeviction: the next claim checks again (a refusal is never cached) and passes.
    config_set(&mut admin, "maxmemory-policy", "noeviction").await;
    let response = service.clone().oneshot(request(1)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let response = service.oneshot(request(1)).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

/// After a dropped connection the manager reconnects (possibly to another server), and the
/// next claim checks the policy again, without waiting for the interval.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnect_checks_the_policy_again() {
    let Some(redis) = RedisServer::start_or_skip("a_reconnect_checks_the_policy_again") else {
        return;
    };
    let clock = ManualClock::new(NOW);
    let store = RedisNonceStore::builder(redis.url())
        .timeout(TIMEOUT)
        .clock(clock.clone())
        .connect()
        .await
        .unwrap();
    assert_eq!(store.claim(b"a", NOW + 300).await.unwrap(), Claim::Claimed);
    let mut admin = connection(&redis).await;
    config_set(&mut admin, "maxmemory-policy", "allkeys-lru").await;
    // Drops every connection but the admin's own; the clock does not move.
    let _: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("normal")
        .arg("SKIPME")
        .arg("yes")
        .query_async(&mut admin)
        .await
        .unwrap();
    let mut outcomes = Vec::new();
    for n in 0..20u64 {
        let claim = store.claim(format!("b{n}").as_bytes(), NOW + 300).await;
        if refused_policy(&claim).is_some() {
            break;
        }
        assert!(
            claim.is_err(),
            "a claim passed after the reconnect: {outcomes:?} {claim:?}"
        );
        outcomes.push(format!("{claim:?}"));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(outcomes.len() < 20, "never refused: {outcomes:?}");
}

/// The opt-out runs on an evicting Redis (the risk is the user's, in its docs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_opt_out_runs_on_an_evicting_redis() {
    let Some(redis) = RedisServer::start_with_args_or_skip(
        "the_opt_out_runs_on_an_evicting_redis",
        &["--maxmemory", "2mb", "--maxmemory-policy", "allkeys-lru"],
    ) else {
        return;
    };
    let store = RedisNonceStore::builder(redis.url())
        .timeout(TIMEOUT)
        .trust_eviction_policy_unchecked()
        .connect()
        .await
        .unwrap();
    assert_eq!(store.policy_check_interval(), None);
    assert!(format!("{store:?}").contains("policy_check_interval: None"));
    assert_eq!(store.claim(b"k", NOW + 300).await.unwrap(), Claim::Claimed);
    assert_eq!(
        store.claim(b"k", NOW + 300).await.unwrap(),
        Claim::AlreadySeen
    );
}

/// A Redis that refuses `CONFIG` (renamed or disabled, as managed services do): without the
/// opt-out the store refuses with a typed error that says so; with it, it runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_refused_is_a_typed_error_unless_opted_out() {
    let Some(redis) = RedisServer::start_with_args_or_skip(
        "config_refused_is_a_typed_error_unless_opted_out",
        &["--rename-command", "CONFIG", ""],
    ) else {
        return;
    };
    let err = connect_refused(&redis, "a Redis whose policy it could not read").await;
    assert!(
        matches!(err, ConfigError::EvictionPolicyUnreadable(_)),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains("trust_eviction_policy_unchecked") && message.contains("unknown command"),
        "{message}"
    );
    // Built lazily: claims fail closed with the same cause.
    let store = lazy_store(&redis);
    let claim = store.claim(b"k", NOW + 300).await;
    let Err(StoreError::Unavailable(cause)) = &claim else {
        panic!("{claim:?}");
    };
    assert!(
        matches!(
            cause.downcast_ref::<ConfigError>(),
            Some(ConfigError::EvictionPolicyUnreadable(_))
        ),
        "{cause:?}"
    );

    let store = RedisNonceStore::builder(redis.url())
        .timeout(TIMEOUT)
        .trust_eviction_policy_unchecked()
        .connect()
        .await
        .unwrap();
    assert_eq!(store.claim(b"k", NOW + 300).await.unwrap(), Claim::Claimed);
    assert_eq!(
        store.claim(b"k", NOW + 300).await.unwrap(),
        Claim::AlreadySeen
    );
}

/// `connect()` on a Redis that is not there is a typed error, within the timeout.
#[tokio::test]
async fn connect_to_nothing_is_unreachable() {
    let port = tollgate_test_support::free_port();
    let started = std::time::Instant::now();
    let result = RedisNonceStore::builder(format!("redis://127.0.0.1:{port}/"))
        .timeout(Duration::from_millis(300))
        .connect()
        .await;
    assert!(
        matches!(result, Err(ConfigError::Unreachable(_))),
        "{result:?}"
    );
    assert!(started.elapsed() < Duration::from_millis(800));
}

/// A connection Redis does not authenticate is `Unreachable`, not "opt out of the check".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_password_is_not_an_unreadable_policy() {
    let Some(redis) = RedisServer::start_or_skip("a_missing_password_is_not_an_unreadable_policy")
    else {
        return;
    };
    let mut admin = connection(&redis).await;
    config_set(&mut admin, "requirepass", "s3cret").await;
    let err = connect_refused(&redis, "a connection without the password").await;
    assert!(matches!(err, ConfigError::Unreachable(_)), "{err:?}");
    let url = redis.url().replace("redis://", "redis://:s3cret@");
    let store = RedisNonceStore::builder(url)
        .timeout(TIMEOUT)
        .connect()
        .await
        .unwrap();
    assert_eq!(store.claim(b"k", NOW + 300).await.unwrap(), Claim::Claimed);
}
