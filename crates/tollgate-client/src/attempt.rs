//! One attempt: the [`Attempt`] extension, and [`AttemptService`], the attempt timeout over
//! the transport that the provider's layers wrap.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http::{Request, Response};
use tollgate_core::{BoxError, BufferedBody};
use tower::ServiceExt as _;
use tower::util::BoxCloneSyncService;
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

/// When the call's deadline passes: set by the client, read by the retry policy and the rate
/// limiter so they never start a wait that would outlast the call.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CallDeadline {
    pub(crate) at: Instant,
    pub(crate) after: Duration,
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
    inner: BoxCloneSyncService<Request<BufferedBody>, Response<ResBody>, AttemptError>,
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
            inner: BoxCloneSyncService::new(Timed { transport, timeout }),
        }
    }
}

impl<ResBody> Clone for AttemptService<ResBody> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
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

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<BufferedBody>) -> Self::Future {
        AttemptFuture::new(self.inner.call(request))
    }
}

/// The transport under the attempt timeout; its readiness is awaited inside the timeout too.
#[derive(Clone)]
struct Timed<S> {
    transport: S,
    timeout: Duration,
}

impl<S, ResBody> Service<Request<BufferedBody>> for Timed<S>
where
    S: Service<Request<BufferedBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = AttemptError;
    type Future = Pin<Box<dyn Future<Output = Result<Response<ResBody>, AttemptError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<BufferedBody>) -> Self::Future {
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
