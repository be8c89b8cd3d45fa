//! A mock Tranzila endpoint: `TranzilaVerifyLayer` with the in-memory nonce store in front of
//! an axum handler that answers like Tranzila's transaction API.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::extract::State;
use axum::routing::post;
use http::HeaderMap;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tollgate::core::SharedClock;
use tollgate::replay::{DEFAULT_CAPACITY, MemoryNonceStore};
use tollgate::tranzila::{TranzilaCredentials, TranzilaVerifyLayer};

use crate::CREATE_TRANSACTION_PATH;

#[derive(Debug, Default)]
struct Shared {
    accepted: AtomicU64,
    last_headers: Mutex<Option<HeaderMap>>,
}

/// The mock: what it accepted, for demos and tests.
#[derive(Debug, Clone)]
pub struct MockTranzila {
    credentials: TranzilaCredentials,
    clock: SharedClock,
    shared: Arc<Shared>,
}

impl MockTranzila {
    /// A mock accepting calls signed with `credentials`, reading time from `clock`.
    pub fn new(credentials: TranzilaCredentials, clock: SharedClock) -> Self {
        Self {
            credentials,
            clock,
            shared: Arc::default(),
        }
    }

    /// The routes, behind the verify layer (a fresh in-memory nonce store per router).
    ///
    /// # Errors
    ///
    /// A blank secret (never the case for `TranzilaCredentials`, which refuse one).
    pub fn router(&self) -> Result<Router, tollgate::tranzila::ConfigError> {
        let store = MemoryNonceStore::new(DEFAULT_CAPACITY).with_clock(self.clock.clone());
        let verify =
            TranzilaVerifyLayer::new(self.credentials.clone(), store)?.clock(self.clock.clone());
        Ok(Router::new()
            .route(CREATE_TRANSACTION_PATH, post(create_transaction))
            .layer(verify)
            .with_state(self.shared.clone()))
    }

    /// Binds `addr` and serves in a spawned task; returns the bound address.
    pub async fn spawn(&self, addr: SocketAddr) -> std::io::Result<SocketAddr> {
        let listener = TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        let app = self.router().map_err(std::io::Error::other)?;
        tokio::spawn(async move {
            if let Err(err) = axum::serve(listener, app).await {
                tracing::error!(%err, "mock Tranzila server stopped");
            }
        });
        Ok(local)
    }

    /// How many calls passed verification.
    pub fn accepted(&self) -> u64 {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// The headers of the last accepted call (to replay them in demos).
    pub fn last_headers(&self) -> Option<HeaderMap> {
        self.shared
            .last_headers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

async fn create_transaction(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
) -> axum::Json<Value> {
    let id = shared.accepted.fetch_add(1, Ordering::SeqCst) + 1;
    *shared
        .last_headers
        .lock()
        .unwrap_or_else(PoisonError::into_inner) = Some(headers);
    axum::Json(json!({
        "error_code": 0,
        "message": "Success",
        "transaction_result": { "transaction_id": id, "processor_response_code": "000" }
    }))
}
