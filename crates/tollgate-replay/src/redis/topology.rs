//! Where the store's commands go: one Redis (through a [`ConnectionManager`]), a Redis Cluster
//! (the `redis` crate's async cluster client) or the master a set of Sentinels names.

#[cfg(feature = "redis-cluster")]
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

#[cfg(feature = "redis-cluster")]
use redis::aio::MultiplexedConnection;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::{Cmd, Pipeline, RedisError, RedisFuture, Value};

use super::ConfigError;

/// Where a [`RedisNonceStoreBuilder`](super::RedisNonceStoreBuilder) points.
#[derive(Clone)]
pub(super) enum Target {
    /// One Redis at a URL.
    Single(String),
    /// A Redis Cluster, reached through any of these nodes.
    #[cfg(feature = "redis-cluster")]
    Cluster(Vec<String>),
    /// The master the Sentinels at these URLs name for `service`.
    #[cfg(feature = "redis-cluster")]
    Sentinel {
        sentinels: Vec<String>,
        service: String,
    },
}

impl Target {
    /// What `Debug` shows: the topology, never a URL (it may hold a password).
    pub(super) fn kind(&self) -> &'static str {
        match self {
            Self::Single(_) => "single",
            #[cfg(feature = "redis-cluster")]
            Self::Cluster(_) => "cluster",
            #[cfg(feature = "redis-cluster")]
            Self::Sentinel { .. } => "sentinel",
        }
    }

    /// The connections, created lazily: nothing is connected until the first command.
    pub(super) fn backend(&self, timeout: Duration) -> Result<Backend, ConfigError> {
        match self {
            Self::Single(url) => {
                let client = redis::Client::open(url.as_str())
                    .map_err(|err| ConfigError::Redis(err.into()))?;
                // Short connection attempts and few, short retries: a claim during an outage
                // fails within the timeout, and the next claim after the outage starts a
                // fresh attempt.
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(timeout))
                    .set_response_timeout(Some(timeout))
                    .set_number_of_retries(1)
                    .set_min_delay(Duration::from_millis(10))
                    .set_max_delay(timeout.min(Duration::from_millis(100)));
                let manager = ConnectionManager::new_lazy_with_config(client, config)
                    .map_err(|err| ConfigError::Redis(err.into()))?;
                Ok(Backend::Single(manager))
            }
            #[cfg(feature = "redis-cluster")]
            Self::Cluster(nodes) => {
                if nodes.is_empty() {
                    return Err(ConfigError::Redis(
                        "a Redis Cluster needs at least one node".into(),
                    ));
                }
                let client =
                    redis::cluster::ClusterClient::builder(nodes.iter().map(String::as_str))
                        .connection_timeout(timeout)
                        .response_timeout(timeout)
                        .retries(2)
                        .min_retry_wait(10)
                        .max_retry_wait(100)
                        .build()
                        .map_err(|err| ConfigError::Redis(err.into()))?;
                let config = redis::cluster::ClusterConfig::new()
                    .set_connection_timeout(timeout)
                    .set_response_timeout(timeout);
                Ok(Backend::Cluster(
                    client.get_pending_async_connection_with_config(config),
                ))
            }
            #[cfg(feature = "redis-cluster")]
            Self::Sentinel { sentinels, service } => {
                if sentinels.is_empty() {
                    return Err(ConfigError::Redis(
                        "Sentinel needs at least one sentinel".into(),
                    ));
                }
                let client = redis::sentinel::SentinelClient::build(
                    sentinels.clone(),
                    service.clone(),
                    None,
                    redis::sentinel::SentinelServerType::Master,
                )
                .map_err(|err| ConfigError::Redis(err.into()))?;
                Ok(Backend::Sentinel(Arc::new(SentinelBackend {
                    client: tokio::sync::Mutex::new(client),
                    master: Mutex::new(None),
                    timeout,
                })))
            }
        }
    }
}

/// The store's way to Redis; cheap to clone.
#[derive(Clone)]
pub(super) enum Backend {
    Single(ConnectionManager),
    #[cfg(feature = "redis-cluster")]
    Cluster(redis::cluster_async::ClusterConnection),
    #[cfg(feature = "redis-cluster")]
    Sentinel(Arc<SentinelBackend>),
}

/// The Sentinel client and the connection to the master it named last.
#[cfg(feature = "redis-cluster")]
pub(super) struct SentinelBackend {
    /// Asks the Sentinels which server is the master (one lookup at a time).
    client: tokio::sync::Mutex<redis::sentinel::SentinelClient>,
    /// The connection to the current master; `None` after a failure, so the next command
    /// asks the Sentinels again (a failover moved the master).
    master: Mutex<Option<MultiplexedConnection>>,
    timeout: Duration,
}

#[cfg(feature = "redis-cluster")]
impl SentinelBackend {
    async fn connection(&self) -> Result<MultiplexedConnection, RedisError> {
        if let Some(connection) = self.current() {
            return Ok(connection);
        }
        let mut client = self.client.lock().await;
        // Another claim may have connected while this one waited for the lock.
        if let Some(connection) = self.current() {
            return Ok(connection);
        }
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout));
        let connection = client.get_async_connection_with_config(&config).await?;
        *self.master.lock().unwrap_or_else(PoisonError::into_inner) = Some(connection.clone());
        tracing::debug!(target: "tollgate", "connected to the master named by Redis Sentinel");
        Ok(connection)
    }

    fn current(&self) -> Option<MultiplexedConnection> {
        self.master
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn forget(&self) {
        self.master
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
    }
}

impl Backend {
    /// A connection for one claim (for Sentinel, asking the Sentinels first when the last
    /// connection failed).
    pub(super) async fn connection(&self) -> Result<Connection, RedisError> {
        match self {
            Self::Single(manager) => Ok(Connection::Single(manager.clone())),
            #[cfg(feature = "redis-cluster")]
            Self::Cluster(cluster) => Ok(Connection::Cluster(cluster.clone())),
            #[cfg(feature = "redis-cluster")]
            Self::Sentinel(sentinel) => sentinel.connection().await.map(Connection::Sentinel),
        }
    }

    /// A claim failed (no answer, a dropped connection, an error reply such as `READONLY`
    /// from a demoted master): with Sentinel, the next claim asks the Sentinels which server
    /// is the master. The others reconnect on their own.
    pub(super) fn failed(&self) {
        #[cfg(feature = "redis-cluster")]
        if let Self::Sentinel(sentinel) = self {
            sentinel.forget();
        }
    }

    /// Whether commands may be spread over several servers (checks must ask every master).
    #[cfg(feature = "redis-cluster")]
    pub(super) fn cluster(&self) -> Option<&redis::cluster_async::ClusterConnection> {
        match self {
            Self::Cluster(cluster) => Some(cluster),
            _ => None,
        }
    }
}

/// One claim's connection.
#[derive(Clone)]
pub(super) enum Connection {
    Single(ConnectionManager),
    #[cfg(feature = "redis-cluster")]
    Cluster(redis::cluster_async::ClusterConnection),
    #[cfg(feature = "redis-cluster")]
    Sentinel(MultiplexedConnection),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(c) => c.req_packed_command(cmd),
            #[cfg(feature = "redis-cluster")]
            Self::Cluster(c) => c.req_packed_command(cmd),
            #[cfg(feature = "redis-cluster")]
            Self::Sentinel(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(c) => c.req_packed_commands(pipeline, offset, count),
            #[cfg(feature = "redis-cluster")]
            Self::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
            #[cfg(feature = "redis-cluster")]
            Self::Sentinel(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(c) => c.get_db(),
            #[cfg(feature = "redis-cluster")]
            Self::Cluster(c) => c.get_db(),
            #[cfg(feature = "redis-cluster")]
            Self::Sentinel(c) => c.get_db(),
        }
    }
}
