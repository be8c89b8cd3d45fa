//! [`SignRequestLayer`]: buffer, sign, and send the exact signed bytes (client side).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::Request;
use http_body::Body;
use tollgate_core::body::buffer_request;
use tollgate_core::upstream::{self, TargetError, Upstream};
use tollgate_core::{
    BoxError, BufferedBody, Clock, DEFAULT_BODY_LIMIT, KeyRing, SharedClock, SystemClock,
};
use tower_layer::Layer;
use tower_service::Service;

use crate::scheme::{RequestParts, Scheme, SignError};

struct Config {
    scheme: Arc<dyn Scheme>,
    ring: KeyRing,
    clock: SharedClock,
    limit: usize,
    /// Never empty: [`SignRequestLayer::new`] takes the first one.
    upstreams: Vec<Upstream>,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("scheme", &self.scheme)
            .field("ring", &self.ring)
            .field("upstreams", &self.upstreams)
            .field("clock", &self.clock)
            .field("limit", &self.limit)
            .finish()
    }
}

/// Signs every outbound request with the ring's signing key, for `hyper_util` clients (or
/// any service taking `Request<BufferedBody>`).
///
/// For each request the layer reads the [`Clock`], refuses to sign with an expired signing
/// key, reads the body into one `Bytes` (default limit [`DEFAULT_BODY_LIMIT`], 1 MiB), adds
/// the scheme's headers (signature marked sensitive; timestamp where the scheme has one,
/// replacing any value already there), and sends a [`BufferedBody`] over exactly the signed
/// bytes (with an exact `Content-Length`).
///
/// When it cannot sign, `call` fails with a [`SignError`] inside the
/// [`BoxError`] and nothing is sent; errors of the inner service pass through unchanged.
///
/// **Signatures are pinned to their upstreams.** A payload or canonical signature is a
/// credential for that exact request at the real provider (within the timestamp window, or
/// for ever for body-only schemes), so the layer is built with the [`Upstream`] it may sign
/// for (more with [`upstream`](SignRequestLayer::upstream)). In `call`, before the body is
/// read, the key looked up or anything signed, every request is checked with
/// [`tollgate_core::upstream::check`]: scheme, host and effective port must match, and a
/// `Host` header must be absent or agree with the URI. Otherwise `call` fails with
/// [`SignError::UpstreamNotAllowed`] or [`SignError::AmbiguousTarget`] and the inner service
/// is never called, so nothing reaches the network. Put this layer *inside* (after) any
/// layer that follows redirects, so every hop is checked.
///
/// ```
/// use bytes::Bytes;
/// use http::Request;
/// use http_body_util::Full;
/// use hyper_util::client::legacy::Client;
/// use hyper_util::rt::TokioExecutor;
/// use tollgate_core::{BufferedBody, KeyRing, Secret, Upstream};
/// use tollgate_signature::{BodyHmac, SignError, SignRequestLayer};
/// use tower::{ServiceBuilder, ServiceExt};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let client = Client::builder(TokioExecutor::new()).build_http::<BufferedBody>();
/// let ring = KeyRing::single(Secret::from_string("cashout_secret_key"));
/// let client = ServiceBuilder::new()
///     .layer(SignRequestLayer::new(
///         BodyHmac::onekey(),
///         ring,
///         Upstream::parse("https://api.onekey.example")?,
///     ))
///     .service(client);
/// // `client.oneshot(Request::post("https://api.onekey.example/...").body(..)?)` sends
/// // `Payload-Signature: <hex>` over exactly those bytes.
///
/// // Anywhere else: refused before the body is read; no connection is opened.
/// let elsewhere = Request::post("https://attacker.example/collect")
///     .body(Full::new(Bytes::from_static(b"{}")))?;
/// let error = client.oneshot(elsewhere).await.unwrap_err();
/// assert!(matches!(
///     error.downcast_ref::<SignError>(),
///     Some(SignError::UpstreamNotAllowed { target }) if target == "https://attacker.example"
/// ));
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct SignRequestLayer {
    config: Arc<Config>,
}

impl SignRequestLayer {
    /// Signs with `scheme` and the signing key of `ring`, the system clock and a 1 MiB limit,
    /// requests to `upstream` only (the provider; a mock or a sandbox in tests). Allow more
    /// upstreams with [`upstream`](SignRequestLayer::upstream).
    ///
    /// An [`Upstream`] is parsed when the configuration is built
    /// ([`Upstream::parse`](tollgate_core::upstream::Upstream::parse) fails then, never per
    /// request), so this constructor cannot fail.
    ///
    /// ```
    /// use tollgate_core::{Secret, Upstream};
    /// use tollgate_signature::{Canonical, SignRequestLayer};
    ///
    /// let layer = SignRequestLayer::new(
    ///     Canonical::new(),
    ///     Secret::from_string("api-secret"),
    ///     Upstream::parse("https://api.provider.example")?,
    /// )
    /// // A local mock as well.
    /// .upstream(Upstream::parse("http://127.0.0.1:8080")?);
    /// assert_eq!(layer.upstreams().len(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(scheme: impl Scheme, ring: impl Into<KeyRing>, upstream: Upstream) -> Self {
        Self {
            config: Arc::new(Config {
                scheme: Arc::new(scheme),
                ring: ring.into(),
                clock: Arc::new(SystemClock),
                limit: DEFAULT_BODY_LIMIT,
                upstreams: vec![upstream],
            }),
        }
    }

    /// Also signs requests to `upstream`. Call it once per extra upstream; repeats are ignored.
    pub fn upstream(self, upstream: Upstream) -> Self {
        self.update(|config| {
            if !config.upstreams.contains(&upstream) {
                config.upstreams.push(upstream);
            }
        })
    }

    /// The upstreams this layer signs for (never empty).
    pub fn upstreams(&self) -> &[Upstream] {
        &self.config.upstreams
    }

    fn update(self, change: impl FnOnce(&mut Config)) -> Self {
        let mut config = match Arc::try_unwrap(self.config) {
            Ok(config) => config,
            Err(shared) => Config {
                scheme: Arc::clone(&shared.scheme),
                ring: shared.ring.clone(),
                clock: Arc::clone(&shared.clock),
                limit: shared.limit,
                upstreams: shared.upstreams.clone(),
            },
        };
        change(&mut config);
        Self {
            config: Arc::new(config),
        }
    }

    /// Reads the time from `clock` (tests pass a `ManualClock`).
    pub fn clock(self, clock: impl Clock) -> Self {
        self.update(|config| config.clock = Arc::new(clock))
    }

    /// Sets the body limit in bytes (default 1 MiB).
    pub fn body_limit(self, limit: usize) -> Self {
        self.update(|config| config.limit = limit)
    }
}

impl<S> Layer<S> for SignRequestLayer {
    type Service = SignRequest<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SignRequest {
            inner,
            config: Arc::clone(&self.config),
        }
    }
}

/// The service of [`SignRequestLayer`].
#[derive(Clone, Debug)]
#[must_use]
pub struct SignRequest<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S> SignRequest<S> {
    /// Wraps `inner` with the configuration of `layer`.
    pub fn new(inner: S, layer: &SignRequestLayer) -> Self {
        layer.layer(inner)
    }

    /// The layer, to wrap services with (same as [`SignRequestLayer::new`]).
    pub fn layer(
        scheme: impl Scheme,
        ring: impl Into<KeyRing>,
        upstream: Upstream,
    ) -> SignRequestLayer {
        SignRequestLayer::new(scheme, ring, upstream)
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service, by value.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, ReqBody> Service<Request<ReqBody>> for SignRequest<S>
where
    S: Service<Request<BufferedBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    ReqBody: Body + Send + 'static,
    ReqBody::Data: Send,
    ReqBody::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = SignFuture<S::Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        // Pinned first: nothing is read, looked up or signed for a refused request, and the
        // inner service (the client that would connect) is never called.
        if let Err(error) =
            upstream::check(&self.config.upstreams, request.uri(), request.headers())
        {
            let error = refused(error, request.uri());
            tracing::warn!(target: "tollgate", %error, "request not signed; not sent");
            let error: BoxError = error.into();
            return SignFuture {
                inner: Box::pin(async move { Err(error) }),
            };
        }
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let config = Arc::clone(&self.config);
        SignFuture {
            inner: Box::pin(async move {
                let now = config.clock.now_unix();
                let key = config
                    .ring
                    .signing_key_at(now)
                    .ok_or_else(|| SignError::KeyExpired {
                        key_id: config.ring.signing_key().shared_id(),
                    })?;
                let (mut parts, bytes) = buffer_request(request, config.limit)
                    .await
                    .map_err(SignError::Body)?;
                let headers = config.scheme.sign(
                    key.secret(),
                    &RequestParts::new(&parts.method, &parts.uri, &parts.headers, &bytes),
                    now,
                )?;
                for (name, value) in headers {
                    parts.headers.insert(name, value);
                }
                tracing::trace!(target: "tollgate", key_id = key.id(), "request signed");
                let request = Request::from_parts(parts, BufferedBody::new(bytes));
                inner.call(request).await.map_err(Into::into)
            }),
        }
    }
}

/// The typed error for a request [`upstream::check`] refused.
fn refused(error: TargetError, uri: &http::Uri) -> SignError {
    match error {
        TargetError::Ambiguous { reason } => SignError::AmbiguousTarget { reason },
        TargetError::NotAllowed { target } => SignError::UpstreamNotAllowed { target },
        TargetError::OutsideBasePath { target } => SignError::UpstreamNotAllowed {
            target: format!("{target} (outside the configured base path)"),
        },
        // Not reachable (the layer always has an upstream); fail closed if it grows.
        _ => SignError::UpstreamNotAllowed {
            target: upstream::describe_target(uri),
        },
    }
}

/// The future of [`SignRequest`]: reads the body, signs, then runs the inner service.
#[must_use = "futures do nothing unless polled"]
pub struct SignFuture<T> {
    inner: Pin<Box<dyn Future<Output = Result<T, BoxError>> + Send>>,
}

impl<T> Future for SignFuture<T> {
    type Output = Result<T, BoxError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}

impl<T> fmt::Debug for SignFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignFuture").finish_non_exhaustive()
    }
}
