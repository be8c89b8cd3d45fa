//! [`RedisNonceStore`]: one nonce store shared by every instance of a service (feature `redis`).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use sha2::{Digest, Sha256};
use tollgate_core::{BoxError, Clock, SharedClock, SystemClock};

use crate::store::{
    Claim, ClaimFuture, ClaimId, DEFAULT_SHARED_MIN_RETENTION, NonceStore, ReleaseFuture,
    StoreError, held_until,
};

/// Deletes `KEYS[1]` only while its value is `ARGV[1]`: releases one claim, never another's.
const RELEASE_SCRIPT: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end";

/// `EVAL` of [`RELEASE_SCRIPT`] for one key and claim id.
fn release_cmd(redis_key: &str, id: ClaimId) -> redis::Cmd {
    let mut cmd = redis::cmd("EVAL");
    cmd.arg(RELEASE_SCRIPT).arg(1).arg(redis_key).arg(id.get());
    cmd
}

/// The key prefix unless configured otherwise.
pub const DEFAULT_PREFIX: &str = "tollgate:replay:";

/// How long one claim may take, connecting included, unless configured otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(500);

/// The longest TTL sent to Redis, in milliseconds (far beyond any window; keeps Redis's
/// `now + ttl` from overflowing).
const MAX_TTL_MS: u64 = 1 << 52;

/// Why a store could not be configured.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConfigError {
    /// The Redis URL is invalid or the client could not be created.
    Redis(BoxError),
    /// Not called inside a Tokio runtime (the connection manager spawns a task).
    NoRuntime,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Redis(err) => write!(f, "invalid Redis configuration: {err}"),
            Self::NoRuntime => f.write_str("RedisNonceStore must be built inside a Tokio runtime"),
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Redis(err) => Some(&**err),
            Self::NoRuntime => None,
        }
    }
}

/// A nonce store on Redis, shared by every instance of a service behind a load balancer:
/// a request accepted by one instance is refused as replayed by all the others.
///
/// Each claim is one atomic `SET <prefix><hex(sha256(key))> <claim id> NX PX <ttl>`: Redis answers
/// `OK` to exactly one of many concurrent claims of a key; a claim that finds the key does not
/// touch its TTL. The TTL is `(held_until − now + 1)` seconds in milliseconds, where
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
/// `redis` crate's [`ConnectionManager`], created lazily: the service starts even while Redis
/// is down, and the connection is re-established after an outage without a restart.
///
/// A claim whose answer does not arrive in time (Redis paused or slow) is refused with 503,
/// and the store queues a compare-and-delete of that claim behind it on the same connection:
/// if the `SET` is applied when Redis resumes, it is undone, so the sender's retry is accepted
/// rather than refused as `replayed`. [`NonceStore::release`] is the same compare-and-delete
/// (a Lua script: `DEL` only while the key holds this claim's id), so a release never removes
/// another request's claim.
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
/// use tollgate_replay::{RedisNonceStore, ReplayGuard, ReplayGuardLayer};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = RedisNonceStore::builder("redis://127.0.0.1:6379/")
///     .prefix("payments:replay:")
///     .timeout(Duration::from_millis(250))
///     .build()?;
/// let layer = ReplayGuardLayer::new(ReplayGuard::tranzila(), store);
/// # let _ = layer;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RedisNonceStore {
    manager: ConnectionManager,
    config: Arc<Settings>,
}

struct Settings {
    prefix: String,
    timeout: Duration,
    clock: SharedClock,
    min_retention: Duration,
}

/// Configures a [`RedisNonceStore`].
#[must_use]
pub struct RedisNonceStoreBuilder {
    url: String,
    prefix: String,
    timeout: Duration,
    clock: SharedClock,
    min_retention: Duration,
}

impl RedisNonceStore {
    /// A store on the Redis at `url` (`redis://host:port/db`, `rediss://` is not enabled) with
    /// the default prefix, timeout and clock. Must be called inside a Tokio runtime.
    pub fn new(url: impl Into<String>) -> Result<Self, ConfigError> {
        Self::builder(url).build()
    }

    /// A builder for the Redis at `url`.
    pub fn builder(url: impl Into<String>) -> RedisNonceStoreBuilder {
        RedisNonceStoreBuilder {
            url: url.into(),
            prefix: DEFAULT_PREFIX.to_owned(),
            timeout: DEFAULT_TIMEOUT,
            clock: Arc::new(SystemClock),
            min_retention: DEFAULT_SHARED_MIN_RETENTION,
        }
    }

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

    /// The TTL in milliseconds of a claim asked for with `expires_at` when the store's clock
    /// reads `now`: through the second [`held_until`], capped far beyond any window.
    pub(crate) fn ttl_ms(&self, expires_at: u64, now: u64) -> u64 {
        held_until(expires_at, now, self.config.min_retention)
            .saturating_sub(now)
            .saturating_add(1)
            .saturating_mul(1000)
            .min(MAX_TTL_MS)
    }

    async fn set_nx(&self, key: &[u8], expires_at: u64, id: ClaimId) -> Result<Claim, StoreError> {
        let ttl_ms = self.ttl_ms(expires_at, self.config.clock.now_unix());
        let redis_key = self.redis_key(key);
        let mut cmd = redis::cmd("SET");
        cmd.arg(&redis_key)
            .arg(id.get())
            .arg("NX")
            .arg("PX")
            .arg(ttl_ms);
        let mut connection = self.manager.clone();
        let query = cmd.query_async::<Option<String>>(&mut connection);
        match tokio::time::timeout(self.config.timeout, query).await {
            Err(_elapsed) => {
                self.undo_unanswered(redis_key, id);
                Err(StoreError::Timeout)
            }
            // The connection's own response timeout: as unanswered as the one above.
            Ok(Err(err)) if err.is_timeout() => {
                self.undo_unanswered(redis_key, id);
                Err(StoreError::Timeout)
            }
            // The `SET` may have been written before the connection failed (a reset, a
            // failover): undo it too, so the refused request's retry is not `replayed`.
            Ok(Err(err)) => {
                // A refused connection sent nothing; an error reply (a server error, not an
                // I/O one) means Redis answered without writing.
                if !err.is_connection_refusal()
                    && (err.is_io_error() || err.is_connection_dropped())
                {
                    self.undo_unanswered(redis_key, id);
                }
                Err(StoreError::Unavailable(Box::new(err)))
            }
            Ok(Ok(Some(_ok))) => Ok(Claim::Claimed),
            Ok(Ok(None)) => Ok(Claim::AlreadySeen),
        }
    }

    /// A claim whose answer did not arrive may still be applied when Redis resumes: the
    /// request was refused (503), so its sender will retry, and that retry must not find the
    /// key held. Queue a compare-and-delete behind the `SET` on the same connection, in the
    /// background: it removes the key only if this claim wrote it.
    fn undo_unanswered(&self, redis_key: String, id: ClaimId) {
        let mut connection = self.manager.clone();
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
                    "unanswered nonce claim undone"
                ),
                Ok(Err(err)) => tracing::warn!(
                    target: "tollgate",
                    error = %err,
                    "could not undo an unanswered nonce claim; a retry of that request may be refused as replayed until the claim expires"
                ),
                Err(_elapsed) => tracing::warn!(
                    target: "tollgate",
                    "could not undo an unanswered nonce claim in time; a retry of that request may be refused as replayed until the claim expires"
                ),
            }
        });
    }

    async fn release_claim(&self, key: &[u8], id: ClaimId) -> Result<bool, StoreError> {
        let mut connection = self.manager.clone();
        let cmd = release_cmd(&self.redis_key(key), id);
        let release = cmd.query_async::<i64>(&mut connection);
        match tokio::time::timeout(self.config.timeout, release).await {
            Err(_elapsed) => Err(StoreError::Timeout),
            Ok(Err(err)) => Err(StoreError::Unavailable(Box::new(err))),
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

    /// Builds the store without connecting: the first claim connects. Must be called inside
    /// a Tokio runtime ([`ConfigError::NoRuntime`] otherwise).
    pub fn build(self) -> Result<RedisNonceStore, ConfigError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(ConfigError::NoRuntime);
        }
        let client =
            redis::Client::open(self.url.as_str()).map_err(|err| ConfigError::Redis(err.into()))?;
        // Short connection attempts and few, short retries: a claim during an outage fails
        // within the timeout, and the next claim after the outage starts a fresh attempt.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(10))
            .set_max_delay(self.timeout.min(Duration::from_millis(100)));
        let manager = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|err| ConfigError::Redis(err.into()))?;
        Ok(RedisNonceStore {
            manager,
            config: Arc::new(Settings {
                prefix: self.prefix,
                timeout: self.timeout,
                clock: self.clock,
                min_retention: self.min_retention,
            }),
        })
    }
}

impl NonceStore for RedisNonceStore {
    fn claim<'a>(&'a self, key: &'a [u8], expires_at: u64) -> ClaimFuture<'a> {
        Box::pin(self.set_nx(key, expires_at, ClaimId::new()))
    }

    fn claim_with_id<'a>(&'a self, key: &'a [u8], expires_at: u64, id: ClaimId) -> ClaimFuture<'a> {
        Box::pin(self.set_nx(key, expires_at, id))
    }

    fn release<'a>(&'a self, key: &'a [u8], id: ClaimId) -> ReleaseFuture<'a> {
        Box::pin(self.release_claim(key, id))
    }
}

impl fmt::Debug for RedisNonceStore {
    // The URL is left out: it may hold a password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisNonceStore")
            .field("prefix", &self.config.prefix)
            .field("timeout", &self.config.timeout)
            .field("min_retention", &self.config.min_retention)
            .field("clock", &self.config.clock)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for RedisNonceStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisNonceStoreBuilder")
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .field("min_retention", &self.min_retention)
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}
