//! [`RedisNonceStore`]: one nonce store shared by every instance of a service (feature `redis`).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use redis::Value;
use sha2::{Digest, Sha256};
use tollgate_core::{BoxError, Clock, SharedClock, SystemClock};

use crate::store::{
    Claim, ClaimFuture, ClaimId, DEFAULT_SHARED_MIN_RETENTION, NonceStore, ReleaseFuture,
    StoreError, held_until,
};

mod topology;

use topology::{Backend, Connection, Target};

/// Deletes `KEYS[1]` only while its value is `ARGV[1]`: releases one claim, never another's.
const RELEASE_SCRIPT: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end";

/// `EVAL` of [`RELEASE_SCRIPT`] for one key and claim id.
fn release_cmd(redis_key: &str, id: ClaimId) -> redis::Cmd {
    let mut cmd = redis::cmd("EVAL");
    cmd.arg(RELEASE_SCRIPT).arg(1).arg(redis_key).arg(id.get());
    cmd
}

/// The key prefix unless configured otherwise.
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub const DEFAULT_PREFIX: &str = "tollgate:replay:";

/// How long one claim may take, connecting included, unless configured otherwise.
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(500);

/// How often a running store re-reads Redis's `maxmemory-policy`, unless configured
/// otherwise: 5 s by the store's clock. See [`RedisNonceStoreBuilder::policy_check_interval`].
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub const DEFAULT_POLICY_CHECK_INTERVAL: Duration = Duration::from_secs(5);

/// The only `maxmemory-policy` under which Redis never drops a claim to make room.
const REQUIRED_POLICY: &str = "noeviction";

/// The longest TTL sent to Redis, in milliseconds (far beyond any window; keeps Redis's
/// `now + ttl` from overflowing).
const MAX_TTL_MS: u64 = 1 << 52;

/// `CONFIG GET maxmemory-policy`.
fn policy_cmd() -> redis::Cmd {
    let mut cmd = redis::cmd("CONFIG");
    cmd.arg("GET").arg("maxmemory-policy");
    cmd
}

/// The verdict on a `CONFIG GET maxmemory-policy` reply: `Ok` only for `noeviction`.
fn policy_verdict(reply: Value) -> Result<(), ConfigError> {
    if let Value::ServerError(err) = reply {
        // Not a `CONFIG` refusal: the connection is not authenticated (a wrong or missing
        // password), which opting out of the check would not fix.
        let unauthenticated = matches!(err.code(), "NOAUTH" | "WRONGPASS");
        let err = Box::new(redis::RedisError::from(err));
        return Err(if unauthenticated {
            ConfigError::Unreachable(err)
        } else {
            ConfigError::EvictionPolicyUnreadable(err)
        });
    }
    // RESP2 answers `[name, value]`, RESP3 a map; both read as a map.
    let answer: HashMap<String, String> = redis::from_redis_value(reply)
        .map_err(|err| ConfigError::EvictionPolicyUnreadable(Box::new(err)))?;
    match answer.get("maxmemory-policy") {
        Some(policy) if policy.eq_ignore_ascii_case(REQUIRED_POLICY) => Ok(()),
        Some(policy) => Err(ConfigError::EvictionPolicy {
            policy: policy.clone(),
        }),
        None => Err(ConfigError::EvictionPolicyUnreadable(
            "the server's answer to `CONFIG GET maxmemory-policy` names no policy".into(),
        )),
    }
}

/// One claim: `SET key id NX PX ttl`, and when the key is already there, whether it holds this
/// claim's own id: a round trip the client resent after losing its reply (the cluster client
/// retries on I/O errors) finds its own first write, which is this claim, not a replay.
/// `1` = claimed, `0` = held by another claim. Ids are unique per claim (`ClaimId`), so a
/// replay never matches. With `ARGV[3]` = `1` ([`NonceStore::claim_extending`]), a key held by
/// another claim is kept at least `ttl` from now (`PEXPIRE` only when that is later than its
/// TTL: never shortened; a key without a TTL is left alone).
const CLAIM_SCRIPT: &str = "if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end \
     if redis.call('GET', KEYS[1]) == ARGV[1] then return 1 end \
     if ARGV[3] == '1' then local left = redis.call('PTTL', KEYS[1]) \
     if left >= 0 and left < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end end \
     return 0";

/// The outcome of a claim's reply ([`CLAIM_SCRIPT`]'s, or a plain `SET … NX`'s).
fn set_outcome(reply: Value) -> Result<Claim, redis::RedisError> {
    match reply {
        Value::Int(1) => Ok(Claim::Claimed),
        Value::Int(0) => Ok(Claim::AlreadySeen),
        Value::Okay => Ok(Claim::Claimed),
        Value::SimpleString(s) if s == "OK" => Ok(Claim::Claimed),
        Value::Nil => Ok(Claim::AlreadySeen),
        Value::ServerError(err) => Err(err.into()),
        other => Err(redis::RedisError::from((
            redis::ErrorKind::Client,
            "unexpected reply to SET NX",
            format!("{other:?}"),
        ))),
    }
}

/// `WAIT <replicas> <timeout>` after each claim: see
/// [`RedisNonceStoreBuilder::wait_for_replicas`].
#[derive(Debug, Clone, Copy)]
struct WaitForReplicas {
    replicas: u32,
    timeout: Duration,
}

impl WaitForReplicas {
    fn cmd(&self) -> redis::Cmd {
        let mut cmd = redis::cmd("WAIT");
        // `0` would mean "block forever" to Redis: at least one millisecond.
        let ms = u64::try_from(self.timeout.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        cmd.arg(self.replicas).arg(ms);
        cmd
    }

    /// `Ok` when `WAIT` answered with at least `replicas`.
    fn verdict(&self, reply: Option<Value>) -> Result<(), BoxError> {
        match reply {
            Some(Value::Int(n)) if n >= i64::from(self.replicas) => Ok(()),
            Some(Value::Int(n)) => Err(format!(
                "{n} of the {} replicas asked for acknowledged the claim within {:?}",
                self.replicas, self.timeout
            )
            .into()),
            Some(Value::ServerError(err)) => Err(Box::new(redis::RedisError::from(err))),
            Some(other) => Err(format!("unexpected reply to WAIT: {other:?}").into()),
            None => Err("no reply to WAIT".into()),
        }
    }
}

/// Why a store could not be configured, or refuses to run.
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
#[derive(Debug)]
#[non_exhaustive]
pub enum ConfigError {
    /// The Redis URL is invalid or the client could not be created.
    Redis(BoxError),
    /// Not called inside a Tokio runtime (the connection manager spawns a task).
    NoRuntime,
    /// Redis's `maxmemory-policy` is not `noeviction`: Redis may drop claims to make room
    /// (`allkeys-*` any key, `volatile-*` keys with a TTL, which every claim has), and a
    /// request whose claim was dropped would be accepted again. Set
    /// `maxmemory-policy noeviction`, or opt out with
    /// [`RedisNonceStoreBuilder::trust_eviction_policy_unchecked`] accepting that risk.
    EvictionPolicy {
        /// The policy the server reported (e.g. `allkeys-lru`).
        policy: String,
    },
    /// Redis refused `CONFIG GET maxmemory-policy` (the command is renamed or disabled, as on
    /// many managed services, or an ACL denies it) or gave an answer without the policy, so the
    /// store cannot tell whether Redis may evict claims. Make sure the policy is `noeviction`
    /// (your provider's console or parameter group), then opt out of the check with
    /// [`RedisNonceStoreBuilder::trust_eviction_policy_unchecked`].
    EvictionPolicyUnreadable(BoxError),
    /// [`RedisNonceStoreBuilder::connect`] or [`RedisNonceStore::verify`] could not reach
    /// Redis within the timeout, or Redis refused the connection's credentials (`NOAUTH`,
    /// `WRONGPASS`).
    Unreachable(BoxError),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Redis(err) => write!(f, "invalid Redis configuration: {err}"),
            Self::NoRuntime => f.write_str("RedisNonceStore must be built inside a Tokio runtime"),
            Self::EvictionPolicy { policy } => write!(
                f,
                "Redis maxmemory-policy is `{policy}`, not `noeviction`: Redis may evict nonce \
                 claims and a replayed request would be accepted; set `maxmemory-policy \
                 noeviction` (or opt out with `trust_eviction_policy_unchecked`, accepting that \
                 risk)"
            ),
            Self::EvictionPolicyUnreadable(err) => write!(
                f,
                "cannot read Redis's maxmemory-policy ({err}); make sure it is `noeviction`, \
                 then opt out of the check with `trust_eviction_policy_unchecked`"
            ),
            Self::Unreachable(err) => write!(f, "Redis unreachable: {err}"),
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Redis(err) | Self::EvictionPolicyUnreadable(err) | Self::Unreachable(err) => {
                Some(&**err)
            }
            Self::NoRuntime | Self::EvictionPolicy { .. } => None,
        }
    }
}

/// A nonce store on Redis, shared by every instance of a service behind a load balancer:
/// a request accepted by one instance is refused as replayed by all the others.
///
/// Each claim is one atomic script (`EVAL`): `SET <prefix><hex(sha256(key))> <claim id> NX PX
/// <ttl>`, and when the key is already there, whether it holds this claim's own id. Redis
/// answers "claimed" to exactly one of many concurrent claims of a key; a claim that finds the
/// key does not touch its TTL. The id check makes a resent round trip harmless: the Cluster
/// client resends a pipeline whose reply was lost, and the resent claim finds its own first
/// write (claimed), never reading it as a replay of itself (tested in
/// `tests/tests/attack_review_10.rs`). Claim ids are unique per claim, so a replay never
/// matches. The TTL is `(held_until − now + 1)` seconds in milliseconds, where
/// [`held_until`]`(expires_at, now, min_retention)` is the later of `expires_at` and
/// `now + min_retention`, so the key is held through that second whatever the fraction of the
/// current second; Redis drops it after. Keys are hashed, so their length and content never
/// reach Redis.
///
/// # Failures
///
/// Every claim has a timeout ([`DEFAULT_TIMEOUT`], configurable), connecting included. A
/// timeout, a connection error or any Redis error is a [`StoreError`], which the replay guard
/// answers with 503 `store_unavailable`: fail closed, never a silent pass. The store uses the
/// `redis` crate's [`ConnectionManager`](redis::aio::ConnectionManager), created lazily: the service starts even while Redis
/// is down, and the connection is re-established after an outage without a restart.
///
/// A claim whose answer does not arrive in time (Redis paused or slow) is refused with 503,
/// and the store queues a compare-and-delete of that claim behind it on the same connection:
/// if the `SET` is applied when Redis resumes, it is undone, so the sender's retry is accepted
/// rather than refused as `replayed`. [`NonceStore::release`] is the same compare-and-delete
/// (a Lua script: `DEL` only while the key holds this claim's id), so a release never removes
/// another request's claim.
///
/// # Security considerations: what Redis must guarantee
///
/// A claim protects only while Redis keeps it. Three ways Redis can forget one, and what the
/// store does about each:
///
/// - **Eviction: checked, refused.** With any `maxmemory-policy` but `noeviction`, Redis drops
///   keys when `maxmemory` is reached: `allkeys-*` any key, `volatile-*` keys with a TTL, which
///   every claim has (on a Redis whose other keys have no TTL, the claims are the *only*
///   candidates). A request whose claim was evicted is accepted again inside its window. So
///   the store requires `noeviction`, whatever `maxmemory` is (with `maxmemory 0` nothing is
///   evicted today, but a later `CONFIG SET maxmemory` would start evicting without the policy
///   changing). [`RedisNonceStoreBuilder::connect`] (or [`RedisNonceStore::verify`]) reads
///   `CONFIG GET maxmemory-policy` and refuses to start with [`ConfigError::EvictionPolicy`];
///   a store made with [`build`](RedisNonceStoreBuilder::build) checks on its first claim.
///   While running, a claim re-reads the policy in its own round trip (pipelined before the
///   `SET`, no extra round trip) when the last `noeviction` verdict is older than
///   [`DEFAULT_POLICY_CHECK_INTERVAL`] (5 s of the store's clock, configurable with
///   [`RedisNonceStoreBuilder::policy_check_interval`]) or after any failed claim (a dropped
///   connection, which the manager re-establishes, maybe to another server). So a policy
///   changed with `CONFIG SET` fails every claim that starts 5 s or more after the change
///   with [`StoreError::Unavailable`] wrapping the [`ConfigError`] (503 `store_unavailable`,
///   logged once at `error`), until the policy is `noeviction` again. A claim written while
///   refusing is undone. Under `noeviction` a full Redis refuses writes (`OOM`): 503, never a
///   pass; size `maxmemory` for a claim per request over the retention (about 230 bytes
///   each with the default prefix, measured on Redis 7.0: 200 MiB for 1,000 requests per
///   second over 900 s). Where `CONFIG` is renamed or disabled (managed services) the store refuses with
///   [`ConfigError::EvictionPolicyUnreadable`]; make sure of `noeviction` through the
///   provider's settings and opt out with
///   [`RedisNonceStoreBuilder::trust_eviction_policy_unchecked`], whose docs spell out the risk.
///   The check sees the policy at each check, not between two: claims evicted while the
///   policy was briefly something else (set and set back within 5 s, or at any time while
///   the store was refusing) are lost for good, and their requests are accepted again once
///   the policy is `noeviction` again. Never change the policy of a Redis in use.
/// - **Restart without persistence: not checked, yours to configure.** A Redis that restarts
///   without AOF or RDB persistence comes back empty: requests captured up to the retention
///   before the restart can each be replayed once after it. Enable AOF (`appendonly yes`;
///   `appendfsync always` loses no acknowledged claim, `everysec` up to about a second of them
///   on a crash) or accept that window. RDB snapshots alone lose every claim since the last
///   snapshot.
/// - **Replication failover: what is lost, and what [`wait_for_replicas`] does about it.**
///   Replication is asynchronous: the master acknowledges a claim before any replica has
///   it. A master that dies before a replica received the claim loses it when the replica
///   is promoted (Sentinel's failover, or a Cluster replica taking over its slots), so that
///   request is accepted a second time against the new master: **one replay per claim
///   acknowledged in the last instant before the crash** (the replication lag, usually
///   under a millisecond, longer when the link to the replica is down). The
///   `redis_sentinel` test does exactly this (a replica cut off, its master killed) and
///   sees the request accepted twice. Three ways to narrow it:
///   - [`RedisNonceStoreBuilder::wait_for_replicas`]`(1, t)` (`WAIT 1 t` after each
///     claim, in its round trip): a request proceeds only once its claim is on a replica;
///     otherwise the claim is undone and the request refused with 503 (its sender retries).
///     With one replica per master (or `replicas` = all of them) Sentinel promotes a
///     replica that has every acknowledged claim, so no request is accepted twice across
///     the failover: the same test, with `WAIT 1`, refuses the claim the master alone held
///     (503) and accepts its retry exactly once after the failover. With more replicas than
///     `replicas`, Sentinel promotes the replica with the most data, normally one that
///     acknowledged; Redis does not promise it (see `WAIT` in Redis's documentation). While
///     no replica answers (a failover, the new master alone), every claim is refused:
///     availability is traded for the guarantee. It costs throughput (see `BENCHMARKS.md`).
///   - `min-replicas-to-write 1` / `min-replicas-max-lag 1` on the masters: Redis refuses
///     writes (503) while no replica is within a second; claims acknowledged within that
///     second can still be lost.
///   - Neither, accepting that a crash of the master lets each of the last instant's
///     requests be replayed once. A retention margin does not help here (the claim is
///     gone, not short-lived); what it does help with is the clocks (see "Time").
///
///   Whatever the topology, the store fails closed in a failover: a claim while no master
///   answers is 503, never an accept. With Sentinel (`RedisNonceStore::sentinel`) the
///   store asks the Sentinels again after any failed claim, so it heals as soon as they
///   name the promoted replica, without a restart (tested).
///
///   **A partitioned master that comes back.** A store keeps its connection to the master
///   it found until a claim fails. When the master is cut off (a network partition, a
///   paused process) long enough to be failed over and then comes back, it still takes
///   writes until the Sentinels demote it: a store that sent nothing during the outage
///   claims there while the others claim on the new master, and the same request can be
///   accepted by both (the old master's copy is dropped when it resyncs). The store cannot
///   see this by itself; `wait_for_replicas(1, t)` closes it (the old master has no replica
///   left to acknowledge, so its claims are refused), as `min-replicas-to-write 1` narrows
///   it (tested in `tests/tests/attack_review_10.rs`, both ways).
///
/// # Topologies
///
/// - One Redis: [`RedisNonceStore::builder`]`(url)`.
/// - Redis Cluster (feature `redis-cluster`): `RedisNonceStore::cluster(nodes)`. One claim
///   is one key, so it lives in the hash slot of its (hashed) key, on one master: claims
///   spread over the masters and need no cross-slot command. [`connect`] checks the eviction
///   policy of **every** master, and so does the run-time re-check: when the verdict is
///   stale, the next claim first asks every master (once per interval), so a master switched
///   to an evicting policy after `connect()` is caught wherever claims land (tested in
///   `tests/tests/attack_review_10.rs`).
/// - Sentinel (feature `redis-cluster`): `RedisNonceStore::sentinel(sentinels, service)`,
///   one master at a time, found through the Sentinels.
///
/// Every topology gives the same [`NonceStore`], the same timeouts, the same 503s.
///
/// [`wait_for_replicas`]: RedisNonceStoreBuilder::wait_for_replicas
/// [`connect`]: RedisNonceStoreBuilder::connect
///
/// # Time
///
/// "Now" for the TTL comes from the injected [`Clock`], and Redis counts the TTL down on its
/// own clock. Each instance computes `expires_at` with its own clock, so when instances' clocks
/// are skewed, a claim written by one could expire while the request is still inside another's
/// window. The minimum retention ([`DEFAULT_SHARED_MIN_RETENTION`], 900 s, configurable with
/// [`RedisNonceStoreBuilder::min_retention`]) closes that: a request can be accepted for at
/// most `2 × tolerance` plus the skew between two instances, so with the default ±300 s window
/// every replay is refused while the instances' clocks are within 300 s of each other. Keep the
/// clocks synchronised (NTP) anyway, as the window already requires; with a larger tolerance or
/// skew, set `min_retention ≥ 2 × tolerance + skew`.
///
/// ```no_run
/// use std::time::Duration;
/// use tollgate_replay::{RedisNonceStore, ReplayGuardLayer};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // Connects and refuses to start unless Redis's maxmemory-policy is `noeviction`.
/// let store = RedisNonceStore::builder("redis://127.0.0.1:6379/")
///     .prefix("payments:replay:")
///     .timeout(Duration::from_millis(250))
///     .connect()
///     .await?;
/// // Shared by every instance: inside the signature verifier, claiming what it verified.
/// let layer = ReplayGuardLayer::new(store);
/// # let _ = layer;
/// # Ok(())
/// # }
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
#[derive(Clone)]
pub struct RedisNonceStore {
    backend: Backend,
    config: Arc<Settings>,
}

struct Settings {
    topology: &'static str,
    wait: Option<WaitForReplicas>,
    prefix: String,
    timeout: Duration,
    clock: SharedClock,
    min_retention: Duration,
    /// `None`: the eviction policy is trusted unchecked.
    policy_check: Option<PolicyCheck>,
}

/// The cached verdict on Redis's `maxmemory-policy`, shared by the store's clones.
struct PolicyCheck {
    /// Whole seconds of the store's clock a `noeviction` verdict is trusted for.
    interval_secs: u64,
    /// 1 + the store-clock second at which a check that found `noeviction` was *sent*; 0 when
    /// no verdict is trusted (never checked, refused, or after a failed claim).
    verified: AtomicU64,
    /// Whether the last verdict was a refusal (so it is logged once, not per claim).
    refusing: AtomicBool,
}

impl PolicyCheck {
    fn new(interval: Duration) -> Self {
        Self {
            interval_secs: interval.as_secs(),
            verified: AtomicU64::new(0),
            refusing: AtomicBool::new(false),
        }
    }

    /// Whether a claim starting at `now` must check the policy (one atomic load).
    fn is_stale(&self, now: u64) -> bool {
        match self.verified.load(Ordering::Acquire) {
            0 => true,
            // A clock stepped back makes the verdict stale, never fresher.
            v => {
                let at = v - 1;
                now < at || now - at >= self.interval_secs
            }
        }
    }

    /// A check sent at `sent_at` found `noeviction`. Storing an older verdict over a newer
    /// one (replies handled out of order) keeps the bound: whatever was stored, the policy was
    /// `noeviction` when a check sent at that time ran.
    fn confirm(&self, sent_at: u64) {
        self.verified
            .store(sent_at.saturating_add(1), Ordering::Release);
        if self.refusing.swap(false, Ordering::AcqRel) {
            tracing::info!(
                target: "tollgate",
                "Redis maxmemory-policy is noeviction again; nonce claims resume"
            );
        }
    }

    fn invalidate(&self) {
        self.verified.store(0, Ordering::Release);
    }

    fn refuse(&self, err: &ConfigError) {
        self.invalidate();
        if !self.refusing.swap(true, Ordering::AcqRel) {
            tracing::error!(
                target: "tollgate",
                error = %err,
                "nonce store refuses every claim until Redis's maxmemory-policy is noeviction"
            );
        }
    }
}

/// Configures a [`RedisNonceStore`].
#[must_use]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub struct RedisNonceStoreBuilder {
    target: Target,
    wait: Option<WaitForReplicas>,
    prefix: String,
    timeout: Duration,
    clock: SharedClock,
    min_retention: Duration,
    policy_check: Option<Duration>,
}

impl RedisNonceStore {
    /// A store on the Redis at `url` (`redis://host:port/db`, `rediss://` is not enabled) with
    /// the default prefix, timeout and clock. Must be called inside a Tokio runtime.
    pub fn new(url: impl Into<String>) -> Result<Self, ConfigError> {
        Self::builder(url).build()
    }

    /// A builder for the Redis at `url`.
    pub fn builder(url: impl Into<String>) -> RedisNonceStoreBuilder {
        RedisNonceStoreBuilder::with_target(Target::Single(url.into()))
    }

    /// A builder for the Redis Cluster reached through `nodes` (`redis://host:port`; one is
    /// enough, the client learns the others and the slot map from it). Each claim is one key,
    /// so it goes to the master that owns the key's hash slot; a `MOVED` after a resharding
    /// or a failover is followed. Feature `redis-cluster`.
    ///
    /// ```no_run
    /// use tollgate_replay::{RedisNonceStore, ReplayGuardLayer};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = RedisNonceStore::cluster(["redis://10.0.0.1:6379", "redis://10.0.0.2:6379"])
    ///     .connect() // checks every master's maxmemory-policy
    ///     .await?;
    /// let layer = ReplayGuardLayer::new(store);
    /// # let _ = layer;
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(feature = "redis-cluster")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis-cluster")))]
    pub fn cluster<I, S>(nodes: I) -> RedisNonceStoreBuilder
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        RedisNonceStoreBuilder::with_target(Target::Cluster(
            nodes.into_iter().map(Into::into).collect(),
        ))
    }

    /// A builder for the master that the Sentinels at `sentinels` (`redis://host:26379`)
    /// name for `service` (the name in `sentinel monitor <name> …`). The store asks the
    /// Sentinels, checks with `ROLE` that the server it reaches is a master, and keeps that
    /// connection; after any failed claim (the master died, or answered `READONLY` because
    /// it was demoted) the next claim asks the Sentinels again. So a failover heals without
    /// restarting the service; until the Sentinels have promoted a replica, every claim fails
    /// closed (503). Feature `redis-cluster`.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use tollgate_replay::{RedisNonceStore, ReplayGuardLayer};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let sentinels = ["redis://10.0.0.1:26379", "redis://10.0.0.2:26379", "redis://10.0.0.3:26379"];
    /// let store = RedisNonceStore::sentinel(sentinels, "replay")
    ///     // A claim is acknowledged by one replica before the request proceeds.
    ///     .wait_for_replicas(1, Duration::from_millis(100))
    ///     .connect()
    ///     .await?;
    /// let layer = ReplayGuardLayer::new(store);
    /// # let _ = layer;
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(feature = "redis-cluster")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis-cluster")))]
    pub fn sentinel<I, S>(sentinels: I, service: impl Into<String>) -> RedisNonceStoreBuilder
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        RedisNonceStoreBuilder::with_target(Target::Sentinel {
            sentinels: sentinels.into_iter().map(Into::into).collect(),
            service: service.into(),
        })
    }
}

impl RedisNonceStoreBuilder {
    fn with_target(target: Target) -> Self {
        Self {
            target,
            wait: None,
            prefix: DEFAULT_PREFIX.to_owned(),
            timeout: DEFAULT_TIMEOUT,
            clock: Arc::new(SystemClock),
            min_retention: DEFAULT_SHARED_MIN_RETENTION,
            policy_check: Some(DEFAULT_POLICY_CHECK_INTERVAL),
        }
    }
}

impl RedisNonceStore {
    /// The Redis key for `key`: the prefix and the lowercase hex SHA-256 of the key.
    pub fn redis_key(&self, key: &[u8]) -> String {
        let mut out = String::with_capacity(self.config.prefix.len() + 64);
        out.push_str(&self.config.prefix);
        out.push_str(&hex::encode(Sha256::digest(key)));
        out
    }

    /// The per-claim timeout.
    pub fn timeout(&self) -> Duration {
        self.config.timeout
    }

    /// The least time a claim is held, from this store's clock.
    pub fn min_retention(&self) -> Duration {
        self.config.min_retention
    }

    /// How long a `noeviction` verdict is trusted before a claim re-reads the policy (whole
    /// seconds of the store's clock); `None` when the policy is trusted unchecked
    /// ([`RedisNonceStoreBuilder::trust_eviction_policy_unchecked`]).
    pub fn policy_check_interval(&self) -> Option<Duration> {
        self.config
            .policy_check
            .as_ref()
            .map(|check| Duration::from_secs(check.interval_secs))
    }

    /// Connects (if not connected yet) and checks that Redis keeps every claim: its
    /// `maxmemory-policy` must be `noeviction`. With
    /// [`trust_eviction_policy_unchecked`](RedisNonceStoreBuilder::trust_eviction_policy_unchecked)
    /// it only checks that Redis answers (`PING`).
    ///
    /// [`RedisNonceStoreBuilder::connect`] calls it; call it yourself after
    /// [`build`](RedisNonceStoreBuilder::build) (e.g. in a readiness probe). A `noeviction`
    /// verdict is cached like a claim's own check.
    ///
    /// # Errors
    ///
    /// [`ConfigError::EvictionPolicy`] when the policy is anything else,
    /// [`ConfigError::EvictionPolicyUnreadable`] when Redis refuses `CONFIG GET`,
    /// [`ConfigError::Unreachable`] when Redis does not answer within the store's timeout.
    pub async fn verify(&self) -> Result<(), ConfigError> {
        let deadline = tokio::time::Instant::now() + self.config.timeout;
        let mut connection =
            match tokio::time::timeout_at(deadline, self.backend.connection()).await {
                Err(_elapsed) => {
                    return Err(ConfigError::Unreachable(
                        "no connection to Redis within the timeout".into(),
                    ));
                }
                Ok(Err(err)) => {
                    self.backend.failed();
                    return Err(ConfigError::Unreachable(Box::new(err)));
                }
                Ok(Ok(connection)) => connection,
            };
        #[cfg(feature = "redis-cluster")]
        if let Some(cluster) = self.backend.cluster() {
            return self.verify_cluster(cluster.clone(), deadline).await;
        }
        let Some(check) = &self.config.policy_check else {
            let cmd = redis::cmd("PING");
            let ping = cmd.query_async::<String>(&mut connection);
            return match tokio::time::timeout_at(deadline, ping).await {
                Err(_elapsed) => Err(ConfigError::Unreachable(
                    "Redis did not answer PING within the timeout".into(),
                )),
                Ok(Err(err)) => Err(ConfigError::Unreachable(Box::new(err))),
                Ok(Ok(_pong)) => Ok(()),
            };
        };
        let sent_at = self.config.clock.now_unix();
        let mut pipe = redis::pipe();
        pipe.add_command(policy_cmd()).ignore_errors();
        let query = pipe.query_async::<Vec<Value>>(&mut connection);
        let reply = match tokio::time::timeout_at(deadline, query).await {
            Err(_elapsed) => {
                return Err(ConfigError::Unreachable(
                    "Redis did not answer CONFIG GET within the timeout".into(),
                ));
            }
            Ok(Err(err)) => return Err(ConfigError::Unreachable(Box::new(err))),
            Ok(Ok(mut replies)) => replies.pop().unwrap_or(Value::Nil),
        };
        match policy_verdict(reply) {
            Ok(()) => {
                check.confirm(sent_at);
                Ok(())
            }
            Err(err) => {
                check.refuse(&err);
                Err(err)
            }
        }
    }

    /// [`verify`](Self::verify) on a cluster: every master must answer, and every master's
    /// policy must be `noeviction` (a claim can land on any of them).
    #[cfg(feature = "redis-cluster")]
    async fn verify_cluster(
        &self,
        mut cluster: redis::cluster_async::ClusterConnection,
        deadline: tokio::time::Instant,
    ) -> Result<(), ConfigError> {
        use redis::cluster_routing::{MultipleNodeRoutingInfo, RoutingInfo};
        let all_masters = RoutingInfo::MultiNode((MultipleNodeRoutingInfo::AllMasters, None));
        let (cmd, what) = match self.config.policy_check {
            Some(_) => (policy_cmd(), "CONFIG GET"),
            None => (redis::cmd("PING"), "PING"),
        };
        let sent_at = self.config.clock.now_unix();
        let query = cluster.route_command(cmd, all_masters);
        let replies = match tokio::time::timeout_at(deadline, query).await {
            Err(_elapsed) => {
                return Err(ConfigError::Unreachable(
                    format!("the cluster's masters did not answer {what} within the timeout")
                        .into(),
                ));
            }
            Ok(Err(err)) => return Err(ConfigError::Unreachable(Box::new(err))),
            Ok(Ok(Value::Map(replies))) => replies,
            Ok(Ok(other)) => vec![(Value::Nil, other)],
        };
        let Some(check) = &self.config.policy_check else {
            return match replies.into_iter().find_map(|(_, reply)| match reply {
                Value::ServerError(err) => Some(err),
                _ => None,
            }) {
                Some(err) => Err(ConfigError::Unreachable(Box::new(redis::RedisError::from(
                    err,
                )))),
                None => Ok(()),
            };
        };
        for (_node, reply) in replies {
            if let Err(err) = policy_verdict(reply) {
                check.refuse(&err);
                return Err(err);
            }
        }
        check.confirm(sent_at);
        Ok(())
    }

    /// The TTL in milliseconds of a claim asked for with `expires_at` when the store's clock
    /// reads `now`: through the second [`held_until`], capped far beyond any window.
    pub(crate) fn ttl_ms(&self, expires_at: u64, now: u64) -> u64 {
        held_until(expires_at, now, self.config.min_retention)
            .saturating_sub(now)
            .saturating_add(1)
            .saturating_mul(1000)
            .min(MAX_TTL_MS)
    }

    /// `SET NX PX`, preceded in the same round trip by `CONFIG GET maxmemory-policy` when the
    /// cached verdict is stale: the hot path is one atomic load and the `SET` alone.
    ///
    /// `extend`: a key held by another claim is kept until at least this claim's expiry
    /// ([`NonceStore::claim_extending`]).
    async fn set_nx(
        &self,
        key: &[u8],
        expires_at: u64,
        id: ClaimId,
        extend: bool,
    ) -> Result<Claim, StoreError> {
        let now = self.config.clock.now_unix();
        #[cfg_attr(not(feature = "redis-cluster"), allow(unused_mut))]
        let mut check = self
            .config
            .policy_check
            .as_ref()
            .filter(|check| check.is_stale(now));
        // On a cluster a claim's round trip reaches the master of its slot only, while the
        // verdict it would refresh covers every master: a stale verdict is refreshed by
        // asking every master first (once per interval), so a master switched to an evicting
        // policy after `connect()` is caught wherever the next claims land.
        #[cfg(feature = "redis-cluster")]
        if check.is_some() && self.backend.cluster().is_some() {
            if let Err(err) = self.verify().await {
                self.claim_failed();
                return Err(StoreError::Unavailable(Box::new(err)));
            }
            check = None;
        }
        let ttl_ms = self.ttl_ms(expires_at, now);
        let redis_key = self.redis_key(key);
        let mut set = redis::cmd("EVAL");
        set.arg(CLAIM_SCRIPT)
            .arg(1)
            .arg(&redis_key)
            .arg(id.get())
            .arg(ttl_ms)
            .arg(if extend { "1" } else { "0" });
        // One pipeline: error replies stay values, so an error of the `CONFIG GET` does not
        // hide the outcome of the `SET` (which Redis runs either way).
        let mut pipe = redis::pipe();
        if check.is_some() {
            pipe.add_command(policy_cmd());
        }
        pipe.add_command(set);
        if let Some(wait) = &self.config.wait {
            pipe.add_command(wait.cmd());
        }
        pipe.ignore_errors();
        let deadline = tokio::time::Instant::now() + self.config.timeout;
        // Connecting (with Sentinel: asking the Sentinels which server is the master) shares
        // the claim's timeout; nothing was sent when it fails, so there is nothing to undo.
        let mut connection =
            match tokio::time::timeout_at(deadline, self.backend.connection()).await {
                Ok(Ok(connection)) => connection,
                Err(_elapsed) => {
                    self.claim_failed();
                    return Err(StoreError::Timeout);
                }
                Ok(Err(err)) => {
                    self.claim_failed();
                    return Err(StoreError::Unavailable(Box::new(err)));
                }
            };
        let query = pipe.query_async::<Vec<Value>>(&mut connection);
        let result = tokio::time::timeout_at(deadline, query).await;
        let mut replies = match result {
            Ok(Ok(replies)) => replies.into_iter(),
            Err(_elapsed) => {
                self.claim_failed();
                self.undo_unanswered(connection, redis_key, id);
                return Err(StoreError::Timeout);
            }
            // The connection's own response timeout: as unanswered as the one above.
            Ok(Err(err)) if err.is_timeout() => {
                self.claim_failed();
                self.undo_unanswered(connection, redis_key, id);
                return Err(StoreError::Timeout);
            }
            // The `SET` may have been written before the connection failed (a reset, a
            // failover): undo it too, so the refused request's retry is not `replayed`.
            Ok(Err(err)) => {
                // A connection error: the manager reconnects, maybe to another server, so
                // the next claim checks the policy again.
                self.claim_failed();
                // A refused connection sent nothing.
                if !err.is_connection_refusal()
                    && (err.is_io_error() || err.is_connection_dropped())
                {
                    self.undo_unanswered(connection, redis_key, id);
                }
                return Err(StoreError::Unavailable(Box::new(err)));
            }
        };
        let verdict =
            check.map(|check| (check, policy_verdict(replies.next().unwrap_or(Value::Nil))));
        // An error reply means Redis answered without writing: nothing to undo.
        let outcome = replies.next().map_or_else(
            || {
                Err(redis::RedisError::from((
                    redis::ErrorKind::Client,
                    "no reply to SET NX",
                )))
            },
            set_outcome,
        );
        // `WAIT`'s verdict, when asked for and the claim is new (a key already held is a
        // replay whatever the replicas have).
        let acknowledged = match (&self.config.wait, &outcome) {
            (Some(wait), Ok(Claim::Claimed)) => Some(wait.verdict(replies.next())),
            _ => None,
        };
        match verdict {
            Some((check, Err(err))) => {
                check.refuse(&err);
                if matches!(outcome, Ok(Claim::Claimed)) {
                    self.undo_unanswered(connection, redis_key, id);
                }
                return Err(StoreError::Unavailable(Box::new(err)));
            }
            Some((check, Ok(()))) => check.confirm(now),
            None => {}
        }
        if let Some(Err(err)) = acknowledged {
            // The claim is on the master only: refuse the request (503) and undo the claim, so
            // the sender's retry is not refused as replayed.
            tracing::warn!(
                target: "tollgate",
                error = %err,
                "nonce claim not acknowledged by enough replicas; request refused"
            );
            self.undo_unanswered(connection, redis_key, id);
            return Err(StoreError::Unavailable(err));
        }
        outcome.map_err(|err| {
            self.claim_failed();
            StoreError::Unavailable(Box::new(err))
        })
    }

    /// After a failed claim, the next claim checks the policy again (and, with Sentinel, asks
    /// the Sentinels which server is the master).
    fn claim_failed(&self) {
        if let Some(check) = &self.config.policy_check {
            check.invalidate();
        }
        self.backend.failed();
    }

    /// A claim whose answer did not arrive may still be applied when Redis resumes (and a
    /// claim refused for the eviction policy was applied): the request was refused (503), so
    /// its sender will retry, and that retry must not find the key held. Queue a
    /// compare-and-delete behind the `SET` on the same connection, in the background: it
    /// removes the key only if this claim wrote it.
    fn undo_unanswered(&self, mut connection: Connection, redis_key: String, id: ClaimId) {
        let deadline = self
            .config
            .timeout
            .saturating_mul(20)
            .max(Duration::from_secs(10));
        tokio::spawn(async move {
            let cmd = release_cmd(&redis_key, id);
            let undo = cmd.query_async::<i64>(&mut connection);
            match tokio::time::timeout(deadline, undo).await {
                Ok(Ok(removed)) => tracing::debug!(
                    target: "tollgate",
                    removed,
                    "refused nonce claim undone"
                ),
                Ok(Err(err)) => tracing::warn!(
                    target: "tollgate",
                    error = %err,
                    "could not undo a refused nonce claim; a retry of that request may be refused as replayed until the claim expires"
                ),
                Err(_elapsed) => tracing::warn!(
                    target: "tollgate",
                    "could not undo a refused nonce claim in time; a retry of that request may be refused as replayed until the claim expires"
                ),
            }
        });
    }

    async fn release_claim(&self, key: &[u8], id: ClaimId) -> Result<bool, StoreError> {
        let cmd = release_cmd(&self.redis_key(key), id);
        let release = async {
            let mut connection = self.backend.connection().await?;
            cmd.query_async::<i64>(&mut connection).await
        };
        match tokio::time::timeout(self.config.timeout, release).await {
            Err(_elapsed) => Err(StoreError::Timeout),
            Ok(Err(err)) => {
                self.backend.failed();
                Err(StoreError::Unavailable(Box::new(err)))
            }
            Ok(Ok(removed)) => Ok(removed == 1),
        }
    }
}

impl RedisNonceStoreBuilder {
    /// The prefix of every key (default [`DEFAULT_PREFIX`]); give each service its own when
    /// several share one Redis.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long one claim may take, connecting included (default [`DEFAULT_TIMEOUT`]).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The clock the TTL is computed from (default [`SystemClock`]).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Holds every claim for at least `min_retention` from this store's clock (default
    /// [`DEFAULT_SHARED_MIN_RETENTION`], 900 s; whole seconds), whatever the `expires_at` it
    /// is asked for: see [`held_until`]. Keep it at least `2 × tolerance` plus the largest clock
    /// skew between the instances sharing the Redis; `Duration::ZERO` trusts `expires_at`
    /// alone, which is safe only when every instance and the store read one clock.
    pub fn min_retention(mut self, min_retention: Duration) -> Self {
        self.min_retention = min_retention;
        self
    }

    /// Trusts a `noeviction` verdict for `interval` (default [`DEFAULT_POLICY_CHECK_INTERVAL`],
    /// 5 s; whole seconds of the store's clock, rounded down) before a claim reads Redis's
    /// `maxmemory-policy` again. A policy changed at run time (`CONFIG SET`) fails every claim
    /// that starts `interval` or more after the change. The re-check rides in the claim's own
    /// round trip (pipelined before the `SET`), so a shorter interval costs Redis a
    /// `CONFIG GET` more often, never a claim a round trip; `Duration::ZERO` checks on every
    /// claim.
    pub fn policy_check_interval(mut self, interval: Duration) -> Self {
        self.policy_check = Some(interval);
        self
    }

    /// After each new claim, waits until `replicas` replicas have acknowledged it (Redis's
    /// `WAIT <replicas> <timeout>`, in the claim's own round trip), for at most `timeout`
    /// (whole milliseconds; keep it below the store's [`timeout`](Self::timeout)). When fewer
    /// replicas acknowledge in time the claim fails closed: the request is refused with 503
    /// `store_unavailable` and the claim is undone, so the sender's retry is not `replayed`.
    /// Off by default.
    ///
    /// Without it a claim is acknowledged by the master alone, and replication is
    /// asynchronous: a master that dies before a replica received the claim loses it on
    /// failover, and that request can be replayed once. With it, a request proceeds only
    /// once its claim is on `replicas` replicas. Redis (and Sentinel) promote the replica
    /// with the most replicated data, so with one replica, or `replicas` equal to the number
    /// of replicas, an acknowledged claim survives the failover of its master. See
    /// "Security considerations: what Redis must guarantee" on [`RedisNonceStore`].
    ///
    /// Cost: a `WAIT` holds the connection until the replicas answer (a round trip from the
    /// master to a replica), and the store's claims share one connection, so claims per
    /// second fall (measured in `BENCHMARKS.md`). Leave the replicas room: in the benchmark,
    /// right after a burst of claims made without `WAIT`, a replica still catching up did not
    /// acknowledge within 100 ms, and every claim until it did was a 503. Size `timeout` for
    /// your replicas' lag under load, below the store's [`timeout`](Self::timeout) (500 ms by
    /// default).
    pub fn wait_for_replicas(mut self, replicas: u32, timeout: Duration) -> Self {
        self.wait = Some(WaitForReplicas { replicas, timeout });
        self
    }

    /// Runs without checking Redis's `maxmemory-policy`: for a managed Redis that refuses
    /// `CONFIG GET` (renamed or disabled; [`ConfigError::EvictionPolicyUnreadable`] otherwise),
    /// or a deliberate choice to run on an evicting Redis.
    ///
    /// # Security
    ///
    /// With any policy but `noeviction`, Redis drops keys when `maxmemory` is reached:
    /// `allkeys-*` any key, `volatile-*` the keys with a TTL, which every claim has (so on a
    /// Redis whose other keys have no TTL, the claims are the *only* candidates). A request
    /// whose claim was dropped is accepted again while it is inside the window: a captured
    /// request can be replayed under memory pressure, which an attacker may be able to cause.
    /// Use this only when you have made sure, through your provider's settings (e.g. a
    /// parameter group with `maxmemory-policy noeviction`), that Redis never evicts, and keep
    /// `maxmemory` large enough: under `noeviction` a full Redis refuses writes, which the
    /// store answers with 503, never a pass.
    pub fn trust_eviction_policy_unchecked(mut self) -> Self {
        self.policy_check = None;
        self
    }

    /// Builds the store, connects and checks the eviction policy ([`RedisNonceStore::verify`]):
    /// the way to start a service that must not run on a Redis that could forget claims.
    /// Must be called inside a Tokio runtime.
    ///
    /// # Errors
    ///
    /// Those of [`build`](Self::build) and [`RedisNonceStore::verify`]:
    /// [`ConfigError::EvictionPolicy`] when `maxmemory-policy` is not `noeviction`,
    /// [`ConfigError::EvictionPolicyUnreadable`] when Redis refuses `CONFIG GET`,
    /// [`ConfigError::Unreachable`] when Redis does not answer within the timeout.
    ///
    /// ```no_run
    /// use tollgate_replay::{ConfigError, RedisNonceStore};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = match RedisNonceStore::builder("redis://127.0.0.1:6379/").connect().await {
    ///     Ok(store) => store,
    ///     Err(ConfigError::EvictionPolicy { policy }) => {
    ///         return Err(format!("Redis may evict nonce claims ({policy}): not starting").into());
    ///     }
    ///     Err(err) => return Err(err.into()),
    /// };
    /// # let _ = store;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn connect(self) -> Result<RedisNonceStore, ConfigError> {
        let store = self.build()?;
        store.verify().await?;
        Ok(store)
    }

    /// Builds the store without connecting: the first claim connects, and checks the
    /// eviction policy in the same round trip (a claim on an evicting Redis fails with
    /// [`StoreError::Unavailable`] wrapping a [`ConfigError`]). Prefer
    /// [`connect`](Self::connect) to refuse to start instead. Must be called inside a Tokio
    /// runtime ([`ConfigError::NoRuntime`] otherwise).
    pub fn build(self) -> Result<RedisNonceStore, ConfigError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(ConfigError::NoRuntime);
        }
        let backend = self.target.backend(self.timeout)?;
        Ok(RedisNonceStore {
            backend,
            config: Arc::new(Settings {
                topology: self.target.kind(),
                wait: self.wait,
                prefix: self.prefix,
                timeout: self.timeout,
                clock: self.clock,
                min_retention: self.min_retention,
                policy_check: self.policy_check.map(PolicyCheck::new),
            }),
        })
    }
}

impl NonceStore for RedisNonceStore {
    fn claim<'a>(&'a self, key: &'a [u8], expires_at: u64) -> ClaimFuture<'a> {
        Box::pin(self.set_nx(key, expires_at, ClaimId::new(), false))
    }

    fn claim_with_id<'a>(&'a self, key: &'a [u8], expires_at: u64, id: ClaimId) -> ClaimFuture<'a> {
        Box::pin(self.set_nx(key, expires_at, id, false))
    }

    fn claim_extending<'a>(
        &'a self,
        key: &'a [u8],
        expires_at: u64,
        id: ClaimId,
    ) -> ClaimFuture<'a> {
        Box::pin(self.set_nx(key, expires_at, id, true))
    }

    fn release<'a>(&'a self, key: &'a [u8], id: ClaimId) -> ReleaseFuture<'a> {
        Box::pin(self.release_claim(key, id))
    }

    /// `redis`, whatever the topology (one node, Cluster or Sentinel).
    fn kind(&self) -> &'static str {
        "redis"
    }
}

impl fmt::Debug for RedisNonceStore {
    // The URL is left out: it may hold a password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisNonceStore")
            .field("topology", &self.config.topology)
            .field("wait_for_replicas", &self.config.wait)
            .field("prefix", &self.config.prefix)
            .field("timeout", &self.config.timeout)
            .field("min_retention", &self.config.min_retention)
            .field("policy_check_interval", &self.policy_check_interval())
            .field("clock", &self.config.clock)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for RedisNonceStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisNonceStoreBuilder")
            .field("topology", &self.target.kind())
            .field("wait_for_replicas", &self.wait)
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .field("min_retention", &self.min_retention)
            .field("policy_check_interval", &self.policy_check)
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}
