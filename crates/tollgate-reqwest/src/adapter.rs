//! [`TowerMiddleware`]: tollgate's tower layers, run inside one reqwest middleware.

use std::convert::Infallible;
use std::fmt;
use std::future::{Ready, ready};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use http::{Extensions, Request, Response};
use reqwest_middleware::{Middleware, Next};
use tollgate_core::{BoxError, BufferedBody};
use tower::ServiceExt as _;
use tower_layer::Layer;
use tower_service::Service;

use crate::Error;

/// A reqwest middleware that runs a tower [`Layer`] — any of tollgate's outbound layers, or a
/// `tower::ServiceBuilder` stack of them — over every request, then sends the request the
/// layers produced.
///
/// Per request: the `reqwest::Request` becomes an `http::Request<BufferedBody>` (method, URI,
/// version, headers, extensions such as the request's timeout, and the body's bytes); it goes
/// through the layers, which end in a [`Capture`] service that hands the final request back;
/// that request becomes a `reqwest::Request` again and is sent with the rest of the
/// middleware chain. The rules are the layers' own: nothing is implemented a second time.
///
/// - A request whose body is a stream is refused with [`Error::StreamingBody`]: tollgate's
///   layers need the bytes (a signature is over the exact bytes sent). Nothing is sent.
/// - A layer's refusal (an upstream that is not pinned, a missing client IP, a request that
///   cannot be signed) is [`Error::Refused`], with the layer's typed error as its source
///   ([`find_error`](crate::find_error) finds it). Nothing is sent.
/// - The layers run in the caller's task, so `ForwardUserIpLayer` reads the task-local
///   `ClientIp` the inbound `ResolveClientIpLayer` opened.
/// - Layers that sign, stamp a time or draw a nonce do it per call: put the retry
///   ([`RetryMiddleware`](crate::RetryMiddleware)) *before* this middleware and every attempt
///   runs the layers again. [`ClientBuilder`](crate::ClientBuilder) does.
///
/// ```
/// use tollgate_core::{Secret, Upstream};
/// use tollgate_headers::{HeaderHygieneLayer, SecretHeaderLayer};
/// use tollgate_reqwest::TowerMiddleware;
/// use tower::ServiceBuilder;
///
/// let layers = ServiceBuilder::new()
///     .layer(HeaderHygieneLayer::server_to_server())
///     .layer(SecretHeaderLayer::api_key(
///         Secret::from_string("sk_live_example"),
///         Upstream::parse("https://api.provider.example")?,
///     )?)
///     .into_inner();
/// let middleware = TowerMiddleware::new(layers);
/// # let _ = middleware;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
#[must_use]
pub struct TowerMiddleware<L> {
    layer: L,
}

impl<L> TowerMiddleware<L> {
    /// Runs `layer` over every request.
    pub fn new(layer: L) -> Self {
        Self { layer }
    }

    /// The layer.
    pub fn layer(&self) -> &L {
        &self.layer
    }
}

impl<L: fmt::Debug> fmt::Debug for TowerMiddleware<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TowerMiddleware")
            .field("layer", &self.layer)
            .finish()
    }
}

/// The innermost service of a [`TowerMiddleware`]'s layers: it keeps the request it is
/// given (the request as the layers made it) and answers with an empty response.
#[derive(Clone, Default)]
pub struct Capture {
    slot: Arc<Mutex<Option<Request<BufferedBody>>>>,
}

impl Capture {
    fn take(&self) -> Option<Request<BufferedBody>> {
        self.slot
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

impl fmt::Debug for Capture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Capture").finish_non_exhaustive()
    }
}

impl Service<Request<BufferedBody>> for Capture {
    type Response = Response<()>;
    type Error = Infallible;
    type Future = Ready<Result<Response<()>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<BufferedBody>) -> Self::Future {
        *self.slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(request);
        ready(Ok(Response::new(())))
    }
}

/// `request` as an `http::Request` over its bytes; [`Error::StreamingBody`] for a stream.
///
/// A reusable reqwest body yields its own `Bytes` in one frame: tollgate-core's buffering
/// takes them as they are, so the body is not copied.
pub(crate) async fn to_http(request: reqwest::Request) -> Result<Request<BufferedBody>, Error> {
    if request.body().is_some_and(|body| body.as_bytes().is_none()) {
        return Err(Error::StreamingBody);
    }
    let request = Request::<reqwest::Body>::try_from(request).map_err(|_| Error::InvalidRequest)?;
    let (parts, body) = request.into_parts();
    let bytes = tollgate_core::body::buffer(body, usize::MAX)
        .await
        .map_err(|_| Error::StreamingBody)?;
    Ok(Request::from_parts(parts, BufferedBody::new(bytes)))
}

/// Runs `layer` over `request` and returns the request it passed on.
pub(crate) async fn run_layers<L>(
    layer: &L,
    request: Request<BufferedBody>,
) -> Result<Request<BufferedBody>, Error>
where
    L: Layer<Capture>,
    L::Service: Service<Request<BufferedBody>>,
    <L::Service as Service<Request<BufferedBody>>>::Error: Into<BoxError>,
{
    let capture = Capture::default();
    layer
        .layer(capture.clone())
        .oneshot(request)
        .await
        .map_err(|error| Error::Refused(error.into()))?;
    capture.take().ok_or(Error::NotForwarded)
}

#[async_trait::async_trait]
impl<L> Middleware for TowerMiddleware<L>
where
    L: Layer<Capture> + Send + Sync + 'static,
    L::Service: Service<Request<BufferedBody>> + Send,
    <L::Service as Service<Request<BufferedBody>>>::Error: Into<BoxError>,
    <L::Service as Service<Request<BufferedBody>>>::Future: Send,
{
    async fn handle(
        &self,
        request: reqwest::Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        let request = run_layers(&self.layer, to_http(request).await?).await?;
        // Whether the retry rules' idempotency key survived the layers (an allowlist of
        // headers may strip it): the retry middleware asks, the request as sent answers.
        if let Some(probe) = extensions.get::<KeyProbe>() {
            probe.record(request.headers());
        }
        let request = reqwest::Request::try_from(request.map(|body| body.into_bytes()))
            .map_err(|_| Error::InvalidRequest)?;
        next.run(request, extensions).await.map_err(without_url)
    }
}

/// reqwest's errors print the request's URL, query included (a card number, a token in a
/// query string): tollgate's errors never hold a query value, so the URL is dropped.
pub(crate) fn without_url(error: reqwest_middleware::Error) -> reqwest_middleware::Error {
    match error {
        reqwest_middleware::Error::Reqwest(error) => {
            reqwest_middleware::Error::Reqwest(error.without_url())
        }
        other => other,
    }
}

/// Set by [`RetryMiddleware`](crate::RetryMiddleware) in the middleware extensions when its
/// policy names an idempotency key; [`TowerMiddleware`] records whether its layers stripped
/// the key from the request. Without a `TowerMiddleware` nothing is recorded and the key, as
/// the caller set it, counts.
#[derive(Debug, Clone)]
pub(crate) struct KeyProbe {
    pub(crate) name: http::HeaderName,
    pub(crate) stripped: Arc<std::sync::atomic::AtomicBool>,
}

impl KeyProbe {
    fn record(&self, headers: &http::HeaderMap) {
        self.stripped.store(
            !headers.contains_key(&self.name),
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    /// Whether the layers took the key off the last attempt.
    pub(crate) fn was_stripped(&self) -> bool {
        self.stripped.load(std::sync::atomic::Ordering::Relaxed)
    }
}
