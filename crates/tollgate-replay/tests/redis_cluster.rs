//! The Redis store on a real 3-master Redis Cluster started by the test on loopback
//! (`redis-server --cluster-enabled yes`, `redis-cli --cluster create`): two instances refuse
//! each other's replays whichever master holds the claim, one master that may evict keeps the
//! store from starting, and `WAIT` on a cluster without replicas fails closed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use tollgate_core::ManualClock;
use tollgate_replay::{
    Claim, ConfigError, NonceStore, RedisNonceStore, ReplayGuardLayer, StoreError, replay_key,
};
use tollgate_test_support::{RedisCluster, redis_cli};

use common::{json, nonce, serve};

const NOW: u64 = 1_700_000_000;
const TIMEOUT: Duration = Duration::from_millis(500);

fn builder(cluster: &RedisCluster, clock: &ManualClock) -> tollgate_replay::RedisNonceStoreBuilder {
    RedisNonceStore::cluster(cluster.urls())
        .prefix("test:cluster:")
        .timeout(TIMEOUT)
        .clock(clock.clone())
}

/// The Redis key of the Tranzila-shaped call with nonce `n`.
fn key_of(store: &RedisNonceStore, n: u64) -> String {
    store.redis_key(&replay_key(
        b"tranzila",
        b"pub_app_key_demo",
        nonce(n).as_bytes(),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_a_cluster_refuse_cross_instance_replays() {
    let Some(cluster) = RedisCluster::start_or_skip("two_instances_on_a_cluster") else {
        return;
    };
    let clock = ManualClock::new(NOW);
    // Two instances, each with its own cluster client (as two processes would have);
    // `connect` checked every master's eviction policy.
    let store_a = builder(&cluster, &clock).connect().await.unwrap();
    let store_b = builder(&cluster, &clock).connect().await.unwrap();
    assert!(format!("{store_a:?}").contains("topology: \"cluster\""));
    let a = serve(ReplayGuardLayer::tranzila(store_a.clone()).clock(clock.clone())).await;
    let b = serve(ReplayGuardLayer::tranzila(store_b.clone()).clock(clock.clone())).await;
    let client = common::client();
    let accepted = (StatusCode::OK, "accepted".to_owned());
    let replayed = (
        StatusCode::UNAUTHORIZED,
        json("replayed", "request was already received"),
    );

    let mut slots = BTreeSet::new();
    let mut holders = BTreeSet::new();
    for n in 1..=12u64 {
        // Alternate which instance sees the request first.
        let (first, second) = if n % 2 == 0 { (a, b) } else { (b, a) };
        assert_eq!(common::call(&client, first, NOW, &nonce(n)).await, accepted);
        assert_eq!(
            common::call(&client, second, NOW, &nonce(n)).await,
            replayed
        );
        assert_eq!(common::call(&client, first, NOW, &nonce(n)).await, replayed);
        let key = key_of(&store_a, n);
        assert_eq!(key, key_of(&store_b, n));
        slots.insert(cluster.slot_of(&key));
        let holder = cluster.holder_of(&key).expect("the claim is on a master");
        holders.insert(holder);
    }
    // The claims are spread over slots and masters: the refusals above crossed them.
    assert_eq!(slots.len(), 12, "{slots:?}");
    assert_eq!(holders.len(), 3, "{holders:?}");

    // Many concurrent claims of one key from both instances: exactly one wins.
    let stores = [Arc::new(store_a), Arc::new(store_b)];
    let tasks: Vec<_> = (0..32)
        .map(|i| {
            let store = Arc::clone(&stores[i % 2]);
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

    // A release removes its own claim on whichever master holds it.
    let id = tollgate_replay::ClaimId::new();
    assert_eq!(
        stores[0]
            .claim_with_id(b"released", NOW + 300, id)
            .await
            .unwrap(),
        Claim::Claimed
    );
    assert!(stores[1].release(b"released", id).await.unwrap());
    assert_eq!(
        stores[1].claim(b"released", NOW + 300).await.unwrap(),
        Claim::Claimed
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_evicting_master_keeps_the_cluster_store_from_starting() {
    let Some(cluster) = RedisCluster::start_or_skip("one_evicting_master") else {
        return;
    };
    let clock = ManualClock::new(NOW);
    let last = *cluster.ports().last().unwrap();
    assert_eq!(
        redis_cli(last, &["CONFIG", "SET", "maxmemory-policy", "volatile-lru"]).as_deref(),
        Some("OK")
    );
    let result = builder(&cluster, &clock).connect().await;
    match result {
        Err(ConfigError::EvictionPolicy { policy }) => assert_eq!(policy, "volatile-lru"),
        other => panic!("expected EvictionPolicy, got {other:?}"),
    }
    // Opting out of the check starts it (the risk is then the operator's).
    builder(&cluster, &clock)
        .trust_eviction_policy_unchecked()
        .connect()
        .await
        .unwrap();
    assert_eq!(
        redis_cli(last, &["CONFIG", "SET", "maxmemory-policy", "noeviction"]).as_deref(),
        Some("OK")
    );
    builder(&cluster, &clock).connect().await.unwrap();
}

/// `WAIT 1` on masters that have no replica: no claim is ever acknowledged, so every claim
/// fails closed (503), and the claim is undone so the sender's retry is not `replayed`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_for_a_replica_that_does_not_exist_fails_closed() {
    let Some(cluster) = RedisCluster::start_or_skip("wait_without_replicas_fails_closed") else {
        return;
    };
    let clock = ManualClock::new(NOW);
    let store = builder(&cluster, &clock)
        .wait_for_replicas(1, Duration::from_millis(20))
        .connect()
        .await
        .unwrap();
    for n in 1..=3u64 {
        let key = nonce(n);
        let result = store.claim(key.as_bytes(), NOW + 300).await;
        let Err(StoreError::Unavailable(err)) = &result else {
            panic!("expected a refusal, got {result:?}");
        };
        assert!(err.to_string().contains("0 of the 1 replicas"), "{err}");
        // Undone in the background, on the master that holds the slot.
        let redis_key = store.redis_key(key.as_bytes());
        let mut undone = false;
        for _ in 0..100 {
            if cluster.holder_of(&redis_key).is_none() {
                undone = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(undone, "the unacknowledged claim was left on its master");
    }
    // Through the guard: 503 with the fixed body.
    let addr = serve(ReplayGuardLayer::tranzila(store).clock(clock.clone())).await;
    assert_eq!(
        common::call(&common::client(), addr, NOW, &nonce(9)).await,
        (
            StatusCode::SERVICE_UNAVAILABLE,
            json(
                "store_unavailable",
                "replay protection is temporarily unavailable"
            )
        )
    );
}
