//! [`ClientBuilder`]: a reqwest client with tollgate's rules, in an order that cannot be got
//! wrong.

use std::time::Duration;

use reqwest_middleware::ClientWithMiddleware;
use tollgate_client::{DEFAULT_ATTEMPT_TIMEOUT, DEFAULT_CONNECT_TIMEOUT, RetryPolicy};
use tollgate_https::TlsConfig;

use crate::{ConfigError, PinMiddleware, RetryMiddleware, TowerMiddleware};

/// The reqwest client of a tollgate provider client: every setting of `settings` (the
/// `tollgate_client::ClientBuilder` the hyper client is built from) honoured, `layers` (the
/// same tower layers the hyper client gets) run on every attempt. The facade's
/// `build_reqwest()` calls this.
///
/// | setting | through reqwest |
/// | --- | --- |
/// | base URL | every request pinned to its scheme, host, port and base path ([`PinMiddleware`], [`Error::NotBaseUrl`](crate::Error::NotBaseUrl)); request URLs must be absolute (reqwest has no relative URLs) |
/// | tls | the reqwest client's rustls configuration, certificates always verified; `https_only`, no redirects |
/// | connect timeout | reqwest's `connect_timeout` |
/// | attempt timeout | reqwest's `timeout`, per attempt (response body included, unlike the hyper client) |
/// | deadline | [`RetryMiddleware::deadline`]: [`Error::DeadlineExceeded`](crate::Error::DeadlineExceeded) |
/// | retry | [`RetryMiddleware`], outside the layers: every attempt re-signed |
/// | rate and concurrency limits | [`RetryMiddleware::rate_limit`], [`RetryMiddleware::concurrency_limit`], shared by clones |
/// | max request body | [`Error::BodyTooLarge`](crate::Error::BodyTooLarge), unsent |
/// | signed time resolution | [`RetryMiddleware::signed_time_resolution`] |
/// | provider | one audit event per attempt ([`RetryMiddleware::audit`]) |
///
/// # Errors
///
/// [`ConfigError::Client`] for every refusal of `tollgate_client::ClientBuilder::build`
/// (`ClientBuilder::validate`); [`ConfigError::Tls`]; [`ConfigError::Reqwest`].
///
/// ```
/// use tollgate_reqwest::client;
///
/// let settings = tollgate_client::ClientBuilder::new("acme").base_url("https://api.acme.example");
/// let client = client(settings, tower::layer::util::Identity::new())?;
/// # let _ = client;
/// let http = tollgate_client::ClientBuilder::new("acme").base_url("http://api.acme.example");
/// assert!(tollgate_reqwest::client(http, tower::layer::util::Identity::new()).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn client<L>(
    settings: tollgate_client::ClientBuilder,
    layers: L,
) -> Result<ClientWithMiddleware, ConfigError>
where
    TowerMiddleware<L>: reqwest_middleware::Middleware,
{
    build(settings, layers, None)
}

/// [`client`], with `network` run last, between the layers and the network: it sees each
/// attempt as sent (the layers' headers in place) and its real response. What a layer needs
/// to learn from a response (a 401 that should drop a cached token) goes here, because the
/// layers themselves run before the request is sent.
///
/// ```
/// use tollgate_reqwest::reqwest_middleware::{Middleware, Next, Result};
///
/// /// Sees the status of every attempt as the network answered it.
/// struct Status;
///
/// #[async_trait::async_trait]
/// impl Middleware for Status {
///     async fn handle(
///         &self,
///         request: reqwest::Request,
///         extensions: &mut http::Extensions,
///         next: Next<'_>,
///     ) -> Result<reqwest::Response> {
///         let response = next.run(request, extensions).await?;
///         let _status = response.status(); // log it, count it, act on a 401 ...
///         Ok(response)
///     }
/// }
///
/// let settings = tollgate_client::ClientBuilder::new("acme").base_url("https://api.acme.example");
/// let client = tollgate_reqwest::client_with(settings, tower::layer::util::Identity::new(), Status)?;
/// # let _ = client;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
///
/// As [`client`].
pub fn client_with<L>(
    settings: tollgate_client::ClientBuilder,
    layers: L,
    network: impl reqwest_middleware::Middleware,
) -> Result<ClientWithMiddleware, ConfigError>
where
    TowerMiddleware<L>: reqwest_middleware::Middleware,
{
    build(settings, layers, Some(std::sync::Arc::new(network)))
}

fn build<L>(
    settings: tollgate_client::ClientBuilder,
    layers: L,
    network: Option<std::sync::Arc<dyn reqwest_middleware::Middleware>>,
) -> Result<ClientWithMiddleware, ConfigError>
where
    TowerMiddleware<L>: reqwest_middleware::Middleware,
{
    let upstream = settings.validate()?;
    let s = settings.settings();
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured(s.tls.client_config()?)
        // No proxy from the environment (`HTTPS_PROXY`, ...): the provider is reached
        // directly, as by the hyper client; a proxy would learn every payment call's target.
        .no_proxy()
        .https_only(true)
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(s.connect_timeout)
        .timeout(s.attempt_timeout)
        .build()
        .map_err(|error| ConfigError::Reqwest(error.to_string()))?;
    let mut retry = RetryMiddleware::new(s.retry.clone())
        .deadline(s.deadline)
        .audit(s.provider)
        .max_request_body(s.max_request_body);
    if let Some((requests, per)) = s.rate_limit {
        retry = retry.rate_limit(requests, per);
    }
    if let Some(max) = s.concurrency_limit {
        retry = retry.concurrency_limit(max);
    }
    if let Some(tick) = s.signed_time_resolution {
        retry = retry.signed_time_resolution(tick);
    }
    let mut builder = reqwest_middleware::ClientBuilder::new(client);
    if let Some(upstream) = upstream {
        builder = builder.with(PinMiddleware::new(upstream));
    }
    builder = builder.with(retry).with(TowerMiddleware::new(layers));
    if let Some(network) = network {
        builder = builder.with_arc(network);
    }
    Ok(builder.build())
}

/// Builds a `reqwest_middleware::ClientWithMiddleware` whose reqwest client tollgate made:
///
/// - HTTPS only (`https_only(true)`), TLS from [`TlsConfig::client_config`]: certificates are
///   always verified; no `danger_*` setting is reachable through this builder.
/// - Redirects are never followed (`redirect::Policy::none()`): a `302` comes back as it is,
///   and no pinned secret or signature is carried to another host.
/// - Every request is pinned to the base URL's scheme, host, port and base path ([`Error::NotBaseUrl`](crate::Error::NotBaseUrl)).
/// - Then [`RetryMiddleware`], then the layers as one [`TowerMiddleware`]: every attempt runs
///   the layers again (fresh nonce, time and signature).
/// - A connect timeout and a per-attempt timeout.
///
/// Setters cannot fail; every check is in [`build`](ClientBuilder::build): an `http` base
/// URL, user info in it, a zero timeout or zero attempts are refused there.
///
/// ```
/// use tollgate_core::{Secret, Upstream};
/// use tollgate_headers::SecretHeaderLayer;
/// use tollgate_reqwest::ClientBuilder;
///
/// let client = ClientBuilder::new("https://api.provider.example")
///     .build(SecretHeaderLayer::api_key(
///         Secret::from_string("sk_live_example"),
///         Upstream::parse("https://api.provider.example")?,
///     )?)?;
/// // client.post("https://api.provider.example/v1/orders").json(&order).send().await?
/// # let _ = client;
///
/// assert!(ClientBuilder::new("http://api.provider.example").build(tower::layer::util::Identity::new()).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct ClientBuilder {
    base_url: String,
    tls: TlsConfig,
    connect_timeout: Duration,
    timeout: Duration,
    deadline: Duration,
    retry: RetryPolicy,
}

impl ClientBuilder {
    /// A client for `base_url` (`https://host[:port][/base/path]`), Mozilla's roots, the
    /// defaults of tollgate's provider clients: connect timeout
    /// [`DEFAULT_CONNECT_TIMEOUT`], per-attempt timeout [`DEFAULT_ATTEMPT_TIMEOUT`],
    /// [`RetryPolicy::default`].
    pub fn new(base_url: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            tls: TlsConfig::new(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            timeout: DEFAULT_ATTEMPT_TIMEOUT,
            deadline: tollgate_client::DEFAULT_DEADLINE,
            retry: RetryPolicy::default(),
        }
    }

    /// The certificates trusted (a test or private CA is added here).
    pub fn tls(mut self, tls: TlsConfig) -> Self {
        self.tls = tls;
        self
    }

    /// How long to wait for the TCP connection.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long one attempt may take, response headers and body included (reqwest's
    /// `timeout`; a request's own `timeout` replaces it).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The longest a call may take, every attempt, wait and layer included (default
    /// 30 s): a layer that waits (a token fetch) is bounded by it.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// The retry policy (`RetryPolicy::none()` for a single attempt).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// The client, with `layers` (one tollgate layer, or a `tower::ServiceBuilder` stack of
    /// them) run on every attempt.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Client`] for a base URL that does not parse, is not `https` or carries
    /// user info, a query or a fragment, a zero timeout or zero attempts;
    /// [`ConfigError::Tls`] for TLS settings that make no configuration;
    /// [`ConfigError::Reqwest`] when reqwest refuses to build.
    pub fn build<L>(self, layers: L) -> Result<ClientWithMiddleware, ConfigError>
    where
        TowerMiddleware<L>: reqwest_middleware::Middleware,
    {
        // One code path: the settings of tollgate-client's builder, with its defaults (a
        // 30 s deadline over every attempt and wait, layers included) and its checks.
        let settings = tollgate_client::ClientBuilder::new("reqwest")
            .base_url(&self.base_url)
            .tls(self.tls)
            .connect_timeout(self.connect_timeout)
            .attempt_timeout(self.timeout)
            .deadline(self.deadline)
            .retry(self.retry);
        client(settings, layers)
    }
}
