//! The ready client for any API signed with HMAC over Method + Path + Body + Timestamp.
//!
//! Every attempt gets a fresh timestamp and signature ([`Canonical`], ±5 minutes on the
//! server), over the exact bytes sent, to the configured base URL only; browser headers are
//! not forwarded; HTTPS only, with timeouts, retries, limits and an audit event per attempt
//! ([`client`](crate::client)).
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use bytes::Bytes;
//! use http::Request;
//! use http_body_util::Full;
//! use tollgate::core::{KeyRing, Secret};
//! use tollgate::hmac::HmacClient;
//! use tower::ServiceExt;
//!
//! let ring = KeyRing::single(Secret::from_env("PAYMENTS_SIGNING_KEY")?);
//! let payments = HmacClient::builder("payments", "https://api.payments.example", ring).build()?;
//! let request = Request::post("/v1/payments").body(Full::new(Bytes::from_static(b"{}")))?;
//! let response = payments.oneshot(request).await?;
//! # drop(response);
//! # Ok(())
//! # }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::Request;
use tower::{Service, ServiceBuilder};
use tower_layer::Layer;

use crate::ProviderConfigError;
use crate::client::{Attempt, ClientBuilder, ProviderClient};
use crate::core::KeyRing;
use crate::core::upstream::Upstream;
use crate::headers::HeaderHygieneLayer;
use crate::signature::{Canonical, SignRequestLayer};

/// The ready HMAC client. See the [module](self).
#[derive(Debug)]
#[non_exhaustive]
pub struct HmacClient;

impl HmacClient {
    /// A builder for the API named `provider` (in audit events) at `base_url`, signing with
    /// `ring`'s signing key and [`Canonical::new`].
    pub fn builder(provider: &'static str, base_url: &str, ring: KeyRing) -> HmacClientBuilder {
        HmacClientBuilder {
            base_url: base_url.to_owned(),
            ring,
            scheme: Canonical::new(),
            client: ClientBuilder::new(provider).base_url(base_url),
        }
    }
}

/// Builds an [`HmacClient`].
#[must_use]
pub struct HmacClientBuilder {
    base_url: String,
    ring: KeyRing,
    scheme: Canonical,
    client: ClientBuilder,
}

/// Never shows the base URL as given (it may hold user info, refused at build): the call
/// stack's `Debug` shows its scheme, host and port.
impl std::fmt::Debug for HmacClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HmacClientBuilder")
            .field("ring", &self.ring)
            .field("scheme", &self.scheme)
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

impl HmacClientBuilder {
    /// Another layout of the canonical scheme (headers, encoding, delimited, ...).
    pub fn scheme(mut self, scheme: Canonical) -> Self {
        self.scheme = scheme;
        self
    }

    /// Changes the call stack: timeouts, retry policy, limits, TLS roots.
    pub fn configure(mut self, f: impl FnOnce(ClientBuilder) -> ClientBuilder) -> Self {
        self.client = f(self.client);
        self
    }

    /// Builds the client.
    ///
    /// # Errors
    ///
    /// A blank signing key, a base URL that is not `https://host[:port][/base/path]`, or a
    /// call-stack setting that cannot work.
    pub fn build(self) -> Result<ProviderClient, ProviderConfigError> {
        let upstream = Upstream::parse(&self.base_url)?;
        let layers = ServiceBuilder::new()
            .layer(HeaderHygieneLayer::server_to_server())
            .layer(NewSecondOnRetryLayer)
            .layer(SignRequestLayer::new(self.scheme, self.ring, upstream)?)
            .into_inner();
        Ok(self.client.build(layers)?)
    }
}

/// Holds a retry until the next Unix second, so its timestamp, and therefore its signature,
/// differ from the attempt before it.
///
/// The timestamp has a resolution of one second: a retry signed in the same second as the
/// attempt it repeats carries the very same signature, and a server's replay guard that keeps
/// that claim (the undelimited canonical layout's claims are never released) refuses it as
/// `replayed`. Waiting for the next second costs a retry at most one second, within the call's
/// deadline.
#[derive(Clone, Copy, Debug)]
struct NewSecondOnRetryLayer;

impl<S> Layer<S> for NewSecondOnRetryLayer {
    type Service = NewSecondOnRetry<S>;

    fn layer(&self, inner: S) -> Self::Service {
        NewSecondOnRetry { inner }
    }
}

#[derive(Clone, Debug)]
struct NewSecondOnRetry<S> {
    inner: S,
}

/// Time to the start of the next Unix second (plus a millisecond of margin).
fn until_next_second() -> Duration {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Duration::from_nanos(u64::from(1_000_000_000 - now.subsec_nanos())) + Duration::from_millis(1)
}

impl<S, B> Service<Request<B>> for NewSecondOnRetry<S>
where
    S: Service<Request<B>> + Clone + Send + 'static,
    S::Future: Send,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let retry = request
            .extensions()
            .get::<Attempt>()
            .is_some_and(|attempt| attempt.is_retry());
        if !retry {
            return Box::pin(self.inner.call(request));
        }
        // The service made ready for this call goes with it; a clone stays behind.
        let clone = self.inner.clone();
        let mut ready = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            tokio::time::sleep(until_next_second()).await;
            ready.call(request).await
        })
    }
}
