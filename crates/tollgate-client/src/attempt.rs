//! One attempt: the [`Attempt`] extension, and [`AttemptService`], the attempt timeout over
//! the transport that the provider's layers wrap.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response};
use tollgate_core::{BoxError, BufferedBody};
use tower::ServiceExt as _;
use tower_service::Service;

use crate::AttemptError;
use crate::future::AttemptFuture;

/// Which attempt of a call a request is: a request extension set by the client, `1` for the
/// first attempt, `2` for the first retry, and so on. The provider's layers can read it (to
/// log, or to refuse a retry of their own).
///
/// ```
/// use tollgate_client::Attempt;
///
/// let first = Attempt::FIRST;
/// assert_eq!(first.get(), 1);
/// assert!(!first.is_retry());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Attempt(u32);

impl Attempt {
    /// The first attempt of a call.
    pub const FIRST: Self = Self(1);

    pub(crate) fn new(attempt: u32) -> Self {
        Self(attempt)
    }

    /// The attempt's number: 1 for the first.
    pub fn get(self) -> u32 {
        self.0
    }

    /// Whether this attempt is a retry (not the first).
    pub fn is_retry(self) -> bool {
        self.0 > 1
    }
}

/// The innermost service of a client: the attempt timeout over the transport
/// (`hyper_util`'s client over tollgate-https's `HttpsConnector`, or the transport given to
/// [`build_over`](crate::ClientBuilder::build_over)). The provider's layers wrap it, once per
/// client; every attempt goes through them again.
///
/// It fails with [`AttemptError`]: a layer that passes that error on (boxed or not) lets the
/// client tell a transport failure (perhaps retried) from the layer's own refusal (never
/// retried, [`CallError::Refused`](crate::CallError::Refused)).
pub struct AttemptService<ResBody = hyper::body::Incoming> {
    // Shared, not boxed per clone: cloning the service (once per attempt, by the layers above)
    // allocates nothing.
    inner: Arc<dyn Transport<ResBody>>,
}

/// The transport behind the attempt timeout, type-erased: each call clones the transport and
/// returns the attempt's future.
trait Transport<ResBody>: Send + Sync {
    fn send(
        &self,
        request: Request<BufferedBody>,
    ) -> crate::BoxFuture<Result<Response<ResBody>, AttemptError>>;
}

impl<ResBody> AttemptService<ResBody> {
    pub(crate) fn new<S>(transport: S, timeout: Duration) -> Self
    where
        S: Service<Request<BufferedBody>, Response = Response<ResBody>>
            + Clone
            + Send
            + Sync
            + 'static,
        S::Error: Into<BoxError>,
        S::Future: Send + 'static,
        ResBody: 'static,
    {
        Self {
            inner: Arc::new(Timed { transport, timeout }),
        }
    }
}

impl<ResBody> Clone for AttemptService<ResBody> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<ResBody> fmt::Debug for AttemptService<ResBody> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AttemptService").finish_non_exhaustive()
    }
}

impl<ResBody> Service<Request<BufferedBody>> for AttemptService<ResBody> {
    type Response = Response<ResBody>;
    type Error = AttemptError;
    type Future = AttemptFuture<ResBody>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // The transport's readiness is awaited inside the attempt timeout.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<BufferedBody>) -> Self::Future {
        if let Some(probe) = request.extensions().get::<KeyProbe>() {
            probe.record(request.headers());
        }
        AttemptFuture::new(self.inner.send(request))
    }
}

/// `hyper_util`'s client over tollgate-https's connector: what [`build`](crate::ClientBuilder::build) sends with.
type HyperClient = hyper_util::client::legacy::Client<tollgate_https::HttpsConnector, BufferedBody>;

impl AttemptService {
    /// Over `hyper_util`'s client, called by reference: no clone of the client per attempt.
    pub(crate) fn hyper(client: HyperClient, timeout: Duration) -> Self {
        Self {
            inner: Arc::new(TimedHyper { client, timeout }),
        }
    }
}

/// `hyper_util`'s client under the attempt timeout (its `request` takes `&self`).
struct TimedHyper {
    client: HyperClient,
    timeout: Duration,
}

impl Transport<hyper::body::Incoming> for TimedHyper {
    fn send(
        &self,
        request: Request<BufferedBody>,
    ) -> crate::BoxFuture<Result<Response<hyper::body::Incoming>, AttemptError>> {
        let sending = self.client.request(request);
        let timeout = self.timeout;
        Box::pin(async move {
            match tokio::time::timeout(timeout, sending).await {
                Ok(result) => result.map_err(|error| AttemptError::Transport(error.into())),
                Err(_elapsed) => Err(AttemptError::Timeout { after: timeout }),
            }
        })
    }
}

/// The transport under the attempt timeout; its readiness is awaited inside the timeout too.
struct Timed<S> {
    transport: S,
    timeout: Duration,
}

impl<S, ResBody> Transport<ResBody> for Timed<S>
where
    S: Service<Request<BufferedBody>, Response = Response<ResBody>> + Clone + Send + Sync + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    fn send(
        &self,
        request: Request<BufferedBody>,
    ) -> crate::BoxFuture<Result<Response<ResBody>, AttemptError>> {
        let transport = self.transport.clone();
        let timeout = self.timeout;
        Box::pin(async move {
            let sending = async move {
                transport
                    .oneshot(request)
                    .await
                    .map_err(|error| AttemptError::Transport(error.into()))
            };
            match tokio::time::timeout(timeout, sending).await {
                Ok(result) => result,
                Err(_elapsed) => Err(AttemptError::Timeout { after: timeout }),
            }
        })
    }
}

/// Whether the idempotency-key header survived the provider's layers: set by the client on
/// each attempt when its policy names a key, recorded here, under the layers, on the request
/// as it is sent. A layer that strips the key (an allowlist of headers) must not leave the
/// retry rules believing the provider can tell the attempts apart.
#[derive(Debug, Clone)]
pub(crate) struct KeyProbe {
    pub(crate) name: http::HeaderName,
    pub(crate) sent: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl KeyProbe {
    fn record(&self, headers: &http::HeaderMap) {
        self.sent.store(
            headers.contains_key(&self.name),
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    /// Whether the last attempt went out with the key.
    pub(crate) fn was_sent(&self) -> bool {
        self.sent.load(std::sync::atomic::Ordering::Relaxed)
    }
}
