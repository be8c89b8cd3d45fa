//! [`VerifySignatureLayer`]: buffer, verify, and hand the same bytes on (server side).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use pin_project_lite::pin_project;
use tollgate_core::body::{BufferBody, check_content_length};
use tollgate_core::{
    BoxError, BufferError, BufferedBody, Clock, DEFAULT_BODY_LIMIT, KeyRing, Rejection,
    RejectionResponder, RequestTimestamp, RespondRejection, ResponseBody, SharedClock, SystemClock,
};
use tower_layer::Layer;
use tower_service::Service;

use crate::scheme::{PreparedKeys, RequestParts, Scheme};

/// The verified request body, in the request's extensions next to the
/// [`VerifiedSignature`](tollgate_core::VerifiedSignature).
///
/// The same `Bytes` the inner service receives as its body (a reference-counted handle, not a
/// copy), so handlers and extractors can read the exact signed bytes without consuming the body.
/// `Debug` prints the length only.
///
/// ```
/// use bytes::Bytes;
/// use tollgate_signature::VerifiedBody;
///
/// let body = VerifiedBody::new(Bytes::from_static(b"{}"));
/// assert_eq!(body.bytes(), &b"{}"[..]);
/// assert_eq!(format!("{body:?}"), "VerifiedBody { len: 2 }");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct VerifiedBody(Bytes);

impl VerifiedBody {
    /// Wraps verified bytes.
    pub fn new(bytes: Bytes) -> Self {
        Self(bytes)
    }

    /// The exact bytes that verified.
    pub fn bytes(&self) -> &Bytes {
        &self.0
    }

    /// The bytes, by value.
    pub fn into_bytes(self) -> Bytes {
        self.0
    }
}

impl fmt::Debug for VerifiedBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifiedBody")
            .field("len", &self.0.len())
            .finish()
    }
}

struct Config {
    scheme: Arc<dyn Scheme>,
    /// The ring, with each key's HMAC state keyed once.
    keys: PreparedKeys,
    clock: SharedClock,
    limit: usize,
    responder: RejectionResponder,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("scheme", &self.scheme)
            .field("ring", self.keys.ring())
            .field("clock", &self.clock)
            .field("limit", &self.limit)
            .field("responder", &self.responder)
            .finish()
    }
}

/// Verifies the signature of every request before the inner service sees it.
///
/// For each request the layer:
///
/// 1. answers 413 `payload_too_large` when `Content-Length` declares more than the limit
///    (default [`DEFAULT_BODY_LIMIT`], 1 MiB), before reading a byte;
/// 2. reads the body into one `Bytes`, answering 413 once more than the limit arrives (chunked
///    bodies too) and 400 `body_read_failed` when reading fails;
/// 3. verifies it with the [`Scheme`] against every key of the [`KeyRing`] usable at the
///    [`Clock`]'s now, answering 401 `signature_missing` / `signature_invalid` /
///    `timestamp_out_of_window` or 400 `signature_malformed` / `timestamp_malformed`;
/// 4. hands the inner service a [`BufferedBody`] over the **same** `Bytes` (nothing is copied a
///    second time), with a [`VerifiedSignature`](tollgate_core::VerifiedSignature), a
///    [`VerifiedBody`] and, when the scheme has a timestamp, a [`RequestTimestamp`] in the
///    request's extensions.
///
/// Rejections are JSON (`{"error":{"code":"...","message":"..."}}`) from the core's
/// [`RejectionResponder`], replaceable with [`on_rejection`](VerifySignatureLayer::on_rejection).
/// They never contain the expected signature.
///
/// # Security considerations
///
/// - Put this layer *outside* anything that changes the body, the path or the headers it
///   signs; the inner service must use the bytes it is handed (see the crate docs on not
///   re-encoding JSON).
/// - A replay guard that reads [`VerifiedSignature`](tollgate_core::VerifiedSignature) goes
///   *inside* this layer.
/// - The body limit bounds memory per request; raise it only as far as your provider needs.
///
/// ```
/// use std::convert::Infallible;
/// use http::{Request, Response, StatusCode};
/// use tollgate_core::{BufferedBody, KeyRing, ManualClock, Secret, VerifiedSignature};
/// use tollgate_signature::{BodyHmac, VerifySignatureLayer};
/// use tower::{ServiceBuilder, ServiceExt, service_fn};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let layer = VerifySignatureLayer::new(BodyHmac::onekey(), KeyRing::single(Secret::from_string("cashout_secret_key")))
///     .clock(ManualClock::new(1_700_000_000));
/// let service = ServiceBuilder::new().layer(layer).service(service_fn(|req: Request<BufferedBody>| async move {
///     let key_id = req.extensions().get::<VerifiedSignature>().unwrap().key_id().to_owned();
///     Ok::<_, Infallible>(Response::new(key_id))
/// }));
///
/// let request = Request::post("/notify")
///     .header("payload-signature", "8d3e2b061e753c88e401ac8737e6dc7af9e02d590fd1dd4d5e1ded9f4430487c")
///     .body(String::new())
///     .unwrap();
/// let response = service.clone().oneshot(request).await.unwrap();
/// assert_eq!(response.status(), StatusCode::OK);
///
/// let unsigned = Request::post("/notify").body(String::new()).unwrap();
/// assert_eq!(service.oneshot(unsigned).await.unwrap().status(), StatusCode::UNAUTHORIZED);
/// # });
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct VerifySignatureLayer {
    config: Arc<Config>,
}

impl VerifySignatureLayer {
    /// Verifies with `scheme` against `ring`, using the system clock, a 1 MiB body limit and
    /// JSON rejections.
    pub fn new(scheme: impl Scheme, ring: impl Into<KeyRing>) -> Self {
        Self {
            config: Arc::new(Config {
                scheme: Arc::new(scheme),
                keys: PreparedKeys::new(ring),
                clock: Arc::new(SystemClock),
                limit: DEFAULT_BODY_LIMIT,
                responder: RejectionResponder::json(),
            }),
        }
    }

    fn update(self, change: impl FnOnce(&mut Config)) -> Self {
        let mut config = match Arc::try_unwrap(self.config) {
            Ok(config) => config,
            Err(shared) => Config {
                scheme: Arc::clone(&shared.scheme),
                keys: shared.keys.clone(),
                clock: Arc::clone(&shared.clock),
                limit: shared.limit,
                responder: shared.responder.clone(),
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

    /// Replaces the rejection response (the rejection is still logged and put into the
    /// response's extensions).
    pub fn on_rejection(self, respond: impl RespondRejection) -> Self {
        self.update(|config| config.responder = RejectionResponder::new(respond))
    }

    /// Sets the whole responder (e.g. [`RejectionResponder::grpc`]).
    pub fn responder(self, responder: RejectionResponder) -> Self {
        self.update(|config| config.responder = responder)
    }
}

impl<S> Layer<S> for VerifySignatureLayer {
    type Service = VerifySignature<S>;

    fn layer(&self, inner: S) -> Self::Service {
        VerifySignature {
            inner,
            config: Arc::clone(&self.config),
        }
    }
}

/// The service of [`VerifySignatureLayer`].
#[derive(Clone, Debug)]
#[must_use]
pub struct VerifySignature<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S> VerifySignature<S> {
    /// Wraps `inner` with the configuration of `layer`.
    pub fn new(inner: S, layer: &VerifySignatureLayer) -> Self {
        layer.layer(inner)
    }

    /// The layer, to wrap services with.
    pub fn layer(scheme: impl Scheme, ring: impl Into<KeyRing>) -> VerifySignatureLayer {
        VerifySignatureLayer::new(scheme, ring)
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

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for VerifySignature<S>
where
    S: Service<Request<BufferedBody>, Response = Response<ResBody>> + Clone,
    ReqBody: Body,
    ReqBody::Error: Into<BoxError>,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        // The ready service goes into the future; a fresh clone stays here.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let config = Arc::clone(&self.config);
        let (parts, body) = request.into_parts();
        // 413 before reading a byte when the declared `Content-Length` is too large; a body
        // whose size hint says so is refused by `BufferBody` before its first read.
        let state = match check_content_length(&parts.headers, config.limit) {
            Err(error) => State::Refused { error: Some(error) },
            Ok(()) => State::Reading {
                buffering: BufferBody::new(body, config.limit),
                parts: Some(parts),
                inner: Some(inner),
            },
        };
        ResponseFuture { state, config }
    }
}

/// The URI the client signed: behind axum's `Router::nest` the request's URI lost its prefix,
/// and axum keeps the original in an extension.
#[cfg(feature = "axum")]
fn signed_uri(parts: &http::request::Parts) -> &http::Uri {
    parts
        .extensions
        .get::<axum::extract::OriginalUri>()
        .map_or(&parts.uri, |original| &original.0)
}

#[cfg(not(feature = "axum"))]
fn signed_uri(parts: &http::request::Parts) -> &http::Uri {
    &parts.uri
}

pin_project! {
    #[project = StateProj]
    enum State<S, ReqBody>
    where
        S: Service<Request<BufferedBody>>,
    {
        Reading {
            #[pin]
            buffering: BufferBody<ReqBody>,
            parts: Option<http::request::Parts>,
            inner: Option<S>,
        },
        Refused {
            error: Option<BufferError>,
        },
        Inner {
            #[pin]
            future: S::Future,
        },
        Done,
    }
}

pin_project! {
    /// The future of [`VerifySignature`]: reads the body, verifies, then runs the inner
    /// service.
    ///
    /// A state machine over the request body and the inner service's future: nothing is
    /// boxed per request.
    #[must_use = "futures do nothing unless polled"]
    pub struct ResponseFuture<S, ReqBody>
    where
        S: Service<Request<BufferedBody>>,
    {
        #[pin]
        state: State<S, ReqBody>,
        config: Arc<Config>,
    }
}

impl<S, ReqBody, ResBody> Future for ResponseFuture<S, ReqBody>
where
    S: Service<Request<BufferedBody>, Response = Response<ResBody>>,
    ReqBody: Body,
    ReqBody::Error: Into<BoxError>,
{
    type Output = Result<Response<ResponseBody<ResBody>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let config: &Config = this.config;
        loop {
            match this.state.as_mut().project() {
                StateProj::Reading {
                    buffering,
                    parts,
                    inner,
                } => {
                    let bytes = match ready!(buffering.poll(cx)) {
                        Ok(bytes) => bytes,
                        Err(error) => {
                            if let BufferError::Read(source) = &error {
                                tracing::debug!(target: "tollgate", error = %source, "request body could not be read");
                            }
                            this.state.set(State::Done);
                            return Poll::Ready(Ok(config
                                .responder
                                .respond_with_body(error.to_rejection())));
                        }
                    };
                    let (Some(parts), Some(mut inner)) = (parts.take(), inner.take()) else {
                        this.state.set(State::Done);
                        return Poll::Pending;
                    };
                    match verified_request(config, parts, bytes) {
                        Ok(request) => {
                            let future = inner.call(request);
                            this.state.set(State::Inner { future });
                        }
                        Err(rejection) => {
                            this.state.set(State::Done);
                            return Poll::Ready(Ok(config.responder.respond_with_body(rejection)));
                        }
                    }
                }
                StateProj::Refused { error } => {
                    let rejection = error
                        .take()
                        .unwrap_or(BufferError::TooLarge {
                            limit: config.limit,
                        })
                        .to_rejection();
                    this.state.set(State::Done);
                    return Poll::Ready(Ok(config.responder.respond_with_body(rejection)));
                }
                StateProj::Inner { future } => {
                    let output = ready!(future.poll(cx));
                    this.state.set(State::Done);
                    return Poll::Ready(output.map(|response| response.map(ResponseBody::inner)));
                }
                // Polled after completion: stays pending rather than panicking.
                StateProj::Done => return Poll::Pending,
            }
        }
    }
}

/// Verifies the buffered request: the request for the inner service (the same `Bytes` as its
/// body, the facts in its extensions), or the rejection.
fn verified_request(
    config: &Config,
    mut parts: http::request::Parts,
    bytes: Bytes,
) -> Result<Request<BufferedBody>, Rejection> {
    let now = config.clock.now_unix();
    let verified = {
        let uri = signed_uri(&parts);
        let view = RequestParts::with_body_bytes(&parts.method, uri, &parts.headers, &bytes);
        config.scheme.verify_prepared(&config.keys, &view, now)
    };
    let verified = match verified {
        Ok(verified) => verified,
        Err(err) => return Err(err.to_rejection()),
    };
    tracing::debug!(
        target: "tollgate",
        scheme = verified.scheme(),
        key_id = verified.key_id(),
        "signature verified"
    );
    if let Some(timestamp) = verified.timestamp() {
        parts.extensions.insert(RequestTimestamp(timestamp));
    }
    parts.extensions.insert(verified);
    parts.extensions.insert(VerifiedBody(bytes.clone()));
    Ok(Request::from_parts(parts, BufferedBody::new(bytes)))
}

impl<S, ReqBody> fmt::Debug for ResponseFuture<S, ReqBody>
where
    S: Service<Request<BufferedBody>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
