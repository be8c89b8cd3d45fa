//! The futures of [`SignRequest`](crate::SignRequest) and
//! [`VerifySignature`](crate::VerifySignature).
//!
//! Both are named state machines over the request body and the inner service's future:
//! nothing is boxed per request. Both follow tollgate's one rule for polling after completion
//! (see [`tollgate_core::future`]): once a future returned `Poll::Ready`, it returns
//! `Poll::Pending`.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use pin_project_lite::pin_project;
use tollgate_core::future::{InboundFuture, OutboundFuture};
use tollgate_core::metrics::LayerName;
use tollgate_core::{BoxError, BufferBody, BufferError, BufferedBody, KeyRing, ResponseBody};
use tower_service::Service;

use crate::scheme::SignError;
use crate::sign::SignConfig;
use crate::verify::VerifyConfig;

pin_project! {
    /// Read the body, then run the future made from it; then done.
    #[project = StepProj]
    enum Step<B, S, F> {
        Reading {
            #[pin]
            body: BufferBody<B>,
            parts: Option<http::request::Parts>,
            inner: Option<S>,
        },
        Then {
            #[pin]
            future: F,
        },
        Done,
    }
}

impl<B, S, F> Step<B, S, F>
where
    B: Body,
    B::Error: Into<BoxError>,
    F: Future,
{
    /// Reads `request`'s body with `limit`, and with `timeout` for the whole body (`None`:
    /// none).
    fn reading(request: Request<B>, inner: S, limit: usize, timeout: Option<Duration>) -> Self {
        let (parts, body) = request.into_parts();
        let body = BufferBody::new(body, limit);
        Self::Reading {
            body: match timeout {
                Some(timeout) => body.timeout(timeout),
                None => body,
            },
            parts: Some(parts),
            inner: Some(inner),
        }
    }

    /// Polls the body until it is read, and hands what `check` makes of it (with the
    /// request's parts, which `check` may change in place) to `then` with the parts and the
    /// ready inner service; then polls the future `then` makes. After that future's answer,
    /// `Poll::Pending`.
    ///
    /// `check` works on the parts where they are, so that they are moved once, into what
    /// `then` makes of them.
    fn poll_step<C>(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        check: impl FnOnce(&mut http::request::Parts, Result<Bytes, BufferError>) -> C,
        then: impl FnOnce(http::request::Parts, C, S) -> F,
    ) -> Poll<F::Output> {
        if let StepProj::Reading { body, parts, inner } = self.as_mut().project() {
            let read = ready!(body.poll(cx));
            let checked = match parts.as_mut() {
                Some(parts) => check(parts, read),
                None => {
                    self.set(Self::Done);
                    return Poll::Pending;
                }
            };
            let (Some(parts), Some(inner)) = (parts.take(), inner.take()) else {
                self.set(Self::Done);
                return Poll::Pending;
            };
            let future = then(parts, checked, inner);
            self.set(Self::Then { future });
        }
        match self.as_mut().project() {
            StepProj::Then { future } => {
                let output = ready!(future.poll(cx));
                self.set(Self::Done);
                Poll::Ready(output)
            }
            // Polled after completion: stays pending rather than panicking.
            StepProj::Reading { .. } | StepProj::Done => Poll::Pending,
        }
    }
}

pin_project! {
    /// The future of [`SignRequest`](crate::SignRequest): reads the body, signs it, then runs
    /// the inner service over exactly the signed bytes.
    ///
    /// A request refused in `call` (not a configured upstream, an expired signing key, a
    /// declared `Content-Length` over the limit) or after reading (body too large or
    /// unreadable, the scheme cannot sign) resolves to the [`SignError`] boxed in a
    /// [`BoxError`]; the inner service is not called. Errors of the inner service pass
    /// through, boxed.
    #[must_use = "futures do nothing unless polled"]
    pub struct SignRequestFuture<S, ReqBody>
    where
        S: Service<Request<BufferedBody>>,
    {
        #[pin]
        step: Step<ReqBody, S, OutboundFuture<S::Future, SignError>>,
        config: Arc<SignConfig>,
        now: u64,
        // The version of a `KeyRingHandle`'s ring loaded in `call` (`None`: a fixed ring).
        ring: Option<Arc<KeyRing>>,
    }
}

impl<S, ReqBody> SignRequestFuture<S, ReqBody>
where
    S: Service<Request<BufferedBody>>,
    S::Error: Into<BoxError>,
    ReqBody: Body,
    ReqBody::Error: Into<BoxError>,
{
    pub(crate) fn refused(error: SignError, config: Arc<SignConfig>) -> Self {
        Self {
            step: Step::Then {
                future: OutboundFuture::refused(error),
            },
            config,
            now: 0,
            ring: None,
        }
    }

    pub(crate) fn reading(
        request: Request<ReqBody>,
        inner: S,
        now: u64,
        ring: Option<Arc<KeyRing>>,
        config: Arc<SignConfig>,
    ) -> Self {
        Self {
            step: Step::reading(request, inner, config.common.limit, None),
            config,
            now,
            ring,
        }
    }
}

impl<S, ReqBody> Future for SignRequestFuture<S, ReqBody>
where
    S: Service<Request<BufferedBody>>,
    S::Error: Into<BoxError>,
    ReqBody: Body,
    ReqBody::Error: Into<BoxError>,
{
    type Output = Result<S::Response, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let (config, now, ring) = (&**this.config, *this.now, this.ring.as_deref());
        this.step.poll_step(
            cx,
            |_, read| read,
            |parts, read, mut inner| {
                let signed = read
                    .map_err(SignError::Body)
                    .and_then(|bytes| config.sign(parts, bytes, now, ring));
                match signed {
                    Ok(request) => OutboundFuture::inner(inner.call(request)),
                    Err(error) => OutboundFuture::refused(error),
                }
            },
        )
    }
}

impl<S, ReqBody> fmt::Debug for SignRequestFuture<S, ReqBody>
where
    S: Service<Request<BufferedBody>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignRequestFuture").finish_non_exhaustive()
    }
}

pin_project! {
    /// The future of [`VerifySignature`](crate::VerifySignature): reads the body, verifies
    /// it, then runs the inner service over the same bytes.
    ///
    /// A refused request resolves to the layer's rejection response; the inner service is not
    /// called. The error is the inner service's.
    #[must_use = "futures do nothing unless polled"]
    pub struct VerifySignatureFuture<S, ReqBody>
    where
        S: Service<Request<BufferedBody>>,
    {
        #[pin]
        step: Step<ReqBody, S, InboundFuture<S::Future>>,
        config: Arc<VerifyConfig>,
    }
}

impl<S, ReqBody, ResBody> VerifySignatureFuture<S, ReqBody>
where
    S: Service<Request<BufferedBody>, Response = Response<ResBody>>,
    ReqBody: Body,
    ReqBody::Error: Into<BoxError>,
{
    pub(crate) fn rejected(response: Response<Bytes>, config: Arc<VerifyConfig>) -> Self {
        Self {
            step: Step::Then {
                future: InboundFuture::rejected(response),
            },
            config,
        }
    }

    pub(crate) fn reading(request: Request<ReqBody>, inner: S, config: Arc<VerifyConfig>) -> Self {
        Self {
            step: Step::reading(
                request,
                inner,
                config.common.limit,
                Some(config.body_timeout),
            ),
            config,
        }
    }
}

impl<S, ReqBody, ResBody> Future for VerifySignatureFuture<S, ReqBody>
where
    S: Service<Request<BufferedBody>, Response = Response<ResBody>>,
    ReqBody: Body,
    ReqBody::Error: Into<BoxError>,
{
    type Output = Result<Response<ResponseBody<ResBody>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let config: &VerifyConfig = this.config;
        let verify = |parts: &mut http::request::Parts, read: Result<Bytes, BufferError>| {
            let bytes = read.map_err(|error| {
                if let BufferError::Read(source) = &error {
                    tracing::debug!(target: "tollgate", error = %source, "request body could not be read");
                }
                error.to_rejection()
            })?;
            config.verify(parts, &bytes)?;
            Ok(bytes)
        };
        this.step
            .poll_step(cx, verify, |parts, verified, mut inner| match verified {
                Ok(bytes) => InboundFuture::inner(
                    inner.call(Request::from_parts(parts, BufferedBody::new(bytes))),
                ),
                Err(rejection) => InboundFuture::rejected(
                    config.responder.refuse(LayerName::Signature, rejection),
                ),
            })
    }
}

impl<S, ReqBody> fmt::Debug for VerifySignatureFuture<S, ReqBody>
where
    S: Service<Request<BufferedBody>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifySignatureFuture")
            .finish_non_exhaustive()
    }
}
