use std::time::Duration;

use tollgate::core::BoxError;
use tollgate::replay::{RedisNonceStore, ReplayGuardLayer};

/// One nonce store for every instance, behind Sentinel (feature `redis-cluster`).
pub async fn shared_replay_guard() -> Result<ReplayGuardLayer, BoxError> {
    let sentinels = ["redis://10.0.0.1:26379", "redis://10.0.0.2:26379"];
    let store = RedisNonceStore::sentinel(sentinels, "replay")
        // A claim counts once a replica has it too (`WAIT 1 100`); else 503.
        .wait_for_replicas(1, Duration::from_millis(100))
        .connect() // checks maxmemory-policy noeviction
        .await?;
    Ok(ReplayGuardLayer::new(store))
}
