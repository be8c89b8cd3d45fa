//! The Redis store behind real Sentinels started by the test on loopback (a master, a replica
//! and three `redis-server --sentinel`, quorum 2, `down-after-milliseconds 1000`): a killed
//! master gives 503 (never an accept) until the Sentinels promote the replica, then the same
//! store heals without a restart; what asynchronous replication loses on failover, and that
//! `WAIT 1` loses nothing: no claim is accepted twice across the failover.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use http::StatusCode;
use tollgate_core::ManualClock;
use tollgate_replay::{RedisNonceStore, RedisNonceStoreBuilder, ReplayGuardLayer, replay_key};
use tollgate_test_support::{RedisSentinels, SENTINEL_SERVICE, redis_cli};

use common::{HttpClient, json, nonce, serve};

const NOW: u64 = 1_700_000_000;
const TIMEOUT: Duration = Duration::from_millis(300);

fn builder(group: &RedisSentinels) -> RedisNonceStoreBuilder {
    RedisNonceStore::sentinel(group.sentinel_urls(), SENTINEL_SERVICE)
        .prefix("test:sentinel:")
        .timeout(TIMEOUT)
        .clock(ManualClock::new(NOW))
}

fn key_of(store: &RedisNonceStore, n: u64) -> String {
    store.redis_key(&replay_key(
        b"tranzila",
        b"pub_app_key_demo",
        nonce(n).as_bytes(),
    ))
}

fn accepted() -> (StatusCode, String) {
    (StatusCode::OK, "accepted".to_owned())
}

fn replayed() -> (StatusCode, String) {
    (
        StatusCode::UNAUTHORIZED,
        json("replayed", "request was already received"),
    )
}

fn unavailable() -> (StatusCode, String) {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        json(
            "store_unavailable",
            "replay protection is temporarily unavailable",
        ),
    )
}

async fn call(client: &HttpClient, addr: SocketAddr, n: u64) -> (StatusCode, String) {
    common::call(client, addr, NOW, &nonce(n)).await
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

/// Makes the next claim reach the master only: the replica is frozen (`SIGSTOP`) and its
/// link dropped by the master (`CLIENT KILL TYPE replica`), so whatever the master
/// acknowledges now stays in its backlog until the replica comes back.
fn cut_replication(group: &RedisSentinels) {
    group.pause_replica();
    let killed = redis_cli(group.master_port(), &["CLIENT", "KILL", "TYPE", "replica"]);
    assert_eq!(killed.as_deref(), Some("1"));
}

/// Fresh requests from `first` on, while the Sentinels fail over: each is 503 (the claim
/// failed closed) until one is accepted; every accepted claim is on the promoted replica.
/// Returns the next unused nonce and how many were refused.
async fn until_healed(
    client: &HttpClient,
    addr: SocketAddr,
    store: &RedisNonceStore,
    replica_port: u16,
    first: u64,
) -> (u64, u32) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut n = first;
    let mut refused = 0;
    loop {
        let answer = call(client, addr, n).await;
        if answer == accepted() {
            let key = key_of(store, n);
            let on_replica = redis_cli(replica_port, &["EXISTS", &key]);
            assert_eq!(
                on_replica.as_deref(),
                Some("1"),
                "accepted off the new master"
            );
            return (n + 1, refused);
        }
        assert_eq!(answer, unavailable(), "request {n} during the failover");
        refused += 1;
        assert!(Instant::now() < deadline, "the store never healed");
        n += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Without `WAIT`: a killed master is 503 until the failover, then the same store heals.
/// And what asynchronous replication can lose, as the crate docs state it: a claim
/// acknowledged by the master alone, which then dies, is gone from the promoted replica, so
/// its request is accepted a second time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_master_fails_closed_until_failover_then_heals() {
    let Some(mut group) = RedisSentinels::start_or_skip("killed_master_fails_closed") else {
        return;
    };
    let store = builder(&group).connect().await.unwrap();
    assert!(format!("{store:?}").contains("topology: \"sentinel\""));
    let addr = serve(ReplayGuardLayer::tranzila(store.clone()).clock(ManualClock::new(NOW))).await;
    let client = common::client();
    for n in 1..=3 {
        assert_eq!(call(&client, addr, n).await, accepted());
        assert_eq!(call(&client, addr, n).await, replayed());
    }
    // Replicated: the replica has the claims the master acknowledged.
    let replica = group.replica_port();
    tollgate_test_support::wait_for(
        Duration::from_secs(5),
        || redis_cli(replica, &["EXISTS", &key_of(&store, 3)]).as_deref() == Some("1"),
        "the replica to receive the claims",
    );

    // The loss: accepted by the master alone, which dies before replicating it.
    cut_replication(&group);
    assert_eq!(call(&client, addr, 50).await, accepted());
    group = blocking(move || {
        group.kill_master();
        group.resume_replica();
        group
    })
    .await;

    let started = Instant::now();
    let (_, refused) = until_healed(&client, addr, &store, replica, 100).await;
    eprintln!(
        "healed after {:?}, {refused} requests refused",
        started.elapsed()
    );
    assert!(refused > 0, "the dead master was never noticed");
    assert_eq!(group.named_master(), Some(replica));

    // Claims replicated before the failover still refuse their replays...
    for n in 1..=3 {
        assert_eq!(call(&client, addr, n).await, replayed());
    }
    // ...but the one the master acknowledged alone was lost: accepted a second time.
    assert_eq!(call(&client, addr, 50).await, accepted());
    assert_eq!(call(&client, addr, 50).await, replayed());
}

/// With `WAIT 1`: a request proceeds only once its claim is on the replica, so no claim is
/// accepted twice across the failover. The claim the master would have acknowledged alone is
/// refused (503, and undone) instead; after the failover (and once the old master is back as
/// a replica, so `WAIT 1` can be met again) its retry is accepted once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_wait_no_claim_is_accepted_twice_across_the_failover() {
    let Some(mut group) = RedisSentinels::start_or_skip("with_wait_no_claim_accepted_twice") else {
        return;
    };
    let store = builder(&group)
        .wait_for_replicas(1, Duration::from_millis(100))
        .connect()
        .await
        .unwrap();
    let addr = serve(ReplayGuardLayer::tranzila(store.clone()).clock(ManualClock::new(NOW))).await;
    let client = common::client();
    for n in 1..=5 {
        assert_eq!(call(&client, addr, n).await, accepted());
        // Acknowledged: already on the replica when the answer went out, no waiting needed.
        let on_replica = redis_cli(group.replica_port(), &["EXISTS", &key_of(&store, n)]);
        assert_eq!(on_replica.as_deref(), Some("1"));
    }

    // The replica cannot acknowledge: the claim is refused, never accepted on the master's
    // word alone.
    cut_replication(&group);
    assert_eq!(call(&client, addr, 50).await, unavailable());
    group = blocking(move || {
        group.kill_master();
        group.resume_replica();
        group
    })
    .await;

    let replica = group.replica_port();
    // Until the failover, and after it until the new master has a replica again: 503.
    group = blocking(move || {
        group.wait_for_failover(Duration::from_secs(30));
        group.restart_master();
        group.wait_for_old_master_to_replicate(Duration::from_secs(40));
        group
    })
    .await;
    let (next, _) = until_healed(&client, addr, &store, replica, 100).await;

    // Every request accepted before the failover is refused after it.
    for n in 1..=5 {
        assert_eq!(call(&client, addr, n).await, replayed(), "request {n}");
    }
    // The refused one was never accepted: its retry is accepted, once.
    assert_eq!(call(&client, addr, 50).await, accepted());
    assert_eq!(call(&client, addr, 50).await, replayed());
    assert_eq!(call(&client, addr, next).await, accepted());
    assert_eq!(call(&client, addr, next).await, replayed());
    drop(group);
}
