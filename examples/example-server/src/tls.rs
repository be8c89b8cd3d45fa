//! HTTPS for the demo and the examples: one local PKI per process ([`local_pki`]: a test CA
//! and its leaves, made at start-up by `tollgate-test-support`), the accept loop over TLS
//! ([`serve_tls`]) and the client side that trusts the local CA ([`client_tls`]).
//!
//! The providers' rule is "HTTPS only, certificates always validated, not even disabled in
//! development". So the examples' provider mocks serve HTTPS with a leaf for `localhost` and
//! `127.0.0.1` signed by a CA made at run time, and the clients calling them *add* that CA to
//! their roots ([`client_tls`]): nothing skips a certificate check. The CA's key never leaves
//! the process and a new one is made at every start, so the CA vouches for nothing else.
//!
//! ```no_run
//! # async fn run(app: axum::Router) -> Result<(), Box<dyn std::error::Error>> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let addr = listener.local_addr()?;
//! tokio::spawn(example_server::tls::serve_tls(listener, app, example_server::Limits::default()));
//! // A client of the mock: tollgate's HTTPS-only client trusting the local CA.
//! let tls = example_server::tls::client_tls()?;
//! # let _ = (addr, tls);
//! # Ok(())
//! # }
//! ```

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::{Extension, Router};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tollgate::https::{HttpsConnection, TlsConfig};

/// The test PKI and the loopback HTTPS server of `tollgate-test-support`, re-exported for the
/// demo's certificate scenarios (an expired leaf, a leaf for another name, ...).
pub use tollgate_test_support::tls::{Handler, HttpsServer, Leaf, TestPki, handler};

use crate::accept::serve_connection;
use crate::{Limits, is_connection_error};

/// The process's local PKI, made on first use (a CA, a good leaf for `localhost` and
/// `127.0.0.1`, and an expired, an other-name and a self-signed leaf).
pub fn local_pki() -> &'static TestPki {
    static PKI: OnceLock<TestPki> = OnceLock::new();
    PKI.get_or_init(TestPki::generate)
}

/// A rustls server configuration presenting `leaf`, TLS 1.2 and 1.3, ALPN `http/1.1` only
/// (the accept loop speaks HTTP/1.1).
pub fn server_config(leaf: &Leaf) -> Arc<rustls::ServerConfig> {
    let mut config = leaf.server_config();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// The TLS settings of a client of the local mocks: the local CA as the *only* root (a
/// certificate the CA did not sign, an expired one or one for another name is refused).
///
/// # Errors
///
/// Never in practice: the CA is a valid certificate made by this process.
pub fn client_tls() -> Result<TlsConfig, tollgate::https::ConfigError> {
    TlsConfig::new()
        .roots_only()
        .add_root_pem(local_pki().ca_pem.as_bytes())
}

/// `https://<addr>` for a server of the local PKI (its good leaf names `127.0.0.1`).
pub fn https_url(addr: SocketAddr) -> String {
    format!("https://{addr}")
}

/// Serves `app` over TLS with the local PKI's good leaf on `listener`, forever (see
/// [`serve_tls_with`]).
pub async fn serve_tls(listener: TcpListener, app: Router, limits: Limits) {
    serve_tls_with(listener, server_config(&local_pki().good), app, limits).await;
}

/// Serves `app` over TLS with `config` on `listener`, forever, within `limits`, as
/// [`serve`](crate::serve) does over TCP.
///
/// - The TLS handshake runs in the connection's own task, never on the accept path: a client
///   that stalls its handshake holds its own slot only, and loses it after
///   [`Limits::header_read_timeout`].
/// - Every request carries `ConnectInfo<SocketAddr>` (the TCP peer) and tollgate's
///   [`HttpsConnection`] marker (what `RequireHttpsLayer` reads).
pub async fn serve_tls_with(
    listener: TcpListener,
    config: Arc<rustls::ServerConfig>,
    app: Router,
    limits: Limits,
) {
    let acceptor = TlsAcceptor::from(config);
    let app = app.layer(Extension(HttpsConnection));
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
        let acceptor = acceptor.clone();
        let app = app.clone();
        tokio::spawn(async move {
            let handshake = acceptor.accept(stream);
            match tokio::time::timeout(limits.header_read_timeout, handshake).await {
                Ok(Ok(tls)) => serve_connection(tls, peer, app, limits, permit).await,
                Ok(Err(err)) => tracing::debug!(%err, %peer, "TLS handshake failed"),
                Err(_elapsed) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        });
    }
}
