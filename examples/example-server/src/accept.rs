//! The accept loop for an axum `Router` (see the crate docs).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use http::{Request, StatusCode};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::{ServiceBuilder, ServiceExt};
use tower_http::timeout::TimeoutLayer;

use crate::is_connection_error;

/// How much one client can hold of the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// How long a connection may take to send a complete request head (also the idle time
    /// allowed between keep-alive requests); default 10 seconds.
    pub header_read_timeout: Duration,
    /// How long one request may take, from its head to the end of its answer (reading the
    /// body included); default 30 seconds. Past it the answer is 408 and the connection
    /// closes.
    pub request_timeout: Duration,
    /// How long a connection is kept; default 5 minutes. Then it is shut down gracefully and
    /// closed after a further `request_timeout`.
    pub max_connection_age: Duration,
    /// Connections served at once; default 512, below the usual limit of 1024 open files.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_connection_age: Duration::from_secs(300),
            max_connections: 512,
        }
    }
}

/// Serves `app` on `listener` over HTTP/1, forever, within `limits` (see the crate docs).
pub async fn serve(listener: TcpListener, app: Router, limits: Limits) {
    let connections = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    loop {
        let Ok(permit) = Arc::clone(&connections).acquire_owned().await else {
            return; // the semaphore is never closed
        };
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) if is_connection_error(&err) => continue,
            Err(err) => {
                tracing::error!(%err, "accept error; retrying in a second");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        spawn_connection(stream, peer, app.clone(), limits, permit);
    }
}

/// Serves one accepted connection (TCP, or TLS once its handshake is done) in a task of its
/// own, within `limits`; `permit` is its slot, given back when the connection ends.
pub(crate) fn spawn_connection<I>(
    io: I,
    peer: SocketAddr,
    app: Router,
    limits: Limits,
    permit: OwnedSemaphorePermit,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(serve_connection(io, peer, app, limits, permit));
}

/// Serves one connection within `limits` (see [`spawn_connection`]).
pub(crate) async fn serve_connection<I>(
    io: I,
    peer: SocketAddr,
    app: Router,
    limits: Limits,
    permit: OwnedSemaphorePermit,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = ServiceBuilder::new()
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            limits.request_timeout,
        ))
        .service(app)
        .map_request(move |mut request: Request<Incoming>| {
            request
                .extensions_mut()
                .insert(ConnectInfo::<SocketAddr>(peer));
            request
        });
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .serve_connection(TokioIo::new(io), TowerToHyperService::new(service));
    let mut connection = std::pin::pin!(connection);
    let ended = tokio::select! {
        ended = connection.as_mut() => Some(ended),
        () = tokio::time::sleep(limits.max_connection_age) => None,
    };
    let ended = match ended {
        Some(ended) => ended,
        None => {
            connection.as_mut().graceful_shutdown();
            tokio::time::timeout(limits.request_timeout, connection)
                .await
                .unwrap_or(Ok(()))
        }
    };
    if let Err(err) = ended {
        tracing::debug!(%err, "connection ended with an error");
    }
    drop(permit);
}
