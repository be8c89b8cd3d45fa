//! Two webhook-receiver instances sharing one real `redis-server` (`REDIS_URL`): a Standard
//! Webhooks delivery accepted by one instance and replayed to the other is refused, and the
//! memory store keeps instances apart (the reason Redis is needed).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use tollgate::core::{Key, KeyRing, ManualClock, Secret};
use tollgate::signature::StandardWebhooks;
use tollgate_demo::net;
use tollgate_test_support::RedisServer;
use webhook_receiver::{Config, Inbox};

const SECRET: &str = "whsec_ZGVtby1zdGFuZGFyZC13ZWJob29rcy1zZWNyZXQ=";
const NOW: u64 = 1_767_225_600;
const BODY: &[u8] = br#"{"event":"payout.completed","id":"evt_1"}"#;

async fn instance(redis: Option<String>, clock: &ManualClock) -> (String, Inbox) {
    let config = Config {
        addr: "127.0.0.1:0".parse().unwrap(),
        onekey: KeyRing::new(Key::new("onekey-1", Secret::from_string("onekey"))),
        generic: KeyRing::new(Key::new("generic-1", Secret::from_string("generic"))),
        standard: KeyRing::new(Key::new(
            "standard-1",
            StandardWebhooks::secret_from_whsec(SECRET).unwrap(),
        )),
        body_limit: 1024,
        redis_url: redis,
        clock: Arc::new(clock.clone()),
    };
    let inbox = Inbox::default();
    let app = webhook_receiver::app(&config, inbox.clone()).unwrap();
    let addr = webhook_receiver::spawn(config.addr, app).await.unwrap();
    (format!("http://{addr}/webhooks/standard"), inbox)
}

async fn deliver(url: &str, id: &str) -> String {
    let secret = StandardWebhooks::secret_from_whsec(SECRET).unwrap();
    let signature = StandardWebhooks::new().compute(&secret, id, NOW, BODY);
    let request = Request::post(url)
        .header("content-type", "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", NOW.to_string())
        .header("webhook-signature", signature)
        .body(Full::new(Bytes::from_static(BODY)))
        .unwrap();
    net::send(request).await.unwrap().outcome()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_to_another_instance_is_refused_through_shared_redis() {
    let Some(redis) = RedisServer::start_or_skip("replay_to_another_instance") else {
        return;
    };
    let clock = ManualClock::new(NOW);
    let (a, inbox_a) = instance(Some(redis.url()), &clock).await;
    let (b, inbox_b) = instance(Some(redis.url()), &clock).await;

    assert_eq!(deliver(&a, "msg_shared_1").await, "200");
    assert_eq!(deliver(&b, "msg_shared_1").await, "401 replayed");
    assert_eq!(deliver(&a, "msg_shared_1").await, "401 replayed");
    assert_eq!(deliver(&b, "msg_shared_2").await, "200");
    assert_eq!(inbox_a.len(), 1);
    assert_eq!(inbox_b.len(), 1);
    assert_eq!(inbox_a.received()[0].body, BODY);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_stores_do_not_see_each_others_nonces() {
    let clock = ManualClock::new(NOW);
    let (a, _) = instance(None, &clock).await;
    let (b, _) = instance(None, &clock).await;
    assert_eq!(deliver(&a, "msg_memory_1").await, "200");
    assert_eq!(deliver(&a, "msg_memory_1").await, "401 replayed");
    // A second instance with its own memory store accepts the replay: why Redis exists.
    assert_eq!(deliver(&b, "msg_memory_1").await, "200");
}
