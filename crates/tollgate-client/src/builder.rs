//! [`ClientBuilder`]: the settings of a provider client, checked when it is built.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::uri::Authority;
use http::{Request, Response, Uri};
use tollgate_core::upstream::Upstream;
use tollgate_core::{BoxError, BufferedBody, DEFAULT_BODY_LIMIT};
use tollgate_https::{HttpsConnector, TlsConfig};
use tower::ServiceExt as _;
use tower::limit::ConcurrencyLimit;
use tower_layer::Layer;
use tower_service::Service;

use crate::attempt::AttemptService;
use crate::client::{BaseUrl, Engine, ProviderClient, Shared};
use crate::limit::RateLimiter;
use crate::{ConfigError, RetryPolicy};

/// The default connect timeout: 5 s.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The default attempt timeout: 10 s.
pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// The default deadline of a whole call, retries and waits included: 30 s.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(30);

/// The settings of a [`ProviderClient`]; [`build`](ClientBuilder::build) checks them and
/// assembles the stack (see the [crate docs](crate) for its layers, in order).
///
/// | setting | default |
/// | --- | --- |
/// | [`base_url`](ClientBuilder::base_url) | none: request URIs must be absolute |
/// | [`tls`](ClientBuilder::tls) | [`TlsConfig::new`] (Mozilla's roots) |
/// | [`connect_timeout`](ClientBuilder::connect_timeout) | 5 s |
/// | [`attempt_timeout`](ClientBuilder::attempt_timeout) | 10 s |
/// | [`deadline`](ClientBuilder::deadline) | 30 s |
/// | [`retry`](ClientBuilder::retry) | [`RetryPolicy::default`]: 3 attempts |
/// | [`rate_limit`](ClientBuilder::rate_limit) | none |
/// | [`concurrency_limit`](ClientBuilder::concurrency_limit) | none |
/// | [`max_request_body`](ClientBuilder::max_request_body) | 1 MiB |
///
/// Setters never fail; [`build`](ClientBuilder::build) returns every refusal as a
/// [`ConfigError`].
#[derive(Clone)]
#[must_use]
pub struct ClientBuilder {
    provider: &'static str,
    base_url: Option<String>,
    tls: TlsConfig,
    connect_timeout: Duration,
    attempt_timeout: Duration,
    deadline: Duration,
    retry: RetryPolicy,
    rate_limit: Option<(u32, Duration)>,
    concurrency_limit: Option<usize>,
    max_request_body: usize,
    signed_time_resolution: Option<Duration>,
}

impl ClientBuilder {
    /// The settings of a client for `provider` (its name in audit events), with the defaults.
    pub fn new(provider: &'static str) -> Self {
        Self {
            provider,
            base_url: None,
            tls: TlsConfig::new(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            attempt_timeout: DEFAULT_ATTEMPT_TIMEOUT,
            deadline: DEFAULT_DEADLINE,
            retry: RetryPolicy::default(),
            rate_limit: None,
            concurrency_limit: None,
            max_request_body: DEFAULT_BODY_LIMIT,
            signed_time_resolution: None,
        }
    }

    /// The base URL relative request URIs (`/v1/charges?x=1`) are joined to:
    /// `https://host[:port][/base/path]`, where a base path is prefixed to the request's path.
    /// Absolute request URIs are sent unchanged. Checked by [`build`](ClientBuilder::build):
    /// `https` only, a host, no user info, query or fragment.
    pub fn base_url(mut self, url: &str) -> Self {
        self.base_url = Some(url.to_owned());
        self
    }

    /// Which certificates are trusted (tollgate-https's [`TlsConfig`]; verification cannot
    /// be turned off).
    pub fn tls(mut self, tls: TlsConfig) -> Self {
        self.tls = tls;
        self
    }

    /// How long the TCP connection may take (default 5 s). Used by
    /// [`build`](ClientBuilder::build); a transport given to
    /// [`build_over`](ClientBuilder::build_over) has its own.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long one attempt may wait for the response head, connecting included (default
    /// 10 s).
    pub fn attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = timeout;
        self
    }

    /// How long a whole call may take, from the call to the response head: reading the
    /// request body, every attempt, backoff, `Retry-After` and rate-limit waits (default
    /// 30 s).
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// Which failed attempts are retried (default [`RetryPolicy::default`]).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// At most `requests` attempts start in any window of length `per`, across every clone of
    /// the client (none by default). Retries count.
    pub fn rate_limit(mut self, requests: u32, per: Duration) -> Self {
        self.rate_limit = Some((requests, per));
        self
    }

    /// At most `max` attempts in flight at once, across every clone of the client (none by
    /// default).
    pub fn concurrency_limit(mut self, max: usize) -> Self {
        self.concurrency_limit = Some(max);
        self
    }

    /// The resolution of the time the provider's layers sign (one second for a Unix-seconds
    /// timestamp): each retry then starts in a new tick of that clock, so it never repeats the
    /// previous attempt's timestamp and signature (a server's replay guard would refuse the
    /// repeat as replayed). The wait is taken before the retry's rate-limit slot, within the
    /// deadline. None by default: layers that sign a fresh nonce (Tranzila) need none.
    pub fn signed_time_resolution(mut self, tick: Duration) -> Self {
        self.signed_time_resolution = Some(tick);
        self
    }

    /// The longest request body, in bytes (default 1 MiB). Bodies are read into memory once
    /// per call, so every attempt sends (and signs) the same bytes.
    pub fn max_request_body(mut self, bytes: usize) -> Self {
        self.max_request_body = bytes;
        self
    }

    /// Builds the client over tollgate-https's [`HttpsConnector`] (HTTPS only, certificates
    /// always verified, the connect timeout) and `hyper_util`'s pooled client, with the
    /// provider's `layers` applied once per attempt (so every attempt is signed again).
    ///
    /// `layers` is any `tower::Layer` over [`AttemptService`]: a `ServiceBuilder` of the
    /// provider's layers, or `tower::layer::util::Identity` for none.
    ///
    /// # Errors
    ///
    /// Every [`ConfigError`]: a base URL that is not `https://host[:port][/path]`, a zero
    /// timeout, `RetryPolicy::new(0)`, a zero rate or concurrency limit, a TLS configuration
    /// that cannot be built.
    pub fn build<L>(self, layers: L) -> Result<ProviderClient, ConfigError>
    where
        L: Layer<AttemptService>,
        L::Service: Service<Request<BufferedBody>, Response = Response<hyper::body::Incoming>>
            + Clone
            + Send
            + Sync
            + 'static,
        <L::Service as Service<Request<BufferedBody>>>::Error: Into<BoxError>,
        <L::Service as Service<Request<BufferedBody>>>::Future: Send + 'static,
    {
        self.check()?;
        let connector = HttpsConnector::with_connect_timeout(&self.tls, self.connect_timeout)?;
        let attempt =
            AttemptService::hyper(connector.client::<BufferedBody>(), self.attempt_timeout);
        self.build_over_attempt(layers, attempt)
    }

    /// Builds the client over any `transport` (a test double, another connector): the same
    /// stack as [`build`](ClientBuilder::build), without tollgate-https's connector. The
    /// [`tls`](ClientBuilder::tls) and [`connect_timeout`](ClientBuilder::connect_timeout)
    /// settings are then unused (a zero connect timeout is still refused).
    ///
    /// A transport error whose source chain holds a `tollgate_https::ConnectError` is read as
    /// the connector's: `Connect` and `Timeout` mean nothing was sent (retried for any
    /// method), `Certificate`, `Tls` and `NotHttps` are never retried.
    ///
    /// # Errors
    ///
    /// As [`build`](ClientBuilder::build), except the TLS errors.
    pub fn build_over<L, S, ResBody>(
        self,
        layers: L,
        transport: S,
    ) -> Result<ProviderClient<ResBody>, ConfigError>
    where
        S: Service<Request<BufferedBody>, Response = Response<ResBody>>
            + Clone
            + Send
            + Sync
            + 'static,
        S::Error: Into<BoxError>,
        S::Future: Send + 'static,
        ResBody: Send + 'static,
        L: Layer<AttemptService<ResBody>>,
        L::Service: Service<Request<BufferedBody>, Response = Response<ResBody>>
            + Clone
            + Send
            + Sync
            + 'static,
        <L::Service as Service<Request<BufferedBody>>>::Error: Into<BoxError>,
        <L::Service as Service<Request<BufferedBody>>>::Future: Send + 'static,
    {
        let attempt = AttemptService::new(transport, self.attempt_timeout);
        self.build_over_attempt(layers, attempt)
    }

    /// The stack over `attempt`, the transport under its timeout.
    fn build_over_attempt<L, ResBody>(
        self,
        layers: L,
        attempt: AttemptService<ResBody>,
    ) -> Result<ProviderClient<ResBody>, ConfigError>
    where
        ResBody: Send + 'static,
        L: Layer<AttemptService<ResBody>>,
        L::Service: Service<Request<BufferedBody>, Response = Response<ResBody>>
            + Clone
            + Send
            + Sync
            + 'static,
        <L::Service as Service<Request<BufferedBody>>>::Error: Into<BoxError>,
        <L::Service as Service<Request<BufferedBody>>>::Future: Send + 'static,
    {
        let base_url = self.check()?;
        let layers = layers.layer(attempt).map_err(Into::<BoxError>::into);
        let engine = Engine {
            provider: self.provider,
            policy: self.retry.clone(),
            deadline: self.deadline,
            rate: self
                .rate_limit
                .map(|(requests, per)| RateLimiter::new(requests, per)),
            new_tick_per_attempt: self.signed_time_resolution,
            limited: self
                .concurrency_limit
                .map(|max| ConcurrencyLimit::new(layers.clone(), max)),
            layers,
        };
        let summary = format!("{self:?}");
        Ok(ProviderClient::new(
            Shared {
                provider: self.provider,
                base_url,
                deadline: self.deadline,
                max_request_body: self.max_request_body,
                summary,
            },
            Arc::new(engine),
        ))
    }

    /// A read-only view of every setting, for other transports built from the same settings
    /// (tollgate-reqwest). Check them first with [`validate`](ClientBuilder::validate).
    pub fn settings(&self) -> Settings<'_> {
        Settings {
            provider: self.provider,
            base_url: self.base_url.as_deref(),
            tls: &self.tls,
            connect_timeout: self.connect_timeout,
            attempt_timeout: self.attempt_timeout,
            deadline: self.deadline,
            retry: &self.retry,
            rate_limit: self.rate_limit,
            concurrency_limit: self.concurrency_limit,
            max_request_body: self.max_request_body,
            signed_time_resolution: self.signed_time_resolution,
        }
    }

    /// Every check [`build`](ClientBuilder::build) makes, except TLS: the base URL as an
    /// [`Upstream`] (see [`parse_base_url`]), if one is set.
    ///
    /// # Errors
    ///
    /// The [`ConfigError`] `build` would return.
    pub fn validate(&self) -> Result<Option<Upstream>, ConfigError> {
        self.check_numbers()?;
        self.base_url.as_deref().map(parse_base_url).transpose()
    }

    /// Every check of the settings; the parsed base URL.
    fn check(&self) -> Result<Option<BaseUrl>, ConfigError> {
        self.check_numbers()?;
        self.base_url.as_deref().map(base_url).transpose()
    }

    /// The checks of the durations, attempts and limits.
    fn check_numbers(&self) -> Result<(), ConfigError> {
        for (name, value) in [
            ("connect timeout", self.connect_timeout),
            ("attempt timeout", self.attempt_timeout),
            ("deadline", self.deadline),
            (
                "signed time resolution",
                self.signed_time_resolution.unwrap_or(Duration::MAX),
            ),
        ] {
            if value.is_zero() {
                return Err(ConfigError::ZeroTimeout { name });
            }
        }
        if self.retry.max_attempts() == 0 {
            return Err(ConfigError::ZeroAttempts);
        }
        match self.rate_limit {
            Some((0, _)) => return Err(ConfigError::ZeroRateLimit),
            Some((_, per)) if per.is_zero() => return Err(ConfigError::ZeroRatePeriod),
            _ => {}
        }
        if self.concurrency_limit == Some(0) {
            return Err(ConfigError::ZeroConcurrency);
        }
        Ok(())
    }
}

/// A read-only view of a [`ClientBuilder`]'s settings ([`ClientBuilder::settings`]); the
/// table of [`ClientBuilder`] gives their meaning and defaults. Its `Debug` shows the base
/// URL as `scheme://host[:port]` only.
#[derive(Clone, Copy)]
#[non_exhaustive]
pub struct Settings<'a> {
    /// The provider's name, as in audit events.
    pub provider: &'static str,
    /// The base URL as given (unchecked: see [`ClientBuilder::validate`]).
    pub base_url: Option<&'a str>,
    /// The certificates trusted.
    pub tls: &'a TlsConfig,
    /// How long the TCP connection may take.
    pub connect_timeout: Duration,
    /// How long one attempt may take.
    pub attempt_timeout: Duration,
    /// How long a whole call may take, retries and waits included.
    pub deadline: Duration,
    /// Which failed attempts are retried.
    pub retry: &'a RetryPolicy,
    /// At most `.0` attempts in any window of `.1`, if set.
    pub rate_limit: Option<(u32, Duration)>,
    /// At most this many attempts in flight, if set.
    pub concurrency_limit: Option<usize>,
    /// The longest request body, in bytes.
    pub max_request_body: usize,
    /// Each retry starts in a new tick of this clock, if set.
    pub signed_time_resolution: Option<Duration>,
}

impl fmt::Debug for Settings<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let base_url = self
            .base_url
            .and_then(|url| url.parse::<Uri>().ok())
            .map(|uri| tollgate_core::upstream::describe_target(&uri));
        f.debug_struct("Settings")
            .field("provider", &self.provider)
            .field("base_url", &base_url)
            .field("tls", &self.tls)
            .field("connect_timeout", &self.connect_timeout)
            .field("attempt_timeout", &self.attempt_timeout)
            .field("deadline", &self.deadline)
            .field("retry", &self.retry)
            .field("rate_limit", &self.rate_limit)
            .field("concurrency_limit", &self.concurrency_limit)
            .field("max_request_body", &self.max_request_body)
            .field("signed_time_resolution", &self.signed_time_resolution)
            .finish()
    }
}

/// Checks a base URL as [`ClientBuilder::build`] does — `https://host[:port][/base/path]`,
/// with distinct errors for the common mistakes (a fragment, user info, a query, another
/// scheme) — and returns it as an [`Upstream`] (scheme, host, port and base path).
///
/// # Errors
///
/// [`ConfigError::Fragment`], [`ConfigError::UserInfo`], [`ConfigError::Query`],
/// [`ConfigError::NotHttps`] or [`ConfigError::InvalidBaseUrl`].
pub fn parse_base_url(url: &str) -> Result<Upstream, ConfigError> {
    if url.contains('#') {
        return Err(ConfigError::Fragment);
    }
    if let Ok(uri) = url.parse::<Uri>() {
        if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
            return Err(ConfigError::UserInfo);
        }
        if uri.query().is_some() {
            return Err(ConfigError::Query);
        }
        if let Some(scheme) = uri.scheme_str()
            && !scheme.eq_ignore_ascii_case("https")
        {
            return Err(ConfigError::NotHttps {
                scheme: scheme.to_owned(),
            });
        }
    }
    let upstream = Upstream::parse(url).map_err(ConfigError::InvalidBaseUrl)?;
    if upstream.scheme() != "https" {
        return Err(ConfigError::NotHttps {
            scheme: upstream.scheme().to_owned(),
        });
    }
    Ok(upstream)
}

/// [`parse_base_url`], as the client's [`BaseUrl`].
fn base_url(url: &str) -> Result<BaseUrl, ConfigError> {
    let upstream = parse_base_url(url)?;
    let authority = if upstream.port() == 443 {
        upstream.host().to_owned()
    } else {
        format!("{}:{}", upstream.host(), upstream.port())
    };
    // `Upstream` accepted the host and port, so this cannot fail; refuse rather than panic.
    let parsed = Authority::try_from(authority.as_str()).map_err(|_| {
        ConfigError::InvalidBaseUrl(tollgate_core::upstream::ConfigError::InvalidUpstream {
            upstream: String::new(),
            reason: "the host and port do not form a URI authority",
        })
    })?;
    Ok(BaseUrl {
        parsed,
        authority,
        path: upstream.base_path().unwrap_or_default().to_owned(),
    })
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The base URL as scheme://host[:port] only: a mistaken user info never reaches a log.
        let base_url = self
            .base_url
            .as_deref()
            .and_then(|url| url.parse::<Uri>().ok())
            .map(|uri| tollgate_core::upstream::describe_target(&uri));
        f.debug_struct("ClientBuilder")
            .field("provider", &self.provider)
            .field("base_url", &base_url)
            .field("tls", &self.tls)
            .field("connect_timeout", &self.connect_timeout)
            .field("attempt_timeout", &self.attempt_timeout)
            .field("deadline", &self.deadline)
            .field("retry", &self.retry)
            .field("rate_limit", &self.rate_limit)
            .field("concurrency_limit", &self.concurrency_limit)
            .field("max_request_body", &self.max_request_body)
            .field("signed_time_resolution", &self.signed_time_resolution)
            .finish()
    }
}
