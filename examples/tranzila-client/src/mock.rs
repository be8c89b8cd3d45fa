//! A mock Tranzila endpoint over HTTPS: `TranzilaVerifyLayer` with the in-memory nonce store
//! in front of an axum handler that answers like Tranzila's transaction API.
//!
//! [`MockTranzila::unavailable_first`] makes the handler answer 503 to the first calls that
//! pass verification (their nonces are claimed by then, and a Tranzila nonce is never
//! released): what a client's retry meets, and why each attempt must be signed anew.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use serde_json::json;
use tokio::net::TcpListener;
use tollgate::core::SharedClock;
use tollgate::replay::{DEFAULT_CAPACITY, MemoryNonceStore};
use tollgate::tranzila::{TranzilaCredentials, TranzilaVerifyLayer};

use crate::CREATE_TRANSACTION_PATH;

#[derive(Debug, Default)]
struct Shared {
    accepted: AtomicU64,
    /// How many verified calls are still to be answered 503.
    unavailable: AtomicU64,
    last_headers: Mutex<Option<HeaderMap>>,
    verified: Mutex<Vec<(HeaderMap, Bytes)>>,
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

    /// Answers 503 `{"error_code":503,...}` to the next `calls` calls that pass
    /// verification (a provider briefly unavailable), then as usual.
    #[must_use]
    pub fn unavailable_first(self, calls: u64) -> Self {
        self.shared.unavailable.store(calls, Ordering::SeqCst);
        self
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

    /// Binds `addr` and serves over HTTPS (the local PKI of [`example_server::tls`]) in a
    /// spawned task; returns the bound address (the base URL is `https://<addr>`).
    pub async fn spawn(&self, addr: SocketAddr) -> std::io::Result<SocketAddr> {
        let listener = TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        let app = self.router().map_err(std::io::Error::other)?;
        tokio::spawn(example_server::tls::serve_tls(
            listener,
            app,
            example_server::Limits::default(),
        ));
        Ok(local)
    }

    /// The headers and body of every call that passed verification, answered 200 or 503,
    /// in order.
    pub fn verified(&self) -> Vec<(HeaderMap, Bytes)> {
        self.shared
            .verified
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// How many calls passed verification and were answered 200.
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
    body: Bytes,
) -> Response {
    shared
        .verified
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push((headers.clone(), body));
    let unavailable = shared
        .unavailable
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
            left.checked_sub(1)
        })
        .is_ok();
    if unavailable {
        // Nothing was done: the caller may retry (with a fresh nonce).
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({ "error_code": 503, "message": "Service temporarily unavailable" })),
        )
            .into_response();
    }
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
    .into_response()
}
