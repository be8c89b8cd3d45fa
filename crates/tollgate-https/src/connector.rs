//! [`HttpsConnector`]: hyper-rustls behind a scheme check, with a connect timeout and typed
//! errors.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper_rustls::MaybeHttpsStream;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpStream;
use tower_service::Service;

use crate::{ConfigError, ConnectError, TlsConfig};

/// The connect timeout of [`HttpsConnector::new`]: 5 seconds.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A `hyper_util` connector that speaks HTTPS only.
///
/// - A URI whose scheme is not `https` is refused with [`ConnectError::NotHttps`] before any
///   connection is opened: no DNS lookup, no TCP connection, nothing sent.
/// - TLS 1.2 and 1.3 only; the certificate is always verified against the roots of the
///   [`TlsConfig`] (there is no way to turn that off); a refusal is
///   [`ConnectError::Certificate`], and no byte of the request is sent.
/// - The TCP connection must be up within the connect timeout (default
///   [`DEFAULT_CONNECT_TIMEOUT`]), else [`ConnectError::Timeout`].
///
/// [`HttpsConnector::client`] builds the `hyper_util` client over it.
///
/// ```no_run
/// use bytes::Bytes;
/// use http_body_util::Full;
/// use tollgate_https::{HttpsConnector, TlsConfig};
///
/// # fn main() -> Result<(), tollgate_https::ConfigError> {
/// let client = HttpsConnector::new(&TlsConfig::new())?.client::<Full<Bytes>>();
/// # drop(client);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct HttpsConnector {
    inner: hyper_rustls::HttpsConnector<HttpConnector>,
    connect_timeout: Duration,
}

impl HttpsConnector {
    /// A connector trusting `tls`'s roots, with the default connect timeout.
    ///
    /// # Errors
    ///
    /// When `tls` cannot build a rustls configuration ([`TlsConfig::client_config`]).
    pub fn new(tls: &TlsConfig) -> Result<Self, ConfigError> {
        Self::with_connect_timeout(tls, DEFAULT_CONNECT_TIMEOUT)
    }

    /// A connector trusting `tls`'s roots, with `connect_timeout` for the TCP connection.
    ///
    /// # Errors
    ///
    /// [`ConfigError::ZeroTimeout`] for a zero timeout, and the errors of
    /// [`TlsConfig::client_config`].
    pub fn with_connect_timeout(
        tls: &TlsConfig,
        connect_timeout: Duration,
    ) -> Result<Self, ConfigError> {
        if connect_timeout.is_zero() {
            return Err(ConfigError::ZeroTimeout {
                name: "connect timeout",
            });
        }
        let mut config = tls.client_config()?;
        // hyper-rustls panics on a preset ALPN list and writes its own from the enabled
        // protocols below (h2 and http/1.1, or http/1.1 alone): the same list.
        config.alpn_protocols.clear();
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(connect_timeout));
        let builder = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(config)
            .https_only();
        let inner = if tls.offers_http2() {
            builder.enable_http1().enable_http2().wrap_connector(http)
        } else {
            builder.enable_http1().wrap_connector(http)
        };
        Ok(Self {
            inner,
            connect_timeout,
        })
    }

    /// The connect timeout.
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// A `hyper_util` client over this connector (pooled connections, HTTP/2 when the server
    /// offers it and the [`TlsConfig`] allows it).
    pub fn client<B>(&self) -> Client<HttpsConnector, B>
    where
        B: http_body::Body + Send + 'static,
        B::Data: Send,
    {
        Client::builder(TokioExecutor::new())
            .timer(TokioTimer::new())
            .pool_timer(TokioTimer::new())
            .build(self.clone())
    }
}

impl fmt::Debug for HttpsConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpsConnector")
            .field("connect_timeout", &self.connect_timeout)
            .finish_non_exhaustive()
    }
}

/// The connection: always TLS (the plain-HTTP arm of hyper-rustls's stream never occurs).
pub type HttpsStream = MaybeHttpsStream<TokioIo<TcpStream>>;

impl Service<Uri> for HttpsConnector {
    type Response = HttpsStream;
    type Error = ConnectError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpsStream, ConnectError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        let timeout = self.connect_timeout;
        self.inner
            .poll_ready(cx)
            .map_err(|error| ConnectError::classify(error, timeout))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        // Checked here, before the inner connector sees the URI: nothing is resolved or opened.
        if uri.scheme() != Some(&http::uri::Scheme::HTTPS) {
            let scheme = uri.scheme_str().unwrap_or("none").to_owned();
            tracing::warn!(target: "tollgate", %scheme, "refused a non-https connection");
            return Box::pin(std::future::ready(Err(ConnectError::NotHttps { scheme })));
        }
        if uri.host().is_none_or(str::is_empty) {
            return Box::pin(std::future::ready(Err(ConnectError::MissingHost)));
        }
        let timeout = self.connect_timeout;
        let connecting = self.inner.call(uri);
        Box::pin(async move {
            connecting
                .await
                .map_err(|error| ConnectError::classify(error, timeout))
        })
    }
}
