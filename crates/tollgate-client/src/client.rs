//! [`ProviderClient`]: the whole outbound stack behind one nameable, cloneable service.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Method, Request, Response, Uri};
use http_body::Body;
use tollgate_core::body::{self, BufferError};
use tollgate_core::{BoxError, BufferedBody};
use tower::ServiceExt as _;
use tower::limit::ConcurrencyLimit;
use tower_service::Service;

use crate::attempt::{Attempt, KeyProbe};
use crate::error::may_have_been_sent;
use crate::future::ProviderClientFuture;
use crate::limit::RateLimiter;
use crate::retry::until_next_tick;
use crate::{BoxFuture, CallError, RetryPolicy, audit};

/// The base URL relative request URIs are joined to.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct BaseUrl {
    /// `host[:port]`, the port only when it is not 443.
    pub(crate) authority: String,
    /// `""` or `/seg[/seg...]`, no trailing `/`.
    pub(crate) path: String,
    /// `authority`, parsed once (cloning it allocates nothing).
    pub(crate) parsed: Authority,
}

impl fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "https://{}{}", self.authority, self.path)
    }
}

impl BaseUrl {
    /// `https://authority` + base path + the request's path and query, built from parts: no
    /// allocation when the base URL has no path.
    fn join(&self, relative: Uri) -> Result<Uri, CallError> {
        let mut parts = relative.into_parts();
        let path = parts
            .path_and_query
            .take()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        if !path.as_str().starts_with('/') {
            return Err(CallError::InvalidUri {
                reason: "a relative URI must start with `/`",
            });
        }
        let invalid = CallError::InvalidUri {
            reason: "the joined URI is not valid",
        };
        parts.path_and_query = Some(if self.path.is_empty() {
            path
        } else {
            let mut joined = String::with_capacity(self.path.len() + path.as_str().len());
            joined.push_str(&self.path);
            joined.push_str(path.as_str());
            PathAndQuery::try_from(joined).map_err(|_| invalid)?
        });
        parts.scheme = Some(Scheme::HTTPS);
        parts.authority = Some(self.parsed.clone());
        Uri::from_parts(parts).map_err(|_| CallError::InvalidUri {
            reason: "the joined URI is not valid",
        })
    }
}

pub(crate) struct Shared {
    pub(crate) provider: &'static str,
    pub(crate) base_url: Option<BaseUrl>,
    pub(crate) deadline: Duration,
    pub(crate) max_request_body: usize,
    pub(crate) summary: String,
}

/// A client for one provider: the call stack built by
/// [`ClientBuilder`](crate::ClientBuilder), as a `tower::Service` that takes any request body
/// and fails with [`CallError`].
///
/// It is `Clone`, `Send` and `Sync`; clones share the connection pool, the rate limit and the
/// concurrency limit. `poll_ready` is always ready: the limits are waited for inside the
/// call, under its deadline. The response body is streamed: the deadline and the attempt
/// timeout end when the response head arrives; bound the body read yourself if you need to.
///
/// `ResBody` is the transport's response body: `hyper::body::Incoming` for
/// [`build`](crate::ClientBuilder::build).
pub struct ProviderClient<ResBody = hyper::body::Incoming> {
    shared: Arc<Shared>,
    // Shared by clones: cloning a client, or calling it, allocates nothing for the stack.
    engine: Arc<dyn Run<ResBody>>,
}

impl<ResBody> ProviderClient<ResBody> {
    pub(crate) fn new(shared: Shared, engine: Arc<dyn Run<ResBody>>) -> Self {
        Self {
            shared: Arc::new(shared),
            engine,
        }
    }

    /// The provider's name, as in audit events.
    pub fn provider(&self) -> &'static str {
        self.shared.provider
    }

    /// The deadline of each call.
    pub fn deadline(&self) -> Duration {
        self.shared.deadline
    }
}

impl<ResBody> Clone for ProviderClient<ResBody> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
            engine: Arc::clone(&self.engine),
        }
    }
}

impl<ResBody> fmt::Debug for ProviderClient<ResBody> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderClient")
            .field("provider", &self.shared.provider)
            .field(
                "base_url",
                &self.shared.base_url.as_ref().map(ToString::to_string),
            )
            .field("deadline", &self.shared.deadline)
            .field("max_request_body", &self.shared.max_request_body)
            .field("stack", &self.shared.summary)
            .finish()
    }
}

impl<B, ResBody> Service<Request<B>> for ProviderClient<ResBody>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
    ResBody: Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = CallError;
    type Future = ProviderClientFuture<ResBody>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let shared = Arc::clone(&self.shared);
        let engine = Arc::clone(&self.engine);
        let started = Instant::now();
        let deadline = shared.deadline;
        ProviderClientFuture::new(async move {
            let call = async move {
                let (mut parts, body) = request.into_parts();
                // Where it goes is settled before the body is read or anything is opened.
                parts.uri = target(&shared, parts.uri)?;
                body::check_content_length(&parts.headers, shared.max_request_body)
                    .map_err(buffer_error)?;
                let bytes = body::buffer(body, shared.max_request_body)
                    .await
                    .map_err(buffer_error)?;
                let mut request = Request::from_parts(parts, BufferedBody::new(bytes));
                request.extensions_mut().insert(Attempt::FIRST);
                engine.run(request, started + deadline).await
            };
            match tokio::time::timeout(deadline, call).await {
                Ok(result) => result,
                Err(_elapsed) => Err(CallError::DeadlineExceeded { after: deadline }),
            }
        })
    }
}

/// The absolute `https` URI a request goes to.
fn target(shared: &Shared, uri: Uri) -> Result<Uri, CallError> {
    match (uri.scheme(), uri.authority()) {
        (Some(scheme), Some(authority)) => {
            if *scheme != Scheme::HTTPS {
                return Err(CallError::NotHttps {
                    scheme: scheme.as_str().to_owned(),
                });
            }
            if authority.host().is_empty() {
                return Err(CallError::InvalidUri {
                    reason: "the URI has no host",
                });
            }
            // hyper would send it on (in HTTP/2's `:authority`) and log it; the base URL
            // refuses it too.
            if authority.as_str().contains('@') {
                return Err(CallError::InvalidUri {
                    reason: "user info is not allowed in the URI",
                });
            }
            Ok(uri)
        }
        (None, None) => match &shared.base_url {
            Some(base) => base.join(uri),
            None => Err(CallError::InvalidUri {
                reason: "a relative URI needs a base URL",
            }),
        },
        _ => Err(CallError::InvalidUri {
            reason: "the URI is neither absolute nor relative",
        }),
    }
}

fn buffer_error(error: BufferError) -> CallError {
    match error {
        BufferError::TooLarge { limit } => CallError::BodyTooLarge { limit },
        BufferError::Read(error) => CallError::Body(error),
        // `BufferError` is non-exhaustive.
        other => CallError::Body(Box::new(other)),
    }
}

/// The part of a call after the body is buffered, type-erased over the provider's layers.
pub(crate) trait Run<ResBody>: Send + Sync {
    /// Every attempt of `request` (which carries `Attempt::FIRST`), the waits between them
    /// ending before `deadline`.
    fn run(
        self: Arc<Self>,
        request: Request<BufferedBody>,
        deadline: Instant,
    ) -> BoxFuture<Result<Response<ResBody>, CallError>>;
}

/// Retry, rate limit, concurrency limit and audit around the provider's layers `S` (over the
/// `AttemptService`): one future per call, the layers cloned per attempt (no allocation).
pub(crate) struct Engine<S> {
    pub(crate) provider: &'static str,
    pub(crate) policy: RetryPolicy,
    /// The call's deadline, for `CallError::DeadlineExceeded`.
    pub(crate) deadline: Duration,
    pub(crate) rate: Option<RateLimiter>,
    /// Each retry waits for the next whole multiple of this since the Unix epoch.
    pub(crate) new_tick_per_attempt: Option<Duration>,
    pub(crate) layers: S,
    /// `layers` behind the concurrency limit, when there is one (clones share its permits).
    pub(crate) limited: Option<ConcurrencyLimit<S>>,
}

impl<S, ResBody> Run<ResBody> for Engine<S>
where
    S: Service<Request<BufferedBody>, Response = Response<ResBody>, Error = BoxError>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
    ResBody: Send + 'static,
{
    fn run(
        self: Arc<Self>,
        mut request: Request<BufferedBody>,
        deadline: Instant,
    ) -> BoxFuture<Result<Response<ResBody>, CallError>> {
        Box::pin(async move {
            let method = request.method().clone();
            let uri = request.uri().clone();
            let mut attempt = 1;
            // Whether an attempt so far may have reached the provider: then a last attempt
            // that sent nothing does not make the call "nothing sent".
            let mut delivered_before = false;
            let finish = |result: Result<Response<ResBody>, BoxError>, delivered_before: bool| {
                result.map_err(|error| match CallError::from_stack(error) {
                    error if delivered_before && error.nothing_sent() => {
                        CallError::MaybeDelivered {
                            last: Box::new(error),
                        }
                    }
                    error => error,
                })
            };
            // With an idempotency key configured, whether it went out (a layer may strip it).
            let probe = self.policy.idempotency_key_header().map(|name| KeyProbe {
                name: name.clone(),
                sent: Arc::default(),
            });
            if let Some(probe) = &probe {
                request.extensions_mut().insert(probe.clone());
            }
            loop {
                // The copy for the next attempt is taken before the layers change the request
                // (tower's `Retry` does the same): one clone per attempt that may be retried.
                let next = (attempt < self.policy.max_attempts()).then(|| {
                    let mut next = request.clone();
                    // In place: the clone carries this attempt's `Attempt`.
                    match next.extensions_mut().get_mut::<Attempt>() {
                        Some(number) => *number = Attempt::new(attempt + 1),
                        None => {
                            next.extensions_mut().insert(Attempt::new(attempt + 1));
                        }
                    }
                    next
                });
                let result = match self
                    .attempt(request, attempt, deadline, &method, uri.path())
                    .await
                {
                    Ok(result) => result,
                    Err(error) if delivered_before && error.nothing_sent() => {
                        return Err(CallError::MaybeDelivered {
                            last: Box::new(error),
                        });
                    }
                    Err(error) => return Err(error),
                };
                let Some(mut next) = next else {
                    return finish(result, delivered_before);
                };
                if let Some(probe) = &probe
                    && !probe.was_sent()
                {
                    // The provider never saw the key: the retry rules must not count on it.
                    next.headers_mut().remove(&probe.name);
                }
                let Some(wait) = self
                    .policy
                    .wait_before(attempt + 1, &next, &result, deadline)
                else {
                    return finish(result, delivered_before);
                };
                delivered_before |= match &result {
                    Ok(_) => true,
                    Err(error) => may_have_been_sent(&**error),
                };
                // Providers whose signed timestamps count whole ticks (seconds): the retry
                // starts in a new tick, so its timestamp and signature differ from the last
                // attempt's (a replay guard would refuse a repeat). Waited for here, before the
                // rate-limit slot is taken, so the slot is not spent waiting.
                let wait = match self.new_tick_per_attempt {
                    Some(tick) => wait.max(until_next_tick(tick)),
                    None => wait,
                };
                if tokio::time::Instant::now()
                    .checked_add(wait)
                    .is_none_or(|end| end.into_std() >= deadline)
                {
                    return finish(result, delivered_before);
                }
                // A retried response's body is dropped before the wait.
                drop(result);
                tokio::time::sleep(wait).await;
                request = next;
                attempt += 1;
            }
        })
    }
}

impl<S, ResBody> Engine<S>
where
    S: Service<Request<BufferedBody>, Response = Response<ResBody>, Error = BoxError> + Clone,
{
    /// One attempt: the concurrency limit, then the rate limit (an `Err` ends the call), the
    /// layers, the audit event.
    async fn attempt(
        &self,
        request: Request<BufferedBody>,
        attempt: u32,
        deadline: Instant,
        method: &Method,
        path: &str,
    ) -> Result<Result<Response<ResBody>, BoxError>, CallError> {
        let audited = Audited {
            provider: self.provider,
            method,
            path,
            attempt,
        };
        match &self.limited {
            Some(limited) => self.send(limited.clone(), request, deadline, audited).await,
            None => {
                self.send(self.layers.clone(), request, deadline, audited)
                    .await
            }
        }
    }

    /// Waits for `service` to be ready (a concurrency permit), then for a rate-limit slot,
    /// then calls it. In that order: a slot reserved before waiting for a permit could lie in
    /// the past by the time the permit comes, and attempts queued behind the concurrency
    /// limit would then start together, above the rate.
    async fn send<T>(
        &self,
        mut service: T,
        request: Request<BufferedBody>,
        deadline: Instant,
        audited: Audited<'_>,
    ) -> Result<Result<Response<ResBody>, BoxError>, CallError>
    where
        T: Service<Request<BufferedBody>, Response = Response<ResBody>, Error = BoxError>,
    {
        let service = match service.ready().await {
            Ok(service) => service,
            Err(error) => return Ok(Err(error)),
        };
        if let Some(limiter) = &self.rate {
            let now = tokio::time::Instant::now();
            let latest = tokio::time::Instant::from_std(deadline);
            let Some(at) = limiter.reserve(now, Some(latest)) else {
                return Err(CallError::DeadlineExceeded {
                    after: self.deadline,
                });
            };
            if at > now {
                tokio::time::sleep_until(at).await;
            }
        }
        Ok(audited.call(service, request).await)
    }
}

/// What the audit event of one attempt holds, besides its outcome.
struct Audited<'a> {
    provider: &'static str,
    method: &'a Method,
    path: &'a str,
    attempt: u32,
}

impl Audited<'_> {
    /// Calls `service` (ready); the latency counts from the call. An attempt whose future is
    /// dropped before it ends (the call's deadline, or the caller went away) is logged too,
    /// as `abandoned`: it may have reached the provider.
    async fn call<T, ResBody>(
        self,
        service: &mut T,
        request: Request<BufferedBody>,
    ) -> Result<Response<ResBody>, BoxError>
    where
        T: Service<Request<BufferedBody>, Response = Response<ResBody>, Error = BoxError>,
    {
        let mut pending = PendingAudit {
            audited: Some(self),
            started: Instant::now(),
        };
        let result = service.call(request).await;
        if let Some(audited) = pending.audited.take() {
            audit::record(
                audited.provider,
                audited.method,
                audited.path,
                audited.attempt,
                pending.started,
                &result,
            );
        }
        result
    }
}

/// The audit event of an attempt still in flight: written as `abandoned` if dropped.
struct PendingAudit<'a> {
    audited: Option<Audited<'a>>,
    started: Instant,
}

impl Drop for PendingAudit<'_> {
    fn drop(&mut self) {
        if let Some(audited) = self.audited.take() {
            audit::abandoned(
                audited.provider,
                audited.method,
                audited.path,
                audited.attempt,
                self.started,
            );
        }
    }
}
